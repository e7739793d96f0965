"""``vidiff evaluate``: generate a suite with fixed seeds (or read two folders of videos), compute the metric
suite and write a report folder: metrics.json, report.md, samples.jsonl, PNG plots and contact sheets.

Real reference of a Shapes suite: the ground-truth renders of the suite's own scenes (same captions and seeds).
The real-vs-real floor of FVD/KVD compares the test renders with renders of the same captions at redrawn
positions and phases (:func:`vidiff.shapes.scenes.redraw_scene`): like for like with the model, which draws each
caption anew; same split (test), same captions, same sample count.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from vidiff.evaluation.report_files import markdown, one_writer, sample_warnings, write_report  # noqa: F401

SUITES = {"shapes-test": "test", "shapes-heldout": "heldout"}
DEFAULT_SUITE, DEFAULT_SAMPLES = "shapes-test", 200  # what `vidiff evaluate --model M` generates when not told
VIDEO_SUFFIXES = (".mp4", ".webm", ".gif", ".avi", ".mov", ".mkv")


# ---------------------------------------------------------------- metric set
class MetricSuite:
    """The distribution and CLIP metrics over one real and one generated set, fed batch by batch."""

    def __init__(self, video_features: str = "shapes", image_features: str = "shapes", classifier: str = "shapes",
                 clip: str | None = None, kvd_subset: int = 100):
        from vidiff.metrics.clip import CLIPSIM, CLIPEncoder, FrameConsistency
        from vidiff.metrics.distribution import (FrameFID, FrameKID, FrechetVideoDistance, KernelVideoDistance,
                                                 VideoInceptionScore)
        from vidiff.metrics.extractors import image_extractor, video_classifier, video_extractor

        vf, imf, cls = video_extractor(video_features), image_extractor(image_features), video_classifier(classifier)
        self.video_extractor = vf
        self.specs = {"video_features": video_features, "image_features": image_features, "classifier": classifier,
                      "clip": clip}
        self.fvd = FrechetVideoDistance(vf)
        self.kvd = KernelVideoDistance(vf, subsets=50, subset_size=kvd_subset)
        self.is_fake, self.is_real = VideoInceptionScore(cls), VideoInceptionScore(cls)
        self.fid = FrameFID(imf)
        self.kid = FrameKID(imf, subsets=50, subset_size=1000)
        self.clip = None
        if clip:
            enc = CLIPEncoder(clip)
            self.clipsim_fake, self.clipsim_real = CLIPSIM(enc), CLIPSIM(enc)
            self.consistency_fake, self.consistency_real = FrameConsistency(enc), FrameConsistency(enc)
            self.clip = enc

    def update(self, videos: torch.Tensor, real: bool, captions: list[str] | None = None) -> None:
        videos = videos.float().clamp(0, 1)
        self.fvd.update(videos, real)
        self.kvd.update(videos, real)
        (self.is_real if real else self.is_fake).update(videos)
        self.fid.update(videos, real)
        self.kid.update(videos, real)
        if self.clip is not None:
            if captions is not None:
                (self.clipsim_real if real else self.clipsim_fake).update(videos, captions)
            (self.consistency_real if real else self.consistency_fake).update(videos)

    def compute(self) -> dict:
        kvd, kvd_std = self.kvd.compute()
        kid, kid_std = self.kid.compute()
        is_f, is_f_std = self.is_fake.compute()
        is_r, is_r_std = self.is_real.compute()
        out = {"fvd": float(self.fvd.compute()), "kvd": float(kvd), "kvd_std": float(kvd_std),
               "is": float(is_f), "is_std": _finite(is_f_std), "is_real": float(is_r),
               "frame_fid": float(self.fid.compute()), "frame_kid": float(kid), "frame_kid_std": float(kid_std)}
        if self.clip is not None:
            if int(self.clipsim_fake.count):
                out["clipsim"] = float(self.clipsim_fake.compute())
                out["clipsim_real"] = float(self.clipsim_real.compute())
            out["frame_consistency"] = float(self.consistency_fake.compute())
            out["frame_consistency_real"] = float(self.consistency_real.compute())
        return out


def _finite(x) -> float | None:
    """A spread as a float, None (null in metrics.json, which has no NaN) where there is none (one split)."""
    import math

    return float(x) if math.isfinite(float(x)) else None


def _real_floor(vf, scenes_a, scenes_b, kvd_subset: int) -> dict:
    """FVD/KVD between two sets of real clips (ground-truth renders) of the same size, features from ``vf``."""
    from vidiff.shapes.scenes import render
    from vidiff.metrics.distribution import FrechetVideoDistance, KernelVideoDistance

    fvd, kvd = FrechetVideoDistance(vf), KernelVideoDistance(vf, subsets=50, subset_size=kvd_subset)
    for scenes, real in ((scenes_a, True), (scenes_b, False)):
        for i in range(0, len(scenes), 64):
            v = torch.stack([torch.from_numpy(render(s, 16, 8.0, 32)) for s in scenes[i: i + 64]])
            fvd.update(v, real)
            kvd.update(v, real)
    return {"fvd_real_vs_real": float(fvd.compute()), "kvd_real_vs_real": float(kvd.compute()[0])}


# ---------------------------------------------------------------- generation
def _generate(pipe, scenes, steps: int, guidance: float, seed: int, batch_size: int, bf16: bool, bar=None):
    from vidiff.shapes.suites import generate_scenes

    out = []
    for chunk, videos in generate_scenes(pipe, scenes, steps, guidance, seed, batch_size, bf16):
        out.append(videos)
        if bar is not None:
            bar.update(len(chunk))
    return torch.cat(out)


def _to_32(videos: torch.Tensor) -> torch.Tensor:
    """Area-resize generated videos to the Shapes reader's 32 px when a model renders larger."""
    from vidiff.shapes.encoder import prepare_video

    return videos if videos.shape[-1] == 32 else prepare_video(videos, videos.shape[2])


