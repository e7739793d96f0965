"""Video models inflated from a pretrained text-to-image U-Net (diffusers ``UNet2DConditionModel``).

Two designs, one class (:class:`InflatedUNet`, ``arch`` in its config):

- ``"stunet"`` (Lumiere 3.1): the image U-Net's blocks run on every frame; after each of its ResNet(+attention)
  layers a convolution block: over time alone (``conv_inflation="temporal"``, ``TemporalConvBlock``:
  ``x + conv_t(SiLU(norm(x)))``) or the paper's fig. 4b (``"space-time"``, ``SpaceTimeConvBlock``: a new 3 x 3
  conv, then the conv over time, then a zero-initialised projection); at each
  spatial down/up-sampling the clip is also halved/doubled in time (``TemporalDownsample`` /
  ``TemporalUpsample``, nearest-neighbour initialised); at the coarsest level temporal attention and a
  space-time transformer that reads the text; and the pooled text added to the timestep embedding through a
  zero-initialised projection, so that every layer can learn what the caption says about motion.
- ``"motion-module"`` (AnimateDiff): a temporal transformer with a frame-position encoding (``TemporalAttention``
  with ``frame_position``) after each ResNet(+attention) layer of every block and after the middle block, no
  temporal resampling, nothing that reads the text (``text_to_time=True`` adds the STUNet's pooled-text
  projection: for an image model that has learnt to ignore the motion words of its captions, the only way for
  the module to hear them). Its weights are a *motion module*: saved on their own (:func:`save_motion_module`)
  and loaded into any image model of the same architecture.

Every new layer starts as the identity (zero-initialised outputs; resamplers nearest-neighbour), so at
initialisation the video model is the image model: frame by frame for ``motion-module``, and for ``stunet`` on any
clip whose frames are equal (tests/test_inflation.py checks both). A clip of one frame skips every temporal layer
and is exactly the image model, so image batches keep training the spatial weights when they are unfrozen.

Why by hand: diffusers' ``UNetMotionModel.from_unet2d`` builds AnimateDiff's layout, but it cannot resample in
time (Lumiere's STUNet), does not pass a text attention mask to the cross-attention (vidiff's text encoders give
padded captions with a mask), and its motion modules are not zero-initialised. Here the image U-Net's own
modules (``resnets``, ``attentions``, ``downsamplers``, ``upsamplers``) are called in diffusers' order with the
temporal layers between them, so any SD-1.x-layout U-Net is used as it is, weights untouched. For AnimateDiff's own
adapters vidiff does use diffusers' model (``--arch animatediff``, :mod:`vidiff.models.animatediff`).
"""

from __future__ import annotations

import functools

import torch
from diffusers import UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from vidiff.models.blocks import (
    SpaceTimeConvBlock, SpaceTimeTransformer, TemporalAttention, TemporalConvBlock, TemporalDownsample,
    TemporalUpsample, pool_text, zero_module,
)
from vidiff.models.image import check_image_unet_config, use_device_attention

ARCHS = ("stunet", "motion-module")
# the STUNet's conv block after each image layer: "temporal" (TemporalConvBlock, a 3-tap conv over time) or
# "space-time" (SpaceTimeConvBlock: Lumiere fig. 4b, a new 3 x 3 conv, then the conv over time)
CONV_INFLATIONS = ("temporal", "space-time")
# settings added after motion-module files were first written, at the value those files were made with
ADDED_SETTINGS = {"conv_inflation": "temporal"}
IMAGE_PREFIX = "image_unet."


