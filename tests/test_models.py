import pytest
import torch

from vidiff.models.blocks import (
    FactorizedConv, SpatialConv, TemporalAttention, TemporalConv, TemporalConvBlock, TemporalDownsample,
    TemporalUpsample, fold_space, fold_time, unfold_space, unfold_time,
)
from vidiff.models.unet import PRESETS, build_unet


def tokens(b=2, t=4, h=4, w=4, c=8, seed=0):
    return torch.randn(b, t, h, w, c, generator=torch.Generator().manual_seed(seed))


def test_fold_helpers_round_trip():
    x = tokens()
    assert torch.equal(unfold_time(fold_time(x), 2), x)
    assert torch.equal(unfold_space(fold_space(x), 4, 4), x)


def test_temporal_conv_equals_conv3d():
    x = tokens()
    tc = TemporalConv(8, 6)
    conv3d = torch.nn.Conv3d(8, 6, (3, 1, 1), padding=(1, 0, 0))
    with torch.no_grad():
        conv3d.weight.copy_(tc.conv.weight[..., None])  # (6, 8, 3, 1) -> (6, 8, 3, 1, 1)
        conv3d.bias.copy_(tc.conv.bias)
    ref = conv3d(x.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1)  # (b c t h w) -> (b t h w c)
    assert torch.allclose(tc(x), ref, atol=1e-5)


def test_spatial_conv_is_per_frame():
    x = tokens()
    sc = SpatialConv(8, 8)
    out = sc(x)
    one = sc(x[:, 1:2])
    assert torch.allclose(out[:, 1:2], one, atol=1e-6)


def test_temporal_layers_start_as_identity():
    x = tokens()
    assert torch.allclose(TemporalAttention(8, 2)(x), x)
    assert torch.allclose(TemporalAttention(8, 2, frame_position=True)(x), x)
    assert torch.allclose(TemporalConvBlock(8)(x), x)
    fc = FactorizedConv(8, 8)
    assert torch.allclose(fc(x), fc.spatial(x))


def test_temporal_resamplers_start_as_nearest_neighbour():
    x = tokens(t=8)
    assert torch.allclose(TemporalDownsample(8)(x), x[:, ::2], atol=1e-6)  # frame i <- frame 2i
    assert torch.allclose(TemporalUpsample(8)(x), x.repeat_interleave(2, 1), atol=1e-6)
    img = tokens(t=1)
    assert torch.equal(TemporalDownsample(8)(img), img) and torch.equal(TemporalUpsample(8)(img), img)


def test_temporal_attention_mixes_time_after_training_like_perturbation():
    ta = TemporalAttention(8, 2)
    torch.nn.init.normal_(ta.proj.weight)
    x = tokens()
    y = ta(x)
    x2 = x.clone()
    x2[:, 0] += torch.randn_like(x2[:, 0])  # change frame 0 only
    assert not torch.allclose(ta(x2)[:, 3], y[:, 3])  # frame 3 sees it


@pytest.mark.parametrize("frame_position", [False, True])
def test_frame_position_tells_the_start_of_a_clip_from_its_end(frame_position):
    """Without a frame embedding (and with the relative bias still symmetric) temporal attention commutes
    with reversing time, so a clip and its reversal ("moving left" / "moving right") get mirrored outputs."""
    torch.manual_seed(0)
    ta = TemporalAttention(8, 2, frame_position=frame_position)
    for layer in (ta.proj, ta.frame_embed):
        if layer is not None:
            torch.nn.init.normal_(layer.weight)
    x = tokens()
    mirrored = torch.allclose(ta(x.flip(1)), ta(x).flip(1), atol=1e-5)
    assert mirrored != frame_position


def test_frame_position_is_off_in_configs_that_predate_it(tmp_path):
    """Shipped weights' config.json files have no such key: they load with the embedding off."""
    import json

    from vidiff.models.unet import VideoUNet
    build_unet("stunet-tiny", frame_position_embedding=True).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config.pop("frame_position_embedding") is True
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = VideoUNet.from_pretrained(tmp_path)
    assert [m.frame_embed for m in model.modules() if isinstance(m, TemporalAttention)] == [None, None]


def test_frame_position_switched_on_in_a_trained_model_changes_nothing_at_init():
    from vidiff.models.surgery import add_frame_position
    torch.manual_seed(0)
    src = build_unet("stunet-tiny")
    with torch.no_grad():  # a "trained" model: no zero-initialised layer left
        for p in src.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    clocked = add_frame_position(src)
    assert clocked.config.frame_position_embedding and not src.config.frame_position_embedding
    x, text = torch.randn(2, 3, 4, 8, 8), torch.randn(2, 5, 8)
    t = torch.tensor([10, 500])
    assert torch.allclose(src(x, t, text), clocked(x, t, text), atol=1e-6)
    with torch.no_grad():  # and the clock reaches the output once its projections are trained
        for m in clocked.modules():
            if isinstance(m, TemporalAttention):
                m.frame_embed.weight.normal_()
    assert not torch.allclose(src(x, t, text), clocked(x, t, text), atol=1e-4)


