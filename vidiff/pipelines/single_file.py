"""Single-file checkpoints (one ``.safetensors`` in the original Stable Diffusion / LDM layout, as community
fine-tunes are shared) into a diffusers text-to-image folder: :func:`convert_single_file`.

diffusers does the conversion (``from_single_file``); what this adds is what a file without configs needs on a
machine without a model hub: the configs come from a diffusers folder the user has (``config``: e.g. their
Stable-Diffusion-1.5 folder, any folder of the same layout), the file is checked before anything loads (a pickle
is refused, an SDXL or LoRA file is named as such), components the file lacks come from that folder, and the
folder is written atomically and checked the way ``vidiff inflate`` reads it before it is put in place. The
result is an ordinary diffusers folder (``StableDiffusionPipeline.from_pretrained`` loads it) that every vidiff
command takes as an image model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

# the key prefixes of an LDM-layout checkpoint (CompVis' names; what diffusers' single-file loader reads)
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIXES = ("cond_stage_model.transformer.", "cond_stage_model.model.")  # CLIP (SD 1.x), OpenCLIP (SD 2.x)
SDXL_PREFIX = "conditioner.embedders."
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5", ".onnx")
PROVENANCE_FILE = "vidiff_convert.json"
SUPPORTED = ("a .safetensors checkpoint in the original Stable Diffusion (LDM) layout: U-Net keys "
             "'model.diffusion_model.*', optionally the VAE ('first_stage_model.*') and the text encoder "
             "('cond_stage_model.*')")


def convert_hint(path) -> str:
    """The one clause an error about a single-file checkpoint given where a folder (or a LoRA) is read ends with."""
    return f"convert it first: vidiff convert {str(path)!r} --config A_DIFFUSERS_FOLDER_OF_ITS_LAYOUT -o FOLDER"


def is_ldm_checkpoint(keys) -> bool:
    """Whether a file's tensor names are a whole model in the LDM layout (not a LoRA, not a diffusers state dict)."""
    return any(k.startswith(UNET_PREFIX) for k in keys)


