"""The strict Shapes reader: an attribute counts only when the whole clip shows it, coherently in time.

The lenient reader (:mod:`vidiff.shapes.reader`) judges a directed move by the sign of its net
displacement and colour/shape by a majority over the frames where the colour shows at all, so temporally
shuffled true clips read "motion correct" about half the time. This reader fits each captioned motion's
trajectory family (docs/shapes-benchmark.md, 'Motions') to the object's track and accepts only a good fit:

- presence: the object is present in >= 90% of frames at a plausible size (0.5x to 2x the benchmark's
  object area at the motion's scale), otherwise colour, shape and motion all fail;
- shape: the captioned class in >= 80% of the present frames (top-half mass and fill ratio for a triangle,
  which tells a small triangle from a small circle; square or circle by which ideal outline of the object's
  area and centroid fits its pixel coverage better);
- moving: progress along the captioned direction in every frame step (no step back larger than 1/3 pixel),
  a straight constant-velocity track (RMS residual), little drift across, and the captioned speed class;
- bouncing: a triangle wave between the walls along the captioned axis, with at least one reversal inside
  the clip, fits the track, at the captioned period class;
- circling: a clockwise circle (the only sense the benchmark has) fits the track, at the captioned period class;
- growing / shrinking: the object's linear size changes monotonically by the captioned factor, centre steady;
- standing still: centre and size steady.

Thresholds were set on true renders and shuffled renders of validation scenes (test split, seeds from
100000; benchmarks/reader_calibration.py) and then read once on the test scenes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vidiff.io.video import check_fps
from vidiff.shapes.scenes import CIRCLE_RADIUS, PERIOD, RADIUS, SPEED_MOTIONS, half_extents
from vidiff.shapes.reader import COLOR_NAMES, PALETTE, as_unit_cthw, parse_caption, segment

MIN_PRESENT = 0.9  # fraction of frames the object must be present in
MIN_SHAPE_STABLE = 0.8  # fraction of present frames read as the majority shape
SIZE_BAND = (0.5, 2.0)  # plausible area relative to the benchmark's object at the motion's scale
BASE_AREA = {"circle": math.pi * RADIUS**2, "square": (2 * RADIUS) ** 2, "triangle": 3 * math.sqrt(3) / 4 * RADIUS**2}
STEP_BACK = 1 / 96  # canvas units (1/3 pixel at 32 px): the largest step against a directed move
LINE_RMS = 0.02  # straight-track residual of a directed move
DRIFT = 0.05  # largest sideways spread of a directed move or a bounce
WAVE_RMS = 0.05  # triangle-wave (bouncing) and circle (circling) fit residual
STILL = 0.03  # largest spread of a still object's centre
GROW_RATIO = 1.6  # linear size end / start of growing (2.33 in the benchmark); 1 / it for shrinking
SIZE_STEP_BACK = 0.04  # relative step against a growing / shrinking trend
PERIOD_BOUNDS = (math.sqrt(PERIOD["quickly"] * PERIOD["normal"]), math.sqrt(PERIOD["normal"] * PERIOD["slowly"]))
MOVE_BOUNDS = (0.15, 0.25)  # canvas units / s between slow 0.1, normal 0.2, quick 0.3
DIRECTIONS = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}  # (axis: 0 x / 1 y, sign)
REVERSED = {"moving left": "moving right", "moving right": "moving left", "moving up": "moving down",
            "moving down": "moving up", "circling": "circling counterclockwise"}


@dataclass
class StrictScore:
    present: float  # fraction of frames with the object at a plausible size
    valid: bool  # present >= MIN_PRESENT: the other attributes may count
    color: bool
    shape: bool
    motion: bool  # the captioned motion at the captioned speed class, coherent in time
    direction: bool  # the captioned motion at any speed (diagnostic)
    speed: bool | None  # the speed class, None when the caption has no speed
    reversed: bool | None  # a directed clip that fits the opposite direction (None: not a directed motion)
    read_shape: str
    read_speed: str
    why: str  # the first check that failed ("" when all passed)


def classify_shape_strict(xs: np.ndarray, ys: np.ndarray, alpha: np.ndarray | None = None) -> str:
    """Pixel coordinates of one object -> shape. An upward triangle holds 1/4 of its area in the top half of its
    bounding box (circles and squares 1/2), which separates it from a small circle that fill ratio alone does
    not (at 32 px a triangle's fill ranges 0.47-0.83, a circle's 0.64-0.92 on validation renders).

    Square or circle: with ``alpha`` (the object's coverage of every pixel of the frame, :func:`coverage`), the
    ideal axis-aligned square or circle of the object's area and centroid that is nearer it (L1 over pixels,
    :func:`_square_or_circle`); without, the binary fill of the bounding box (square from 0.93). The binary
    fill misreads a square whose edge falls mid-pixel: that edge row is half covered, and pixel noise of a few
    percent makes it ragged after thresholding, so the row stretches the box without filling it (true renders
    with Gaussian noise of std 0.05 read 17% of square frames as circles that way, 33% at std 0.1; the fit reads
    them all right; benchmarks/reader_calibration.py)."""
    y0, y1 = ys.min(), ys.max()
    mid = (y0 + y1) / 2  # rows above the middle count whole, a row on it counts half
    top = ((ys < mid).sum() + 0.5 * (ys == mid).sum()) / len(ys)
    fill = len(xs) / ((xs.max() - xs.min() + 1) * (y1 - y0 + 1))
    if top < 0.41 or fill < 0.6:
        return "triangle"
    if alpha is not None:
        return _square_or_circle(alpha, xs, ys)
    return "square" if fill >= 0.93 else "circle"


def coverage(frame: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(h, w) in [0, 1]: how much of each pixel the object of colour ``k`` covers, read as the pixel's colour
    projected on the palette colour (the renderer anti-aliases onto a black background), over the object's
    pixels and the background pixels touching them (its rim); 0 elsewhere. ``frame``: (3, h, w) in [0, 1]."""
    from scipy.ndimage import binary_dilation

    rim = binary_dilation(labels == k, np.ones((3, 3), bool))  # the object and the pixels touching it
    pk = PALETTE[k]
    alpha = np.clip(np.einsum("chw,c->hw", frame, pk) / float(pk @ pk), 0.0, 1.0)
    return np.where(rim & ((labels == k) | (labels < 0)), alpha, 0.0)