def test_coordinate_channels_tell_the_model_where_the_walls_are():
    """CoordConv: two channels of each pixel's row and column; added to a trained model they change nothing until
    trained, and conditioning channels added after them still go before them."""
    from vidiff.models.surgery import INPUT_CONV, add_coordinates, widen_input
    from vidiff.models.unet import coordinates

    grid = coordinates(1, 2, 3, 5)
    assert grid.shape == (1, 2, 2, 3, 5)
    assert grid[0, 0, 0, :, 0].tolist() == [-1.0, 0.0, 1.0] and grid[0, 1, 1, 0].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    torch.manual_seed(0)
    src = build_unet("stunet-tiny")
    with torch.no_grad():
        for p in src.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    placed = add_coordinates(src)
    assert placed.config.coordinate_channels and placed.state_dict()[INPUT_CONV].shape[1] == \
        src.state_dict()[INPUT_CONV].shape[1] + 2 * 4  # two channels, pixel-unshuffled by the patch of 2
    x, text, t = torch.randn(2, 3, 4, 8, 8), torch.randn(2, 5, 8), torch.tensor([10, 500])
    with torch.no_grad():
        assert torch.equal(src(x, t, text), placed(x, t, text))
        cond = torch.randn(2, 4, 4, 8, 8)
        assert torch.equal(widen_input(placed, 4)(x, t, text, cond=cond), src(x, t, text))
        placed.state_dict()[INPUT_CONV][:, -8:].normal_()  # "trained": the position now reaches the output
        assert not torch.allclose(src(x, t, text), placed(x, t, text), atol=1e-4)
    with pytest.raises(ValueError, match="model.coordinate_channels must be true or false"):
        build_unet("stunet-tiny", coordinate_channels=1)


@pytest.mark.parametrize("key,marker", [("temporal_attention_levels", ".tattn."),
                                        ("spacetime_attention_levels", ".stattn.")])
def test_attention_added_to_a_trained_model_changes_nothing_at_init(key, marker):
    from vidiff.models import surgery
    torch.manual_seed(0)
    src = build_unet("stunet-tiny", channels=(8, 16, 16))
    with torch.no_grad():  # a "trained" model: no zero-initialised layer left
        for p in src.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    add = surgery.add_temporal_attention if key.startswith("temporal") else surgery.add_spacetime_attention
    grown = add(src, [1])
    assert grown.config[key] == (1,) and src.config[key] == ()
    new = set(grown.state_dict()) - set(src.state_dict())
    assert new and all(marker in k and (k.startswith("down.1.") or k.startswith("up.1.")) for k in new)
    x, text = torch.randn(2, 3, 8, 16, 16), torch.randn(2, 5, 8)
    t = torch.tensor([10, 500])
    assert torch.allclose(src(x, t, text), grown(x, t, text), atol=1e-6)
    with torch.no_grad():  # the new layers reach the output once their projections are trained
        for name, p in grown.named_parameters():
            if name in new:
                p.normal_(std=0.1)
    assert not torch.allclose(src(x, t, text), grown(x, t, text), atol=1e-4)
    assert add(grown, [1]) is grown
    with pytest.raises(ValueError, match="cannot be removed"):
        add(grown, [0])
    with pytest.raises(ValueError, match="levels 0-1"):
        add(src, [2])


def _run(model, b=2, t=4, hw=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 3, t, hw, hw, generator=g)
    text = torch.randn(b, 5, model.config.text_dim, generator=g)
    return x, text, model(x, torch.tensor([10, 500]), text)


@pytest.mark.parametrize("preset", ["stunet-tiny", "baseline-tiny"])
def test_unet_shapes_video_and_image(preset):
    torch.manual_seed(0)
    m = build_unet(preset)
    x, text, out = _run(m)
    assert out.shape == x.shape
    img = torch.randn(2, 3, 1, 8, 8)  # an image batch: t == 1, temporal layers skipped
    assert m(img, torch.tensor([1, 2]), text).shape == img.shape


def test_stunet_downsamples_time_and_baseline_does_not():
    st, base = build_unet("stunet-tiny"), build_unet("baseline-tiny")
    assert st.temporal_compression == 2 and base.temporal_compression == 1
    seen = {}
    st.mid_res1.register_forward_hook(lambda m, i, o: seen.update(st=o.shape) and None)
    base.mid_res1.register_forward_hook(lambda m, i, o: seen.update(base=o.shape) and None)
    _run(st), _run(base)
    assert seen["st"][1] == 2 and seen["base"][1] == 4  # (b, t, h, w, c) at the coarsest level


