"""LoRA of a text-to-image U-Net: trained with peft, saved and loaded in diffusers' format.

A LoRA file is what diffusers' own LoRA scripts write (``pytorch_lora_weights.safetensors``: keys
``unet.<module>.lora.down.weight`` / ``.lora.up.weight``, or peft's ``lora_A`` / ``lora_B``), so a LoRA trained
by vidiff loads in diffusers (``pipe.load_lora_weights(folder)``) and one trained by diffusers' scripts on the
same image model loads here, and so do community LoRAs in kohya's (A1111's) format, U-Net and text-encoder
halves (:func:`fuse_kohya_text_lora`). Applying a LoRA fuses it into a copy of the weights (``W + scale * B A``): the
model then runs at the speed of the plain U-Net, and the temporal layers of an inflated model see an image
model like any other (AnimateDiff's personalization with a LoRA, :meth:`VideoDiffusionPipeline.with_image_model`).

Only the loading is checked here by hand: diffusers warns and goes on when a LoRA names modules the model does
not have; vidiff refuses it, naming what does not fit.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # this module is imported by the CLI's checks, before torch is
    import torch
    from diffusers import UNet2DConditionModel

LORA_FILE = "pytorch_lora_weights.safetensors"  # diffusers' name for a LoRA's weights
DEFAULT_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # the attention projections (diffusers' LoRA scripts)
_KEY = re.compile(r"^(?:unet\.)?(?P<module>.+?)\.(?:lora\.(?P<d>down|up)|lora_(?P<p>A|B))(?:\.default)?\.weight$")
_ADAPTER = "vidiff_lora"
# kohya's (A1111's) format, what most community LoRAs are: lora_unet_<module path with _> / lora_te_<...>
_KOHYA = re.compile(r"^lora_(?P<part>unet|te)_(?P<module>.+?)\.(?:(?P<kind>lora_down|lora_up)\.weight|alpha)$")


def add_lora(unet: UNet2DConditionModel, rank: int,
             targets: tuple[str, ...] | list[str] = DEFAULT_TARGETS) -> UNet2DConditionModel:
    """Add trainable LoRA layers of ``rank`` to ``unet``'s ``targets`` (in place, peft); every other weight is frozen.
    The LoRA's alpha is its rank (scale 1): a diffusers LoRA file carries no alpha, so it loads as it was trained."""
    from peft import LoraConfig

    if rank < 1:
        raise ValueError(f"a LoRA rank must be >= 1, got {rank}")
    names = {n.rsplit(".", 1)[-1] for n, _ in unet.named_modules()} | {".".join(n.split(".")[-2:]) for n, _ in
                                                                        unet.named_modules()}
    missing = [t for t in targets if t not in names]
    if missing:
        raise ValueError(f"train.lora_targets {missing} name no module of this U-Net; e.g. {', '.join(DEFAULT_TARGETS)}")
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=list(targets)))
    return unet


def has_lora(model: torch.nn.Module) -> bool:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return any(isinstance(m, BaseTunerLayer) for m in model.modules())


def lora_state_dict(unet: UNet2DConditionModel) -> dict[str, torch.Tensor]:
    """The LoRA weights of ``unet`` in diffusers' format (``unet.``-prefixed ``lora.down`` / ``lora.up`` keys)."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    return {f"unet.{k}": v.detach().contiguous().cpu() for k, v in state.items()}


def save_lora(unet: UNet2DConditionModel, path: str | os.PathLike, half: bool = True, overwrite: bool = False) -> None:
    """Write ``unet``'s LoRA as a diffusers LoRA file (fp16 by default), atomically."""
    from safetensors.torch import save_file

    from vidiff.io.atomic import atomic_path

    state = {k: (v.half() if half else v) for k, v in lora_state_dict(unet).items()}
    with atomic_path(path, overwrite=overwrite) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})


