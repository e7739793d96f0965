"""The one denoising loop and classifier-free guidance, outside any model (STYLE principle 1).

A *denoiser* is ``fn(x_t, t) -> prediction`` in the scheduler's parameterization. Guidance wraps a
denoiser; every pipeline (text-to-video, later SDEdit / MultiDiffusion / conditioning) calls
:func:`denoise` with its own denoiser and start point.
"""

from __future__ import annotations

from typing import Callable

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def classifier_free_guidance(model, text: torch.Tensor, text_mask: torch.Tensor, null_text: torch.Tensor,
                             null_mask: torch.Tensor, scale: float, cond: torch.Tensor | None = None,
                             cond_scale: float = 1.0, rescale: float = 0.0) -> Denoiser:
    """eps = eps(null) + scale * (eps(text) - eps(null)) (Ho & Salimans 2022), one batched forward.

    ``scale == 1`` runs the conditional model alone; ``scale == 0`` the unconditional one. With a conditioning
    video ``cond`` both branches see it. ``cond_scale != 1`` adds guidance on the conditioning video too
    (InstructPix2Pix's two-scale guidance; the null conditioning is all zeros, the "nothing given" mask of
    training): eps = eps(null, 0) + cond_scale * (eps(null, cond) - eps(null, 0)) + scale * (eps(text, cond)
    - eps(null, cond)).
    ``rescale`` (diffusers' ``guidance_rescale``): the guided prediction pulled back towards the spread of the
    text-conditional one (:func:`rescale_guidance`); 0: none.
    """
    text, text_mask, null_text, null_mask = _match_null(text, text_mask, null_text, null_mask)
    if cond is not None and cond_scale != 1.0:
        return _two_scale_guidance(model, text, text_mask, null_text, null_mask, scale, cond, cond_scale, rescale)
    both_text = torch.cat([null_text, text])
    both_mask = torch.cat([null_mask, text_mask])
    both_cond = torch.cat([cond, cond]) if cond is not None else None

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if scale == 1.0:
            return model(x, t, text, text_mask, cond)
        if scale == 0.0:
            return model(x, t, null_text, null_mask, cond)
        t2 = torch.cat([t, t]) if t.dim() else t
        out = model(torch.cat([x, x]), t2, both_text, both_mask, both_cond)
        uncond, condn = out.float().chunk(2)
        return rescale_guidance(uncond + scale * (condn - uncond), condn, rescale)

    return fn


def rescale_guidance(guided: torch.Tensor, conditional: torch.Tensor, phi: float) -> torch.Tensor:
    """Lin et al. 2024 ("Common Diffusion Noise Schedules and Sample Steps are Flawed", 3.4): the guided prediction
    rescaled to the standard deviation of the conditional one (per sample, over the whole clip), mixed back with the
    guided one by ``phi`` (0: guidance unchanged; 1: fully rescaled). Large guidance scales inflate the prediction's
    spread and overexpose; under a schedule that reaches (nearly) zero SNR, as squaredcos_cap_v2 does, the paper pairs
    v-prediction with phi = 0.7. The formula of diffusers' ``rescale_noise_cfg`` (tested equal); written out because
    that function lives in the Stable Diffusion pipeline module, whose import pulls in transformers' CLIP."""
    if phi == 0.0:
        return guided
    dims = list(range(1, guided.ndim))
    rescaled = guided * (conditional.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True))
    return phi * rescaled + (1.0 - phi) * guided


def guidance_from(guided: Denoiser, plain: Denoiser, min_t: float) -> Denoiser:
    """``guided`` on the steps with t >= ``min_t`` and ``plain`` (the conditional model alone: one U-Net pass instead
    of two) below: classifier-free guidance in a limited interval (Kynkaenniemi et al. 2024), here only its clean end
    cut, where a clip's layout and motion are already fixed (diffusers cuts it by step ratio, SDCFGCutoffCallback;
    by timestep the cut does not move with the number of steps)."""

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return guided(x, t) if float(torch.as_tensor(t).flatten()[0]) >= min_t else plain(x, t)

    return fn


