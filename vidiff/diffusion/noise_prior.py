"""Video noise priors: noise correlated across frames (PYoCo, Ge et al. 2023; VideoFusion's shared "base" noise).

A frame of a video is close to its neighbours, and i.i.d. noise per frame throws that away: PYoCo draws each
frame's noise as the sum of a part shared by the clip and a part of its own, so that every frame's noise is still
N(0, I) but frames are correlated:

- ``mixed``: eps_i = sqrt(a^2 / (1 + a^2)) shared + sqrt(1 / (1 + a^2)) own_i; any two frames correlate by
  a^2 / (1 + a^2) (0.5 at a = 1);
- ``progressive``: eps_0 = own_0, eps_i = (a eps_{i-1} + own_i) / sqrt(1 + a^2); frames k apart correlate by
  (a / sqrt(1 + a^2))^k.

Both are stationary, so any run of consecutive frames (a MultiDiffusion window, a shorter clip) has the same
prior at its own length. Noise is correlated along the frame axis only: eps = L z with z i.i.d. and L the lower
Cholesky factor of the frame covariance (:func:`frame_factor`). Training adds that noise; sampling runs the
scheduler in the whitened coordinates y = L^-1 x, where the noise is i.i.d. again, and maps back: a diffusers
scheduler's step is linear in the sample and the prediction (without clipping or thresholding, which vidiff's
samplers leave off under a prior), so this is the same process with correlated noise, the stochastic samplers'
fresh noise included (:func:`whitened`). Written by hand: neither diffusers nor PYoCo's (unreleased) code
provides a frame-correlated prior.
"""

from __future__ import annotations

import functools
import math

import torch

KINDS = ("mixed", "progressive")
DEFAULT_ALPHA = 1.0  # the mixed prior's frames then correlate by 0.5


def check_noise_prior(kind, alpha) -> None:
    """One ValueError naming the setting and what is allowed."""
    if kind is None:
        if alpha is not None:
            raise ValueError(f"diffusion.noise_prior_alpha is set ({alpha!r}) without diffusion.noise_prior "
                             f"(one of {', '.join(KINDS)})")
        return
    if kind not in KINDS:
        raise ValueError(f"diffusion.noise_prior must be one of {', '.join(KINDS)} or null (i.i.d. noise), got {kind!r}")
    if alpha is not None and not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool)
                                  and math.isfinite(alpha) and 0 < alpha <= 100):
        raise ValueError(f"diffusion.noise_prior_alpha must be a number in (0, 100] or null ({DEFAULT_ALPHA}), got {alpha!r}")


def resolved_alpha(alpha: float | None) -> float:
    return DEFAULT_ALPHA if alpha is None else float(alpha)


def frame_factor(kind: str, alpha: float | None, num_frames: int) -> torch.Tensor:
    """The (num_frames, num_frames) lower-triangular L with L L^T the prior's frame covariance (float64)."""
    a = resolved_alpha(alpha)
    n = num_frames
    if kind == "mixed":
        own, shared = 1.0 / (1.0 + a * a), a * a / (1.0 + a * a)
        return torch.linalg.cholesky(own * torch.eye(n, dtype=torch.float64) + shared * torch.ones(n, n, dtype=torch.float64))
    if kind == "progressive":
        rho, own = a / math.sqrt(1.0 + a * a), 1.0 / math.sqrt(1.0 + a * a)
        i = torch.arange(n, dtype=torch.float64)
        k = i[:, None] - i[None, :]
        # eps_i = rho^i z_0 + own * sum_{0 < j <= i} rho^(i-j) z_j
        L = torch.where(k >= 0, rho ** k.clamp(min=0), torch.zeros((), dtype=torch.float64))  # rho^(i-j) below the diagonal
        L[:, 1:] *= own
        return L
    raise ValueError(f"diffusion.noise_prior must be one of {', '.join(KINDS)}, got {kind!r}")


def _apply(M: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """M (t, t) applied along the frame axis of x (b, c, t, h, w)."""
    return torch.einsum("ij,bcjhw->bcihw", M.to(x.device, x.dtype), x)


class NoisePrior:
    """The prior of a clip of ``num_frames`` frames: ``correlate`` makes i.i.d. noise the prior's, ``whiten``
    undoes it."""

    def __init__(self, kind: str, alpha: float | None, num_frames: int):
        self.kind, self.alpha = kind, alpha
        self.L = frame_factor(kind, alpha, num_frames)
        self.L_inv = torch.linalg.inv(self.L)

    def correlate(self, z: torch.Tensor) -> torch.Tensor:
        return _apply(self.L, z)

    def whiten(self, x: torch.Tensor) -> torch.Tensor:
        return _apply(self.L_inv, x)


def noise_prior(diffusion, num_frames: int) -> NoisePrior | None:
    """The prior of a :class:`~vidiff.diffusion.schedule.DiffusionConfig` at ``num_frames``; None for i.i.d. noise
    (no prior, or a single frame). Built once per setting: the trainer asks for it at every micro-batch and a
    sampling call twice."""
    if diffusion.noise_prior is None or num_frames < 2:
        return None
    return _prior(diffusion.noise_prior, diffusion.noise_prior_alpha, num_frames)


@functools.lru_cache(maxsize=16)
def _prior(kind: str, alpha: float | None, num_frames: int) -> NoisePrior:
    return NoisePrior(kind, alpha, num_frames)


def describe(diffusion) -> dict | None:
    """The prior as an output's settings record it (alpha resolved), None for i.i.d. noise."""
    if diffusion.noise_prior is None:
        return None
    return {"kind": diffusion.noise_prior, "alpha": resolved_alpha(diffusion.noise_prior_alpha)}


def sample_noise(diffusion, shape: tuple[int, ...], generator: torch.Generator | list[torch.Generator] | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Noise of ``shape`` as the model's forward process draws it: i.i.d. Gaussian, correlated across frames (axis
    2 of a (b, c, t, h, w) video) under the model's prior."""
    from diffusers.utils.torch_utils import randn_tensor

    # one generator: the stream torch.randn always drew; a list (one per video): each video's noise from its own
    z = randn_tensor(tuple(shape), generator=generator, device=device, dtype=dtype)
    prior = noise_prior(diffusion, shape[2]) if len(shape) == 5 else None
    return z if prior is None else prior.correlate(z)


def check_scheduler(prior: NoisePrior | None, scheduler) -> None:
    """Sampling in whitened coordinates is exact for a linear step only: a scheduler that clips or thresholds its
    predicted clean sample is refused under a prior."""
    if prior is not None and (scheduler.config.get("clip_sample") or scheduler.config.get("thresholding")):
        raise ValueError(f"this model samples with a noise prior ({prior.kind}), which needs a scheduler without "
                         f"clip_sample or thresholding; {type(scheduler).__name__} has one set")


def whitened(prior: NoisePrior, fn, project=None, callback=None):
    """A denoiser (and the optional ``project`` / ``callback`` of :func:`~vidiff.diffusion.sampling.denoise`) in
    the whitened coordinates: each takes and returns y = L^-1 x while the model sees x. For epsilon, v and x0
    predictions alike the prediction of y is L^-1 times that of x (each is linear in the clean clip and the
    noise)."""
    def fn_w(y, t):
        return prior.whiten(fn(prior.correlate(y), t).to(y.dtype))

    project_w = None if project is None else (lambda i, y: prior.whiten(project(i, prior.correlate(y))))
    callback_w = None if callback is None else (lambda i, t, y: prior.whiten(callback(i, t, prior.correlate(y))))
    return fn_w, project_w, callback_w
