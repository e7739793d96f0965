"""The accelerate trainer: one CPU, one GPU, or several processes (``accelerate launch``).

Exact resume: the data of step ``s`` on rank ``r`` and its noise, timesteps and caption dropout are
pure functions of ``(seed, s, r)``, and a checkpoint holds weights, EMA, optimizer and step. So a run
killed and resumed from its last checkpoint reaches the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from vidiff.diffusion.noise_prior import sample_noise
from vidiff.diffusion.schedule import diffusion_loss, make_scheduler, shift_timesteps
from vidiff.io.atomic import atomic_path, write_text_atomic
from vidiff.io.lock import LOCK_NAME, check_not_in_use, folder_lock
from vidiff.models.experts import HIGH_NOISE_DIR
from vidiff.models.latent import encode_frames
from vidiff.tasks import get_task
from vidiff.training.checkpoints import (
    CHECKPOINT_NAME, complete_checkpoints, load_resume, resolve_resume, save_checkpoint, save_state_checkpoint, tidy_run_dir,
)
from vidiff.training.accel import ema_update, flat_config, make_accelerator, sharded
from vidiff.training.config import RunConfig, config_from_dict, load_config, timestep_range
from vidiff.training.ema import EMA

log = logging.getLogger("vidiff.train")


def build_dataset(cfg: RunConfig):
    d = cfg.data
    if d.kind == "shapes":
        from vidiff.shapes.scenes import ShapesConfig, ShapesDataset
        return ShapesDataset(ShapesConfig(d.num_frames, d.fps, d.resolution, d.two_object_prob, d.image_prob, d.style,
                                          lowres=d.lowres, motion_weights=dict(d.motion_weights)))
    if d.lowres:
        raise ValueError("data.lowres (super-resolution pairs) is available for data.kind 'shapes' only")
    if d.kind == "folder":
        from vidiff.data.folder import FolderVideoDataset
        if not d.manifest:
            raise ValueError("data.kind 'folder' needs data.manifest (a CSV or JSONL of path, caption)")
        return FolderVideoDataset(d.manifest, num_frames=d.num_frames, resolution=d.resolution, frame_stride=d.frame_stride,
                                  random_start=d.random_start, seed=cfg.train.seed, frame_stride_max=d.frame_stride_max)
    raise ValueError(f"unknown data.kind {d.kind!r}; allowed: shapes, folder")


def batch_for_step(dataset, step: int, rank: int, world: int, batch_size: int, seed: int) -> dict:
    """The batch of (step, rank): global item indices ``(step * world + rank) * B + i``; finite datasets
    walk a fresh permutation per epoch (item ``perm[pos] + epoch * n``: a dataset that samples a window of each
    file draws a new one every epoch). ``"skipped"``: how many unreadable items it passed over."""
    videos, captions, lowres = [], [], []
    g = (step * world + rank) * batch_size
    n = len(dataset)
    i = 0
    while len(videos) < batch_size:
        idx = g + i
        if n < 10**8:  # finite: permutation per epoch
            epoch, pos = divmod(idx, n)
            idx = int(_permutation(seed, epoch, n)[pos]) + epoch * n
        item = dataset[idx]
        i += 1
        if item is None:  # unreadable file, already counted by the dataset
            if i > 10 * batch_size + n:
                raise ValueError(f"no readable video left in the dataset: the last {i} items tried were skipped "
                                 f"({dict(getattr(dataset, 'skipped', {}))}); were its files moved or deleted?")
            continue
        videos.append(torch.as_tensor(item["video"]))
        captions.append(item["caption"])
        if "lowres" in item:
            lowres.append(torch.as_tensor(item["lowres"]))
    batch = {"video": torch.stack(videos), "caption": captions, "skipped": i - batch_size}
    if lowres:
        batch["lowres"] = torch.stack(lowres)
    return batch


def build_model(cfg: RunConfig, text_dim: int):
    """A new model from ``cfg.model`` (a preset and overrides), or ``train.init_from``'s U-Net, widened when
    ``model.cond_channels`` asks for more conditioning channels (Lumiere 4.2), given a conditioning adapter
    when ``model.cond_adapter_channels`` asks for one, and a frame clock when
    ``model.frame_position_embedding`` asks for it, self-conditioning and coordinate channels when
    ``model.self_condition`` / ``model.coordinate_channels`` ask for them, and temporal or space-time attention at more
    levels when ``model.temporal_attention_levels`` / ``model.spacetime_attention_levels`` list them."""
    from vidiff.models.surgery import (
        add_cond_adapter, add_coordinates, add_frame_position, add_self_condition, add_spacetime_attention,
        add_temporal_attention, widen_input, widen_text,
    )
    from vidiff.models.image import IMAGE_PRESETS, ImageUNet, build_image_unet
    from vidiff.models.inflated import InflatedUNet
    from vidiff.models.unet import VideoUNet, build_unet
    from vidiff.pipelines.folder import load_unet, read_meta

    model_cfg = dict(cfg.model)
    preset = model_cfg.pop("preset", "stunet-shapes")
    if not cfg.train.init_from:
        if preset in IMAGE_PRESETS:  # a diffusers UNet2DConditionModel (text-to-image)
            return build_image_unet(preset, text_dim, **model_cfg)
        return build_unet(preset, text_dim=text_dim, **model_cfg)
    src = Path(cfg.train.init_from)
    read_meta(src)  # a clear error when it is not a pipeline folder
    layout = expert_layout(cfg)
    if layout is None and (src / HIGH_NOISE_DIR).is_dir():
        log.warning("%s holds a high-noise expert (%s/); this run trains its unet/ on every timestep and exports that "
                    "alone", src, HIGH_NOISE_DIR)
    model = load_unet(src / (layout[0] if layout else "unet"), torch.float32)
    if "inflate" in model_cfg:  # model.inflate: ARCH (+ its options): a video model from init_from's image model
        if not isinstance(model, ImageUNet):
            raise ValueError(f"model.inflate needs a text-to-image model in train.init_from; {str(src)!r} holds a "
                             f"{type(model).__name__}")
        arch = model_cfg.pop("inflate")
        if arch == "animatediff":  # AnimateDiff's layout (diffusers' UNetMotionModel), new or from a MotionAdapter
            from vidiff.models.animatediff import check_text_reading, from_image_unet

            adapter = model_cfg.pop("motion_adapter", None)
            if model_cfg:
                raise ValueError(f"model.inflate: animatediff takes only model.motion_adapter, got {sorted(model_cfg)}")
            check_text_reading(cfg.text_features, "model.inflate: animatediff")
            return from_image_unet(model, adapter)
        try:
            return InflatedUNet.from_image_unet(model, arch, **model_cfg)
        except TypeError as e:
            raise ValueError(f"model.* with model.inflate: {e}") from None
    if not isinstance(model, VideoUNet):  # an image model or an inflated one: trained as it is
        if model_cfg:
            raise ValueError(f"{str(src)!r} holds a {type(model).__name__}: model.* cannot change with "
                             f"train.init_from, got {sorted(model_cfg)}")
        if text_dim != model.text_dim:
            raise ValueError(f"{str(src)!r} reads {model.text_dim}-wide text; the recipe's text encoder gives {text_dim}")
        return model
    other = set(model_cfg) - {"cond_channels", "frame_position_embedding", "cond_adapter_channels",
                              "temporal_attention_levels", "spacetime_attention_levels", "self_condition",
                              "coordinate_channels"}
    if other:
        raise ValueError(f"with train.init_from only model.cond_channels (widening), model.cond_adapter_channels "
                         f"(adding one), model.frame_position_embedding, model.self_condition and "
                         f"model.coordinate_channels (switching them on) and model.temporal_attention_levels / "
                         f"spacetime_attention_levels (adding levels) can change, not {sorted(other)}")
    if text_dim != model.config.text_dim:  # e.g. text_features: last+embeddings on a model trained on "last"
        model = widen_text(model, text_dim)
    if model_cfg.get("cond_channels", model.config.cond_channels) != model.config.cond_channels:
        model = widen_input(model, model_cfg["cond_channels"])
    width = model_cfg.get("cond_adapter_channels", model.config.cond_adapter_channels)
    if width != model.config.cond_adapter_channels:
        model = add_cond_adapter(model, width)
    if model_cfg.get("frame_position_embedding", model.config.frame_position_embedding) != model.config.frame_position_embedding:
        if not model_cfg["frame_position_embedding"]:
            raise ValueError(f"{str(src)!r} has a frame position embedding; it cannot be switched off")
        model = add_frame_position(model)
    for key, add in (("self_condition", add_self_condition), ("coordinate_channels", add_coordinates)):
        if model_cfg.get(key, model.config[key]) != model.config[key]:
            if not model_cfg[key]:
                raise ValueError(f"{str(src)!r} has model.{key} on; it cannot be switched off")
            model = add(model)
    if "temporal_attention_levels" in model_cfg:
        model = add_temporal_attention(model, model_cfg["temporal_attention_levels"])
    if "spacetime_attention_levels" in model_cfg:
        model = add_spacetime_attention(model, model_cfg["spacetime_attention_levels"])
    return model


def check_lora_target(cfg: RunConfig) -> None:
    """``train.lora_rank`` needs a text-to-image model: checked from the recipe and ``init_from``'s unet/config.json
    before any model loads."""
    from vidiff.models.image import IMAGE_PRESETS

    if not cfg.train.lora_rank:
        return
    if cfg.train.init_from:
        from vidiff.pipelines.folder import unet_class_name

        name = unet_class_name(cfg.train.init_from)
        if name is None:
            return  # the folder's own check names what is wrong
        image = name in ("UNet2DConditionModel", "ImageUNet") and "inflate" not in cfg.model
    else:
        image = cfg.model.get("preset", "stunet-shapes") in IMAGE_PRESETS
    if not image:
        raise ValueError("train.lora_rank trains a LoRA of a text-to-image model (an image model in train.init_from, "
                         "or model.preset t2i-*); this recipe trains a video model")


def add_model_lora(model, cfg: RunConfig) -> None:
    """``train.lora_rank``: LoRA layers on a text-to-image model (only they train)."""
    from vidiff.models.image import ImageUNet
    from vidiff.models.lora import add_lora

    if not isinstance(model, ImageUNet):
        raise ValueError(f"train.lora_rank trains a LoRA of a text-to-image model (an image model in train.init_from, "
                         f"or model.preset t2i-*); this recipe trains a {type(model).__name__}")
    if cfg.train.freeze_spatial or cfg.train.freeze_temporal:
        raise ValueError("train.lora_rank trains the LoRA only: leave train.freeze_spatial / freeze_temporal unset")
    add_lora(model, cfg.train.lora_rank, name_list(cfg.train.lora_targets))


def name_list(text: str) -> list[str]:
    """A recipe's comma-separated list of module or parameter names (``train.lora_targets``, ``train.train_only``)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def train_only(model, prefixes: str) -> None:
    """``train.train_only``: freeze every parameter whose name starts with none of the comma-separated
    ``prefixes``. ValueError for a prefix that names no parameter (a typo would otherwise train nothing of it)."""
    wanted = name_list(prefixes)
    names = [n for n, _ in model.named_parameters()]
    missing = [x for x in wanted if not any(n.startswith(x) for n in names)]
    if missing:
        raise ValueError(f"train.train_only names no parameter of this {type(model).__name__}: {', '.join(missing)} "
                         f"(its parameters start with {', '.join(sorted({n.split('.')[0] for n in names}))})")
    for n, p in model.named_parameters():
        if not any(n.startswith(x) for x in wanted):
            p.requires_grad_(False)