def image_config_of(unet: UNet2DConditionModel) -> dict:
    """The rebuildable config of a UNet2DConditionModel (its init arguments, lists as lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in unet.config.items() if not k.startswith("_")}


def _to_tokens(x: torch.Tensor, frames: int) -> torch.Tensor:
    """(b t, c, h, w) -> (b, t, h, w, c): the layout of vidiff's temporal blocks."""
    bt, c, h, w = x.shape
    return x.reshape(bt // frames, frames, c, h, w).permute(0, 1, 3, 4, 2)


def _from_tokens(x: torch.Tensor) -> torch.Tensor:
    b, t, h, w, c = x.shape
    return x.permute(0, 1, 4, 2, 3).reshape(b * t, c, h, w)


class InflatedUNet(ModelMixin, ConfigMixin):
    """A text-to-image ``UNet2DConditionModel`` (``self.image_unet``) with temporal layers; see the module docstring.

    Contract: ``model(x, t, text, text_mask=None, cond=None)``, ``x (b, c, t, h, w)`` -> ``(b, c_out, t, h, w)``.
    """

    config_name = "config.json"
    _supports_gradient_checkpointing = True  # per layer (ResNet + attention + temporal layer)

    @register_to_config
    def __init__(self, image_config: dict, arch: str = "stunet", heads: int = 8,
                 mid_temporal_attention_layers: int = 1, mid_spacetime_layers: int = 1,
                 text_to_time: bool | None = None, conv_inflation: str = "temporal"):
        super().__init__()
        self.gradient_checkpointing = False  # diffusers' enable_gradient_checkpointing() switches it on
        if arch not in ARCHS:
            raise ValueError(f"unknown inflation arch {arch!r}; allowed: {', '.join(ARCHS)}")
        check_image_unet_config(image_config)
        for name, v, low in (("heads", heads, 1), ("mid_temporal_attention_layers", mid_temporal_attention_layers, 0),
                             ("mid_spacetime_layers", mid_spacetime_layers, 0)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"model.{name} must be an integer >= {low}, got {v!r}")
        if text_to_time not in (None, True, False):
            raise ValueError(f"model.text_to_time must be true, false or null (the arch's own), got {text_to_time!r}")
        if conv_inflation not in CONV_INFLATIONS:
            raise ValueError(f"model.conv_inflation must be one of {', '.join(CONV_INFLATIONS)}, got {conv_inflation!r}")
        if arch != "stunet" and conv_inflation != "temporal":
            raise ValueError(f"model.conv_inflation {conv_inflation!r} is the stunet arch's conv block; a {arch} has "
                             f"temporal attention only")
        self.image_unet = use_device_attention(
            UNet2DConditionModel(**{k: v for k, v in image_config.items() if not k.startswith("_")}))
        u = self.image_unet
        widths = list(u.config.block_out_channels)
        stunet = arch == "stunet"
        attended = widths[-1:] if stunet else widths  # where temporal attention runs
        if any(ch % heads for ch in attended):
            raise ValueError(f"model.heads ({heads}) must divide the widths its temporal attention runs at "
                             f"({', '.join(map(str, sorted(set(attended))))})")
        if stunet and not (len(widths) >= 2):
            raise ValueError("a STUNet inflation needs an image U-Net with at least one spatial downsampling")

        def layer(ch: int) -> nn.Module:
            if not stunet:
                return TemporalAttention(ch, heads, frame_position=True)
            return SpaceTimeConvBlock(ch) if conv_inflation == "space-time" else TemporalConvBlock(ch)

        self.down_temporal = nn.ModuleList(nn.ModuleList(layer(r.out_channels) for r in blk.resnets)
                                           for blk in u.down_blocks)
        self.down_resample = nn.ModuleList(
            TemporalDownsample(blk.resnets[-1].out_channels) if stunet and blk.downsamplers else nn.Identity()
            for blk in u.down_blocks)
        mid = widths[-1]
        text_dim = int(u.config.cross_attention_dim)
        if stunet:
            self.mid_temporal = nn.ModuleList(
                [TemporalAttention(mid, heads, frame_position=True) for _ in range(mid_temporal_attention_layers)]
                + [SpaceTimeTransformer(mid, text_dim, heads) for _ in range(mid_spacetime_layers)])
        else:
            self.mid_temporal = nn.ModuleList([TemporalAttention(mid, heads, frame_position=True)])
        self.up_temporal = nn.ModuleList(nn.ModuleList(layer(r.out_channels) for r in blk.resnets)
                                         for blk in u.up_blocks)
        self.up_resample = nn.ModuleList(
            TemporalUpsample(blk.resnets[-1].out_channels) if stunet and blk.upsamplers else nn.Identity()
            for blk in u.up_blocks)
        # pooled text -> timestep embedding, zero-initialised: the caption's motion words reach every layer
        emb_dim = u.time_embedding.linear_2.out_features
        # (None: the arch's own: yes for the STUNet; no for the motion module, which reads no text in AnimateDiff)
        text_to_time = stunet if text_to_time is None else text_to_time
        self.text_time = zero_module(nn.Linear(text_dim, emb_dim)) if text_to_time else None

    # ------------------------------------------------------------------ what the pipelines read
    @property
    def text_dim(self) -> int:
        return int(self.image_unet.config.cross_attention_dim)

    @property
    def cond_channels(self) -> int:
        return 0

    @property
    def sample_channels(self) -> int:
        """Channels of the video it denoises (pixels or latents)."""
        return int(self.image_unet.config.out_channels)

    @property
    def temporal_compression(self) -> int:
        return 2 ** sum(isinstance(m, TemporalDownsample) for m in self.down_resample)

    @property
    def spatial_multiple(self) -> int:
        return 2 ** (len(self.image_unet.config.block_out_channels) - 1)

    def check_input_size(self, num_frames: int, height: int, width: int) -> None:
        from vidiff.models.unet import check_sizes

        check_sizes(self.spatial_multiple, self.temporal_compression, num_frames, height, width)

    # ------------------------------------------------------------------ what is new, what is the image model
    def temporal_parameters(self) -> list:
        """Every parameter that is not the image model's: what temporal-only training trains."""
        return [p for n, p in self.named_parameters() if not n.startswith(IMAGE_PREFIX)]

    def freeze_spatial(self) -> None:
        """Freeze the image model; train only the new (temporal) layers (Lumiere 3.1, AnimateDiff)."""
        for n, p in self.named_parameters():
            p.requires_grad_(not n.startswith(IMAGE_PREFIX))

    def freeze_temporal(self) -> None:
        for n, p in self.named_parameters():
            p.requires_grad_(n.startswith(IMAGE_PREFIX))

    def motion_state_dict(self) -> dict[str, torch.Tensor]:
        """The new layers' weights (keys as in this model): the motion module."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(IMAGE_PREFIX)}

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor,
                text_mask: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            raise ValueError("this model takes no conditioning input")
        u = self.image_unet
        b, c, frames, h, w = x.shape
        video = frames > 1  # a single frame is exactly the image model: no temporal layer runs
        dtype = u.conv_in.weight.dtype
        sample = x.permute(0, 2, 1, 3, 4).reshape(b * frames, c, h, w).to(dtype)
        timestep = torch.as_tensor(timestep, device=x.device).reshape(-1).expand(b)
        emb = u.time_embedding(u.time_proj(timestep).to(dtype))  # (b, d)
        if self.text_time is not None and video:
            mask = torch.ones(text.shape[:2], dtype=torch.bool, device=text.device) if text_mask is None else text_mask
            emb = emb + self.text_time(pool_text(text, mask).to(dtype))
        text = text.to(dtype)
        # diffusers' encoder_attention_mask convention: an additive bias (b, 1, l)
        bias = None if text_mask is None else ((1 - text_mask.to(dtype)) * -10000.0)[:, None]

        def per_frame(n: int):  # the per-clip inputs repeated for n frames
            return (emb.repeat_interleave(n, 0), text.repeat_interleave(n, 0),
                    None if bias is None else bias.repeat_interleave(n, 0))

        def temporal(module: nn.Module, hs: torch.Tensor, n: int) -> torch.Tensor:
            if not video:
                return hs
            tokens = _to_tokens(hs, n)
            out = module(tokens, text, text_mask) if isinstance(module, SpaceTimeTransformer) else module(tokens)
            return _from_tokens(out)

        def attend(attn, hs, ctx, ctx_bias):
            return attn(hs, encoder_hidden_states=ctx, encoder_attention_mask=ctx_bias, return_dict=False)[0]

        def layer(resnet, attn, tl, hs, e, ctx, ctx_bias, n):
            hs = resnet(hs, e)
            if attn is not None:
                hs = attend(attn, hs, ctx, ctx_bias)
            return temporal(tl, hs, n)

        if self.gradient_checkpointing and torch.is_grad_enabled():  # recompute each layer in the backward
            run = functools.partial(self._gradient_checkpointing_func, layer)
        else:
            run = layer
        n = frames
        hs = u.conv_in(sample)
        skips = [hs]
        for blk, layers, resample in zip(u.down_blocks, self.down_temporal, self.down_resample):
            e, ctx, ctx_bias = per_frame(n)
            attns = getattr(blk, "attentions", None)
            for i, (resnet, tl) in enumerate(zip(blk.resnets, layers)):
                hs = run(resnet, None if attns is None else attns[i], tl, hs, e, ctx, ctx_bias, n)
                skips.append(hs)
            if blk.downsamplers is not None:
                for ds in blk.downsamplers:
                    hs = ds(hs)
                if video and isinstance(resample, TemporalDownsample):
                    hs = _from_tokens(resample(_to_tokens(hs, n)))
                    n //= 2
                skips.append(hs)
        e, ctx, ctx_bias = per_frame(n)
        mid = u.mid_block
        hs = mid.resnets[0](hs, e)
        for attn, resnet in zip(mid.attentions, mid.resnets[1:]):
            hs = resnet(attend(attn, hs, ctx, ctx_bias), e)
        for tl in self.mid_temporal:
            hs = temporal(tl, hs, n)
        for blk, layers, resample in zip(u.up_blocks, self.up_temporal, self.up_resample):
            e, ctx, ctx_bias = per_frame(n)
            attns = getattr(blk, "attentions", None)
            for i, (resnet, tl) in enumerate(zip(blk.resnets, layers)):
                hs = run(resnet, None if attns is None else attns[i], tl, torch.cat([hs, skips.pop()], 1), e, ctx,
                         ctx_bias, n)
            if blk.upsamplers is not None:
                if video and isinstance(resample, TemporalUpsample):
                    hs = _from_tokens(resample(_to_tokens(hs, n)))
                    n *= 2
                for us in blk.upsamplers:
                    hs = us(hs)
        hs = u.conv_out(u.conv_act(u.conv_norm_out(hs)) if u.conv_norm_out is not None else hs)
        return hs.reshape(b, frames, -1, h, w).permute(0, 2, 1, 3, 4)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_image_unet(cls, unet: UNet2DConditionModel, arch: str = "stunet", **kwargs) -> "InflatedUNet":
        """Inflate ``unet``: its weights copied unchanged under ``image_unet.``, every new layer at its identity init."""
        model = cls(image_config_of(unet), arch=arch, **kwargs)
        model.image_unet.load_state_dict(unet.state_dict(), strict=True)
        return torch.nn.Module.to(model, next(unet.parameters()).dtype)

    def image_model(self) -> UNet2DConditionModel:
        """The image U-Net alone (shares weights with this model)."""
        return self.image_unet


# ---------------------------------------------------------------- other image weights (personalization, styles)
def same_image_layout(model: InflatedUNet, image: UNet2DConditionModel, where: str = "the image model") -> None:
    """Raise ValueError unless ``image`` has the layout of ``model``'s image U-Net (so that it can replace it)."""
    mine, theirs = model.config.image_config, image_config_of(image)
    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k) and not k.startswith("_"))
    if diff:
        raise ValueError(f"{where} has another layout than this model's image U-Net ({', '.join(diff[:4])} differ); "
                         f"a motion module plugs only into image models of the layout it was trained on")


