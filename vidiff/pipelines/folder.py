"""The pipeline folder format: ``vidiff_pipeline.json`` (task, diffusion config, text encoder, defaults) and the
U-Net under ``unet/`` (diffusers ``save_pretrained``: config.json + safetensors), read and checked before
anything heavy loads, and the one home of every sampling default."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from vidiff.checks import first_line  # noqa: F401  (its home before vidiff.checks; imported from here too)
from vidiff.diffusion.schedule import SAMPLERS, DiffusionConfig

PIPELINE_FILE = "vidiff_pipeline.json"
MOTION_FILE = "motion_module.safetensors"  # written beside unet/ in every inflated model's folder
ADAPTER_DIR = "motion_adapter"  # a saved AnimateDiff video folder's adapter on its own (a diffusers MotionAdapter folder)
LOCAL_TEXT_ENCODER = "text_encoder"  # vidiff_pipeline.json's name for the encoder in the folder's text_encoder/


def unet_class_name(folder: Path) -> str | None:
    """The ``_class_name`` of a pipeline folder's ``unet/config.json``, read without loading anything; None when it
    cannot be read (loading the folder then reports what is wrong in full)."""
    try:
        return json.loads((Path(folder) / "unet" / "config.json").read_text())["_class_name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def model_class(config: dict, path: Path):
    """The vidiff class that loads the U-Net of ``config`` (``path``'s config.json, read): vidiff's own video U-Nets,
    and diffusers' UNet2DConditionModel (a text-to-image model, run frame by frame)."""
    name = config.get("_class_name", "VideoUNet")
    classes = {"VideoUNet": "vidiff.models.unet", "InflatedUNet": "vidiff.models.inflated",
               "UNet2DConditionModel": "vidiff.models.image", "UNetMotionModel": "vidiff.models.animatediff"}
    if name not in classes:
        raise ValueError(f"{str(path)!r} holds a {name}; supported: {', '.join(classes)}")
    if name == "UNet2DConditionModel":
        from vidiff.models.image import ImageUNet, check_image_unet_config

        check_image_unet_config(config, repr(str(path)))
        return ImageUNet
    if name == "UNetMotionModel":  # AnimateDiff's layout, run by diffusers (vidiff.models.animatediff)
        from vidiff.models.animatediff import MotionUNet

        return MotionUNet
    import importlib

    return getattr(importlib.import_module(classes[name]), name)


WEIGHTS_NAME = "diffusion_pytorch_model"  # diffusers' file stem for a model's weights


def weights_variant(path: Path, stem: str = WEIGHTS_NAME) -> str | None:
    """Which safetensors of a model folder ``from_pretrained`` should read, as a diffusers / transformers
    ``variant``: None for ``STEM.safetensors`` (or its shards, ``STEM.safetensors.index.json``), which diffusers
    reads by default; else the one variant present (``STEM.fp16.safetensors`` from a download with
    ``variant="fp16"``; ``STEM.non_ema.safetensors`` alone). ValueError when there is no safetensors weight or
    several variants and no default (naming them)."""
    if (path / f"{stem}.safetensors").is_file() or (path / f"{stem}.safetensors.index.json").is_file():
        return None  # (a variant's shards are STEM.fp16-00001-of-0000N.safetensors: the variant is read below)
    variants = sorted({f.name[len(stem) + 1: -len(".safetensors")].split("-")[0]
                       for f in path.glob(f"{stem}.*.safetensors")})
    if not variants:
        found = sorted(f.name for f in path.iterdir())[:5] if path.is_dir() else []
        raise ValueError(f"no {stem}.safetensors in {str(path)!r} (found {found}); vidiff reads safetensors only "
                         f"(a .bin is a pickle, which runs code): save it with save_pretrained(..., "
                         f"safe_serialization=True)")
    if len(variants) > 1 and "fp16" not in variants:
        raise ValueError(f"{str(path)!r} holds the weight variants {variants} and no {stem}.safetensors; keep one")
    return "fp16" if "fp16" in variants else variants[0]


def weight_files(path: Path) -> list[Path]:
    """The safetensors files of a diffusers model folder, as :func:`weights_variant` picks them (every shard of a
    sharded one, from its index)."""
    variant = weights_variant(path)
    name = f"{WEIGHTS_NAME}.safetensors" if variant is None else f"{WEIGHTS_NAME}.{variant}.safetensors"
    # diffusers names a variant's shard index ".safetensors.index.fp16.json"
    index = path / (f"{WEIGHTS_NAME}.safetensors.index.json" if variant is None
                    else f"{WEIGHTS_NAME}.safetensors.index.{variant}.json")
    if (path / name).is_file() or not index.is_file():
        return [path / name]
    try:
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(f"{str(index)!r} is not a shard index (no weight_map)") from None
    return [path / s for s in shards]


def load_diffusers_model(path: Path, cls, what: str, dtype: torch.dtype = torch.float32):
    """A diffusers model folder of class ``cls`` (``config.json`` naming it, its weights: the default file, else the
    fp16 variant, :func:`weights_variant`) loaded in ``dtype``; ValueError naming ``what`` was expected and what
    was found."""
    path = Path(path)
    expected = cls.__name__
    try:
        name = json.loads((path / "config.json").read_text(encoding="utf-8"))["_class_name"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{str(path)!r} holds no {what} (config.json with _class_name missing or unreadable); "
                         f"expected a diffusers {expected} folder") from None
    if name != expected:
        raise ValueError(f"{str(path)!r} holds a {name}; expected a diffusers {expected}")
    try:
        return cls.from_pretrained(path, torch_dtype=dtype, variant=weights_variant(path))
    except (OSError, ValueError, RuntimeError, TypeError) as e:
        raise ValueError(f"cannot load the {what} in {str(path)!r}: {first_line(e)}") from None


def load_unet(path: Path, dtype: torch.dtype):
    """Build the U-Net from its config and load its safetensors strictly: every key and shape must match
    (diffusers would silently re-initialise missing weights). The file is the one diffusers reads by default,
    else the fp16 variant a download made with ``variant="fp16"`` holds (:func:`weights_variant`)."""
    from safetensors.torch import load_file

    if not (path / "config.json").exists():
        raise ValueError(f"{str(path)!r} holds no model (unet/config.json missing)")
    files = weight_files(path)
    try:
        config = json.loads((path / "config.json").read_text())
        cls = model_class(config, path)
        model = cls.from_config(config)
        state = {}
        for f in files:
            state.update(load_file(str(f)))
    except Exception as e:  # safetensors header / JSON errors, a missing shard: not a loadable model
        raise ValueError(f"cannot load the weights in {str(files[0])!r} (truncated or not a vidiff model?): "
                         f"{first_line(e)}") from None
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


def load_denoiser(path: Path, meta: dict, dtype: torch.dtype):
    """A pipeline folder's U-Net (``unet/``), or, where the folder holds a high-noise expert beside it
    (``high_noise_unet/`` and ``boundary_ratio`` in its vidiff_pipeline.json), both as one
    :class:`~vidiff.models.experts.TimestepExperts`."""
    from vidiff.models.experts import BOUNDARY_KEY, HIGH_NOISE_DIR, TimestepExperts

    path = Path(path)
    unet = load_unet(path / "unet", dtype)
    if not (path / HIGH_NOISE_DIR).is_dir():
        return unet
    ratio, steps = meta.get(BOUNDARY_KEY), DiffusionConfig(**meta["diffusion"]).num_train_timesteps
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
        raise ValueError(f"{str(path)!r} holds a high-noise expert ({HIGH_NOISE_DIR}/) but no valid {BOUNDARY_KEY} "
                         f"(a fraction in (0, 1) of the diffusion time) in its {PIPELINE_FILE}, got {ratio!r}")
    return TimestepExperts(unet, load_unet(path / HIGH_NOISE_DIR, dtype), round(ratio * steps))


# The one home of every sampling default, under each folder's own ``defaults`` (vidiff_pipeline.json): a call's
# argument left at None takes the folder's value, else this one. The CLI passes only what the user typed.
BASE_DEFAULTS = {"num_frames": 16, "fps": 8.0, "height": 32, "width": 32, "guidance_scale": 4.0,
                 "num_inference_steps": 25,
                 "strength": 0.6,  # SDEdit: how much of the schedule is run (VideoEditPipeline)
                 "alpha": 0.7,  # style interpolation weight (with_style), Lumiere 4.1
                 "condition_guidance_scale": 1.0}  # guidance on a conditioning video (1: none)
NAMED_DEFAULTS = {"sampler": "dpm++",
                  # DPM++: steps uniform in log-SNR above this (vidiff.diffusion.schedule.logsnr_timesteps); None:
                  # diffusers' spacing from t = T - 1. The embedded default sets -8.5 (docs/results.md)
                  "logsnr_min": None,
                  # classifier-free guidance only on the steps with t >= this, the conditional model alone below
                  # (vidiff.diffusion.sampling.guidance_from); None: every step. The embedded default sets 400
                  "guidance_min_t": None,
                  # diffusers' guidance_rescale (vidiff.diffusion.sampling.rescale_guidance): 0, guidance unchanged
                  "guidance_rescale": 0.0,
                  # DDIM's eta (diffusers' eta=): 0, deterministic DDIM; 1, DDPM's noise. Other samplers take 0 only
                  "eta": 0.0,
                  # long clips: overlapping base windows cross-faded (triangle) a quarter-window apart: the fewest
                  # seams measured (docs/applications.md)
                  "window_weighting": "triangle"}


def check_guidance_min_t(value, num_train_timesteps: int) -> None:
    """``guidance_min_t`` is None or a timestep in 0..num_train_timesteps."""
    if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                  and math.isfinite(value) and 0 <= value <= num_train_timesteps):
        raise ValueError(f"'guidance_min_t' must be a timestep in 0..{num_train_timesteps} or None (every step "
                         f"guided), got {value!r}")


