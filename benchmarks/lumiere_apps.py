"""Lumiere's applications measured on Shapes (issue 4): SSR seams and memory, conditional generation,
stylization and SDEdit. Every section writes its figures to a JSON file and prints a summary.

    python benchmarks/lumiere_apps.py ssr --model vidiff/weights/ssr --n 16 --out runs/apps-ssr.json
    python benchmarks/lumiere_apps.py ssr-memory --model vidiff/weights/ssr --out runs/apps-ssr-memory.json
    python benchmarks/lumiere_apps.py seams-base --model vidiff/weights/default --n 48 --frames 32 --window 16
    python benchmarks/lumiere_apps.py conditional --model vidiff/weights/conditional --n 100 --out runs/apps-cond.json
    python benchmarks/lumiere_apps.py reach --model vidiff/weights/conditional --n 32
    python benchmarks/lumiere_apps.py style --model vidiff/weights/default --style vidiff/weights/style-outlined
    python benchmarks/lumiere_apps.py edit --model vidiff/weights/default --n 100

Test-split scenes with seeds 0..n-1 (single object), generation seeds fixed, bf16 autocast unless --fp32.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vidiff.shapes.scenes import COLORS, Scene, ShapeObject, ground_truth, render, sample_scene


def scenes(n: int, frames: int = 16, fps: float = 8.0, first: int = 0) -> list[Scene]:
    return [sample_scene(i, "test", frames, fps, num_objects=1) for i in range(first, first + n)]


def videos_of(sc: list[Scene], frames: int, res: int, fps: float = 8.0, style: str = "filled") -> torch.Tensor:
    return torch.from_numpy(np.stack([render(s, frames, fps, res, style) for s in sc]))  # (b, 3, t, h, w) in [0, 1]


def psnr(a: torch.Tensor, b: torch.Tensor, known: torch.Tensor | None = None) -> float:
    """The metric suite's PSNR (per frame, averaged; ``vidiff.metrics.MaskedPSNR``) on the pixels where
    ``known == 1`` (b, 1, t, h, w), or on whole frames."""
    from vidiff.metrics.pixel import MaskedPSNR

    metric = MaskedPSNR()
    metric.update(a, b, None if known is None else 1 - known)  # the metric's mask marks the region to fill
    return metric.compute()["all" if known is None else "unmasked"]


def autocast(args):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.fp32)


def batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield i, items[i:i + size]


def generate(args, items: list, call) -> torch.Tensor:
    """``call(chunk, rows, generator).videos`` over batches of ``items`` under the run's autocast, concatenated;
    the batch starting at item ``i`` draws its noise from seed ``args.seed + i``."""
    outs = []
    for i, chunk in batches(items, args.batch):
        with autocast(args):
            outs.append(call(chunk, slice(i, i + len(chunk)), torch.Generator().manual_seed(args.seed + i)).videos)
    return torch.cat(outs)


def read(videos: torch.Tensor, captions: list[str]) -> list[dict]:
    from vidiff.shapes.reader import score_video
    return [score_video(v.numpy(), c) for v, c in zip(videos, captions)]


def summary(results: list[dict]) -> dict:
    from vidiff.shapes.reader import summarize
    s = summarize(results)
    return {k: round(v, 4) for k, v in s.items() if k in ("n", "color", "shape", "motion", "present_all")}


# ---------------------------------------------------------------------- SSR: quality and seams
def seam_stats(out: torch.Tensor, gt: torch.Tensor, boundaries: list[int]) -> dict:
    """Per-frame error, and the temporal-difference error of frame pairs (t-1, t) at window boundaries t vs
    inside windows: with independent windows the frame change across a boundary is wrong."""
    err = (out - gt).pow(2).mean((1, 3, 4))  # (b, t)
    tde = ((out[:, :, 1:] - out[:, :, :-1]) - (gt[:, :, 1:] - gt[:, :, :-1])).abs().mean((1, 3, 4))  # (b, t-1)
    jump = (err[:, 1:] - err[:, :-1]).abs()  # (b, t-1): pair (t-1, t) at index t-1
    at = torch.zeros(tde.shape[1], dtype=torch.bool)
    for t in boundaries:
        at[t - 1] = True
    seams = bool(at.any())  # a clip in one window has no boundary: None, not NaN (the report is strict JSON)
    return {"tde_boundary": float(tde[:, at].mean()) if seams else None, "tde_inside": float(tde[:, ~at].mean()),
            "tde_excess": float(tde[:, at].mean() / tde[:, ~at].mean()) if seams else None,
            "error_jump_boundary": float(jump[:, at].mean()) if seams else None,
            "error_jump_inside": float(jump[:, ~at].mean()),
            "psnr": float((10 * torch.log10(1 / err.clamp(min=1e-10))).mean())}


def cmd_ssr(args) -> dict:
    from vidiff.conditioning.resolution import upsample_video
    from vidiff.pipelines.super_resolution import SuperResolutionPipeline

    pipe = SuperResolutionPipeline.from_pretrained(args.model)
    H = pipe.defaults["height"]
    window = args.window or pipe.defaults.get("window", 8)
    sc = scenes(args.n, args.frames, first=args.first_scene)
    lo, gt = videos_of(sc, args.frames, args.lowres), videos_of(sc, args.frames, H)
    boundaries = list(range(window, args.frames, window))  # where non-overlapping windows meet
    report = {"model": args.model, "n": args.n, "frames": args.frames, "lowres": args.lowres, "size": H,
              "window": window, "boundaries": boundaries, "steps": args.ssr_steps or pipe.defaults["num_inference_steps"],
              "noise_level": args.noise_level, "sampler": args.sampler, "first_scene": args.first_scene}
    bilinear = (upsample_video(lo * 2 - 1, H, H) + 1) / 2
    report["bilinear"] = seam_stats(bilinear.clamp(0, 1), gt, boundaries)
    for name, stride in (("overlap", window // 2), ("no_overlap", window)):
        t0 = time.time()
        out = generate(args, sc, lambda chunk, rows, g: pipe([s.caption for s in chunk], lo[rows], window=window,
                                                             stride=stride, noise_level=args.noise_level,
                                                             sampler=args.sampler, num_inference_steps=args.ssr_steps,
                                                             generator=g))
        report[name] = {"stride": stride, "seconds": round(time.time() - t0, 1), **seam_stats(out, gt, boundaries),
                        "reader": summary(read(out, [s.caption for s in sc]))}
    return report


def boundary_excess(videos: torch.Tensor, captions: list[str], boundaries: list[int]) -> dict:
    """Seams without a ground truth: the frame-to-frame change (mean absolute pixel change, and the move of
    the caption's object's read centre, canvas units) at the pairs (t-1, t) where windows meet vs. inside."""
    from vidiff.shapes.reader import COLOR_NAMES, measure, parse_caption, segment

    change = (videos[:, :, 1:] - videos[:, :, :-1]).abs().mean((1, 3, 4))  # (b, t - 1)
    at = torch.zeros(change.shape[1], dtype=torch.bool)
    at[[t - 1 for t in boundaries]] = True
    moves_at, moves_in, profile = [], [], [[] for _ in range(change.shape[1])]
    for v, cap in zip(videos.numpy(), captions):
        frames = measure(segment(v), COLOR_NAMES.index(parse_caption(cap)[0]["color"]))
        for t in range(1, len(frames)):
            if frames[t].present and frames[t - 1].present:
                m = float(np.hypot(frames[t].cx - frames[t - 1].cx, frames[t].cy - frames[t - 1].cy))
                (moves_at if at[t - 1] else moves_in).append(m)
                profile[t - 1].append(m)
    return {"move_profile": [round(float(np.mean(m)), 4) if m else None for m in profile],
            "change_boundary": float(change[:, at].mean()), "change_inside": float(change[:, ~at].mean()),
            "change_excess": round(float(change[:, at].mean() / change[:, ~at].mean()), 3),
            "move_boundary": float(np.mean(moves_at)), "move_inside": float(np.mean(moves_in)),
            "move_excess": round(float(np.mean(moves_at) / np.mean(moves_in)), 3)}


def cmd_seams_base(args) -> dict:
    """MultiDiffusion along time where windows disagree: the base model over a clip longer than its own 16
    frames, as overlapping windows fused at every step vs. independent windows (stride = window)."""
    from vidiff.diffusion.multidiffusion import temporal_windows
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    pipe = TextToVideoPipeline.from_pretrained(args.model, base_only=True)
    window, frames, res = args.window or pipe.defaults["num_frames"], args.frames, pipe.defaults["height"]
    sc = [sample_scene(i, "test", frames, 8.0, num_objects=1) for i in range(args.n)]
    caps = [s.caption for s in sc]
    boundaries = list(range(window, frames, window))  # where independent windows meet
    report = {"model": args.model, "n": args.n, "frames": frames, "window": window, "boundaries": boundaries,
              "real": boundary_excess(videos_of(sc, frames, res), caps, boundaries)}
    print("real", json.dumps(report["real"]), flush=True)
    # the model's own clips (one window): is there a jump at a window's middle, where STUNet's levels split time?
    own = generate(args, caps, lambda chunk, rows, g: pipe(chunk, num_frames=window, generator=g))
    report["one_window"] = boundary_excess(own, caps, [window // 2])
    print("one_window", json.dumps(report["one_window"]), flush=True)
    configs = [("no_overlap", window, "uniform")] + [
        (f"stride_{stride}_{weighting}", stride, weighting) for stride in (args.strides or [window // 2])
        for weighting in args.weightings]
    for name, stride, weighting in configs:
        t0 = time.time()
        out = generate(args, caps, lambda chunk, rows, g: pipe(chunk, num_frames=frames, window=window, stride=stride,
                                                               window_weighting=weighting, generator=g))
        spans = temporal_windows(frames, window, stride)
        edges = sorted({e for _, e in spans if e < frames} | {s for s, _ in spans if s > 0})
        report[name] = {"stride": stride, "weighting": weighting, "seconds": round(time.time() - t0, 1),
                        **boundary_excess(out, caps, boundaries),
                        "at_own_window_edges": boundary_excess(out, caps, edges) if edges != boundaries else None,
                        "reader": summary(read(out, caps))}
        print(name, json.dumps(report[name]), flush=True)
    return report


def cmd_ssr_memory(args) -> dict:
    """Peak RSS of the SSR in a fresh process per clip length: flat for a fixed window."""
    rows = []
    for frames in args.lengths:
        code = ("import resource, sys, time, torch; from vidiff.pipelines.super_resolution import SuperResolutionPipeline;"
                f"p = SuperResolutionPipeline.from_pretrained({args.model!r});"
                f"x = torch.rand(1, 3, {frames}, {args.lowres}, {args.lowres});"
                "t0 = time.time();"
                f"ctx = torch.autocast('cpu', dtype=torch.bfloat16, enabled={not args.fp32});\n"
                f"with ctx: v = p('a red circle moving left', x, window={args.window or 8}, stride={args.stride or 4}, "
                f"num_inference_steps={args.steps}).videos\n"
                "print(v.shape[2], round(time.time() - t0, 2), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(r.stderr)
        f, secs, gb = r.stdout.split()
        rows.append({"frames": int(f), "seconds": float(secs), "peak_rss_gb": round(float(gb), 3)})
        print(rows[-1], flush=True)
    return {"model": args.model, "window": args.window or 8, "stride": args.stride or 4, "steps": args.steps,
            "lowres": args.lowres, "rows": rows}


# ---------------------------------------------------------------------- conditional generation
def trajectory_box(video: torch.Tensor, margin: float = 0.05) -> torch.Tensor:
    """(1, h, w) box covering the object of a rendered clip (3, t, h, w) over all its frames: the region to
    fill or animate."""
    res = video.shape[-1]
    drawn = (video.amax((0, 1)) > 0.05).numpy()  # (h, w)
    ys, xs = np.nonzero(drawn)
    m = int(round(margin * res))
    box = torch.zeros(1, res, res)
    box[:, max(0, ys.min() - m): ys.max() + m + 1, max(0, xs.min() - m): xs.max() + m + 1] = 1
    return box


def jump_ratio(videos: torch.Tensor) -> float:
    """Mean change from frame 0 to 1 over the mean change between later neighbouring frames, (b, 3, t, h, w)."""
    d = (videos[:, :, 1:] - videos[:, :, :-1]).abs().mean((0, 1, 3, 4))  # (t - 1,)
    return round(float(d[0] / d[1:].mean()), 3)


def cmd_conditional(args) -> dict:
    from vidiff.conditioning.masks import border_region, cinemagraph_mask, first_frame_mask, inpaint_mask
    from vidiff.pipelines.conditional import ConditionalVideoPipeline

    pipe = ConditionalVideoPipeline.from_pretrained(args.model, base_only=True)
    res, t = pipe.defaults["height"], pipe.defaults["num_frames"]
    args.cond_guidance = pipe.condition_guidance(args.cond_guidance)
    sc = scenes(args.n, t)
    gt = videos_of(sc, t, res)
    caps = [s.caption for s in sc]
    boxes = torch.stack([trajectory_box(v) for v in gt])  # (n, 1, h, w)
    tasks = {
        # name: (conditioning video, known mask (n, 1, t, h, w))
        "image_to_video": (gt, first_frame_mask(args.n, t, res, res)),
        "inpaint": (gt, inpaint_mask(boxes, t)),  # regenerate the object inside its trajectory box
        "outpaint": (gt, inpaint_mask(border_region(args.n, res, res, args.border), t)),
        "cinemagraph": (gt[:, :, :1].expand(-1, -1, t, -1, -1), cinemagraph_mask(boxes, t)),
        "text_only": (gt, torch.zeros(args.n, 1, t, res, res)),
    }
    tasks = {k: v for k, v in tasks.items() if not args.tasks or k in args.tasks}
    report = {"model": args.model, "n": args.n, "border": args.border, "keep_known": not args.no_keep_known,
              "condition_guidance_scale": args.cond_guidance}
    for name, (video, known) in tasks.items():
        t0 = time.time()
        out = generate(args, caps, lambda chunk, rows, g: pipe.generate(
            chunk, video[rows], known[rows], generator=g, keep_known=not args.no_keep_known,
            condition_guidance_scale=args.cond_guidance))
        r = {"seconds": round(time.time() - t0, 1), "reader": summary(read(out, caps))}
        if name == "image_to_video":
            r["psnr_first_frame"] = psnr(out[:, :, :1], gt[:, :, :1])
            r["psnr_later_frames"] = psnr(out[:, :, 1:], gt[:, :, 1:])
            # a pasted-in first frame that the model did not continue shows as a jump between frames 0 and 1
            r["jump_ratio"], r["jump_ratio_real"] = jump_ratio(out), jump_ratio(gt)
        elif name in ("inpaint", "outpaint"):
            r["psnr_unmasked"] = psnr(out, gt, known)
            r["psnr_masked"] = psnr(out, gt, 1 - known)
        elif name == "cinemagraph":
            outside = known[:, :, 1:]  # later frames, outside the region
            still = (out[:, :, 1:] - out[:, :, :1]).abs()
            r["mean_change_outside"] = float((still * outside).sum() / (outside.sum() * 3))
            r["mean_change_inside"] = float((still * (1 - outside)).sum() / ((1 - outside).sum() * 3))
            r["psnr_outside_vs_image"] = psnr(out[:, :, 1:], video[:, :, 1:], outside)
            r["psnr_first_frame"] = psnr(out[:, :, :1], gt[:, :, :1])
        report[name] = r
        print(name, json.dumps(r), flush=True)
    return report


@torch.no_grad()
def cmd_reach(args) -> dict:
    """How far a given first frame reaches the model: PSNR of its one-step x0 prediction of the given frame
    (and of the later frames) at each noise level, with the conditioning and with none (M = 0). At pure noise
    the noisy input says nothing, so a model that uses C predicts the given frame from C alone."""
    from vidiff.conditioning.masks import condition_input, first_frame_mask
    from vidiff.diffusion.schedule import make_scheduler, predicted_x0
    from vidiff.pipelines.conditional import ConditionalVideoPipeline

    pipe = ConditionalVideoPipeline.from_pretrained(args.model, base_only=True)
    res, t = pipe.defaults["height"], pipe.defaults["num_frames"]
    sc = scenes(args.n, t)
    x0 = videos_of(sc, t, res) * 2 - 1
    text, mask = pipe.text_encoder.encode([s.caption for s in sc])
    scheduler = make_scheduler(pipe.diffusion, "ddpm")  # the trainer's: add_noise on the training schedule
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(args.seed))
    conds = {"given": condition_input(x0, first_frame_mask(args.n, t, res, res)),
             "none": torch.zeros(args.n, 4, t, res, res)}
    gt = (x0 + 1) / 2
    report = {"model": args.model, "n": args.n}
    for step in args.noise_steps:
        x_t = scheduler.add_noise(x0, noise, torch.tensor([step]))
        row = {}
        for name, cond in conds.items():
            outs = []
            for i in range(0, args.n, args.batch):
                rows = slice(i, i + args.batch)
                with autocast(args):
                    pred = pipe.unet(x_t[rows], torch.full((len(x0[rows]),), step), text[rows], mask[rows], cond[rows])
                outs.append(predicted_x0(pred.float(), x_t[rows], torch.tensor(step), scheduler.alphas_cumprod,
                                         pipe.diffusion.prediction_type))
            out = (torch.cat(outs).clamp(-1, 1) + 1) / 2
            row[name] = {"first_frame_db": psnr(out[:, :, :1], gt[:, :, :1]), "later_db": psnr(out[:, :, 1:], gt[:, :, 1:])}
        report[str(step)] = row
        print(step, json.dumps(row), flush=True)
    return report


# ---------------------------------------------------------------------- stylization
def cmd_style(args) -> dict:
    from vidiff.evaluation.style import hollowness
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    base = TextToVideoPipeline.from_pretrained(args.model, base_only=True)
    sc = scenes(args.n, base.defaults["num_frames"])
    caps = [s.caption for s in sc]
    report = {"model": args.model, "style": args.style, "n": args.n, "alphas": {}}
    # the reference: the same scenes rendered in the style the fine-tune learns, read the same way
    real = videos_of(sc, base.defaults["num_frames"], base.defaults["height"], style="outlined")
    report["real_outlined"] = {"hollowness": float(np.nanmean([hollowness(v.numpy()) for v in real])),
                               "reader": summary(read(real, caps))}
    print("real outlined", json.dumps(report["real_outlined"]), flush=True)
    for alpha in args.alphas:
        pipe = base.with_style(args.style, alpha)
        out = generate(args, caps, lambda chunk, rows, g: pipe(chunk, generator=g))
        r = {"hollowness": float(np.nanmean([hollowness(v.numpy()) for v in out])), "reader": summary(read(out, caps))}
        report["alphas"][str(alpha)] = r
        print(alpha, json.dumps(r), flush=True)
    return report


# ---------------------------------------------------------------------- SDEdit
def recolor(scene: Scene, k: int) -> Scene:
    o = scene.objects[0]
    colors = [c for c in COLORS if c != o.color]
    new = ShapeObject(colors[k % len(colors)], o.shape, o.motion, o.speed, o.x0, o.y0, o.phase)
    return Scene((new,), scene.seed, scene.split)


def track_error(video: torch.Tensor, scene: Scene, color: str) -> float:
    """Mean distance (canvas units) between the read centroid of ``color`` and the scene's true centre."""
    from vidiff.shapes.reader import COLOR_NAMES, measure, segment

    v = video.numpy()
    frames = measure(segment(v), COLOR_NAMES.index(color))
    c = ground_truth(scene, v.shape[1])["centre"][0]
    d = [np.hypot(f.cx - x, f.cy - y) for f, (x, y) in zip(frames, c) if f.present]
    return float(np.mean(d)) if d else float("nan")