@one_writer
def evaluate_model(model: str | os.PathLike, *, out_dir: str | os.PathLike, suite: str | None = None,
                   samples: int | None = None, steps: int | None = None, guidance: float | None = None, seed: int = 0,
                   sweep_steps=(5, 10, 25), sweep_samples: int = 32, video_features: str = "shapes",
                   image_features: str = "shapes", classifier: str = "shapes", clip: str | None = None,
                   bf16: bool | None = None,
                   batch_size: int = 16, progress: bool = True, overwrite: bool = False,
                   device: str | None = None) -> dict:
    """Generate ``samples`` videos of a Shapes suite and score them against the same scenes rendered; the report
    goes to ``out_dir``. ``suite`` / ``samples``: None is ``DEFAULT_SUITE`` / ``DEFAULT_SAMPLES`` (what ``vidiff
    evaluate --model M`` generates when not told); the settings after ``model`` are keywords only.
    ``bf16``: autocast while generating; None: where the CPU (or GPU) has native bf16 kernels. ``device``: where
    the model runs (None / "auto": CUDA when present)."""
    from tqdm.auto import tqdm

    from vidiff.shapes.scenes import render
    from vidiff.shapes.suites import suite_scenes
    from vidiff.checks import in_limits
    from vidiff.pipelines.text_to_video import TextToVideoPipeline
    from vidiff.shapes.scores import ShapesScore

    suite = DEFAULT_SUITE if suite is None else suite
    samples = DEFAULT_SAMPLES if samples is None else samples
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; allowed: {', '.join(SUITES)}")
    # whole numbers in the CLI's ranges (vidiff.checks.LIMITS; samples >= 2 for the distribution metrics), named:
    # 2.5 samples, seed 1.5 or batch_size 0 failed deep inside (TypeError, torch's RuntimeError, "range() arg 3 must
    # not be zero"), a negative seed ran
    samples, seed = in_limits(samples, "samples"), in_limits(seed, "seed")
    sweep_samples, batch_size = in_limits(sweep_samples, "sweep_samples"), in_limits(batch_size, "batch_size")
    sweep_steps = tuple(in_limits(s, "steps", "sweep_steps") for s in sweep_steps)
    from vidiff.hardware import resolve_device

    device = resolve_device(device)
    if bf16 is None:
        from vidiff.hardware import SLOW_BF16, native_bf16
        bf16 = native_bf16(device.type)
        if not bf16 and progress:
            tqdm.write(f"{SLOW_BF16}: generating in fp32")
    t0 = time.time()
    out_dir = Path(out_dir)
    pipe = TextToVideoPipeline.from_pretrained(model, base_only=True).to(device)
    resolved = pipe.settings(num_inference_steps=steps, guidance_scale=guidance)  # None: the folder's
    steps, guidance = resolved["num_inference_steps"], resolved["guidance_scale"]
    scenes = suite_scenes(SUITES[suite], samples)
    captions = [s.caption for s in scenes]
    metrics = MetricSuite(video_features, image_features, classifier, clip, kvd_subset=min(1000, samples))

    bar = tqdm(total=samples, desc=f"generating {suite}", disable=not progress)
    fake = _to_32(_generate(pipe, scenes, steps, guidance, seed, batch_size, bf16, bar))
    bar.close()
    real = torch.stack([torch.from_numpy(render(s, 16, 8.0, 32)) for s in scenes])
    shapes = ShapesScore()
    t_feat = time.time()
    for i in tqdm(range(0, samples, 64), desc="features and scores", disable=not progress):
        metrics.update(real[i: i + 64], True, captions[i: i + 64])
        metrics.update(fake[i: i + 64], False, captions[i: i + 64])
        shapes.update(fake[i: i + 64], captions[i: i + 64])
    result = metrics.compute()
    t_feat = time.time() - t_feat
    # like for like: the model draws each test caption anew, so the floor compares the test renders with renders
    # of the same captions at redrawn positions and phases (same split, same captions, same count)
    from vidiff.shapes.scenes import redraw_scene
    redrawn = [redraw_scene(s, s.seed) for s in scenes]
    result.update(_real_floor(metrics.video_extractor, scenes, redrawn, min(1000, samples)))
    shapes_summary = shapes.compute()
    from vidiff.shapes.suites import shuffled_floor
    shapes_summary["strict"]["floor"] = shuffled_floor(scenes)  # the same scenes' true renders, shuffled

    sweep = []
    for s in tqdm(sorted(set(sweep_steps)), desc="steps sweep", disable=not progress or not sweep_steps):
        k = min(sweep_samples, samples)
        # the main run already made these clips at its step count (same seeds)
        v = fake[:k] if s == steps else _to_32(_generate(pipe, scenes[:k], s, guidance, seed, batch_size, bf16))
        sc = ShapesScore()
        sc.update(v, captions[:k])
        m = MetricSuite(video_features, image_features, classifier, None, kvd_subset=min(1000, k))
        m.update(real[:k], True)
        m.update(v, False)
        summ, dist = sc.compute()["all"], m.compute()
        sweep.append({"steps": s, "n": k, "color": summ["color"], "shape": summ["shape"], "motion": summ["motion"],
                      "fvd": dist["fvd"]})

    report = {
        "model": str(model), "suite": suite, "samples": samples, "seeds": f"scenes {suite} 0..{samples - 1}, "
        f"noise seeds {seed}..{seed + samples - 1}", "steps": steps, "guidance_scale": guidance, "bf16": bf16,
        "sampler": pipe.defaults["sampler"], "frames": 16, "fps": 8, "resolution": int(fake.shape[-1]),
        "extractors": metrics.specs, "metrics": result, "shapes": shapes_summary, "steps_sweep": sweep,
        "seconds": {"total": round(time.time() - t0, 1), "features_and_scoring": round(t_feat, 1)},
        "warnings": sample_warnings(samples, samples, result), **_machine(device),
    }
    write_report(out_dir, report, shapes.records, fake, overwrite=overwrite)
    return report


