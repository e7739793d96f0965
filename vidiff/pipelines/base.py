"""What every vidiff pipeline shares: the folder format, loading, input checks and the one sampling path.

A pipeline folder holds ``vidiff_pipeline.json`` (task, diffusion config, text encoder, defaults) and the
U-Net under ``unet/`` (diffusers ``save_pretrained``: config.json + safetensors). Task pipelines
(text-to-video, conditional generation, super-resolution, editing) subclass :class:`VideoDiffusionPipeline`
and add one ``__call__`` that builds the start point and the conditioning, then calls :meth:`sample`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from vidiff.diffusion.sampling import Denoiser, classifier_free_guidance, denoise, keep_known, timesteps_for
from vidiff.diffusion.schedule import SAMPLERS, DiffusionConfig, make_scheduler
from vidiff.io.atomic import atomic_path

PIPELINE_FILE = "vidiff_pipeline.json"


@dataclass
class VideoPipelineOutput:
    videos: torch.Tensor  # (b, c, t, h, w) float in [0, 1]

    @property
    def frames(self) -> np.ndarray:
        """uint8 (b, t, h, w, c), as diffusers' video pipelines return."""
        return (self.videos.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()


def load_unet(path: Path, dtype: torch.dtype):
    """Build the U-Net from its config and load its safetensors strictly: every key and shape must match
    (diffusers would silently re-initialise missing weights)."""
    from safetensors.torch import load_file

    from vidiff.models.unet import VideoUNet

    if not (path / "config.json").exists():
        raise ValueError(f"{str(path)!r} holds no model (unet/config.json missing)")
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ValueError(f"no .safetensors weights in {str(path)!r}")
    try:
        model = VideoUNet.from_config(VideoUNet.load_config(path))
        state = load_file(str(files[0]))
    except Exception as e:  # safetensors header / JSON errors: not a loadable model
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"cannot load the weights in {str(files[0])!r} (truncated or not a vidiff model?): {first[:160]}") from None
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(f"cannot load the weights in {str(files[0])!r}: they do not fit this model "
                         f"({len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} wrong-shape keys, "
                         f"e.g. {(missing + unexpected + wrong)[:2]})")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"the weights in {str(files[0])!r} hold NaN or infinite values ({len(bad)} tensors, e.g. "
                         f"{bad[0]!r}): a diverged or damaged model")
    model.load_state_dict(state)
    return torch.nn.Module.to(model, dtype)  # plain cast (diffusers' .to() warns about fp32-kept modules)


def pipeline_class(task: str) -> type["VideoDiffusionPipeline"]:
    """The pipeline class that loads and saves a folder of ``task`` (training exports, weight export)."""
    from vidiff.pipelines.conditional import ConditionalVideoPipeline
    from vidiff.pipelines.super_resolution import SuperResolutionPipeline
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    classes = {c.task: c for c in (TextToVideoPipeline, ConditionalVideoPipeline, SuperResolutionPipeline)}
    if task not in classes:
        raise ValueError(f"unknown task {task!r}; allowed: {', '.join(classes)}")
    return classes[task]


def check_unit_range(name: str, x: torch.Tensor) -> torch.Tensor:
    """Raise ValueError unless ``x`` is a float tensor in [0, 1]; return it as float32."""
    if not torch.is_floating_point(x) or x.min() < 0 or x.max() > 1:
        raise ValueError(f"the {name} must be a float tensor with values in [0, 1]")
    return x.float()


BASE_DEFAULTS = {"num_frames": 16, "fps": 8.0, "height": 32, "width": 32, "guidance_scale": 4.0,
                 "num_inference_steps": 25}  # under every folder's own ``defaults``


