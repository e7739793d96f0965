"""What every vidiff pipeline shares: the folder format, loading, input checks and the one sampling path.

A pipeline folder holds ``vidiff_pipeline.json`` (task, diffusion config, text encoder, defaults) and the
U-Net under ``unet/`` (diffusers ``save_pretrained``: config.json + safetensors). Task pipelines
(text-to-video, conditional generation, super-resolution, editing) subclass :class:`VideoDiffusionPipeline`
and add one ``__call__`` that builds the start point and the conditioning, then calls :meth:`sample`.
"""

from __future__ import annotations

import json
import numbers
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from vidiff.checks import finite, in_limits, number, whole, whole_in
from vidiff.diffusion.noise_prior import check_scheduler, describe, noise_prior, sample_noise, whitened
from vidiff.diffusion.sampling import (Denoiser, check_eta, classifier_free_guidance, denoise, guidance_from,
                                      keep_known, timesteps_for)
from vidiff.diffusion.schedule import SAMPLERS, DiffusionConfig, fresh_scheduler, make_scheduler, sampler_name
from vidiff.diffusion.step_noise import check_step_noise
from vidiff.io.atomic import atomic_path
from vidiff.models.experts import BOUNDARY_KEY, HIGH_NOISE_DIR, TimestepExperts
from vidiff.models.latent import VAE_DIR, latent_size
from vidiff.pipelines.folder import (
    ADAPTER_DIR,
    LOCAL_TEXT_ENCODER,
    MOTION_FILE,
    PIPELINE_FILE, check_guidance_min_t, load_denoiser, load_text_encoder, load_unet, named_super_resolution,
    read_meta, recorded_defaults, resolve_defaults,
    shared_encoder,
)


OUTPUT_TYPES = ("np", "pt", "pil")


@dataclass
class VideoPipelineOutput:
    """What every pipeline returns. ``videos`` is always the (b, c, t, h, w) float tensor in [0, 1] (for chaining
    pipelines); ``frames`` follows diffusers' video pipelines and the call's ``output_type``: "np" (default), a
    float32 array (b, t, h, w, c) in [0, 1] that ``diffusers.utils.export_to_video(frames[0], path)`` writes as
    is; "pt", a float tensor (b, t, c, h, w) in [0, 1]; "pil", a list (per video) of lists of PIL images.
    ``settings`` holds the call's resolved settings (given values, else the pipeline's defaults), ``prompts`` the
    caption of each video; :meth:`save` writes a video as ``vidiff generate`` does."""

    videos: torch.Tensor
    output_type: str = "np"
    settings: dict = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)

    def save(self, path: str | os.PathLike, index: int = 0, fps: float | None = None, sheet: bool = True,
             view_size: int = 256, overwrite: bool = False, extra: dict | None = None,
             started: float | None = None) -> list[Path]:
        """Write video ``index`` as the CLI does: the video at ``path`` (.mp4, .webm, .gif, or a folder of PNG
        frames; upscaled to ``view_size`` for viewers, 0: native size), its contact sheet ``X.png`` (unless
        ``sheet=False``) and its settings sidecar ``X.json``: the caption, :attr:`settings`, then ``extra`` (the
        seed, the model, notes of your own). ``fps``: None is the model's. ``started``: a ``time.time()`` from
        before the call; the sidecar then records the ``seconds`` since, writing included. Every path is checked
        before anything is written (vidiff.io.outputs: nothing is replaced without ``overwrite``, never a folder
        of other files); returns the paths written."""
        import json
        import time

        from vidiff.checks import whole_in
        from vidiff.io.atomic import write_text_atomic
        from vidiff.io.outputs import check_outputs, sheet_path, sidecar_path
        from vidiff.io.video import check_fps, check_writable, contact_sheet, output_format, write_video

        index = whole_in(index, "index", 0, self.videos.shape[0] - 1)
        if extra is not None and not isinstance(extra, dict):
            raise ValueError(f"extra must be a dict of settings to record, got {type(extra).__name__}")
        if not isinstance(sheet, bool):
            raise ValueError(f"sheet must be True or False, got {sheet!r}")
        path = Path(path)
        output_format(path)
        settings = {"prompt": self.prompts[index]} if index < len(self.prompts) else {}
        settings.update(self.settings)
        settings["fps"] = check_fps(settings.get("fps", 8.0) if fps is None else fps)
        settings.update(extra or {})
        try:
            text = json.dumps(settings, indent=2, allow_nan=False)
        except (TypeError, ValueError) as e:  # a tensor or NaN in extra: found before the video is written
            raise ValueError(f"the settings cannot be written as JSON ({e}); give extra plain values") from None
        outs = [path] + ([sheet_path(path)] if sheet else []) + [sidecar_path(path)]
        check_outputs(outs, overwrite=overwrite)
        check_writable(path)
        frames = self.to_uint8()[index]
        write_video(frames, path, fps=settings["fps"], view_size=view_size, overwrite=overwrite)
        if sheet:
            contact_sheet(frames, sheet_path(path), overwrite=overwrite)
        if started is not None:
            settings["seconds"] = round(time.time() - started, 2)
            text = json.dumps(settings, indent=2)
        write_text_atomic(sidecar_path(path), text, overwrite=overwrite)
        return outs

    @property
    def frames(self):
        if self.output_type == LATENT:  # diffusers' video pipelines return the latents themselves as frames
            return self.videos
        v = self.videos.clamp(0, 1)
        if self.output_type == "pt":
            return v.permute(0, 2, 1, 3, 4)
        if self.output_type == "pil":
            from PIL import Image
            return [[Image.fromarray(f) for f in video] for video in self.to_uint8()]
        return v.permute(0, 2, 3, 4, 1).float().numpy()

    def to_uint8(self) -> np.ndarray:
        """uint8 (b, t, h, w, c): what the writers take (round(255 x), the conversion of every vidiff output)."""
        if self.output_type == LATENT:  # save() and the sheets come here
            raise ValueError("this output holds a latent model's latents (output_type='latent'), not a video: "
                             "pipe.to_pixels(out.frames) decodes them (in [0, 1], as output_type='pt' videos)")
        return (self.videos.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()


LATENT = "latent"


def check_output_type(output_type: str) -> str:
    if output_type == LATENT:
        raise ValueError(f"output_type {LATENT!r} is for text-to-video with a latent model (a folder with vae/); "
                         f"allowed here: {', '.join(OUTPUT_TYPES)}")
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"unknown output_type {output_type!r}; allowed: {', '.join(OUTPUT_TYPES)}")
    return output_type


def check_unit_range(name: str, x: torch.Tensor) -> torch.Tensor:
    """Raise ValueError unless ``x`` is a float tensor in [0, 1] (finite); return it as float32."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"the {name} must be a float tensor with values in [0, 1] (or PIL images, or channel-last "
                         f"numpy arrays), got {type(x).__name__} (vidiff.io.inputs.read_image / read_clip read files "
                         f"into one)")
    if not torch.is_floating_point(x) or x.numel() == 0 or not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError(f"the {name} must be a float tensor with values in [0, 1]")
    return x.float()


def check_generator(generator, batch: int):
    """``generator`` as the samplers take it: None, one ``torch.Generator`` for the whole batch, or (diffusers'
    convention) a list of one per video, so that video i of a batch is the video a single call with generator i
    makes. A list is drawn from through diffusers' ``randn_tensor``; until 2026-12-02 a list was refused."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, (list, tuple)) and generator and all(isinstance(g, torch.Generator) for g in generator):
        if len(generator) != batch:
            n = len(generator)
            raise ValueError(f"generator is a list of {n} generator{'s' if n != 1 else ''} for {batch} "
                             f"video{'s' if batch != 1 else ''}: give one per video, or one torch.Generator for all")
        return list(generator)
    raise ValueError(f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), a list of one "
                     f"per video, or None, got {type(generator).__name__}")


def check_negative_prompt(negative_prompt, batch: int) -> str | list[str]:
    """One negative prompt for every caption of the call (a string; None is diffusers' default, the empty one), or
    a list of one per caption. ValueError on anything else: until 2026-12-02 None and a list were refused, and a
    control character in the library's negative prompt was encoded as it came (the CLI refused it)."""
    from vidiff.conditioning.captions import check_caption

    if negative_prompt is None:
        return ""
    many = isinstance(negative_prompt, (list, tuple))
    if not many and not isinstance(negative_prompt, str):
        raise ValueError(f"negative_prompt must be a string, a list of one per caption, or None, got "
                         f"{type(negative_prompt).__name__}")
    given = list(negative_prompt) if many else [negative_prompt]
    if many and len(given) != batch:
        raise ValueError(f"negative_prompt is a list of {len(given)} for {batch} caption{'s' if batch != 1 else ''}: "
                         f"give one per caption, or one string for all")
    for n in given:
        if not (isinstance(n, str) and n == ""):  # the empty prompt is the unconditional branch
            check_caption(n, "the negative prompt")
    return given if many else negative_prompt


def videos_per_prompt(n, prompts: list[str], negative: str | list[str]) -> tuple[list[str], str | list[str]]:
    """diffusers' ``num_videos_per_prompt``: each caption (and its negative prompt, where one is given per caption)
    repeated ``n`` times in place, so that videos ``i * n`` to ``i * n + n - 1`` are caption ``i``'s."""
    n = in_limits(n, "batch_size", "num_videos_per_prompt")
    prompts = [p for p in prompts for _ in range(n)]
    if isinstance(negative, list):
        negative = [q for q in negative for _ in range(n)]
    return prompts, negative


