"""Lumiere's applications on tiny models: masks, widening, conditional pipelines, SDEdit, stylization."""

import numpy as np
import pytest
import torch

from vidiff.conditioning import masks
from vidiff.models.surgery import interpolate_weights, widen_input
from vidiff.models.unet import build_unet
from vidiff.pipelines.conditional import CinemagraphPipeline, ImageToVideoPipeline, VideoInpaintPipeline
from vidiff.pipelines.edit import VideoEditPipeline
from vidiff.pipelines.text_to_video import TextToVideoPipeline


def _perturbed(model, seed=0, scale=0.05):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return model


def test_masks_mean_what_lumiere_says():
    m = masks.first_frame_mask(2, 4, 8, 8)
    assert m[:, :, 0].eq(1).all() and m[:, :, 1:].eq(0).all()
    region = torch.zeros(1, 1, 8, 8)
    region[..., 2:5, 3:6] = 1
    inp = masks.inpaint_mask(region, 4)
    assert inp.shape == (1, 1, 4, 8, 8) and inp[..., 2:5, 3:6].eq(0).all() and inp.sum() == 4 * (64 - 9)
    cine = masks.cinemagraph_mask(region, 4)
    assert cine[:, :, 0].eq(1).all() and torch.equal(cine[:, :, 1:], inp[:, :, 1:])
    border = masks.border_region(1, 8, 8, 2)
    assert border.sum() == 64 - 16 and border[..., 2:6, 2:6].eq(0).all()
    with pytest.raises(ValueError, match="border"):
        masks.border_region(1, 8, 8, 4)
    video = torch.rand(1, 3, 4, 8, 8) * 2 - 1
    cond = masks.condition_input(video, inp)
    assert cond.shape == (1, 4, 4, 8, 8) and cond[:, :3][inp.expand(-1, 3, -1, -1, -1) == 0].eq(0).all()
    with pytest.raises(ValueError, match="does not fit"):
        masks.condition_input(video, inp[:, :, :2])
    with pytest.raises(ValueError, match="binary"):
        masks.check_mask(torch.full((1, 1, 8, 8), 0.5))


def test_training_masks_are_a_function_of_the_generator():
    a = masks.random_training_mask(torch.Generator().manual_seed(3), 32, 4, 8, 8)
    b = masks.random_training_mask(torch.Generator().manual_seed(3), 32, 4, 8, 8)
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    known_first = a[:, :, 0].flatten(1).all(1)
    assert 0 < known_first.float().mean() < 1  # a mixture: some examples give the first frame, some do not


def test_widened_model_equals_the_source_at_init():
    src = _perturbed(build_unet("stunet-tiny"))
    wide = widen_input(src, 4)
    assert wide.config.cond_channels == 4
    x, t, text = torch.randn(2, 3, 4, 8, 8), torch.tensor([10, 500]), torch.randn(2, 3, 8)
    cond = torch.randn(2, 4, 4, 8, 8)
    assert torch.allclose(src(x, t, text), wide(x, t, text, cond=cond), atol=1e-6)
    with torch.no_grad():  # and the new channels do reach the output once trained
        wide.conv_in.spatial.conv.weight.normal_()
    assert not torch.allclose(src(x, t, text), wide(x, t, text, cond=cond), atol=1e-3)
    with pytest.raises(ValueError, match="narrow"):
        widen_input(wide, 0)


def test_condition_adapter_changes_nothing_at_init_then_feeds_every_level():
    from vidiff.models.surgery import add_cond_adapter
    wide = _perturbed(widen_input(_perturbed(build_unet("stunet-tiny")), 4), 1)
    adapted = add_cond_adapter(wide, 8)
    assert adapted.config.cond_adapter_channels == 8 and len(adapted.cond_adapter.proj) == len(adapted.down)
    x, t, text = torch.randn(2, 3, 4, 8, 8), torch.tensor([10, 500]), torch.randn(2, 3, 8)
    cond = torch.randn(2, 4, 4, 8, 8)
    assert torch.allclose(wide(x, t, text, cond=cond), adapted(x, t, text, cond=cond), atol=1e-6)
    with torch.no_grad():  # each level's projection, once trained, reaches the output on its own
        for level in range(len(adapted.down)):
            probe = add_cond_adapter(wide, 8)
            probe.cond_adapter.proj[level].weight.normal_()
            assert not torch.allclose(wide(x, t, text, cond=cond), probe(x, t, text, cond=cond), atol=1e-4), level
    assert adapted(x[:, :, :1], t, text, cond=cond[:, :, :1]).shape == (2, 3, 1, 8, 8)  # an image batch too
    with pytest.raises(ValueError, match="conditional model"):
        add_cond_adapter(build_unet("stunet-tiny"), 8)
    with pytest.raises(ValueError, match="already"):
        add_cond_adapter(adapted, 8)
    with pytest.raises(ValueError, match="needs conditioning channels"):
        build_unet("stunet-tiny", cond_adapter_channels=8)


