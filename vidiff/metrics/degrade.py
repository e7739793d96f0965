"""Controlled degradations of videos, to check that every metric moves the right way (tests, benchmark).

Each takes float videos ``(b, 3, t, h, w)`` in [0, 1] and a severity in [0, 1] (0: unchanged) and is
deterministic given ``seed``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def noise(v: torch.Tensor, severity: float, seed: int = 0) -> torch.Tensor:
    """Additive Gaussian noise, sigma = 0.3 * severity."""
    g = torch.Generator().manual_seed(seed)
    return (v + 0.3 * severity * torch.randn(v.shape, generator=g)).clamp(0, 1)


def blur(v: torch.Tensor, severity: float, seed: int = 0) -> torch.Tensor:
    """Spatial Gaussian blur, sigma = 2 px * severity (at 32 px)."""
    sigma = 2.0 * severity * v.shape[-1] / 32
    if sigma <= 0:
        return v
    r = max(1, int(3 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    b, c, t, h, w = v.shape
    y = v.transpose(1, 2).reshape(b * t * c, 1, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return y.reshape(b, t, c, h, w).transpose(1, 2)


def shuffle(v: torch.Tensor, severity: float, seed: int = 0) -> torch.Tensor:
    """Permute a fraction ``severity`` of the frames among themselves (same permutation for the batch)."""
    t = v.shape[2]
    k = int(round(severity * t))
    if k < 2:
        return v
    g = torch.Generator().manual_seed(seed)
    idx = torch.arange(t)
    chosen = torch.randperm(t, generator=g)[:k]
    perm = chosen[torch.roll(torch.arange(k), 1)]  # a cycle: every chosen frame moves
    idx[chosen] = perm
    return v[:, :, idx]


def flicker(v: torch.Tensor, severity: float, seed: int = 0) -> torch.Tensor:
    """Per-frame global brightness jitter: frame * (1 + a), a ~ U(-severity, severity) * 0.8."""
    g = torch.Generator().manual_seed(seed)
    b, c, t = v.shape[:3]
    a = (torch.rand(b, 1, t, 1, 1, generator=g) * 2 - 1) * 0.8 * severity
    return (v * (1 + a)).clamp(0, 1)


def wrong_color(v: torch.Tensor, severity: float, seed: int = 0) -> torch.Tensor:
    """Rotate the colour channels (r, g, b) -> (g, b, r) in a fraction ``severity`` of the videos."""
    b = v.shape[0]
    k = int(round(severity * b))
    out = v.clone()
    out[:k] = v[:k][:, [1, 2, 0]]
    return out


DEGRADATIONS = {"noise": noise, "blur": blur, "shuffle": shuffle, "flicker": flicker, "wrong_color": wrong_color}

__all__ = ["DEGRADATIONS", "noise", "blur", "shuffle", "flicker", "wrong_color"]
