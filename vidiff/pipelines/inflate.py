"""Turn a local text-to-image model into a video model (Lumiere 3.1, AnimateDiff): :func:`inflate`.

The image model is a diffusers folder: ``unet/`` (a ``UNet2DConditionModel``), ``scheduler/`` (its noise
schedule and prediction type) and either vidiff's ``vidiff_pipeline.json`` (a model vidiff trained: its text
encoder and defaults) or ``text_encoder/`` + ``tokenizer/`` (a transformers text encoder, e.g. CLIP). The result
is a vidiff pipeline folder that every command takes; a folder's own text encoder is read as diffusers' pipelines
read it (``text_features: padded``: the prompt padded to the tokenizer's length, 77 CLIP tokens for Stable
Diffusion, with the padding attended); its ``unet/`` holds the image weights unchanged and the new
temporal layers at their identity initialisation (:mod:`vidiff.models.inflated`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from vidiff.diffusion.schedule import DiffusionConfig
from vidiff.pipelines.folder import SUPPORTED_IMAGE_FOLDER as SUPPORTED
from vidiff.pipelines.folder import read_meta


def read_image_model(path: str | os.PathLike) -> dict:
    """What an image-model folder holds, checked before any weight loads. Returns ``{"unet": Path, "meta": the
    vidiff pipeline description to inherit}``. Raises ValueError naming what was found and what is supported."""
    from vidiff.models.image import check_image_unet_config

    path = Path(path)
    if not path.is_dir():
        if path.is_file() and path.suffix.lower() == ".safetensors":
            from vidiff.pipelines.single_file import convert_hint

            raise ValueError(f"{str(path)!r} is a single file, not a folder; expected {SUPPORTED}: "
                             f"{convert_hint(path)}")
        raise ValueError(f"{str(path)!r} is not a folder; expected {SUPPORTED}")
    unet_cfg = path / "unet" / "config.json"
    if not unet_cfg.is_file():
        found = sorted(p.name for p in path.iterdir())[:6]
        raise ValueError(f"{str(path)!r} is not a text-to-image model (no unet/config.json; found {found}); "
                         f"expected {SUPPORTED}")
    try:
        cfg = json.loads(unet_cfg.read_text(encoding="utf-8"))
        assert isinstance(cfg, dict)
    except (ValueError, AssertionError):
        raise ValueError(f"{str(unet_cfg)!r} is not a JSON object") from None
    check_image_unet_config(cfg, f"{str(path)!r}")
    if (path / "vae").exists() and not (path / "vae" / "config.json").is_file():
        raise ValueError(f"{str(path)!r} has vae/ without a config.json; expected a diffusers AutoencoderKL folder")
    meta = read_meta(path)  # a model vidiff trained (vidiff_pipeline.json), else what the diffusers folder says
    if meta.get("task", "text-to-video") != "text-to-video":
        raise ValueError(f"{str(path)!r} is a {meta['task']} model, not a text-to-image one")
    return {"unet": path / "unet", "meta": meta, "config": cfg}


def inflate(image_model: str | os.PathLike, arch: str = "stunet", output: str | os.PathLike | None = None,
            motion_module: str | os.PathLike | None = None, overwrite: bool = False,
            motion_adapter: str | os.PathLike | None = None, **arch_kwargs):
    """Inflate the image model at ``image_model`` into a video pipeline (:class:`TextToVideoPipeline`).

    ``arch``: "stunet" or "motion-module" (:mod:`vidiff.models.inflated`), or "animatediff" (AnimateDiff's own
    layout through diffusers' UNetMotionModel, :mod:`vidiff.models.animatediff`) with ``motion_adapter``, a
    diffusers MotionAdapter folder (new motion modules when None). ``motion_module``: a file written by
    :func:`~vidiff.models.inflated.save_motion_module` to load into the new layers (a motion module trained on
    another image model of the same layout: AnimateDiff's personalization). With ``output`` the folder is
    written (atomically; an existing one only with ``overwrite``). Nothing is written when anything is wrong."""
    from vidiff.conditioning.text import CACHE_FILE
    from vidiff.models.latent import VAE_DIR, load_vae
    from vidiff.models.inflated import ARCHS, CONV_INFLATIONS, InflatedUNet, load_motion_module
    from vidiff.pipelines.folder import load_text_encoder, load_unet
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    if not isinstance(image_model, (str, os.PathLike)):  # a TypeError from Path() before
        raise ValueError(f"the image model is a folder path, got {type(image_model).__name__}")
    if arch not in ARCHS + ("animatediff",):
        raise ValueError(f"unknown --arch {arch!r}; allowed: {', '.join(ARCHS + ('animatediff',))}")
    import inspect

    options = [k for k in inspect.signature(InflatedUNet.__init__).parameters if k not in ("self", "image_config",
                                                                                          "arch")]
    unknown = sorted(set(arch_kwargs) - set(options))
    if unknown:  # InflatedUNet's TypeError after the image model had loaded
        raise ValueError(f"unknown inflation option(s) {', '.join(unknown)}; allowed: {', '.join(options)}")
    conv = arch_kwargs.get("conv_inflation")
    if conv is not None and conv not in CONV_INFLATIONS:  # named as the model config's key before
        raise ValueError(f"unknown --conv-inflation {conv!r}; allowed: {', '.join(CONV_INFLATIONS)}")
    if motion_adapter is not None and arch != "animatediff":
        raise ValueError("a motion adapter (AnimateDiff's, diffusers' MotionAdapter) goes with --arch animatediff; "
                         "--motion-module takes vidiff's own motion modules")
    if motion_module is not None and arch == "animatediff":
        raise ValueError("--arch animatediff takes a diffusers MotionAdapter folder (--motion-adapter), not a vidiff "
                         "motion module")
    if arch == "animatediff" and arch_kwargs:
        raise ValueError(f"--arch animatediff takes no inflation options, got {sorted(arch_kwargs)}")
    from vidiff.registry import model_path

    image_model = model_path(image_model)  # an embedded name ("t2i-shapes") as --model takes it: it was "not a folder"
    found = read_image_model(image_model)
    if output is not None:
        from vidiff.io.outputs import check_not_an_input
        from vidiff.pipelines.base import check_replaceable

        output = Path(output)
        check_not_an_input(output, [image_model, motion_module, motion_adapter])  # the image model was replaced
        if output.exists() and not overwrite:
            raise ValueError(f"{str(output)!r} exists; choose another folder (or overwrite=True / --overwrite)")
        if output.is_file() or output.is_symlink():
            raise ValueError(f"{str(output)!r} is a file; the video model is a folder: choose another name")
        if output.is_dir() and any(output.iterdir()):
            check_replaceable(output)  # before the models load, not after
    if motion_module is not None and not Path(motion_module).is_file():
        raise ValueError(f"motion module {str(motion_module)!r} does not exist")
    meta = found["meta"]
    if arch == "animatediff":
        from vidiff.models.animatediff import check_text_reading, from_image_unet

        check_text_reading(meta.get("text_features", "last"), f"--arch animatediff on {str(image_model)!r}")
    image = load_unet(found["unet"], torch.float32)
    if arch == "animatediff":
        model = from_image_unet(image, motion_adapter)
    else:
        model = InflatedUNet.from_image_unet(image, arch, **arch_kwargs)
    if motion_module is not None:
        load_motion_module(model, motion_module)
    text_encoder = load_text_encoder(Path(image_model), meta)
    if text_encoder.dim != model.text_dim:
        raise ValueError(f"the text encoder gives {text_encoder.dim}-wide features; the image model reads "
                         f"{model.text_dim}")
    extra = {k: v for k, v in meta.items()
             if k not in ("task", "diffusion", "text_encoder", "text_features", "defaults", "train_config", "versions")}
    extra["image_model"] = {"path": str(Path(image_model).resolve()), "arch": arch,
                            **({"motion_module": str(Path(motion_module).resolve())} if motion_module else {})}
    vae = None
    if (Path(image_model) / VAE_DIR).is_dir():  # a latent image model (Stable Diffusion layout)
        vae = load_vae(Path(image_model) / VAE_DIR)
        if vae.config.latent_channels != model.sample_channels:
            raise ValueError(f"the VAE gives {vae.config.latent_channels} latent channels; the U-Net denoises "
                             f"{model.sample_channels}")
    defaults = meta.get("defaults")
    pipe = TextToVideoPipeline(model, text_encoder, DiffusionConfig(**meta["diffusion"]), defaults, extra, vae=vae)
    if output is not None:
        cache = Path(image_model) / CACHE_FILE  # the image model's text cache serves the video model (same encoder)
        pipe.save_pretrained(output, overwrite=overwrite, extra_files=[cache] if cache.is_file() else ())
        pipe.path = output
    return pipe


__all__ = ["inflate", "read_image_model"]
