"""Frame-correlated fresh noise for the stochastic samplers (the noise each step of DPM++ SDE or DDIM with eta > 0
adds back).

A stochastic sampler draws new noise at every step, i.i.d. across frames like the starting noise. On the
low-noise steps, where a clip's look is decided and its layout no longer, that noise is drawn anew for every frame,
and a detail drawn there (an outline's thickness, a texture) is drawn again for each frame: it flickers. Here each
frame's fresh noise is PYoCo's mixed noise (:mod:`vidiff.diffusion.noise_prior`): a part shared by the clip and a
part of its own, every frame still N(0, I), any two frames correlated by ``correlation``, and only on the steps with
``t < max_t``; the starting noise and the high-noise steps stay i.i.d., as the model was trained. The mixed prior is
stationary, so a MultiDiffusion window or a clip of any length gets the same. Written by hand: diffusers' schedulers
draw their fresh noise i.i.d. (``randn_tensor`` of the sample's shape); their ``step(variance_noise=)`` takes ours,
drawn from the same generator in the same amount, so the steps at or above ``max_t`` are those of i.i.d. sampling,
draw for draw.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported on the first draw: the CLI's parser reads the defaults below without it
    import torch

# chosen on Shapes' validation scenes for a style run on the steps below t = 500 (docs/inflation.md: it took a tenth of
# the outline's flicker away and did not keep more motion on the test scenes); used only when asked for
DEFAULT_CORRELATION = 0.8
DEFAULT_MAX_T = 500


@dataclass(frozen=True)
class StepNoise:
    """``correlation``: of any two frames' fresh noise, in (0, 1); ``max_t``: on the steps with t below it
    (a timestep, 1..num_train_timesteps: 1000 on every step of a 1,000-step model)."""

    correlation: float = DEFAULT_CORRELATION
    max_t: int = DEFAULT_MAX_T

    def __post_init__(self):
        c, t = self.correlation, self.max_t
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not (math.isfinite(c) and 0 < c < 1):
            raise ValueError(f"the step noise's correlation must be a number in (0, 1) (0: i.i.d. noise, the "
                             f"samplers' own), got {c!r}")
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise ValueError(f"the step noise's max_t must be a timestep >= 1 (the steps with t below it), got {t!r}")

    def as_dict(self) -> dict:
        return asdict(self)

    def check_timesteps(self, num_train_timesteps: int) -> None:
        """ValueError unless ``max_t`` is one of a model's timesteps (1..num_train_timesteps)."""
        if self.max_t > num_train_timesteps:
            raise ValueError(f"the step noise's max_t must be a timestep in 1..{num_train_timesteps}, got {self.max_t}")

    def alpha(self) -> float:
        """The mixed prior's alpha: frames correlate by alpha^2 / (1 + alpha^2)."""
        return math.sqrt(self.correlation / (1.0 - self.correlation))

    def draw(self, t, shape: tuple[int, ...], generator, device, dtype) -> torch.Tensor | None:
        """The fresh noise of the step at ``t`` for a (b, c, frames, h, w) sample, or None (the scheduler's own, i.i.d.)
        at or above ``max_t``. Drawn as the scheduler draws its own (``randn_tensor`` of the shape from ``generator``)."""
        import torch
        from diffusers.utils.torch_utils import randn_tensor

        from vidiff.diffusion.noise_prior import _prior

        if int(t) >= self.max_t or len(shape) != 5 or shape[2] < 2:
            return None
        z = randn_tensor(tuple(shape), generator=generator, device=torch.device(device), dtype=dtype)
        return _prior("mixed", self.alpha(), shape[2]).correlate(z)


def check_step_noise(step_noise: StepNoise | None, scheduler, eta: float, num_train_timesteps: int,
                     model_prior: str | None) -> None:
    """ValueError unless ``scheduler`` adds fresh noise that ``step_noise`` can replace: DPM++ SDE, or DDIM with
    eta > 0 (DDPM's step draws its own and takes none), on a model without a noise prior of its own
    (``model_prior``, its ``diffusion.noise_prior``: its sampling already correlates every noise it adds), and
    ``max_t`` within the model's timesteps."""
    if step_noise is None:
        return
    name = type(scheduler).__name__
    sde = str(getattr(scheduler.config, "algorithm_type", "")).startswith("sde-")
    if not (sde or (name == "DDIMScheduler" and eta > 0)):
        what = ("'s step draws its own noise and takes none" if name == "DDPMScheduler"
                else " with eta 0 adds none" if name == "DDIMScheduler" else " adds none")
        raise ValueError(f"correlated step noise replaces the noise a stochastic sampler adds at each step; {name}"
                         f"{what}: use the sampler 'dpm++-sde' (or 'ddim' with eta > 0), or disable it "
                         f"(pipe.disable_correlated_step_noise())")
    if model_prior is not None:
        raise ValueError(f"this model was trained with a noise prior ({model_prior}), and its sampling already "
                         f"correlates every noise it adds across frames; disable the correlated step noise "
                         f"(pipe.disable_correlated_step_noise())")
    step_noise.check_timesteps(num_train_timesteps)
