"""Argument checks shared by the library's modules, light enough for the I/O helpers (no torch import).

Each returns the value in its plain Python type or raises one ``ValueError`` naming the argument: bad input to the
library is refused in words, never coerced (2.5 frames, "32", True read as 1).
"""

from __future__ import annotations

import math
import numbers


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