def cmd_edit(args) -> dict:
    from vidiff.pipelines.edit import VideoEditPipeline

    pipe = VideoEditPipeline.from_pretrained(args.model, base_only=True)
    t, res = pipe.defaults["num_frames"], pipe.defaults["height"]
    sc = scenes(args.n, t)
    edited = [recolor(s, i) for i, s in enumerate(sc)]
    gt = videos_of(sc, t, res)
    caps = [s.caption for s in edited]
    report = {"model": args.model, "n": args.n, "strengths": {}}
    for strength in args.strengths:
        out = generate(args, caps, lambda chunk, rows, g: pipe(chunk, gt[rows], strength=strength, generator=g))
        new = read(out, caps)
        r = {"new_caption": summary(new),
             "track_error_new_color": float(np.nanmean([track_error(v, s, e.objects[0].color)
                                                       for v, s, e in zip(out, sc, edited)])),
             "psnr_to_input": psnr(out, gt)}
        report["strengths"][str(strength)] = r
        print(strength, json.dumps(r), flush=True)
    return report


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("section", choices=["ssr", "ssr-memory", "seams-base", "conditional", "reach", "style", "edit"])
    p.add_argument("--model", required=True)
    p.add_argument("--style", default="vidiff/weights/style-outlined")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--frames", type=int, default=32, help="ssr: clip length")
    p.add_argument("--lowres", type=int, default=32)
    p.add_argument("--window", type=int, default=None)
    p.add_argument("--stride", type=int, default=None)
    p.add_argument("--noise-level", type=float, default=None, help="ssr: std of the noise added to the low-res clip")
    p.add_argument("--strides", type=int, nargs="+", default=None, help="seams-base: overlapping strides to try")
    p.add_argument("--weightings", nargs="+", choices=["uniform", "triangle"], default=["uniform"],
                   help="seams-base: window weightings to try")
    p.add_argument("--steps", type=int, default=10, help="ssr-memory: denoising steps")
    p.add_argument("--sampler", default="dpm++", help="ssr: dpm++ (default), ddim or ddpm (ancestral: fresh noise "
                   "in every window at every step)")
    p.add_argument("--ssr-steps", type=int, default=None, help="ssr: denoising steps (default: the model's)")
    p.add_argument("--lengths", type=int, nargs="+", default=[16, 32, 64, 128])
    p.add_argument("--border", type=int, default=8)
    p.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    p.add_argument("--strengths", type=float, nargs="+", default=[0.4, 0.6, 0.8])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--first-scene", type=int, default=0, help="ssr: 100000 for the validation scenes settings are "
                   "chosen on")
    p.add_argument("--fp32", action="store_true")
    p.add_argument("--cond-guidance", type=float, default=None,
                   help="conditional: guidance scale on the conditioning video (1: none; default: the model's)")
    p.add_argument("--no-keep-known", action="store_true", help="conditional: leave the given pixels to the model")
    p.add_argument("--tasks", nargs="+", choices=["image_to_video", "inpaint", "outpaint", "cinemagraph", "text_only"],
                   default=None, help="conditional: only these tasks (default: all)")
    p.add_argument("--noise-steps", type=int, nargs="+", default=[999, 900, 750, 500, 250],
                   help="reach: training timesteps at which to read the one-step prediction")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    t0 = time.time()
    report = {"ssr": cmd_ssr, "ssr-memory": cmd_ssr_memory, "seams-base": cmd_seams_base,
              "conditional": cmd_conditional, "reach": cmd_reach, "style": cmd_style, "edit": cmd_edit}[args.section](args)
    report.update(seconds=round(time.time() - t0, 1), threads=torch.get_num_threads(), load_avg=os.getloadavg()[0])
    text = json.dumps(report, indent=1)
    print(text if args.section == "ssr" else "", flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
