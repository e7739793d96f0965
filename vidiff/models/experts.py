"""Noise-range experts: one denoiser made of two U-Nets, each for its part of the diffusion time.

eDiff-I (Balaji et al. 2022) trains an ensemble of expert denoisers, each specialised to a range of noise levels,
because early (high-noise) steps decide the layout and late ones the detail; Wan 2.2 ships a high-noise and a
low-noise model and switches at ``boundary_ratio * num_train_timesteps`` (diffusers' ``WanPipeline``:
``transformer`` for ``t >= boundary``, ``transformer_2`` below). Here ``high`` takes ``t >= boundary`` and ``low``
the rest; both keep the one denoiser contract ``model(x, t, text, text_mask, cond=None)``, so the samplers,
guidance and pipelines are unchanged. Written by hand because diffusers keeps the switch inside each pipeline's
loop, and vidiff's one loop (:func:`~vidiff.diffusion.sampling.denoise`) only sees a denoiser.
"""

from __future__ import annotations

import torch
from torch import nn

HIGH_NOISE_DIR = "high_noise_unet"  # a pipeline folder's high-noise expert, beside unet/ (the low-noise one)
BOUNDARY_KEY = "boundary_ratio"  # vidiff_pipeline.json: the switch as a fraction of num_train_timesteps (Wan 2.2's name)


class TimestepExperts(nn.Module):
    """``high`` for timesteps ``>= boundary``, ``low`` for the others; a batch mixing both runs each model on
    its own examples. Shape checks and channel counts are the low-noise model's (both must agree)."""

    def __init__(self, low: nn.Module, high: nn.Module, boundary: int):
        super().__init__()
        for name in ("sample_channels", "cond_channels", "text_dim"):
            if getattr(low, name) != getattr(high, name):
                raise ValueError(f"the two experts differ in {name}: {getattr(low, name)} and {getattr(high, name)}")
        if not (isinstance(boundary, int) and boundary > 0):
            raise ValueError(f"the experts' boundary must be a positive timestep, got {boundary!r}")
        self.low, self.high, self.boundary = low, high, boundary

    @property
    def sample_channels(self) -> int:
        return self.low.sample_channels

    @property
    def cond_channels(self) -> int:
        return self.low.cond_channels

    @property
    def text_dim(self) -> int:
        return self.low.text_dim

    @property
    def config(self):
        return self.low.config

    def check_input_size(self, num_frames: int, height: int, width: int) -> None:
        self.low.check_input_size(num_frames, height, width)
        self.high.check_input_size(num_frames, height, width)

    def forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        t = t.expand(x.shape[0]) if t.dim() == 0 or t.numel() == 1 else t
        high = t >= self.boundary
        if bool(high.all()):
            return self.high(x, t, text, text_mask, cond)
        if not bool(high.any()):
            return self.low(x, t, text, text_mask, cond)
        out = torch.empty_like(x)
        for sel, model in ((high, self.high), (~high, self.low)):
            c = None if cond is None else cond[sel]
            out[sel] = model(x[sel], t[sel], text[sel], text_mask[sel], c).to(out.dtype)
        return out
