"""Text-to-image U-Nets: diffusers' ``UNet2DConditionModel`` under vidiff's denoiser contract.

:class:`ImageUNet` *is* a ``UNet2DConditionModel`` (same modules, same weights, and it saves with that class
name, so ``UNet2DConditionModel.from_pretrained(folder, subfolder="unet")`` loads what vidiff writes). It only
adds the contract every vidiff model follows: ``model(x, t, text, text_mask, cond=None)`` on videos
``(b, c, t, h, w)``, here applied frame by frame. This is the image model that :mod:`vidiff.models.inflated`
turns into a video model (Lumiere 3.1, AnimateDiff).

:func:`check_image_unet_config` names what the inflation supports: the standard SD-1.x block types, text
conditioning by cross-attention only (no SDXL ``addition_embed_type``, no class embeddings).
"""

from __future__ import annotations

import json

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from vidiff.models import blocks

DOWN_BLOCKS = ("DownBlock2D", "CrossAttnDownBlock2D")
UP_BLOCKS = ("UpBlock2D", "CrossAttnUpBlock2D")
MID_BLOCKS = ("UNetMidBlock2DCrossAttn",)

# UNet2DConditionModel configs for Shapes (pixels, 32 x 32): see configs/t2i-shapes.yaml
IMAGE_PRESETS: dict[str, dict] = {
    # cross-attention at the 8 x 8 level and the middle only: 1.1 s per 64 images on 2 cores (bf16), where
    # 64 / 128 / 192 channels with cross-attention at 16 x 16 too took 1.9 s
    "t2i-shapes": dict(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(32, 96, 192),
                       down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
                       up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
                       layers_per_block=1, attention_head_dim=8, norm_num_groups=32),
    # tests: the smallest model of the same layout
    "t2i-tiny": dict(sample_size=16, in_channels=3, out_channels=3, block_out_channels=(32, 32),
                     down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                     up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                     layers_per_block=1, attention_head_dim=8, norm_num_groups=8),
}


def check_image_unet_config(cfg: dict, where: str = "the image model") -> None:
    """Raise ValueError unless ``cfg`` (a UNet2DConditionModel config dict) is a layout vidiff can run and
    inflate: SD-1.x-style blocks, text by cross-attention only."""
    name = cfg.get("_class_name", "UNet2DConditionModel")
    if name not in ("UNet2DConditionModel", "ImageUNet"):
        raise ValueError(f"{where} is a {name}; supported: diffusers UNet2DConditionModel (SD-1.x layout)")
    unsupported = {k: cfg.get(k) for k in ("addition_embed_type", "class_embed_type", "encoder_hid_dim_type",
                                           "time_cond_proj_dim", "num_class_embeds") if cfg.get(k)}
    if unsupported:
        raise ValueError(f"{where} uses {unsupported} (added conditioning, e.g. SDXL); supported: text by "
                         f"cross-attention only (SD-1.x / 2.x layout)")
    for key, allowed in (("down_block_types", DOWN_BLOCKS), ("up_block_types", UP_BLOCKS)):
        bad = [b for b in cfg.get(key, ()) if b not in allowed]
        if bad:
            raise ValueError(f"{where} has {key} {bad}; supported: {', '.join(allowed)}")
    mid = cfg.get("mid_block_type", "UNetMidBlock2DCrossAttn")
    if mid not in MID_BLOCKS:
        raise ValueError(f"{where} has mid_block_type {mid!r}; supported: {', '.join(MID_BLOCKS)}")
    layers = cfg.get("transformer_layers_per_block", 1)
    if not (layers == 1 or (isinstance(layers, (list, tuple)) and all(x == 1 for x in layers))):
        raise ValueError(f"{where} has transformer_layers_per_block {layers}; supported: 1")


class DeviceAttnProcessor:
    """diffusers' attention under the device policy of vidiff's own (:func:`vidiff.models.blocks.attention`):
    torch's SDPA (diffusers' ``AttnProcessor2_0``) on CUDA or where ``blocks.USE_SDPA`` says so, plain
    matmul-softmax (``AttnProcessor``) on CPU. Why by hand: diffusers picks SDPA on every device, and torch's CPU
    backward of it is slow for these small heads. One bf16 training step of t2i-shapes inflated (16 clips x 16
    frames, 2 cores, temporal layers trained): motion-module 6.36 -> 4.55 s, STUNet 1.49 -> 1.27 s
    (docs/inflation.md); sampling is as fast either way, and both give the same result (tests/test_inflation.py)."""

    def __init__(self):
        self.sdpa, self.matmul = AttnProcessor2_0(), AttnProcessor()

    def __call__(self, attn, hidden_states, *args, **kwargs):
        use_sdpa = hidden_states.is_cuda if blocks.USE_SDPA is None else blocks.USE_SDPA
        return (self.sdpa if use_sdpa else self.matmul)(attn, hidden_states, *args, **kwargs)


