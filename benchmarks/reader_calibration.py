"""Calibrate the Shapes readers on true renders: how often each reads true clips right, and the floor that
temporally shuffled true clips (every frame but the first and last permuted) reach.

    python benchmarks/reader_calibration.py --split validation   # seeds 100000.., where thresholds were set
    python benchmarks/reader_calibration.py --split test         # seeds 0..199, read once for the docs

Prints a Markdown table per reader: per motion, true-clip accuracy and the shuffled floor.
"""

from __future__ import annotations

import argparse
import collections
import json

import numpy as np

from vidiff.shapes.scenes import render
from vidiff.shapes.suites import suite_scenes
from vidiff.shapes.reader import COLOR_NAMES, score_video, segment
from vidiff.shapes.strict_reader import classify_shape_strict, coverage, score_video_strict, shuffle_middle

FIRST = {"validation": 100_000, "test": 0}


def calibrate(n: int, first_scene: int, suite: str = "test", seed: int = 0) -> dict:
    scenes = suite_scenes(suite, n, first_scene=first_scene)
    rng = np.random.default_rng(seed)
    rows = collections.defaultdict(lambda: collections.defaultdict(list))
    failures = []
    for sc in scenes:
        v = render(sc, 16, 8.0, 32)
        motion = sc.objects[0].motion
        for kind, clip in (("true", v), ("shuffled", shuffle_middle(v, rng))):
            s = score_video_strict(clip, sc.caption)[0]
            lenient = score_video(clip, sc.caption)["objects"][0]
            r = rows[motion]
            r[f"strict_{kind}_motion"].append(s.motion)
            r[f"lenient_{kind}_motion"].append(lenient.motion)
            if kind == "true":
                r["strict_true_all"].append(s.color and s.shape and s.motion)
                r["strict_true_color"].append(s.color)
                r["strict_true_shape"].append(s.shape)
                r["strict_true_present"].append(s.valid)
                if not (s.color and s.shape and s.motion):
                    failures.append({"seed": sc.seed, "caption": sc.caption, "why": s.why})
    per_motion = {m: {k: float(np.mean(v)) for k, v in r.items()} for m, r in sorted(rows.items())}
    overall = collections.defaultdict(list)
    for r in rows.values():
        for k, v in r.items():
            overall[k] += v
    return {"n": n, "first_scene": first_scene, "per_motion": per_motion,
            "overall": {k: float(np.mean(v)) for k, v in overall.items()}, "failures": failures}


DEGRADATIONS = ("clean", "noise 0.05", "noise 0.1", "blur 0.5 px", "blur 0.7 px")


def degrade(video: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A true render with pixel noise (Gaussian, std in [0, 1] units) or a Gaussian blur (std in pixels), the
    two ways a model's frames differ from a render without changing what is drawn."""
    from scipy.ndimage import gaussian_filter

    if kind.startswith("noise"):
        video = video + float(kind.split()[1]) * rng.standard_normal(video.shape)
    elif kind.startswith("blur"):
        video = gaussian_filter(video, (0, 0, float(kind.split()[1]), float(kind.split()[1])))
    return np.clip(video, 0.0, 1.0).astype(np.float32)


def shape_robustness(n: int, first_scene: int, suite: str = "test", seed: int = 0) -> dict:
    """Per frame of true renders (growing / shrinking left out: their size varies), clean and degraded: how
    often the strict reader's shape rule reads the true shape, with the square / circle decision by the binary
    fill of the bounding box (the rule before 2026-11-30) and by the outline fit (the rule since)."""
    rng = np.random.default_rng(seed)
    hits = collections.defaultdict(list)
    for sc in suite_scenes(suite, n, first_scene=first_scene):
        obj = sc.objects[0]
        if obj.motion in ("growing", "shrinking"):
            continue
        clean = render(sc, 16, 8.0, 32)
        k = COLOR_NAMES.index(obj.color)
        for kind in DEGRADATIONS:
            v = degrade(clean, kind, rng)
            labels = segment(v)
            for f in range(v.shape[1]):
                ys, xs = np.nonzero(labels[f] == k)
                if len(xs) < 10:
                    continue
                hits[(kind, "binary fill", obj.shape)].append(classify_shape_strict(xs, ys) == obj.shape)
                alpha = coverage(v[:, f], labels[f], k)
                hits[(kind, "outline fit", obj.shape)].append(classify_shape_strict(xs, ys, alpha) == obj.shape)
    out = collections.defaultdict(dict)
    for (kind, rule, shape), v in hits.items():
        out[f"{kind} / {rule}"][shape] = float(np.mean(v))
    return dict(out)


def table(res: dict) -> str:
    lines = ["| motion | n | strict: true clips (all attributes) | strict: true motion | strict: shuffled floor | "
             "lenient: true motion | lenient: shuffled floor |", "|---|---|---|---|---|---|---|"]
    for m, r in list(res["per_motion"].items()) + [("**all**", res["overall"])]:
        n = res["n"] if m == "**all**" else "-"
        lines.append(f"| {m} | {n} | {r['strict_true_all']:.1%} | {r['strict_true_motion']:.1%} | "
                     f"{r['strict_shuffled_motion']:.1%} | {r['lenient_true_motion']:.1%} | "
                     f"{r['lenient_shuffled_motion']:.1%} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=list(FIRST), default="validation")
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    res = calibrate(a.n, FIRST[a.split])
    res["shape_robustness"] = shape_robustness(a.n, FIRST[a.split])
    print(table(res))
    print("\nstrict shape rule per frame of true renders (circle / square / triangle):")
    for key, r in res["shape_robustness"].items():
        print(f"  {key:28s} " + " / ".join(f"{r[s]:.1%}" for s in sorted(r)))
    print(f"\nstrict reader, true clips: colour {res['overall']['strict_true_color']:.1%}, shape "
          f"{res['overall']['strict_true_shape']:.1%}, present {res['overall']['strict_true_present']:.1%}")
    for f in res["failures"][:15]:
        print("  true clip misread:", f)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
