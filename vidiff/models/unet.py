"""Video U-Nets: the Space-Time U-Net of Lumiere (3.1) and the fixed-temporal baseline (VDM / Make-A-Video).

Both are one class, :class:`VideoUNet`, built from the blocks of :mod:`vidiff.models.blocks` and
configured by its diffusers config (``register_to_config``: one form, saved as ``config.json``); presets by
name in :data:`PRESETS`.

- STUNet (``temporal_downsample=True``): after every spatial downsampling the clip is also halved in
  time (and doubled back on the way up), factorized space-time ResNet blocks at every level but the
  coarsest, temporal attention only at the coarsest level, where the clip is a compact space-time
  representation. Most compute is spent there. ``temporal_downsample_levels`` halves time after the given
  levels only (e.g. ``[0]``: 16 -> 8 -> 8 frames), for clips too short to keep fast motion at 4x compression.
- Both can stack joint space-time transformers (:class:`SpaceTimeTransformer`: self-attention over all
  t*h*w tokens with 3D RoPE, and text cross-attention) at the coarsest level (``mid_spacetime_layers``) or
  after the blocks of other levels (``spacetime_attention_levels``). In a STUNet the coarsest clip is small
  (4 x 4 x 4 tokens for 16 x 32 x 32), so this costs little; it is where layout and motion are decided.
- Baseline (``temporal_downsample=False``): the same blocks at a fixed frame count, with temporal
  attention at every level that has attention (VDM's factorized 3D U-Net).

Conditioning (``cond_channels``) enters with the noisy video through the input convolution (Lumiere 4.2's
``<J, C, M>``) and, with ``cond_adapter_channels``, also at the input of every level of the down path
(:class:`~vidiff.models.blocks.ConditionAdapter`, T2I-Adapter-style, zero-initialised).

``self_condition`` adds an input for the model's own previous estimate of the clean clip (self-conditioning,
:mod:`vidiff.diffusion.self_condition`), ``coordinate_channels`` two inputs holding each pixel's position (CoordConv).

Contract: ``model(x, t, text, text_mask, cond=None) -> prediction`` (and ``self_cond=`` for a self-conditioned
model), all videos ``(b, c, t, h, w)``.
An image batch is ``t == 1``; temporal layers are then skipped (joint image-video training).
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from vidiff.models.blocks import (
    ConditionAdapter, FactorizedConv, ResBlock, SpaceTimeTransformer, SpatialConv, SpatialDownsample,
    SpatialTransformer, SpatialUpsample, TemporalAttention, TemporalConv, TemporalConvBlock, TemporalDownsample,
    TemporalUpsample, TimestepEmbedding, pool_text, zero_module,
)


def unet_kwargs(model: "VideoUNet") -> dict:
    """The arguments that rebuild ``model`` (its diffusers config, lists as tuples): the one form of a U-Net's
    configuration, for surgery and comparisons."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in model.config.items() if not k.startswith("_")}


def check_clip_size(cfg: dict, num_frames: int, height: int, width: int) -> None:
    """Raise ValueError when a U-Net of ``cfg`` (a config or its JSON dict) cannot take a clip of this size:
    sides must be multiples of the patch size times the spatial reductions; a clip must be a multiple of the
    temporal reduction and keep >= 2 frames at the coarsest level (1 frame there reads as an image)."""
    cfg = with_defaults(cfg)
    levels = len(cfg["channels"])
    halved = temporal_levels(levels, cfg["temporal_downsample"], cfg["temporal_downsample_levels"])
    check_sizes(cfg["patch_size"] * 2 ** (levels - 1), 2 ** len(halved), num_frames, height, width)


def with_defaults(cfg: dict) -> dict:
    """``cfg`` (a config, its JSON dict, or a preset's overrides) over VideoUNet's own defaults: every argument,
    so that a config.json that predates an argument, or a recipe's partial ``model`` section, reads as the
    constructor would (the defaults live only in its signature)."""
    defaults = {k: v.default for k, v in inspect.signature(VideoUNet.__init__).parameters.items() if k != "self"}
    return {**defaults, **cfg}


