"""Noise schedules, parameterizations and the training loss (DDPM, v-prediction, min-SNR weighting).

The forward process and the samplers are diffusers' schedulers: :func:`make_scheduler` builds any of
them from one :class:`DiffusionConfig`, so training and sampling always share betas and prediction type.
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
import threading
from dataclasses import asdict, dataclass

import torch

from vidiff.diffusion import SAMPLERS


@dataclass(frozen=True)
class DiffusionConfig:
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"  # cosine (Nichol & Dhariwal); "linear", "scaled_linear"
    # "v_prediction", "epsilon", or "sample" (x0): a model that cannot carry per-pixel noise from its input
    # to its output (a super-resolution U-Net with 4x4 patches and fewer channels than patch values) must
    # predict x0, or every step leaves the part of the noise it cannot reproduce in the sample.
    prediction_type: str = "v_prediction"
    # Min-SNR-gamma (Hang et al. 2023); None: plain MSE on the prediction target. For v-prediction the
    # min-SNR weight min(SNR, gamma) / (SNR + 1) goes to 0 at high noise, where layout and motion are
    # decided, so the default is the plain v loss (docs/training.md: the two were level at 1,500 steps on Shapes).
    min_snr_gamma: float | None = None
    # the ends of a "linear" / "scaled_linear" beta schedule (Stable Diffusion: 0.00085, 0.012); None: diffusers'
    # defaults (0.0001, 0.02). Recorded only when set, so older folders read the same.
    beta_start: float | None = None
    beta_end: float | None = None
    # noise correlated across frames (vidiff.diffusion.noise_prior: PYoCo's "mixed" or "progressive", its alpha);
    # None: i.i.d. noise. Training and sampling share it; recorded only when set.
    noise_prior: str | None = None
    noise_prior_alpha: float | None = None

    def __post_init__(self):
        from vidiff.diffusion.noise_prior import check_noise_prior

        check_noise_prior(self.noise_prior, self.noise_prior_alpha)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k == "min_snr_gamma"}

    def schedule(self) -> dict:
        """The noise schedule and prediction type (what a scheduler is built from and a fine-tune must share),
        the unset beta ends left out."""
        return {k: getattr(self, k) for k in SCHEDULE_FIELDS if getattr(self, k) is not None}


SCHEDULE_FIELDS = ("num_train_timesteps", "beta_schedule", "prediction_type", "beta_start", "beta_end")


def make_scheduler(cfg: DiffusionConfig, sampler: str = "dpm++", logsnr_min: float | None = None):
    """A diffusers scheduler for ``sampler`` in :data:`SAMPLERS` with the model's schedule. ``logsnr_min``
    (DPM++ only): steps uniform in log-SNR above it (:func:`logsnr_timesteps`); None: diffusers' spacing,
    uniform in log-SNR from t = T - 1."""
    kw = cfg.schedule()
    if sampler == "ddpm":
        from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
        # clipping the predicted clean clip to [-1, 1] is not linear: under a noise prior the scheduler runs in
        # whitened coordinates (vidiff.diffusion.noise_prior), where the clean clip's range is another
        return DDPMScheduler(**kw, clip_sample=cfg.noise_prior is None)
    if sampler == "ddim":
        from diffusers.schedulers.scheduling_ddim import DDIMScheduler
        return DDIMScheduler(**kw, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing")
    if sampler in ("dpm++", "dpm++-sde"):
        # steps uniform in log-SNR (Lu et al.): uniform timestep spacing leaves the last step too coarse for
        # the cosine schedule (std of an analytic Gaussian 8% low at 20 steps; 2% with log-SNR spacing). The SDE
        # form (Lu et al. 2022, DPM-Solver++(2M) SDE) adds fresh noise at every step, which corrects errors of
        # earlier steps instead of carrying them along (docs/results.md, "Sampling": on Shapes, clips whose
        # path runs coherently in time)
        algorithm = "sde-dpmsolver++" if sampler == "dpm++-sde" else "dpmsolver++"
        solver = dict(algorithm_type=algorithm, solver_order=2, thresholding=False, final_sigmas_type="zero")
        if logsnr_min is not None:
            return dpm_solver_logsnr()(**kw, **solver, lambda_min_clipped=float(logsnr_min))
        return dpm_solver_module().DPMSolverMultistepScheduler(**kw, **solver, use_lu_lambdas=True)
    raise ValueError(f"unknown sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}")


def fresh_scheduler(scheduler):
    """A new scheduler of ``scheduler``'s class and config, without its state (what a pipeline call starts from).

    diffusers' ``from_config`` builds the same thing, but first imports every scheduler class it lists as compatible
    (16 modules, and scipy.stats through the Euler one: about 1 s of a cold ``vidiff generate`` on a 2-core CPU,
    docs/speed.md) to drop other classes' keys from a foreign config; a scheduler's own config has none. A class
    whose ``__init__`` takes ``**kwargs`` goes through ``from_config`` as before."""
    cls = type(scheduler)
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return cls.from_config(scheduler.config)
    config = dict(scheduler.config)
    defaults = set(config.get("_use_default_values", ()))  # left to the class, as from_config does
    kw = {k: v for k, v in config.items() if k in params and k != "self" and k not in defaults}
    new = cls(**kw)
    hidden = {k: v for k, v in config.items() if k not in kw}  # kept in the config, as from_config keeps them
    if "_class_name" in hidden:
        hidden["_class_name"] = cls.__name__
    new.register_to_config(**hidden)
    return new


# A noisy end for DPM-Solver++'s log-SNR spacing (diffusers' ``lambda_min_clipped``), the embedded default's
# (docs/results.md, "Fewer sampling steps"); the cosine schedule reaches log-SNR -19.8 at t = 999, -8.5 at t = 990.
LOGSNR_MIN = -8.5


def logsnr_timesteps(alphas_cumprod: torch.Tensor, num_inference_steps: int, logsnr_min: float = LOGSNR_MIN) -> list[int]:
    """Sampling timesteps uniform in log-SNR from ``logsnr_min`` to the clean end, the first moved to the last
    training timestep (the sampler starts from pure noise), each the nearest training timestep, repeats dropped.

    diffusers' ``use_lu_lambdas`` spaces steps uniformly from the log-SNR of t = T - 1, which for the cosine
    schedule (-19.8) puts 10 of 25 steps at t >= 990, where a clip is still pure noise; its remedy for that
    schedule, ``lambda_min_clipped``, is ignored under ``use_lu_lambdas``. Past about 50 steps the grid is finer
    than the training timesteps near t = 0 and repeats are dropped (fewer steps than asked)."""
    ac = alphas_cumprod.double()
    logsnr = (ac / (1 - ac)).log()
    top = len(ac) - 1
    low = max(float(logsnr[top]), logsnr_min)
    grid = torch.linspace(low, float(logsnr[0]), num_inference_steps + 1)[:-1]  # the last step goes to sigma 0
    ts = [top] + [int((logsnr - v).abs().argmin()) for v in grid[1:]]
    return sorted(set(ts), reverse=True)


def dpm_solver_logsnr():
    """diffusers' DPMSolverMultistepScheduler spacing its steps by :func:`logsnr_timesteps` from its config's
    ``lambda_min_clipped`` (a class made on first use, so that importing this module imports no diffusers)."""
    global _DPMSolverLogSNR
    if _DPMSolverLogSNR is None:
        DPMSolverMultistepScheduler = dpm_solver_module().DPMSolverMultistepScheduler

        class DPMSolverLogSNRScheduler(DPMSolverMultistepScheduler):
            def set_timesteps(self, num_inference_steps=None, device=None, mu=None, timesteps=None):
                if timesteps is None and num_inference_steps is not None:
                    timesteps = logsnr_timesteps(self.alphas_cumprod, num_inference_steps, self.config.lambda_min_clipped)
                    num_inference_steps = None
                super().set_timesteps(num_inference_steps, device=device, mu=mu, timesteps=timesteps)

        DPMSolverLogSNRScheduler.__qualname__ = DPMSolverLogSNRScheduler.__name__  # pickled by name, through
        DPMSolverLogSNRScheduler.__module__ = __name__  # this module's __getattr__
        _DPMSolverLogSNR = DPMSolverLogSNRScheduler
    return _DPMSolverLogSNR


_DPMSolverLogSNR = None

DPM_SOLVER_MODULE = "diffusers.schedulers.scheduling_dpmsolver_multistep"


def dpm_solver_module():
    """diffusers' DPM-Solver++ module, imported without importing scipy.stats until something uses it.

    The module runs ``if is_scipy_available(): import scipy.stats`` at import, for one option only (``use_beta_sigmas``,
    which no vidiff folder sets): 0.8-1.1 s of a cold ``vidiff generate`` of about 10 s on a 2-core CPU
    (docs/speed.md). importlib's LazyLoader cannot defer it (Python 3.11's import statement reads a lazy module's
    ``__spec__``, which loads it), so the module is imported with diffusers' availability check answering no, then
    gets the real check back and a ``scipy`` that imports scipy.stats on first use: the beta-sigma option still works
    (tested equal to a process that imported scipy.stats first). Only that module is imported inside the switch (its
    package and imports are loaded before it); when it or scipy.stats is already loaded nothing is switched."""
    if DPM_SOLVER_MODULE in sys.modules or "scipy.stats" in sys.modules:
        return importlib.import_module(DPM_SOLVER_MODULE)
    import diffusers.configuration_utils  # noqa: F401  everything the module imports, loaded outside the switch
    import diffusers.schedulers.scheduling_utils  # noqa: F401
    import diffusers.utils
    import diffusers.utils.torch_utils  # noqa: F401

    # One switch at a time (the serve page builds its pipelines in gradio's worker threads, one per tab): a second
    # thread entering while the first has the check switched off would take the stand-in for the real check and put
    # it back for good.
    with _SWITCH_LOCK:
        if DPM_SOLVER_MODULE in sys.modules:
            return sys.modules[DPM_SOLVER_MODULE]
        available = diffusers.utils.is_scipy_available
        diffusers.utils.is_scipy_available = lambda: False
        try:
            module = importlib.import_module(DPM_SOLVER_MODULE)
        finally:
            diffusers.utils.is_scipy_available = available
        if getattr(module, "is_scipy_available", None) is not None:
            module.is_scipy_available = available
        if "scipy" not in vars(module) and available():
            module.scipy = _ScipyOnFirstUse()
        return module


_SWITCH_LOCK = threading.Lock()


class _ScipyOnFirstUse:
    """Stands for the ``scipy`` package in diffusers' DPM-Solver module; the first attribute read imports scipy.stats."""

    def __getattr__(self, name: str):
        importlib.import_module("scipy.stats")
        return getattr(importlib.import_module("scipy"), name)


