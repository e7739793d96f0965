"""Self-conditioning (Chen, Zhang & Hinton 2022, "Analog Bits"; RIN): the U-Net also reads its own previous estimate
of the clean clip.

Training (:func:`self_conditioned_call`): on half the batches the model first predicts without an estimate (zeros,
no gradient), and its estimate of x0 from that prediction is the input of the pass that is trained; on the other half
the estimate is zeros. Sampling (:class:`SelfConditioned`): each step feeds the estimate of the step before, which
costs nothing extra. The motivation here: a periodic motion's phase is chosen in the noisiest steps, frame by frame,
and a model that sees the clip it predicted one step earlier can keep to it.

diffusers has no self-conditioning (its schedulers and pipelines pass only ``x_t`` and ``t``), so the estimate is
carried here, at the model's edge, and the denoiser contract ``fn(x_t, t)`` is unchanged.
"""

from __future__ import annotations

import torch

from vidiff.diffusion.schedule import predicted_x0


def self_conditioned_call(model, x_t: torch.Tensor, t: torch.Tensor, args: tuple, alphas_cumprod: torch.Tensor,
                          prediction_type: str, use_estimate: bool) -> torch.Tensor:
    """One training forward: ``model(x_t, t, *args, self_cond=...)`` with the model's own estimate (computed
    without gradient) when ``use_estimate``, else with zeros (the first sampling step's input)."""
    estimate = None
    if use_estimate:
        with torch.no_grad():
            first = model(x_t, t, *args, self_cond=None)
            estimate = predicted_x0(first, x_t, t, alphas_cumprod, prediction_type).detach()
    return model(x_t, t, *args, self_cond=estimate)


class SelfConditioned:
    """A self-conditioned U-Net called like one without (``model(x, t, text, mask, cond)``): it keeps the estimate of
    x0 from its last call and feeds it to the next. A call at a timestep not below the last one starts a new
    trajectory (no estimate). Under classifier-free guidance each branch keeps its own estimate; when guidance stops
    (guidance only on the noisier steps), the fully conditioned branch's estimates go on."""

    def __init__(self, model, alphas_cumprod: torch.Tensor, prediction_type: str):
        self.model, self.alphas_cumprod, self.prediction_type = model, alphas_cumprod, prediction_type
        self.reset()

    def reset(self) -> None:
        self.estimate, self.last_t = None, None

    def __call__(self, x: torch.Tensor, t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        t_now = float(torch.as_tensor(t).flatten()[0])
        est = self.estimate
        if self.last_t is None or t_now >= self.last_t:
            est = None
        elif est is not None and est.shape[0] != x.shape[0]:
            # guided branches [null; text] (or [none; cond; both]) -> the model alone: the fully conditioned, last one
            n, m = est.shape[0], x.shape[0]
            est = est[-m:] if n > m and n % m == 0 else None
        out = self.model(x, t, *args, self_cond=None if est is None else est.to(x.dtype), **kwargs)
        self.estimate = predicted_x0(out, x, t, self.alphas_cumprod, self.prediction_type).detach()
        self.last_t = t_now
        return out