def use_device_attention(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """Give every attention layer of ``unet`` the :class:`DeviceAttnProcessor` (in place)."""
    unet.set_attn_processor(DeviceAttnProcessor())
    return unet


class DiffusersContract:
    """What vidiff's pipelines read of a model that is a diffusers U-Net class run under vidiff's contract (text-to-
    image frame by frame, :class:`ImageUNet`; AnimateDiff's, :class:`~vidiff.models.animatediff.MotionUNet`): the
    sizes, no conditioning input, the device attention policy, and the folder saved under diffusers' own class name
    (``diffusers_class``), so that plain diffusers, and any tool that reads a diffusers folder, loads the weights."""

    diffusers_class = ""
    config_name = "config.json"
    temporal_compression = 1

    @property
    def text_dim(self) -> int:
        return int(self.config.cross_attention_dim)

    @property
    def cond_channels(self) -> int:
        return 0

    @property
    def sample_channels(self) -> int:
        """Channels of the video it denoises (pixels or latents)."""
        return int(self.config.out_channels)

    @property
    def spatial_multiple(self) -> int:
        return 2 ** (len(self.config.block_out_channels) - 1)

    def check_input_size(self, num_frames: int, height: int, width: int) -> None:
        from vidiff.models.unet import check_sizes

        check_sizes(self.spatial_multiple, 1, num_frames, height, width)

    @classmethod
    def from_config(cls, *args, **kwargs):
        """diffusers' ``from_config`` (which ``from_pretrained`` uses too), with :class:`DeviceAttnProcessor`."""
        out = super().from_config(*args, **kwargs)
        use_device_attention(out[0] if isinstance(out, tuple) else out)
        return out

    def to_json_string(self) -> str:
        cfg = json.loads(super().to_json_string())
        cfg["_class_name"] = self.diffusers_class
        return json.dumps(cfg, indent=2, sort_keys=True) + "\n"


class ImageUNet(DiffusersContract, UNet2DConditionModel):
    """A ``UNet2DConditionModel`` that follows vidiff's denoiser contract, frame by frame.

    ``forward(x, t, text, text_mask=None, cond=None)`` with ``x (b, c, t, h, w)`` returns ``(b, c_out, t, h, w)``;
    ``text (b, l, d)`` is cross-attended with ``text_mask`` as diffusers' ``encoder_attention_mask``.
    """

    diffusers_class = "UNet2DConditionModel"

    def temporal_parameters(self) -> list:
        return []

    # ------------------------------------------------------------------ the contract
    def forward(self, x: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor,
                text_mask: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            raise ValueError("a text-to-image model takes no conditioning input")
        b, c, t, h, w = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        dtype = self.conv_in.weight.dtype
        timestep = torch.as_tensor(timestep, device=x.device).reshape(-1).expand(b).repeat_interleave(t)
        text = text.to(dtype).repeat_interleave(t, 0)
        mask = None if text_mask is None else text_mask.repeat_interleave(t, 0)
        out = super().forward(frames.to(dtype), timestep, encoder_hidden_states=text, encoder_attention_mask=mask,
                              return_dict=False)[0]  # (b t, c_out, h, w)
        return out.reshape(b, t, -1, h, w).permute(0, 2, 1, 3, 4)


def build_image_unet(preset: str, text_dim: int, **overrides) -> ImageUNet:
    if preset not in IMAGE_PRESETS:
        raise ValueError(f"unknown image model preset {preset!r}; allowed: {', '.join(IMAGE_PRESETS)}")
    cfg = {**IMAGE_PRESETS[preset], "cross_attention_dim": text_dim, **overrides}
    check_image_unet_config(cfg)
    return ImageUNet.from_config(cfg)  # (from_config gives it the DeviceAttnProcessor)


__all__ = ["DeviceAttnProcessor", "use_device_attention", "ImageUNet", "IMAGE_PRESETS", "build_image_unet",
           "check_image_unet_config"]
