"""Argument checks shared by the library's modules, light enough for the I/O helpers (no torch import).

Each returns the value in its plain Python type or raises one ``ValueError`` naming the argument: bad input to the
library is refused in words, never coerced (2.5 frames, "32", True read as 1).
"""

from __future__ import annotations

import math
import numbers

# The ranges of the settings a user gives, by the CLI flag's name (the library names its own argument in the error:
# in_limits(num_frames, "frames", "num_frames")): (lowest, highest), every value also a finite number. The CLI checks
# its flags against them before any model loads; the library checks the same ranges when it is called directly. Sizes are capped where a typo would
# otherwise allocate without bound (10^9 frames was torch's allocation error). "side" is the library's height and
# width (a latent model makes 1280 x 720); the CLI's square --size keeps to "size". An evaluation's samples and
# the sweep's are >= 2: FVD needs two clips a side (a sweep of 1 failed after the whole evaluation had run).
LIMITS = {
    "frames": (1, 1024), "size": (1, 1024), "side": (1, 8192), "steps": (1, 1000), "guidance": (0.0, 50.0),
    "seed": (0, 2**62), "fps": (0.001, 1000.0), "threads": (0, 1024), "alpha": (0.0, 1.0), "strength": (0.0, 1.0),
    "window": (1, 1024), "stride": (1, 1024), "ssr_steps": (1, 1000), "base_window": (1, 1024),
    "base_stride": (1, 1024), "border": (1, 1024), "condition_guidance": (0.0, 50.0), "samples": (2, 100000),
    "sweep_samples": (2, 100000), "free_init": (1, 10), "batch_size": (1, 4096),
    "guidance_rescale": (0.0, 1.0), "eta": (0.0, 1.0),
}


def whole(value, name: str) -> int:
    """``value`` as an int, or ValueError naming ``name``: 2.5, "32" and True went through int() once; 16.0 (a
    folder's JSON may hold one) loses nothing."""
    if isinstance(value, bool) or not (isinstance(value, numbers.Integral)
                                       or (isinstance(value, float) and value.is_integer())):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def number(value, name: str) -> float:
    """``value`` as a float, or ValueError naming ``name``: "0.5" went through float() and True read as 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def whole_in(value, name: str, lo: int, hi: int | None = None) -> int:
    """``value`` as an int in ``[lo, hi]`` (no upper end when ``hi`` is None), or ValueError naming the range."""
    v = whole(value, name)
    if v < lo or (hi is not None and v > hi):
        allowed = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be an integer {allowed}, got {v}")
    return v


def finite(value, name: str) -> float:
    """``value`` as a finite float (NaN and inf refused)."""
    v = number(value, name)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v}")
    return v


def in_limits(value, limit: str, name: str | None = None):
    """``value`` if it lies in ``LIMITS[limit]`` (an int range takes whole numbers only), else one ValueError naming
    ``name`` (default: the limit's own name) and the range."""
    low, high = LIMITS[limit]
    name = name or limit
    v = whole(value, name) if isinstance(low, int) else finite(value, name)
    if not low <= v <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {v}")
    return v


def first_line(e: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (its type's name when it has none), at most ``limit`` characters:
    what a one-line error quotes of a library's failure."""
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:limit]
