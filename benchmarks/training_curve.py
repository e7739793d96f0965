"""Accuracy vs. training time: score every EMA snapshot of a run on the Shapes test suite.

    python benchmarks/training_curve.py runs/stunet-shapes --n 64 --out runs/curve.json
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path


def step_of(snapshot: Path) -> int:
    return int(re.findall(r"\d+", snapshot.name)[0])  # snapshots/step-1500.safetensors -> 1500


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run", help="a training output_dir with snapshots/ and final/")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--base", default=None, help="a pipeline folder of the same architecture to load the snapshots "
                                                "into (default: RUN/final; for a run that has not finished)")
    p.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the run's own)")
    p.add_argument("--from-step", type=int, default=0, help="skip snapshots before this step")
    args = p.parse_args()

    from safetensors import safe_open
    from safetensors.torch import load_file

    from vidiff.shapes.suites import evaluate_pipeline
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    run = Path(args.run)
    pipe = TextToVideoPipeline.from_pretrained(args.base or run / "final", base_only=True)
    snaps = sorted((f for f in run.glob("snapshots/step-*.safetensors") if step_of(f) >= args.from_step), key=step_of)
    rows = []
    for snap in snaps:
        with safe_open(str(snap), "pt") as f:
            meta = f.metadata()
        pipe.unet.load_state_dict({k: v.float() for k, v in load_file(str(snap)).items()})
        s = evaluate_pipeline(pipe, "test", args.n, args.steps, args.guidance, bf16=args.bf16, progress=False)["summary"]
        row = {"step": int(meta["step"]), "minutes": round(float(meta["elapsed_s"]) / 60, 1),
               **{k: round(s[k], 3) for k in ("color", "shape", "motion", "speed", "present_all")}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    print("| step | minutes | color | shape | motion | speed | present in every frame |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['step']} | {r['minutes']} | {r['color']:.2f} | {r['shape']:.2f} | {r['motion']:.2f} | "
              f"{r['speed']:.2f} | {r['present_all']:.2f} |")


if __name__ == "__main__":
    main()