def _two_scale_guidance(model, text, text_mask, null_text, null_mask, scale: float, cond: torch.Tensor,
                        cond_scale: float, rescale: float = 0.0) -> Denoiser:
    """The three-branch denoiser of :func:`classifier_free_guidance` with ``cond_scale != 1`` (text and null
    already batched and padded alike by :func:`_match_null`)."""
    texts, masks = torch.cat([null_text, null_text, text]), torch.cat([null_mask, null_mask, text_mask])
    conds = torch.cat([torch.zeros_like(cond), cond, cond])

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t3 = torch.cat([t, t, t]) if t.dim() else t
        none, given, both = model(torch.cat([x, x, x]), t3, texts, masks, conds).float().chunk(3)
        return rescale_guidance(none + cond_scale * (given - none) + scale * (both - given), both, rescale)

    return fn


def _match_null(text, text_mask, null_text, null_mask):
    """The null (negative) prompt repeated to the batch, and both token sequences padded to one length; the
    masks hide the padding."""
    b = text.shape[0]
    if null_text.shape[0] != b:
        null_text, null_mask = null_text.expand(b, -1, -1), null_mask.expand(b, -1)
    L = max(text.shape[1], null_text.shape[1])
    text, text_mask = _pad(text, text_mask, L)
    null_text, null_mask = _pad(null_text, null_mask, L)
    return text, text_mask, null_text, null_mask


