"""Low-resolution conditioning for spatial super-resolution (Lumiere 3.2; Imagen Video's SSR).

The SSR model sees the low-resolution video upsampled to the output size, concatenated to its noisy
input (``cond_channels = 3``). Training adds Gaussian noise of a random level to that conditioning
(noise-conditioning augmentation, Ho et al. 2021, "Cascaded diffusion models") so that the SSR
tolerates the base model's imperfect output; sampling uses one fixed level.

Videos are ``(b, c, t, h, w)`` in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOWRES_CHANNELS = 3


def upsample_video(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear upsampling of every frame: (b, c, t, h, w) -> (b, c, t, height, width)."""
    b, c, t, h, w = video.shape
    frames = video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)  # (b t) c h w
    up = F.interpolate(frames.float(), size=(height, width), mode="bilinear", align_corners=False, antialias=False)
    return up.reshape(b, t, c, height, width).permute(0, 2, 1, 3, 4)  # (b, c, t, H, W)


def augment_lowres(cond: torch.Tensor, max_std: float, g: torch.Generator) -> torch.Tensor:
    """Add noise with a per-example std drawn uniformly from [0, max_std] (training)."""
    if max_std <= 0:
        return cond
    std = torch.rand(cond.shape[0], generator=g) * max_std
    noise = torch.randn(cond.shape, generator=g)
    return cond + std.view(-1, 1, 1, 1, 1) * noise


def lowres_condition(lowres: torch.Tensor, height: int, width: int, std: float = 0.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """The SSR's conditioning at sampling time: upsampled, plus noise of a fixed ``std``."""
    up = upsample_video(lowres, height, width)
    if std > 0:
        from diffusers.utils.torch_utils import randn_tensor

        up = up + std * randn_tensor(tuple(up.shape), generator=generator)  # a list: one generator per video
    return up
