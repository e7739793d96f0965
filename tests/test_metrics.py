"""The metric suite: references, conventions, masks, errors, and the CLI report (tiny random-weight networks)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from torch import nn


class Identity(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.num_features = d

    def forward(self, x):
        return x.double()


@pytest.fixture(scope="module")
def tiny_encoder_dir(tmp_path_factory):
    from vidiff.shapes.encoder import ShapesEncoder

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("enc")
    ShapesEncoder(width=8, frame_dim=16, video_dim=16).save_pretrained(path)
    return path


def real_clips(seeds, split="test"):
    from vidiff.shapes.scenes import render, sample_scene

    scenes = [sample_scene(s, split, num_objects=1) for s in seeds]
    return torch.stack([torch.from_numpy(render(s)) for s in scenes]), [s.caption for s in scenes]


# ------------------------------------------------------------------ Fréchet / kernel / IS
def test_frechet_matches_scipy_and_the_closed_form():
    from vidiff.metrics.distribution import FrechetVideoDistance, frechet_distance

    g = torch.Generator().manual_seed(0)
    d, n = 4, 20000
    a = torch.randn(n, d, generator=g, dtype=torch.float64)
    b = 1.0 + math.sqrt(2) * torch.randn(n, d, generator=g, dtype=torch.float64)  # N(1, 2I)
    m = FrechetVideoDistance(Identity(d))
    m.update(a, real=True)
    m.update(b, real=False)
    got = float(m.compute())
    an, bn = a.numpy(), b.numpy()
    ref = frechet_distance(an.mean(0), np.cov(an, rowvar=False), bn.mean(0), np.cov(bn, rowvar=False))
    assert got == pytest.approx(ref, rel=1e-6)
    closed = d * 1.0 + d * (1 + 2 - 2 * math.sqrt(2))  # |mu|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2)
    assert got == pytest.approx(closed, rel=0.05)


def test_frechet_reference_on_correlated_gaussians():
    from vidiff.metrics.distribution import FrechetVideoDistance, frechet_distance

    rng = np.random.default_rng(1)
    d = 6
    l1, l2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    a = rng.normal(size=(500, d)) @ l1
    b = rng.normal(size=(500, d)) @ l2 + 0.5
    m = FrechetVideoDistance(Identity(d))
    m.update(torch.from_numpy(a), True)
    m.update(torch.from_numpy(b), False)
    ref = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert float(m.compute()) == pytest.approx(ref, rel=1e-5)


def test_kvd_near_zero_for_one_distribution_and_positive_for_two():
    from vidiff.metrics.distribution import KernelVideoDistance

    g = torch.Generator().manual_seed(0)
    same = KernelVideoDistance(Identity(8), subsets=20, subset_size=1000)
    same.update(torch.randn(400, 8, generator=g), True)
    same.update(torch.randn(400, 8, generator=g), False)
    diff = KernelVideoDistance(Identity(8), subsets=20, subset_size=1000)
    diff.update(torch.randn(400, 8, generator=g), True)
    diff.update(torch.randn(400, 8, generator=g) + 1, False)
    m_same, m_diff = float(same.compute()[0]), float(diff.compute()[0])
    assert abs(m_same) < 0.1 * m_diff and m_diff > 1.0  # subset size clamped to the 400 samples held


def test_inception_score_bounds():
    from vidiff.metrics.distribution import VideoInceptionScore

    k = 10
    confident = VideoInceptionScore(Identity(k))
    confident.update(torch.eye(k).repeat(5, 1) * 50)  # one-hot, all classes equally often
    assert float(confident.compute()[0]) == pytest.approx(k, rel=1e-3)
    constant = VideoInceptionScore(Identity(k))
    constant.update(torch.zeros(50, k))
    assert float(constant.compute()[0]) == pytest.approx(1.0, abs=1e-4)
    # saturated logits: three classes used, seven that every video gives probability 0.0 in float32 (torchmetrics'
    # own compute reads NaN here: 0 * (finite - log 0))
    saturated = VideoInceptionScore(Identity(k))
    saturated.update(torch.eye(k)[[0, 1, 2] * 4] * 1000.0)
    mean, std = saturated.compute()
    assert float(mean) == pytest.approx(3.0, rel=1e-3) and torch.isnan(std)
    split = VideoInceptionScore(Identity(k), splits=2)
    split.update(torch.eye(k)[[0, 1] * 4 + [0] * 8] * 50.0)  # 2 classes in the first split, 1 in the second
    mean, std = split.compute()
    assert float(mean) == pytest.approx(1.5, rel=1e-3) and float(std) == pytest.approx(0.7071, rel=1e-3)


def test_frame_fid_counts_every_frame():
    from vidiff.metrics.distribution import FrameFID

    class Mean(nn.Module):
        num_features = 3

        def forward(self, x):
            return x.mean((2, 3))

    m = FrameFID(Mean())
    v = torch.rand(2, 3, 5, 8, 8)
    m.update(v, True)
    m.update(v, False)
    assert int(m.real_features_num_samples) == 10
    assert float(m.compute()) == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------ feature networks from files
def test_i3d_state_dict_round_trip(tmp_path):
    from vidiff.metrics.extractors import I3DFeatures, InceptionI3d, video_extractor

    torch.manual_seed(0)
    net = InceptionI3d(400).eval()
    torch.save(net.state_dict(), tmp_path / "i3d_pretrained_400.pt")
    feats = video_extractor(f"i3d:{tmp_path / 'i3d_pretrained_400.pt'}")
    assert feats.kind == "state_dict" and feats.num_features == 400
    v = torch.rand(1, 3, 10, 32, 40)
    out = feats(v)
    assert out.shape == (1, 400) and torch.isfinite(out).all()
    pool = I3DFeatures(tmp_path / "i3d_pretrained_400.pt", features="pool")
    assert pool(v).shape == (1, 1024)
    with pytest.raises(ValueError, match="at least 9 frames"):
        feats(torch.rand(1, 3, 8, 32, 32))
    torch.save({"foo": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a pytorch-i3d"):
        I3DFeatures(tmp_path / "foreign.pt")


class _StubI3D(nn.Module):
    """StyleGAN-V's TorchScript call signature; returns what it was given, to check the conventions."""

    def forward(self, x: torch.Tensor, rescale: bool, resize: bool, return_features: bool) -> torch.Tensor:
        flags = torch.tensor([float(rescale), float(resize), float(return_features)])
        return torch.cat([x.amax((1, 2, 3, 4))[:, None], x.amin((1, 2, 3, 4))[:, None],
                          flags[None].expand(x.shape[0], 3), torch.full((x.shape[0], 1), float(x.shape[2]))], 1)