def with_image_weights(model: InflatedUNet, image: UNet2DConditionModel, alpha: float = 1.0) -> InflatedUNet:
    """A copy of ``model`` whose image weights are ``W_own + alpha * (W_image - W_own)`` (``alpha`` 1: the other
    image model outright, AnimateDiff's personalization; below 1: Lumiere 4.1's style interpolation applied to the
    image model; above 1: the other model's difference extrapolated, a stronger style); the temporal layers are kept
    as they are. Raises ValueError on another layout."""
    import copy

    from vidiff.checks import finite

    alpha = finite(alpha, "alpha")
    same_image_layout(model, image)
    out = copy.deepcopy(model)
    theirs = image.state_dict()
    mixed = {}
    for key, own in out.image_unet.state_dict().items():
        other = theirs[key].to(own.device)
        assert other.shape == own.shape, key
        mixed[key] = torch.lerp(own.float(), other.float(), alpha).to(own.dtype) if own.is_floating_point() else own
    out.image_unet.load_state_dict(mixed)
    return out


# ---------------------------------------------------------------- motion modules
MOTION_FORMAT = "vidiff-motion-module/1"


def motion_signature(model: InflatedUNet) -> dict[str, str]:
    """What an image model must match for a motion module to plug in: the inflation's config and the image
    U-Net's layout (widths, blocks, layers, text width), as strings (safetensors metadata)."""
    import json

    image = model.config.image_config
    layout = {k: image.get(k) for k in ("block_out_channels", "down_block_types", "up_block_types",
                                        "layers_per_block", "cross_attention_dim")}
    inflation = {k: v for k, v in model.config.items() if not k.startswith("_") and k != "image_config"}
    inflation["text_to_time"] = model.text_time is not None  # resolved: None (the arch's own) and its value agree
    return {"format": MOTION_FORMAT, "inflation": json.dumps(inflation, sort_keys=True),
            "image_layout": json.dumps(layout, sort_keys=True)}