def __getattr__(name: str):
    if name == "DPMSolverLogSNRScheduler":
        return dpm_solver_logsnr()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def shift_timesteps(timesteps: torch.Tensor, scheduler, shift: float) -> torch.Tensor:
    """Map training timesteps drawn for the model's schedule to those of the same schedule shifted to more
    noise: log-SNR(t) - 2 log(shift), the resolution shift of simple diffusion (Hoogeboom et al. 2023) and the
    timestep shift of SD3 / Open-Sora, here for a video's temporal redundancy: an object seen in 16 frames is
    still located at noise levels where one frame is not, so a clip's layout and motion are decided at higher
    noise than an image's. Each t goes to the timestep whose log-SNR is nearest the shifted one; ``shift`` 1
    returns ``timesteps`` unchanged. Sampling is untouched (the schedule stays the model's)."""
    if shift == 1.0:
        return timesteps
    ac = scheduler.alphas_cumprod.double()
    logsnr = (ac / (1 - ac)).log()
    target = logsnr[timesteps.cpu()] - 2 * math.log(shift)
    nearest = (logsnr[None, :] - target[:, None]).abs().argmin(1)  # (batch, T): a few thousand values
    return nearest.to(timesteps.device, timesteps.dtype)


def predicted_x0(pred: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor,
                 prediction_type: str) -> torch.Tensor:
    """The clean-sample estimate (x0) of a prediction at (variance-preserving) ``x_t``, timestep ``t`` (b,) or scalar."""
    a = alphas_cumprod.to(x_t.device)[torch.as_tensor(t, device=x_t.device).long().reshape(-1)]
    a = a.float().view(-1, *([1] * (x_t.dim() - 1)))
    x, p = x_t.float(), pred.float()
    if prediction_type == "v_prediction":
        out = a.sqrt() * x - (1 - a).sqrt() * p
    elif prediction_type == "epsilon":
        out = (x - (1 - a).sqrt() * p) / a.sqrt()
    elif prediction_type == "sample":
        out = p
    else:
        raise ValueError(f"unknown prediction_type {prediction_type!r}; allowed: epsilon, v_prediction, sample")
    return out.to(x_t.dtype)