def _pad(x: torch.Tensor, mask: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    extra = length - x.shape[1]
    if extra <= 0:
        return x, mask
    x = torch.cat([x, x.new_zeros(x.shape[0], extra, x.shape[2])], 1)
    mask = torch.cat([mask, mask.new_zeros(mask.shape[0], extra)], 1)
    return x, mask


def timesteps_for(scheduler, num_inference_steps: int, strength: float = 1.0,
                  timesteps: list[int] | None = None) -> torch.Tensor:
    """The scheduler's timesteps (``timesteps``: a custom grid, :func:`set_custom_grid`); with ``strength < 1`` only
    those at or below ``strength * T`` (SDEdit's start time t0 as a fraction of the diffusion time T, Meng et al. 2022),
    whatever the step spacing."""
    if timesteps is None:
        scheduler.set_timesteps(num_inference_steps)
    else:
        set_custom_grid(scheduler, timesteps)
    ts = scheduler.timesteps
    if strength >= 1.0:
        return ts
    if strength <= 0.0:  # no noise: nothing to denoise
        return ts[:0]
    return ts[ts <= strength * scheduler.config.num_train_timesteps]


def set_custom_grid(scheduler, timesteps: list[int]) -> None:
    """``scheduler`` (a call's own copy: its config may change) set to a custom step grid, as diffusers'
    ``retrieve_timesteps`` passes one, or ValueError where it cannot take one: a scheduler whose ``set_timesteps`` has
    no ``timesteps`` (diffusers' rule), or one that refuses it (Karras sigmas)."""
    import inspect

    from vidiff.checks import first_line

    name = type(scheduler).__name__
    if "timesteps" not in inspect.signature(scheduler.set_timesteps).parameters:
        raise ValueError(f"{name} takes no custom timesteps (its set_timesteps has no timesteps argument): use the "
                         f"sampler 'dpm++', 'dpm++-sde' or 'ddpm', or give num_inference_steps")
    if getattr(scheduler.config, "use_lu_lambdas", False):
        # the flag only says how DPM-Solver spaces the steps it makes (uniform log-SNR); a given grid makes none,
        # and diffusers refuses the two together
        scheduler.register_to_config(use_lu_lambdas=False)
    try:
        scheduler.set_timesteps(timesteps=list(timesteps))
    except ValueError as e:
        raise ValueError(f"{name} cannot take custom timesteps: {first_line(e)}") from None


def check_eta(scheduler, eta: float) -> None:
    """``eta`` (DDIM's: the share of the posterior's noise each step adds back; 0 deterministic, 1 as DDPM) is taken
    by a scheduler whose ``step`` has one (diffusers' DDIMScheduler), or is 0. diffusers' pipelines drop it without a
    word for the other schedulers (``prepare_extra_step_kwargs``); here a stochastic sampling the user asked for and did
    not get is refused."""
    import inspect

    if eta != 0.0 and "eta" not in inspect.signature(scheduler.step).parameters:
        raise ValueError(f"eta={eta:g} is DDIM's; {type(scheduler).__name__} takes none: use the sampler 'ddim' "
                         f"(or 'dpm++-sde' / 'ddpm' for stochastic sampling), or eta=0")


@torch.no_grad()
def denoise(fn: Denoiser, scheduler, x: torch.Tensor, timesteps: torch.Tensor, generator: torch.Generator | None = None,
            progress: bool | dict = False, callback: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
            project: Callable[[int, torch.Tensor], torch.Tensor] | None = None, eta: float = 0.0,
            stop: Callable[[], bool] | None = None, step_noise=None) -> torch.Tensor:
    """Run ``scheduler.step`` over ``timesteps`` from ``x`` (already at noise level ``timesteps[0]``). ``progress``: a
    bar or not, or tqdm's options (a pipeline's ``progress_bar_options``).
    ``timesteps`` come from :func:`timesteps_for`, whose ``set_timesteps`` also resets the solver's state.
    ``project(i, x)``, if given, replaces the sample after step ``i`` (e.g. :func:`keep_known`);
    ``callback(i, t, x)`` then returns the sample to go on with. ``eta``: :func:`check_eta`. ``stop()``, if given, is
    asked before every step; True skips the remaining steps (diffusers' ``pipe.interrupt``). ``step_noise``: a
    :class:`~vidiff.diffusion.step_noise.StepNoise` whose frame-correlated noise replaces the fresh noise a stochastic
    scheduler adds on its steps (checked by :func:`~vidiff.diffusion.step_noise.check_step_noise`)."""
    from tqdm.auto import tqdm

    check_eta(scheduler, eta)
    kw = {"generator": generator} if "generator" in scheduler.step.__code__.co_varnames else {}
    if eta != 0.0:
        kw["eta"] = eta
    bar = progress if isinstance(progress, dict) else {"desc": "denoising", "disable": not progress, "leave": False}
    for i, t in enumerate(tqdm(timesteps, **bar)):
        if stop is not None and stop():
            break
        tt = t.to(x.device).expand(x.shape[0])
        # the model's input as the scheduler scales it: the identity for DDPM / DDIM / DPM-Solver, x / sqrt(sigma^2 +
        # 1) for the Euler family (without it a pipe.scheduler swapped in as in diffusers gave garbage, or NaN)
        pred = fn(scheduler.scale_model_input(x, t), tt).to(x.dtype)
        fresh = None if step_noise is None else step_noise.draw(t, x.shape, generator, x.device, torch.float32)
        if fresh is None:
            x = scheduler.step(pred, t, x, **kw).prev_sample
        else:  # DDIM refuses a generator beside the noise; the noise was drawn from it
            x = scheduler.step(pred, t, x, **{k: v for k, v in kw.items() if k != "generator"},
                               variance_noise=fresh).prev_sample
        if project is not None:
            x = project(i, x)
        if callback is not None:
            x = callback(i, t, x)
    return x


def keep_known(scheduler, timesteps: torch.Tensor, x0: torch.Tensor, known: torch.Tensor, noise: torch.Tensor):
    """A ``project`` for :func:`denoise` that pastes the given pixels back after every step: where ``known``
    is 1, the sample becomes ``x0`` noised (with the initial ``noise``) to the level of the next step, and
    ``x0`` itself after the last one. This is the replacement of diffusers' inpainting pipelines for models
    without mask channels (and of RePaint without resampling); here it backs up a conditional model, so that
    the output keeps the given pixels exactly while the model's conditioning makes the rest agree with them."""
    def project(i: int, x: torch.Tensor) -> torch.Tensor:
        k, clean, eps = (v.to(x.device, x.dtype) for v in (known, x0, noise))
        if i + 1 < len(timesteps):
            clean = scheduler.add_noise(clean, eps, timesteps[i + 1:i + 2].expand(x.shape[0]).to(x.device))
        return k * clean + (1 - k) * x

    return project