CALLBACK_TENSOR_INPUTS = ("latents",)  # what a step callback's kwargs can hold (diffusers' _callback_tensor_inputs)


def step_callback(callback: Callable | None, tensor_inputs) -> Callable | None:
    """``callback_on_step_end`` as diffusers calls it with ``callback_on_step_end_tensor_inputs``: its kwargs hold
    the tensors named there (None: ``["latents"]``); a name the pipeline does not have is a ValueError (a TypeError
    before: code written for diffusers passes the argument)."""
    if tensor_inputs is None:
        return callback
    if not isinstance(tensor_inputs, (list, tuple)) or not all(isinstance(k, str) for k in tensor_inputs):
        raise ValueError(f"callback_on_step_end_tensor_inputs must be a list of names, got {tensor_inputs!r}")
    unknown = [k for k in tensor_inputs if k not in CALLBACK_TENSOR_INPUTS]
    if unknown:
        raise ValueError(f"callback_on_step_end_tensor_inputs names {', '.join(map(repr, unknown))}; a vidiff "
                         f"pipeline's step callback gets {', '.join(map(repr, CALLBACK_TENSOR_INPUTS))}")
    if callback is None or set(tensor_inputs) == set(CALLBACK_TENSOR_INPUTS):
        return callback
    names = tuple(tensor_inputs)

    def only_named(pipe, i, t, kwargs):
        return callback(pipe, i, t, {k: kwargs[k] for k in names})

    return only_named


def callers_level() -> int:
    """The ``stacklevel`` that makes a warning raised by the caller of this function name the user's line: the first
    frame outside vidiff and torch's ``no_grad`` wrapper, however deep in the pipelines the warning starts (a fixed
    level named a vidiff line for the video pipelines, whose checks run one or two calls deeper)."""
    import sys

    own = (str(Path(__file__).resolve().parents[1]), str(Path(torch.__file__).resolve().parent / "utils" / "_contextlib"))
    frame, level = sys._getframe(1), 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(own):
        frame, level = frame.f_back, level + 1
    return level


