"""Weight surgery on trained video U-Nets: every key is mapped explicitly and every shape asserted
(STYLE principle 5).

- :func:`widen_input` adds conditioning channels to a text-to-video checkpoint (Lumiere 4.2: the first
  convolution is widened for ``<J, C, M>``). The new input weights are zero, so the widened model equals
  the source at init whatever the conditioning holds; fine-tuning then learns to use it.
- :func:`add_frame_position` switches on the frame-index embedding of the temporal attention layers
  (``frame_position_embedding``) in a trained model: the new projections are zero, so the model is unchanged
  at init and a fine-tune learns to use the clip's clock.
- :func:`add_self_condition` widens the input for self-conditioning (the model's own previous estimate of the
  clean clip; new weights zero: unchanged at init while the estimate input is unused).
- :func:`add_coordinates` adds two input channels holding each pixel's position (CoordConv, Liu et al. 2018: a
  convolution is blind to where it is but for the padding; new weights zero: unchanged at init).
- :func:`widen_text` lets a trained model read wider text tokens (new features appended, their weights zero:
  unchanged at init).
- :func:`add_temporal_attention` adds temporal attention layers (identity at init: zero output projections) at
  more levels of a trained model, so a fine-tune can learn motion at a finer time scale than the coarsest level's.
- :func:`add_cond_adapter` feeds the conditioning to every level of the down path of a widened model
  (zero-initialised projections: unchanged at init).
- :func:`interpolate_weights` blends a style fine-tune with the original (Lumiere 4.1, following
  GAN-interpolation work): ``W = alpha * W_style + (1 - alpha) * W_orig``.
"""

from __future__ import annotations

import torch

from vidiff.models.unet import VideoUNet, unet_kwargs

# (cout, c_in * p * p, 3, 3), channel index = c * p * p + k; the channels <x, cond, self-cond estimate, coordinates>
INPUT_CONV = "conv_in.spatial.conv.weight"


def _widened(model: VideoUNet, change: dict, widened, at: int) -> VideoUNet:
    """A copy of ``model`` with config ``change``, which may only add input columns (dim 1) to the weights that
    ``widened(key)`` names: new zero columns inserted at column ``at``, the old ones carried over around them; every
    other weight carried over with its shape asserted."""
    wide = VideoUNet(**{**unet_kwargs(model), **change})
    src, dst = model.state_dict(), wide.state_dict()
    assert set(src) == set(dst), "widening changed more than input columns"
    for key, value in src.items():
        if widened(key):
            new = dst[key].shape[1] - value.shape[1]
            assert dst[key].shape[0] == value.shape[0] and dst[key].shape[2:] == value.shape[2:], key
            assert new > 0 and 0 <= at <= value.shape[1], key
            w = torch.zeros_like(dst[key])
            w[:, :at], w[:, at + new:] = value[:, :at], value[:, at:]
            dst[key] = w
        else:
            assert value.shape == dst[key].shape, key
            dst[key] = value
    wide.load_state_dict(dst)
    return torch.nn.Module.to(wide, next(model.parameters()).dtype)


def widen_input(model: VideoUNet, cond_channels: int) -> VideoUNet:
    """A copy of ``model`` that takes ``cond_channels`` more input channels, the new weights zero."""
    cfg = model.config
    if cond_channels < cfg.cond_channels:
        raise ValueError(f"cannot narrow the input from {cfg.cond_channels} to {cond_channels} conditioning channels")
    at = (cfg.in_channels + cfg.cond_channels) * cfg.patch_size ** 2  # pixel-unshuffled channels: after <x, cond>
    return _widened(model, {"cond_channels": cond_channels}, lambda k: k == INPUT_CONV, at)


