"""The analytic reader of the Shapes benchmark: read a video back into objects, score it against its caption.

Spec: shared/specs/shapes-benchmark.md, 'Reading a video back'. Input videos are float ``(c, t, h, w)``
in [0, 1] (or uint8 ``(t, h, w, c)`` through :func:`as_unit_cthw`).

Segmentation: every pixel is explained as ``alpha * palette_color`` (an anti-aliased object edge over the
black background); it belongs to the colour with the smallest residual when ``alpha > 0.5``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from vidiff.io.video import check_fps
from vidiff.shapes.scenes import COLORS, MOTIONS, SHAPES, SPEED_MOTIONS, SPEEDS

PALETTE = np.asarray(list(COLORS.values()), dtype=np.float32) / 255.0  # (k, 3)
COLOR_NAMES = list(COLORS)
MAX_RESIDUAL = 0.3
MIN_AREA = 0.004  # fraction of the frame: below this an object is absent


def as_unit_cthw(video) -> np.ndarray:
    """Accept uint8 (t, h, w, 3) or float (3, t, h, w) in [0, 1] and return float32 (3, t, h, w); anything else is
    one ValueError (a clip in the other layout, or without frames, ended in numpy's matmul error or a score of
    nothing; NaN frames were read as an empty canvas)."""
    v = np.asarray(video)
    if v.dtype == np.uint8:
        if v.ndim != 4 or v.shape[-1] != 3:
            raise ValueError(f"a uint8 video must be (t, h, w, 3), got shape {v.shape}")
        v = v.astype(np.float32).transpose(3, 0, 1, 2) / 255.0
    elif v.dtype.kind != "f" or v.ndim != 4 or v.shape[0] != 3:
        raise ValueError(f"the video must be float (3, t, h, w) in [0, 1] or uint8 (t, h, w, 3), got {v.dtype} "
                         f"{v.shape}")
    if min(v.shape[1:]) < 1:
        raise ValueError(f"the video must hold at least one frame of at least 1x1 pixels, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("the video holds NaN or infinite values")
    return v.astype(np.float32)


def segment(video: np.ndarray) -> np.ndarray:
    """Label map (t, h, w): palette index, or -1 for background. ``video``: (c, t, h, w) in [0, 1]."""
    p = np.moveaxis(video, 0, -1)  # (c t h w) -> (t h w c)
    norm2 = (PALETTE**2).sum(-1)  # (k,)
    alpha = np.clip(p @ PALETTE.T / norm2, 0.0, 1.0)  # (t h w k)
    resid = np.linalg.norm(p[..., None, :] - alpha[..., None] * PALETTE, axis=-1)  # (t h w k)
    best = resid.argmin(-1)
    a = np.take_along_axis(alpha, best[..., None], -1)[..., 0]
    r = np.take_along_axis(resid, best[..., None], -1)[..., 0]
    return np.where((a > 0.5) & (r < MAX_RESIDUAL), best, -1)


@dataclass
class FrameObject:
    present: bool
    area: float = 0.0  # fraction of the frame
    cx: float = float("nan")  # canvas units
    cy: float = float("nan")
    fill: float = float("nan")  # area / bounding-box area
    shape: str = ""


def classify_shape(fill: float) -> str:
    """Fill ratio -> shape: circle ~0.785, square ~1.0, triangle ~0.5 (thresholds at the midpoints)."""
    if fill < 0.64:
        return "triangle"
    if fill < 0.89:
        return "circle"
    return "square"


def measure(labels: np.ndarray, color_index: int) -> list[FrameObject]:
    """Area, centroid, bounding box and shape of one colour in every frame of a label map."""
    t, h, w = labels.shape
    out = []
    for f in range(t):
        ys, xs = np.nonzero(labels[f] == color_index)
        area = len(xs) / (h * w)
        if area < MIN_AREA:
            out.append(FrameObject(False, area))
            continue
        bbox = (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)
        fill = len(xs) / bbox
        out.append(FrameObject(True, area, (xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h, fill, classify_shape(fill)))
    return out


def _reversals(v: np.ndarray, eps: float) -> int:
    """Sign changes of a velocity sequence, ignoring steps smaller than eps."""
    s = np.sign(v[np.abs(v) > eps])
    return int((s[1:] != s[:-1]).sum())


def classify_motion(cx: np.ndarray, cy: np.ndarray, area: np.ndarray, fps: float) -> tuple[str, str]:
    """Centroid track (canvas units) and area per frame -> (motion, speed word), per the spec's reader."""
    duration = len(cx) / fps
    ratio = area[-1] / max(area[0], 1e-6)
    trend = np.polyfit(np.arange(len(area)), area / max(area.mean(), 1e-6), 1)[0] * len(area)
    if ratio > 1.8 and trend > 0.5:
        return "growing", "normal"
    if ratio < 1 / 1.8 and trend < -0.5:
        return "shrinking", "normal"
    dx, dy = np.diff(cx), np.diff(cy)
    path = np.sqrt(dx**2 + dy**2).sum()
    rx, ry = np.ptp(cx), np.ptp(cy)
    if path < 0.05 or max(rx, ry) < 0.03:
        return "standing still", "normal"
    # circling: the track turns around its mean, both axes oscillate
    ang = np.unwrap(np.arctan2(cy - cy.mean(), cx - cx.mean()))
    turn = ang[-1] - ang[0]
    if abs(turn) > 0.75 * math.pi and min(rx, ry) > 0.12:
        turns_per_s = abs(turn) / (2 * math.pi) / duration
        speed = "slowly" if turns_per_s < 0.375 else ("normal" if turns_per_s < 0.9 else "quickly")
        return ("circling" if turn > 0 else "circling counterclockwise"), speed
    eps = 0.005
    rev_x, rev_y = _reversals(dx, eps), _reversals(dy, eps)
    speed_per_s = path / duration
    if rx > ry and rev_x >= 1 and rx > 0.25:
        return "bouncing left and right", _bounce_speed(speed_per_s)
    if ry >= rx and rev_y >= 1 and ry > 0.25:
        return "bouncing up and down", _bounce_speed(speed_per_s)
    net_x, net_y = cx[-1] - cx[0], cy[-1] - cy[0]
    net = math.hypot(net_x, net_y) / duration
    speed = "slowly" if net < 0.15 else ("normal" if net < 0.25 else "quickly")
    if abs(net_x) >= abs(net_y):
        return ("moving right" if net_x > 0 else "moving left"), speed
    return ("moving down" if net_y > 0 else "moving up"), speed