_SUB = (np.arange(8) + 0.5) / 8  # 8 x 8 sub-pixel samples for a circle's coverage


def _square_or_circle(alpha: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> str:
    """Which ideal shape, axis-aligned square or circle, of the object's area and centroid (both from
    ``alpha``) differs less from it, summed over a window 2 pixels beyond its box. Both ideals have the same
    area and centre, so only the outline decides: a square's corners against a circle's."""
    y0, y1, x0, x1 = max(ys.min() - 2, 0), ys.max() + 3, max(xs.min() - 2, 0), xs.max() + 3
    a = alpha[y0:y1, x0:x1]
    area = float(a.sum())
    if area <= 0:
        return "circle"
    py, px = np.arange(a.shape[0], dtype=float), np.arange(a.shape[1], dtype=float)
    cy = float((a.sum(1) * (py + 0.5)).sum()) / area
    cx = float((a.sum(0) * (px + 0.5)).sum()) / area
    half = math.sqrt(area) / 2
    ox = np.clip(np.minimum(px + 1, cx + half) - np.maximum(px, cx - half), 0, 1)
    oy = np.clip(np.minimum(py + 1, cy + half) - np.maximum(py, cy - half), 0, 1)
    square = oy[:, None] * ox[None, :]
    sy, sx = (py[:, None] + _SUB).reshape(-1), (px[:, None] + _SUB).reshape(-1)
    inside = (sx[None, :] - cx) ** 2 + (sy[:, None] - cy) ** 2 <= area / math.pi
    circle = inside.reshape(a.shape[0], 8, a.shape[1], 8).mean((1, 3))
    return "square" if np.abs(a - square).sum() < np.abs(a - circle).sum() else "circle"


def _scale_range(motion: str) -> tuple[float, float]:
    return (0.6, 1.4) if motion in ("growing", "shrinking") else (1.0, 1.0)


def _period_class(period: float) -> str:
    return "quickly" if period < PERIOD_BOUNDS[0] else ("normal" if period < PERIOD_BOUNDS[1] else "slowly")


def _move_class(speed: float) -> str:
    return "slowly" if speed < MOVE_BOUNDS[0] else ("normal" if speed < MOVE_BOUNDS[1] else "quickly")


def _directed(c: np.ndarray, t: np.ndarray, direction: str) -> tuple[bool, str, str]:
    """c: (n, 2) centre track; t: (n,) seconds. Returns (coherent move in this direction, speed word, why not)."""
    axis, sign = DIRECTIONS[direction]
    along, across = sign * c[:, axis], c[:, 1 - axis]
    v, b = np.polyfit(t, along, 1)
    rms = float(np.sqrt(np.mean((along - (v * t + b)) ** 2)))
    if v <= 0:
        return False, "", "wrong direction"
    if np.diff(along).min() < -STEP_BACK:
        return False, _move_class(v), "steps back"
    if rms > LINE_RMS:
        return False, _move_class(v), "not a straight constant-velocity track"
    if np.ptp(across) > DRIFT:
        return False, _move_class(v), "drifts sideways"
    return True, _move_class(v), ""


def _bouncing(c: np.ndarray, t: np.ndarray, axis: int, shape: str) -> tuple[bool, str, str]:
    """A triangle wave between the walls (fixed by the shape's extent) with a free period and phase."""
    left, right, top, bottom = half_extents(shape, RADIUS)
    lo, hi = (left, 1 - right) if axis == 0 else (top, 1 - bottom)
    along, across = c[:, axis], c[:, 1 - axis]
    periods = np.geomspace(0.3, 8.0, 240)  # (p,)
    phases = np.linspace(0, 1, 96, endpoint=False)  # (q,)
    u = (t[None, None, :] / periods[:, None, None] + phases[None, :, None]) % 1.0  # (p, q, n)
    wave = lo + (hi - lo) * (1 - np.abs(2 * u - 1))
    err = np.sqrt(((wave - along) ** 2).mean(-1))  # (p, q)
    i, j = np.unravel_index(err.argmin(), err.shape)
    period, rms = float(periods[i]), float(err[i, j])
    # the fitted wave must turn inside the clip (a wall contact strictly between the first and last frame)
    turns = np.floor(2 * (t[-1] / period + phases[j])) - np.floor(2 * (t[0] / period + phases[j]))
    if rms > WAVE_RMS:
        return False, _period_class(period), "no wall-to-wall bounce fits the track"
    if turns < 1:
        return False, _period_class(period), "does not reverse"
    if np.ptp(across) > DRIFT:
        return False, _period_class(period), "drifts sideways"
    return True, _period_class(period), ""


def _circling(c: np.ndarray, t: np.ndarray) -> tuple[bool, str, str, bool]:
    """A circle of free centre and radius, angular velocity of either sign; returns (clockwise fit, period word,
    why not, counterclockwise fit)."""
    best = {}
    for sense in (1, -1):
        periods = np.geomspace(0.3, 8.0, 160)
        phases = np.linspace(0, 2 * np.pi, 96, endpoint=False)
        ang = sense * 2 * np.pi * t[None, None, :] / periods[:, None, None] + phases[None, :, None]  # (p, q, n)
        cos, sin = np.cos(ang), np.sin(ang)
        # least squares for x0, y0, R given the angles: x = x0 + R cos, y = y0 + R sin
        n = len(t)
        cx, cy = c[:, 0], c[:, 1]
        ccm, scm = cos - cos.mean(-1, keepdims=True), sin - sin.mean(-1, keepdims=True)
        r = ((ccm * (cx - cx.mean())).sum(-1) + (scm * (cy - cy.mean())).sum(-1)) / \
            np.maximum((ccm**2).sum(-1) + (scm**2).sum(-1), 1e-9)  # (p, q)
        r = np.clip(r, 0.0, 0.5)
        x0 = cx.mean() - r * cos.mean(-1)
        y0 = cy.mean() - r * sin.mean(-1)
        res = ((x0[..., None] + r[..., None] * cos - cx) ** 2 + (y0[..., None] + r[..., None] * sin - cy) ** 2)
        err = np.sqrt(res.sum(-1) / n)
        i, j = np.unravel_index(err.argmin(), err.shape)
        best[sense] = (float(err[i, j]), float(periods[i]), float(r[i, j]))
    ok = {s: best[s][0] <= WAVE_RMS and 0.5 * CIRCLE_RADIUS <= best[s][2] <= 1.5 * CIRCLE_RADIUS for s in best}
    rms, period, radius = best[1]
    why = "" if ok[1] else ("runs counterclockwise" if ok[-1] and best[-1][0] < rms else
                            "no circle of the benchmark's radius fits the track")
    return ok[1], _period_class(period), why, ok[-1] and best[-1][0] < rms


def _resizing(c: np.ndarray, area: np.ndarray, grow: bool) -> tuple[bool, str]:
    size = np.sqrt(area)
    ratio = size[-3:].mean() / max(size[:3].mean(), 1e-9)
    steps = np.diff(size) / size.mean()
    if not grow:
        ratio, steps = 1 / max(ratio, 1e-9), -steps
    if ratio < GROW_RATIO:
        return False, f"size changes by {ratio:.2f}x, not {GROW_RATIO}x or more"
    if steps.min() < -SIZE_STEP_BACK:
        return False, "size does not change monotonically"
    if max(np.ptp(c[:, 0]), np.ptp(c[:, 1])) > DRIFT:
        return False, "centre moves"
    return True, ""


def _still(c: np.ndarray, area: np.ndarray) -> tuple[bool, str]:
    if max(np.ptp(c[:, 0]), np.ptp(c[:, 1])) > STILL:
        return False, "centre moves"
    if area.std() / max(area.mean(), 1e-9) > 0.15:
        return False, "size changes"
    return True, ""


def judge_motion(c: np.ndarray, t: np.ndarray, area: np.ndarray, motion: str, shape: str) -> dict:
    """Whether a track (present frames only) shows ``motion``: ``{"ok", "speed", "why", "reversed"}``."""
    speed, reversed_ = "normal", None
    if motion.startswith("moving"):
        d = motion.split()[1]
        ok, speed, why = _directed(c, t, d)
        opposite = {"left": "right", "right": "left", "up": "down", "down": "up"}[d]
        reversed_ = _directed(c, t, opposite)[0]
    elif motion.startswith("bouncing"):
        ok, speed, why = _bouncing(c, t, 0 if motion.endswith("left and right") else 1, shape)
    elif motion == "circling":
        ok, speed, why, reversed_ = _circling(c, t)
    elif motion in ("growing", "shrinking"):
        ok, why = _resizing(c, area, motion == "growing")
    else:
        ok, why = _still(c, area)
    return {"ok": ok, "speed": speed, "why": why, "reversed": reversed_}


def _track(labels: np.ndarray, k: int, motion: str, video: np.ndarray):
    """Where the object of colour index ``k`` is in each frame of ``labels`` (t, h, w) of ``video`` (c, t, h, w),
    counted only at a size plausible for ``motion``: (present (t,) bool, centres, areas, shape reads) of the
    frames where it is."""
    nt, h, w = labels.shape
    lo_s, hi_s = _scale_range(motion)
    lo_a = SIZE_BAND[0] * min(BASE_AREA.values()) * lo_s**2
    hi_a = SIZE_BAND[1] * max(BASE_AREA.values()) * hi_s**2
    centres, areas, shapes, present = [], [], [], np.zeros(nt, bool)
    for f in range(nt):
        ys, xs = np.nonzero(labels[f] == k)
        area = len(xs) / (h * w)
        if not lo_a <= area <= hi_a:
            continue
        present[f] = True
        centres.append(((xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h))
        areas.append(area)
        shapes.append(classify_shape_strict(xs, ys, coverage(video[:, f], labels[f], k)))
    return present, centres, areas, shapes


def score_image_strict(image, caption: str) -> list[dict]:
    """Score one image (float (c, h, w) in [0, 1] or uint8 (h, w, c)) against a Shapes caption's objects: present
    at a plausible size, the colour that dominates (one object), the shape. A caption's motion is ignored beyond
    the sizes it allows (a growing object may be small or large)."""
    img = np.asarray(image)
    uint8 = img.dtype == np.uint8
    if img.ndim != 3 or img.shape[-1 if uint8 else 0] != 3:  # a clip here was named "the video" and its time axis
        raise ValueError(f"the image must be float (3, h, w) in [0, 1] or uint8 (h, w, 3), got {img.dtype} {img.shape}")
    video = img[None] if uint8 else img[:, None]
    video = as_unit_cthw(video)
    labels = segment(video)
    objects = parse_caption(caption)
    out = []
    for obj in objects:
        k = COLOR_NAMES.index(obj["color"])
        present, _, _, shapes = _track(labels, k, obj["motion"], video)
        ok = bool(present[0])
        color_ok = ok and (len(objects) > 1 or int(np.bincount(labels[labels >= 0], minlength=len(PALETTE)).argmax()) == k)
        out.append({"present": ok, "color": bool(color_ok), "shape": ok and shapes[0] == obj["shape"],
                    "read_shape": shapes[0] if ok else ""})
    return out


def score_video_strict(video, caption: str, fps: float = 8.0) -> list[StrictScore]:
    """Score one video (float (c, t, h, w) in [0, 1] or uint8 (t, h, w, c)) against its Shapes caption."""
    v = as_unit_cthw(video)
    fps = check_fps(fps)
    labels = segment(v)  # (t, h, w)
    nt = labels.shape[0]
    objects = parse_caption(caption)
    t_all = np.arange(nt) / fps
    out = []
    for obj in objects:
        k = COLOR_NAMES.index(obj["color"])
        present, centres, areas, shapes = _track(labels, k, obj["motion"], v)
        frac = float(present.mean())
        has_speed = obj["motion"] in SPEED_MOTIONS
        if frac < MIN_PRESENT:
            out.append(StrictScore(frac, False, False, False, False, False, False if has_speed else None, None,
                                   "", "", f"present in {frac:.0%} of frames"))
            continue
        majority = max(set(shapes), key=shapes.count)
        stable = shapes.count(majority) / len(shapes)
        color_ok = len(objects) > 1 or int(np.bincount(labels[labels >= 0], minlength=len(PALETTE)).argmax()) == k
        shape_ok = majority == obj["shape"] and stable >= MIN_SHAPE_STABLE
        m = judge_motion(np.asarray(centres), t_all[present], np.asarray(areas), obj["motion"], obj["shape"])
        speed_ok = (m["speed"] == obj["speed"]) if has_speed else None
        motion_ok = m["ok"] and speed_ok is not False
        why = "" if (color_ok and shape_ok and motion_ok) else (
            "another colour dominates" if not color_ok else
            f"shape read {majority} in {stable:.0%} of frames" if not shape_ok else
            m["why"] or f"speed read {m['speed']}")
        out.append(StrictScore(frac, True, bool(color_ok), bool(shape_ok), bool(motion_ok), bool(m["ok"]), speed_ok,
                               m["reversed"], majority, m["speed"], why))
    return out


def shuffle_middle(video: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The temporal-coherence floor's input: (c, t, h, w) with every frame but the first and last shuffled."""
    t = video.shape[1]
    order = np.concatenate([[0], 1 + rng.permutation(t - 2), [t - 1]])
    return video[:, order]


def summarize_strict(scores: list[StrictScore]) -> dict:
    """Accuracies over objects; ``time_reversed`` over directed clips (moving, circling)."""
    if not scores:
        return {}
    speeds = [s.speed for s in scores if s.speed is not None]
    rev = [s.reversed for s in scores if s.reversed is not None]
    return {"n": len(scores), "color": float(np.mean([s.color for s in scores])),
            "shape": float(np.mean([s.shape for s in scores])), "motion": float(np.mean([s.motion for s in scores])),
            "direction": float(np.mean([s.direction for s in scores])),
            "speed": float(np.mean(speeds)) if speeds else float("nan"),
            "present": float(np.mean([s.valid for s in scores])),
            "time_reversed": float(np.mean(rev)) if rev else 0.0}


__all__ = ["score_video_strict", "score_image_strict", "summarize_strict", "judge_motion", "shuffle_middle", "StrictScore", "REVERSED"]
