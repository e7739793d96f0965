"""FreeInit (Wu et al. 2023): re-initialise a sample's starting noise from the low frequencies of its own result.

A model is trained on noised clips whose low spatio-temporal frequencies still carry the clip (the signal-to-noise
ratio of a low frequency is far above the pixel average even at the noisiest training step), but sampling starts
from white noise, which has none. FreeInit samples once, diffuses the result back to the starting noise level with
the same noise, keeps the low frequencies of that and takes the high ones from fresh noise, then samples again;
each iteration starts closer to a noise the model was trained on. diffusers implements it as a mixin of its
AnimateDiff pipelines (``enable_free_init``); vidiff's pipelines have one sampling path
(:meth:`~vidiff.pipelines.base.VideoDiffusionPipeline.sample`) that this module's pieces plug into, with the same
settings and filter, so the mixin is not used. The filter is built in one vectorised expression instead of
diffusers' loop over every (t, h, w).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

METHODS = ("butterworth", "gaussian", "ideal")


@dataclass(frozen=True)
class FreeInit:
    """FreeInit's settings, diffusers' names and defaults. ``num_iters``: samplings in all (1: off);
    ``use_fast_sampling``: iteration i of n runs ``steps * (i + 1) / n`` steps (coarse to fine)."""

    num_iters: int = 3
    use_fast_sampling: bool = False
    method: str = "butterworth"
    order: int = 4
    spatial_stop_frequency: float = 0.25
    temporal_stop_frequency: float = 0.25

    def __post_init__(self):
        def number(x) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

        if not (isinstance(self.num_iters, int) and not isinstance(self.num_iters, bool) and 1 <= self.num_iters <= 10):
            raise ValueError(f"FreeInit num_iters must be an integer in 1..10 (1: off), got {self.num_iters!r}")
        if not isinstance(self.use_fast_sampling, bool):
            raise ValueError(f"FreeInit use_fast_sampling must be true or false, got {self.use_fast_sampling!r}")
        if self.method not in METHODS:
            raise ValueError(f"FreeInit method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not (isinstance(self.order, int) and not isinstance(self.order, bool) and 1 <= self.order <= 16):
            raise ValueError(f"FreeInit order must be an integer in 1..16, got {self.order!r}")
        for name in ("spatial_stop_frequency", "temporal_stop_frequency"):
            v = getattr(self, name)
            if not (number(v) and 0 < v <= 1):
                raise ValueError(f"FreeInit {name} must be a number in (0, 1], got {v!r}")

    def as_dict(self) -> dict:
        return asdict(self)

    def steps(self, num_inference_steps: int, iteration: int) -> int:
        """The steps of ``iteration`` (0-based)."""
        if not self.use_fast_sampling:
            return num_inference_steps
        return max(1, int(num_inference_steps / self.num_iters * (iteration + 1)))


def low_pass_filter(shape: tuple[int, int, int], settings: FreeInit) -> torch.Tensor:
    """The (t, h, w) low-pass mask in fftshift-ed frequency order, as diffusers builds it: the normalised distance
    d^2 = ((s / t_stop) * (2 i / T - 1))^2 + (2 j / H - 1)^2 + (2 k / W - 1)^2, with s the spatial stop frequency,
    through a Butterworth (1 / (1 + (d^2 / s^2)^order)), Gaussian (exp(-d^2 / (2 s^2))) or ideal (d^2 <= 2 s) gain."""
    t, h, w = shape
    s, st = settings.spatial_stop_frequency, settings.temporal_stop_frequency

    def axis(n: int) -> torch.Tensor:
        return 2 * torch.arange(n, dtype=torch.float64) / n - 1

    d2 = ((s / st) * axis(t))[:, None, None] ** 2 + axis(h)[None, :, None] ** 2 + axis(w)[None, None, :] ** 2
    if settings.method == "butterworth":
        mask = 1 / (1 + (d2 / s ** 2) ** settings.order)
    elif settings.method == "gaussian":
        mask = torch.exp(-d2 / (2 * s ** 2))
    else:
        mask = (d2 <= 2 * s).double()
    return mask.float()


def mix(low: torch.Tensor, high: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The low frequencies of ``low`` and the high ones of ``high`` (b, c, t, h, w) over the last three axes."""
    dims = (-3, -2, -1)

    def spectrum(x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fftshift(torch.fft.fftn(x.float(), dim=dims), dim=dims)

    m = mask.to(low.device)
    out = spectrum(low) * m + spectrum(high) * (1 - m)
    return torch.fft.ifftn(torch.fft.ifftshift(out, dim=dims), dim=dims).real


def reinitialise(x0: torch.Tensor, noise: torch.Tensor, fresh: torch.Tensor, scheduler, t0: torch.Tensor,
                 settings: FreeInit) -> torch.Tensor:
    """The next iteration's starting sample: ``x0`` (the last result, in the model's space) diffused to the first
    timestep ``t0`` with the first iteration's ``noise``, its low frequencies kept, the high ones from ``fresh``."""
    z = scheduler.add_noise(x0.float(), noise.float(), t0.reshape(1).expand(x0.shape[0]))
    return mix(z, fresh.float(), low_pass_filter(tuple(x0.shape[-3:]), settings))