def add_self_condition(model: VideoUNet) -> VideoUNet:
    """A copy of ``model`` with ``self_condition`` on: ``in_channels`` more input channels after ``<x, cond>``, their
    weights zero, so the copy equals the source whatever estimate it is given."""
    cfg = model.config
    if cfg.self_condition:
        return model
    at = (cfg.in_channels + cfg.cond_channels) * cfg.patch_size ** 2
    return _widened(model, {"self_condition": True}, lambda k: k == INPUT_CONV, at)


def add_coordinates(model: VideoUNet) -> VideoUNet:
    """A copy of ``model`` with ``coordinate_channels`` on: two input channels holding each pixel's position (CoordConv)
    after all others, their weights zero, so the copy equals the source."""
    cfg = model.config
    if cfg.coordinate_channels:
        return model
    return _widened(model, {"coordinate_channels": True}, lambda k: k == INPUT_CONV,
                    model.state_dict()[INPUT_CONV].shape[1])


TEXT_INPUTS = ("text_pool.weight", ".kv.weight")  # every weight that reads the text tokens: (out, text_dim)


def widen_text(model: VideoUNet, text_dim: int) -> VideoUNet:
    """A copy of ``model`` that reads ``text_dim``-wide text tokens whose first ``model.config.text_dim`` features
    are the ones it was trained on (``TextEncoder(features="last+embeddings")`` puts the last hidden state
    first). The columns for the new features are zero, so the copy equals the source at init."""
    old = model.config.text_dim
    if text_dim <= old:
        raise ValueError(f"cannot narrow the text input from {old} to {text_dim} features")
    return _widened(model, {"text_dim": text_dim}, lambda k: k == TEXT_INPUTS[0] or k.endswith(TEXT_INPUTS[1]), old)


def _grown(model: VideoUNet, change: dict, is_new, zero_new: bool) -> VideoUNet:
    """A copy of ``model`` with config ``change``, which may only add weights (each named by ``is_new(key)``):
    every source weight carried over with its shape asserted; the new ones zeroed (``zero_new``) or kept at
    their init."""
    out = VideoUNet(**{**unet_kwargs(model), **change})
    src, dst = model.state_dict(), out.state_dict()
    new = set(dst) - set(src)
    assert set(src) <= set(dst) and new and all(is_new(k) for k in new), sorted(new)
    for key, value in src.items():
        assert value.shape == dst[key].shape, key
        dst[key] = value
    if zero_new:
        for key in new:
            dst[key] = torch.zeros_like(dst[key])
    out.load_state_dict(dst)
    return torch.nn.Module.to(out, next(model.parameters()).dtype)


def add_frame_position(model: VideoUNet) -> VideoUNet:
    """A copy of ``model`` with ``frame_position_embedding`` on; the new ``frame_embed`` weights are zero."""
    if model.config.frame_position_embedding:
        return model
    return _grown(model, {"frame_position_embedding": True}, lambda k: ".frame_embed." in k, zero_new=True)


def add_temporal_attention(model: VideoUNet, levels) -> VideoUNet:
    """A copy of ``model`` with temporal attention at ``levels`` (those it has plus new ones; the coarsest level
    has its own, ``mid_temporal_attention_layers``). The new layers keep :class:`TemporalAttention`'s init, whose
    output projections are zero, so the copy's output equals the source's."""
    return _add_attention_levels(model, "temporal_attention_levels", levels, ".tattn.", "temporal attention")


def add_spacetime_attention(model: VideoUNet, levels) -> VideoUNet:
    """A copy of ``model`` with joint space-time attention (:class:`SpaceTimeTransformer`) after the blocks of
    ``levels`` (those it has plus new ones; the coarsest level has its own, ``mid_spacetime_layers``). The new
    layers keep their init, whose output projections are zero, so the copy's output equals the source's."""
    return _add_attention_levels(model, "spacetime_attention_levels", levels, ".stattn.", "space-time attention")