def check_embeds(embeds, mask, dim: int, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``{name}_embeds`` (b, l, ``dim``), finite floats, and ``{name}_attention_mask`` (b, l) of 0 / 1 (True where a
    token is), as float and bool tensors on the CPU."""
    if not isinstance(embeds, torch.Tensor) or embeds.dim() != 3 or not embeds.is_floating_point():
        got = tuple(embeds.shape) if isinstance(embeds, torch.Tensor) else type(embeds).__name__
        raise ValueError(f"{name}_embeds must be a float tensor (batch, tokens, {dim}), got {got} "
                         f"(pipe.encode_prompt makes them)")
    if embeds.shape[-1] != dim or 0 in embeds.shape:
        raise ValueError(f"{name}_embeds has {embeds.shape[-1]} features per token and shape {tuple(embeds.shape)}; this "
                         f"model's text encoder gives {dim} (pipe.encode_prompt makes them)")
    if not bool(torch.isfinite(embeds).all()):
        raise ValueError(f"{name}_embeds hold NaN or infinite values")
    if mask is None:  # diffusers' masked pipelines refuse it too: all-ones would attend to the padding
        raise ValueError(f"{name}_attention_mask must be given with {name}_embeds (pipe.encode_prompt returns both)")
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(embeds.shape[:2]):
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{name}_attention_mask must be a tensor of shape {tuple(embeds.shape[:2])}, got {got}")
    if not bool(((mask == 0) | (mask == 1)).all()) or not bool(mask.bool().any(1).all()):
        raise ValueError(f"{name}_attention_mask must hold 0 / 1 (or bool), with at least one token per row")
    return embeds.detach().float().cpu(), mask.detach().bool().cpu()


def repeat_videos(n: int, x: torch.Tensor) -> torch.Tensor:
    """Each of the batch's given videos, images or masks repeated ``n`` times in place, as :func:`videos_per_prompt`
    repeats the captions."""
    return x if n == 1 else x.repeat_interleave(n, dim=0)


def check_return_dict(return_dict) -> bool:
    """diffusers' ``return_dict`` (False: the tuple ``(frames,)`` instead of the output object), checked before any
    work."""
    if not isinstance(return_dict, bool):  # "no" read as true
        raise ValueError(f"return_dict must be True or False, got {return_dict!r}")
    return return_dict


def check_sampling_args(shape: tuple[int, ...], generator=None, latents=None, callback_on_step_end=None):
    """The arguments every sampling path takes from the caller, checked before any noise is drawn: ValueError
    naming the argument (diffusers' pipelines do the same), not a TypeError from deep in torch. Returns the
    generator as :func:`check_generator` does."""
    generator = check_generator(generator, shape[0])
    if latents is not None and (not isinstance(latents, torch.Tensor) or tuple(latents.shape) != tuple(shape)):
        got = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
        raise ValueError(f"latents must be a tensor of shape {tuple(shape)} (batch, channels, frames, height, "
                         f"width of what the model denoises), got {got}")
    if latents is not None and not latents.is_floating_point():
        dtype = str(latents.dtype).replace("torch.", "")
        raise ValueError(f"latents must be a floating-point tensor (noise), got {dtype}")
    if latents is not None and not bool(torch.isfinite(latents).all()):
        raise ValueError("latents hold NaN or infinite values")
    if callback_on_step_end is not None and not callable(callback_on_step_end):
        raise ValueError(f"callback_on_step_end must be callable (pipe, i, t, kwargs) -> dict, got "
                         f"{type(callback_on_step_end).__name__}")
    return generator


def local_text_encoder(encoder) -> list[Path]:
    """The folders to copy when ``encoder`` is a diffusers-layout text encoder (``.../text_encoder`` with
    ``tokenizer/`` beside it), so that a saved pipeline holds its own encoder; else []."""
    name = Path(str(getattr(encoder, "name", "")))
    if name.name == LOCAL_TEXT_ENCODER and name.is_dir():
        tok = name.parent / "tokenizer"
        return [name, tok] if tok.is_dir() else [name]
    return []


def pipeline_entries() -> set[str]:
    """What :meth:`VideoDiffusionPipeline.save_pretrained` writes in a folder, of every kind of model."""
    from vidiff.conditioning.text import CACHE_FILE
    from vidiff.models.lora import LORA_FILE

    return {PIPELINE_FILE, "unet", HIGH_NOISE_DIR, "scheduler", VAE_DIR, LOCAL_TEXT_ENCODER, "tokenizer", MOTION_FILE,
            ADAPTER_DIR, LORA_FILE, CACHE_FILE}


def check_replaceable(path: Path, extra=(), remedy: str = "move them out, or choose another folder") -> None:
    """ValueError unless the folder ``path`` is a vidiff pipeline holding only what an export writes (and the
    names in ``extra``): replacing it must not delete a file of the user's (notes or samples kept in a run's
    final/ were deleted when the run was resumed and exported again)."""
    from vidiff.io.outputs import check_replaceable_folder

    if not (path / PIPELINE_FILE).exists():
        raise ValueError(f"{str(path)!r} holds files that are not a vidiff pipeline; choose another folder")
    check_replaceable_folder(path, pipeline_entries() | set(extra), "a pipeline export", remedy)


def check_timesteps(timesteps, num_train_timesteps: int) -> list[int]:
    """diffusers' ``timesteps=``: a custom step grid, whole numbers in [0, T) in strictly falling order (what the
    schedulers that take one require), as a list; ValueError otherwise."""
    if isinstance(timesteps, (torch.Tensor, np.ndarray)):
        timesteps = timesteps.tolist()
    if not isinstance(timesteps, (list, tuple)) or not timesteps:
        raise ValueError(f"timesteps must be a non-empty list of whole numbers in falling order, got "
                         f"{timesteps!r}"[:200])
    grid = [whole_in(t, "each of timesteps", 0, num_train_timesteps - 1) for t in timesteps]
    if len(grid) > 1000:
        raise ValueError(f"timesteps holds {len(grid)} steps; at most 1000")
    if any(a <= b for a, b in zip(grid, grid[1:])):
        raise ValueError(f"timesteps must fall strictly (the noisiest step first), got {grid}"[:300])
    return grid


def check_loading_keywords(local_files_only, use_safetensors, variant) -> None:
    """diffusers' ``from_pretrained`` keywords that a user's loading code carries (``use_safetensors=True,
    variant="fp16"`` in most Stable Diffusion examples): the ones that hold for vidiff pass, the rest get one
    ValueError saying what vidiff does instead (they were a TypeError)."""
    if not isinstance(local_files_only, bool):
        raise ValueError(f"local_files_only must be True or False, got {local_files_only!r}")
    if not (use_safetensors is None or use_safetensors is True):
        raise ValueError(f"use_safetensors={use_safetensors!r}: vidiff reads safetensors only (a .bin or .ckpt is a "
                         f"pickle, which runs code); leave it out or pass True")
    if variant is not None:
        raise ValueError(f"variant={variant!r}: vidiff picks each model's weights file from what the folder holds "
                         f"(diffusion_pytorch_model.safetensors, else the one variant present, e.g. .fp16); leave it "
                         f"out and choose the dtype in memory with torch_dtype")


class VideoDiffusionPipeline:
    """A video U-Net, a text encoder, a diffusers scheduler and the folder's defaults; subclasses name their
    ``task``. Pipelines whose folder names a ``super_resolution`` stage run it after the base model (the
    cascade of Lumiere 3.2) unless ``base_only``; ``pipe.super_resolution`` is that stage, ``None`` without one.

    As in diffusers: ``from_pretrained(path_or_name, torch_dtype=...)``, ``pipe.to("cuda")``, ``pipe.scheduler``
    (swap it: ``pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)``), ``generator=``,
    ``callback_on_step_end=``, ``output_type=``."""

    task = "text-to-video"
    cascades = True  # whether a super-resolution stage named by the folder runs after this pipeline
    latent_models = False  # whether it runs latent models (a folder with vae/): it works in pixels otherwise

    def __init__(self, unet, text_encoder, diffusion: DiffusionConfig, defaults: dict | None = None,
                 extra: dict | None = None, scheduler=None, vae=None):
        self.unet = unet.eval()
        self.vae = vae  # an AutoencoderKL: the U-Net denoises its latents (vidiff.models.latent)
        self.text_encoder = text_encoder
        self.diffusion = diffusion
        self.defaults = resolve_defaults(defaults)
        self.extra = dict(extra or {})  # e.g. {"super_resolution": "../ssr"}: a pipeline to run after this one
        self.scheduler = scheduler if scheduler is not None else self.make_scheduler(self.defaults["sampler"])
        self.super_resolution: "VideoDiffusionPipeline | None" = None
        self.style: dict | None = None  # {"style": folder, "alpha": a} on a pipeline made by with_style
        self.path: Path | None = None  # the folder it was loaded from
        self.free_init = None  # a vidiff.diffusion.free_init.FreeInit while enable_free_init is on
        self.step_noise = None  # a vidiff.diffusion.step_noise.StepNoise while enable_correlated_step_noise is on
        self._progress_bar_config: dict = {}  # set_progress_bar_config's tqdm options
        # diffusers' pipe._interrupt: a step callback sets it to skip the rest of the sampling (:attr:`interrupt`)
        self._interrupt = False
        self._steps_done = 0  # the steps the last sampling (round) ran: recorded where it was interrupted
        self._cut = False  # a step (or a FreeInit round) was skipped for _interrupt: the result is not the full one

    @property
    def interrupt(self) -> bool:
        """diffusers' ``pipe.interrupt``: set ``pipe._interrupt = True`` in a ``callback_on_step_end`` to skip the
        sampling's remaining steps (as diffusers' pipelines do, the call then returns what the sampler holds, still
        noisy, and writes it as any other result; its settings record ``interrupted_after_step``; set after the last
        step, it skips nothing and the result is the full one). Each sampling
        starts with it False; a super-resolution stage after an interrupted base stage runs as its own sampling, and
        its callback gets that stage's pipeline."""
        return self._interrupt

    def _stop_here(self) -> bool:
        """Asked before every step: True once ``_interrupt`` is set (by a step callback, or by another thread, as a
        web page's stop button would), else counts the step about to run."""
        if self._interrupt:
            self._cut = True
            return True
        self._steps_done += 1
        return False

    def set_progress_bar_config(self, **kwargs) -> None:
        """diffusers' name: tqdm options for the denoising bars of later calls (and of the super-resolution stage).
        ``disable=False`` shows them on every call; a call's ``progress=True`` shows them whatever this says."""
        if not isinstance(kwargs.get("disable", True), bool):
            raise ValueError(f"disable must be True or False, got {kwargs['disable']!r}")
        self._progress_bar_config = dict(kwargs)
        if self.super_resolution is not None:
            self.super_resolution.set_progress_bar_config(**kwargs)

    def progress_bar_options(self, progress: bool) -> dict:
        """The tqdm options of one call's bars: off unless ``progress`` or ``set_progress_bar_config(disable=False)``."""
        if not isinstance(progress, bool):
            raise ValueError(f"progress must be True or False, got {progress!r}")
        options = {"desc": "denoising", "leave": False, **self._progress_bar_config}
        options["disable"] = not progress and options.get("disable", True)
        return options

    def enable_free_init(self, num_iters: int = 3, use_fast_sampling: bool = False, method: str = "butterworth",
                         order: int = 4, spatial_stop_frequency: float = 0.25,
                         temporal_stop_frequency: float = 0.25) -> None:
        """Sample from noise ``num_iters`` times, each start re-initialised from the low frequencies of the last
        result (FreeInit, Wu et al. 2023; diffusers' ``enable_free_init`` with its names and defaults).
        ``num_iters`` times the sampling cost, or about half that more with ``use_fast_sampling``."""
        from vidiff.diffusion.free_init import FreeInit

        self.free_init = FreeInit(num_iters, use_fast_sampling, method, order, spatial_stop_frequency,
                                  temporal_stop_frequency)

    def disable_free_init(self) -> None:
        self.free_init = None

    def enable_correlated_step_noise(self, correlation: float | None = None, max_t: int | None = None) -> None:
        """The noise a stochastic sampler (DPM++ SDE, DDIM with eta > 0) adds at each step with ``t < max_t``,
        correlated across frames by ``correlation`` (PYoCo's mixed noise; every frame's still N(0, I)), so that what
        the low-noise steps draw is drawn alike in every frame (:mod:`vidiff.diffusion.step_noise`); the starting noise
        and the other steps stay i.i.d. Defaults: :data:`~vidiff.diffusion.step_noise.DEFAULT_CORRELATION` (0.8) and
        :data:`~vidiff.diffusion.step_noise.DEFAULT_MAX_T` (500). This pipeline's sampling only: a super-resolution
        stage after it samples as it did. Refused at sampling time with a deterministic sampler (nothing to
        correlate) or on a model trained with a noise prior."""
        from vidiff.diffusion.step_noise import DEFAULT_CORRELATION, DEFAULT_MAX_T, StepNoise

        noise = StepNoise(DEFAULT_CORRELATION if correlation is None else correlation,
                          DEFAULT_MAX_T if max_t is None else max_t)
        noise.check_timesteps(self.diffusion.num_train_timesteps)  # and again when it samples (the model may change)
        self.step_noise = noise

    def disable_correlated_step_noise(self) -> None:
        self.step_noise = None

    # ------------------------------------------------------------------ persistence
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, torch_dtype: torch.dtype | None = None, text_encoder=None,
                        base_only: bool = False, super_resolution: str | os.PathLike | None = None,
                        dtype: torch.dtype | None = None, *, local_files_only: bool = True,
                        use_safetensors: bool | None = None, variant: str | None = None):
        """A pipeline folder, or the name of an embedded model ("default", "conditional", "ssr",
        "style-outlined"; :mod:`vidiff.registry`). ``torch_dtype`` casts the weights (``dtype`` is the same);
        ``base_only`` skips the super-resolution stage the folder names, ``super_resolution`` replaces it.
        diffusers' loading keywords are taken where they hold for vidiff: ``local_files_only`` (vidiff reads local
        folders only, either way), ``use_safetensors`` None or True (safetensors only); a ``variant`` is refused,
        since each model's weights file is picked from what the folder holds (:func:`weights_variant`)."""
        from vidiff.registry import resolve_model

        if not isinstance(base_only, bool):
            raise ValueError(f"base_only must be True or False, got {base_only!r}")
        check_loading_keywords(local_files_only, use_safetensors, variant)
        path = resolve_model(path)
        meta = read_meta(path)
        task = meta.get("task", "text-to-video")
        if task != cls.task:
            raise ValueError(f"{str(path)!r} is a {task} model; this command needs a {cls.task} model")
        torch_dtype = torch_dtype or dtype or torch.float32
        if not isinstance(torch_dtype, torch.dtype) or not torch_dtype.is_floating_point:
            raise ValueError(f"torch_dtype must be a floating torch.dtype, got {torch_dtype!r}")
        unet = load_denoiser(path, meta, torch_dtype)
        if text_encoder is None:
            text_encoder = load_text_encoder(path, meta)
        if text_encoder.dim != unet.text_dim:
            raise ValueError(f"text encoder width {text_encoder.dim} does not match the model's text_dim {unet.text_dim}")
        extra = {k: v for k, v in meta.items()
                 if k not in ("task", "diffusion", "text_encoder", "text_features", "defaults", "train_config",
                              BOUNDARY_KEY, "versions")}
        vae = None
        if (path / VAE_DIR).is_dir():
            from vidiff.models.latent import load_vae

            if not cls.latent_models:
                raise ValueError(f"{str(path)!r} is a latent model (vae/): only text-to-video generation supports "
                                 f"latent models so far")
            vae = load_vae(path / VAE_DIR, torch_dtype)
            if vae.config.latent_channels != unet.sample_channels:
                raise ValueError(f"{str(path)!r}: the VAE gives {vae.config.latent_channels} latent channels, the U-Net "
                                 f"denoises {unet.sample_channels}")
        pipe = cls(unet, text_encoder, DiffusionConfig(**meta["diffusion"]), meta.get("defaults"), extra, vae=vae)
        pipe.path = path
        if cls.cascades and not base_only:
            ssr = resolve_model(super_resolution) if super_resolution is not None else pipe.named_super_resolution()
            if ssr is not None:
                pipe.super_resolution = pipe.load_super_resolution(ssr, torch_dtype)
        elif super_resolution is not None:
            raise ValueError("super_resolution and base_only=True contradict each other" if cls.cascades
                             else f"a {cls.task} pipeline runs no super-resolution stage")
        return pipe

    @classmethod
    def from_pipe(cls, pipe: "VideoDiffusionPipeline") -> "VideoDiffusionPipeline":
        """A pipeline of this class over ``pipe``'s modules (diffusers' ``from_pipe``): the same U-Net, text encoder,
        VAE, scheduler, defaults and super-resolution stage, shared, not loaded or copied again; e.g.
        ``VideoEditPipeline.from_pipe(pipe)`` edits with the text-to-video model ``pipe`` holds. ValueError where this
        class does not run ``pipe``'s kind of model."""
        if not isinstance(pipe, VideoDiffusionPipeline):
            raise ValueError(f"from_pipe takes a vidiff pipeline, got {type(pipe).__name__}")
        if pipe.task != cls.task:
            raise ValueError(f"{cls.__name__} runs a {cls.task} model; this pipeline holds a {pipe.task} model")
        if pipe.vae is not None and not cls.latent_models:
            raise ValueError(f"{cls.__name__} does not run latent models (vae/) yet")
        return pipe._over(cls, pipe.unet, pipe.style, pipe.super_resolution if cls.cascades else None)

    @property
    def components(self) -> dict:
        """diffusers' ``components``: what this pipeline is built from, by the constructor's names, so that
        ``OtherPipeline(**pipe.components)`` runs the same modules, shared, not copied (``from_pipe`` also carries the
        folder, the style, the super-resolution stage, FreeInit and the correlated step noise)."""
        return {"unet": self.unet, "text_encoder": self.text_encoder, "diffusion": self.diffusion,
                "defaults": self.defaults, "extra": self.extra, "scheduler": self.scheduler, "vae": self.vae}

    def _over(self, cls, unet, style: dict | None, super_resolution) -> "VideoDiffusionPipeline":
        """A ``cls`` pipeline over this one's modules with ``unet``: its folder, FreeInit, step noise and bar options
        carried."""
        other = cls(unet, self.text_encoder, self.diffusion, self.defaults, self.extra, self.scheduler, self.vae)
        other.path, other.style, other.super_resolution = self.path, style, super_resolution
        other.free_init, other._progress_bar_config = self.free_init, dict(self._progress_bar_config)
        other.step_noise = self.step_noise
        return other

    def named_super_resolution(self) -> Path | None:
        """The folder of the super-resolution stage this pipeline's folder names (``"super_resolution"`` in its
        vidiff_pipeline.json, relative to it), or None. Raises ValueError when it names a missing one."""
        return None if self.path is None else named_super_resolution(self.path, self.extra)

    def load_super_resolution(self, path: str | os.PathLike, torch_dtype: torch.dtype = torch.float32):
        """A super-resolution pipeline to run after this one, sharing this pipeline's text encoder where it reads
        the same features."""
        from vidiff.tasks import pipeline_class  # by name: this module does not import its subclasses

        shared = shared_encoder(self.text_encoder, read_meta(Path(path)))
        ssr = pipeline_class("super-resolution").from_pretrained(path, torch_dtype, text_encoder=shared)
        return ssr.to(self.device)

    def save_pretrained(self, path: str | os.PathLike, train_config: dict | None = None, half: bool = False,
                        overwrite: bool = False, extra_files=()) -> None:
        """Write atomically: to a temporary folder, then rename. An existing folder is an error unless
        ``overwrite`` and it is a vidiff pipeline folder (then it is replaced once the new one is complete).
        ``extra_files``: files copied into the folder beside the model (a text cache)."""
        path = Path(path)
        if overwrite and path.is_dir() and any(path.iterdir()):
            check_replaceable(path, extra=[Path(f).name for f in extra_files])
        from vidiff.models.lora import LORA_FILE, fused, has_lora, save_lora

        experts = self.unet if isinstance(self.unet, TimestepExperts) else None  # unet/ + high_noise_unet/
        lora = self.unet if has_lora(self.unet) else None  # a LoRA fine-tune: the folder holds the fused U-Net,
        unet = self.unet if lora is None else fused(lora)   # and the LoRA on its own
        if half:
            import copy
            unet = copy.deepcopy(unet).half()
        if experts is not None:
            unet, high = unet.low, unet.high
        features = getattr(self.text_encoder, "features", "last")
        local = local_text_encoder(self.text_encoder)  # a diffusers folder's text_encoder/ (+ tokenizer/): copied
        meta = {"task": self.task, "diffusion": self.diffusion.to_dict(),
                "text_encoder": LOCAL_TEXT_ENCODER if local else self.text_encoder.name,
                **({"text_features": features} if features != "last" else {}),
                "defaults": recorded_defaults(self.defaults), **self.extra}
        named = self.extra.get("super_resolution")
        if self.path is not None and isinstance(named, str) and not Path(named).is_absolute():
            # the stage is named relative to the folder: the same words written elsewhere name another place (a
            # saved copy of the default named '../ssr' beside itself: missing, or a stranger's folder of that name)
            stage = os.path.abspath(Path(self.path) / named)
            meta["super_resolution"] = os.path.relpath(stage, os.path.abspath(path))
        if experts is not None:
            meta[BOUNDARY_KEY] = experts.boundary / self.diffusion.num_train_timesteps
        if train_config is not None:
            meta["train_config"] = train_config
        from vidiff import versions

        meta["versions"] = versions()  # what wrote the folder (the sidecar of every video says the same)
        with atomic_path(path, overwrite=overwrite) as tmp:
            unet.save_pretrained(tmp / "unet", safe_serialization=True)
            if experts is not None:
                high.save_pretrained(tmp / HIGH_NOISE_DIR, safe_serialization=True)
            self.scheduler.save_config(tmp / "scheduler")  # diffusers' layout: scheduler/scheduler_config.json
            if self.vae is not None:
                self.vae.save_pretrained(tmp / VAE_DIR, safe_serialization=True)
            if local:
                for d in local:
                    shutil.copytree(d, tmp / d.name)
            if hasattr(unet, "motion_state_dict"):  # an inflated model: its new layers also on their own
                from vidiff.models.inflated import save_motion_module

                save_motion_module(unet, tmp / MOTION_FILE, half=next(unet.parameters()).dtype != torch.float32)
            if hasattr(unet, "save_motion_modules"):  # AnimateDiff's: its motion adapter, as diffusers keeps one
                unet.save_motion_modules(str(tmp / ADAPTER_DIR), safe_serialization=True)
            if lora is not None:
                save_lora(lora, tmp / LORA_FILE)
            for f in extra_files:
                shutil.copyfile(f, tmp / Path(f).name)
            (tmp / PIPELINE_FILE).write_text(json.dumps(meta, indent=2))

    # ------------------------------------------------------------------ device and dtype
    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    def to(self, device: str | torch.device | torch.dtype | None = None, dtype: torch.dtype | None = None):
        """Move (and/or cast) the U-Net and the super-resolution stage; returns the pipeline, as diffusers does.
        The text encoder stays on the CPU (its embeddings move); noise is drawn on the CPU, so a seed gives the
        same video on every device."""
        if isinstance(device, torch.dtype):
            device, dtype = None, device
        if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
            raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        if device is not None:
            from vidiff.hardware import resolve_device

            if not isinstance(device, (str, torch.device)):
                raise ValueError(f"unknown device {device!r}; e.g. 'cpu', 'cuda', 'cuda:1'")
            device = resolve_device(device)  # one line for a CUDA device this machine lacks (torch asserts)
        torch.nn.Module.to(self.unet, device=device, dtype=dtype)  # plain (diffusers' .to() warns on fp32-kept modules)
        if self.vae is not None:
            torch.nn.Module.to(self.vae, device=device, dtype=dtype)
        if self.super_resolution is not None:
            self.super_resolution.to(device, dtype)
        return self

    def with_style(self, style_path: str | os.PathLike, alpha: float | None = None) -> "VideoDiffusionPipeline":
        """Stylized generation (Lumiere 4.1): this pipeline with U-Net weights ``alpha * W_style + (1 - alpha) * W``,
        where ``style_path`` holds a fine-tune of this model's spatial weights on a style (``alpha``: default
        the style folder's, else 0.7). The super-resolution stage is kept."""
        from vidiff.registry import resolve_model

        style_path = resolve_model(style_path)
        alpha = resolve_defaults(read_meta(style_path).get("defaults"))["alpha"] if alpha is None else alpha
        alpha = in_limits(alpha, "alpha")  # "0.5" went through float() before; the CLI's --alpha has the same range
        return self._blended(style_path, alpha)

    def _blended(self, style_path: str | os.PathLike, alpha: float) -> "VideoDiffusionPipeline":
        """:meth:`with_style` at any finite ``alpha`` (``W + alpha (W_style - W)``; above 1: with_image_model's
        scale)."""
        from vidiff.models.surgery import check_style_of, interpolate_weights
        from vidiff.registry import resolve_model

        style_path = resolve_model(style_path)
        meta = read_meta(style_path)
        if meta.get("task", "text-to-video") != self.task:
            raise ValueError(f"{str(style_path)!r} is a {meta.get('task')} model, not a {self.task} style fine-tune")
        style = load_unet(style_path / "unet", self.dtype)
        from vidiff.models.image import ImageUNet
        from vidiff.models.inflated import InflatedUNet, with_image_weights

        if isinstance(self.unet, InflatedUNet) and isinstance(style, ImageUNet):  # a style of the image model
            unet = with_image_weights(self.unet, style, alpha)
        elif isinstance(self.unet, InflatedUNet):
            raise ValueError(f"{str(style_path)!r} holds a {type(style).__name__}; a style of a model inflated from an "
                             f"image model is a fine-tune of that image model (a text-to-image folder)")
        elif isinstance(self.unet, TimestepExperts) and isinstance(self.unet.low, InflatedUNet) \
                and isinstance(style, ImageUNet):  # another image model below a boundary (with_image_model): there
            unet = TimestepExperts(with_image_weights(self.unet.low, style, alpha), self.unet.high, self.unet.boundary)
        elif isinstance(style, ImageUNet):
            raise ValueError(f"{str(style_path)!r} is a text-to-image model, not a style of this video model: a style "
                             f"is a fine-tune of this model's spatial weights (train.freeze_temporal), e.g. "
                             f"style-outlined for the default")
        elif isinstance(self.unet, TimestepExperts):  # a style is a fine-tune of the low-noise U-Net (unet/), where
            check_style_of(self.unet.low, style, style_path)  # a clip's look is drawn; the path planner is kept
            low = interpolate_weights(self.unet.low, style, alpha).to(self.device)
            unet = TimestepExperts(low, self.unet.high, self.unet.boundary)
        else:
            check_style_of(self.unet, style, style_path)
            unet = interpolate_weights(self.unet, style, alpha).to(self.device)
        return self._with_unet(unet, {"style": str(style_path), "alpha": alpha})

    def _with_unet(self, unet, style: dict) -> "VideoDiffusionPipeline":
        """This pipeline with another U-Net (a style, another image model), its super-resolution stage kept."""
        return self._over(type(self), unet, style, self.super_resolution)

    def with_image_model(self, image_path: str | os.PathLike, scale: float = 1.0, boundary_ratio: float | None = None,
                         *, lora_scale: float | None = None) -> "VideoDiffusionPipeline":
        """This pipeline (a model inflated from an image model) with another image model of the same layout in
        place of its own, the temporal layers kept: AnimateDiff's personalization (a fine-tune or a style of the
        image model animated by a motion module trained on the original). ``image_path`` may also be a LoRA of the
        image model (a diffusers LoRA file, or a folder holding ``pytorch_lora_weights.safetensors``).

        ``scale``: how much of the other image model's difference from this model's own image weights is applied: a
        LoRA is fused at it (``W + scale * B A``), a fine-tune's weights are ``W + scale * (W_other - W)``. 1: the other
        model as it is; above 1 extrapolates past it (a LoRA scale above 1; task arithmetic's scaling of a fine-tune's
        difference), a stronger style for the same fine-tune; between 0 and 1 it is Lumiere 4.1's interpolation.
        ``lora_scale`` is its former name.

        ``boundary_ratio`` in (0, 1]: the other image weights denoise only the timesteps below ``boundary_ratio *
        num_train_timesteps`` and this model's own the rest, the high-noise steps where a clip's layout and motion
        are decided, with the image weights its temporal layers were trained with; the look is drawn below. It is
        Wan 2.2's boundary between a high- and a low-noise expert (:class:`~vidiff.models.experts.TimestepExperts`),
        here two sets of image weights under the same temporal layers. Default: the folder's own boundary where the
        style was trained as a low-noise expert (``train.timestep_max``), else 1 (every step)."""
        from vidiff.models.lora import is_lora_file
        from vidiff.pipelines.folder import read_meta
        from vidiff.registry import resolve_model

        def checked(ratio, where: str = "") -> float:
            if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not 0.0 < float(ratio) <= 1.0:
                raise ValueError(f"boundary_ratio must be a number in (0, 1] (the fraction of the diffusion time, from "
                                 f"the clean end, that the other image model denoises; 1: every step){where}, got "
                                 f"{ratio!r}")
            return float(ratio)

        if lora_scale is not None:
            if scale != 1.0:
                raise ValueError("give scale or its former name lora_scale, not both")
            warnings.warn("with_image_model(lora_scale=...) is now scale=...", FutureWarning, stacklevel=2)
            scale = lora_scale
        scale = finite(scale, "scale")
        if boundary_ratio is not None:
            boundary_ratio = checked(boundary_ratio)  # before the other image model loads
        swapped = self._swapped_image_model(image_path, scale)
        if boundary_ratio is None:
            folder = None if is_lora_file(image_path) else resolve_model(image_path)
            boundary_ratio = checked(1.0 if folder is None else read_meta(folder).get(BOUNDARY_KEY, 1.0),
                                     f" (from {str(folder)!r})")
        boundary = round(boundary_ratio * self.diffusion.num_train_timesteps)
        if boundary >= self.diffusion.num_train_timesteps:
            return swapped
        if swapped.text_encoder is not self.text_encoder:
            raise ValueError(f"{str(image_path)!r} brings its own text encoder, and the two image models here would "
                             f"read one caption's embedding: give boundary_ratio 1 (every step), or an image model "
                             f"that reads text as this one does")
        experts = TimestepExperts(swapped.unet, self.unet, max(1, boundary))
        return self._with_unet(experts, {**swapped.style, BOUNDARY_KEY: boundary_ratio})

    def _swapped_image_model(self, image_path: str | os.PathLike, scale: float) -> "VideoDiffusionPipeline":
        """:meth:`with_image_model` on every step."""
        import copy

        from vidiff.models.animatediff import MotionUNet
        from vidiff.models.inflated import InflatedUNet
        from vidiff.models.lora import apply_lora, is_lora_file, read_lora

        if not isinstance(self.unet, (InflatedUNet, MotionUNet)):
            raise ValueError(f"--image-model needs a model inflated from an image model (vidiff inflate); this one is "
                             f"a {type(self.unet).__name__}")
        if is_lora_file(image_path):
            state = read_lora(image_path)  # once, for the U-Net and (a kohya LoRA's other half) the text encoder
            unet = copy.deepcopy(self.unet)
            apply_lora(unet.image_unet if isinstance(unet, InflatedUNet) else unet, image_path, scale, inplace=True,
                       state=state)
            other = self._with_unet(unet, {"image_model": str(image_path), "image_model_scale": scale})
            other.text_encoder = self._text_encoder_with_lora(image_path, state, scale)
            return other
        if isinstance(self.unet, MotionUNet):
            raise ValueError("an AnimateDiff model takes another image model by inflating it with the same adapter "
                             "(vidiff inflate IMAGE --arch animatediff --motion-adapter DIR); --image-model here takes "
                             "a LoRA file")
        text_encoder = self._text_encoder_of_image_model(image_path)
        if scale != 1.0 and text_encoder is not self.text_encoder:
            raise ValueError(f"{str(image_path)!r} brings its own text encoder, which a scale cannot reach (it scales "
                             f"the image U-Net's weights): give scale 1")
        swapped = self._blended(image_path, scale)
        swapped.style = {"image_model": swapped.style["style"], "image_model_scale": scale}
        swapped.text_encoder = text_encoder
        return swapped

    def image_pipeline(self) -> "VideoDiffusionPipeline":
        """The image model of a model vidiff inflated from one, as a pipeline of its own (a text-to-image U-Net run
        frame by frame) with this model's image weights as they are now: after training with the image layers
        trainable (``train.freeze_spatial: false``) they are no longer those of the image model it was inflated
        from. Its ``save_pretrained`` writes an image-model folder that a style recipe's ``train.init_from``,
        ``--image-model`` and ``--style`` take: the base to personalize such a model from, as AnimateDiff's
        personalized image models are fine-tunes of the image model its motion module was trained with."""
        from vidiff.models.image import ImageUNet
        from vidiff.models.inflated import InflatedUNet, image_config_of

        if not isinstance(self.unet, InflatedUNet):
            raise ValueError(f"an image model is held by a model inflated from one (vidiff inflate --arch stunet | "
                             f"motion-module); this one is a {type(self.unet).__name__}")
        image = ImageUNet.from_config(image_config_of(self.unet.image_unet))  # vidiff's attention processor
        image.load_state_dict(self.unet.image_unet.state_dict())
        image = torch.nn.Module.to(image, device=self.device, dtype=self.dtype).eval()
        return self._over(type(self), image, None, None)

    def _text_encoder_of_image_model(self, image_path):
        """The text encoder of another image model given to :meth:`with_image_model`: its own ``text_encoder/``
        where it has one and this pipeline reads a diffusers folder's encoder (a DreamBooth that trained its text
        encoder too, as Stable Diffusion fine-tunes often do), else this pipeline's."""
        from vidiff.pipelines.folder import LOCAL_TEXT_ENCODER, load_text_encoder, read_meta
        from vidiff.registry import resolve_model

        path = resolve_model(image_path)
        meta = read_meta(path)
        if (meta.get("text_encoder") != LOCAL_TEXT_ENCODER or not (path / LOCAL_TEXT_ENCODER).is_dir()
                or getattr(self.text_encoder, "features", "last") != meta.get("text_features", "last")):
            return self.text_encoder
        te = load_text_encoder(path, meta)  # its text_encoder/, read as its meta says (or its cache of it)
        if te.dim != self.text_encoder.dim:
            raise ValueError(f"{str(image_path)!r} has a {te.dim}-wide text encoder; this model reads {self.text_encoder.dim}")
        return te

    def _text_encoder_with_lora(self, lora_path, state: dict, scale: float):
        """This pipeline's text encoder, or, when the LoRA at ``lora_path`` (its tensors: ``state``) is a kohya one
        that changes the text encoder too (``lora_te_`` keys), a fresh copy of it (not its cache) with that half
        fused in."""
        from vidiff.conditioning.text import TextEncoder
        from vidiff.models.lora import fuse_kohya_text_lora, is_kohya

        if not is_kohya(state) or not any(k.startswith("lora_te_") for k in state):
            return self.text_encoder
        enc = self.text_encoder
        te = TextEncoder(enc.name, getattr(enc, "max_length", 32), getattr(enc, "features", "last"))
        fuse_kohya_text_lora(te.model, state, scale, repr(str(lora_path)))
        return te

    # ------------------------------------------------------------------ shared pieces
    def size(self) -> tuple[int, int]:
        """The model's (height, width): what a PIL image given to a pipeline is resized to, as the CLI resizes files."""
        return whole(self.defaults["height"], "height"), whole(self.defaults["width"], "width")

    def settings(self, timesteps=None, **given) -> dict:
        """The call's settings: given values, else the pipeline's defaults. ``timesteps``: a custom step grid
        (diffusers' ``timesteps=``), which sets the number of steps. ``guidance_rescale`` and ``eta`` (diffusers'
        names; :func:`~vidiff.diffusion.sampling.rescale_guidance`, DDIM's eta) in [0, 1]."""
        d = self.defaults
        out = {k: (d[k] if given.get(k) is None else given[k]) for k in
               ("num_frames", "height", "width", "num_inference_steps", "guidance_scale", "guidance_rescale", "eta")}
        for k in ("num_frames", "height", "width", "num_inference_steps"):
            out[k] = whole(out[k], k)
        out["guidance_scale"] = number(out["guidance_scale"], "guidance_scale")
        for k in ("guidance_rescale", "eta"):
            out[k] = in_limits(out[k], k)
        if timesteps is not None:
            grid = check_timesteps(timesteps, self.diffusion.num_train_timesteps)
            if given.get("num_inference_steps") is not None and out["num_inference_steps"] != len(grid):
                raise ValueError(f"num_inference_steps={out['num_inference_steps']} and {len(grid)} timesteps "
                                 f"disagree; give one of them")
            out.update(num_inference_steps=len(grid), timesteps=grid)
        return out

    def check_inputs(self, prompt, num_frames: int, height: int, width: int, steps: int, guidance: float,
                     sampler: str | None, batch: int | None = None) -> list[str]:
        """The captions as a list (one caption is repeated for a ``batch`` of given videos), after checking them
        and the sizes, steps, guidance and sampler (None: ``pipe.scheduler``)."""
        prompts = self.check_prompts(prompt)
        if batch is not None and len(prompts) != batch:
            if len(prompts) != 1:
                raise ValueError(f"{len(prompts)} captions for {batch} videos")
            prompts = prompts * batch
        self.check_sizes(num_frames, height, width, steps, guidance, sampler)
        return prompts

    def check_prompts(self, prompt) -> list[str]:
        """The captions as a list, checked; a warning names the words the model never saw in training."""
        from vidiff.conditioning.captions import check_caption

        if not isinstance(prompt, (str, list, tuple)):
            raise ValueError(f"prompt must be a string or a list of strings, got {type(prompt).__name__}")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise ValueError("the caption is empty; give a text prompt such as 'a red circle moving left'")
        for p in prompts:
            check_caption(p)
        unseen = self.unseen_words(prompts)
        if unseen:
            import warnings
            warnings.warn(f"the model never saw {', '.join(repr(w) for w in unseen)} in training; expect it to ignore "
                          f"{'them' if len(unseen) > 1 else 'it'}", UserWarning, stacklevel=callers_level())
        return prompts

    def check_sizes(self, num_frames: int, height: int, width: int, steps: int, guidance: float,
                    sampler: str | None) -> None:
        in_limits(num_frames, "frames", "num_frames")
        in_limits(height, "side", "height"), in_limits(width, "side", "width")
        self.unet.check_input_size(num_frames, *latent_size(height, width, self.latent_scale))
        in_limits(steps, "steps", "num_inference_steps")
        in_limits(guidance, "guidance", "guidance_scale")
        if sampler is not None and sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}")

    def encode_prompt(self, prompt, negative_prompt: str | list[str] | None = "", num_videos_per_prompt: int = 1,
                      do_classifier_free_guidance: bool = True) -> tuple:
        """diffusers' ``encode_prompt``, returning as its pipelines with attention masks do (LTX, PixArt):
        ``(prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask)``, each
        caption repeated ``num_videos_per_prompt`` times; what the U-Net reads (for the default, the text encoder's
        last layer beside its embedding layer), so that a call with ``prompt_embeds=`` gives what the call with the
        captions gives. Without ``do_classifier_free_guidance`` the negative pair is None."""
        if not isinstance(do_classifier_free_guidance, bool):
            raise ValueError(f"do_classifier_free_guidance must be True or False, got {do_classifier_free_guidance!r}")
        prompts = self.check_prompts(prompt)
        negative = check_negative_prompt(negative_prompt, len(prompts))
        prompts, negative = videos_per_prompt(num_videos_per_prompt, prompts, negative)
        text, mask = self.text_encoder.encode(prompts)
        if not do_classifier_free_guidance:
            return text, mask, None, None
        null, null_mask = self.encode_negative(negative)
        if null.shape[0] != text.shape[0]:  # one negative prompt for every caption
            null, null_mask = null.expand(text.shape[0], -1, -1).clone(), null_mask.expand(text.shape[0], -1).clone()
        return text, mask, null, null_mask

    def encode_negative(self, negative: str | list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The negative side's embeddings and mask: one negative prompt is encoded once (one row, repeated to the
        batch where it is used: ``_match_null``); a list, one row per caption."""
        return self.text_encoder.encode([negative] if isinstance(negative, str) else negative)

    def check_prompt_embeds(self, prompt, negative_prompt, prompt_embeds, prompt_attention_mask,
                            negative_prompt_embeds, negative_prompt_attention_mask,
                            num_videos_per_prompt: int = 1, batch: int | None = None) -> tuple | None:
        """None for a call by captions; for a call by ``prompt_embeds`` (diffusers' argument, with the attention
        mask its masked pipelines take), the checked ``(text, mask, null, null_mask)`` the denoiser reads, the
        negative side encoded from ``negative_prompt`` unless given as embeddings too, every row repeated
        ``num_videos_per_prompt`` times; a ``batch`` of given videos takes one row per video or one for all, as
        one caption is repeated to it. ValueError as diffusers' ``check_inputs`` raises it: both or neither of
        ``prompt`` and ``prompt_embeds``, embeddings without their mask, shapes that do not fit the model."""
        if prompt_embeds is None:
            if prompt is None:
                raise ValueError("give a prompt (a caption such as 'a red circle moving left') or prompt_embeds")
            for name, given in (("prompt_attention_mask", prompt_attention_mask),
                                ("negative_prompt_embeds", negative_prompt_embeds),
                                ("negative_prompt_attention_mask", negative_prompt_attention_mask)):
                if given is not None:
                    raise ValueError(f"{name} goes with prompt_embeds; this call gives captions (prompt)")
            return None
        if prompt is not None:
            raise ValueError("give prompt or prompt_embeds, not both")
        text, mask = check_embeds(prompt_embeds, prompt_attention_mask, self.text_encoder.dim, "prompt")
        n = in_limits(num_videos_per_prompt, "batch_size", "num_videos_per_prompt")
        if batch is not None and len(text) != batch:
            if len(text) != 1:
                raise ValueError(f"{len(text)} prompt_embeds rows for {batch} videos")
            text, mask = text.expand(batch, -1, -1), mask.expand(batch, -1)
        if negative_prompt_embeds is None:
            if negative_prompt_attention_mask is not None:
                raise ValueError("negative_prompt_attention_mask goes with negative_prompt_embeds")
            null, null_mask = self.encode_negative(check_negative_prompt(negative_prompt, text.shape[0]))
        else:
            if negative_prompt not in (None, ""):
                raise ValueError("give negative_prompt or negative_prompt_embeds, not both")
            null, null_mask = check_embeds(negative_prompt_embeds, negative_prompt_attention_mask,
                                           self.text_encoder.dim, "negative_prompt")
        if null.shape[0] not in (1, text.shape[0]):
            raise ValueError(f"negative_prompt_embeds has {null.shape[0]} rows for {text.shape[0]} prompt_embeds rows: "
                             f"give one per row, or one for all")
        if null.shape[0] != text.shape[0]:
            null, null_mask = null.expand(text.shape[0], -1, -1), null_mask.expand(text.shape[0], -1)
        return tuple(repeat_videos(n, x) for x in (text, mask, null, null_mask))

    def check_video_call(self, prompt, video: torch.Tensor, num_inference_steps, guidance_scale, negative_prompt,
                         sampler, base_only: bool, ssr_window, ssr_stride, ssr_steps,
                         num_videos_per_prompt=1, embeds: tuple = (None,) * 4,
                         timesteps=None, guidance_rescale=None, eta=None) -> tuple[dict, list, object, int, tuple]:
        """A call on a given video (b, 3, t, h, w) checked before any work: its resolved settings, its captions (one
        repeated to the batch) and its negative prompt(s), each repeated ``num_videos_per_prompt`` times in place
        (:func:`videos_per_prompt`), that number, by which the caller repeats its tensors (:func:`repeat_videos`),
        and the checked text embeddings where ``embeds`` (the call's ``prompt_embeds``, ``prompt_attention_mask`` and
        the negative pair) gives them in place of the captions (:meth:`check_prompt_embeds`; one row is repeated to the
        batch), else None."""
        b, _, t, h, w = video.shape
        s = self.settings(num_frames=t, height=h, width=w, num_inference_steps=num_inference_steps,
                          guidance_scale=guidance_scale, timesteps=timesteps, guidance_rescale=guidance_rescale,
                          eta=eta)
        prompts, negative, n, given = self.check_text(prompt, negative_prompt, embeds, num_videos_per_prompt,
                                                      (t, h, w, s["num_inference_steps"], s["guidance_scale"]),
                                                      sampler, base_only, batch=b)
        self.check_super_resolution_args(base_only, ssr_window, ssr_stride, ssr_steps)
        return s, prompts, negative, n, given

    def check_text(self, prompt, negative_prompt, embeds: tuple, num_videos_per_prompt, sizes: tuple,
                   sampler: str | None, base_only: bool, batch: int | None = None) -> tuple[list, object, int, tuple]:
        """A call's text and sizes checked before any work, given as captions or as embeddings (``embeds``: the
        call's ``prompt_embeds``, ``prompt_attention_mask`` and the negative pair; :meth:`check_prompt_embeds`).
        ``sizes``: (num_frames, height, width, steps, guidance); ``batch``: the number of given videos, to which one
        caption or embedding row is repeated. Returns the captions (None each for embeddings) and the negative
        prompt(s), both repeated ``num_videos_per_prompt`` times in place (:func:`videos_per_prompt`), that number,
        and the checked embeddings, or None for captions. Embeddings reach the base stage only: a super-resolution
        stage reads the caption with its own text encoder, so they need ``base_only``."""
        n = in_limits(num_videos_per_prompt, "batch_size", "num_videos_per_prompt")
        if embeds[0] is not None and prompt is None:  # sizes first: the embeddings' checks encode a negative caption
            self.check_sizes(*sizes, sampler)
            if self.super_resolution is not None and base_only is not True:
                raise ValueError("prompt_embeds reach the base stage only; this pipeline's super-resolution stage "
                                 "reads the caption with its own text encoder: give base_only=True (and run "
                                 "pipe.super_resolution on the frames), or the prompt")
        given = self.check_prompt_embeds(prompt, negative_prompt, *embeds, num_videos_per_prompt=n, batch=batch)
        if given is None:
            prompts = self.check_inputs(prompt, *sizes, sampler, batch=batch)
            negative = check_negative_prompt(negative_prompt, len(prompts))
            prompts, negative = videos_per_prompt(n, prompts, negative)
            return prompts, negative, n, None
        # no caption: the sidecar records the embeddings' shape (embeds_settings), and the negative text if any
        return [None] * len(given[0]), None if embeds[2] is not None else negative_prompt, n, given

    @staticmethod
    def embeds_settings(given: tuple | None, negative_given: bool) -> dict:
        """What the sidecar records of a call by embeddings: their shapes (there is no caption)."""
        if given is None:
            return {}
        out = {"prompt_embeds": list(given[0].shape)}
        if negative_given:
            out.update(negative_prompt=None, negative_prompt_embeds=list(given[2].shape))
        return out

    def unseen_words(self, prompts: str | list[str]) -> list[str]:
        """The words of ``prompts`` outside the training vocabulary the folder records (``"vocabulary"`` in its
        vidiff_pipeline.json; none recorded: every word is taken as known)."""
        import re

        vocab = set(self.extra.get("vocabulary") or ())
        if not vocab:
            return []
        words = [w for p in ([prompts] if isinstance(prompts, str) else prompts) for w in re.findall(r"[a-z]+", p.lower())]
        return list(dict.fromkeys(w for w in words if w not in vocab))

    def make_scheduler(self, sampler: str | None = None):
        """A fresh scheduler for one call: ``sampler`` by name with the model's schedule, else a copy of
        ``pipe.scheduler`` (whatever diffusers scheduler the user put there)."""
        if sampler is not None:
            return make_scheduler(self.diffusion, sampler, logsnr_min=self.defaults["logsnr_min"])
        ours, theirs = self.diffusion.schedule(), self.scheduler.config
        if ours.get("beta_schedule") not in ("linear", "scaled_linear"):  # the ends only shape those two
            ours = {k: v for k, v in ours.items() if k not in ("beta_start", "beta_end")}
        wrong = [k for k, v in ours.items() if k in theirs and theirs[k] != v]
        if wrong:  # a scheduler built for another model (an epsilon model's, say) sampled this one into garbage
            k = wrong[0]
            raise ValueError(f"pipe.scheduler has {k}={theirs[k]!r}; this model was trained with {ours[k]!r}: build the "
                             f"scheduler from pipe.scheduler.config (SomeScheduler.from_config(pipe.scheduler.config))")
        return fresh_scheduler(self.scheduler)

    def denoiser(self, prompts: list[str], guidance: float, negative_prompt: str | list[str] | None = "",
                 cond: torch.Tensor | None = None, cond_scale: float = 1.0,
                 embeds: tuple | None = None, rescale: float = 0.0) -> Callable[[slice | None], Denoiser]:
        """``window(frames) -> denoiser`` with classifier-free guidance; ``frames=None`` is the whole clip.
        ``embeds``: ``(text, mask, null, null_mask)`` given (:meth:`check_prompt_embeds`) instead of the captions.
        ``rescale``: the call's ``guidance_rescale``."""
        if embeds is not None:
            text, mask, null, null_mask = embeds
        else:
            text, mask = self.text_encoder.encode(prompts)
            null, null_mask = self.encode_negative(check_negative_prompt(negative_prompt, len(prompts)))
        device, dtype = self.device, self.dtype
        text, null = text.to(device, dtype), null.to(device, dtype)
        mask, null_mask = mask.to(device), null_mask.to(device)
        if cond is not None:
            cond = cond.to(device, dtype)

        min_t = self.defaults.get("guidance_min_t")
        check_guidance_min_t(min_t, self.diffusion.num_train_timesteps)
        guided_only_above = min_t is not None and (guidance != 1.0 or cond_scale != 1.0)

        def in_model_dtype(fn: Denoiser) -> Denoiser:
            # the sampler keeps its state in fp32; a pipeline cast to fp16 / bf16 (torch_dtype=, .to(dtype)) met it
            # with "mat1 and mat2 must have the same dtype", as diffusers' pipelines would not
            return fn if dtype == torch.float32 else lambda x, t: fn(x.to(dtype), t).float()

        def window(frames: slice | None = None) -> Denoiser:
            c = cond if cond is None or frames is None else cond[:, :, frames]
            unet = self.unet
            if getattr(unet.config, "self_condition", False):  # one estimate per window, kept across its steps
                from vidiff.diffusion.self_condition import SelfConditioned

                unet = SelfConditioned(unet, make_scheduler(self.diffusion).alphas_cumprod,
                                       self.diffusion.prediction_type)
            guided = classifier_free_guidance(unet, text, mask, null, null_mask, guidance, cond=c,
                                              cond_scale=cond_scale, rescale=rescale)
            if not guided_only_above:
                return in_model_dtype(guided)
            return in_model_dtype(guidance_from(
                guided, classifier_free_guidance(unet, text, mask, null, null_mask, 1.0, cond=c), float(min_t)))

        return window

    def _callback(self, callback_on_step_end: Callable | None) -> Callable | None:
        """:func:`~vidiff.diffusion.sampling.denoise`'s ``callback(i, t, x)`` from diffusers'
        ``callback_on_step_end(pipe, i, t, {"latents": x})``: a returned ``"latents"`` replaces the sample."""
        if callback_on_step_end is None:
            return None

        def callback(i: int, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            got = callback_on_step_end(self, i, t, {"latents": x})
            if got is None:  # (diffusers requires the dict back; nothing returned changes nothing here)
                return x
            if not isinstance(got, dict):
                raise ValueError(f"callback_on_step_end must return a dict (its 'latents' replace the sample) or "
                                 f"None, got {type(got).__name__}")
            new = got.get("latents", x)
            if not isinstance(new, torch.Tensor) or new.shape != x.shape or not new.is_floating_point():
                what = tuple(new.shape) if isinstance(new, torch.Tensor) else type(new).__name__
                raise ValueError(f"the 'latents' callback_on_step_end returned must be a float tensor of shape "
                                 f"{tuple(x.shape)}, got {what}")
            return new

        return callback

    def sample(self, window: Callable[[slice | None], Denoiser], shape: tuple[int, ...], steps: int,
               sampler: str | None, generator: torch.Generator | None, latents: torch.Tensor | None = None,
               start: torch.Tensor | None = None, strength: float = 1.0, temporal_window: tuple | None = None,
               progress: bool = False, known: tuple[torch.Tensor, torch.Tensor] | None = None,
               callback_on_step_end: Callable | None = None, decode: bool = True,
               timesteps: list[int] | None = None, eta: float = 0.0) -> torch.Tensor:
        """The one sampling path: pure noise (``strength == 1``) or ``start`` noised to the ``strength`` point
        (SDEdit), denoised over the whole clip or over overlapping temporal windows fused by MultiDiffusion
        (``temporal_window = (window, stride[, weighting])``). ``known = (x0, mask)`` pastes ``x0`` (in [-1, 1]) back where
        ``mask`` is 1 after every step (:func:`~vidiff.diffusion.sampling.keep_known`).
        ``callback_on_step_end(pipe, i, t, {"latents": x})`` runs after every step (diffusers' convention); a
        returned ``"latents"`` replaces the sample. ``timesteps``: a custom step grid (checked by :meth:`settings`),
        for schedulers whose ``set_timesteps`` takes one. ``eta``: DDIM's (:func:`~vidiff.diffusion.sampling.check_eta`).
        Returns (b, c, t, h, w) in [0, 1] (a latent model's latents as sampled with ``decode=False``)."""
        from vidiff.diffusion.multidiffusion import multidiffusion

        generator = check_sampling_args(shape, generator, latents, callback_on_step_end)
        device = self.device
        self._interrupt = self._cut = False
        scheduler = self.make_scheduler(sampler)
        check_eta(scheduler, eta)
        check_step_noise(self.step_noise, scheduler, eta, self.diffusion.num_train_timesteps,
                         self.diffusion.noise_prior)
        free_init = self.free_init
        if free_init is not None and (start is not None or strength < 1.0):
            raise ValueError("FreeInit re-initialises the noise a clip starts from, and an edit (SDEdit) starts from "
                             "the given video; disable it (pipe.disable_free_init()) for edits")
        if timesteps is not None and free_init is not None:
            raise ValueError("custom timesteps and FreeInit: FreeInit samples on grids of its own (coarse to fine); "
                             "disable one of them (pipe.disable_free_init())")
        ts = timesteps_for(scheduler, steps if free_init is None else free_init.steps(steps, 0), strength, timesteps)
        if start is not None and 0.0 < strength < 1.0 and not bool((ts > 0).any()):
            # the start time snaps down to the sampler's grid; with no grid step above t = 0 the "edit" gave the
            # input back unchanged, without a word
            grid = ", ".join(str(int(t)) for t in timesteps_for(scheduler, steps, 1.0, timesteps))
            raise ValueError(f"strength {strength:g} with {steps} steps leaves no denoising step above t = 0 on this "
                             f"sampler's grid (its steps: {grid}; the edit starts at the first at or below "
                             f"{strength * scheduler.config.num_train_timesteps:g}): give more steps or a higher strength")
        # noise is drawn on the CPU so that a seed gives the same video on every device; under a noise prior it is
        # correlated across frames, and the scheduler runs in whitened coordinates (vidiff.diffusion.noise_prior)
        prior = noise_prior(self.diffusion, shape[2])
        check_scheduler(prior, scheduler)
        noise = latents if latents is not None else sample_noise(self.diffusion, shape, generator)
        if start is None or strength >= 1.0:
            x = noise.float() * scheduler.init_noise_sigma
        elif len(ts) == 0:  # strength 0: nothing to denoise
            return ((start.float().cpu() + 1) / 2).clamp(0, 1)
        else:
            x = scheduler.add_noise(start.float(), noise.float(), ts[:1].expand(shape[0]))
        fn = window(None) if temporal_window is None else multidiffusion(window, shape[2], *temporal_window)

        callback = self._callback(callback_on_step_end)
        rounds = 1 if free_init is None else free_init.num_iters
        for i in range(rounds):
            if i:  # FreeInit: the next start from the low frequencies of this result, on this sampling's step grid
                from vidiff.diffusion.free_init import reinitialise

                ts = timesteps_for(scheduler, free_init.steps(steps, i))
                fresh = sample_noise(self.diffusion, shape, generator)
                x = reinitialise(x.cpu(), noise, fresh, scheduler, ts[0], free_init) * scheduler.init_noise_sigma
            # pasting the known pixels back follows the step grid of each sampling (coarse to fine changes it)
            project = None if known is None else keep_known(scheduler, ts, known[0].float(), known[1].float(),
                                                            noise.float())
            f, p, c = (fn, project, callback) if prior is None else whitened(prior, fn, project, callback)
            y = x if prior is None else prior.whiten(x)
            self._steps_done = 0
            y = denoise(f, scheduler, y.to(device), ts, generator=generator, progress=self.progress_bar_options(progress),
                        project=p, callback=c, eta=eta, stop=self._stop_here, step_noise=self.step_noise)
            x = y if prior is None else prior.correlate(y)
            if self._interrupt:  # FreeInit: no further round either
                self._cut |= i + 1 < rounds
                break
        if not bool(torch.isfinite(x).all()):  # it became a black clip, written without a word
            half = self.dtype != torch.float32
            raise ValueError(f"sampling gave NaN or infinite values (scheduler {type(scheduler).__name__}"
                             f"{', weights in ' + str(self.dtype).replace('torch.', '') if half else ''}): another "
                             f"sampler{', or float32 weights,' if half else ''} may not; nothing was written")
        return self.to_pixels(x) if decode else x.float().cpu()

    # ------------------------------------------------------------------ latent models
    @property
    def latent_scale(self) -> int:
        """Pixels per model sample along each side: 1 for a pixel model, the VAE's factor for a latent one."""
        if self.vae is None:
            return 1
        from vidiff.models.latent import vae_scale

        return vae_scale(self.vae.config)

    def sample_shape(self, batch: int, num_frames: int, height: int, width: int) -> tuple[int, ...]:
        f = self.latent_scale
        return (batch, self.unet.sample_channels, num_frames, height // f, width // f)

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """The sampler's output as a video in [0, 1]: decoded frame by frame for a latent model (the frames of an
        ``output_type="latent"`` call become the video an ``output_type="pt"`` call gives)."""
        if self.vae is not None:
            from vidiff.models.latent import decode_frames

            x = decode_frames(self.vae, x)
        return ((x.float().cpu() + 1) / 2).clamp(0, 1)

    def sampler_settings(self, sampler: str | None) -> dict:
        """What the sidecar records of the sampler: the name given, else that of ``pipe.scheduler``, and the
        noisy end of DPM++'s log-SNR step grid where one is set, and the model's noise prior where it has one."""
        out = {"sampler": sampler if sampler is not None else sampler_name(self.scheduler)}
        used = self.scheduler if sampler is None else self.make_scheduler(sampler)
        if type(used).__name__ == "DPMSolverLogSNRScheduler":
            out["logsnr_min"] = used.config.lambda_min_clipped
        if self.defaults.get("guidance_min_t") is not None:
            out["guidance_min_t"] = self.defaults["guidance_min_t"]
        prior = describe(self.diffusion)
        if prior is not None:
            out["noise_prior"] = prior
        if self.free_init is not None:
            out["free_init"] = self.free_init.as_dict()
        if self.step_noise is not None:
            out["correlated_step_noise"] = self.step_noise.as_dict()
        return out

    def check_super_resolution_args(self, base_only: bool, ssr_window: int | None = None,
                                    ssr_stride: int | None = None, ssr_steps: int | None = None) -> None:
        """ValueError unless the super-resolution stage's window, stride and steps fit it: checked before the base
        stage runs (a window shorter than the stage's stride was refused only once the base clip was made)."""
        if not isinstance(base_only, bool):  # "no" was read as true and the stage skipped without a word
            raise ValueError(f"base_only must be True or False, got {base_only!r}")
        if self.super_resolution is None or base_only:
            if ssr_window is not None or ssr_stride is not None or ssr_steps is not None:
                raise ValueError("ssr_window / ssr_stride / ssr_steps need a super-resolution stage, and this call "
                                 "has none (base_only, or the model names none)")
            return
        from vidiff.pipelines.super_resolution import ssr_windows

        ssr_windows(self.super_resolution.defaults, ssr_window, ssr_stride, ("ssr_window", "ssr_stride"))
        if ssr_steps is not None and not 1 <= whole(ssr_steps, "ssr_steps") <= 1000:
            raise ValueError(f"ssr_steps must be in 1..1000, got {ssr_steps}")

    def check_latent_output(self, base_only: bool) -> None:
        """ValueError unless ``output_type="latent"`` can be given: a latent model's base stage, nothing after it."""
        if self.vae is None:
            raise ValueError("output_type='latent' returns a latent model's samples before its VAE decodes them; this "
                             "model works in pixels (no vae/): output_type='pt' gives its video as a tensor")
        if self.super_resolution is not None and not base_only:
            raise ValueError("output_type='latent' stops before the super-resolution stage: pass base_only=True")

    def finish(self, prompts: list[str], videos: torch.Tensor, settings: dict, output_type: str, base_only: bool,
               generator: torch.Generator | None, progress: bool, callback_on_step_end: Callable | None = None,
               ssr_window: int | None = None, ssr_stride: int | None = None,
               ssr_steps: int | None = None, return_dict: bool = True) -> VideoPipelineOutput | tuple:
        """The base stage's ``videos`` through the super-resolution stage (unless ``base_only`` or there is none;
        its noise continues ``generator``), as a :class:`VideoPipelineOutput` with the resolved ``settings`` (with
        ``return_dict=False``, diffusers' tuple ``(frames,)``)."""
        self.check_super_resolution_args(base_only, ssr_window, ssr_stride, ssr_steps)
        settings = {**settings, "fps": self.defaults["fps"]}
        if self._cut:  # pipe._interrupt set before a step (by the step callback or elsewhere): the rest were skipped;
            # set after the last step, it skipped nothing and the result is the full one
            settings["interrupted_after_step"] = self._steps_done
        if self.style:
            settings.update(self.style)
        if self.super_resolution is not None and not base_only:
            import warnings

            with warnings.catch_warnings():  # the base stage has warned about the caption already
                warnings.simplefilter("ignore", UserWarning)
                # the call's negative caption too: a super-resolution folder with guidance > 1 was guided away from ""
                sr = self.super_resolution(prompts, videos, window=ssr_window, stride=ssr_stride,
                                           negative_prompt=settings.get("negative_prompt") or "",
                                           num_inference_steps=ssr_steps, generator=generator, progress=progress,
                                           callback_on_step_end=callback_on_step_end, output_type=output_type)
            settings["super_resolution"] = {"model": str(self.super_resolution.path), **{
                k: v for k, v in sr.settings.items() if k not in ("fps", "versions")}}
            videos = sr.videos
        from vidiff import versions

        settings.update(output_size=list(videos.shape[-2:]), versions=versions())
        out = VideoPipelineOutput(videos, output_type, settings, list(prompts))
        return out if return_dict else (out.frames,)  # (every call checked return_dict before its work)