def check_unet_args(cfg: dict) -> None:
    """Raise ValueError naming the argument when a VideoUNet of ``cfg`` (its arguments, a config or a preset's
    overrides over the defaults) cannot be built or would silently ignore part of it: widths, counts and sizes
    that must be positive, widths that the attention heads must divide, and level lists that must name levels
    the U-Net has (a level it does not have was dropped without a word)."""
    import math

    cfg = with_defaults(cfg)

    def whole(v, low: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= low

    ch = cfg["channels"]
    if not isinstance(ch, (list, tuple)) or not ch or not all(whole(c, 1) for c in ch):
        raise ValueError(f"model.channels must be a non-empty list of positive widths, one per level, got {ch!r}")
    for key, low in (("patch_size", 1), ("layers_per_level", 1), ("heads", 1), ("emb_dim", 1), ("text_dim", 1),
                     ("in_channels", 1), ("out_channels", 1), ("cond_channels", 0), ("cond_adapter_channels", 0),
                     ("mid_temporal_attention_layers", 0), ("mid_spacetime_layers", 0)):
        if not whole(cfg[key], low):
            raise ValueError(f"model.{key} must be a whole number >= {low}, got {cfg[key]!r}")
    for key in ("self_condition", "coordinate_channels"):
        if not isinstance(cfg[key], bool):
            raise ValueError(f"model.{key} must be true or false, got {cfg[key]!r}")
    if any(c % cfg["heads"] for c in ch):
        raise ValueError(f"model.heads ({cfg['heads']}) must divide every width in model.channels ({list(ch)})")
    d = cfg["dropout"]
    if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or not 0 <= d < 1:
        raise ValueError(f"model.dropout must be a probability in [0, 1), got {d!r}")
    for key, top, note in (("cross_attention_levels", len(ch), ""), ("self_attention_levels", len(ch), ""),
                           ("temporal_attention_levels", len(ch) - 1, "; the coarsest has its own, "
                            "model.mid_temporal_attention_layers"),
                           ("spacetime_attention_levels", len(ch) - 1, "; the coarsest has its own, "
                            "model.mid_spacetime_layers")):
        v = cfg[key]
        if not isinstance(v, (list, tuple)) or not all(whole(i, 0) and i < top for i in v) \
                or len(set(v)) != len(v):
            span = f"from 0 to {top - 1}" if top > 0 else "(none: a one-level U-Net)"
            raise ValueError(f"model.{key} must be a list of distinct levels {span} (this U-Net has {len(ch)}"
                             f"{note}), got {v!r}")
    temporal_levels(len(ch), cfg["temporal_downsample"], cfg["temporal_downsample_levels"])


def temporal_levels(levels: int, temporal_downsample: bool, which=None) -> tuple[int, ...]:
    """The levels after which the clip is halved in time (and doubled back on the way up): every level but the
    coarsest in Lumiere's STUNet (``which=None``), the given ones otherwise, none without temporal down-sampling.
    Raises ValueError for a level the U-Net does not have."""
    if not temporal_downsample:
        return ()
    if which is None:
        return tuple(range(levels - 1))
    which = tuple(which)
    if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < levels - 1 for i in which) \
            or len(set(which)) != len(which):
        raise ValueError(f"temporal_downsample_levels must be distinct levels from 0 to {levels - 2} (a level is "
                         f"halved in time after its blocks; the coarsest has none), got {list(which)}")
    return tuple(sorted(which))


def coordinates(b: int, t: int, h: int, w: int) -> torch.Tensor:
    """CoordConv's input (Liu et al. 2018): (b, 2, t, h, w), channel 0 each pixel's row and channel 1 its column, from
    -1 at one edge to 1 at the other. A convolution cannot tell where it is but through the padding; a bounce must turn
    at the walls."""
    ys, xs = torch.linspace(-1, 1, h), torch.linspace(-1, 1, w)
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"))  # (2, h, w)
    return grid[None, :, None].expand(b, 2, t, h, w)