def read_meta(path: Path) -> dict:
    """The folder's ``vidiff_pipeline.json``, checked: a mapping with a known task, a diffusion config and
    defaults of the right kinds. Raises ValueError naming what is wrong."""
    path = Path(path)
    meta_path = path / PIPELINE_FILE
    if not meta_path.is_file():
        raise ValueError(f"{str(path)!r} is not a vidiff pipeline folder ({PIPELINE_FILE} missing)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{str(meta_path)!r} is not valid JSON") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{str(meta_path)!r} must hold a JSON object, got {type(meta).__name__}")
    if meta.get("task", "text-to-video") not in ("text-to-video", "conditional", "super-resolution"):
        raise ValueError(f"{str(meta_path)!r} names an unknown task {meta.get('task')!r}")
    try:
        DiffusionConfig(**meta["diffusion"])
    except (KeyError, TypeError):
        raise ValueError(f"{str(meta_path)!r} lacks a valid 'diffusion' entry") from None
    defaults = meta.get("defaults", {})
    if not isinstance(defaults, dict) or not all(
            isinstance(defaults.get(k, 1), (int, float)) and not isinstance(defaults.get(k, 1), bool)
            and math.isfinite(defaults.get(k, 1)) and defaults.get(k, 1) > 0 for k in BASE_DEFAULTS):
        raise ValueError(f"{str(meta_path)!r} has invalid 'defaults' (positive numbers expected)")
    if not isinstance(meta.get("text_encoder", "minilm"), str):
        raise ValueError(f"{str(meta_path)!r}: 'text_encoder' must be a string")
    return meta


def check_folder(path: Path, task: str, num_frames: int | None = None, height: int | None = None,
                 width: int | None = None) -> dict:
    """Before loading anything: the folder holds a ``task`` model that takes a clip of this size. Returns its
    defaults (the folder's own over :data:`BASE_DEFAULTS`)."""
    from vidiff.models.unet import check_clip_size

    path = Path(path)
    meta = read_meta(path)
    if meta.get("task", "text-to-video") != task:
        raise ValueError(f"{str(path)!r} is a {meta.get('task', 'text-to-video')} model; this command needs a {task} model")
    defaults = {**BASE_DEFAULTS, **meta.get("defaults", {})}
    try:
        cfg = json.loads((path / "unet" / "config.json").read_text(encoding="utf-8"))
        assert isinstance(cfg, dict)
    except (OSError, ValueError, AssertionError):
        return defaults  # loading reports the damaged model in full
    t = int(defaults["num_frames"] if num_frames is None else num_frames)
    h = int(defaults["height"] if height is None else height)
    w = int(defaults["width"] if width is None else width)
    check_clip_size(cfg, t, h, w)
    return defaults



def reads_like(encoder, meta: dict) -> bool:
    """Whether ``encoder`` (a TextEncoder or its cache) gives the text features the folder of ``meta`` was trained
    on: the same encoder and the same features. Then it can be shared (the SSR stage reuses the base's)."""
    return (encoder.name, getattr(encoder, "features", "last")) == (meta.get("text_encoder", "minilm"),
                                                                   meta.get("text_features", "last"))


def load_text_encoder(path: Path, meta: dict):
    """The folder's text encoder: its cache of embeddings (``text_cache.safetensors``) where it has one made by
    the same encoder and features, loading the encoder itself only for captions outside it; else the encoder."""
    from vidiff.conditioning.text import CACHE_FILE, CachedTextEncoder, TextEncoder

    if (path / CACHE_FILE).is_file():
        try:
            cached = CachedTextEncoder(path / CACHE_FILE)
        except Exception:  # a damaged cache is not fatal: the encoder gives the same embeddings
            cached = None
        if cached is not None and reads_like(cached, meta):
            return cached
    return TextEncoder(meta.get("text_encoder", "minilm"), features=meta.get("text_features", "last"))