# what else a folder's defaults may hold: a super-resolution model's temporal window, stride and noise level
SR_DEFAULTS = ("window", "stride", "noise_level")


def check_defaults(defaults: dict, num_train_timesteps: int, prefix: str = "", known_only: bool = False) -> None:
    """A folder's sampling ``defaults`` (its own, before :func:`resolve_defaults`) hold values a call can use, or one
    ValueError naming the key (after ``prefix``, e.g. a recipe's ``sample.``). ``known_only``: a key that is no
    default at all is refused too (a recipe's typo was written into the folder and never read)."""
    def name(k: str) -> str:
        return f"'{prefix}{k}'"

    if known_only:
        known = (*BASE_DEFAULTS, *NAMED_DEFAULTS, *SR_DEFAULTS)
        for k in defaults:
            if k not in known:
                raise ValueError(f"{name(k)} is not a sampling default; allowed: {', '.join(known)}")
    for k in BASE_DEFAULTS:
        v = defaults.get(k, 1)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name(k)} must be a positive number, got {v!r}")
    for k in ("num_frames", "height", "width", "num_inference_steps"):
        if k in defaults and not float(defaults[k]).is_integer():
            raise ValueError(f"{name(k)} must be a whole number, got {defaults[k]!r}")
    if defaults.get("sampler", "dpm++") not in SAMPLERS:
        raise ValueError(f"unknown default sampler {defaults.get('sampler')!r} ({name('sampler')}); allowed: "
                         f"{', '.join(SAMPLERS)}")
    lm = defaults.get("logsnr_min")
    if lm is not None and not (isinstance(lm, (int, float)) and not isinstance(lm, bool) and math.isfinite(lm)):
        raise ValueError(f"{name('logsnr_min')} must be a number or null, got {lm!r}")
    from vidiff.diffusion.multidiffusion import WINDOW_WEIGHTINGS

    if defaults.get("window_weighting", "triangle") not in WINDOW_WEIGHTINGS:
        raise ValueError(f"{name('window_weighting')} must be one of {', '.join(WINDOW_WEIGHTINGS)}, got "
                         f"{defaults['window_weighting']!r}")
    try:
        check_guidance_min_t(defaults.get("guidance_min_t"), num_train_timesteps)
    except ValueError as e:
        raise ValueError(str(e).replace("'guidance_min_t'", name("guidance_min_t"))) from None
    for k in ("guidance_rescale", "eta", "strength", "alpha", "noise_level"):  # fractions
        v = defaults.get(k, 0.5)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and 0 <= v <= 1):
            raise ValueError(f"{name(k)} must be a number in [0, 1], got {v!r}")
    for k in ("window", "stride"):
        v = defaults.get(k, 1)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer() or v < 1:
            raise ValueError(f"{name(k)} must be a whole number of frames >= 1, got {v!r}")


