"""A default clip, cold: `vidiff generate` timed as a user runs it, once per setting and round, interleaved, so
every change's ratio comes from the same machine state (issue 20: a default clip in <= 10 s cold).

    python benchmarks/cold_start.py --rounds 3 --out benchmarks/results/cold-start.json
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/cold_start.py ...   # AVX2 kernels only
    git worktree add /tmp/before COMMIT && python benchmarks/cold_start.py --settings "+ DPM++ SDE, 20 steps" \
        --tree before=/tmp/before   # a change in the code: the same command run by another checkout, interleaved

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

# name -> (base defaults, ssr defaults): each row adds one change to the one before. Until 2026-12-02 the SSR stage
# ran 8-frame windows at stride 4 (three windows for a 16-frame clip), and the default row was "+ DPM++ SDE, 20 steps".
# Until then, too, every base step was guided (guidance_min_t: none).
SSR_WINDOWS_8 = {"window": 8, "stride": 4}
GUIDED = {"guidance_min_t": None}
SETTINGS = {
    "before: 25 steps from t = 999, SSR 10 steps": ({"num_inference_steps": 25, "logsnr_min": None, "sampler": "dpm++",
                                                     **GUIDED}, {"num_inference_steps": 10, **SSR_WINDOWS_8}),
    "+ steps spaced above log-SNR -8.5, 14 steps": ({"num_inference_steps": 14, "logsnr_min": -8.5, "sampler": "dpm++",
                                                     **GUIDED}, {"num_inference_steps": 10, **SSR_WINDOWS_8}),
    "+ SSR 3 steps": ({"num_inference_steps": 14, "logsnr_min": -8.5, "sampler": "dpm++", **GUIDED},
                      {"num_inference_steps": 3, **SSR_WINDOWS_8}),
    "+ DPM++ SDE, 20 steps": ({"num_inference_steps": 20, "logsnr_min": -8.5, "sampler": "dpm++-sde", **GUIDED},
                              {"num_inference_steps": 3, **SSR_WINDOWS_8}),
    "+ SSR in one 16-frame window, 2 steps": ({"num_inference_steps": 20, "logsnr_min": -8.5, "sampler": "dpm++-sde",
                                               **GUIDED}, {"num_inference_steps": 2, "window": 16, "stride": 8}),
    "+ guidance on the steps at t >= 400 only (the default)": (
        {"num_inference_steps": 20, "logsnr_min": -8.5, "sampler": "dpm++-sde", "guidance_min_t": 400},
        {"num_inference_steps": 2, "window": 16, "stride": 8}),
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


def run_once(model: Path, out: Path, tree: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of one cold `vidiff generate`; ``tree``: the vidiff package of that checkout
    (put first on PYTHONPATH, ahead of the installed one) instead of this one."""
    cmd = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "vidiff", "generate", PROMPT, "-o", str(out), "-q",
           "--model", str(model)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")])) if tree else None
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=out.parent, env=env)
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
    p.add_argument("--tree", nargs="*", default=[], metavar="NAME=CHECKOUT",
                   help="other checkouts of vidiff (e.g. a git worktree of an earlier commit) to run every setting with")
    p.add_argument("--tree-settings", nargs="+", default=None, help="the settings the --tree checkouts run "
                   "(default: every one)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    unknown = [n for n in args.settings + (args.tree_settings or []) if n not in SETTINGS]
    if unknown or not set(args.tree_settings or []) <= set(args.settings):
        raise SystemExit(f"unknown settings {unknown} (allowed: {list(SETTINGS)}); --tree-settings must be among --settings")
    import torch

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = {n: make_folders(tmp, n, *SETTINGS[n], WEIGHTS / "default") for n in args.settings}
        for item in args.extra:
            name, _, folder = item.partition("=")
            models[name] = make_folders(tmp, name, {}, {}, Path(folder))  # with the shipped SSR's own defaults
        trees = {"": None}
        for item in args.tree:
            name, _, folder = item.partition("=")
            if not (Path(folder) / "vidiff" / "__init__.py").is_file():
                raise SystemExit(f"--tree {item!r}: no vidiff package in {folder!r}")
            trees[f" [{name}]"] = Path(folder).resolve()
        for j, tree in enumerate(trees.values()):  # the page cache holds torch and each tree's files as a user's would
            run_once(next(iter(models.values())), tmp / f"warm{j}.mp4", tree)
        runs = [(name + label, model, tree) for name, model in models.items() for label, tree in trees.items()
                if tree is None or args.tree_settings is None or name in args.tree_settings]
        for r in range(args.rounds):
            for i, (name, model, tree) in enumerate(runs):
                wall, rss = run_once(model, tmp / f"r{r}-{i}.mp4", tree)
                rows.setdefault(name, []).append((round(wall, 2), round(rss, 3)))
                print(f"round {r}: {name}: {wall:.2f} s, {rss:.2f} GB", flush=True)
    from vidiff.hardware import cpu_name, native_bf16

    cap = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if k in os.environ}
    report = {"prompt": PROMPT, "rounds": args.rounds, "cpu": cpu_name(), "native_bf16": native_bf16(),
              "threads": torch.get_num_threads(),
              "torch": torch.__version__, "isa_cap": cap, "date": time.strftime("%Y-%m-%d"), "extra": args.extra,
              "trees": {n.strip(" []"): _commit(t) for n, t in trees.items() if t},
              "settings": {n: {"wall_s": [w for w, _ in v], "min_s": min(w for w, _ in v),
                               "median_s": sorted(w for w, _ in v)[len(v) // 2], "peak_rss_gb": max(m for _, m in v)}
                           for n, v in rows.items()}}
    print(json.dumps(report["settings"], indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


def _commit(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or str(tree)


if __name__ == "__main__":
    main()
