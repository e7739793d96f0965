"""Lumiere's premise on Shapes: a text-to-image model, inflated, trained temporal-only (issue 22).

    # 1. the image model on single frames: 200 test captions and the held-out colour-shape pairs
    python benchmarks/inflation.py t2i runs/t2i-shapes/final --out benchmarks/results/t2i-shapes.json
    # 2. the cost of a training step: temporal-only against full training of the same inflated model
    python benchmarks/inflation.py cost runs/t2i-shapes/final --out benchmarks/results/inflation-cost.json
    # zero-shot video (Text2Video-Zero) on "moving left/right/up/down" captions
    python benchmarks/inflation.py zeroshot vidiff/weights/t2i-shapes --n 80
    # personalization: an inflated model with styled image models (a fine-tuned folder, a LoRA file) in its place
    python benchmarks/inflation.py personalize runs/stunet-inflated/final runs/t2i-style-outlined/final \
        runs/t2i-lora-outlined/final/pytorch_lora_weights.safetensors --n 48
    # held-out colour-shape pairs, video models side by side
    python benchmarks/inflation.py heldout vidiff/weights/default runs/stunet-inflated/final --n 100
    # 3. accuracy vs. CPU minutes of an inflated run's snapshots (image model minutes included)
    python benchmarks/inflation.py curve runs/stunet-inflated --image-run runs/t2i-shapes --n 48 \
        --out benchmarks/results/inflation-curve.json

Every figure is on the strict reader (vidiff.shapes.strict_reader) unless a key says "lenient".
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

from vidiff.diffusion import SAMPLERS


def _versions() -> dict:
    import diffusers

    import vidiff
    from vidiff.hardware import cpu_name, native_bf16

    # the CPU's model name and whether bf16 runs natively: a figure's minutes depend on both (fp32 on an AVX2-only CPU
    # is 5-6x the bf16 step of an AMX one, docs/inflation.md)
    return {"vidiff": vidiff.__version__, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "cpu": cpu_name(), "native_bf16": native_bf16(), "threads": torch.get_num_threads()}


# ---------------------------------------------------------------- 1. the image model
def held_out_pairs(n: int, first_scene: int = 0):
    """Test-split single-object scenes whose colour-shape pair is held out of training."""
    from vidiff.shapes.scenes import HELD_OUT_COLOR_SHAPE, sample_scene

    out, seed = [], first_scene
    while len(out) < n:
        sc = sample_scene(seed, "test", only_held_out=True)
        if (sc.objects[0].color, sc.objects[0].shape) in HELD_OUT_COLOR_SHAPE:
            out.append(sc)
        seed += 1
    return out


@torch.no_grad()
def score_image_model(pipe, scenes, steps: int, guidance: float | None, seed: int = 0, bf16: bool = False,
                      batch: int = 50) -> dict:
    """One image per caption (noise of seed + i), read by the strict reader."""
    from vidiff.shapes.strict_reader import score_image_strict

    rows = []
    h = pipe.defaults["height"]
    for i in range(0, len(scenes), batch):
        chunk = scenes[i:i + batch]
        latents = torch.cat([torch.randn(1, 3, 1, h, h, generator=torch.Generator().manual_seed(seed + i + j))
                             for j in range(len(chunk))])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = pipe([s.caption for s in chunk], num_frames=1, num_inference_steps=steps, guidance_scale=guidance,
                       latents=latents, progress=False)
        for sc, v in zip(chunk, out.videos.float().numpy()):
            r = score_image_strict(v[:, 0], sc.caption)[0]
            rows.append({"caption": sc.caption, "seed": sc.seed, **r})
    return {"n": len(rows), **{k: float(np.mean([r[k] for r in rows])) for k in ("present", "color", "shape")},
            "records": rows}


def cmd_t2i(args) -> dict:
    from vidiff.pipelines.text_to_video import TextToVideoPipeline
    from vidiff.shapes.suites import suite_scenes

    pipe = TextToVideoPipeline.from_pretrained(args.model, base_only=True)
    test = suite_scenes("test", args.n, first_scene=args.first_scene)
    held = held_out_pairs(args.n_heldout, args.first_scene)
    t0 = time.time()
    result = {"model": str(args.model), "steps": args.steps, "guidance": args.guidance or pipe.defaults["guidance_scale"],
              "first_scene": args.first_scene,
              "test": score_image_model(pipe, test, args.steps, args.guidance, bf16=args.bf16),
              "heldout_color_shape": score_image_model(pipe, held, args.steps, args.guidance, bf16=args.bf16)}
    result["seconds"] = round(time.time() - t0, 1)
    for k in ("test", "heldout_color_shape"):
        print(k, {m: round(result[k][m], 3) for m in ("present", "color", "shape")}, f"n={result[k]['n']}")
    return result


def cmd_heldout(args) -> dict:
    """A video model on test scenes whose colour-shape pair no training clip had (strict reader)."""
    from vidiff.pipelines.text_to_video import TextToVideoPipeline
    from vidiff.shapes.suites import evaluate_pipeline

    out = {}
    for model in args.models:
        pipe = TextToVideoPipeline.from_pretrained(model, base_only=True)
        r = evaluate_pipeline(pipe, "test", scenes=held_out_pairs(args.n, args.first_scene), num_inference_steps=args.steps,
                              guidance_scale=args.guidance, bf16=args.bf16, progress=False)
        out[str(model)] = {k: round(r["strict"][k], 3) for k in ("n", "color", "shape", "motion", "present")}
        print(model, out[str(model)], flush=True)
    return {"first_scene": args.first_scene, "steps": args.steps, "guidance": args.guidance, "models": out}


def directed_scenes(n: int, first_scene: int = 0):
    """Test-split single-object scenes captioned "moving left / right / up / down"."""
    from vidiff.shapes.scenes import sample_scene

    out, seed = [], first_scene
    while len(out) < n:
        sc = sample_scene(seed, "test")
        if sc.objects[0].motion.startswith("moving"):
            out.append(sc)
        seed += 1
    return out


@torch.no_grad()
def cmd_zeroshot(args) -> dict:
    """Text2Video-Zero on an image model: judged direction, shape kept across frames (strict reader)."""
    from vidiff.pipelines.zero_shot import TextToVideoZeroPipeline
    from vidiff.shapes.strict_reader import score_video_strict

    pipe = TextToVideoZeroPipeline.from_pretrained(args.model)
    scenes = directed_scenes(args.n, args.first_scene)
    runs = []
    for t1, t0 in zip(args.t1, args.t0):
        rows = []
        for i in range(0, len(scenes), 16):
            chunk = scenes[i:i + 16]
            latents = torch.cat([torch.randn(1, 3, 1, 32, 32, generator=torch.Generator().manual_seed(j))
                                 for j in range(i, i + len(chunk))])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                out = pipe([s.caption for s in chunk], num_inference_steps=args.steps, guidance_scale=args.guidance,
                           motion_speed=args.speed, t0=t0, t1=t1, latents=latents,
                           generator=torch.Generator().manual_seed(i))
            for sc, v in zip(chunk, out.videos.float().numpy()):
                st = score_video_strict(v, sc.caption)[0]
                rows.append({"caption": sc.caption, "present": st.valid, "color": st.color, "shape": st.shape,
                             "direction": st.direction, "motion": st.motion, "why": st.why})
        run = {"t1": t1, "t0": t0, "speed": args.speed, "n": len(rows),
               **{k: round(float(np.mean([r[k] for r in rows])), 3)
                  for k in ("present", "color", "shape", "direction", "motion")}}
        print(json.dumps(run), flush=True)
        runs.append({**run, "records": rows})
    return {"model": str(args.model), "first_scene": args.first_scene, "steps": args.steps, "guidance": args.guidance,
            "runs": runs}


# ---------------------------------------------------------------- personalization (AnimateDiff's claim)
@torch.no_grad()
def cmd_personalize(args) -> dict:
    """An inflated model with its own image model and with styled ones (a fine-tuned folder or a LoRA file) in its
    place, temporal layers kept: the style read on the frames (hollowness) and motion on the strict and the usual
    reader, on the same scenes and noise; plus each image model alone on single frames (did it learn the style)."""
    from vidiff.evaluation.style import hollowness
    from vidiff.diffusion.schedule import sampler_name
    from vidiff.models.experts import TimestepExperts
    from vidiff.pipelines.text_to_video import TextToVideoPipeline
    from vidiff.shapes.reader import score_video
    from vidiff.shapes.strict_reader import score_video_strict
    from vidiff.shapes.suites import generate_scenes, suite_scenes

    base = TextToVideoPipeline.from_pretrained(args.model, base_only=True)
    scenes = suite_scenes("test", args.n, first_scene=args.first_scene)
    variants = {} if args.skip_own else {"own image model": base}
    if args.layers and args.boundary is not None:
        raise SystemExit("--layers swaps the image layers on every step; drop --boundary")
    for image in args.image_models:
        variants[image] = base.with_image_model(image, args.scale, boundary_ratio=1.0 if args.layers else args.boundary)
        if args.layers:  # only the image layers under these name prefixes from the other model, the rest kept
            own, other = base.unet.image_unet.state_dict(), variants[image].unet.image_unet.state_dict()
            variants[image].unet.image_unet.load_state_dict(
                {k: other[k] if k.startswith(tuple(args.layers)) else v for k, v in own.items()})
    for pipe in variants.values():  # every variant sampled the same way
        if args.guide_every_step:  # the folder's guidance_min_t lifted: classifier-free guidance on the low-noise steps
            pipe.defaults = {**pipe.defaults, "guidance_min_t": None}
        if args.free_init:  # FreeInit's re-initialised noise, against flicker
            pipe.enable_free_init(args.free_init)
        if args.sampler:  # another sampler than the folder's (vidiff generate --sampler)
            pipe.scheduler = pipe.make_scheduler(args.sampler)
        if args.correlated_noise is not None:  # the low-noise steps' fresh noise correlated across frames
            pipe.enable_correlated_step_noise(args.correlated_noise, args.correlated_noise_max_t)
    out = {"model": str(args.model), "n": len(scenes), "first_scene": args.first_scene, "steps": args.steps,
           "guidance": args.guidance, "layers": args.layers, "scale": args.scale, "boundary_ratio": args.boundary,
           "guide_every_step": args.guide_every_step, "free_init": args.free_init,
           "sampler": args.sampler or sampler_name(base.scheduler),
           "correlated_step_noise": next((p.step_noise.as_dict() for p in variants.values() if p.step_noise), None),
           "variants": {}}
    for name, pipe in variants.items():
        rows = []
        for chunk, videos in generate_scenes(pipe, scenes, args.steps, args.guidance, 0, 16, args.bf16):
            for sc, v in zip(chunk, videos.numpy()):
                st = score_video_strict(v, sc.caption)[0]
                o = score_video(v, sc.caption)["objects"][0]
                rows.append({"caption": sc.caption, "hollowness": hollowness(v), "present": st.valid,
                             "color": st.color, "shape": st.shape, "motion": st.motion, "lenient_motion": o.motion})
        summary = {k: round(float(np.nanmean([r[k] for r in rows])), 3)
                   for k in ("hollowness", "present", "color", "shape", "motion", "lenient_motion")}
        if not args.no_stills:
            alone = pipe  # the image model alone, one frame per caption; split at a boundary: on every step
            if isinstance(pipe.unet, TimestepExperts):
                alone = base.with_image_model(name, args.scale, boundary_ratio=1.0)
            image = alone.image_pipeline()
            stills = []
            for chunk, videos in generate_scenes(image, scenes, args.steps, args.guidance, 0, 16, args.bf16,
                                                 num_frames=1):
                stills += [hollowness(v) for v in videos.numpy()]
            summary["image_model_hollowness"] = round(float(np.nanmean(stills)), 3)
        print(name, json.dumps(summary), flush=True)
        out["variants"][name] = {**summary, "records": rows}
    return out


# ---------------------------------------------------------------- 2. cost of a step
def step_cost(model, batch: int, frames: int, size: int, text_dim: int, bf16: bool, reps: int = 4) -> dict:
    import resource
    import tracemalloc

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    x = torch.randn(batch, 3, frames, size, size)
    text, mask = torch.randn(batch, 8, text_dim), torch.ones(batch, 8, dtype=torch.bool)
    times = []
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    for _ in range(reps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x, torch.randint(0, 1000, (batch,)), text, mask)
        out.float().pow(2).mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    tracemalloc.stop()
    return {"seconds_per_step": round(float(np.median(times[1:])), 3),
            "trainable_params_M": round(sum(p.numel() for p in params) / 1e6, 2),
            "peak_rss_growth_MB": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024, 1)}


def cmd_cost(args) -> dict:
    """Step time and memory of temporal-only and full training, each in a fresh process (peak RSS is per
    process)."""
    import subprocess
    import sys

    rows = {}
    for label, arch, conv in (("stunet", "stunet", "temporal"), ("stunet, space-time conv", "stunet", "space-time"),
                              ("motion-module", "motion-module", "temporal")):
        for mode in ("temporal-only", "full"):
            out = subprocess.run([sys.executable, __file__, "_cost_one", str(args.model), arch, mode,
                                  str(args.batch), str(args.frames), "1" if args.bf16 else "0", conv],
                                 capture_output=True, text=True, check=True)
            rows[f"{label} {mode}"] = json.loads(out.stdout.strip().splitlines()[-1])
            print(label, mode, rows[f"{label} {mode}"], flush=True)
    return {"model": str(args.model), "batch": args.batch, "frames": args.frames, "bf16": args.bf16, "rows": rows}


def _cost_one(model_dir: str, arch: str, mode: str, batch: int, frames: int, bf16: bool,
              conv_inflation: str = "temporal") -> None:
    from vidiff.pipelines.inflate import inflate

    pipe = inflate(model_dir, arch, conv_inflation=conv_inflation)
    model = pipe.unet.train()
    if mode == "temporal-only":
        model.freeze_spatial()
    size = pipe.defaults["height"]
    print(json.dumps(step_cost(model, batch, frames, size, model.text_dim, bf16)))


# ---------------------------------------------------------------- 3. the curve
def step_of(p: Path) -> int:
    return int(re.findall(r"\d+", p.name)[0])


def cmd_curve(args) -> dict:
    from safetensors import safe_open
    from safetensors.torch import load_file

    from vidiff.pipelines.text_to_video import TextToVideoPipeline
    from vidiff.shapes.suites import evaluate_pipeline

    run = Path(args.run)
    image_minutes = args.image_minutes or 0.0
    if args.image_run:
        log = [json.loads(x) for x in (Path(args.image_run) / "train_log.jsonl").read_text().splitlines() if x.strip()]
        image_minutes = max(r.get("elapsed_s", 0) for r in log) / 60
    pipe = TextToVideoPipeline.from_pretrained(args.base or run / "final", base_only=True)
    snaps = sorted((f for f in run.glob("snapshots/step-*.safetensors") if not args.only or step_of(f) in args.only),
                   key=step_of)
    if args.final:
        snaps.append(None)
    rows = []
    for snap in snaps:
        if snap is None:
            meta = {"step": "final", "elapsed_s": str(max(json.loads(x)["elapsed_s"] for x in
                                                         (run / "train_log.jsonl").read_text().splitlines()))}
            pipe = TextToVideoPipeline.from_pretrained(run / "final", base_only=True)
        else:
            with safe_open(str(snap), "pt") as f:
                meta = f.metadata()
            pipe.unet.load_state_dict({k: v.float() for k, v in load_file(str(snap)).items()})
        r = evaluate_pipeline(pipe, "test", args.n, args.steps, args.guidance, bf16=args.bf16, progress=False,
                              first_scene=args.first_scene)
        s, lenient = r["strict"], r["summary"]
        video_minutes = float(meta["elapsed_s"]) / 60
        row = {"step": meta["step"], "video_minutes": round(video_minutes, 1),
               "total_minutes": round(image_minutes + video_minutes, 1),
               **{k: round(s[k], 3) for k in ("color", "shape", "motion", "present", "time_reversed")},
               "lenient_shape": round(lenient["shape"], 3), "lenient_motion": round(lenient["motion"], 3),
               "strict_per_motion": {m: round(v, 3) for m, v in s["per_motion"].items()}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"run": str(run), "image_minutes": round(image_minutes, 1), "n": args.n, "first_scene": args.first_scene,
            "steps": args.steps, "guidance": args.guidance, "rows": rows}


def cmd_plot(args) -> dict:
    """Accuracy vs. total CPU minutes: each curve JSON's snapshots as a line (the first solid, the others dashed,
    e.g. the from-scratch default's own snapshots read by `curve`), plus reference points (a curve JSON's last row
    or a shapes_quality.py report on the same scenes, at the minutes given with --ref-minutes) as stars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [json.loads(Path(c).read_text()) for c in args.curves]
    labels = args.labels or ["inflated STUNet"] + [Path(c).stem for c in args.curves[1:]]
    if len(labels) != len(curves):
        raise SystemExit("plot: give one --labels entry per curve")
    fig, ax = plt.subplots(figsize=(6.4, 3.6 if len(curves) == 1 else 4.6), dpi=120)
    keys = (("shape", "tab:blue"), ("motion", "tab:orange"), ("present", "tab:green"))
    for i, (curve, label) in enumerate(zip(curves, labels)):
        xs = [r["total_minutes"] for r in curve["rows"]]
        for key, colour in keys:
            ax.plot(xs, [r[key] for r in curve["rows"]], "o-" if i == 0 else "s--", color=colour,
                    markersize=4 if i else 5, alpha=1.0 if i == 0 else 0.6, label=f"{label}: {key}")
    for ref, minutes in zip(args.ref, args.ref_minutes):
        d = json.loads(Path(ref).read_text())
        last = d["rows"][-1] if "rows" in d else d["runs"][0]["strict"]  # a curve, or a shapes_quality.py report
        for key, colour in keys:
            ax.plot([minutes], [last[key]], "*", color=colour, markersize=12)
    image = curves[0]["image_minutes"]
    if image:
        ax.axvline(image, color="grey", lw=0.8, ls="--")
        ax.text(image, 0.02, " image model done", color="grey", fontsize=8)
    ax.set_xlabel(f"CPU minutes ({args.cpu}, image model included)")
    ax.set_ylabel(f"strict reader, {curves[0]['n']} test scenes")
    ax.set_ylim(0, 1.02)
    ax.set_title(args.title, fontsize=10)
    if len(curves) == 1:
        ax.legend(fontsize=7, loc="lower right")
    else:  # below the axes: inside, it would cover the early part of the curves
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    fig.tight_layout()
    fig.savefig(args.png)
    return {"png": args.png}