def resolve_defaults(own: dict | None) -> dict:
    """A folder's defaults over the library's: what every call left at None takes."""
    return {**BASE_DEFAULTS, **NAMED_DEFAULTS, **(own or {})}


# per-call defaults (not properties of a model): a folder records them only where it differs from the library,
# so a change of the library's default reaches every folder that did not choose its own
CALL_DEFAULTS = ("strength", "alpha", "condition_guidance_scale", *NAMED_DEFAULTS)


def recorded_defaults(defaults: dict) -> dict:
    """What a folder's vidiff_pipeline.json records of a pipeline's ``defaults``: the model's own (sizes, steps,
    guidance, ...) and the per-call ones it sets differently from the library."""
    library = resolve_defaults(None)
    return {k: v for k, v in defaults.items() if k not in CALL_DEFAULTS or v != library[k]}


SUPPORTED_IMAGE_FOLDER = "a diffusers text-to-image folder (unet/ with a UNet2DConditionModel, scheduler/)"


def is_diffusers_image_folder(path: Path) -> bool:
    """A plain diffusers text-to-image folder (no vidiff_pipeline.json): ``unet/config.json`` of a
    UNet2DConditionModel and ``scheduler/scheduler_config.json``, e.g. Stable Diffusion 1.x / 2.x as downloaded."""
    path = Path(path)
    return (not (path / PIPELINE_FILE).exists() and (path / "scheduler" / "scheduler_config.json").is_file()
            and unet_class_name(path) == "UNet2DConditionModel")


