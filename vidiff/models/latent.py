"""Latent video diffusion through an image autoencoder (diffusers ``AutoencoderKL``, e.g. Stable Diffusion's VAE).

A folder with ``vae/`` is a latent model: training encodes every frame of a clip with the VAE (times its
``scaling_factor``) and the U-Net denoises latents; sampling decodes the latents frame by frame. Any
``AutoencoderKL`` folder works (Align-your-Latents, AnimateDiff and VideoCrafter run SD's VAE per frame the same
way); a VAE with temporal layers in its decoder (VidRD) is a later step.
"""

from __future__ import annotations

from pathlib import Path

import torch

VAE_DIR = "vae"


def load_vae(path: str | Path, dtype: torch.dtype = torch.float32):
    """An ``AutoencoderKL`` from a diffusers folder (the default weights, else the fp16 variant of a download made
    with ``variant="fp16"``); ValueError when it is not one."""
    from diffusers import AutoencoderKL

    from vidiff.pipelines.folder import load_diffusers_model

    return load_diffusers_model(path, AutoencoderKL, "autoencoder", dtype).eval().requires_grad_(False)


def vae_scale(config) -> int:
    """Pixels per latent along each side (8 for Stable Diffusion's VAE), from an AutoencoderKL's config (or its
    config.json as a dict)."""
    return 2 ** (len(config["block_out_channels"]) - 1)


def latent_size(height: int, width: int, scale: int) -> tuple[int, int]:
    """Pixel sides -> the model's (divided by the autoencoder's ``scale``; 1 for a pixel model). ValueError when
    they are not multiples of it."""
    if height % scale or width % scale:
        raise ValueError(f"height and width must be multiples of {scale} (the autoencoder's scale), got {height}x{width}")
    return height // scale, width // scale


def _frames(x: torch.Tensor) -> torch.Tensor:
    b, c, t, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)


def _clips(x: torch.Tensor, b: int) -> torch.Tensor:
    bt, c, h, w = x.shape
    return x.reshape(b, bt // b, c, h, w).permute(0, 2, 1, 3, 4)


@torch.no_grad()
def encode_frames(vae, video: torch.Tensor, generator: torch.Generator | None = None, chunk: int = 32) -> torch.Tensor:
    """(b, 3, t, H, W) in [-1, 1] -> latents (b, C, t, H/f, W/f), a sample of each frame's posterior times the
    VAE's ``scaling_factor`` (diffusers' training scripts); ``generator`` makes the sample reproducible."""
    frames = _frames(video).to(vae.device, vae.dtype)
    out = []
    for i in range(0, len(frames), chunk):
        dist = vae.encode(frames[i:i + chunk]).latent_dist
        noise = torch.randn(dist.mean.shape, generator=generator).to(dist.mean)
        out.append(dist.mean + dist.std * noise)
    return _clips(torch.cat(out) * vae.config.scaling_factor, video.shape[0])


@torch.no_grad()
def decode_frames(vae, latents: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """Latents (b, C, t, h, w) -> video (b, 3, t, h f, w f) in about [-1, 1], decoded frame by frame."""
    frames = _frames(latents).to(vae.device, vae.dtype) / vae.config.scaling_factor
    out = [vae.decode(frames[i:i + chunk]).sample for i in range(0, len(frames), chunk)]
    return _clips(torch.cat(out), latents.shape[0])


__all__ = ["load_vae", "vae_scale", "encode_frames", "decode_frames", "VAE_DIR"]