def test_i3d_torchscript_gets_stylegan_v_conventions(tmp_path):
    from vidiff.metrics.extractors import I3DFeatures

    torch.jit.script(_StubI3D()).save(str(tmp_path / "i3d_torchscript.pt"))
    f = I3DFeatures(tmp_path / "i3d_torchscript.pt")
    assert f.kind == "torchscript"
    v = torch.zeros(2, 3, 16, 32, 32)
    v[:, :, :, 0, 0] = 1.0
    out = f(v)
    assert out[0, 0] == 255 and out[0, 1] == 0  # values in [0, 255]
    assert out[0, 2:5].tolist() == [1.0, 1.0, 1.0]  # rescale, resize, return_features
    assert out[0, 5] == 16  # (b, c, t, h, w)


def test_missing_weights_say_which_file(tmp_path):
    from vidiff.metrics.extractors import image_extractor, load_shapes_encoder, video_classifier, video_extractor

    with pytest.raises(ValueError, match="I3D weights .* not found at"):
        video_extractor(f"i3d:{tmp_path / 'nope.pt'}")
    with pytest.raises(ValueError, match="Inception weights .* not found at"):
        image_extractor(f"inception:{tmp_path / 'nope.pt'}")
    with pytest.raises(ValueError, match="Shapes encoder needs its weights folder"):
        load_shapes_encoder(tmp_path)
    with pytest.raises(ValueError, match="unknown classifier spec"):
        video_classifier("c3d")


def test_shapes_encoder_input_conventions(tiny_encoder_dir):
    from vidiff.metrics.extractors import image_extractor, video_classifier, video_extractor
    from vidiff.shapes.encoder import prepare_video

    vf = video_extractor(f"shapes:{tiny_encoder_dir}")
    v32 = torch.rand(2, 3, 20, 32, 32)
    v64 = v32.repeat_interleave(2, -1).repeat_interleave(2, -2)  # area-resize of this is exactly v32
    assert torch.allclose(vf(v64), vf(v32), atol=1e-5)
    assert torch.allclose(vf(v32), vf(v32[:, :, :16]))  # the first 16 frames
    with pytest.raises(ValueError, match="at least 16 frames"):
        vf(v32[:, :, :8])
    assert prepare_video(v64).shape == (2, 3, 16, 32, 32)
    assert image_extractor(f"shapes:{tiny_encoder_dir}")(v32[:, :, 0]).shape == (2, 16)
    assert video_classifier(f"shapes:{tiny_encoder_dir}")(v32).shape == (2, 210)


