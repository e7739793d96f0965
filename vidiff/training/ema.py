"""Exponential moving average of model weights (the weights a diffusion run ships)."""

from __future__ import annotations

import copy

import torch

# prefixes FSDP / activation checkpointing put in parameter names (the EMA copy has the plain names)
_WRAPPERS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")


def _plain(name: str) -> str:
    for w in _WRAPPERS:
        name = name.replace(w, "")
    return name.removeprefix("module.")  # DDP


class EMA:
    """``ema = decay * ema + (1 - decay) * w`` with the warm-up ``decay_t = min(decay, (1 + t) / (10 + t))``.

    The copy lives wherever :meth:`to` puts it (the training device: ``lerp_`` between a CPU copy and CUDA
    weights fails, the bug timm #2127 and diffusers #7048 fixed). Weights are matched by name, so the trained model
    may be wrapped (DDP, FSDP with its full parameters gathered)."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def to(self, device: torch.device | str) -> "EMA":
        self.model.to(device)
        return self

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        params = dict(self.model.named_parameters())
        for name, p in model.named_parameters():
            e = params.get(_plain(name))
            if e is None or e.shape != p.shape:
                raise RuntimeError(f"EMA: the trained model's {name} {tuple(p.shape)} has no counterpart in the EMA copy "
                                   f"(a sharded parameter must be gathered first)")
            e.lerp_(p.detach().to(e.device, e.dtype), 1 - d)
        buffers = dict(self.model.named_buffers())
        for name, b in model.named_buffers():
            e = buffers.get(_plain(name))
            if e is not None:
                e.copy_(b)