def fused(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """A copy of ``unet`` with its LoRA merged into the weights and the LoRA layers removed (a plain U-Net)."""
    out = copy.deepcopy(unet)
    out.fuse_lora(lora_scale=1.0)
    out.unload_lora()
    return out


def read_lora(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a LoRA file; ValueError when it is not a safetensors file of LoRA weights."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        path = path / LORA_FILE
    try:
        state = load_file(str(path))
    except Exception as e:  # missing, truncated, a pickle, ...
        raise ValueError(f"{str(path)!r} is not a LoRA file (a safetensors file of LoRA weights: "
                         f"{type(e).__name__}: {str(e)[:80]})") from None
    if is_kohya(state):
        return state
    from vidiff.pipelines.single_file import convert_hint, is_ldm_checkpoint

    if is_ldm_checkpoint(state):
        raise ValueError(f"{str(path)!r} is a whole model in the original Stable Diffusion layout, not a LoRA; "
                         f"{convert_hint(path)}, then pass the folder")
    if not state or not all(_KEY.match(k) for k in state):
        odd = next((k for k in state if not _KEY.match(k)), "no tensors")
        raise ValueError(f"{str(path)!r} is not a LoRA in diffusers', peft's or kohya's format ({odd!r}); supported: "
                         f"keys 'unet.<module>.lora.down.weight' / '.lora.up.weight', '<module>.lora_A.weight' / "
                         f"'.lora_B.weight' (what diffusers' LoRA scripts and vidiff write), or 'lora_unet_<module>' / "
                         f"'lora_te_<module>' with '.lora_down.weight' / '.lora_up.weight' / '.alpha' (kohya's)")
    return state


def is_kohya(state: dict) -> bool:
    """Whether ``state`` (from :func:`read_lora`) is a LoRA in kohya's (A1111's) format."""
    return bool(state) and all(_KOHYA.match(k) for k in state)


def _kohya_unet(state: dict[str, torch.Tensor], unet_config) -> tuple[dict, dict, dict]:
    """The U-Net half of a kohya LoRA as diffusers converts it (``lora_state_dict``: both module namings, the
    original LDM one (``input_blocks_1_1_...``) by ``unet_config``'s layout): (its state dict, its alphas, the same
    in peft's key format for :func:`check_lora_fits`)."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_unet_state_dict_to_peft

    unet_part = {k: v for k, v in state.items() if k.startswith("lora_unet_")}
    if not unet_part:
        return {}, {}, {}
    converted, alphas = StableDiffusionPipeline.lora_state_dict(unet_part, unet_config=unet_config)
    converted = {k: v for k, v in converted.items() if k.startswith("unet.")}
    alphas = {k: v for k, v in (alphas or {}).items() if k.startswith("unet.")}
    peft = convert_unet_state_dict_to_peft({k[len("unet."):]: v for k, v in converted.items()})
    return converted, alphas, peft


def fuse_kohya_text_lora(text_model: torch.nn.Module, state: dict[str, torch.Tensor], scale: float, where: str) -> int:
    """Fuse the text-encoder half of a kohya LoRA (``lora_te_`` keys) into ``text_model`` (a transformers CLIP
    text model), in place: ``W += scale * alpha / rank * up @ down`` on each Linear it names. Returns how many.
    Why by hand: diffusers' text-encoder LoRA loader names CLIP's modules as transformers 4 did
    (``text_model.encoder...``) and finds none in transformers 5's flattened ``CLIPTextModel``."""
    import torch

    modules = {}
    for name, module in text_model.named_modules():
        if isinstance(module, torch.nn.Linear):
            flat = name.replace(".", "_")
            modules[flat] = module
            modules["text_model_" + flat.removeprefix("text_model_")] = module
    done = 0
    for key in state:
        m = _KOHYA.match(key)
        if m["part"] != "te" or m["kind"] != "lora_down":
            continue
        module = modules.get(m["module"]) or modules.get("text_model_" + m["module"])
        if module is None:
            raise ValueError(f"the LoRA {where} targets text-encoder module {m['module']!r}, which this text encoder "
                             f"does not have (it was trained for another one)")
        down = state[key].float().flatten(1)
        up = state.get(key.replace(".lora_down.weight", ".lora_up.weight"))
        if up is None:
            raise ValueError(f"the LoRA {where} has only the down half of {m['module']!r}")
        up = up.float().flatten(1)
        rank = down.shape[0]
        alpha = float(state.get(f"lora_te_{m['module']}.alpha", torch.tensor(float(rank))))
        if up.shape != (module.weight.shape[0], rank) or down.shape[1] != module.weight.shape[1]:
            raise ValueError(f"the LoRA {where} does not fit text-encoder module {m['module']!r}: LoRA "
                             f"{tuple(down.shape)} / {tuple(up.shape)}, module weight {tuple(module.weight.shape)}")
        with torch.no_grad():
            module.weight += (scale * alpha / rank * (up @ down)).to(module.weight.dtype)
        done += 1
    return done


def check_lora_fits(unet: UNet2DConditionModel, state: dict[str, torch.Tensor], where: str) -> None:
    """Raise ValueError unless every LoRA pair of ``state`` targets a Linear / 1x1-conv module of ``unet`` with
    matching input and output widths."""
    modules = dict(unet.named_modules())
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        m = _KEY.match(key)
        part = "down" if (m["d"] == "down" or m["p"] == "A") else "up"
        pairs.setdefault(m["module"], {})[part] = value
    for name, pair in pairs.items():
        module = modules.get(name)
        if module is None:
            raise ValueError(f"the LoRA {where} targets {name!r}, which this image model does not have (it was "
                             f"trained for another architecture)")
        if set(pair) != {"down", "up"}:
            raise ValueError(f"the LoRA {where} has only the {next(iter(pair))} half of {name!r}")
        down, up = pair["down"], pair["up"]
        shape = getattr(module, "weight", None)
        shape = None if shape is None else tuple(shape.shape)
        if shape is None or len(shape) < 2 or down.shape[1] != shape[1] or up.shape[0] != shape[0] \
                or up.shape[1] != down.shape[0]:
            raise ValueError(f"the LoRA {where} does not fit {name!r}: LoRA {tuple(down.shape)} / {tuple(up.shape)}, "
                             f"module weight {shape}")


def apply_lora(unet: UNet2DConditionModel, path: str | os.PathLike, scale: float = 1.0,
               inplace: bool = False, state: dict[str, torch.Tensor] | None = None) -> UNet2DConditionModel:
    """``unet`` with the LoRA file at ``path`` fused in at ``scale`` (``W + scale * B A``): a copy, or ``unet`` itself
    when ``inplace``. ``state``: the file's tensors (:func:`read_lora`) where the caller has read them already.
    Raises ValueError (nothing changed) when the file is not a LoRA or does not fit."""
    from vidiff.checks import finite

    finite(scale, "a LoRA scale")  # True read as 1 and numpy floats were refused
    state = read_lora(path) if state is None else state
    alphas = None
    if is_kohya(state):
        state, alphas, peft = _kohya_unet(state, unet.config)
        if not state:
            raise ValueError(f"the LoRA {str(path)!r} changes the text encoder only; nothing to fuse into the U-Net")
        check_lora_fits(unet, peft, repr(str(path)))
    else:
        check_lora_fits(unet, state, repr(str(path)))
    out = unet if inplace else copy.deepcopy(unet)
    dtype = next(out.parameters()).dtype
    keyed = {k if k.startswith("unet.") else f"unet.{k}": v.to(dtype) for k, v in state.items()}
    out.load_lora_adapter(keyed, prefix="unet", adapter_name=_ADAPTER, network_alphas=alphas)
    out.fuse_lora(lora_scale=float(scale))
    out.unload_lora()
    return out


def is_lora_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a LoRA (a ``.safetensors`` file, or a folder with ``pytorch_lora_weights.safetensors``
    and no ``unet/``) rather than a pipeline folder."""
    p = Path(path)
    return (p.is_file() and p.suffix == ".safetensors") or (p.is_dir() and (p / LORA_FILE).is_file()
                                                             and not (p / "unet").is_dir())


__all__ = ["LORA_FILE", "DEFAULT_TARGETS", "add_lora", "apply_lora", "check_lora_fits", "fuse_kohya_text_lora", "fused",
           "has_lora", "is_kohya", "is_lora_file", "lora_state_dict", "read_lora", "save_lora"]