# ------------------------------------------------------------------ pixel metrics
def test_masked_psnr_ssim_regions():
    from vidiff.metrics.pixel import MaskedPSNR, MaskedSSIM

    target = torch.rand(2, 3, 4, 32, 32)
    mask = torch.zeros(1, 1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    pred = target.clone()
    pred[..., 8:24, 8:24] = (pred[..., 8:24, 8:24] + 0.1).clamp(0, 1)  # error only inside the mask
    psnr, ssim = MaskedPSNR(), MaskedSSIM()
    psnr.update(pred, target, mask)
    ssim.update(pred, target, mask)
    p, s = psnr.compute(), ssim.compute()
    assert p["unmasked"] == 100.0 and 15 < p["masked"] < 30 and p["masked"] < p["all"] < 100
    assert s["masked"] < s["all"] < s["unmasked"] <= 1.0
    exact = MaskedPSNR()
    exact.update(target, target)
    assert exact.compute()["all"] == 100.0 and math.isnan(exact.compute()["masked"])
    with pytest.raises(ValueError, match="does not broadcast"):
        MaskedPSNR().update(pred, target, torch.ones(5, 5))
    with pytest.raises(ValueError, match="mask values"):
        MaskedPSNR().update(pred, target, mask * 2)


class _StubLPIPS(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).abs().mean((1, 2, 3)) + 0 * a.amin()


def test_lpips_from_a_torchscript_file(tmp_path):
    from vidiff.metrics.pixel import LPIPS

    with pytest.raises(ValueError, match="LPIPS weights .* not found"):
        LPIPS(tmp_path / "lpips.pt")
    torch.jit.script(_StubLPIPS()).save(str(tmp_path / "lpips.pt"))
    target = torch.rand(2, 3, 4, 16, 16)
    same, moved = LPIPS(tmp_path / "lpips.pt"), LPIPS(tmp_path / "lpips.pt")
    same.update(target, target)
    moved.update((target + 0.1).clamp(0, 1), target)
    assert float(same.compute()) == 0.0
    # frames reach the network in [-1, 1]: a [0, 1] difference d becomes 2d
    assert float(moved.compute()) == pytest.approx(2 * float(((target + 0.1).clamp(0, 1) - target).abs().mean()), rel=1e-5)


# ------------------------------------------------------------------ CLIP metrics
@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory, tiny_text_dir):
    import shutil

    from transformers import CLIPConfig, CLIPModel

    path = tmp_path_factory.mktemp("clip")
    for f in tiny_text_dir.iterdir():
        if "token" in f.name or f.name == "vocab.txt":
            shutil.copy(f, path / f.name)
    torch.manual_seed(0)
    cfg = CLIPConfig(text_config=dict(vocab_size=30522, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, max_position_embeddings=32),
                     vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=32, patch_size=8),
                     projection_dim=8)
    CLIPModel(cfg).save_pretrained(path)
    return path


def test_clip_metrics_conventions(tiny_clip_dir):
    from vidiff.metrics.clip import CLIPSIM, CLIPEncoder, FrameConsistency

    enc = CLIPEncoder(tiny_clip_dir)
    v = torch.rand(2, 3, 4, 32, 32)
    sim = CLIPSIM(enc)
    sim.update(v, ["a red circle moving left", "a blue square growing"])
    val = float(sim.compute())
    assert -1 <= val <= 1 and float(sim.compute_x100()) == pytest.approx(max(100 * val, 0), rel=1e-5)
    # by hand: mean over frames of the cosine between frame and caption embeddings
    img = enc.images(v.transpose(1, 2).reshape(8, 3, 32, 32)).reshape(2, 4, -1)
    txt = enc.texts(["a red circle moving left", "a blue square growing"])
    assert val == pytest.approx(float((img * txt[:, None]).sum(-1).mean()), rel=1e-5)
    still = FrameConsistency(enc)
    still.update(v[:, :, :1].repeat(1, 1, 4, 1, 1))
    assert float(still.compute()) == pytest.approx(1.0, abs=1e-5)
    allpairs = FrameConsistency(enc, pairs="all")
    allpairs.update(v)
    assert float(allpairs.compute()) < 1.0
    with pytest.raises(ValueError, match="captions"):
        sim.update(v, ["one caption"])
    with pytest.raises(ValueError, match="no config.json"):
        CLIPEncoder(tiny_clip_dir / "missing")


