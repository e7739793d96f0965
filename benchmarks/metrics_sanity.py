"""Sanity of the metric suite on Shapes (issue: vidiff evaluate), with the shipped Shapes encoder.

1. real-vs-real: FVD/KVD between disjoint sets of real clips, over several draws (the sampling spread);
2. degradations: every metric against clean real clips as the fake set is degraded step by step
   (noise, blur, frame shuffling, flicker, wrong colour), with the expected direction and whether it is monotone;
3. throughput: feature extraction and scoring (FVD, KVD, IS, frame FID/KID, Shapes scores) of 512 clips.

    python benchmarks/metrics_sanity.py --n 256 --out runs/metrics_sanity.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

SEVERITIES = (0.0, 0.25, 0.5, 0.75, 1.0)  # shuffling saturates: past 0.5 the order is gone either way
# metric -> (direction when worse: +1 grows, -1 shrinks); None = not expected to react to that degradation
EXPECT = {
    "fvd": {d: +1 for d in ("noise", "blur", "shuffle", "flicker", "wrong_color")},
    "kvd": {d: +1 for d in ("noise", "blur", "shuffle", "flicker", "wrong_color")},
    "frame_fid": {"noise": +1, "blur": +1, "flicker": +1, "wrong_color": +1},  # frames unchanged by shuffling
    "frame_kid": {"noise": +1, "blur": +1, "flicker": +1, "wrong_color": +1},
    "is": {"noise": -1, "blur": -1, "shuffle": -1},
    "psnr": {d: -1 for d in ("noise", "blur", "shuffle", "flicker", "wrong_color")},
    "ssim": {d: -1 for d in ("noise", "blur", "shuffle", "flicker", "wrong_color")},
    "shapes_color": {"wrong_color": -1},
    "shapes_motion": {"shuffle": -1},
    "shapes_shape": {"noise": -1, "blur": -1},
}


def real_set(first: int, n: int) -> tuple[torch.Tensor, list[str]]:
    from vidiff.shapes.scenes import render, sample_scene

    scenes = [sample_scene(s, "test", num_objects=1) for s in range(first, first + n)]
    return torch.stack([torch.from_numpy(render(s)) for s in scenes]), [s.caption for s in scenes]


def all_metrics(real: torch.Tensor, fake: torch.Tensor, captions: list[str], feats: dict) -> dict:
    from vidiff.metrics.distribution import FrameFID, FrameKID, FrechetVideoDistance, KernelVideoDistance, VideoInceptionScore
    from vidiff.metrics.pixel import MaskedPSNR, MaskedSSIM
    from vidiff.shapes.scores import ShapesScore

    n = len(real)
    m = {"fvd": FrechetVideoDistance(feats["video"]), "kvd": KernelVideoDistance(feats["video"], subsets=50, subset_size=n),
         "frame_fid": FrameFID(feats["image"]), "frame_kid": FrameKID(feats["image"], subsets=50, subset_size=1000)}
    is_, psnr, ssim, sh = VideoInceptionScore(feats["classifier"]), MaskedPSNR(), MaskedSSIM(), ShapesScore()
    for i in range(0, n, 64):
        r, f = real[i: i + 64], fake[i: i + 64]
        for k in m:
            m[k].update(r, True)
            m[k].update(f, False)
        is_.update(f)
        psnr.update(f, r)
        ssim.update(f, r)
        sh.update(f, captions[i: i + 64])
    s = sh.compute()["all"]
    return {"fvd": float(m["fvd"].compute()), "kvd": float(m["kvd"].compute()[0]), "frame_fid": float(m["frame_fid"].compute()),
            "frame_kid": float(m["frame_kid"].compute()[0]), "is": float(is_.compute()[0]),
            "psnr": psnr.compute()["all"], "ssim": ssim.compute()["all"],
            "shapes_color": s["color"], "shapes_motion": s["motion"], "shapes_shape": s["shape"]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--throughput-n", type=int, default=512)
    p.add_argument("--out", default=None)
    args = p.parse_args()

    from vidiff.metrics.degrade import DEGRADATIONS
    from vidiff.metrics.distribution import FrechetVideoDistance, KernelVideoDistance
    from vidiff.metrics.extractors import image_extractor, video_classifier, video_extractor

    feats = {"video": video_extractor("shapes"), "image": image_extractor("shapes"), "classifier": video_classifier("shapes")}
    report = {"n": args.n, "threads": torch.get_num_threads(), "load_avg": os.getloadavg()[0]}

    # 1. real vs real
    rr = []
    for d in range(args.draws):
        a, _ = real_set(1_000_000 + 2 * d * args.n, args.n)
        b, _ = real_set(1_000_000 + (2 * d + 1) * args.n, args.n)
        fvd, kvd = FrechetVideoDistance(feats["video"]), KernelVideoDistance(feats["video"], subsets=50, subset_size=args.n)
        for m in (fvd, kvd):
            m.update(a, True)
            m.update(b, False)
        rr.append((float(fvd.compute()), float(kvd.compute()[0])))
    rr = np.array(rr)
    report["real_vs_real"] = {"fvd_mean": rr[:, 0].mean(), "fvd_std": rr[:, 0].std(), "kvd_mean": rr[:, 1].mean(),
                              "kvd_std": rr[:, 1].std(), "draws": args.draws}
    print("real vs real:", {k: round(float(v), 4) for k, v in report["real_vs_real"].items()})

    # 2. degradations (fake = degraded copies of a second real set's scenes, real = the clean clips)
    real, caps = real_set(0, args.n)
    table = {}
    for name, fn in DEGRADATIONS.items():
        rows = [all_metrics(real, fn(real, s, seed=1), caps, feats) for s in SEVERITIES]
        table[name] = rows
        for metric, exp in EXPECT.items():
            if name in exp:
                vals = [r[metric] for r in rows]
                diffs = np.diff(vals) * exp[name]
                mono = bool((diffs > 0).all())
                print(f"{name:12s} {metric:14s} {'up' if exp[name] > 0 else 'down':4s} monotone={mono} "
                      + " ".join(f"{v:.4g}" for v in vals))
    report["degradations"] = table
    report["severities"] = SEVERITIES
    report["monotone"] = {f"{d}/{m}": bool((np.diff([r[m] for r in table[d]]) * e[d] > 0).all())
                          for m, e in EXPECT.items() for d in e}
    print("monotone:", sum(report["monotone"].values()), "of", len(report["monotone"]))

    # 3. throughput: 512 real vs 512 degraded clips through every metric (features + scoring)
    a, ca = real_set(2_000_000, args.throughput_n)
    b = DEGRADATIONS["noise"](a, 0.3)
    t0 = time.time()
    all_metrics(a, b, ca, feats)
    report["throughput"] = {"clips": args.throughput_n, "seconds": round(time.time() - t0, 1)}
    print("throughput:", report["throughput"])
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