def check_init_schedule(cfg: RunConfig) -> None:
    """A fine-tune keeps its model's noise schedule and prediction type, and its way of reading text where that is
    the padded one: ``train.init_from``'s, stated in the recipe."""
    from vidiff.diffusion.schedule import DiffusionConfig
    from vidiff.pipelines.folder import read_meta

    if not cfg.train.init_from:
        return
    src = Path(cfg.train.init_from)
    meta = read_meta(src)
    theirs = DiffusionConfig(**meta["diffusion"])
    if theirs.schedule() != cfg.diffusion.schedule():
        raise ValueError(f"the recipe's diffusion section {cfg.diffusion.to_dict()} is not the schedule of "
                         f"{str(src)!r} ({theirs.to_dict()}): set it to the model's")
    # the same width, another reading: a padded prompt (a diffusers folder's convention) is not a masked one
    features = meta.get("text_features", "last")
    if "padded" in (features, cfg.text_features) and features != cfg.text_features:
        raise ValueError(f"{str(src)!r} reads text as {features!r}; the recipe says text_features: "
                         f"{cfg.text_features!r}: set it to the model's")


def init_vae(cfg: RunConfig):
    """The autoencoder of ``train.init_from`` when it is a latent model (``vae/``), else None; a latent model
    trains text-to-video only so far."""
    from vidiff.models.latent import VAE_DIR, load_vae

    if not cfg.train.init_from or not (Path(cfg.train.init_from) / VAE_DIR).is_dir():
        return None
    src = Path(cfg.train.init_from)
    if cfg.task != "text-to-video":
        raise ValueError(f"{str(src)!r} is a latent model (vae/): only text-to-video training supports latent models "
                         f"so far")
    return load_vae(src / VAE_DIR)