# ------------------------------------------------------------------ Shapes scores
def test_shapes_score_reads_ground_truth_and_separates_held_out():
    from vidiff.shapes.scores import ShapesScore, caption_is_held_out

    v, caps = real_clips(range(24))
    s = ShapesScore()
    s.update(v, caps)
    out = s.compute()
    assert out["all"]["motion"] == 1.0 and out["all"]["color"] == 1.0
    held = [c for c in caps if caption_is_held_out(c)]
    assert out["held_out"].get("n", 0) == len(held) and out["seen"]["n"] == 24 - len(held)
    assert caption_is_held_out("a yellow triangle moving left") and not caption_is_held_out("a red triangle moving left")
    frozen = v[:, :, :1].repeat(1, 1, 16, 1, 1)
    s2 = ShapesScore()
    s2.update(frozen, caps)
    assert s2.compute()["all"]["motion"] < 0.5


def test_degradations_are_deterministic_and_identity_at_zero():
    from vidiff.metrics.degrade import DEGRADATIONS

    v, _ = real_clips(range(4))
    for name, f in DEGRADATIONS.items():
        assert torch.equal(f(v, 0.0), v), name
        assert torch.equal(f(v, 0.5, seed=3), f(v, 0.5, seed=3)), name
        assert not torch.equal(f(v, 1.0), v), name


# ------------------------------------------------------------------ CLI
def test_evaluate_cli_suite_report(tmp_path, tiny_pipeline_dir, tiny_encoder_dir):
    from vidiff.cli import main

    out = tmp_path / "report"
    rc = main(["evaluate", "--model", str(tiny_pipeline_dir), "--suite", "shapes-test", "--samples", "4",
               "--sweep-steps", "1", "2", "--sweep-samples", "2", "--steps", "2",
               "--video-features", f"shapes:{tiny_encoder_dir}", "--image-features", f"shapes:{tiny_encoder_dir}",
               "--classifier", f"shapes:{tiny_encoder_dir}", "-o", str(out), "-q"])
    assert rc == 0
    report = json.loads((out / "metrics.json").read_text())
    for k in ("fvd", "kvd", "is", "frame_fid", "frame_kid", "fvd_real_vs_real"):
        assert math.isfinite(report["metrics"][k]), k
    assert report["shapes"]["all"]["n"] == 4 and [r["steps"] for r in report["steps_sweep"]] == [1, 2]
    for name in ("report.md", "accuracy.png", "per_motion.png", "steps.png", "best.png", "worst.png", "samples.jsonl"):
        assert (out / name).is_file(), name
    assert "| fvd |" in (out / "report.md").read_text()


def test_evaluate_cli_folders(tmp_path, tiny_encoder_dir):
    from vidiff.cli import main
    from vidiff.io.video import write_video

    v, caps = real_clips(range(6))
    for name, videos in (("real", v), ("fake", v.flip(2))):
        (tmp_path / name).mkdir()
        for i, clip in enumerate(videos):
            write_video((clip.permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8), tmp_path / name / f"{i}.mp4")
    manifest = tmp_path / "captions.csv"
    manifest.write_text("path,caption\n" + "".join(f"{i}.mp4,{c}\n" for i, c in enumerate(caps)))
    enc = f"shapes:{tiny_encoder_dir}"
    rc = main(["evaluate", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--captions",
               str(manifest), "--video-features", enc, "--image-features", enc, "--classifier", enc,
               "-o", str(tmp_path / "rep"), "-q"])
    assert rc == 0
    rep = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert rep["n_real"] == 6 and rep["metrics"]["pairs"] == 6 and rep["metrics"]["psnr"] < 30
    assert rep["shapes"]["all"]["n"] == 6