def test_weight_interpolation():
    a, b = _perturbed(build_unet("stunet-tiny"), 0), _perturbed(build_unet("stunet-tiny"), 1)
    sa, sb = a.state_dict(), b.state_dict()
    for alpha, want in ((0.0, sa), (1.0, sb)):
        got = interpolate_weights(a, b, alpha).state_dict()
        assert all(torch.equal(got[k], want[k]) for k in got)
    mid = interpolate_weights(a, b, 0.25).state_dict()
    k = "conv_in.spatial.conv.weight"
    assert torch.allclose(mid[k], 0.75 * sa[k] + 0.25 * sb[k], atol=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        interpolate_weights(a, b, 1.5)
    with pytest.raises(ValueError, match="architecture"):
        interpolate_weights(a, build_unet("baseline-tiny"), 0.5)


def test_conditional_pipelines(tiny_conditional_dir):
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    i2v = ImageToVideoPipeline.from_pretrained(tiny_conditional_dir)
    image = torch.rand(1, 3, 8, 8)
    v = i2v("a red circle moving left", image, generator=g()).videos
    assert v.shape == (1, 3, 4, 8, 8)
    assert torch.equal(v, i2v("a red circle moving left", image, generator=g()).videos)
    assert not torch.equal(v, i2v("a red circle moving left", image.flip(-1), generator=g()).videos)
    guided = i2v("a red circle moving left", image, generator=g(), keep_known=False, condition_guidance_scale=3.0)
    free = i2v("a red circle moving left", image, generator=g(), keep_known=False)
    assert guided.videos.shape == v.shape and not torch.allclose(guided.videos, free.videos, atol=1e-4)
    with pytest.raises(ValueError, match="condition_guidance_scale"):
        i2v("a red circle moving left", image, condition_guidance_scale=-1.0)
    inpaint = VideoInpaintPipeline.from_pretrained(tiny_conditional_dir)
    video = torch.rand(1, 3, 4, 8, 8)
    region = masks.border_region(1, 8, 8, 2)
    assert inpaint("a red circle", video, region, generator=g()).videos.shape == (1, 3, 4, 8, 8)
    with pytest.raises(ValueError, match="empty"):
        inpaint("a red circle", video, torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="must be"):
        inpaint("a red circle", video, torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="binary"):
        inpaint("a red circle", video, torch.full((1, 1, 8, 8), 0.3))
    cine = CinemagraphPipeline.from_pretrained(tiny_conditional_dir)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cine("a red circle", image * 3, region)
    assert cine("a red circle", image, region, generator=g()).videos.shape == (1, 3, 4, 8, 8)


def test_condition_guidance_default_comes_from_the_model_folder(tiny_conditional_dir):
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    image = torch.rand(1, 3, 8, 8)
    pipe = ImageToVideoPipeline.from_pretrained(tiny_conditional_dir)
    assert pipe.condition_guidance() == 1.0  # a folder that names none: no condition guidance
    none = pipe("a red circle", image, generator=g(), keep_known=False).videos
    assert torch.equal(none, pipe("a red circle", image, generator=g(), keep_known=False,
                                  condition_guidance_scale=1.0).videos)
    pipe.defaults["condition_guidance_scale"] = 3.0
    default = pipe("a red circle", image, generator=g(), keep_known=False).videos
    assert torch.equal(default, pipe("a red circle", image, generator=g(), keep_known=False,
                                     condition_guidance_scale=3.0).videos)
    assert not torch.allclose(default, none, atol=1e-4)


def test_given_pixels_are_kept_exactly_unless_told_not_to(tiny_conditional_dir):
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    image, video = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 4, 8, 8)
    region = torch.zeros(2, 1, 8, 8)
    region[:, :, 2:6, 3:7] = 1
    outside = (1 - region)[:, :, None].expand(-1, 3, 4, -1, -1).bool()
    for sampler in ("dpm++", "ddim", "ddpm"):
        kw = dict(generator=g(), sampler=sampler, num_inference_steps=3)
        i2v = ImageToVideoPipeline.from_pretrained(tiny_conditional_dir)
        kept, free = i2v("a red circle", image, **kw).videos, i2v("a red circle", image, keep_known=False,
                                                                   **{**kw, "generator": g()}).videos
        torch.testing.assert_close(kept[:, :, 0], image, atol=1e-6, rtol=0)
        assert (free[:, :, 0] - image).abs().max() > 0.05  # the tiny random model alone does not copy it
        assert (kept[:, :, 1:] - free[:, :, 1:]).abs().max() > 0  # the kept pixels steer the rest
        inpainted = VideoInpaintPipeline.from_pretrained(tiny_conditional_dir)("a red circle", video, region, **kw)
        torch.testing.assert_close(inpainted.videos[outside], video[outside], atol=1e-6, rtol=0)
        cine = CinemagraphPipeline.from_pretrained(tiny_conditional_dir)("a red circle", image, region, **kw).videos
        still = image[:, :, None].expand(-1, -1, 4, -1, -1)
        torch.testing.assert_close(cine[outside], still[outside], atol=1e-6, rtol=0)
        torch.testing.assert_close(cine[:, :, 0], image, atol=1e-6, rtol=0)