def _machine(device=None) -> dict:
    """Where and with what a report was made (the ground rule: versions beside every output; a report had none)."""
    from vidiff import versions
    from vidiff.hardware import cpu_name

    out = {"device": str(device)} if device is not None else {}
    return {**out, "cpu": cpu_name(), "threads": torch.get_num_threads(), "versions": versions()}


# ---------------------------------------------------------------- folders
def _list_videos(folder: Path, warnings: list[str] | None = None) -> list[Path]:
    """The videos in ``folder`` itself (files, PNG frame folders). Videos one level down, in subfolders that are not
    frame folders, are not read: an error that names them when there is nothing else, else a warning in
    ``warnings`` (a folder organised by class or prompt was scored on its top level only, without a word)."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of videos")
    items, nested = [], 0
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in VIDEO_SUFFIXES and not p.is_dir():
            items.append(p)
        elif p.is_dir() and any(p.glob("*.png")):
            items.append(p)
        elif p.is_dir() and not p.is_symlink():
            nested += sum(q.suffix.lower() in VIDEO_SUFFIXES for q in p.iterdir())
    below = (f"{nested} video(s) in its subfolders are not read: evaluate reads the videos in the folder itself"
             if nested else "")
    if not items:
        raise ValueError(f"no videos in {folder} (allowed: {', '.join(VIDEO_SUFFIXES)} files or PNG frame folders)"
                         + (f"; {below}" if below else ""))
    if below and warnings is not None:
        warnings.append(f"{folder}: {below}")
    return items


def _load(path: Path, frames: int) -> torch.Tensor:
    from vidiff.io.video import read_video

    v, _ = read_video(path, num_frames=frames)
    if len(v) < frames:
        raise ValueError(f"{path} has {len(v)} frames; the metrics need {frames}")
    return torch.from_numpy(v).permute(3, 0, 1, 2).float() / 255  # (3, t, h, w)


def _read_captions(path: str | os.PathLike | None) -> dict[str, str]:
    if not path:
        return {}
    from vidiff.data.folder import read_manifest

    return {Path(r["path"]).stem: r["caption"] for r in read_manifest(Path(path))}


@one_writer
def evaluate_folders(real_dir: str | os.PathLike, fake_dir: str | os.PathLike, out_dir: str | os.PathLike,
                     captions: str | os.PathLike | None = None, frames: int = 16, video_features: str = "shapes",
                     image_features: str = "shapes", classifier: str = "shapes", clip: str | None = None,
                     progress: bool = True, overwrite: bool = False) -> dict:
    """Score two folders of existing videos. Files with the same name stem in both folders are also compared
    pairwise (PSNR/SSIM); ``captions`` (a CSV/JSONL manifest: path, caption) enables CLIPSIM and, for Shapes
    captions, the analytic scores. A video that does not decode, or has too few frames, is skipped and counted
    (``report["skipped"]``), not fatal."""
    from tqdm.auto import tqdm

    from vidiff.metrics.pixel import MaskedPSNR, MaskedSSIM
    from vidiff.checks import whole
    from vidiff.shapes.scores import ShapesScore

    if not 1 <= whole(frames, "frames") <= 4096:
        raise ValueError(f"frames must be in [1, 4096], got {frames}")
    t0 = time.time()
    listing: list[str] = []
    real_files, fake_files = _list_videos(Path(real_dir), listing), _list_videos(Path(fake_dir), listing)
    if len(real_files) < 2 or len(fake_files) < 2:
        raise ValueError("each folder needs at least 2 videos for the distribution metrics")
    caps = _read_captions(captions)
    captioned = sum(p.stem in caps for p in fake_files)
    if caps and not captioned:  # CLIPSIM and the Shapes scores were left out without a word
        raise ValueError(f"the captions manifest {str(captions)!r} names none of the {len(fake_files)} generated "
                         f"videos (rows match videos by file name without extension: the manifest has "
                         f"{sorted(caps)[0]!r}, ..., the folder {fake_files[0].stem!r}, ...)")
    skipped: dict[str, list[str]] = {}

    def load(p: Path) -> torch.Tensor | None:
        try:
            return _load(p, frames)[None]
        except ValueError as e:
            skipped.setdefault("too_short" if "frames; the metrics need" in str(e) else "unreadable", []).append(str(p))
            return None

    n_min = min(len(real_files), len(fake_files))
    metrics = MetricSuite(video_features, image_features, classifier, clip, kvd_subset=min(1000, n_min))
    psnr, ssim, shapes = MaskedPSNR(), MaskedSSIM(), ShapesScore()
    pairs, shapes_ok, fake_by_stem = 0, True, {}
    for p in tqdm(fake_files, desc="generated features", disable=not progress):
        v = load(p)
        if v is None:
            continue
        fake_by_stem[p.stem] = v
        cap = caps.get(p.stem)
        metrics.update(v, False, [cap] if cap else None)
        if cap and shapes_ok:
            try:
                shapes.update(_to_32(v), [cap])
            except ValueError:
                shapes_ok = False
    n_real = 0
    for p in tqdm(real_files, desc="real features", disable=not progress):
        v = load(p)
        if v is None:
            continue
        n_real += 1
        cap = caps.get(p.stem)
        metrics.update(v, True, [cap] if cap else None)
        f = fake_by_stem.get(p.stem)
        if f is not None and f.shape == v.shape:
            psnr.update(f, v)
            ssim.update(f, v)
            pairs += 1
    if n_real < 2 or len(fake_by_stem) < 2:
        raise ValueError(f"fewer than 2 readable videos in a folder ({n_real} real, {len(fake_by_stem)} generated; "
                         f"skipped: {', '.join(f'{k} {len(v)}' for k, v in skipped.items())})")
    result = metrics.compute()
    if pairs:
        result.update(psnr=psnr.compute()["all"], ssim=ssim.compute()["all"], pairs=pairs)
    report = {"real": str(real_dir), "fake": str(fake_dir), "n_real": n_real, "n_fake": len(fake_by_stem),
              "skipped": {k: {"count": len(v), "files": v[:20]} for k, v in skipped.items()},
              "frames": frames, "extractors": metrics.specs, "metrics": result,
              "shapes": shapes.compute() if shapes_ok and shapes.results else None,
              "seconds": {"total": round(time.time() - t0, 1)},
              "warnings": listing + sample_warnings(n_real, len(fake_by_stem), result, frames), **_machine()}
    if caps and captioned < len(fake_files):
        report["warnings"].append(f"the captions manifest names {captioned} of the {len(fake_files)} generated videos; "
                                  f"CLIPSIM and the Shapes scores are over those {captioned}")
    stack = torch.cat([_to_32(v) for v in fake_by_stem.values()])  # every clip has `frames` frames (_load)
    write_report(Path(out_dir), report, shapes.records if report["shapes"] else [], stack, overwrite=overwrite)
    return report


__all__ = ["evaluate_model", "evaluate_folders", "MetricSuite", "markdown", "SUITES", "DEFAULT_SUITE",
           "DEFAULT_SAMPLES"]