def task_condition(cfg: RunConfig, batch: dict, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor | None:
    """The conditioning input of one training batch, as the recipe's task defines it (:mod:`vidiff.tasks`)."""
    condition = get_task(cfg.task).condition
    return None if condition is None else condition(cfg, batch, x0, g)


def known_pixel_weight(cfg: RunConfig, cond: torch.Tensor | None) -> torch.Tensor | None:
    """Conditional training: per-pixel loss weight ``1 + (w - 1) * M`` from the mask channel of <C, M>,
    normalised per example to mean 1 (so the loss scale, and the learning rate that suits it, stay put)."""
    w = cfg.train.known_pixel_weight
    if not get_task(cfg.task).known_pixel_weight or w == 1.0 or cond is None:
        return None
    known = cond[:, -1:]  # (b, 1, t, h, w): M, the last channel of cat([C * M, M])
    weight = 1.0 + (w - 1.0) * known
    return weight / weight.flatten(1).mean(1).view(-1, 1, 1, 1, 1)


def random_crop(x0: torch.Tensor, cond: torch.Tensor | None, frames: int, size: int, g: torch.Generator):
    """The same random window of ``frames`` frames and ``size`` x ``size`` pixels of the clip and of its
    conditioning (0: keep that dimension whole)."""
    _, _, t, h, w = x0.shape
    ft, fh, fw = frames or t, size or h, size or w
    if ft > t or fh > h or fw > w:
        raise ValueError(f"data.window_frames / data.crop_size ({frames}, {size}) exceed the clip ({t} x {h} x {w})")
    t0, y0, x0_start = (int(torch.randint(0, n - k + 1, (), generator=g)) for n, k in ((t, ft), (h, fh), (w, fw)))
    crop = (slice(None), slice(None), slice(t0, t0 + ft), slice(y0, y0 + fh), slice(x0_start, x0_start + fw))
    return x0[crop], (None if cond is None else cond[crop])


@functools.lru_cache(maxsize=2)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The item order of one epoch of a finite dataset (computed once per epoch, not once per item)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def lr_at(step: int, cfg) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return cfg.lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def param_groups(model, spatial_lr_scale: float = 1.0) -> list[dict]:
    """The optimizer's parameter groups: one of every trainable parameter, or with ``spatial_lr_scale`` != 1 the
    temporal layers (``lr_scale`` 1) and the spatial ones (``lr_scale`` = the scale; the trainer multiplies each
    group's scheduled learning rate by it). ValueError where there are not both kinds to train."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if spatial_lr_scale == 1.0:
        return [{"params": trainable}]
    temporal = {id(p) for p in model.temporal_parameters()}
    groups = [[p for p in trainable if id(p) in temporal], [p for p in trainable if id(p) not in temporal]]
    if not all(groups):
        which = "temporal" if not groups[0] else "spatial"
        raise ValueError(f"train.spatial_lr_scale ({spatial_lr_scale}) sets the spatial layers' learning rate beside "
                         f"the temporal layers', but this run trains no {which} layers (a model without temporal "
                         f"layers, or train.freeze_spatial / freeze_temporal / lora_rank): leave it at 1")
    return [{"params": groups[0], "lr_scale": 1.0}, {"params": groups[1], "lr_scale": spatial_lr_scale}]


def train(cfg: RunConfig | dict | str | os.PathLike, resume: str | None = None, progress: bool = True) -> Path:
    """Train per ``cfg`` (a :class:`RunConfig`, a recipe file as ``vidiff train --config`` takes, or a recipe as a
    dict); returns the exported pipeline folder ``<output_dir>/final``.

    One optimizer step takes ``train.batch_size`` clips: ``batch_size / (processes x gradient_accumulation_steps)``
    per micro-batch, built by ``train.num_workers`` DataLoader workers (:mod:`vidiff.training.loader`). The main
    process holds ``output_dir``'s lock (:mod:`vidiff.io.lock`) from the first write there to the export: a second
    run into the same folder is one ValueError."""
    if isinstance(cfg, (str, os.PathLike)):
        cfg = load_config(cfg)
    elif isinstance(cfg, dict):
        cfg = config_from_dict(cfg)
    elif not isinstance(cfg, RunConfig):  # an AttributeError ('dict' object has no attribute 'train') before
        raise ValueError(f"train takes a recipe: a RunConfig (vidiff.load_config), a YAML path or a dict, got "
                         f"{type(cfg).__name__}")
    with contextlib.ExitStack() as hold:
        return _train(cfg, resume, progress, hold)


def _train(cfg: RunConfig, resume: str | None, progress: bool, hold: contextlib.ExitStack) -> Path:
    from tqdm.auto import tqdm

    from vidiff.conditioning.text import TextEncoder
    from vidiff.hardware import SLOW_BF16, native_bf16, precision_name
    from vidiff.training.loader import micro_batches

    tc = cfg.train
    if tc.freeze_spatial and cfg.data.image_prob:  # (an inflated model's default freeze is checked once it is built)
        raise ValueError("data.image_prob trains spatial layers on images, but train.freeze_spatial freezes them: "
                         "set one of the two to 0 / false")
    if tc.threads:
        torch.set_num_threads(tc.threads)
    out = Path(cfg.output_dir)
    accelerator = make_accelerator(cfg, out)
    ran = precision_name(accelerator.mixed_precision)
    if ran != precision_name(tc.mixed_precision):  # auto, or accelerate launch's precision:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(tc, mixed_precision=ran))  # config.json says what ran
        tc = cfg.train
    world, rank = accelerator.num_processes, accelerator.process_index
    accum = tc.gradient_accumulation_steps
    micro = tc.batch_size // (world * accum)

    dataset = build_dataset(cfg)  # a bad manifest is reported before any model loads
    check_run_dir(out, resume)
    check_resume_recipe(out, cfg, resume)
    check_lora_target(cfg)

    # 1. model, text encoder, diffusion
    torch.manual_seed(tc.seed)
    text_encoder = TextEncoder(cfg.text_encoder, features=cfg.text_features)
    check_init_schedule(cfg)
    defaults = _defaults(cfg)  # read now, with the starting folder's other checks, not after the run
    model = build_model(cfg, text_encoder.dim)
    with_expert = other_expert(cfg)  # a noise-range expert: the starting folder's other U-Net, exported beside it
    vae = init_vae(cfg)
    if vae is None:  # a pixel model sees the clips (or their crops) as they come: a size it cannot take fails here
        side = cfg.data.crop_size or cfg.data.resolution
        try:
            model.check_input_size(cfg.data.num_frames, side, side)
        except ValueError as e:
            raise ValueError(f"the recipe's clips ({cfg.data.num_frames} frames of {side} x {side}: data.num_frames, "
                             f"data.resolution or data.crop_size) do not fit the model: {e}") from None
    if getattr(model.config, "self_condition", False) and (tc.distill_guidance or expert_layout(cfg) is not None):
        raise ValueError("a self-conditioned model (model.self_condition) cannot be guidance-distilled or trained as a "
                         "noise-range expert yet: both call the U-Net without its previous estimate")
    teacher = None
    if tc.distill_guidance:  # a frozen copy of the starting point, taken before any freezing or LoRA
        from vidiff.training.distill import GuidedTeacher

        teacher = GuidedTeacher(model, text_encoder, tc.distill_guidance, accelerator.autocast)
    freeze_spatial = tc.freeze_spatial
    if freeze_spatial is None:  # an inflated model trains its new layers only, unless the recipe says otherwise
        from vidiff.models.animatediff import MotionUNet
        from vidiff.models.inflated import InflatedUNet

        freeze_spatial = isinstance(model, (InflatedUNet, MotionUNet)) and not tc.freeze_temporal
    if freeze_spatial and cfg.data.image_prob:
        raise ValueError("data.image_prob trains spatial layers on images, but an inflated model trains only its "
                         "temporal layers by default: set data.image_prob to 0 or train.freeze_spatial to false")
    if tc.image_weight_noise and not freeze_spatial:
        from vidiff.training.weight_noise import NOT_FROZEN

        raise ValueError(NOT_FROZEN)
    if tc.image_weight_noise and sharded(accelerator):
        raise ValueError("train.image_weight_noise cannot perturb sharded weights (FSDP, DeepSpeed) yet: launch the "
                         "run with DDP (accelerate's multi-GPU default) or set train.image_weight_noise to 0")
    if freeze_spatial:
        model.freeze_spatial()
    if tc.freeze_temporal:
        model.freeze_temporal()
    if tc.train_only:
        train_only(model, tc.train_only)
    if tc.lora_rank:
        add_model_lora(model, cfg)
    if tc.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    groups = param_groups(model, tc.spatial_lr_scale)
    # the run folder is touched only once the recipe, the model and the data are known to be good; every process has
    # checked the folder's lock (check_run_dir) before the main one takes it, or a slow one would find it held
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        hold.enter_context(folder_lock(out, "output_dir"))
        for what in tidy_run_dir(out):
            log.info("%s: %s (left by a killed run)", out, what)
        write_text_atomic(out / "config.json", json.dumps(cfg.to_dict(), indent=2), overwrite=True)
    accelerator.wait_for_everyone()
    scheduler = make_scheduler(cfg.diffusion, "ddpm")
    ema = EMA(model, tc.ema_decay)
    optimizer = torch.optim.AdamW(groups, lr=tc.lr, weight_decay=tc.weight_decay, betas=(0.9, 0.99))
    model, optimizer = accelerator.prepare(model, optimizer)
    ema.to(accelerator.device)  # after prepare: the EMA lives on the training device
    if vae is not None:
        vae.to(accelerator.device)
    if teacher is not None:
        teacher.to(accelerator.device)
    weight_noise = None
    if tc.image_weight_noise:  # after prepare: the kept originals live where the weights do
        from vidiff.training.weight_noise import FrozenWeightNoise

        weight_noise = FrozenWeightNoise(model, tc.image_weight_noise, tc.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    if sharded(accelerator):  # accelerate clips across FSDP shards only when given the whole model's parameters
        params = list(model.parameters())  # (frozen ones have no gradient and count for nothing)
    fmt = tc.checkpoint_format if tc.checkpoint_format != "auto" else ("accelerate" if sharded(accelerator) else "files")
    if fmt == "files" and sharded(accelerator):
        raise ValueError("train.checkpoint_format 'files' cannot save a sharded run (FSDP, DeepSpeed): use 'auto'")
    start, elapsed = 0, 0.0
    ckpt, state = load_resume(out, resume, accelerator.unwrap_model(model), ema.model, optimizer, accelerator)
    for group, want in zip(optimizer.param_groups, groups):  # a resumed optimizer keeps the recipe's scales
        group["lr_scale"] = want.get("lr_scale", 1.0)
    if ckpt is not None:
        start, elapsed = state["step"], state.get("elapsed_s", 0.0)
        if accelerator.is_main_process:
            log.info("resumed from %s at step %d", ckpt, start)
    if accelerator.mixed_precision == "bf16" and not native_bf16(accelerator.device.type) and accelerator.is_main_process:
        log.warning("%s: consider --set train.mixed_precision=fp32", SLOW_BF16)
    if tc.log_with:
        accelerator.init_trackers(out.name or "vidiff", config=flat_config(cfg.to_dict()))

    # 2. loop: optimizer step s takes micro-batches s * accum ... s * accum + accum - 1
    log_path = out / "train_log.jsonl"
    bar = tqdm(total=tc.steps, initial=start, desc="training", disable=not (progress and accelerator.is_main_process))
    nonfinite, skipped, t0 = 0, 0, time.time() - elapsed
    step = start
    batches = micro_batches(dataset, batch_for_step, rank, world, micro, tc.seed, start * accum, tc.steps * accum,
                            tc.num_workers)
    try:
        while step < tc.steps:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, tc) * group.get("lr_scale", 1.0)
            bad, losses = False, []
            for k in range(accum):
                m = step * accum + k
                batch = next(batches)
                skipped += int(batch.get("skipped", 0))
                noisy = contextlib.nullcontext() if weight_noise is None else weight_noise.applied(m)
                with accelerator.accumulate(model), noisy:  # gradients reduced across processes on the last one only
                    loss = micro_loss(cfg, model, text_encoder, vae, scheduler, batch, m, rank, accelerator.device,
                                      teacher=teacher)
                    finite = torch.isfinite(loss.detach()).float()
                    if world > 1:
                        finite = accelerator.reduce(finite, reduction="sum") / world
                    if finite.item() < 1.0:  # every rank agrees: this micro-batch contributes nothing
                        bad = True
                        loss = sum((p * 0).sum() for p in params)  # zero, finite gradients keep DDP's reduction in step
                    accelerator.backward(loss)  # divided by the accumulation steps
                    losses.append(loss.detach().float())
            if bad:
                nonfinite += 1
                optimizer.zero_grad(set_to_none=True)
                msg = f"non-finite loss at step {step}: update skipped ({nonfinite} in a row)"
                if accelerator.is_main_process:
                    log.warning(msg)
                    _append(log_path, {"step": step, "event": "nonfinite_loss"})
                if nonfinite >= tc.max_nonfinite:
                    raise RuntimeError(f"stopping: {nonfinite} consecutive non-finite losses (last at step {step})")
                step += 1
                continue
            nonfinite = 0
            grad_norm = accelerator.clip_grad_norm_(params, tc.grad_clip) if tc.grad_clip else None
            grad_norm = 0.0 if grad_norm is None else float(grad_norm)  # (DeepSpeed clips inside its engine)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            ema_update(accelerator, model, ema, step)
            step += 1
            bar.update(1)
            loss_value = float(torch.stack(losses).mean())
            if accelerator.is_main_process:
                rec = {"step": step, "loss": round(loss_value, 5), "lr": optimizer.param_groups[0]["lr"],
                       "grad_norm": round(grad_norm, 4), "elapsed_s": round(time.time() - t0, 1)}
                if skipped:
                    rec["skipped_items"] = skipped
                if accelerator.device.type == "cuda":
                    rec["peak_mem_gb"] = round(torch.cuda.max_memory_allocated(accelerator.device) / 2**30, 3)
                if step % 10 == 0 or step == tc.steps:
                    _append(log_path, rec)
                    if tc.log_with:
                        accelerator.log({k: v for k, v in rec.items() if k != "step"}, step=step)
                bar.set_postfix(loss=f"{rec['loss']:.4f}")
                if tc.snapshot_every and step % tc.snapshot_every == 0:
                    _snapshot(out, step, ema.model, time.time() - t0)
            if step % tc.checkpoint_every == 0 or step == tc.steps:
                _save(accelerator, out, step, model, ema, optimizer, time.time() - t0, tc.keep_checkpoints, fmt)
    except KeyboardInterrupt:
        if world == 1 and step > start:
            _save(accelerator, out, step, model, ema, optimizer, time.time() - t0, tc.keep_checkpoints, fmt)
            log.warning("interrupted: saved checkpoint-%d", step)
        raise
    except torch.OutOfMemoryError:
        raise ValueError(f"out of memory on {accelerator.device} at step {step} with {micro} clip(s) of "
                         f"{cfg.data.num_frames} x {cfg.data.resolution} x {cfg.data.resolution} per micro-batch: "
                         f"lower train.batch_size, raise train.gradient_accumulation_steps or set "
                         f"train.gradient_checkpointing (the last complete checkpoint is kept)") from None
    finally:
        bar.close()
        del batches  # stops the loader's workers
        if tc.log_with:
            accelerator.end_training()

    # 3. export the EMA weights as a pipeline
    final = out / "final"
    if accelerator.is_main_process:
        from vidiff.shapes.scenes import caption_words

        extra = {"vocabulary": caption_words()} if cfg.data.kind == "shapes" else {}
        if tc.distill_guidance:  # the guidance its one pass stands for
            extra["distilled_guidance_scale"] = tc.distill_guidance
        export = ema.model.to("cpu") if with_expert is None else with_expert(ema.model.to("cpu"))
        pipe = get_task(cfg.task).pipeline_class()(export, text_encoder, cfg.diffusion, defaults=defaults,
                                                   extra=extra, vae=None if vae is None else vae.to("cpu"))
        if final.is_dir() and any(final.iterdir()):  # files of the user's put in final/ during the run
            from vidiff.pipelines.base import check_replaceable

            check_replaceable(final, remedy=f"move them out, then run again with --resume latest to export the "
                                            f"weights kept in {out / f'checkpoint-{step}'}")
        pipe.save_pretrained(final, train_config=cfg.to_dict(), overwrite=True)  # the run's own export
    accelerator.wait_for_everyone()
    return final


def expert_layout(cfg: RunConfig) -> tuple[str, str, int] | None:
    """For a run on part of the diffusion time (``train.timestep_min`` / ``timestep_max``), which trains a
    noise-range expert of ``train.init_from``'s model: ``(the subfolder of init_from it starts from, the one exported
    beside it, the boundary timestep)``; None for a run on every timestep. A high-noise expert starts from the
    folder's own one where it has one; a low-noise one from ``unet/``, keeping the folder's high-noise expert."""
    lo, hi = timestep_range(cfg)
    if (lo, hi) == (0, cfg.diffusion.num_train_timesteps - 1):
        return None
    has_high = (Path(cfg.train.init_from) / HIGH_NOISE_DIR).is_dir()
    if lo > 0:
        return HIGH_NOISE_DIR if has_high else "unet", "unet", lo
    return "unet", HIGH_NOISE_DIR if has_high else "unet", hi + 1


def other_expert(cfg: RunConfig):
    """How a noise-range expert is exported (:func:`expert_layout`): ``fn(trained) -> TimestepExperts`` with
    ``train.init_from``'s U-Net for the rest of the range, so the folder samples as one model (read at the start of
    the run, with the other reads of ``train.init_from``); None for a run on every timestep."""
    from vidiff.models.experts import TimestepExperts
    from vidiff.pipelines.folder import load_unet

    layout = expert_layout(cfg)
    if layout is None:
        return None
    _, other_dir, boundary = layout
    other = load_unet(Path(cfg.train.init_from) / other_dir, torch.float32)
    if cfg.train.timestep_min > 0:  # the trained one is the high-noise expert
        return lambda trained: TimestepExperts(other, trained, boundary)
    return lambda trained: TimestepExperts(trained, other, boundary)


def micro_loss(cfg: RunConfig, model, text_encoder, vae, scheduler, batch: dict, m: int, rank: int,
               device: torch.device, teacher=None) -> torch.Tensor:
    """The diffusion loss of micro-batch ``m`` on ``rank``: its noise, timesteps, crops and caption dropout are
    drawn from a generator seeded by ``(seed, m, rank)``, so a resumed run draws what an uninterrupted one did.
    With a ``teacher`` (:class:`~vidiff.training.distill.GuidedTeacher`) the target is its guided prediction."""
    tc = cfg.train
    g = torch.Generator().manual_seed((tc.seed * 1_000_003 + m) * 1024 + rank)
    x0 = batch["video"].to(device)
    if vae is not None:  # a latent model: the U-Net denoises the VAE's latents of every frame
        x0 = encode_frames(vae, x0, generator=g).float()
    cond = task_condition(cfg, batch, x0, g)
    if cfg.data.window_frames or cfg.data.crop_size:
        x0, cond = random_crop(x0, cond, cfg.data.window_frames, cfg.data.crop_size, g)
    if cfg.data.image_prob and torch.rand((), generator=g) < cfg.data.image_prob:
        frame = torch.randint(0, x0.shape[2], (x0.shape[0],), generator=g)
        x0 = x0[torch.arange(x0.shape[0]), :, frame][:, :, None]  # (b, c, 1, h, w): an image batch
    drop = torch.rand(len(batch["caption"]), generator=g) < tc.caption_dropout
    captions = ["" if d else c for c, d in zip(batch["caption"], drop.tolist())]
    emb, mask = text_encoder.encode(captions)
    emb, mask = emb.to(device), mask.to(device)
    lo, hi = timestep_range(cfg)
    timesteps = shift_timesteps(torch.randint(lo, hi + 1, (x0.shape[0],), generator=g), scheduler, tc.timestep_shift)
    noise = sample_noise(cfg.diffusion, tuple(x0.shape), g)  # on the CPU: the same noise on every device

    self_cond = getattr(getattr(getattr(model, "module", model), "config", None), "self_condition", False)
    use_estimate = self_cond and bool(torch.rand((), generator=g) < 0.5)  # Chen et al.: half the batches

    def model_fn(x_t, t):  # accelerate's prepare wrapped the forward in the run's autocast
        if self_cond:
            from vidiff.diffusion.self_condition import self_conditioned_call

            return self_conditioned_call(model, x_t, t, (emb, mask, cond), scheduler.alphas_cumprod,
                                         cfg.diffusion.prediction_type, use_estimate)
        return model(x_t, t, emb, mask, cond)

    target_fn = None if teacher is None else teacher.target_fn(emb, mask, cond)
    return diffusion_loss(model_fn, x0, scheduler, cfg.diffusion, timesteps=timesteps.to(device),
                          noise=noise.to(device), pixel_weight=known_pixel_weight(cfg, cond), target_fn=target_fn,
                          temporal_weight=cfg.train.temporal_diff_weight).mean()


# what a run writes in its folder (besides its checkpoints)
RUN_ENTRIES = ("config.json", "train_log.jsonl", "final", "logs", "snapshots", LOCK_NAME)


def _is_recipe(path: Path) -> bool:
    """Whether ``path`` is a run's config.json (a recipe vidiff wrote), not a file of the user's."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(d, dict) and {"model", "data", "train"} <= set(d)  # (older runs' recipes lack later sections)