def check_sizes(multiple: int, temporal_compression: int, num_frames: int, height: int, width: int) -> None:
    """The size rule of every vidiff model: sides positive multiples of ``multiple``; one frame (an image), or a
    multiple of the temporal reduction that keeps >= 2 frames at the coarsest level."""
    m, tc = multiple, temporal_compression
    if height % m or width % m or height < m or width < m:
        raise ValueError(f"height and width must be positive multiples of {m}, got {height}x{width}")
    least = 2 * tc if tc > 1 else 1
    if num_frames < 1 or (num_frames != 1 and (num_frames % tc or num_frames < least)):
        raise ValueError(f"num_frames must be 1 (an image) or a multiple of {tc} of at least {least}, "
                         f"got {num_frames}")


PRESETS: dict[str, dict] = {  # overrides of VideoUNet's defaults (the embedded default's model)
    "stunet-shapes": {},
    "baseline-shapes": dict(temporal_downsample=False, temporal_attention_levels=(1,)),
    # experiment (configs/experiments/stunet-spacetime.yaml): + 4 joint space-time transformers at the coarsest level
    "stunet-shapes-spacetime": dict(mid_spacetime_layers=4),
    # spatial super-resolution (Lumiere 3.2): conditioned on the upsampled low-res clip, fixed temporal resolution
    # (it runs on short windows), convolutions + temporal attention only, so that it trains on crops
    "ssr-shapes": dict(cond_channels=3, patch_size=4, channels=(48, 96, 144), cross_attention_levels=(),
                       self_attention_levels=(), temporal_downsample=False, mid_temporal_attention_layers=1),
    "ssr-tiny": dict(cond_channels=3, patch_size=2, channels=(8, 16), heads=2, emb_dim=16, text_dim=8,
                     cross_attention_levels=(), self_attention_levels=(), temporal_downsample=False,
                     mid_temporal_attention_layers=1),
    "stunet-tiny": dict(channels=(8, 16), heads=2, emb_dim=16, text_dim=8,
                        cross_attention_levels=(1,), self_attention_levels=(1,), mid_spacetime_layers=1),
    "baseline-tiny": dict(channels=(8, 16), heads=2, emb_dim=16, text_dim=8,
                          cross_attention_levels=(1,), self_attention_levels=(1,),
                          temporal_downsample=False, mid_spacetime_layers=1),
}


class Level(nn.Module):
    """One resolution level of one path: ResBlocks, each followed by an optional transformer and
    temporal attention."""

    def __init__(self, cin: int, cout: int, n: int, cfg: dict, temporal_conv: bool,
                 cross: bool, self_attn: bool, temporal_attn: bool, spacetime_attn: bool,
                 skip_channels: list[int] | None = None):
        super().__init__()
        self.res = nn.ModuleList()
        self.attn = nn.ModuleList()
        self.tattn = nn.ModuleList()
        self.stattn = nn.ModuleList()
        for i in range(n):
            extra = skip_channels[i] if skip_channels else 0
            self.res.append(ResBlock((cin if i == 0 else cout) + extra, cout, cfg.emb_dim, temporal_conv, cfg.dropout))
            self.attn.append(SpatialTransformer(cout, cfg.text_dim, cfg.heads, self_attn) if cross else nn.Identity())
            self.tattn.append(TemporalAttention(cout, cfg.heads, frame_position=cfg.frame_position_embedding)
                              if temporal_attn else nn.Identity())
            self.stattn.append(SpaceTimeTransformer(cout, cfg.text_dim, cfg.heads) if spacetime_attn else nn.Identity())