def test_task_mismatch_is_a_clear_error(tiny_pipeline_dir, tiny_conditional_dir):
    with pytest.raises(ValueError, match="text-to-video model; this command needs a conditional"):
        ImageToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    with pytest.raises(ValueError, match="conditional model; this command needs a text-to-video"):
        TextToVideoPipeline.from_pretrained(tiny_conditional_dir)


def test_sdedit_strength_ends(tiny_pipeline_dir):
    pipe = VideoEditPipeline.from_pretrained(tiny_pipeline_dir)
    t2v = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    video = torch.rand(1, 3, 4, 8, 8)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert torch.equal(pipe("a blue square", video, strength=0.0, generator=g()).videos, video)
    # strength 1 ignores the input: the same video as text-to-video from the same seed
    full = pipe("a blue square", video, strength=1.0, generator=g()).videos
    assert torch.allclose(full, t2v("a blue square", generator=g()).videos, atol=1e-6)
    half = pipe("a blue square", video, strength=0.5, num_inference_steps=4, generator=g()).videos
    assert (half - video).abs().mean() < (full - video).abs().mean()
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="strength"):
            pipe("a blue square", video, strength=bad)


def test_style_interpolation_pipeline(tmp_path, tiny_text_encoder, tiny_pipeline_dir):
    from conftest import make_tiny_style

    style_dir = make_tiny_style(tiny_pipeline_dir, tmp_path / "style", seed=9)
    base = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    style = TextToVideoPipeline.from_pretrained(style_dir)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    run = lambda p: p("a red circle", generator=g()).videos  # noqa: E731
    assert torch.allclose(run(base.with_style(style_dir, 0.0)), run(base), atol=1e-6)
    assert torch.allclose(run(base.with_style(style_dir, 1.0)), run(style), atol=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        base.with_style(style_dir, -0.5)


def test_hollowness_reads_the_outlined_style():
    """The style read separates the two renders of the same scenes, and the reader still reads outlines."""
    from vidiff.shapes.scenes import render, sample_scene
    from vidiff.shapes.reader import score_video
    from vidiff.evaluation.style import hollowness

    scenes = [sample_scene(i, "test", num_objects=1) for i in range(12)]
    filled = [render(s) for s in scenes]
    outlined = [render(s, style="outlined") for s in scenes]
    assert np.nanmean([hollowness(v) for v in filled]) < 0.02
    assert np.nanmean([hollowness(v) for v in outlined]) > 0.25
    reads = [score_video(v, s.caption)["objects"][0] for v, s in zip(outlined, scenes)]
    assert np.mean([r.color for r in reads]) == 1.0
    assert np.mean([r.motion for r in reads]) >= 0.75
