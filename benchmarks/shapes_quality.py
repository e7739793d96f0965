"""Quality of a model on the Shapes suites, read by the analytic reader (issue: core quality targets).

    python benchmarks/shapes_quality.py --model vidiff/weights/default --n 200 --out runs/quality.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def common_arguments(p: argparse.ArgumentParser, first_scene: int = 0) -> argparse.ArgumentParser:
    """The options every Shapes quality benchmark takes (this one and benchmarks/sampling_steps.py)."""
    p.add_argument("--model", default="vidiff/weights/default")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--first-scene", type=int, default=first_scene, help="100000: the validation seeds used to pick "
                   "settings; 0: the test scenes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--free-init", default=None, metavar="N[:fast][:TSTOP]",
                   help="sample with FreeInit: N samplings in all, coarse to fine with ':fast', temporal stop "
                   "frequency TSTOP (default 0.25), e.g. 3 or 3:fast or 3:0.5")
    return p


def apply_free_init(pipe, spec: str | None) -> dict | None:
    """Turn on FreeInit on ``pipe`` as ``--free-init`` says; its resolved settings for the report."""
    if not spec:
        return None
    n, *rest = spec.split(":")
    kw = {"use_fast_sampling": "fast" in rest}
    stops = [r for r in rest if r != "fast"]
    if stops:
        kw["temporal_stop_frequency"] = float(stops[0])
    pipe.enable_free_init(int(n), **kw)
    return pipe.free_init.as_dict()


def main() -> None:
    p = common_arguments(argparse.ArgumentParser())
    p.add_argument("--suites", nargs="+", default=["test", "heldout"])
    p.add_argument("--steps", type=int, default=None, help="default: the model's")
    p.add_argument("--guidance", type=float, nargs="+", default=[None], help="one or more scales (a sweep)")
    args = p.parse_args()

    import torch

    from vidiff.shapes.suites import evaluate_pipeline
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    pipe = TextToVideoPipeline.from_pretrained(args.model, base_only=True)
    free_init = apply_free_init(pipe, args.free_init)
    args.steps = pipe.settings(num_inference_steps=args.steps)["num_inference_steps"]  # None: the folder's
    report = {"model": args.model, "n": args.n, "steps": args.steps, "seed": args.seed, "bf16": args.bf16,
              "first_scene": args.first_scene, "free_init": free_init, "threads": torch.get_num_threads(), "load_avg": os.getloadavg()[0],
              "runs": []}
    for guidance in args.guidance:
        for suite in args.suites:
            t0 = time.time()
            g = pipe.defaults["guidance_scale"] if guidance is None else guidance
            r = evaluate_pipeline(pipe, suite, args.n, args.steps, g, args.seed, bf16=args.bf16, first_scene=args.first_scene)
            r.update(seconds=round(time.time() - t0, 1), suite=suite, guidance=g)
            report["runs"].append(r)
            s = r["summary"]
            print(f"{suite:8s} guidance={g} n={s['n']} color={s['color']:.3f} shape={s['shape']:.3f} motion={s['motion']:.3f} "
                  f"speed={s['speed']:.3f} present_all={s['present_all']:.3f} shape_stable={s['shape_stable']:.3f} "
                  f"({r['seconds']} s)")
            print("   per motion:", {k: round(v, 2) for k, v in r["per_motion"].items()})
            print(f"   directed motions read time-reversed: {r['time_reversed']:.3f}")
            st = r["strict"]
            print(f"   STRICT color={st['color']:.3f} shape={st['shape']:.3f} motion={st['motion']:.3f} "
                  f"(shuffled-true floor {st['floor']['motion']:.3f}) present={st['present']:.3f} "
                  f"time_reversed={st['time_reversed']:.3f}")
            print("   strict per motion (floor):", {k: f"{v:.2f} ({st['floor']['per_motion'][k]:.2f})"
                                                   for k, v in st["per_motion"].items()})
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
