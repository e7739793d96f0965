"""Gaussian noise on the frozen image weights while the temporal layers train (``train.image_weight_noise``).

Temporal layers trained on one image model's features learn that model's exact features; run with its style
fine-tune (AnimateDiff's personalization, Lumiere 4.1) they meet slightly different ones and lose part of their motion.
Training them with each frozen image weight tensor perturbed by ``N(0, (scale x its RMS)^2)``, drawn anew for every
micro-batch, has them learn motion that holds for the image models near the original, of which a style fine-tune is
one. Written by hand: accelerate, diffusers and peft have no such hook (the nearest, noisy weights in the
regularisation literature, perturbs trained weights; here only the frozen ones move, and the optimizer never sees
them).

The noise of micro-batch ``m`` comes from a generator seeded by ``(seed, m)`` and not by the rank, so every process
perturbs the same weights the same way and a resumed run draws what an uninterrupted one did. The weights are put back
by copying a kept copy of the originals (not by subtracting the noise, whose rounding would drift them over a run), in
a ``finally``: an interrupted step saves the image model untouched.
"""
from __future__ import annotations

import contextlib

import torch


# the trainer's refusal when the run trains the image weights (checked from the recipe where it can, from the built
# model where freeze_spatial is left to the model's kind)
NOT_FROZEN = ("train.image_weight_noise perturbs the frozen image weights of a temporal-only run, and this run trains "
              "them (train.freeze_spatial false, or a model not inflated from an image model): set "
              "train.freeze_spatial to true or train.image_weight_noise to 0")


class FrozenWeightNoise:
    """``with noise.applied(m): forward and backward`` for micro-batch ``m``: every frozen parameter of ``model``
    (``requires_grad`` False: the image weights under ``train.freeze_spatial``) holds its original plus noise of
    ``scale`` times its own RMS inside the block and exactly its original after it."""

    def __init__(self, model: torch.nn.Module, scale: float, seed: int):
        self.params = [p for p in model.parameters() if not p.requires_grad]
        if not self.params:
            raise ValueError("train.image_weight_noise perturbs the frozen image weights, and this run freezes none: "
                             "set train.freeze_spatial (the default for an inflated model) or image_weight_noise to 0")
        self.seed = int(seed)
        self.originals = [p.detach().clone() for p in self.params]
        self.sigmas = [float(o.float().pow(2).mean().sqrt()) * float(scale) for o in self.originals]

    def draw(self, m: int):
        """The noise of micro-batch ``m``, one tensor per frozen parameter in order (in fp32, on its device), drawn
        as it is taken: one tensor's noise in memory at a time, not a second copy of the image model."""
        device = self.originals[0].device
        # micro_loss's (seed, m, rank) stream for a rank of 1023, which no run has; kept as the figures in
        # docs/inflation.md were drawn with it
        g = torch.Generator(device=device).manual_seed((self.seed * 1_000_003 + m) * 1024 + 1023)
        for o, s in zip(self.originals, self.sigmas):
            yield torch.randn(o.shape, generator=g, device=device) * s

    @contextlib.contextmanager
    def applied(self, m: int):
        try:
            with torch.no_grad():
                for p, o, e in zip(self.params, self.originals, self.draw(m)):
                    p.copy_(o.float() + e)
            yield
        finally:
            self.restore()

    def restore(self) -> None:
        with torch.no_grad():
            for p, o in zip(self.params, self.originals):
                p.copy_(o)
