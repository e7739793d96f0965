"""Judged quality against the number of sampling steps, for vidiff's DPM++ step spacing and diffusers' and for
DPM++ in its ODE and SDE forms (issue 20, a default clip in fewer steps). Each row: one spacing, step count and
sampler, the same scenes and starting noise.

    python benchmarks/sampling_steps.py --runs lu:25 vidiff:14 vidiff:14:sde vidiff:25:sde --first-scene 100000 \\
        --bf16 --out benchmarks/results/sampling-steps-val.json

``vidiff``: steps uniform in log-SNR above the model's ``logsnr_min`` (-8.5 if it sets none;
vidiff.diffusion.schedule.logsnr_timesteps), the embedded default's spacing since 2026-11-30;
``lu``: diffusers' ``use_lu_lambdas`` (uniform in log-SNR from t = 999), the spacing before 2026-11-30.
A third field ``sde`` samples with DPM-Solver++(2M) SDE (``dpm++-sde``) instead of the ODE solver (``ode``);
``diffusers:STEPS:ddpm`` is ancestral DDPM sampling (fresh noise of the full posterior variance at every step) on
diffusers' own step spacing. A fourth field sets where guidance stops (the folder's ``guidance_min_t``): a timestep
(guidance on the steps with t >= it, the conditional model alone below) or ``all`` (every step guided); without it
the folder's own.

    python benchmarks/sampling_steps.py --runs vidiff:20:sde:all vidiff:20:sde:100 vidiff:20:sde:250 \
        vidiff:20:sde:400 vidiff:20:sde:700 --first-scene 100000 --bf16 --out benchmarks/results/guidance-min-t-val.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

KEYS = ("color", "shape", "motion", "present", "time_reversed")


def scheduler_for(pipe, spacing: str, form: str = "ode"):
    from vidiff.diffusion.schedule import LOGSNR_MIN, make_scheduler

    if form not in ("ode", "sde", "ddpm"):
        raise ValueError(f"unknown sampler form {form!r}; allowed: ode, sde, ddpm")
    if (form == "ddpm") != (spacing == "diffusers"):
        raise ValueError("ddpm runs on diffusers' spacing only, and diffusers' spacing with ddpm only: diffusers:STEPS:ddpm")
    if form == "ddpm":
        return make_scheduler(pipe.diffusion, "ddpm")
    sampler = "dpm++-sde" if form == "sde" else "dpm++"
    if spacing == "vidiff":
        lm = pipe.defaults["logsnr_min"]
        return make_scheduler(pipe.diffusion, sampler, logsnr_min=LOGSNR_MIN if lm is None else lm)
    if spacing == "lu":  # diffusers' use_lu_lambdas
        return make_scheduler(pipe.diffusion, sampler, logsnr_min=None)
    raise ValueError(f"unknown spacing {spacing!r}; allowed: vidiff (the model's logsnr_min, else {LOGSNR_MIN}), lu")


def main() -> None:
    from shapes_quality import apply_free_init, common_arguments  # (this folder is on the path as a script)

    p = common_arguments(argparse.ArgumentParser(), first_scene=100000)
    p.add_argument("--suite", default="test")
    p.add_argument("--runs", nargs="+", default=["lu:25", "vidiff:14"], help="SPACING:STEPS[:ode|sde|ddpm], each a row")
    p.add_argument("--guidance", type=float, default=None, help="default: the model's")
    p.add_argument("--guidance-rescale", type=float, default=None, help="rescaled guidance (diffusers' "
                   "guidance_rescale) on every row; default: the model's (0)")
    p.add_argument("--interpolate", nargs=2, metavar=("FOLDER", "ALPHA"), default=None,
                   help="read the model with U-Net weights (1 - ALPHA) W + ALPHA W_FOLDER, FOLDER a fine-tune of it "
                   "(WiSE-FT, Wortsman et al. 2022: the weights between a model and its fine-tune)")
    args = p.parse_args()

    import torch

    from vidiff.diffusion.sampling import timesteps_for
    from vidiff.pipelines.text_to_video import TextToVideoPipeline
    from vidiff.shapes.suites import evaluate_pipeline

    pipe = TextToVideoPipeline.from_pretrained(args.model, base_only=True)
    if args.interpolate:
        from vidiff.models.surgery import interpolate_weights
        from vidiff.pipelines.folder import load_unet
        from vidiff.registry import resolve_model

        other = load_unet(resolve_model(args.interpolate[0]) / "unet", pipe.dtype)
        pipe.unet = interpolate_weights(pipe.unet, other, float(args.interpolate[1])).to(pipe.device)
    guidance = pipe.settings(guidance_scale=args.guidance)["guidance_scale"]  # None: the folder's
    if args.guidance_rescale is not None:  # every call of the suite takes the folder's default
        pipe.defaults["guidance_rescale"] = pipe.settings(guidance_rescale=args.guidance_rescale)["guidance_rescale"]
    free_init = apply_free_init(pipe, args.free_init)
    report = {"model": args.model, "interpolate": args.interpolate, "free_init": free_init, "n": args.n, "suite": args.suite, "first_scene": args.first_scene, "seed": args.seed,
              "bf16": args.bf16, "guidance": guidance,
              "guidance_rescale": pipe.defaults["guidance_rescale"], "threads": torch.get_num_threads(),
              "load_avg": os.getloadavg()[0], "rows": []}
    own_cut = pipe.defaults.get("guidance_min_t")
    for run in args.runs:
        parts = run.split(":") + [""] * 3
        spacing, steps, form, cut = parts[0], parts[1], parts[2] or "ode", parts[3]
        if not steps.isdigit() or not (cut in ("", "all") or cut.isdigit()):
            raise ValueError(f"--runs takes SPACING:STEPS[:ode|sde|ddpm[:T|all]] (e.g. vidiff:14:sde), got {run!r}")
        steps = int(steps)
        pipe.defaults["guidance_min_t"] = own_cut if cut == "" else (None if cut == "all" else int(cut))
        pipe.scheduler = scheduler_for(pipe, spacing, form)
        ts = timesteps_for(pipe.make_scheduler(), steps)  # the steps the pipeline will take
        t0 = time.time()
        r = evaluate_pipeline(pipe, args.suite, args.n, steps, guidance, args.seed, bf16=args.bf16,
                              first_scene=args.first_scene, progress=False)
        st = r["strict"]
        row = {"spacing": spacing, "steps": steps, "sampler": form, "guidance_min_t": pipe.defaults["guidance_min_t"],
               "timesteps": ts.tolist(),
               "seconds": round(time.time() - t0, 1), "strict": {k: st[k] for k in KEYS},
               "floor": st["floor"]["motion"], "strict_per_motion": st["per_motion"],
               "lenient": {k: r["summary"][k] for k in ("color", "shape", "motion", "present_all")}}
        report["rows"].append(row)
        print(f"{spacing:7s} {steps:3d} steps {form} {cut} " + " ".join(f"{k}={st[k]:.3f}" for k in KEYS)
              + f" ({row['seconds']} s)", flush=True)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
