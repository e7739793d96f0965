"""Guards on the shipped models' headline figures (docs/results.md): a change that breaks quality fails CI.

Each guard reads a small fixed sample and sets its threshold a few standard errors under the figure the docs
report for the full benchmark, so that it does not flap on sampling noise and still catches a real drop.
bf16 autocast where the CPU has native bf16 kernels, fp32 elsewhere (the figures hold for both within the
margins; see docs/results.md).
"""

import math

import numpy as np
import pytest
import torch

from vidiff.cli import default_model_path
from vidiff.hardware import native_bf16
from vidiff.metrics.pixel import MaskedPSNR
from vidiff.shapes.scenes import render
from vidiff.shapes.suites import suite_scenes

WEIGHTS = default_model_path().parent
BF16 = native_bf16()


def _autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16)


def _floor(p: float, n: int, k: float = 2.5) -> float:
    """``p`` minus ``k`` binomial standard errors at ``n`` samples."""
    return p - k * math.sqrt(p * (1 - p) / n)


def _psnr(a, b, known=None) -> float:
    """PSNR (per frame, averaged) on the pixels where ``known`` is 1, or on whole frames (as
    benchmarks/lumiere_apps.py reads it)."""
    m = MaskedPSNR()
    m.update(a, b, None if known is None else 1 - known)  # the metric's mask marks the region to fill
    return m.compute()["all" if known is None else "unmasked"]


def _box(video: torch.Tensor, margin: int = 2) -> torch.Tensor:
    """(1, h, w) box around everything the object of a rendered clip (3, t, h, w) covers over the clip."""
    ys, xs = np.nonzero((video.amax((0, 1)) > 0.05).numpy())
    box = torch.zeros(1, *video.shape[-2:])
    box[:, max(0, ys.min() - margin): ys.max() + margin + 1, max(0, xs.min() - margin): xs.max() + margin + 1] = 1
    return box


# docs/results.md, default model, 200 test scenes, strict reader (bf16; steps, their spacing and guidance from the
# folder: DPM++ SDE, 20 steps above log-SNR -8.5, guidance 3 at t >= 400)
DEFAULT_FIGURES = {"color": 0.99, "shape": 0.98, "motion": 0.87, "present": 0.99}  # test, its sampling defaults
N_DEFAULT = 24


def test_the_default_model_keeps_its_strict_figures():
    from vidiff.shapes.strict_reader import score_video_strict
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    pipe = TextToVideoPipeline.from_pretrained(default_model_path(), base_only=True)
    scenes = suite_scenes("test", N_DEFAULT)  # the first 24 of the reported 200
    latents = torch.cat([torch.randn(1, 3, 16, 32, 32, generator=torch.Generator().manual_seed(i))
                         for i in range(N_DEFAULT)])  # the benchmark's noise: clip i from seed i
    videos = []
    for i in range(0, N_DEFAULT, 8):
        with _autocast():
            videos.append(pipe([s.caption for s in scenes[i: i + 8]], latents=latents[i: i + 8],  # the SDE's noise:
                               generator=torch.Generator().manual_seed(1_000_000 + i)).videos.float())
    scores = [score_video_strict(v, s.caption)[0] for v, s in zip(torch.cat(videos).numpy(), scenes)]
    got = {"color": np.mean([s.color for s in scores]), "shape": np.mean([s.shape for s in scores]),
           "motion": np.mean([s.motion for s in scores]), "present": np.mean([s.valid for s in scores])}
    for k, p in DEFAULT_FIGURES.items():
        assert got[k] >= _floor(p, N_DEFAULT), (k, got, DEFAULT_FIGURES)


@pytest.fixture(scope="module")
def conditional():
    from vidiff.pipelines.conditional import ConditionalVideoPipeline

    pipe = ConditionalVideoPipeline.from_pretrained(WEIGHTS / "conditional", base_only=True)
    scenes = suite_scenes("test", 4)
    gt = torch.from_numpy(np.stack([render(s) for s in scenes]))  # (4, 3, 16, 32, 32)
    return pipe, [s.caption for s in scenes], gt


def _generate(pipe, caps, video, known):
    with _autocast():
        return pipe.generate(caps, video, known, keep_known=False,  # the model alone, nothing pasted back
                             generator=torch.Generator().manual_seed(0)).videos.float()


# docs/results.md: the conditional model alone (no pasting) with the folder's condition guidance, 40 clips
@pytest.mark.parametrize("task,figure,margin", [("inpaint", 40.1, 4.0), ("outpaint", 29.1, 4.0),
                                                ("cinemagraph", 40.3, 4.0)])
def test_the_conditional_model_keeps_the_given_pixels(conditional, task, figure, margin):
    from vidiff.conditioning.masks import border_region, cinemagraph_mask, inpaint_mask

    pipe, caps, gt = conditional
    n, t = gt.shape[0], gt.shape[2]
    boxes = torch.stack([_box(v) for v in gt])
    if task == "inpaint":
        known = inpaint_mask(boxes, t)
        out = _generate(pipe, caps, gt, known)
        got = _psnr(out, gt, known)  # the pixels outside the box, kept
    elif task == "outpaint":
        known = inpaint_mask(border_region(n, 32, 32, 8), t)
        out = _generate(pipe, caps, gt, known)
        got = _psnr(out, gt, known)  # the centre, kept
    else:
        still = gt[:, :, :1].expand(-1, -1, t, -1, -1)
        known = cinemagraph_mask(boxes, t)
        out = _generate(pipe, caps, still, known)
        got = _psnr(out[:, :, 1:], still[:, :, 1:], known[:, :, 1:])  # later frames outside the region
    assert got >= figure - margin, (task, got)


def test_the_super_resolution_stage_makes_128_px_that_read_as_the_caption():
    from vidiff.shapes.strict_reader import score_video_strict
    from vidiff.shapes.encoder import prepare_video
    from vidiff.pipelines.super_resolution import SuperResolutionPipeline

    pipe = SuperResolutionPipeline.from_pretrained(WEIGHTS / "ssr")
    scenes = suite_scenes("test", 2)
    low = torch.from_numpy(np.stack([render(s, 16, 8.0, 32) for s in scenes]))
    high = torch.from_numpy(np.stack([render(s, 16, 8.0, 128) for s in scenes]))
    with _autocast():
        out = pipe([s.caption for s in scenes], low, generator=torch.Generator().manual_seed(0)).videos.float()
    assert out.shape == (2, 3, 16, 128, 128)
    assert _psnr(out, high) >= 33.0  # docs/results.md: 37.3 dB on 8 clips of 32 frames; bilinear 29.9 dB
    small = prepare_video(out, 16)  # area-downsampled to the reader's 32 px
    for v, s in zip(small.numpy(), scenes):
        r = score_video_strict(v, s.caption)[0]
        assert r.color and r.shape and r.motion, (s.caption, r.why)