class VideoUNet(ModelMixin, ConfigMixin):
    """Space-Time U-Net (Lumiere 3.1) or fixed-temporal video U-Net; see the module docstring."""

    config_name = "config.json"
    _supports_gradient_checkpointing = True  # per layer (ResBlock + its attentions), recomputed in the backward

    @register_to_config
    def __init__(self, in_channels: int = 3, out_channels: int = 3, cond_channels: int = 0, patch_size: int = 2,
                 channels=(64, 128, 192), layers_per_level: int = 1, cross_attention_levels=(1, 2),
                 self_attention_levels=(1, 2), temporal_downsample: bool = True, temporal_attention_levels=(),
                 mid_temporal_attention_layers: int = 2, frame_position_embedding: bool = False,
                 temporal_downsample_levels=None,
                 spacetime_attention_levels=(), mid_spacetime_layers: int = 0,
                 heads: int = 4, text_dim: int = 384, emb_dim: int = 256, dropout: float = 0.0,
                 cond_adapter_channels: int = 0, self_condition: bool = False, coordinate_channels: bool = False):
        super().__init__()
        check_unet_args(unet_kwargs(self))  # the arguments, as register_to_config recorded them
        self.gradient_checkpointing = False  # diffusers' enable_gradient_checkpointing() switches it on
        cfg = self.config  # diffusers' config (register_to_config): the one form, saved as config.json
        p, ch, n, last = patch_size, cfg.channels, layers_per_level, len(cfg.channels) - 1
        halved = temporal_levels(len(ch), temporal_downsample, temporal_downsample_levels)
        self.time_embed = TimestepEmbedding(ch[0], emb_dim)
        self.text_pool = nn.Linear(text_dim, emb_dim)
        # after <x, cond>: self-conditioning's estimate of the clean clip, then each pixel's (y, x) position
        c_in = in_channels * (2 if self_condition else 1) + cond_channels + (2 if coordinate_channels else 0)
        self.conv_in = FactorizedConv(c_in * p * p, ch[0])
        if cond_adapter_channels and not cond_channels:
            raise ValueError("cond_adapter_channels needs conditioning channels (cond_channels > 0)")
        # added to each down level's input: ch[0] at level 0, then the previous level's width
        self.cond_adapter = (ConditionAdapter(cond_channels * p * p, cond_adapter_channels, (ch[0], *ch[:-1]))
                             if cond_adapter_channels else None)

        def opts(i: int) -> dict:
            # Lumiere: factorized space-time convs at every level but the coarsest; temporal attention there
            return dict(temporal_conv=i != last, cross=i in cfg.cross_attention_levels,
                        self_attn=i in cfg.self_attention_levels,
                        temporal_attn=i in cfg.temporal_attention_levels,  # (check_unet_args: never the coarsest)
                        spacetime_attn=i in cfg.spacetime_attention_levels)

        self.down = nn.ModuleList()
        self.down_sample = nn.ModuleList()
        skips = [ch[0]]
        for i in range(len(ch)):
            self.down.append(Level(ch[i - 1] if i else ch[0], ch[i], n, cfg, **opts(i)))
            skips += [ch[i]] * n
            if i != last:
                self.down_sample.append(nn.ModuleList([
                    SpatialDownsample(ch[i], ch[i]),
                    TemporalDownsample(ch[i]) if i in halved else nn.Identity()]))
                skips.append(ch[i])
        # 3. the coarsest level: ResBlock, transformer, stacked temporal and space-time attention, ResBlock
        self.mid_res1 = ResBlock(ch[-1], ch[-1], emb_dim, temporal=False)
        mid_self, mid_cross = last in cfg.self_attention_levels, last in cfg.cross_attention_levels
        self.mid_attn = (SpatialTransformer(ch[-1], text_dim, heads, self_attn=mid_self) if mid_self or mid_cross
                         else nn.Identity())
        self.mid_temporal = nn.ModuleList(TemporalAttention(ch[-1], heads, frame_position=frame_position_embedding)
                                          for _ in range(mid_temporal_attention_layers))
        self.mid_spacetime = nn.ModuleList(SpaceTimeTransformer(ch[-1], text_dim, heads)
                                           for _ in range(mid_spacetime_layers))
        self.mid_res2 = ResBlock(ch[-1], ch[-1], emb_dim, temporal=False)

        self.up = nn.ModuleList()
        self.up_sample = nn.ModuleList()
        for i in reversed(range(len(ch))):
            level_skips = [skips.pop() for _ in range(n + 1)]
            # input: ch[i] (the coarsest level's output, or upsampling's ch[i+1] -> ch[i])
            self.up.append(Level(ch[i], ch[i], n + 1, cfg, skip_channels=level_skips, **opts(i)))
            if i != 0:
                self.up_sample.append(nn.ModuleList([
                    TemporalUpsample(ch[i]) if i - 1 in halved else nn.Identity(),
                    SpatialUpsample(ch[i], ch[i - 1])]))
        self.norm_out = nn.LayerNorm(ch[0])
        self.conv_out = SpatialConv(ch[0], out_channels * p * p)
        zero_module(self.conv_out)

    # ------------------------------------------------------------------ helpers
    @property
    def text_dim(self) -> int:
        return self.config.text_dim

    @property
    def cond_channels(self) -> int:
        return self.config.cond_channels

    @property
    def sample_channels(self) -> int:
        """Channels of the video it denoises (pixels or latents)."""
        return self.config.out_channels

    @property
    def temporal_compression(self) -> int:
        cfg = self.config
        return 2 ** len(temporal_levels(len(cfg.channels), cfg.temporal_downsample, cfg.temporal_downsample_levels))

    @property
    def spatial_multiple(self) -> int:
        return self.config.patch_size * 2 ** (len(self.config.channels) - 1)

    def check_input_size(self, num_frames: int, height: int, width: int) -> None:
        """Raise ValueError when the model cannot take a clip of this size."""
        check_clip_size(self.config, num_frames, height, width)

    def temporal_parameters(self):
        """Parameters of the temporal layers (convs, attention, resamplers): what video fine-tuning trains
        when the spatial (text-to-image) weights are frozen."""
        temporal = (TemporalConv, TemporalConvBlock, TemporalAttention, SpaceTimeTransformer, TemporalDownsample,
                    TemporalUpsample)
        params = {id(p): p for m in self.modules() if isinstance(m, temporal) for p in m.parameters()}
        return list(params.values())

    def freeze_spatial(self) -> None:
        """Freeze the text-to-image weights and train only the temporal ones (Lumiere 3.1, AnimateDiff)."""
        temporal = {id(p) for p in self.temporal_parameters()}
        for p in self.parameters():
            p.requires_grad_(id(p) in temporal)

    def freeze_temporal(self) -> None:
        """Freeze the temporal layers and train only the spatial ones (stylization, Lumiere 4.1: the style
        fine-tune must keep the motion prior so that its weights can be interpolated with the original)."""
        temporal = {id(p) for p in self.temporal_parameters()}
        for p in self.parameters():
            p.requires_grad_(id(p) not in temporal)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor,
                text_mask: torch.Tensor | None = None, cond: torch.Tensor | None = None,
                self_cond: torch.Tensor | None = None) -> torch.Tensor:
        """x: (b, c, t, h, w) noisy video; timestep: (b,) or scalar; text: (b, l, text_dim) token
        embeddings with text_mask (b, l) bool; cond: (b, cond_channels, t, h, w); self_cond: with
        ``self_condition``, the model's previous estimate of the clean clip, shaped like x (None: zeros, "no estimate
        yet"; :mod:`vidiff.diffusion.self_condition`). Returns (b, c_out, t, h, w)."""
        b, _, t, h, w = x.shape
        p = self.config.patch_size
        # 1. inputs: <x, cond[, self_cond][, coordinates]> channels, pixel-unshuffle, channels-last tokens
        if self.config.cond_channels:
            if cond is None:
                raise ValueError(f"this model needs a conditioning input with {self.config.cond_channels} channels")
            x = torch.cat([x, cond.to(x.dtype)], 1)
        if self.config.self_condition:
            x = torch.cat([x, torch.zeros_like(x[:, :self.config.in_channels]) if self_cond is None
                           else self_cond.to(x.dtype)], 1)
        elif self_cond is not None:
            raise ValueError("self_cond given to a model trained without self-conditioning")
        if self.config.coordinate_channels:
            x = torch.cat([x, coordinates(b, t, h, w).to(x.device, x.dtype)], 1)
        c = x.shape[1]
        x = x.reshape(b, c, t, h // p, p, w // p, p)  # (b, c, t, h', p, w', p)
        x = x.permute(0, 2, 3, 5, 1, 4, 6).reshape(b, t, h // p, w // p, c * p * p)  # (b, t, h', w', c p p)
        x = x.to(self.conv_in.spatial.conv.weight.dtype)
        # 2. embeddings: timestep + pooled text
        timestep = torch.as_tensor(timestep, device=x.device).reshape(-1).expand(b)
        if text_mask is None:
            text_mask = torch.ones(text.shape[:2], dtype=torch.bool, device=text.device)
        emb = self.time_embed(timestep).to(x.dtype) + self.text_pool(pool_text(text, text_mask).to(x.dtype))
        text = text.to(x.dtype)
        # 3. down path
        cin, ccond = self.config.in_channels * p * p, self.config.cond_channels * p * p
        features = self.cond_adapter.encoder(x[..., cin:cin + ccond]) if self.cond_adapter else None
        x = self.conv_in(x)
        skips = [x]
        for i, level in enumerate(self.down):
            if features is not None:
                x = self.cond_adapter(features, i, x)
            for layer in zip(level.res, level.attn, level.tattn, level.stattn):
                x = self._layer(layer, x, emb, text, text_mask)
                skips.append(x)
            if i < len(self.down_sample):
                sdown, tdown = self.down_sample[i]
                x = tdown(sdown(x))  # (b, t/2, h/2, w/2, c) for STUNet
                skips.append(x)
        # 4. coarsest level
        x = self.mid_res1(x, emb)
        x = self._attn(self.mid_attn, x, text, text_mask)
        for ta in self.mid_temporal:
            x = ta(x)
        for st in self.mid_spacetime:
            x = st(x, text, text_mask)
        x = self.mid_res2(x, emb)
        # 5. up path
        for j, level in enumerate(self.up):
            for layer in zip(level.res, level.attn, level.tattn, level.stattn):
                x = torch.cat([x, skips.pop()], -1)  # (b, t, h, w, c + c_skip)
                x = self._layer(layer, x, emb, text, text_mask)
            if j < len(self.up_sample):
                tup, sup = self.up_sample[j]
                x = sup(tup(x))  # (b, 2t, 2h, 2w, c)
        # 6. output: back to pixels, (b, c, t, h, w)
        x = self.conv_out(F.silu(self.norm_out(x)))  # (b, t, h', w', c_out p p)
        co = self.config.out_channels
        x = x.reshape(b, t, h // p, w // p, co, p, p).permute(0, 4, 1, 2, 5, 3, 6)  # (b, co, t, h', p, w', p)
        return x.reshape(b, co, t, h, w)

    def _layer(self, layer: tuple, x: torch.Tensor, emb: torch.Tensor, text: torch.Tensor,
               text_mask: torch.Tensor) -> torch.Tensor:
        """One ResBlock and its spatial, temporal and space-time attention; recomputed in the backward instead of
        stored when gradient checkpointing is on (memory for time: about one more forward per step)."""
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return self._gradient_checkpointing_func(self._run_layer, layer, x, emb, text, text_mask)
        return self._run_layer(layer, x, emb, text, text_mask)

    def _run_layer(self, layer: tuple, x: torch.Tensor, emb: torch.Tensor, text: torch.Tensor,
                   text_mask: torch.Tensor) -> torch.Tensor:
        res, attn, tattn, stattn = layer
        x = tattn(self._attn(attn, res(x, emb), text, text_mask))
        return self._attn(stattn, x, text, text_mask)

    @staticmethod
    def _attn(attn: nn.Module, x: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x if isinstance(attn, nn.Identity) else attn(x, text, mask)


def build_unet(preset: str, **overrides) -> VideoUNet:
    """A model from a preset name and overrides of its arguments; unknown presets raise ValueError naming the
    allowed ones."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; allowed: {', '.join(PRESETS)}")
    return VideoUNet(**{**PRESETS[preset], **overrides})


__all__ = ["VideoUNet", "PRESETS", "build_unet", "unet_kwargs"]