def test_stunet_full_preset_compresses_time_by_four():
    cfg = build_unet("stunet-shapes").config
    assert len(cfg.channels) == 3 and cfg.temporal_downsample and cfg.mid_temporal_attention_layers >= 1
    assert PRESETS["stunet-shapes-spacetime"]["mid_spacetime_layers"] >= 1


def test_temporal_downsample_levels_choose_where_time_is_halved(tmp_path):
    """``temporal_downsample_levels=[0]`` on a 3-level U-Net halves the clip once (16 -> 8 -> 8 frames): the
    coarsest level keeps 8 frames, the size rule follows, and the choice survives save / load; unset, every level
    but the coarsest halves it (Lumiere), and a level the U-Net does not have is refused."""
    from vidiff.models.unet import VideoUNet

    kw = dict(channels=(8, 16, 16), heads=2, emb_dim=16, text_dim=8, cross_attention_levels=(2,),
              self_attention_levels=(2,))
    full, once = VideoUNet(**kw), VideoUNet(temporal_downsample_levels=[0], **kw)
    assert full.temporal_compression == 4 and once.temporal_compression == 2
    seen = {}
    full.mid_res1.register_forward_hook(lambda m, i, o: seen.update(full=o.shape) and None)
    once.mid_res1.register_forward_hook(lambda m, i, o: seen.update(once=o.shape) and None)
    torch.manual_seed(0)
    x, text = torch.randn(2, 3, 16, 16, 16), torch.randn(2, 5, 8)
    assert once(x, torch.tensor([10, 500]), text).shape == x.shape
    full(x, torch.tensor([10, 500]), text)
    assert seen["full"][1] == 4 and seen["once"][1] == 8  # (b, t, h, w, c) at the coarsest level
    once.check_input_size(4, 16, 16)  # 2 frames at the coarsest level
    with pytest.raises(ValueError, match="of at least 8"):
        full.check_input_size(4, 16, 16)
    once.save_pretrained(tmp_path)
    loaded = VideoUNet.from_pretrained(tmp_path)
    assert loaded.temporal_compression == 2
    with torch.no_grad():
        assert torch.equal(loaded(x, torch.tensor([10, 500]), text), once(x, torch.tensor([10, 500]), text))
    for bad in ([2], [0, 0], [-1], [True], ["0"]):
        with pytest.raises(ValueError, match="temporal_downsample_levels must be distinct levels from 0 to 1"):
            VideoUNet(temporal_downsample_levels=bad, **kw)


def test_spacetime_transformer_identity_at_init_and_skips_images():
    from vidiff.models.blocks import SpaceTimeTransformer

    torch.manual_seed(0)
    st = SpaceTimeTransformer(16, 8, 2)
    x, ctx = torch.randn(2, 4, 3, 3, 16), torch.randn(2, 5, 8)
    assert torch.equal(st(x, ctx, None), x)  # zero-initialised outputs
    with torch.no_grad():
        for p in st.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    img = torch.randn(2, 1, 3, 3, 16)
    assert torch.equal(st(img, ctx, None), img)  # t == 1: a temporal layer, skipped
    y = st(x, ctx, None)
    x2 = x.clone()
    x2[:, 0, 0, 0] += torch.randn(16)  # one token of frame 0
    assert not torch.allclose(st(x2, ctx, None)[:, 3, 2, 2], y[:, 3, 2, 2])  # seen from another frame and place


def test_axial_rope_scores_depend_only_on_offsets():
    from vidiff.models.blocks import apply_rope, axial_rope

    t, h, w, heads, dh = 4, 3, 5, 2, 12
    cos, sin = axial_rope(t, h, w, dh)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, heads * dh, generator=g), torch.randn(1, 1, heads * dh, generator=g)
    n = t * h * w
    qr, kr = apply_rope(q.expand(1, n, -1), heads, cos, sin), apply_rope(k.expand(1, n, -1), heads, cos, sin)
    assert torch.allclose(qr.norm(dim=-1), q.norm(dim=-1).expand(1, n), atol=1e-5)  # rotations
    idx = lambda a, b, c: (a * h + b) * w + c  # noqa: E731
    s = lambda i, j: float(qr[0, i] @ kr[0, j])  # noqa: E731
    # the same offset (1, 1, 2) from two different places gives the same score; another offset does not
    assert s(idx(0, 0, 0), idx(1, 1, 2)) == pytest.approx(s(idx(2, 1, 1), idx(3, 2, 3)), abs=1e-4)
    assert s(idx(0, 0, 0), idx(1, 1, 2)) != pytest.approx(s(idx(0, 0, 0), idx(1, 2, 1)), abs=1e-4)


