"""MultiDiffusion along time (Bar-Tal et al. 2023; Lumiere 3.2 and appendix C).

A video longer than the model's window is denoised as overlapping temporal windows. At every step the
windows' predictions are fused into one global prediction by the least-squares solution of

    argmin_J  sum_i || W_i * (F_i(J) - Phi_i(J)) ||^2,

which for per-frame weights is the weighted mean, at every frame, of the windows that cover it. Because
a scheduler step is affine in the model's prediction (DDIM, DPM-Solver, the DDPM mean), fusing the
predictions is the same as fusing the windows' denoised states. ``stride == window`` (no overlap) is the
ablation: each window is then denoised on its own and seams can appear at window boundaries.

This wraps a denoiser (STYLE principle 1); it knows nothing of the model inside.
"""

from __future__ import annotations

from typing import Callable

import torch

from vidiff.diffusion.sampling import Denoiser


def temporal_windows(num_frames: int, window: int, stride: int) -> list[tuple[int, int]]:
    """``[start, end)`` windows of length ``window`` every ``stride`` frames; the last one ends at the clip's end."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
    if stride > window:
        raise ValueError(f"stride ({stride}) must not exceed the window ({window}): frames would be skipped")
    if num_frames <= window:
        return [(0, num_frames)]
    starts = list(range(0, num_frames - window + 1, stride))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return [(s, s + window) for s in starts]


WINDOW_WEIGHTINGS = ("uniform", "triangle")


def window_weights(length: int, kind: str = "uniform") -> torch.Tensor:
    """Per-frame weights W_i of one window: "uniform" (the paper's average) or "triangle" (a linear
    cross-fade that favours each window's centre)."""
    if kind == "uniform":
        return torch.ones(length)
    if kind == "triangle":
        pos = torch.arange(length, dtype=torch.float32)
        return torch.minimum(pos + 1, length - pos) / ((length + 1) / 2)
    raise ValueError(f"unknown window weighting {kind!r}; allowed: {', '.join(WINDOW_WEIGHTINGS)}")


def multidiffusion(window_fn: Callable[[slice], Denoiser], num_frames: int, window: int, stride: int,
                   weighting: str = "uniform") -> Denoiser:
    """A denoiser over the whole clip from ``window_fn(frames) -> denoiser of that window``.

    The windows run one after another, so memory holds one window's activations whatever the clip length.
    """
    windows = temporal_windows(num_frames, window, stride)
    fns = [(slice(s, e), window_fn(slice(s, e)), window_weights(e - s, weighting)) for s, e in windows]

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # x: (b, c, T, h, w)
        total = torch.zeros_like(x, dtype=torch.float32)
        weight = torch.zeros(x.shape[2], dtype=torch.float32, device=x.device)
        for sl, f, w in fns:
            w = w.to(x.device)
            total[:, :, sl] += f(x[:, :, sl], t).float() * w.view(1, 1, -1, 1, 1)
            weight[sl] += w
        return total / weight.view(1, 1, -1, 1, 1)  # the least-squares fusion: per-frame weighted mean

    return fn