def read_checkpoint_keys(path: str | os.PathLike) -> list[str]:
    """The tensor names of a single-file checkpoint, read from its header only (nothing loads). ValueError when it is
    not a readable safetensors file of a whole SD-1.x / 2.x model."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder; vidiff convert reads {SUPPORTED}")
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ValueError(f"{str(path)!r} is a pickle file ({path.suffix}), which runs code when loaded; vidiff reads "
                         f".safetensors only (get the .safetensors release of the model)")
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = list(f.keys())
    except Exception as e:  # truncated, zero bytes, another format
        raise ValueError(f"{str(path)!r} is not a readable safetensors file ({type(e).__name__}: "
                         f"{' '.join(str(e).split())[:80]}); "
                         f"expected {SUPPORTED}") from None
    if any(k.startswith(SDXL_PREFIX) for k in keys):
        raise ValueError(f"{str(path)!r} is an SDXL checkpoint (keys '{SDXL_PREFIX}*'); supported: the SD-1.x / 2.x "
                         f"layout (SDXL's added conditioning is not read)")
    if not is_ldm_checkpoint(keys):
        from vidiff.models.lora import is_kohya

        kind = ("a LoRA (pass it to --image-model as it is)"
                if is_kohya(dict.fromkeys(keys)) or any("lora" in k.lower() for k in keys)
                else f"no LDM U-Net (first key {keys[0]!r})" if keys else "no tensors")
        raise ValueError(f"{str(path)!r} holds {kind}; expected {SUPPORTED}")
    return keys


def _config_folder(config: Path, stage: Path) -> Path:
    """A copy of ``config``'s configs, tokenizer and ``model_index.json`` without its weights: what diffusers'
    ``from_single_file(config=...)`` reads, assembled because a folder vidiff reads need not have a
    ``model_index.json`` (vidiff's own folders and bare component folders do not)."""
    stage.mkdir()
    components = {}
    for sub in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        src = config / sub
        if not src.is_dir():
            continue
        (stage / sub).mkdir()
        for f in src.iterdir():
            if f.is_file() and not f.name.lower().endswith(WEIGHT_SUFFIXES):
                shutil.copy2(f, stage / sub / f.name)
        components[sub] = src
    index = config / "model_index.json"
    if index.is_file():
        shutil.copy2(index, stage / "model_index.json")
    else:
        import diffusers

        libs = {"unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
                "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                "scheduler": ["diffusers", "PNDMScheduler"]}
        if "scheduler" in components:
            sched = config / "scheduler" / "scheduler_config.json"
            try:
                name = json.loads(sched.read_text(encoding="utf-8")).get("_class_name", "PNDMScheduler")
            except (OSError, ValueError, AttributeError):
                raise ValueError(f"{str(sched)!r} is missing or not a JSON object; expected a diffusers scheduler "
                                 f"config") from None
            libs["scheduler"] = ["diffusers", name]
        (stage / "model_index.json").write_text(json.dumps({
            "_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
            **{k: libs[k] for k in components}, "safety_checker": [None, None], "feature_extractor": [None, None],
            "requires_safety_checker": False}, indent=2))
    return stage


# what convert_single_file writes in its folder: --overwrite replaces a folder holding nothing else
CONVERTED = ("model_index.json", "unet", "vae", "text_encoder", "tokenizer", "scheduler", PROVENANCE_FILE)


def convert_single_file(checkpoint: str | os.PathLike, config: str | os.PathLike, output: str | os.PathLike,
                        overwrite: bool = False) -> Path:
    """Write ``output``, a diffusers text-to-image folder (``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``,
    ``scheduler/``, ``model_index.json``), from ``checkpoint``, one ``.safetensors`` file in the original Stable
    Diffusion layout, with the configs of ``config``, a diffusers folder of the same layout (its weights are not read
    except for a VAE or text encoder the file lacks). The weights keep the file's precision. ``output`` must not
    exist unless ``overwrite``; nothing is written when anything is wrong. Returns ``output``."""
    import torch
    from safetensors import safe_open

    from vidiff import versions
    from vidiff.io.atomic import atomic_path
    from vidiff.io.outputs import check_not_an_input, check_replaceable_folder
    from vidiff.pipelines.inflate import read_image_model

    checkpoint, config, output = Path(checkpoint), Path(config), Path(output)
    check_not_an_input(output, [checkpoint, config])  # '-o' the config folder deleted it, and the checkpoint in it
    if overwrite and (output.is_file() or output.is_symlink()):
        raise ValueError(f"{str(output)!r} is a file; the converted model is a folder: choose another name")
    if overwrite and output.is_dir() and any(output.iterdir()):
        if not (output / "model_index.json").is_file():
            raise ValueError(f"{str(output)!r} is not a diffusers model folder (no model_index.json), which "
                             f"--overwrite would replace; choose another folder")
        check_replaceable_folder(output, CONVERTED, "a conversion")
    keys = read_checkpoint_keys(checkpoint)
    if not (config / "unet" / "config.json").is_file() or not (config / "scheduler").is_dir():
        raise ValueError(f"--config {str(config)!r} is not a diffusers text-to-image folder (unet/config.json and "
                         f"scheduler/ expected): give the folder of a model of the checkpoint's layout, e.g. the "
                         f"Stable Diffusion 1.5 folder it was fine-tuned from")
    has_vae = any(k.startswith(VAE_PREFIX) for k in keys)
    has_text = any(k.startswith(TEXT_PREFIXES) for k in keys)
    needs = {"vae/config.json": has_vae, "text_encoder/config.json": has_text, "tokenizer": has_text}
    missing = [n for n, needed in needs.items() if needed and not (config / n).exists()]
    if missing:
        raise ValueError(f"{str(checkpoint)!r} holds a {'VAE' if 'vae/config.json' in missing else 'text encoder'} and "
                         f"--config {str(config)!r} lacks {', '.join(missing)} to read it with; give a complete "
                         f"diffusers folder of the checkpoint's layout")
    with safe_open(str(checkpoint), framework="pt") as f:
        dtype = f.get_slice(next(k for k in keys if k.startswith(UNET_PREFIX))).get_dtype()
    dtype = {"F16": torch.float16, "BF16": torch.bfloat16}.get(dtype, torch.float32)

    # atomic_path refuses an existing output (unless overwrite) before the conversion starts
    with atomic_path(output, overwrite=overwrite) as tmp, _quiet():
        tmp.mkdir()
        pipe = _load(checkpoint, _config_folder(config, tmp / ".config"), config, has_vae, has_text, dtype)
        shutil.rmtree(tmp / ".config")
        pipe.unet.save_pretrained(tmp / "unet")
        made = {"unet": "checkpoint"}
        for part, present in (("vae", has_vae), ("text_encoder", has_text)):
            if present:
                getattr(pipe, part).save_pretrained(tmp / part)
                made[part] = "checkpoint"
            elif (config / part).is_dir():
                shutil.copytree(config / part, tmp / part)
                made[part] = f"copied from {str(config / part)!r}"
        for part in ("tokenizer", "scheduler"):  # verbatim: the prediction type and schedule are the config's
            if (config / part).is_dir():
                shutil.copytree(config / part, tmp / part)
                made[part] = f"copied from {str(config / part)!r}"
        # model_index.json of what the folder holds (the config's may list a safety checker, which is not copied)
        pipe.save_config(tmp)
        (tmp / PROVENANCE_FILE).write_text(json.dumps({
            "checkpoint": str(checkpoint.resolve()), "bytes": checkpoint.stat().st_size,
            "config": str(config.resolve()), "dtype": str(dtype).replace("torch.", ""), "components": made,
            "versions": versions()}, indent=2))
        try:
            read_image_model(tmp)  # what inflate reads: a layout vidiff cannot run is refused before it is in place
        except ValueError as e:
            raise ValueError(str(e).replace(str(tmp), str(output))) from None
    return output


@contextmanager
def _quiet():
    """diffusers' notes on the config's scheduler, transformers' on image processors the pipeline class imports and a
    progress bar per component read or written are not the user's business; their settings are restored after."""
    import warnings

    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    levels = dlog.get_verbosity(), tlog.get_verbosity()
    bars = dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled()
    dlog.set_verbosity_error()
    tlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        dlog.set_verbosity(levels[0])
        tlog.set_verbosity(levels[1])
        for lib, on in zip((dlog, tlog), bars):
            if on:
                lib.enable_progress_bar()


def _load(checkpoint: Path, staged: Path, config: Path, has_vae: bool, has_text: bool, dtype):
    """diffusers' StableDiffusionPipeline.from_single_file on the staged configs, offline; the VAE / text encoder /
    tokenizer the file lacks come from ``config`` itself."""
    from diffusers import StableDiffusionPipeline

    extra = {}
    # the VAE and text encoder when the file lacks them, the tokenizer always (a checkpoint never holds one)
    for part, present in (("vae", has_vae), ("text_encoder", has_text), ("tokenizer", False)):
        if present or not (config / part).is_dir():
            continue
        try:  # a part the file lacks, from the config folder (its fp16 variant where that is all it holds)
            if part == "vae":
                from vidiff.models.latent import load_vae

                extra[part] = load_vae(config / part)
            elif part == "text_encoder":
                from transformers import AutoModel

                from vidiff.pipelines.folder import weights_variant

                extra[part] = AutoModel.from_pretrained(config / part, variant=weights_variant(config / part, "model"))
            else:
                from transformers import AutoTokenizer

                extra[part] = AutoTokenizer.from_pretrained(config / part)
        except Exception as e:
            raise ValueError(f"{str(config / part)!r} could not be read ({type(e).__name__}: "
                             f"{' '.join(str(e).split())[:120]}); the checkpoint has no {part} of its own") from None
    try:
        return StableDiffusionPipeline.from_single_file(
            str(checkpoint), config=str(staged), local_files_only=True, torch_dtype=dtype, safety_checker=None,
            feature_extractor=None, requires_safety_checker=False, **extra)
    except Exception as e:  # shapes that do not fit the configs, a key missing: the file is not of this layout
        # diffusers: "Cannot load  because KEY expected shape A, but got B. If you want to ... (advice)"
        first = re.sub(r"^Cannot load\s+\S*\s*because ", "", " ".join(str(e).split()).split(". If you want")[0])
        first = first[:200] or type(e).__name__
        raise ValueError(f"{str(checkpoint)!r} does not fit the layout of {str(config)!r} ({first}); give the "
                         f"folder of the model it was fine-tuned from") from None


# ---------------------------------------------------------------- the inverse: a folder as one LDM-layout file
# diffusers converts single files into folders (from_single_file) but ships the way back only as a repository
# script (scripts/convert_diffusers_to_original_stable_diffusion.py, not installed); these are CompVis' names for
# any number of blocks, written from that layout. The tests check them by converting a file written here back
# with diffusers and comparing every weight.
_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
           ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
_VAE_ATTN = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}


def _unet_pairs(cfg) -> list[tuple[str, str]]:
    n, per = len(cfg["block_out_channels"]), cfg["layers_per_block"]
    pairs = [("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
             ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2."),
             ("mid_block.attentions.0.", "middle_block.1."), ("mid_block.resnets.0.", "middle_block.0."),
             ("mid_block.resnets.1.", "middle_block.2.")]
    for i in range(n):
        down_attn, up_attn = "CrossAttn" in cfg["down_block_types"][i], "CrossAttn" in cfg["up_block_types"][i]
        for j in range(per):
            pairs.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{(per + 1) * i + j + 1}.0."))
            if down_attn:
                pairs.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{(per + 1) * i + j + 1}.1."))
        for j in range(per + 1):
            pairs.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{(per + 1) * i + j}.0."))
            if up_attn:
                pairs.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{(per + 1) * i + j}.1."))
        if i < n - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(per + 1) * (i + 1)}.0.op."))
            upsampler = f"output_blocks.{(per + 1) * i + per}.{2 if up_attn else 1}."  # after the attention, if any
            pairs.append((f"up_blocks.{i}.upsamplers.0.", upsampler))
    return pairs


def _vae_pairs(cfg) -> list[tuple[str, str]]:
    n, per = len(cfg["block_out_channels"]), cfg["layers_per_block"]
    pairs = []
    for side in ("encoder.", "decoder."):
        pairs += [(side + "mid_block.resnets.0.", side + "mid.block_1."),
                  (side + "mid_block.resnets.1.", side + "mid.block_2."),
                  (side + "mid_block.attentions.0.", side + "mid.attn_1."),
                  (side + "conv_norm_out.", side + "norm_out.")]
    for i in range(n):
        pairs += [(f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}.") for j in range(per)]
        pairs += [(f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{n - 1 - i}.block.{j}.") for j in range(per + 1)]
        if i < n - 1:
            pairs += [(f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample."),
                      (f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{n - 1 - i}.upsample.")]
    return pairs


def _open_clip(text: dict) -> dict:
    """A ``CLIPTextModel``'s weights in OpenCLIP's names (SD 2.x's text encoder): q, k, v in one ``in_proj``."""
    import torch

    t = {k.removeprefix("text_model."): v for k, v in text.items()}
    out = {"token_embedding.weight": t["embeddings.token_embedding.weight"],
           "positional_embedding": t["embeddings.position_embedding.weight"],
           "ln_final.weight": t["final_layer_norm.weight"], "ln_final.bias": t["final_layer_norm.bias"]}
    layers = sorted({int(k.split(".")[2]) for k in t if k.startswith("encoder.layers.")})
    for i in layers:
        src, dst = f"encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for a, b in (("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("self_attn.out_proj", "attn.out_proj"),
                     ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
            for w in ("weight", "bias"):
                out[f"{dst}{b}.{w}"] = t[f"{src}{a}.{w}"]
        for w in ("weight", "bias"):
            out[f"{dst}attn.in_proj_{w}"] = torch.cat([t[f"{src}self_attn.{q}_proj.{w}"] for q in "qkv"])
    return out


def ldm_state_dict(unet=None, vae=None, text_encoder=None, text_layout: str = "clip") -> dict:
    """One LDM-layout state dict of diffusers' ``UNet2DConditionModel`` (SD-1.x / 2.x blocks), ``AutoencoderKL`` and a
    transformers ``CLIPTextModel``, any of them None; ``text_layout`` "clip" (SD 1.x: the transformers names under
    ``cond_stage_model.transformer.``) or "open_clip" (SD 2.x: OpenCLIP's under ``cond_stage_model.model.``).
    ValueError on a weight of another layout."""
    if text_layout not in ("clip", "open_clip"):
        raise ValueError(f"unknown text_layout {text_layout!r}; allowed: clip (SD 1.x), open_clip (SD 2.x)")
    out = {}
    if unet is not None:
        pairs = _unet_pairs(unet.config)
        for key, v in unet.state_dict().items():
            hf, ldm = next(((hf, ldm) for hf, ldm in pairs if key.startswith(hf)), (None, None))
            if hf is None:
                raise ValueError(f"the U-Net weight {key!r} has no place in the SD-1.x layout")
            rest = key[len(hf):]
            if ".resnets." in hf:
                rest = next((b + rest[len(a):] for a, b in _RESNET if rest.startswith(a + ".")), rest)
            out[UNET_PREFIX + ldm + rest] = v
    if vae is not None:
        pairs = _vae_pairs(vae.config)
        for key, v in vae.state_dict().items():
            hf, ldm = next(((hf, ldm) for hf, ldm in pairs if key.startswith(hf)), ("", ""))
            rest = key[len(hf):]
            if ldm.endswith("mid.attn_1."):
                a = next(a for a in _VAE_ATTN if rest.startswith(a))
                rest = _VAE_ATTN[a] + rest[len(a):]
                v = v[:, :, None, None] if v.ndim == 2 else v  # LDM's attention projections are 1x1 convs
            out[VAE_PREFIX + (ldm + rest).replace("conv_shortcut", "nin_shortcut")] = v
    if text_encoder is not None and text_layout == "open_clip":
        out.update({TEXT_PREFIXES[1] + k: v for k, v in _open_clip(text_encoder.state_dict()).items()})
    elif text_encoder is not None:  # transformers >= 5.6 saves CLIPTextModel without its "text_model." level
        for key, v in text_encoder.state_dict().items():
            out[TEXT_PREFIXES[0] + (key if key.startswith("text_model.") else "text_model." + key)] = v
    return out


def save_single_file(folder: str | os.PathLike, path: str | os.PathLike, dtype=None, overwrite: bool = False,
                     parts=("unet", "vae", "text_encoder"), text_layout: str = "clip") -> Path:
    """Write the diffusers SD-1.x / 2.x folder ``folder`` (its ``parts`` present) as one ``.safetensors`` in the
    original Stable Diffusion layout, what the single-file tools (and :func:`convert_single_file`) read; ``dtype`` e.g.
    torch.float16 (None: as loaded, fp32); ``text_layout``: "clip" (SD 1.x) or "open_clip" (SD 2.x). Atomic; an
    existing ``path`` only with ``overwrite``."""
    import torch
    from safetensors.torch import save_file

    from vidiff.io.atomic import atomic_path
    from vidiff.pipelines.folder import load_diffusers_model

    folder = Path(folder)
    models = {}
    for part in parts:
        if not (folder / part).is_dir():
            continue
        if part == "text_encoder":
            from transformers import CLIPTextModel

            models[part] = CLIPTextModel.from_pretrained(folder / part)
        else:
            from diffusers import AutoencoderKL, UNet2DConditionModel

            cls = UNet2DConditionModel if part == "unet" else AutoencoderKL
            models[part] = load_diffusers_model(folder / part, cls, part, torch.float32)
    if "unet" not in models:
        raise ValueError(f"{str(folder)!r} has no unet/ to write")
    state = {k: (v.to(dtype) if dtype is not None else v).contiguous()
             for k, v in ldm_state_dict(**models, text_layout=text_layout).items()}
    with atomic_path(path, overwrite=overwrite) as tmp:
        save_file(state, str(tmp))
    return Path(path)


__all__ = ["convert_hint", "convert_single_file", "is_ldm_checkpoint", "ldm_state_dict", "read_checkpoint_keys",
           "save_single_file"]
