"""MultiDiffusion along time and the super-resolution pipeline on tiny models."""

import pytest
import torch

from vidiff.conditioning.resolution import augment_lowres, upsample_video
from vidiff.diffusion.multidiffusion import multidiffusion, temporal_windows, window_weights
from vidiff.pipelines.super_resolution import SuperResolutionPipeline
from vidiff.pipelines.text_to_video import TextToVideoPipeline


def test_windows_cover_the_clip_and_end_at_its_end():
    assert temporal_windows(16, 8, 4) == [(0, 8), (4, 12), (8, 16)]
    assert temporal_windows(16, 8, 8) == [(0, 8), (8, 16)]
    assert temporal_windows(18, 8, 4) == [(0, 8), (4, 12), (8, 16), (10, 18)]
    assert temporal_windows(6, 8, 4) == [(0, 6)]
    with pytest.raises(ValueError, match="stride"):
        temporal_windows(16, 4, 8)
    with pytest.raises(ValueError, match=">= 1"):
        temporal_windows(16, 0, 1)


def test_fusion_is_the_per_frame_mean_of_the_covering_windows():
    # each window predicts a constant: its start frame; a frame's fused value is the mean over its windows
    fn = multidiffusion(lambda sl: (lambda x, t: torch.full_like(x, float(sl.start))), 16, 8, 4)
    out = fn(torch.zeros(1, 1, 16, 2, 2), torch.tensor([0]))[0, 0, :, 0, 0]
    expected = [0] * 4 + [2] * 4 + [6] * 4 + [8] * 4  # frames 4-7: windows 0, 4; 8-11: 4, 8; 12-15: 8
    assert out.tolist() == expected
    tri = window_weights(4, "triangle")
    assert tri.tolist() == pytest.approx([0.4, 0.8, 0.8, 0.4])


def test_a_per_frame_denoiser_is_unchanged_by_windowing():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 12, 4, 4)
    per_frame = lambda x, t: x.sin() * (1 + t.view(-1, 1, 1, 1, 1))  # noqa: E731 - depends on its frame only
    for window, stride in ((4, 2), (4, 4), (6, 1), (12, 12)):
        fn = multidiffusion(lambda sl: per_frame, 12, window, stride)
        assert torch.allclose(fn(x, torch.tensor([3.0, 3.0])), per_frame(x, torch.tensor([3.0, 3.0])), atol=1e-6)


def test_lowres_conditioning():
    ramp = torch.linspace(-1, 1, 8)
    lo = (ramp[:, None] * ramp[None, :]).expand(2, 3, 4, 8, 8)  # a smooth picture
    up = upsample_video(lo, 16, 16)
    assert up.shape == (2, 3, 4, 16, 16)
    inner = up.reshape(2, 3, 4, 8, 2, 8, 2).mean((4, 6))[..., 1:-1, 1:-1]  # 2x2 block means (edges clamp)
    assert torch.allclose(inner, lo[..., 1:-1, 1:-1], atol=1e-5)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(augment_lowres(up, 0.1, g1), augment_lowres(up, 0.1, g2))
    assert torch.equal(augment_lowres(up, 0.0, g1), up)


def test_ssr_pipeline_windows(tiny_ssr_dir):
    pipe = SuperResolutionPipeline.from_pretrained(tiny_ssr_dir)
    lo = torch.rand(1, 3, 12, 8, 8)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    out = pipe("a red circle", lo, window=4, stride=2, generator=g()).videos
    assert out.shape == (1, 3, 12, 16, 16) and 0 <= out.min() and out.max() <= 1
    again = pipe("a red circle", lo, window=4, stride=2, generator=g()).videos
    assert torch.equal(out, again)
    # one window over the whole clip is plain sampling; overlap changes the result of a temporal model
    whole = pipe("a red circle", lo, window=12, stride=12, generator=g()).videos
    no_overlap = pipe("a red circle", lo, window=4, stride=4, generator=g()).videos
    assert not torch.allclose(whole, no_overlap) and not torch.allclose(out, no_overlap)
    with pytest.raises(ValueError, match="stride"):
        pipe("a red circle", lo, window=4, stride=5)
    with pytest.raises(ValueError, match="multiples"):
        pipe("a red circle", lo, height=18, width=18)
    with pytest.raises(ValueError, match="smaller"):
        pipe("a red circle", lo, height=4, width=4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pipe("a red circle", lo * 2)
    with pytest.raises(ValueError, match="text-to-video"):
        from vidiff.pipelines.text_to_video import TextToVideoPipeline
        TextToVideoPipeline.from_pretrained(tiny_ssr_dir)


def test_long_text_to_video_through_windows(tiny_pipeline_dir):
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    cap = "a red circle moving left"
    noise = torch.randn(1, 3, 12, 8, 8, generator=torch.Generator().manual_seed(0))
    # stride = window: every window is denoised on its own, exactly as a clip of its length from its noise
    independent = pipe(cap, num_frames=12, window=4, stride=4, latents=noise).videos
    for s in (0, 4, 8):
        alone = pipe(cap, num_frames=4, latents=noise[:, :, s:s + 4]).videos
        assert torch.allclose(independent[:, :, s:s + 4], alone, atol=1e-5)
    fused = pipe(cap, num_frames=12, window=4, stride=2, window_weighting="uniform", latents=noise).videos  # Lumiere's mean
    assert fused.shape == (1, 3, 12, 8, 8) and not torch.allclose(fused, independent, atol=1e-3)
    # the same noise gives the same long clip
    assert torch.equal(pipe(cap, num_frames=12, window=4, stride=2, window_weighting="uniform", latents=noise).videos,
                       fused)
    # the defaults (from the folder, else the pipeline): a quarter-window stride and the triangle cross-fade
    default = pipe(cap, num_frames=12, window=4, latents=noise)
    assert (default.settings["stride"], default.settings["window_weighting"]) == (1, "triangle")
    assert torch.equal(default.videos, pipe(cap, num_frames=12, window=4, stride=1, window_weighting="triangle",
                                            latents=noise).videos)
    with pytest.raises(ValueError, match="stride"):
        pipe(cap, num_frames=12, window=4, stride=5)
    with pytest.raises(ValueError, match="num_frames"):
        pipe(cap, num_frames=12, window=3, stride=3)
    with pytest.raises(ValueError, match="need a window"):
        pipe(cap, num_frames=12, stride=2)
    # a cross-fade weighs the windows differently; with no overlap there is nothing to weigh
    tri = pipe(cap, num_frames=12, window=4, stride=2, window_weighting="triangle", latents=noise).videos
    assert not torch.allclose(tri, fused, atol=1e-3)
    assert torch.allclose(pipe(cap, num_frames=12, window=4, stride=4, window_weighting="triangle", latents=noise).videos,
                          independent, atol=1e-6)
    with pytest.raises(ValueError, match="weighting"):
        pipe(cap, num_frames=12, window=4, window_weighting="gauss")
