"""The one video-to-frames fold of the metrics (light: torch only)."""

from __future__ import annotations

import torch


def split_frames(videos: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """(b, 3, t, h, w) -> ((b*t, 3, h, w), b, t); anything else is a ValueError."""
    if videos.ndim != 5 or videos.shape[1] != 3:
        raise ValueError(f"expected videos (b, 3, t, h, w), got shape {tuple(videos.shape)}")
    b, c, t, h, w = videos.shape
    return videos.transpose(1, 2).reshape(b * t, c, h, w), b, t


def check_videos(videos, name: str = "videos", frames: bool = False) -> torch.Tensor:
    """``videos`` if it is a float tensor (b, 3, t, h, w) (``frames``: (n, 3, h, w)) with every value in [0, 1], else
    one ValueError: uint8 clips went through the feature networks as 0-255 floats, and [-1, 1] or NaN clips gave a
    figure without a word."""
    layout = "(n, 3, h, w)" if frames else "(b, 3, t, h, w)"
    if not isinstance(videos, torch.Tensor):
        raise ValueError(f"{name} must be a float tensor {layout} in [0, 1], got {type(videos).__name__}")
    if videos.ndim != (4 if frames else 5) or videos.shape[1] != 3:
        raise ValueError(f"expected {name} {layout}, got shape {tuple(videos.shape)}")
    if not videos.is_floating_point():
        raise ValueError(f"{name} must be float in [0, 1], got {videos.dtype} (divide 8-bit frames by 255)")
    if videos.numel() == 0:
        raise ValueError(f"{name} must hold at least one frame of at least 1x1 pixels, got shape {tuple(videos.shape)}")
    if not bool(torch.isfinite(videos).all()):
        raise ValueError(f"{name} hold NaN or infinite values")
    lo, hi = float(videos.min()), float(videos.max())
    if lo < -1e-5 or hi > 1 + 1e-5:  # float rounding of a blend may reach 1 + 1e-7
        raise ValueError(f"{name} must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")
    return videos


def check_real(real) -> bool:
    """The ``real`` flag of the distribution metrics' ``update``: a bool ("no" counted as real)."""
    if not isinstance(real, bool):
        raise ValueError(f"real must be True or False, got {real!r}")
    return real