def diffusion_loss(model_fn, x0: torch.Tensor, scheduler, cfg: DiffusionConfig, generator: torch.Generator | None = None,
                   timesteps: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                   pixel_weight: torch.Tensor | None = None, target_fn=None,
                   temporal_weight: float = 0.0) -> torch.Tensor:
    """Per-example weighted MSE of the denoiser on x_t = sqrt(a) x0 + sqrt(1-a) eps, t ~ U{0..T-1}.

    ``model_fn(x_t, t) -> prediction``. Returns a (b,) tensor. ``pixel_weight`` (broadcastable to x0)
    weights the squared error per element before the mean, e.g. more weight on known pixels. ``target_fn(x_t, t)``,
    if given, replaces the prediction target (a teacher's output, for distillation). With
    ``min_snr_gamma`` the weight is min(SNR, gamma) / SNR for epsilon, min(SNR, gamma) / (SNR + 1) for v and
    min(SNR, gamma) for x0 (all relative to x0-MSE). ``temporal_weight`` w > 0 (video, (b, c, t, h, w)) adds w times
    the mean square of the error's differences between neighbouring frames, before the min-SNR weight.
    """
    b = x0.shape[0]
    if timesteps is None:
        timesteps = torch.randint(0, cfg.num_train_timesteps, (b,), generator=generator, device=x0.device)
    if noise is None:
        from vidiff.diffusion.noise_prior import sample_noise

        noise = sample_noise(cfg, tuple(x0.shape), generator, x0.device, x0.dtype)
    x_t = scheduler.add_noise(x0, noise, timesteps)
    if target_fn is not None:
        target = target_fn(x_t, timesteps).float()
    elif cfg.prediction_type == "v_prediction":
        target = scheduler.get_velocity(x0, noise, timesteps)
    elif cfg.prediction_type == "epsilon":
        target = noise
    elif cfg.prediction_type == "sample":
        target = x0
    else:
        raise ValueError(f"unknown prediction_type {cfg.prediction_type!r}; allowed: epsilon, v_prediction, sample")
    pred = model_fn(x_t, timesteps).float()
    diff = pred - target
    err = diff.pow(2)
    if pixel_weight is not None:
        err = err * pixel_weight.to(err.dtype)
    mse = err.flatten(1).mean(1)
    if temporal_weight and diff.dim() == 5 and diff.shape[2] > 1:
        mse = mse + temporal_weight * (diff[:, :, 1:] - diff[:, :, :-1]).pow(2).flatten(1).mean(1)
    if cfg.min_snr_gamma is None:
        return mse
    ac = scheduler.alphas_cumprod.to(x0.device)[timesteps]
    snr = ac / (1 - ac)
    clipped = snr.clamp(max=cfg.min_snr_gamma)
    weight = {"v_prediction": clipped / (snr + 1), "epsilon": clipped / snr, "sample": clipped}[cfg.prediction_type]
    return mse * weight


_SAMPLER_CLASSES = {"DDPMScheduler": "ddpm", "DDIMScheduler": "ddim", "DPMSolverLogSNRScheduler": "dpm++",
                    "DPMSolverMultistepScheduler": "dpm++"}


def sampler_name(scheduler) -> str:
    """The :data:`SAMPLERS` name of a scheduler :func:`make_scheduler` builds, else its class name (a scheduler
    the user swapped in)."""
    name = _SAMPLER_CLASSES.get(type(scheduler).__name__, type(scheduler).__name__)
    if name == "dpm++" and scheduler.config.get("algorithm_type") == "sde-dpmsolver++":
        return "dpm++-sde"
    return name