def main() -> None:
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "_cost_one":
        a = sys.argv[2:]
        return _cost_one(a[0], a[1], a[2], int(a[3]), int(a[4]), a[5] == "1", *a[6:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("t2i")
    t.add_argument("model")
    t.add_argument("--n", type=int, default=200)
    t.add_argument("--n-heldout", type=int, default=100)
    t.add_argument("--first-scene", type=int, default=0, help="100000: validation scenes (settings are chosen there)")
    t.add_argument("--steps", type=int, default=25)
    t.add_argument("--guidance", type=float, default=None)
    h = sub.add_parser("heldout")
    h.add_argument("models", nargs="+")
    h.add_argument("--n", type=int, default=100)
    h.add_argument("--first-scene", type=int, default=0)
    h.add_argument("--steps", type=int, default=25)
    h.add_argument("--guidance", type=float, default=None)
    z = sub.add_parser("zeroshot")
    z.add_argument("model")
    z.add_argument("--n", type=int, default=80)
    z.add_argument("--first-scene", type=int, default=0)
    z.add_argument("--steps", type=int, default=25)
    z.add_argument("--guidance", type=float, default=None)
    z.add_argument("--speed", type=float, default=0.5, help="pixels per frame")
    z.add_argument("--t1", type=float, nargs="+", default=[0.5])
    z.add_argument("--t0", type=float, nargs="+", default=[0.4])
    c = sub.add_parser("cost")
    c.add_argument("model")
    c.add_argument("--batch", type=int, default=8)
    c.add_argument("--frames", type=int, default=16)
    u = sub.add_parser("curve")
    u.add_argument("run")
    u.add_argument("--image-run", default=None, help="the image model's run (its minutes are added)")
    u.add_argument("--image-minutes", type=float, default=None,
                   help="the image model's minutes, where its run is not on this machine (measured on the same CPU)")
    u.add_argument("--base", default=None, help="a pipeline folder of the run's architecture (default RUN/final)")
    u.add_argument("--final", action="store_true", help="also score RUN/final")
    u.add_argument("--only", type=int, nargs="*", default=None, help="score only the snapshots of these steps")
    u.add_argument("--n", type=int, default=48)
    u.add_argument("--first-scene", type=int, default=0, help="100000: validation scenes (settings are chosen there)")
    u.add_argument("--steps", type=int, default=25)
    u.add_argument("--guidance", type=float, default=None)
    pz = sub.add_parser("personalize")
    pz.add_argument("model", help="a model inflated from an image model")
    pz.add_argument("image_models", nargs="+", help="styled image models: pipeline folders or LoRA files")
    pz.add_argument("--skip-own", action="store_true", help="only the styled image models (the same scenes and noise)")
    pz.add_argument("--no-stills", action="store_true", help="skip the image models alone on single frames")
    pz.add_argument("--layers", nargs="*", default=None,
                    help="take only the image layers whose names start with these (e.g. up_blocks conv_norm_out conv_out)")
    pz.add_argument("--boundary", type=float, default=None, help="the styled image models on the timesteps below this "
                    "fraction of the diffusion time only (with_image_model's boundary_ratio; default: the folder's, "
                    "else every step)")
    pz.add_argument("--scale", type=float, default=1.0, help="with_image_model's scale: W + S (W_style - W) (1: the "
                    "styled image model as it is; above 1 extrapolates)")
    pz.add_argument("--free-init", type=int, default=None, metavar="N", help="FreeInit with N sampling iterations "
                    "(vidiff generate --free-init N)")
    pz.add_argument("--sampler", choices=SAMPLERS, default=None, help="the sampler (default: the model's)")
    pz.add_argument("--correlated-noise", type=float, default=None, metavar="RHO", help="the stochastic sampler's "
                    "noise on the steps below --correlated-noise-max-t correlated across frames by RHO (vidiff "
                    "generate --correlated-noise)")
    pz.add_argument("--correlated-noise-max-t", type=int, default=None, metavar="T")
    pz.add_argument("--guide-every-step", action="store_true", help="guidance on every step (the model's "
                    "guidance_min_t, which leaves the low-noise steps unguided, lifted)")
    pz.add_argument("--n", type=int, default=48)
    pz.add_argument("--first-scene", type=int, default=0)
    pz.add_argument("--steps", type=int, default=25)
    pz.add_argument("--guidance", type=float, default=None)
    pl = sub.add_parser("plot")
    pl.add_argument("curves", nargs="+", help="curve JSONs: the inflated run first, then e.g. the default's")
    pl.add_argument("--labels", nargs="*", default=None)
    pl.add_argument("--cpu", default="2-core EPYC", help="the machine the minutes were measured on")
    pl.add_argument("--title", default="Lumiere's premise on Shapes (stars: the from-scratch default)")
    pl.add_argument("--ref", nargs="*", default=[])
    pl.add_argument("--ref-minutes", type=float, nargs="*", default=[])
    pl.add_argument("--png", default="docs/images/inflation-curve.png")
    for q in (t, h, z, c, u, pz, pl):
        q.add_argument("--bf16", action="store_true")
        q.add_argument("--threads", type=int, default=0)
        q.add_argument("--out", default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"t2i": cmd_t2i, "heldout": cmd_heldout, "zeroshot": cmd_zeroshot, "cost": cmd_cost, "curve": cmd_curve,
              "plot": cmd_plot, "personalize": cmd_personalize}[args.what](args)
    result["versions"] = _versions()
    result["command"] = "python " + " ".join(sys.argv)
    if args.out:  # per-clip records go to a sibling file, the summary to --out (benchmarks/results keeps summaries)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        records = _pop_records(result)
        if records:
            out.with_suffix(".records.json").write_text(json.dumps(records))
        out.write_text(json.dumps(result, indent=1))


def _pop_records(d, path: str = ""):
    """Remove every "records" list from ``d`` (in place); returns them by where they were."""
    found = {}
    items = d.items() if isinstance(d, dict) else enumerate(d) if isinstance(d, list) else ()
    for k, v in list(items):
        if k == "records" and isinstance(d, dict):
            found[path or "."] = d.pop("records")
        elif isinstance(v, (dict, list)):
            found.update(_pop_records(v, f"{path}/{k}"))
    return found


if __name__ == "__main__":
    main()