def check_run_dir(out: Path, resume: str | None) -> None:
    """A run folder holding an earlier run's checkpoints or export is continued only on ``--resume``: a fresh
    start there would replace them. A fresh start goes into a new or empty folder or a run folder only, and no run
    writes its config.json over a file of that name that is not a run's (the user's own config.json in
    output_dir was replaced, exit 0)."""
    from vidiff.io.outputs import foreign_entries, some

    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():  # found once the model was built, as "File exists"
        raise ValueError(f"output_dir {str(out)!r}: {str(existing)!r} is a file; set a folder for the run")
    check_not_in_use(out, "output_dir")
    if out.is_dir() and (out / "config.json").exists() and not _is_recipe(out / "config.json"):
        raise ValueError(f"output_dir {str(out)!r} holds a config.json that is not a vidiff run's, which training "
                         f"would replace; set another output_dir")
    if resume in (None, "", "none"):
        foreign = foreign_entries(out, RUN_ENTRIES, also_ours=CHECKPOINT_NAME)
        if foreign:
            raise ValueError(f"output_dir {str(out)!r} holds files that are not a training run's ({some(foreign)}); "
                             f"train into a new or empty folder")
        earlier = [p.name for p in complete_checkpoints(out)] + (["final"] if (out / "final").exists() else [])
        if earlier:
            raise ValueError(f"output_dir {str(out)!r} holds an earlier run ({', '.join(earlier[-2:])}); continue it "
                             f"with --resume latest, or set another output_dir")
    elif (out / "final").is_dir():  # a resumed run exports there again when it ends
        from vidiff.pipelines.base import check_replaceable

        check_replaceable(out / "final", remedy="move them out first: the run exports its model there again")