def diffusers_meta(path: Path) -> dict:
    """What vidiff_pipeline.json would say of a plain diffusers text-to-image folder: its noise schedule
    (``scheduler/``), its text encoder (``text_encoder/`` + ``tokenizer/``, read as its diffusers pipeline reads it:
    ``text_features: padded``; else vidiff's), and sizes from its U-Net (``sample_size`` times the autoencoder's
    scale: 512 px for SD 1.5), 16 frames, guidance 7.5 (diffusers' Stable Diffusion default)."""
    from vidiff.diffusion.schedule import SCHEDULE_FIELDS

    path = Path(path)
    f = path / "scheduler" / "scheduler_config.json"
    try:
        cfg = json.loads(f.read_text(encoding="utf-8"))
        schedule = DiffusionConfig(**{k: cfg[k] for k in SCHEDULE_FIELDS if k in cfg}).to_dict()
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{str(f)!r} is not a noise schedule vidiff reads: {str(e)[:120]}") from None
    meta = {"task": "text-to-video", "diffusion": schedule, "text_encoder": "minilm"}
    if (path / LOCAL_TEXT_ENCODER).is_dir():
        if not (path / "tokenizer").is_dir():
            raise ValueError(f"{str(path)!r} has text_encoder/ but no tokenizer/")
        meta.update(text_encoder=LOCAL_TEXT_ENCODER, text_features="padded")
    try:
        side = int(json.loads((path / "unet" / "config.json").read_text(encoding="utf-8")).get("sample_size") or 32)
    except (OSError, ValueError, TypeError, AttributeError):
        side = 32  # loading reports the damaged U-Net in full
    if (path / "vae" / "config.json").is_file():
        from vidiff.models.latent import vae_scale

        try:
            side *= vae_scale(json.loads((path / "vae" / "config.json").read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):
            pass  # loading the autoencoder reports it
    meta["defaults"] = {"num_frames": 16, "height": side, "width": side, "guidance_scale": 7.5,
                        "num_inference_steps": 25}
    return meta


def read_meta(path: Path) -> dict:
    """The folder's ``vidiff_pipeline.json``, checked: a mapping with a known task, a diffusion config and
    defaults of the right kinds; for a plain diffusers text-to-image folder, :func:`diffusers_meta`. Raises
    ValueError naming what is wrong."""
    path = Path(path)
    meta_path = path / PIPELINE_FILE
    if is_diffusers_image_folder(path):
        return diffusers_meta(path)
    if not meta_path.is_file():
        raise ValueError(f"{str(path)!r} is not a vidiff pipeline folder ({PIPELINE_FILE} missing)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{str(meta_path)!r} is not valid JSON") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{str(meta_path)!r} must hold a JSON object, got {type(meta).__name__}")
    from vidiff.tasks import TASKS

    if meta.get("task", "text-to-video") not in TASKS:
        raise ValueError(f"{str(meta_path)!r} names an unknown task {meta.get('task')!r}")
    try:
        DiffusionConfig(**meta["diffusion"])
    except (KeyError, TypeError):
        raise ValueError(f"{str(meta_path)!r} lacks a valid 'diffusion' entry") from None
    except ValueError as e:
        raise ValueError(f"{str(meta_path)!r}: {e}") from None
    defaults = meta.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ValueError(f"{str(meta_path)!r} has invalid 'defaults' (a mapping of sampling defaults expected)")
    try:
        check_defaults(defaults, meta["diffusion"].get("num_train_timesteps", 1000), prefix="defaults.")
    except ValueError as e:
        raise ValueError(f"{str(meta_path)!r}: {e}") from None
    if not isinstance(meta.get("text_encoder", "minilm"), str):
        raise ValueError(f"{str(meta_path)!r}: 'text_encoder' must be a string")
    return meta


def check_folder(path: Path, task: str, num_frames: int | None = None, height: int | None = None,
                 width: int | None = None, names: dict[str, str] | None = None) -> dict:
    """Before loading anything: the folder holds a ``task`` model that takes a clip of this size. Returns its
    defaults (the folder's own over :data:`BASE_DEFAULTS`). ``names``: how the caller calls the sizes, for the
    error, by the start of the message (the CLI: ``{"num_frames": "--frames"}``)."""
    from vidiff.models.latent import latent_size, vae_scale
    from vidiff.models.unet import check_clip_size

    path = Path(path)
    meta = read_meta(path)
    if meta.get("task", "text-to-video") != task:
        raise ValueError(f"{str(path)!r} is a {meta.get('task', 'text-to-video')} model; this command needs a {task} model")
    defaults = resolve_defaults(meta.get("defaults"))
    try:
        cfg = json.loads((path / "unet" / "config.json").read_text(encoding="utf-8"))
        assert isinstance(cfg, dict)
    except (OSError, ValueError, AssertionError):
        return defaults  # loading reports the damaged model in full
    t = int(defaults["num_frames"] if num_frames is None else num_frames)
    h = int(defaults["height"] if height is None else height)
    w = int(defaults["width"] if width is None else width)
    try:  # a latent model: the U-Net sees the frames shrunk by the autoencoder's scale
        f = vae_scale(json.loads((path / "vae" / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        f = 1  # a pixel model (no vae/); loading reports a damaged autoencoder in full
    h, w = latent_size(h, w, f)
    name = cfg.get("_class_name", "VideoUNet")
    try:
        if name == "VideoUNet":
            check_clip_size(cfg, t, h, w)
        elif name in ("InflatedUNet", "UNet2DConditionModel"):  # the rule of the model itself, built without weights
            with torch.device("meta"):
                model_class(cfg, path / "unet").from_config(cfg).check_input_size(t, h, w)
    except ValueError as e:  # the size rule names the library's arguments (check_sizes); a CLI user typed flags
        message = str(e)
        for ours, theirs in (names or {}).items():
            if message.startswith(ours + " "):
                message = theirs + message[len(ours):]
        raise ValueError(message) from None
    return defaults



def named_super_resolution(folder: str | os.PathLike, meta: dict) -> Path | None:
    """The folder of the super-resolution stage a pipeline folder names (``"super_resolution"`` in its
    vidiff_pipeline.json ``meta``, relative to it), or None. Raises ValueError when it names a missing one."""
    named = meta.get("super_resolution")
    if named is None:
        return None
    path = (Path(folder) / named).resolve()
    if not (path / PIPELINE_FILE).exists():
        raise ValueError(f"the model names a super-resolution stage {str(path)!r} that is missing; "
                         "give another (--ssr PATH, super_resolution=) or skip it (--base-only, base_only=True)")
    return path


def reads_like(encoder, meta: dict) -> bool:
    """Whether ``encoder`` (a TextEncoder or its cache) gives the text features the folder of ``meta`` was trained
    on: the same encoder and the same features. Then it can be shared (the SSR stage reuses the base's)."""
    return (encoder.name, getattr(encoder, "features", "last")) == (meta.get("text_encoder", "minilm"),
                                                                   meta.get("text_features", "last"))


def shared_encoder(encoder, meta: dict):
    """``encoder`` as the folder of ``meta`` reads text: itself when the features match, its last-layer half when
    the folder reads only the last layer of the same encoder (:class:`~vidiff.conditioning.text.LastLayerView`),
    else None (the folder loads its own)."""
    if reads_like(encoder, meta):
        return encoder
    if (getattr(encoder, "features", "last") == "last+embeddings" and meta.get("text_features", "last") == "last"
            and encoder.name == meta.get("text_encoder", "minilm")):
        from vidiff.conditioning.text import LastLayerView

        return LastLayerView(encoder)
    return None


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
    name = meta.get("text_encoder", "minilm")
    if name == LOCAL_TEXT_ENCODER and (path / name).is_dir():  # a diffusers folder's own (text_encoder/ + tokenizer/)
        name = path / name
    return TextEncoder(name, features=meta.get("text_features", "last"))

