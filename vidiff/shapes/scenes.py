"""The Shapes benchmark: procedural captioned videos with per-frame ground truth.

Spec: shared/specs/shapes-benchmark.md. A scene is drawn from an integer seed (and a split), so the
same seed always gives the same pixels; it renders at any resolution / fps / length from the same
continuous description. Canvas coordinates are in [0, 1]^2, origin top-left, y down.

Video layout returned by :func:`render`: float32 ``(c, t, h, w)`` in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from vidiff.checks import whole_in
from vidiff.io.video import check_fps

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 80, 255),
    "yellow": (255, 255, 0),
    "magenta": (255, 0, 255),
    "cyan": (0, 255, 255),
    "white": (255, 255, 255),
}
SHAPES = ("circle", "square", "triangle")
MOTIONS = (
    "moving left", "moving right", "moving up", "moving down",
    "bouncing left and right", "bouncing up and down", "circling",
    "growing", "shrinking", "standing still",
)
SPEEDS = ("slowly", "normal", "quickly")  # "normal" has no word in the caption
SPEED_MOTIONS = {m for m in MOTIONS if m.startswith(("moving", "bouncing")) or m == "circling"}
MOVE_SPEED = {"slowly": 0.1, "normal": 0.2, "quickly": 0.3}  # canvas units / s
PERIOD = {"slowly": 4.0, "normal": 2.0, "quickly": 0.75}  # s, bouncing and circling
RADIUS = 0.15
CIRCLE_RADIUS = 0.2
MAX_TRAVEL = 0.68

HELD_OUT_COLOR_SHAPE = {("yellow", "triangle"), ("blue", "circle"), ("white", "square")}
HELD_OUT_SHAPE_MOTION = {("triangle", "circling")}
SPLITS = {"train": 0, "test": 1}


def half_extents(shape: str, r: float) -> tuple[float, float, float, float]:
    """(left, right, top, bottom) distance from the centre to the object's bounding box."""
    if shape == "triangle":  # equilateral, pointing up, circumradius r, centred on its centroid
        return (r * math.sqrt(3) / 2, r * math.sqrt(3) / 2, r, r / 2)
    return (r, r, r, r)


