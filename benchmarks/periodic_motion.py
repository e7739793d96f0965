"""The periodic motions alone (bouncing left and right, bouncing up and down, circling), the default's gap on the
strict reader (issue 20 item 4): a model's strict motion on the periodic scenes among the first ``--n`` validation
scenes, at one or more guidance settings, why each miss failed, and how many bounces jump (move more than a third of the
canvas between two frames, which a true bounce never does). A screen for ideas before a full
validation read (benchmarks/sampling_steps.py), four times cheaper because it skips the motions already right.

    python benchmarks/periodic_motion.py --n 400 --runs 3 2 1.5 3@800 5@800 --out benchmarks/results/periodic-guidance-val.json
    python benchmarks/periodic_motion.py --sdedit 0.5 0.7 0.85 0.9 0.95 1 --out benchmarks/results/periodic-sdedit-val.json
    python benchmarks/periodic_motion.py --runs 3 --skip-guidance attn:1 --out benchmarks/results/periodic-stg-attn1-val.json

``--sdedit S ...``: each row starts from the scenes' true renders noised to strength ``S`` (SDEdit: the steps at
t <= S * T of the model's schedule) at the model's guidance, instead of from noise: the noise level above which the
model no longer keeps a true periodic path is where that path is decided. With ``--runs`` given too, a row per
strength and run (``--sdedit 0.9 --runs 3 1 0``: guided, the conditional model alone, the unconditional model).
Every row also counts the quick bounces' steady moves (not jumps) by sign along their axis: a sawtooth that ran
towards one word of the caption would show it.

A run is ``SCALE`` (classifier-free guidance at that scale on every step) or ``SCALE@TMAX``: guidance only on the
steps with t <= TMAX and the conditional model alone above (the limited guidance interval of Kynkaenniemi et al.,
2024, which leaves the noisiest steps, where a clip's path is decided, unguided); ``SCALE@TMAX/HIGH``: guidance
``HIGH`` above TMAX instead (e.g. ``3@800/6``: stronger guidance only where the path is decided).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import time
from pathlib import Path

PERIODIC = ("bouncing left and right", "bouncing up and down", "circling")


def parse_run(run: str) -> tuple[float, float | None, float]:
    """``(scale, tmax, scale above tmax)``."""
    scale, _, rest = run.partition("@")
    tmax, _, high = rest.partition("/")
    try:
        return float(scale), (float(tmax) if tmax else None), (float(high) if high else 1.0)
    except ValueError:
        raise ValueError(f"a run is SCALE, SCALE@TMAX or SCALE@TMAX/HIGH (e.g. 3, 3@800, 3@800/6), got {run!r}") from None


def interval_guidance(pipe, tmax: float | None, high: float = 1.0):
    """``pipe.denoiser`` with its guidance at t <= ``tmax`` and ``high`` above (1: the conditional model alone; None
    ``tmax``: every step, the pipeline's own)."""
    own = type(pipe).denoiser.__get__(pipe)
    if tmax is None:
        return own

    def denoiser(prompts, guidance, negative_prompt="", cond=None, cond_scale=1.0, embeds=None):  # by captions
        guided = own(prompts, guidance, negative_prompt, cond, cond_scale)(None)
        plain = own(prompts, high, negative_prompt, cond, cond_scale)(None)  # 1: the conditional model alone

        def fn(x, t):
            return guided(x, t) if float(t.flatten()[0]) <= tmax else plain(x, t)

        return lambda frames=None: fn

    return denoiser


SKIPPED = {"attn": ("TemporalAttention",), "conv": ("TemporalConvBlock",), "all": ("TemporalAttention", "TemporalConvBlock")}


def skip_guidance(pipe, kind: str, strength: float):
    """``pipe.denoiser`` with spatiotemporal skip guidance (STG, Hyung et al. 2024) beside classifier-free guidance:
    eps = eps(null) + s (eps(text) - eps(null)) + ``strength`` (eps(text) - eps_weak(text)), where the weak model is
    the same U-Net with its residual temporal layers of ``kind`` skipped (forward hooks return their input: temporal
    attention, temporal convs or both), a model that does not hold a clip together in time. One more U-Net pass a
    step."""
    import contextlib

    import torch

    from vidiff.diffusion.sampling import _match_null
    from vidiff.models import blocks

    if kind not in SKIPPED:
        raise ValueError(f"--skip-guidance takes KIND:STRENGTH with KIND one of {', '.join(SKIPPED)}, got {kind!r}")
    kinds = tuple(getattr(blocks, name) for name in SKIPPED[kind])

    @contextlib.contextmanager
    def skipped(model):
        hooks = [m.register_forward_hook(lambda mod, inp, out: inp[0]) for m in model.modules() if isinstance(m, kinds)]
        try:
            yield
        finally:
            for h in hooks:
                h.remove()

    def denoiser(prompts, guidance, negative_prompt="", cond=None, cond_scale=1.0, embeds=None):  # by captions
        text, mask = pipe.text_encoder.encode(prompts)
        null, null_mask = pipe.text_encoder.encode([negative_prompt])
        text, mask, null, null_mask = _match_null(text.to(pipe.device, pipe.dtype), mask.to(pipe.device),
                                                  null.to(pipe.device, pipe.dtype), null_mask.to(pipe.device))
        both, both_mask = torch.cat([null, text]), torch.cat([null_mask, mask])

        def fn(x, t):
            uncond, cond_ = pipe.unet(torch.cat([x, x]), torch.cat([t, t]) if t.dim() else t, both, both_mask,
                                      None).float().chunk(2)
            with skipped(pipe.unet):
                weak = pipe.unet(x, t, text, mask, None).float()
            return uncond + guidance * (cond_ - uncond) + strength * (cond_ - weak)

        return lambda frames=None: fn

    return denoiser


JUMP = 1 / 3  # of the canvas between two frames: a true quick bounce moves at most 0.7 / 3, a normal one 0.7 / 8


def axis_moves(video, caption: str):
    """The moves of a one-object clip's object between consecutive frames where it is seen, along the caption's
    bouncing axis (+: right or down), as fractions of the canvas."""
    import numpy as np

    from vidiff.shapes.reader import COLOR_NAMES, as_unit_cthw, parse_caption, segment
    from vidiff.shapes.strict_reader import _track

    obj = parse_caption(caption)[0]
    v = as_unit_cthw(video)
    _, centres, _, _ = _track(segment(v), COLOR_NAMES.index(obj["color"]), obj["motion"], v)
    axis = 0 if obj["motion"].endswith("left and right") else 1
    return np.diff(np.array([c[axis] for c in centres])) if len(centres) > 1 else np.zeros(0)


def edited_scenes(pipe, scenes, steps: int, strength: float, seed: int, bf16: bool, batch_size: int = 16,
                  guidance: float | None = None):
    """Yield ``(scenes, videos)`` as :func:`vidiff.shapes.suites.generate_scenes` does, each batch SDEdited from the
    scenes' true renders at ``strength`` (noise from a generator seeded by ``seed`` + the batch's first clip) at
    ``guidance`` (None: the model's; 0: the unconditional model)."""
    import torch

    from vidiff.hardware import autocast
    from vidiff.shapes.scenes import render

    h = pipe.defaults["height"]
    for i in range(0, len(scenes), batch_size):
        chunk = scenes[i: i + batch_size]
        true = torch.stack([torch.from_numpy(render(sc, 16, 8.0, h)) for sc in chunk])
        with autocast(pipe.device, "bf16" if bf16 else "fp32"):
            out = pipe([sc.caption for sc in chunk], true, strength=strength, num_inference_steps=steps,
                       guidance_scale=guidance, generator=torch.Generator().manual_seed(seed + i))
        yield chunk, out.videos.float()


SAMPLING = ("num_inference_steps", "sampler", "logsnr_min", "guidance_scale")


def like_sampling(pipe, folder: str) -> None:
    """Give ``pipe`` the sampling defaults of the model folder ``folder``."""
    from vidiff.pipelines.folder import read_meta, resolve_defaults
    from vidiff.registry import resolve_model

    other = resolve_defaults(read_meta(resolve_model(folder)).get("defaults"))
    pipe.defaults.update({k: other[k] for k in SAMPLING})
    pipe.scheduler = pipe.make_scheduler(pipe.defaults["sampler"])


def main() -> None:
    from shapes_quality import apply_free_init, common_arguments  # (this folder is on the path as a script)

    p = common_arguments(argparse.ArgumentParser(), first_scene=100000)
    p.set_defaults(n=400)
    p.add_argument("--runs", nargs="+", default=["3"], help="SCALE, SCALE@TMAX or SCALE@TMAX/HIGH, each a row")
    p.add_argument("--sdedit", nargs="+", type=float, default=None, metavar="S",
                   help="rows from the true renders noised to these strengths (SDEdit) instead of --runs")
    p.add_argument("--steps", type=int, default=None, help="default: the model's")
    p.add_argument("--like", default=None, help="sample with this model folder's sampling defaults (steps, sampler, "
                   "log-SNR floor, guidance), e.g. a fine-tune of the default trained before its run folder kept the "
                   "sampler of the folder it started from (2026-12-01)")
    p.add_argument("--skip-guidance", default=None, metavar="KIND:STRENGTH",
                   help="add spatiotemporal skip guidance to every run: KIND attn, conv or all (the temporal layers "
                   "skipped in the weak model), e.g. attn:1")
    args = p.parse_args()
    if args.sdedit is None:
        runs = [(r, *parse_run(r), None) for r in args.runs]
    elif args.runs == p.get_default("runs"):  # a row per strength at the model's guidance
        runs = [(f"sdedit {st:g}", None, None, 1.0, st) for st in args.sdedit]
    else:  # a row per strength and --runs setting (0: the unconditional model)
        runs = [(f"sdedit {st:g} @ {r}", *parse_run(r), st) for st in args.sdedit for r in args.runs]

    import torch

    from vidiff.pipelines.edit import VideoEditPipeline
    from vidiff.pipelines.text_to_video import TextToVideoPipeline
    from vidiff.shapes.strict_reader import score_video_strict, summarize_strict
    from vidiff.shapes.suites import generate_scenes, suite_scenes

    scenes = [s for s in suite_scenes("test", args.n, first_scene=args.first_scene) if s.objects[0].motion in PERIODIC]
    if args.sdedit is not None and not all(0.0 <= st <= 1.0 for st in args.sdedit):
        raise ValueError(f"--sdedit strengths must be in [0, 1], got {args.sdedit}")
    cls = TextToVideoPipeline if args.sdedit is None else VideoEditPipeline
    pipe = cls.from_pretrained(args.model, base_only=True)
    if args.like:
        like_sampling(pipe, args.like)
    steps = pipe.settings(num_inference_steps=args.steps)["num_inference_steps"]
    free_init = apply_free_init(pipe, args.free_init)
    out = {"model": args.model, "free_init": free_init, "scanned": args.n, "n": len(scenes), "first_scene": args.first_scene, "seed": args.seed,
           "like": args.like, "steps": steps, "sampler": pipe.defaults["sampler"],
           "logsnr_min": pipe.defaults["logsnr_min"], "bf16": args.bf16, "threads": torch.get_num_threads(),
           "load_avg": os.getloadavg()[0], "rows": []}
    skip = None
    if args.skip_guidance:
        kind, _, st = args.skip_guidance.partition(":")
        try:
            skip = (kind, float(st))
        except ValueError:
            raise ValueError(f"--skip-guidance takes KIND:STRENGTH (e.g. attn:1), got {args.skip_guidance!r}") from None
        if args.sdedit is not None or any(tmax is not None for _, _, tmax, _, _ in runs):
            raise ValueError("--skip-guidance goes with plain runs (SCALE) from noise only")
    out["skip_guidance"] = args.skip_guidance
    for name, scale, tmax, high, strength in runs:
        pipe.denoiser = skip_guidance(pipe, *skip) if skip else interval_guidance(pipe, tmax, high)
        t0, scores, why = time.time(), collections.defaultdict(list), collections.Counter()
        jumps = {sp: [0, 0] for sp in ("quickly", "normal", "slowly")}  # speed -> [bounces that jump, bounces]
        # the quick bounces' steady moves (0.02-1/3 of the canvas a frame) by sign, per axis: does a sawtooth run
        # one way (towards a word of the caption) or either way?
        steady = {"left and right": [0, 0], "up and down": [0, 0]}  # [towards + (right / down), towards -]
        batches = (generate_scenes(pipe, scenes, steps, scale, args.seed, bf16=args.bf16) if args.sdedit is None
                   else edited_scenes(pipe, scenes, steps, strength, args.seed, args.bf16, guidance=scale))
        for chunk, videos in batches:
            for sc, v in zip(chunk, videos.numpy()):
                st = score_video_strict(v, sc.caption)[0]
                o = sc.objects[0]
                scores[o.motion].append(st)
                why[f"{o.motion}: {st.why or 'ok'}"] += 1
                if o.motion != "circling":
                    d = axis_moves(v, sc.caption)
                    jumps[o.speed][0] += bool(len(d)) and float(abs(d).max()) > JUMP
                    jumps[o.speed][1] += 1
                    if o.speed == "quickly":
                        calm = d[(abs(d) > 0.02) & (abs(d) <= JUMP)]
                        ax = steady[o.motion.removeprefix("bouncing ")]
                        ax[0] += int((calm > 0).sum())
                        ax[1] += int((calm < 0).sum())
        every = [x for v in scores.values() for x in v]
        row = {"run": name, "guidance": scale, "guidance_tmax": tmax, "guidance_above_tmax": high, "seconds": round(time.time() - t0, 1),
               "strict": {k: summarize_strict(every)[k] for k in ("motion", "color", "shape", "present")},
               "strict_per_motion": {m: summarize_strict(v)["motion"] for m, v in sorted(scores.items())},
               "why": dict(why.most_common()),
               "bounces_with_a_jump": {sp: f"{a} of {b}" for sp, (a, b) in jumps.items()},
               "quick_bounce_steady_moves_plus_minus": steady}
        out["rows"].append(row)
        print(json.dumps({k: row[k] for k in ("run", "strict", "strict_per_motion", "bounces_with_a_jump",
                                              "quick_bounce_steady_moves_plus_minus")}), flush=True)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