def save_motion_module(model: InflatedUNet, path, half: bool = True, overwrite: bool = False) -> None:
    """Write the new layers of ``model`` (a small safetensors file, fp16 by default) with the layout they fit."""
    from safetensors.torch import save_file

    from vidiff.io.atomic import atomic_path

    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
             for k, v in model.motion_state_dict().items()}
    with atomic_path(path, overwrite=overwrite) as tmp:
        save_file(state, str(tmp), metadata=motion_signature(model))


def load_motion_module(model: InflatedUNet, path) -> InflatedUNet:
    """Load a motion module into ``model`` (in place). Raises ValueError when the file is not a motion module
    or was trained on an image model of another layout."""
    import json

    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # not a safetensors file
        raise ValueError(f"{str(path)!r} is not a motion module (not a safetensors file: {str(e)[:80]})") from None
    if meta.get("format") != MOTION_FORMAT:
        raise ValueError(f"{str(path)!r} is not a vidiff motion module (metadata format {meta.get('format')!r})")
    want = motion_signature(model)
    try:  # a file written before a setting existed was made at that setting's original value
        meta = {**meta, "inflation": json.dumps({**ADDED_SETTINGS, **json.loads(meta.get("inflation", ""))},
                                                sort_keys=True)}
    except (ValueError, TypeError):
        pass  # unreadable: reported as another inflation below
    for key, what in (("image_layout", "image model layout"), ("inflation", "inflation")):
        if meta.get(key) != want[key]:
            raise ValueError(f"the motion module {str(path)!r} was trained for another {what}: "
                             f"{meta.get(key)} (this model: {want[key]})")
    expected = model.motion_state_dict()
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in state):
        raise ValueError(f"the motion module {str(path)!r} does not fit this model (keys or shapes differ)")
    dtype = next(model.parameters()).dtype
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=False)
    return model


__all__ = ["InflatedUNet", "ARCHS", "save_motion_module", "load_motion_module", "image_config_of",
           "with_image_weights"]