@dataclass(frozen=True)
class ShapeObject:
    color: str
    shape: str
    motion: str
    speed: str = "normal"
    # start centre (for circling: the orbit centre), start angle / bounce phase in [0, 1)
    x0: float = 0.5
    y0: float = 0.5
    phase: float = 0.0

    def caption(self) -> str:
        speed = f"{self.speed} " if self.motion in SPEED_MOTIONS and self.speed != "normal" else ""
        return f"a {self.color} {self.shape} {speed}{self.motion}"

    def scale(self, t: np.ndarray, duration: float) -> np.ndarray:
        if self.motion == "growing":
            return 0.6 + 0.8 * t / duration
        if self.motion == "shrinking":
            return 1.4 - 0.8 * t / duration
        return np.ones_like(t)

    def centre(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Object centre at times ``t`` (seconds), Shapes spec 'Motions'."""
        x = np.full_like(t, self.x0)
        y = np.full_like(t, self.y0)
        m = self.motion
        if m.startswith("moving"):
            s = MOVE_SPEED[self.speed]
            dx, dy = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[m.split()[1]]
            return x + dx * s * t, y + dy * s * t
        if m.startswith("bouncing"):
            lo, hi = self._bounce_range()
            u = (t / PERIOD[self.speed] + self.phase) % 1.0
            tri = 1.0 - np.abs(2.0 * u - 1.0)  # triangle wave in [0, 1], touches both walls
            pos = lo + (hi - lo) * tri
            return (pos, y) if m == "bouncing left and right" else (x, pos)
        if m == "circling":  # clockwise on screen (y points down)
            ang = 2 * math.pi * (self.phase + t / PERIOD[self.speed])
            return x + CIRCLE_RADIUS * np.cos(ang), y + CIRCLE_RADIUS * np.sin(ang)
        return x, y

    def _bounce_range(self) -> tuple[float, float]:
        left, right, top, bottom = half_extents(self.shape, RADIUS)
        if self.motion == "bouncing left and right":
            return left, 1.0 - right
        return top, 1.0 - bottom


@dataclass(frozen=True)
class Scene:
    objects: tuple[ShapeObject, ...]
    seed: int = 0
    split: str = "train"

    @property
    def caption(self) -> str:
        return " and ".join(o.caption() for o in self.objects)

    def to_dict(self) -> dict:
        return {"seed": self.seed, "split": self.split, "caption": self.caption,
                "objects": [asdict(o) for o in self.objects]}


def is_held_out(obj: ShapeObject) -> bool:
    return (obj.color, obj.shape) in HELD_OUT_COLOR_SHAPE or (obj.shape, obj.motion) in HELD_OUT_SHAPE_MOTION


def check_timing(num_frames: int, fps: float) -> tuple[int, float]:
    """A clip length (whole, >= 1) and frame rate (finite, > 0) to draw scenes at, or one ValueError (fps 0 was a
    ZeroDivisionError, NaN drew a scene, 0 frames rendered an empty clip)."""
    return whole_in(num_frames, "num_frames", 1), check_fps(fps)


def allowed_motions(num_frames: int, fps: float) -> list[str]:
    """Motions whose trajectory fits the clip ('moving' only while its travel fits the canvas)."""
    num_frames, fps = check_timing(num_frames, fps)
    duration = num_frames / fps
    out = []
    for m in MOTIONS:
        if m.startswith("moving") and MOVE_SPEED["slowly"] * duration > MAX_TRAVEL:
            continue
        out.append(m)
    return out


def check_motion_weights(weights: dict, key: str = "motion_weights") -> None:
    """A ValueError unless ``weights`` maps motion names to finite numbers >= 0 that leave some motion drawable."""
    import math

    for m, w in weights.items():
        if m not in MOTIONS:
            raise ValueError(f"{key}: unknown motion {m!r}; allowed: {', '.join(MOTIONS)}")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"{key}[{m!r}] must be a finite number >= 0 (a relative weight; unlisted motions weigh "
                             f"1), got {w!r}")
    if all(weights.get(m, 1.0) == 0 for m in MOTIONS):
        raise ValueError(f"{key} gives every motion weight 0")


def _place(rng: np.random.Generator, shape: str, motion: str, speed: str, duration: float) -> tuple[float, float, float]:
    """Draw (x0, y0, phase) so that the object stays fully inside the canvas for the whole clip."""
    max_scale = 1.4 if motion in ("growing", "shrinking") else 1.0
    left, right, top, bottom = half_extents(shape, RADIUS * max_scale)
    lo_x, hi_x, lo_y, hi_y = left, 1.0 - right, top, 1.0 - bottom
    phase = 0.0
    if motion.startswith("moving"):
        travel = MOVE_SPEED[speed] * duration
        d = motion.split()[1]
        if d == "left":
            lo_x += travel
        elif d == "right":
            hi_x -= travel
        elif d == "up":
            lo_y += travel
        else:
            hi_y -= travel
    elif motion == "circling":
        lo_x, hi_x = lo_x + CIRCLE_RADIUS, hi_x - CIRCLE_RADIUS
        lo_y, hi_y = lo_y + CIRCLE_RADIUS, hi_y - CIRCLE_RADIUS
        phase = float(rng.uniform(0, 1))
    elif motion.startswith("bouncing"):
        period = PERIOD[speed]
        # the first wall contact falls inside the clip's middle so that even a slow bounce reverses
        for _ in range(100):
            phase = float(rng.uniform(0, 1))
            first_contact = min(((k / 2 - phase) % 1.0) * period for k in (1, 2))
            if period < duration or 0.2 * duration <= first_contact <= 0.8 * duration:
                break
    x0 = float(rng.uniform(lo_x, max(lo_x, hi_x)))
    y0 = float(rng.uniform(lo_y, max(lo_y, hi_y)))
    return x0, y0, phase


def sample_scene(seed: int, split: str = "train", num_frames: int = 16, fps: float = 8.0,
                 num_objects: int | None = None, two_object_prob: float = 0.0,
                 only_held_out: bool = False, motion_weights: dict | None = None) -> Scene:
    """Draw a scene deterministically from ``(split, seed)``; train and test streams never overlap.

    Train scenes never contain a held-out combination; test scenes may (``only_held_out`` forces one).
    ``motion_weights``: relative draw weight per motion (unlisted: 1); empty or None draws motions uniformly,
    from the same random stream as always (a seed's scene does not change).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown Shapes split {split!r}; allowed: {sorted(SPLITS)}")
    seed = whole_in(seed, "seed", 0)  # 1.5 drew the scene of seed 1
    num_frames, fps = check_timing(num_frames, fps)
    rng = np.random.default_rng([SPLITS[split], seed])
    duration = num_frames / fps
    motions = allowed_motions(num_frames, fps)
    p = None
    if motion_weights:
        check_motion_weights(motion_weights)
        w = np.array([float(motion_weights.get(m, 1.0)) for m in motions])
        if w.sum() <= 0:
            raise ValueError("motion_weights leave no motion that fits this clip length")
        p = w / w.sum()
    if num_objects is None:
        num_objects = 2 if rng.uniform() < two_object_prob else 1
    for _ in range(1000):
        colors = rng.choice(list(COLORS), size=num_objects, replace=False)
        objs = []
        for c in colors:
            shape = SHAPES[rng.integers(len(SHAPES))]
            motion = motions[rng.integers(len(motions))] if p is None else motions[rng.choice(len(motions), p=p)]
            speed = SPEEDS[rng.integers(3)] if motion in SPEED_MOTIONS else "normal"
            x0, y0, phase = _place(rng, shape, motion, speed, duration)
            objs.append(ShapeObject(str(c), shape, motion, speed, x0, y0, phase))
        held = any(is_held_out(o) for o in objs)
        if split == "train" and held:
            continue
        if only_held_out and not held:
            continue
        return Scene(tuple(objs), seed=int(seed), split=split)
    raise RuntimeError("could not draw a scene")  # unreachable with the spec's combinations


def redraw_scene(scene: Scene, seed: int) -> Scene:
    """Another realisation of the same caption: every object keeps its colour, shape, motion and speed, with
    its start position and phase drawn anew (its own random stream, apart from the train and test scenes).
    Real-vs-real floors compare a scene set with its redraw: what a perfect model, which draws the caption
    but not the test clip's exact positions, would score."""
    rng = np.random.default_rng([7, SPLITS[scene.split], int(seed)])
    duration = 16 / 8.0  # the benchmark's base clip; _place keeps the object inside for it
    objs = tuple(ShapeObject(o.color, o.shape, o.motion, o.speed, *_place(rng, o.shape, o.motion, o.speed, duration))
                 for o in scene.objects)
    return Scene(objs, seed=scene.seed, split=scene.split)


def _sdf(shape: str, px: np.ndarray, py: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Signed distance (canvas units) to a shape centred at the origin; px, py: (t, h, w), r: (t, 1, 1)."""
    if shape == "circle":
        return np.sqrt(px**2 + py**2) - r
    if shape == "square":
        qx, qy = np.abs(px) - r, np.abs(py) - r
        outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
        return outside + np.minimum(np.maximum(qx, qy), 0)
    # equilateral triangle pointing up (screen y down), circumradius r, Inigo Quilez's exact SDF
    k = math.sqrt(3.0)
    h = r * k / 2  # half side
    x = np.abs(px) - h
    y = -py + h / k
    fold = x + k * y > 0
    x, y = np.where(fold, (x - k * y) / 2, x), np.where(fold, (-k * x - y) / 2, y)
    x = x - np.clip(x, -2 * h, 0)
    return -np.sqrt(x**2 + y**2) * np.sign(y)


def ground_truth(scene: Scene, num_frames: int = 16, fps: float = 8.0) -> dict[str, np.ndarray]:
    """Per-frame ground truth: centre (n_obj, t, 2), scale (n_obj, t), visible (n_obj, t)."""
    num_frames, fps = check_timing(num_frames, fps)
    t = np.arange(num_frames) / fps
    duration = num_frames / fps
    cs, ss = [], []
    for o in scene.objects:
        x, y = o.centre(t)
        cs.append(np.stack([x, y], -1))
        ss.append(o.scale(t, duration))
    centre = np.stack(cs).astype(np.float32)
    return {"centre": centre, "scale": np.stack(ss).astype(np.float32),
            "visible": np.ones(centre.shape[:2], dtype=bool)}


STYLES = ("filled", "outlined")


def render(scene: Scene, num_frames: int = 16, fps: float = 8.0, resolution: int = 32,
           style: str = "filled") -> np.ndarray:
    """Render a scene to float32 ``(3, t, h, w)`` in [0, 1], anti-aliased by analytic (SDF) coverage.

    ``style``: "filled" (the benchmark) or "outlined" (a style variant: a 0.05-wide outline, 1.6 px at 32 px).
    """
    resolution = whole_in(resolution, "resolution", 1)
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; allowed: {', '.join(STYLES)}")
    gt = ground_truth(scene, num_frames, fps)
    coords = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution
    py, px = np.meshgrid(coords, coords, indexing="ij")  # (h, w)
    video = np.zeros((num_frames, resolution, resolution, 3), dtype=np.float32)
    for i, o in enumerate(scene.objects):
        cx = gt["centre"][i, :, 0][:, None, None]  # (t, 1, 1)
        cy = gt["centre"][i, :, 1][:, None, None]
        r = (RADIUS * gt["scale"][i])[:, None, None]
        d = _sdf(o.shape, px[None] - cx, py[None] - cy, r) * resolution  # pixels
        if style == "outlined":
            d = np.abs(d + 0.025 * resolution) - 0.025 * resolution
        cover = np.clip(0.5 - d, 0.0, 1.0)[..., None]  # (t, h, w, 1)
        rgb = np.asarray(COLORS[o.color], dtype=np.float32) / 255.0
        video = video * (1 - cover) + rgb * cover  # later objects drawn on top
    return np.ascontiguousarray(video.transpose(3, 0, 1, 2))  # (t h w c) -> (c t h w)


def caption_vocabulary(num_frames: int = 16, fps: float = 8.0) -> list[str]:
    """Every single-object caption of the benchmark (train and held-out)."""
    caps = []
    for c in COLORS:
        for s in SHAPES:
            for m in allowed_motions(num_frames, fps):
                for sp in (SPEEDS if m in SPEED_MOTIONS else ("normal",)):
                    caps.append(ShapeObject(c, s, m, sp).caption())
    return caps


def caption_words() -> list[str]:
    """Every word a Shapes caption uses (two-object captions join two with "and"): the vocabulary a model trained
    on Shapes knows, written into its folder so that a caption with other words is warned about."""
    import re

    words = {w for c in caption_vocabulary() for w in re.findall(r"[a-z]+", c)} | {"and"}
    return sorted(words)


@dataclass
class ShapesConfig:
    num_frames: int = 16
    fps: float = 8.0
    resolution: int = 32
    two_object_prob: float = 0.0
    image_prob: float = 0.0  # fraction of training items that are single frames (joint image-video)
    style: str = "filled"
    lowres: int = 0  # also render at this resolution (super-resolution pairs)
    motion_weights: dict = field(default_factory=dict)  # relative draw weight per motion (sample_scene)
    extra: dict = field(default_factory=dict)


class ShapesDataset:
    """Map-style dataset: item ``i`` is the scene of seed ``offset + i`` rendered as in ``config``.

    Returns ``{"video": float32 (c, t, h, w) in [-1, 1], "caption": str}``, plus ``"lowres"`` (the same
    scene rendered at ``config.lowres``) for super-resolution pairs.
    """

    def __init__(self, config: ShapesConfig, split: str = "train", length: int = 10**9, offset: int = 0):
        self.config, self.split, self.length, self.offset = config, split, length, offset

    def __len__(self) -> int:
        return self.length

    def scene(self, i: int) -> Scene:
        c = self.config
        return sample_scene(self.offset + i, self.split, c.num_frames, c.fps, two_object_prob=c.two_object_prob,
                            motion_weights=c.motion_weights)

    def __getitem__(self, i: int) -> dict:
        c = self.config
        scene = self.scene(i)
        video = render(scene, c.num_frames, c.fps, c.resolution, c.style)
        item = {"video": video * 2.0 - 1.0, "caption": scene.caption}
        if c.lowres:
            item["lowres"] = render(scene, c.num_frames, c.fps, c.lowres, c.style) * 2.0 - 1.0
        return item