def _add_attention_levels(model: VideoUNet, key: str, levels, marker: str, what: str) -> VideoUNet:
    if not isinstance(levels, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in levels):
        raise ValueError(f"model.{key} must be a list of level indices, got {levels!r}")
    have = tuple(model.config[key])
    want = tuple(sorted(set(levels)))
    last = len(model.config.channels) - 1
    if not set(have) <= set(want):
        raise ValueError(f"{what} cannot be removed: the model has it at levels {list(have)}, "
                         f"asked for {list(want)}")
    if any(not 0 <= i < last for i in want):
        raise ValueError(f"model.{key} are levels 0-{last - 1} of this {last + 1}-level model "
                         f"(the coarsest has its own), got {list(want)}")
    if want == have:
        return model
    return _grown(model, {key: want}, lambda k: marker in k, zero_new=False)


def add_cond_adapter(model: VideoUNet, width: int) -> VideoUNet:
    """A copy of a conditional ``model`` whose conditioning also reaches every level of the down path
    (:class:`~vidiff.models.blocks.ConditionAdapter`, ``width`` channels). The adapter's encoder keeps its
    random init and its per-level projections start at zero, so the copy's output equals the source's."""
    if not model.config.cond_channels:
        raise ValueError("a conditioning adapter needs a conditional model (model.cond_channels > 0)")
    if model.config.cond_adapter_channels:
        raise ValueError(f"the model already has a conditioning adapter ({model.config.cond_adapter_channels} channels)")
    if width < 1:
        raise ValueError(f"the adapter width must be a positive channel count, got {width}")
    out = _grown(model, {"cond_adapter_channels": width}, lambda k: k.startswith("cond_adapter."), zero_new=False)
    assert not any(p.any() for p in out.cond_adapter.proj.parameters()), "projections must start at zero"
    return out


def same_architecture(original: VideoUNet, style: VideoUNet) -> None:
    """Raise ValueError unless the two U-Nets share one configuration (so that weights can be interpolated)."""
    if unet_kwargs(original) != unet_kwargs(style):
        raise ValueError("the style model's architecture differs from the base model's; fine-tune the style from "
                         "the base (train.init_from) so that their weights can be interpolated")


def check_style_of(base: VideoUNet, style: VideoUNet, style_path) -> None:
    """Raise ValueError unless ``style`` is a style fine-tune of ``base``: a style keeps its base's temporal layers
    (Lumiere 4.1; ``train.freeze_temporal``), so they identify the base, and weights interpolated between two
    unrelated models mean nothing. A tolerance covers fp16 storage of one side."""
    same_architecture(base, style)
    temporal = {id(p) for p in base.temporal_parameters()}
    theirs = dict(style.named_parameters())
    for name, mine in base.named_parameters():
        if id(mine) in temporal and not torch.allclose(mine.float(), theirs[name].float(), rtol=2e-3, atol=1e-5):
            raise ValueError(f"{str(style_path)!r} is not a style fine-tune of this model: its temporal layers differ "
                             f"(a style keeps its base's, train.freeze_temporal); fine-tune it from this model "
                             f"(train.init_from) or pick the model it was fine-tuned from with --model")


def interpolate_weights(original: VideoUNet, style: VideoUNet, alpha: float) -> VideoUNet:
    """``alpha * W_style + (1 - alpha) * W_orig`` for every floating-point tensor; the two must share one
    architecture. Returns a new model (the inputs are untouched)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    same_architecture(original, style)
    a, b = original.state_dict(), style.state_dict()
    assert set(a) == set(b)
    out = VideoUNet(**unet_kwargs(original))
    mixed = {}
    for key, w0 in a.items():
        w1 = b[key].to(w0.device)  # the style loads on the CPU; the pipeline may be on a GPU
        assert w0.shape == w1.shape, key
        mixed[key] = torch.lerp(w0.float(), w1.float(), alpha).to(w0.dtype) if w0.is_floating_point() else w0
    out.load_state_dict(mixed)
    return torch.nn.Module.to(out, next(original.parameters()).dtype)  # plain cast, as load_unet