def _bounce_speed(speed_per_s: float) -> str:
    # mean speeds of a wall-to-wall bounce (travel ~0.7): slow 0.35/s, normal 0.7/s, quick 1.87/s
    if speed_per_s < 0.5:
        return "slowly"
    return "normal" if speed_per_s < 1.2 else "quickly"


_OBJ = re.compile(
    r"^a (?P<color>\w+) (?P<shape>\w+) (?:(?P<speed>slowly|quickly) )?(?P<motion>" + "|".join(MOTIONS) + r")$"
)


def parse_caption(caption: str) -> list[dict]:
    """'a red circle quickly moving left and a ...' -> [{color, shape, speed, motion}, ...]."""
    parts, out, rest = [], [], caption.strip()
    # split on " and a " but not inside "bouncing left and right" / "up and down"
    parts = re.split(r" and (?=a )", rest)
    for p in parts:
        m = _OBJ.match(p)
        if not m or m["color"] not in COLORS or m["shape"] not in SHAPES:
            raise ValueError(f"not a Shapes caption: {caption!r}")
        d = m.groupdict()
        d["speed"] = d["speed"] or "normal"
        out.append(d)
    return out


@dataclass
class ObjectScore:
    color: bool
    shape: bool
    motion: bool
    speed: bool | None  # None when the motion has no speed word
    present_all: bool
    shape_stable: float  # fraction of frames whose shape class is the majority's
    area_cv: float
    read_shape: str
    read_motion: str
    read_speed: str


def score_video(video, caption: str, fps: float = 8.0) -> dict:
    """Score one video against its Shapes caption. Returns per-object scores and clip-level figures."""
    v = as_unit_cthw(video)
    fps = check_fps(fps)
    labels = segment(v)
    objects = parse_caption(caption)
    total_area = np.array([(labels == k).mean() for k in range(len(PALETTE))])
    scores = []
    for obj in objects:
        k = COLOR_NAMES.index(obj["color"])
        frames = measure(labels, k)
        present = np.array([f.present for f in frames])
        # colour: present in most frames, and (one object) the dominant colour of the clip
        color_ok = present.mean() >= 0.5
        if len(objects) == 1:
            color_ok = color_ok and int(total_area.argmax()) == k
        if present.sum() >= 2:
            shapes = [f.shape for f in frames if f.present]
            majority = max(set(shapes), key=shapes.count)
            stable = shapes.count(majority) / len(shapes)
            idx = np.nonzero(present)[0]
            cx = np.array([frames[i].cx for i in idx])
            cy = np.array([frames[i].cy for i in idx])
            area = np.array([frames[i].area for i in idx])
            motion, speed = classify_motion(cx, cy, area, fps * len(idx) / len(frames))
            area_cv = float(area.std() / max(area.mean(), 1e-6))
        else:
            majority, stable, motion, speed, area_cv = "", 0.0, "", "", float("nan")
        has_speed = obj["motion"] in SPEED_MOTIONS
        scores.append(ObjectScore(
            color=bool(color_ok), shape=majority == obj["shape"], motion=motion == obj["motion"],
            speed=(motion == obj["motion"] and speed == obj["speed"]) if has_speed else None,
            present_all=bool(present.all()), shape_stable=float(stable), area_cv=area_cv,
            read_shape=majority, read_motion=motion, read_speed=speed))
    bg = labels < 0  # (t h w)
    both = bg[1:] & bg[:-1]
    flicker = float(np.abs(np.diff(v, axis=1)).mean(0)[both].mean()) if both.any() else 0.0
    return {"objects": scores, "background_flicker": flicker}


def summarize(results: list[dict]) -> dict[str, float]:
    """Mean accuracies over the objects of many scored videos."""
    objs = [o for r in results for o in r["objects"]]
    if not objs:
        return {}
    speeds = [o.speed for o in objs if o.speed is not None]
    return {
        "n": len(objs),
        "color": float(np.mean([o.color for o in objs])),
        "shape": float(np.mean([o.shape for o in objs])),
        "motion": float(np.mean([o.motion for o in objs])),
        "speed": float(np.mean(speeds)) if speeds else float("nan"),
        "present_all": float(np.mean([o.present_all for o in objs])),
        "shape_stable": float(np.mean([o.shape_stable for o in objs])),
        "area_cv": _mean_finite([o.area_cv for o in objs]),
        "background_flicker": float(np.mean([r["background_flicker"] for r in results])),
    }


def _mean_finite(values) -> float:
    """The mean of the finite values, NaN when there are none (np.nanmean warns 'Mean of empty slice' there)."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


__all__ = ["segment", "measure", "classify_motion", "score_video", "summarize", "parse_caption", "SPEEDS"]
