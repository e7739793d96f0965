"""A default clip, cold: `vidiff generate` timed as a user runs it, once per setting and round, interleaved, so
every change's ratio comes from the same machine state (issue 20: a default clip in <= 10 s cold).

    python benchmarks/cold_start.py --rounds 3 --out benchmarks/results/cold-start.json
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/cold_start.py ...   # AVX2 kernels only

Each setting is a copy of the embedded default and its super-resolution folder in a temporary directory with
the sampling defaults of that setting written into their vidiff_pipeline.json; the command is the same.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "vidiff" / "weights"
PROMPT = "a red circle quickly bouncing left and right"

# name -> (base defaults, ssr defaults): each row adds one change to the one before
SETTINGS = {
    "before: 25 steps from t = 999, SSR 10 steps": ({"num_inference_steps": 25, "logsnr_min": None, "sampler": "dpm++"},
                                                    {"num_inference_steps": 10}),
    "+ steps spaced above log-SNR -8.5, 14 steps": ({"num_inference_steps": 14, "logsnr_min": -8.5, "sampler": "dpm++"},
                                                    {"num_inference_steps": 10}),
    "+ SSR 3 steps": ({"num_inference_steps": 14, "logsnr_min": -8.5, "sampler": "dpm++"}, {"num_inference_steps": 3}),
    "+ DPM++ SDE, 20 steps (the default)": ({"num_inference_steps": 20, "logsnr_min": -8.5, "sampler": "dpm++-sde"},
                                            {"num_inference_steps": 3}),
}


def make_folders(tmp: Path, name: str, base: dict, ssr: dict, base_dir: Path) -> Path:
    root = tmp / re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    shutil.copytree(base_dir, root / "default")
    shutil.copytree(WEIGHTS / "ssr", root / "ssr")
    for folder, new in (("default", base), ("ssr", ssr)):
        meta_path = root / folder / "vidiff_pipeline.json"
        meta = json.loads(meta_path.read_text())
        meta["defaults"].update(new)
        if folder == "default":
            meta["super_resolution"] = "../ssr"
        meta_path.write_text(json.dumps(meta, indent=2))
    return root / "default"


def run_once(model: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of one cold `vidiff generate`."""
    cmd = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "vidiff", "generate", PROMPT, "-o", str(out), "-q",
           "--model", str(model)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=out.parent)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"vidiff generate failed: {done.stderr[-500:]}")
    rss_kb = int(done.stderr.strip().splitlines()[-1])
    return wall, rss_kb / 2**20


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), help="names from SETTINGS")
    p.add_argument("--extra", nargs="*", default=[], metavar="NAME=FOLDER",
                   help="more base folders to time with the default's SSR stage (e.g. a distilled default)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import torch

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = {n: make_folders(tmp, n, *SETTINGS[n], WEIGHTS / "default") for n in args.settings}
        for item in args.extra:
            name, _, folder = item.partition("=")
            models[name] = make_folders(tmp, name, {}, {}, Path(folder))  # with the shipped SSR's own defaults
        run_once(next(iter(models.values())), tmp / "warm.mp4")  # the page cache holds torch as a user's would
        for r in range(args.rounds):
            for i, (name, model) in enumerate(models.items()):
                wall, rss = run_once(model, tmp / f"r{r}-{i}.mp4")
                rows.setdefault(name, []).append((round(wall, 2), round(rss, 3)))
                print(f"round {r}: {name}: {wall:.2f} s, {rss:.2f} GB", flush=True)
    from vidiff.hardware import cpu_name, native_bf16

    cap = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if k in os.environ}
    report = {"prompt": PROMPT, "rounds": args.rounds, "cpu": cpu_name(), "native_bf16": native_bf16(),
              "threads": torch.get_num_threads(),
              "torch": torch.__version__, "isa_cap": cap, "date": time.strftime("%Y-%m-%d"), "extra": args.extra,
              "settings": {n: {"wall_s": [w for w, _ in v], "min_s": min(w for w, _ in v),
                               "median_s": sorted(w for w, _ in v)[len(v) // 2], "peak_rss_gb": max(m for _, m in v)}
                           for n, v in rows.items()}}
    print(json.dumps(report["settings"], indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