@pytest.mark.parametrize("argv, msg", [
    (["evaluate"], "give --model"),
    (["evaluate", "--model", "default", "--suite", "nope"], "unknown suite"),
    (["evaluate", "--real", "/nonexistent"], "go together"),
    (["evaluate", "--model", "default", "--samples", "1"], "--samples must be in [2"),
])
def test_evaluate_cli_errors(argv, msg, capsys):
    from vidiff.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("kwargs, msg", [
    ({"samples": 2.5}, "samples must be an integer"),  # TypeError from range()
    ({"seed": 1.5}, "seed must be an integer"),  # torch's RuntimeError from manual_seed
    ({"seed": -1}, "seed must be in [0, "),  # ran; the CLI refused it
    ({"batch_size": 0}, "batch_size must be in [1, "),  # "range() arg 3 must not be zero"
    ({"sweep_samples": 0}, "sweep_samples must be in [2, "),
    ({"sweep_samples": 1}, "sweep_samples must be in [2, "),  # FVD of 1 clip failed after the whole evaluation
    ({"sweep_steps": (5, 0)}, "sweep_steps must be in [1, 1000], got 0"),
])
def test_evaluate_model_arguments_are_named_value_errors_before_any_model_loads(kwargs, msg, tmp_path, monkeypatch):
    import vidiff.pipelines.text_to_video as t2v
    from vidiff.evaluation.report import evaluate_model

    monkeypatch.setattr(t2v.TextToVideoPipeline, "from_pretrained", None)  # a load would fail with a TypeError
    with pytest.raises(ValueError) as e:
        evaluate_model("default", suite="shapes-test", **{"samples": 4, **kwargs}, out_dir=tmp_path / "r",
                       progress=False)
    assert msg in str(e.value) and not (tmp_path / "r").exists()


# ------------------------------------------------------------------ bad input to the metrics themselves
def _bad_metric_calls(enc_dir):
    from vidiff.metrics import FrameFID, FrechetVideoDistance, KernelVideoDistance, MaskedPSNR, MaskedSSIM
    from vidiff.metrics.distribution import frechet_distance
    from vidiff.shapes.encoder import FrameFeatures, ShapesEncoder, VideoFeatures

    enc = ShapesEncoder.from_pretrained(enc_dir)
    vf, ff = VideoFeatures(enc), FrameFeatures(enc)
    v = torch.rand(2, 3, 16, 32, 32, generator=torch.Generator().manual_seed(0))

    def filled(metric, real, fake):
        metric.update(real, real=True)
        metric.update(fake, real=False)
        return metric.compute()

    return {  # each gave a figure (uint8 or 0-255 clips read 100 dB; NaN gave NaN) or another error than ValueError
        "psnr uint8": (lambda: MaskedPSNR().update((v * 255).byte(), (v * 255).byte()), "divide 8-bit frames by 255"),
        "psnr 0-255 floats": (lambda: MaskedPSNR().update(v * 255, v * 255), "must be in [0, 1]"),
        "psnr NaN": (lambda: MaskedPSNR().update(v * float("nan"), v), "NaN"),
        "psnr shapes differ": (lambda: MaskedPSNR().update(v, v[:, :, :8]), "differ in shape"),
        "ssim 4x4 frames": (lambda: MaskedSSIM().update(v[..., :4, :4], v[..., :4, :4]), "at least 6x6 pixels"),
        "frechet dims differ": (lambda: frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4)), "of one d"),
        "frechet NaN": (lambda: frechet_distance(np.full(3, np.nan), np.eye(3), np.zeros(3), np.eye(3)), "NaN"),
        "fvd real='no'": (lambda: FrechetVideoDistance(vf).update(v, real="no"), "real must be True or False"),
        "fvd uint8": (lambda: FrechetVideoDistance(vf).update((v * 255).byte(), real=True), "divide 8-bit"),
        "fvd [-1, 1]": (lambda: FrechetVideoDistance(vf).update(v * 2 - 1, real=True), "must be in [0, 1]"),
        "fvd one clip each": (lambda: filled(FrechetVideoDistance(vf), v[:1], v[:1]), "at least 2 real and 2"),
        "fvd nothing": (lambda: FrechetVideoDistance(vf).compute(), "got 0 and 0"),
        "kvd one clip each": (lambda: filled(KernelVideoDistance(vf), v[:1], v[:1]), "at least 2 real and 2"),
        "frame fid NaN": (lambda: FrameFID(ff).update(v * float("nan"), real=True), "NaN"),
        "frame features 5-D": (lambda: ff(v), "frames (n, 3, h, w)"),
    }


def test_the_metrics_refuse_bad_input_in_words(tiny_encoder_dir):
    """Every case one ValueError naming the problem (uint8 clips went through the feature network as 0-255 floats)."""
    for name, (call, words) in _bad_metric_calls(tiny_encoder_dir).items():
        with pytest.raises(ValueError, match=re.escape(words)):
            call()
        print("refused:", name)
