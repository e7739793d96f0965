"""Building blocks of the video U-Nets.

Layout. The public layout of every model is ``(b, c, t, h, w)``. Inside the U-Net, blocks work on a
channels-last token layout ``x: (b, t, h, w, c)``: LayerNorm and Linear act on the last dim, and the
convolutions see channels-last NCHW views (fast on CPU, see shared/notes/cpu-performance.md).
Space is folded into the batch for temporal ops and time for spatial ops, once per block, by the
``fold_*`` helpers below.

Temporal layers start as identity (zero-initialised output projections) and temporal resamplers as
nearest-neighbour (Lumiere, appendix B); every special init is in the block's ``initialize_weights``.
An image batch has ``t == 1``: temporal layers and resamplers are skipped for it, so images and videos
train jointly through the same weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def zero_module(m: nn.Module) -> nn.Module:
    for p in m.parameters():
        nn.init.zeros_(p)
    return m


@torch.no_grad()
def identity_init(conv: nn.Conv2d) -> None:
    """A (k, 1) temporal conv that copies its input: centre tap = identity, other taps and bias = 0."""
    w = torch.zeros_like(conv.weight)  # (cout, cin, k, 1)
    w[:, :, conv.kernel_size[0] // 2, 0] = torch.eye(w.shape[0])
    conv.weight.copy_(w)
    conv.bias.zero_()


# ---------------------------------------------------------------- layout helpers
def fold_time(x: torch.Tensor) -> torch.Tensor:
    """(b, t, h, w, c) -> (b*t, c, h, w) channels-last view, for spatial convolution."""
    b, t, h, w, c = x.shape
    return x.reshape(b * t, h, w, c).permute(0, 3, 1, 2)  # (bt, c, h, w), strides NHWC


def unfold_time(x: torch.Tensor, b: int) -> torch.Tensor:
    """(b*t, c, h, w) -> (b, t, h, w, c)."""
    bt, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, bt // b, h, w, c)


def fold_space(x: torch.Tensor) -> torch.Tensor:
    """(b, t, h, w, c) -> (b, c, t, h*w) channels-last view, for temporal convolution as conv2d."""
    b, t, h, w, c = x.shape
    return x.reshape(b, t, h * w, c).permute(0, 3, 1, 2)  # (b, c, t, hw)


def unfold_space(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(b, c, t, h*w) -> (b, t, h, w, c)."""
    b, c, t, _ = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, t, h, w, c)