# what a resumed run must share with the run it continues: the weights' layout (task, model, LoRA), what they
# predict under which noise (the diffusion process) and the text features they read; the data, steps, learning
# rate, batch and the loss weighting may change on resume, as in diffusers' training scripts
RUN_DEFINING = ("task", "model", "text_encoder", "diffusion.num_train_timesteps", "diffusion.beta_schedule",
                "diffusion.prediction_type", "diffusion.beta_start", "diffusion.beta_end", "diffusion.noise_prior",
                "diffusion.noise_prior_alpha", "train.lora_rank", "train.lora_targets")


def check_resume_recipe(out: Path, cfg: RunConfig, resume: str | None) -> None:
    """On ``--resume``, one ValueError when the recipe changes a :data:`RUN_DEFINING` setting of the run whose
    checkpoint it continues (that run's config.json): the checkpoint's weights were trained under the old one (a
    changed prediction type or schedule trained them on, silently, towards another target, and the run's config.json
    was rewritten to say so). A named checkpoint that is not one is refused here too (resolve_resume)."""
    ckpt = resolve_resume(out, resume)
    if ckpt is None:
        return
    try:
        step = int(json.loads((ckpt / "state.json").read_text(encoding="utf-8"))["step"])
    except (OSError, ValueError, KeyError, TypeError):
        step = None  # loading the checkpoint reports it
    if step is not None and cfg.train.steps < step:  # it exported the checkpoint again, its recipe saying fewer steps
        raise ValueError(f"--resume continues from {ckpt.name}, at step {step}, and train.steps is {cfg.train.steps}: "
                         f"nothing would be trained; give train.steps of at least {step} (more to train further)")
    try:
        saved = json.loads((ckpt.parent / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # a run without a readable recipe: nothing to compare against
    now = json.loads(json.dumps(cfg.to_dict()))  # tuples as the saved lists
    missing = object()

    def get(d, key):
        for part in key.split("."):
            if not isinstance(d, dict) or part not in d:
                return missing
            d = d[part]
        return d

    changed = [(k, old, new) for k, old, new in ((k, get(saved, k), get(now, k)) for k in RUN_DEFINING)
               if old is not missing and old != new]
    if changed:
        k, old, new = changed[0]
        more = f" (and {', '.join(c[0] for c in changed[1:])})" if len(changed) > 1 else ""
        raise ValueError(f"--resume continues the run in {str(ckpt.parent)!r}, trained with {k} = {json.dumps(old)}; "
                         f"this recipe says {json.dumps(new)}{more}. A resumed run keeps the model, its diffusion "
                         f"process and text encoder: resume with the run's recipe, or train into another output_dir "
                         f"with train.init_from")


# what a fine-tune samples with unless its recipe's sample section says otherwise: the sampler of the model it
# started from, as a diffusers fine-tuning script saves its pipeline with the base model's scheduler
INHERITED_SAMPLING = ("sampler", "logsnr_min", "guidance_min_t", "guidance_rescale", "eta")


def _defaults(cfg: RunConfig) -> dict:
    inherited = {}
    if cfg.train.init_from:
        from vidiff.pipelines.folder import read_meta

        theirs = read_meta(Path(cfg.train.init_from)).get("defaults") or {}
        inherited = {k: theirs[k] for k in INHERITED_SAMPLING if k in theirs}
    return {**inherited, "num_frames": cfg.data.num_frames, "fps": cfg.data.fps, "height": cfg.data.resolution,
            "width": cfg.data.resolution, **cfg.sample}


def _save(accelerator, out, step, model, ema, optimizer, elapsed, keep, fmt: str = "files") -> None:
    from vidiff import versions

    state = {"elapsed_s": elapsed, "world_size": accelerator.num_processes, "versions": versions()}
    if fmt == "accelerate":  # every rank writes its part
        save_state_checkpoint(accelerator, out, step, ema.model, state, keep=keep)
        return
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_checkpoint(out, step, accelerator.unwrap_model(model), ema.model, optimizer,
                        state, keep=keep)
    accelerator.wait_for_everyone()


def _snapshot(out: Path, step: int, model: torch.nn.Module, elapsed: float) -> None:
    from safetensors.torch import save_file
    d = out / "snapshots"
    d.mkdir(exist_ok=True)
    with atomic_path(d / f"step-{step}.safetensors", overwrite=True) as tmp:  # the run's own snapshot
        save_file({k: v.detach().half().contiguous() for k, v in model.state_dict().items()}, str(tmp),
                  metadata={"step": str(step), "elapsed_s": f"{elapsed:.1f}"})


def _append(path: Path, rec: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")