class VideoDiffusionPipeline:
    """A video U-Net, a text encoder and a diffusion config; subclasses name their ``task``."""

    task = "text-to-video"

    def __init__(self, unet, text_encoder, diffusion: DiffusionConfig, defaults: dict | None = None,
                 extra: dict | None = None):
        self.unet = unet.eval()
        self.text_encoder = text_encoder
        self.diffusion = diffusion
        self.defaults = {**BASE_DEFAULTS, **(defaults or {})}
        self.extra = dict(extra or {})  # e.g. {"super_resolution": "../ssr"}: a pipeline to run after this one
        self.path: Path | None = None  # the folder it was loaded from

    # ------------------------------------------------------------------ persistence
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, dtype: torch.dtype = torch.float32, text_encoder=None):
        """A pipeline folder, or the name of an embedded model ("default", "conditional", "ssr",
        "style-outlined"; :mod:`vidiff.registry`)."""
        from vidiff.registry import resolve_model

        path = resolve_model(path)
        meta = read_meta(path)
        task = meta.get("task", "text-to-video")
        if task != cls.task:
            raise ValueError(f"{str(path)!r} is a {task} model; this command needs a {cls.task} model")
        unet = load_unet(path / "unet", dtype)
        if text_encoder is None:
            text_encoder = load_text_encoder(path, meta)
        if text_encoder.dim != unet.cfg.text_dim:
            raise ValueError(f"text encoder width {text_encoder.dim} does not match the model's text_dim {unet.cfg.text_dim}")
        extra = {k: v for k, v in meta.items()
                 if k not in ("task", "diffusion", "text_encoder", "text_features", "defaults", "train_config")}
        pipe = cls(unet, text_encoder, DiffusionConfig(**meta["diffusion"]), meta.get("defaults"), extra)
        pipe.path = path
        return pipe

    def save_pretrained(self, path: str | os.PathLike, train_config: dict | None = None, half: bool = False,
                        overwrite: bool = False) -> None:
        """Write atomically: to a temporary folder, then rename. An existing folder is an error unless
        ``overwrite`` and it is a vidiff pipeline folder (then it is replaced once the new one is complete)."""
        path = Path(path)
        if overwrite and path.is_dir() and any(path.iterdir()) and not (path / PIPELINE_FILE).exists():
            raise ValueError(f"{str(path)!r} holds files that are not a vidiff pipeline; choose another folder")
        unet = self.unet
        if half:
            import copy
            unet = copy.deepcopy(unet).half()
        features = getattr(self.text_encoder, "features", "last")
        meta = {"task": self.task, "diffusion": self.diffusion.to_dict(), "text_encoder": self.text_encoder.name,
                **({"text_features": features} if features != "last" else {}),
                "defaults": self.defaults, **self.extra}
        if train_config is not None:
            meta["train_config"] = train_config
        with atomic_path(path, overwrite=overwrite) as tmp:
            unet.save_pretrained(tmp / "unet", safe_serialization=True)
            (tmp / PIPELINE_FILE).write_text(json.dumps(meta, indent=2))

    def with_style(self, style_path: str | os.PathLike, alpha: float) -> "VideoDiffusionPipeline":
        """Stylized generation (Lumiere 4.1): this pipeline with U-Net weights ``alpha * W_style + (1 - alpha) * W``,
        where ``style_path`` holds a fine-tune of this model's spatial weights on a style."""
        from vidiff.models.surgery import check_style_of, interpolate_weights
        from vidiff.registry import resolve_model

        style_path = resolve_model(style_path)
        meta = read_meta(style_path)
        if meta.get("task", "text-to-video") != self.task:
            raise ValueError(f"{str(style_path)!r} is a {meta.get('task')} model, not a {self.task} style fine-tune")
        p = next(self.unet.parameters())
        style = load_unet(style_path / "unet", p.dtype)
        check_style_of(self.unet, style, style_path)
        unet = interpolate_weights(self.unet, style, alpha).to(p.device)
        styled = type(self)(unet, self.text_encoder, self.diffusion, self.defaults, self.extra)
        styled.path = self.path
        return styled

    # ------------------------------------------------------------------ shared pieces
    def settings(self, **given) -> dict:
        """The call's settings: given values, else the pipeline's defaults."""
        d = self.defaults
        out = {k: (d[k] if given.get(k) is None else given[k]) for k in
               ("num_frames", "height", "width", "num_inference_steps", "guidance_scale")}
        for k in ("num_frames", "height", "width", "num_inference_steps"):
            out[k] = int(out[k])
        out["guidance_scale"] = float(out["guidance_scale"])
        return out

    def check_inputs(self, prompt, num_frames: int, height: int, width: int, steps: int, guidance: float,
                     sampler: str, batch: int | None = None) -> list[str]:
        """The captions as a list (one caption is repeated for a ``batch`` of given videos), after checking them
        and the sizes, steps, guidance and sampler."""
        from vidiff.conditioning.captions import check_caption

        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise ValueError("the caption is empty; give a text prompt such as 'a red circle moving left'")
        for p in prompts:
            check_caption(p)
        if batch is not None and len(prompts) != batch:
            if len(prompts) != 1:
                raise ValueError(f"{len(prompts)} captions for {batch} videos")
            prompts = prompts * batch
        self.unet.check_input_size(num_frames, height, width)
        if steps < 1 or steps > 1000:
            raise ValueError(f"num_inference_steps must be in 1..1000, got {steps}")
        if not (0.0 <= guidance <= 50.0):
            raise ValueError(f"guidance_scale must be in [0, 50], got {guidance}")
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}")
        return prompts

    def denoiser(self, prompts: list[str], guidance: float, negative_prompt: str = "",
                 cond: torch.Tensor | None = None, cond_scale: float = 1.0) -> Callable[[slice | None], Denoiser]:
        """``window(frames) -> denoiser`` with classifier-free guidance; ``frames=None`` is the whole clip."""
        text, mask = self.text_encoder.encode(prompts)
        null, null_mask = self.text_encoder.encode([negative_prompt])
        p = next(self.unet.parameters())
        text, null = text.to(p.device, p.dtype), null.to(p.device, p.dtype)
        mask, null_mask = mask.to(p.device), null_mask.to(p.device)
        if cond is not None:
            cond = cond.to(p.device, p.dtype)

        def window(frames: slice | None = None) -> Denoiser:
            c = cond if cond is None or frames is None else cond[:, :, frames]
            return classifier_free_guidance(self.unet, text, mask, null, null_mask, guidance, cond=c,
                                            cond_scale=cond_scale)

        return window

    def sample(self, window: Callable[[slice | None], Denoiser], shape: tuple[int, ...], steps: int, sampler: str,
               generator: torch.Generator | None, latents: torch.Tensor | None = None, start: torch.Tensor | None = None,
               strength: float = 1.0, temporal_window: tuple | None = None, progress: bool = False,
               known: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """The one sampling path: pure noise (``strength == 1``) or ``start`` noised to the ``strength`` point
        (SDEdit), denoised over the whole clip or over overlapping temporal windows fused by MultiDiffusion
        (``temporal_window = (window, stride[, weighting])``). ``known = (x0, mask)`` pastes ``x0`` (in [-1, 1]) back where
        ``mask`` is 1 after every step (:func:`~vidiff.diffusion.sampling.keep_known`).
        Returns (b, c, t, h, w) in [0, 1]."""
        from vidiff.diffusion.multidiffusion import multidiffusion

        device = next(self.unet.parameters()).device
        scheduler = make_scheduler(self.diffusion, sampler)
        ts = timesteps_for(scheduler, steps, strength)
        # noise is drawn on the CPU so that a seed gives the same video on every device
        noise = latents if latents is not None else torch.randn(shape, generator=generator)
        if start is None or strength >= 1.0:
            x = noise.float() * scheduler.init_noise_sigma
        elif len(ts) == 0:  # strength 0: nothing to denoise
            return ((start.float().cpu() + 1) / 2).clamp(0, 1)
        else:
            x = scheduler.add_noise(start.float(), noise.float(), ts[:1].expand(shape[0]))
        fn = window(None) if temporal_window is None else multidiffusion(window, shape[2], *temporal_window)
        project = None if known is None else keep_known(scheduler, ts, known[0].float(), known[1].float(), noise.float())
        x = denoise(fn, scheduler, x.to(device), ts, generator=generator, progress=progress, project=project)
        return ((x.float().cpu() + 1) / 2).clamp(0, 1)
