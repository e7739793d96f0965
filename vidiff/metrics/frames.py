"""The one video-to-frames fold of the metrics (light: torch only)."""

from __future__ import annotations

import torch


def split_frames(videos: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """(b, 3, t, h, w) -> ((b*t, 3, h, w), b, t); anything else is a ValueError."""
    if videos.ndim != 5 or videos.shape[1] != 3:
        raise ValueError(f"expected videos (b, 3, t, h, w), got shape {tuple(videos.shape)}")
    b, c, t, h, w = videos.shape
    return videos.transpose(1, 2).reshape(b * t, c, h, w), b, t