USE_SDPA: bool | None = None  # None: on CUDA only; True / False force one path (tests, benchmarks)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
              bias: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-head attention. q: (n, lq, d), k/v: (n, lk, d); bias broadcastable to (n, heads, lq, lk);
    mask: (n, lk) bool, True = attend. On CUDA (or where :data:`USE_SDPA` says so) torch's
    ``scaled_dot_product_attention`` (fused flash / memory-efficient kernels); on CPU plain matmul-softmax, whose
    backward measured faster than SDPA's there. Both give the same result (tests/test_models.py)."""
    n, lq, d = q.shape
    lk = k.shape[1]
    q = q.reshape(n, lq, heads, d // heads).transpose(1, 2)  # (n, heads, lq, dh)
    k = k.reshape(n, lk, heads, d // heads).transpose(1, 2)
    v = v.reshape(n, lk, heads, d // heads).transpose(1, 2)
    if q.is_cuda if USE_SDPA is None else USE_SDPA:
        attn_mask = None
        if bias is not None:
            attn_mask = bias.to(q.dtype)
        if mask is not None:
            keep = mask[:, None, None, :]
            # a finite floor, as below: a caption with every token masked attends uniformly instead of giving NaN
            attn_mask = (torch.zeros((), dtype=q.dtype, device=q.device) if attn_mask is None else attn_mask)
            attn_mask = torch.where(keep, attn_mask, torch.finfo(q.dtype).min)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return out.transpose(1, 2).reshape(n, lq, d)
    logits = (q @ k.transpose(-1, -2)) * (d // heads) ** -0.5  # (n, heads, lq, lk)
    if bias is not None:
        logits = logits + bias
    if mask is not None:
        logits = logits.masked_fill(~mask[:, None, None, :], torch.finfo(logits.dtype).min)
    out = logits.softmax(-1) @ v  # (n, heads, lq, dh)
    return out.transpose(1, 2).reshape(n, lq, d)


def pool_text(text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of each caption's token embeddings over its real tokens: (b, l, d), mask (b, l) -> (b, d)."""
    m = mask[..., None].to(text.dtype)
    return (text * m).sum(1) / m.sum(1).clamp(min=1)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (fractional) timesteps, (n,) -> (n, dim) (DDPM / guided-diffusion)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], -1)


class TimestepEmbedding(nn.Module):
    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        # the sinusoids are computed in fp32 and meet the layers in their dtype (fp16 / bf16 weights: a dtype error)
        return self.mlp(timestep_embedding(t, self.dim).to(self.mlp[0].weight.dtype))


# ---------------------------------------------------------------- convolutions
class SpatialConv(nn.Module):
    """k x k convolution over (h, w) of every frame: a 1 x k x k 3D convolution."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, t, h, w, c)
        return unfold_time(self.conv(fold_time(x)), x.shape[0])


class TemporalConv(nn.Module):
    """k x 1 x 1 convolution over time at every pixel, as a conv2d over (t, h*w) with a (k, 1) kernel
    (a Conv3d (k,1,1) is slow on CPU; identical result)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, (kernel, 1), stride=(stride, 1), padding=(kernel // 2, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, t, h, w, c)
        h, w = x.shape[2:4]
        return unfold_space(self.conv(fold_space(x)), h, w)


class SpaceTimeConvBlock(nn.Module):
    """x + proj(SiLU(norm(conv_t(SiLU(norm(conv_s(x))))))): Lumiere's convolution-based inflation block (fig. 4b), as
    lucidrains' lumiere-pytorch builds it: a new 3 x 3 spatial conv, then a 3-tap temporal conv, then a
    zero-initialised projection, inserted after a pretrained (frozen) spatial layer. Its own spatial conv lets the
    new layers move features across pixels from frame to frame, which a temporal conv alone cannot do when the
    spatial layers around it are frozen (TemporalConvBlock)."""

    def __init__(self, ch: int):
        super().__init__()
        self.spatial = SpatialConv(ch, ch)
        self.norm1 = nn.LayerNorm(ch)
        self.temporal = TemporalConv(ch, ch)
        self.norm2 = nn.LayerNorm(ch)
        self.proj = nn.Linear(ch, ch)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        zero_module(self.proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, t, h, w, c)
        h = F.silu(self.norm1(self.spatial(x)))
        h = F.silu(self.norm2(self.temporal(h)))
        return x + self.proj(h)


class FactorizedConv(nn.Module):
    """(2+1)D convolution (Lumiere fig. 4b, Make-A-Video): spatial 1x3x3 then temporal 3x1x1.

    The temporal part is residual with a zero-initialised conv, so the block starts as the spatial conv.
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.spatial = SpatialConv(cin, cout)
        self.temporal = TemporalConv(cout, cout)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        zero_module(self.temporal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.spatial(x)
        if x.shape[1] > 1:
            x = x + self.temporal(x)
        return x


class ResBlock(nn.Module):
    """Spatial ResNet block with timestep (scale, shift) modulation, then an optional residual temporal
    conv block (norm, SiLU, 3x1x1 conv, zero-init): together a factorized space-time ResNet block."""

    def __init__(self, cin: int, cout: int, emb_dim: int, temporal: bool, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(cin)
        self.conv1 = SpatialConv(cin, cout)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.LayerNorm(cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = SpatialConv(cout, cout)
        self.skip = nn.Linear(cin, cout) if cin != cout else nn.Identity()
        self.temporal = TemporalConvBlock(cout) if temporal else None
        self.initialize_weights()

    def initialize_weights(self) -> None:
        zero_module(self.conv2)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        # 1. spatial ResNet block with scale-shift conditioning; emb: (b, d)
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, None, None, None].chunk(2, -1)  # (b, 1, 1, 1, c)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        x = self.skip(x) + h
        # 2. temporal conv (identity at init), videos only
        if self.temporal is not None and x.shape[1] > 1:
            x = self.temporal(x)
        return x


class TemporalConvBlock(nn.Module):
    """x + conv_t(SiLU(norm(x))): the temporal half of a factorized ResNet block (zero-init output)."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm = nn.LayerNorm(ch)
        self.conv = TemporalConv(ch, ch)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        zero_module(self.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(F.silu(self.norm(x)))


# ---------------------------------------------------------------- attention
class FeedForward(nn.Module):
    def __init__(self, ch: int, mult: int = 2):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(ch), nn.Linear(ch, ch * mult), nn.GELU(), nn.Linear(ch * mult, ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SpatialTransformer(nn.Module):
    """Per-frame self-attention over h*w (optional), cross-attention to the text tokens, feed-forward.
    Cross-attention queries all t*h*w positions of a clip at once against one context."""

    def __init__(self, ch: int, context_dim: int, heads: int, self_attn: bool = True):
        super().__init__()
        self.heads = heads
        self.self_attn = self_attn
        if self_attn:
            self.norm1 = nn.LayerNorm(ch)
            self.qkv = nn.Linear(ch, 3 * ch, bias=False)
            self.proj1 = nn.Linear(ch, ch)
        self.norm2 = nn.LayerNorm(ch)
        self.q = nn.Linear(ch, ch, bias=False)
        self.kv = nn.Linear(context_dim, 2 * ch, bias=False)
        self.proj2 = nn.Linear(ch, ch)
        self.ff = FeedForward(ch)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        for m in (self.proj2, self.ff.net[-1]) + ((self.proj1,) if self.self_attn else ()):
            zero_module(m)

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None) -> torch.Tensor:
        b, t, h, w, c = x.shape
        if self.self_attn:
            tokens = x.reshape(b * t, h * w, c)  # (bt, hw, c)
            q, k, v = self.qkv(self.norm1(tokens)).chunk(3, -1)
            x = x + self.proj1(attention(q, k, v, self.heads)).reshape(b, t, h, w, c)
        return self.cross_attend_and_ff(x, context, context_mask)

    def cross_attend_and_ff(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None) -> torch.Tensor:
        b, t, h, w, c = x.shape
        tokens = x.reshape(b, t * h * w, c)  # (b, thw, c)
        k, v = self.kv(context).chunk(2, -1)  # (b, l, c)
        out = attention(self.q(self.norm2(tokens)), k, v, self.heads, mask=context_mask)
        x = x + self.proj2(out).reshape(b, t, h, w, c)
        return x + self.ff(x)


class TemporalAttention(nn.Module):
    """Self-attention along time at every pixel (Lumiere fig. 4c) with a learned relative-position bias,
    then a feed-forward; both residual with zero-initialised outputs, so the block starts as identity.

    ``frame_position``: add an embedding of the frame index to the normalised input (AnimateDiff's motion
    module adds a sinusoidal one), here a sinusoid through a zero-initialised linear layer, so that the block
    stays identity at init and can be switched on in an already trained model. Relative biases and temporal
    convs are (nearly) shift-equivariant, so without it the network learns which end of the clip is the
    start only from padding effects, and the direction of motion ("left" vs "right": a clip and its time
    reversal) is easy to get backwards."""

    def __init__(self, ch: int, heads: int, max_distance: int = 64, frame_position: bool = False):
        super().__init__()
        self.heads, self.max_distance = heads, max_distance
        self.norm = nn.LayerNorm(ch)
        self.qkv = nn.Linear(ch, 3 * ch, bias=False)
        self.rel_bias = nn.Embedding(2 * max_distance + 1, heads)
        self.frame_embed = nn.Linear(ch, ch) if frame_position else None
        self.proj = nn.Linear(ch, ch)
        self.ff = FeedForward(ch)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        nn.init.zeros_(self.rel_bias.weight)
        if self.frame_embed is not None:
            zero_module(self.frame_embed)
        zero_module(self.proj)
        zero_module(self.ff.net[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h, w, c = x.shape
        if t == 1:
            return x
        tokens = x.permute(0, 2, 3, 1, 4).reshape(b * h * w, t, c)  # (b h w, t, c)
        pos = torch.arange(t, device=x.device)
        normed = self.norm(tokens)
        if self.frame_embed is not None:
            emb = self.frame_embed(timestep_embedding(pos, c).to(self.frame_embed.weight.dtype))  # (t, c)
            normed = normed + emb.to(normed.dtype)  # broadcast over b h w
        q, k, v = self.qkv(normed).chunk(3, -1)
        rel = (pos[None, :] - pos[:, None]).clamp(-self.max_distance, self.max_distance) + self.max_distance
        bias = self.rel_bias(rel).permute(2, 0, 1)[None].to(q.dtype)  # (1, heads, t, t)
        out = self.proj(attention(q, k, v, self.heads, bias=bias))
        x = x + out.reshape(b, h, w, t, c).permute(0, 3, 1, 2, 4)  # (b h w t c) -> (b t h w c)
        return x + self.ff(x)


def axial_rope(t: int, h: int, w: int, head_dim: int, device=None, base: float = 100.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary angles for a (t, h, w) token grid: the head dim's rotation pairs are split between the
    three axes (3D axial RoPE, as in recent video transformers), so attention sees relative offsets in
    time and space and works at any clip size. Returns cos, sin of shape (t*h*w, head_dim // 2)."""
    half = head_dim // 2
    n_s = half // 3  # pairs per spatial axis; time gets the rest
    sizes, pos = (half - 2 * n_s, n_s, n_s), torch.meshgrid(
        *(torch.arange(n, device=device, dtype=torch.float32) for n in (t, h, w)), indexing="ij")
    angles = []
    for n_pairs, p in zip(sizes, pos):
        inv = base ** (-torch.arange(n_pairs, device=device, dtype=torch.float32) / max(n_pairs, 1))
        angles.append(p.reshape(-1, 1) * inv)  # (thw, n_pairs)
    ang = torch.cat(angles, -1)  # (thw, half)
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, heads: int, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (n, l, heads*dh) queries or keys by per-position angles (l, dh/2)."""
    n, l, d = x.shape
    x = x.reshape(n, l, heads, d // heads)
    x1, x2 = x[..., : d // heads // 2], x[..., d // heads // 2:]
    cos, sin = cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)  # (l, 1, dh/2)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).reshape(n, l, d)


class SpaceTimeTransformer(SpatialTransformer):
    """Joint space-time self-attention over all t*h*w tokens of a clip (3D axial RoPE), then the text
    cross-attention and feed-forward of :class:`SpatialTransformer`. Used where a STUNet clip is compact (its
    coarsest level), where layout and motion are decided: a token can look at any place in any frame. It is a
    temporal layer: skipped for images (t == 1) and identity at init (zero-initialised output projections)."""

    def __init__(self, ch: int, context_dim: int, heads: int):
        super().__init__(ch, context_dim, heads, self_attn=True)

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None) -> torch.Tensor:
        b, t, h, w, c = x.shape
        if t == 1:
            return x
        tokens = x.reshape(b, t * h * w, c)
        q, k, v = self.qkv(self.norm1(tokens)).chunk(3, -1)
        cos, sin = axial_rope(t, h, w, c // self.heads, x.device)
        q, k = apply_rope(q, self.heads, cos, sin), apply_rope(k, self.heads, cos, sin)
        x = x + self.proj1(attention(q, k, v, self.heads)).reshape(b, t, h, w, c)
        return self.cross_attend_and_ff(x, context, context_mask)


# ---------------------------------------------------------------- resampling
class ConditionAdapter(nn.Module):
    """The conditioning input fed to every level of the down path, as T2I-Adapter / ControlNet feed a spatial
    condition to a pretrained U-Net: a small spatial encoder at the input resolution, average-pooled to each
    level's (t, h, w) and added through a zero-initialised projection per level, so a model given an adapter
    is unchanged at init. Through the input convolution alone a given frame reaches the coarse levels, where
    layout is decided, only after the network has learned to route it there."""

    def __init__(self, cin: int, width: int, level_channels: tuple[int, ...]):
        super().__init__()
        self.encoder = nn.Sequential(SpatialConv(cin, width), nn.SiLU(), SpatialConv(width, width), nn.SiLU())
        self.proj = nn.ModuleList(zero_module(nn.Linear(width, c)) for c in level_channels)

    def forward(self, features: torch.Tensor, level: int, x: torch.Tensor) -> torch.Tensor:
        """``x`` (b, t, h, w, c) of ``level`` plus the encoded condition ``features`` (b, T, H, W, width) pooled
        to its size."""
        if features.shape[1:4] != x.shape[1:4]:
            features = F.adaptive_avg_pool3d(features.permute(0, 4, 1, 2, 3), x.shape[1:4]).permute(0, 2, 3, 4, 1)
        return x + self.proj[level](features)


class SpatialDownsample(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = SpatialConv(cin, cout, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SpatialUpsample(nn.Module):
    """3x3 conv at the coarse resolution, then nearest x2: a quarter of the FLOPs of conv-after-upsample."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = SpatialConv(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        y = F.interpolate(fold_time(self.conv(x)), scale_factor=2, mode="nearest")  # (bt, c, 2h, 2w)
        return unfold_time(y, b)


class TemporalDownsample(nn.Module):
    """Stride-2 temporal conv (kernel 3) initialised to nearest-neighbour: frame i <- frame 2i
    (Lumiere 3.1, appendix B). Skipped for images (t == 1)."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = TemporalConv(ch, ch, 3, stride=2)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        identity_init(self.conv.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.shape[1] == 1 else self.conv(x)


class TemporalUpsample(nn.Module):
    """Nearest-neighbour x2 repeat in time followed by a temporal conv initialised to identity."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = TemporalConv(ch, ch, 3)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        identity_init(self.conv.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            return x
        return self.conv(x.repeat_interleave(2, dim=1))  # (b, 2t, h, w, c)
