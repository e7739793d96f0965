"""Guidance distillation (Meng et al. 2023, "On distillation of guided diffusion models", stage one).

The student starts as a copy of a trained model and learns to give, in one forward pass, what the frozen
original gives with classifier-free guidance at a fixed scale: sampling it at guidance 1 then costs one U-Net
pass per step instead of two. The paper also feeds the scale to the student (w-conditioning); one fixed scale
keeps the U-Net unchanged, so that the student is a drop-in pipeline folder. diffusers has no trainer for
this (its distillation scripts are for latent consistency models), hence this module.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
from typing import Callable

import torch

from vidiff.diffusion.sampling import classifier_free_guidance


class GuidedTeacher:
    """A frozen copy of ``model`` whose guided prediction at ``scale`` is the student's target."""

    def __init__(self, model: torch.nn.Module, text_encoder, scale: float, autocast: Callable = nullcontext):
        self.model = copy.deepcopy(model).requires_grad_(False).eval()
        self.scale, self.autocast = scale, autocast
        self.null, self.null_mask = text_encoder.encode([""])

    def to(self, device) -> "GuidedTeacher":
        self.model.to(device)
        self.null, self.null_mask = self.null.to(device), self.null_mask.to(device)
        return self

    def target_fn(self, text: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor | None = None):
        """``fn(x_t, t)``: the teacher's guided prediction for captions ``text`` (an empty caption gives the
        unconditional one, which guidance leaves unchanged)."""
        guided = classifier_free_guidance(self.model, text, mask, self.null, self.null_mask, self.scale, cond=cond)

        def fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            with torch.no_grad(), self.autocast():
                return guided(x_t, t)

        return fn