def test_batch_elements_are_independent():
    torch.manual_seed(0)
    m = build_unet("stunet-tiny")
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    x, text, out = _run(m)
    one = m(x[1:], torch.tensor([500]), text[1:])
    assert torch.allclose(out[1:], one, atol=1e-5)


def test_freeze_spatial_trains_only_temporal_layers():
    m = build_unet("stunet-tiny")
    m.freeze_spatial()
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all(("temporal" in n or "sample" in n or "spacetime" in n) for n in trainable)
    assert any("mid_spacetime" in n for n in trainable)
    assert not any(n.startswith("conv_in.spatial") or ".conv1." in n for n in trainable)
    from vidiff.models.blocks import SpatialDownsample, SpatialUpsample
    resamplers = [mod for mod in m.modules() if isinstance(mod, (SpatialDownsample, SpatialUpsample))]
    assert resamplers and not any(p.requires_grad for mod in resamplers for p in mod.parameters())
    x, text, out = _run(m)
    out.pow(2).mean().backward()
    assert all(p.grad is None for n, p in m.named_parameters() if n not in trainable)


def test_input_size_checks():
    m = build_unet("stunet-tiny")  # spatial multiple 4 (patch 2 x one downsample), time multiple 2
    m.check_input_size(4, 8, 8)
    m.check_input_size(1, 8, 8)
    with pytest.raises(ValueError, match="multiple of 2"):
        m.check_input_size(3, 8, 8)
    with pytest.raises(ValueError, match="multiples of 4"):
        m.check_input_size(4, 10, 8)
    with pytest.raises(ValueError, match="of at least 4"):  # 1 frame at the coarsest level reads as an image
        m.check_input_size(2, 8, 8)


def test_conditioning_channels_option():
    m = build_unet("stunet-tiny", cond_channels=4)
    x = torch.randn(1, 3, 4, 8, 8)
    text = torch.randn(1, 3, m.config.text_dim)
    assert m(x, torch.tensor([3]), text, cond=torch.randn(1, 4, 4, 8, 8)).shape == x.shape
    with pytest.raises(ValueError, match="conditioning"):
        m(x, torch.tensor([3]), text)


def test_widen_text_changes_nothing_at_init():
    from vidiff.models.surgery import widen_text

    torch.manual_seed(0)
    model = build_unet("stunet-tiny", text_dim=8)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    wide = widen_text(model, 16)
    x, t = torch.randn(2, 3, 4, 8, 8), torch.tensor([10, 900])
    text, extra = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    with torch.no_grad():
        assert torch.allclose(model(x, t, text), wide(x, t, torch.cat([text, extra], -1)), atol=1e-6)
    with pytest.raises(ValueError, match="cannot narrow"):
        widen_text(wide, 8)


def test_the_sdpa_path_of_attention_equals_the_matmul_path(monkeypatch):
    """The path a GPU takes (torch's scaled_dot_product_attention) checked here on the CPU against the plain one:
    with a bias, a padding mask (one caption fully masked) and both; and the model's output with either path."""
    import vidiff.models.blocks as blocks

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, n, 16, generator=g) for n in (5, 7, 7))
    bias = torch.randn(1, 4, 5, 7, generator=g)
    mask = torch.tensor([[1] * 7, [1, 1, 1, 0, 0, 0, 0], [0] * 7], dtype=torch.bool)
    for kw in ({}, {"bias": bias}, {"mask": mask}, {"bias": bias, "mask": mask}):
        monkeypatch.setattr(blocks, "USE_SDPA", False)
        ref = blocks.attention(q, k, v, 4, **kw)
        monkeypatch.setattr(blocks, "USE_SDPA", True)
        got = blocks.attention(q, k, v, 4, **kw)
        assert torch.isfinite(got).all() and (got - ref).abs().max() <= 1e-5, kw
    monkeypatch.setattr(blocks, "USE_SDPA", True)
    assert (blocks.attention(q, k, v, 4, mask=mask) - blocks.attention(q, k, v, 4)).abs().max() > 1e-3  # can fail
    model = build_unet("stunet-tiny", text_dim=8).eval()
    for p in model.parameters():  # off the identity init, so that every attention matters
        p.data.add_(torch.randn(p.shape, generator=g) * 0.02)
    x, text = torch.randn(2, 3, 4, 16, 16, generator=g), torch.randn(2, 5, 8, generator=g)
    tmask = torch.tensor([[1, 1, 1, 0, 0], [1] * 5], dtype=torch.bool)
    with torch.no_grad():
        out = model(x, torch.tensor([5, 500]), text, tmask)
        monkeypatch.setattr(blocks, "USE_SDPA", False)
        assert (out - model(x, torch.tensor([5, 500]), text, tmask)).abs().max() <= 1e-4
