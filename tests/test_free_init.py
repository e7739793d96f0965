"""FreeInit (vidiff.diffusion.free_init): the filter and the noise re-initialisation against diffusers' FreeInitMixin,
and the pipelines' sampling loop with it."""

import json

import pytest
import torch
from diffusers.pipelines.free_init_utils import FreeInitMixin

import vidiff.pipelines.base as base
from vidiff.diffusion.free_init import FreeInit, low_pass_filter, mix, reinitialise
from vidiff.diffusion.noise_prior import sample_noise
from vidiff.diffusion.sampling import timesteps_for
from vidiff.pipelines.edit import VideoEditPipeline
from vidiff.pipelines.text_to_video import TextToVideoPipeline


@pytest.mark.parametrize("method", ["butterworth", "gaussian", "ideal"])
@pytest.mark.parametrize("stops", [(0.25, 0.25), (0.4, 0.1), (1.0, 0.5)])
def test_the_filter_is_diffusers_filter(method, stops):
    shape = (1, 3, 6, 8, 10)
    want = FreeInitMixin._get_free_init_freq_filter(None, shape, "cpu", method, 4, *stops)
    got = low_pass_filter(shape[-3:], FreeInit(method=method, spatial_stop_frequency=stops[0],
                                               temporal_stop_frequency=stops[1]))
    assert torch.allclose(got.expand(shape), want, atol=1e-6)
    assert 0.0 <= float(got.min()) and float(got.max()) <= 1.0


def test_the_mix_keeps_the_low_frequencies_of_one_and_the_high_of_the_other():
    g = torch.Generator().manual_seed(0)
    low, high = torch.randn(2, 3, 8, 8, 8, generator=g), torch.randn(2, 3, 8, 8, 8, generator=g)
    assert torch.allclose(mix(low, high, torch.ones(8, 8, 8)), low, atol=1e-5)
    assert torch.allclose(mix(low, high, torch.zeros(8, 8, 8)), high, atol=1e-5)
    # a constant clip is all DC (the centre of the shifted spectrum): an ideal filter keeps it and drops white noise's
    # high frequencies
    mask = low_pass_filter((8, 8, 8), FreeInit(method="ideal"))
    const = torch.full((1, 1, 8, 8, 8), 0.7)
    assert torch.allclose(mix(const, torch.zeros_like(const), mask), const, atol=1e-5)
    assert float(mix(torch.zeros_like(low), high, mask).std()) > 0.9 * float(high.std())


def test_the_re_initialised_noise_is_diffusers(tiny_pipeline_dir):
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    sch = pipe.make_scheduler("ddim")
    g = torch.Generator().manual_seed(1)
    x0, noise, fresh = (torch.randn(2, 3, 4, 8, 8, generator=g) for _ in range(3))
    t0 = torch.tensor(999)
    settings = FreeInit()
    mixin = FreeInitMixin()
    want = mixin._apply_freq_filter(sch.add_noise(x0, noise, t0.expand(2)), fresh,
                                    mixin._get_free_init_freq_filter((1, 3, 4, 8, 8), "cpu", "butterworth", 4, 0.25, 0.25))
    assert torch.allclose(reinitialise(x0, noise, fresh, sch, t0, settings), want, atol=1e-5)


def test_the_pipeline_samples_again_from_its_own_result(tiny_pipeline_dir, monkeypatch):
    """Every sampling after the first starts from the last result diffused to the first timestep with the first
    noise, its low frequencies kept and the high ones from the generator's next draw (diffusers' recipe)."""
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir, base_only=True)
    pipe.enable_free_init(3, use_fast_sampling=True)
    calls = []

    def fake_denoise(fn, scheduler, x, ts, **kw):
        calls.append((x.clone(), ts.clone()))
        return torch.full_like(x, 0.1 * len(calls))  # the "result" of sampling number len(calls)

    monkeypatch.setattr(base, "denoise", fake_denoise)
    s = pipe.settings()
    shape = pipe.sample_shape(1, s["num_frames"], s["height"], s["width"])
    pipe("a red circle moving left", num_inference_steps=9, sampler="dpm++", generator=torch.Generator().manual_seed(5))
    assert [len(ts) for _, ts in calls] == [3, 6, 9]  # coarse to fine
    g = torch.Generator().manual_seed(5)
    noise = sample_noise(pipe.diffusion, shape, g)
    assert torch.equal(calls[0][0], noise)
    sch = pipe.make_scheduler("dpm++")
    for k in (1, 2):
        fresh = sample_noise(pipe.diffusion, shape, g)
        timesteps_for(sch, len(calls[k][1]))  # the noise level of a timestep is that of the step grid it is on
        want = reinitialise(torch.full(shape, 0.1 * k), noise, fresh, sch, calls[k][1][0], pipe.free_init)
        assert torch.allclose(calls[k][0], want, atol=1e-6)


def test_one_iteration_is_plain_sampling_and_more_change_the_clip_reproducibly(tiny_pipeline_dir, tmp_path):
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir, base_only=True)

    def run():
        return pipe("a red circle moving left", num_inference_steps=4, generator=torch.Generator().manual_seed(0))

    plain = run()
    assert "free_init" not in plain.settings
    pipe.enable_free_init(1)
    assert torch.equal(run().videos, plain.videos)
    pipe.enable_free_init(2)
    a, b = run(), run()
    assert torch.equal(a.videos, b.videos) and not torch.equal(a.videos, plain.videos)
    assert a.settings["free_init"]["num_iters"] == 2
    pipe.disable_free_init()
    assert torch.equal(run().videos, plain.videos)


@pytest.mark.parametrize("kw, word", [({"num_iters": 0}, "num_iters"), ({"num_iters": 2.5}, "num_iters"),
                                      ({"method": "box"}, "method"), ({"order": 0}, "order"),
                                      ({"spatial_stop_frequency": 0}, "spatial_stop_frequency"),
                                      ({"temporal_stop_frequency": float("nan")}, "temporal_stop_frequency"),
                                      ({"use_fast_sampling": "yes"}, "use_fast_sampling")])
def test_bad_settings_are_one_value_error(tiny_pipeline_dir, kw, word):
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir, base_only=True)
    with pytest.raises(ValueError, match=word):
        pipe.enable_free_init(**kw)
    assert pipe.free_init is None


def test_an_edit_refuses_free_init(tiny_pipeline_dir):
    pipe = VideoEditPipeline.from_pretrained(tiny_pipeline_dir, base_only=True)
    pipe.enable_free_init(2)
    video = torch.rand(1, 3, 4, 16, 16)
    with pytest.raises(ValueError, match="FreeInit"):
        pipe("a red circle moving left", video, strength=0.5, num_inference_steps=4)


def test_the_command_line_samples_with_free_init_and_records_it(tiny_pipeline_dir, tmp_path, capsys):
    from vidiff.cli import main

    for name, extra in (("plain", []), ("free", ["--free-init", "2"])):
        code = main(["generate", "a red circle moving left", "--model", str(tiny_pipeline_dir), "--steps", "3", "-q",
                     "--native-size", "-o", str(tmp_path / f"{name}.mp4"), *extra])
        assert code == 0, capsys.readouterr().err
    plain, free = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("plain", "free"))
    assert "free_init" not in plain
    assert free["free_init"]["num_iters"] == 2 and free["free_init"]["method"] == "butterworth"


def test_under_a_noise_prior_the_new_start_is_made_in_the_prior_s_space(tiny_pipeline_dir, monkeypatch):
    """The sampler runs in whitened coordinates under a frame-correlated prior (vidiff.diffusion.noise_prior): the
    result is correlated back, re-initialised with the prior's noise (the first and the generator's next draw),
    and whitened again for the next sampling."""
    from vidiff.diffusion.noise_prior import noise_prior
    from vidiff.diffusion.schedule import DiffusionConfig

    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir, base_only=True)
    pipe.diffusion = DiffusionConfig(noise_prior="mixed")
    pipe.enable_free_init(2)
    calls = []

    def fake_denoise(fn, scheduler, x, ts, **kw):
        calls.append((x.clone(), ts.clone()))
        return torch.linspace(-0.5, 0.5, x.numel()).reshape(x.shape)  # a "result" in whitened coordinates

    monkeypatch.setattr(base, "denoise", fake_denoise)
    s = pipe.settings()
    shape = pipe.sample_shape(1, s["num_frames"], s["height"], s["width"])
    pipe("a red circle moving left", num_inference_steps=4, sampler="dpm++", generator=torch.Generator().manual_seed(2))
    prior = noise_prior(pipe.diffusion, shape[2])
    g = torch.Generator().manual_seed(2)
    noise, fresh = sample_noise(pipe.diffusion, shape, g), sample_noise(pipe.diffusion, shape, g)
    assert torch.allclose(calls[0][0], prior.whiten(noise), atol=1e-5)
    sch = pipe.make_scheduler("dpm++")
    timesteps_for(sch, 4)
    result = prior.correlate(torch.linspace(-0.5, 0.5, noise.numel()).reshape(shape))
    want = prior.whiten(reinitialise(result, noise, fresh, sch, calls[1][1][0], pipe.free_init))
    assert torch.allclose(calls[1][0], want, atol=1e-5)


def test_coarse_to_fine_pastes_the_known_pixels_on_each_sampling_s_own_step_grid(tiny_conditional_dir, monkeypatch):
    """Image-to-video pastes the given frame back after every step (keep_known) at the noise level of the next step;
    with coarse-to-fine FreeInit every sampling has its own grid (3 / 6 / 9 steps), and the pasting must follow it
    (it was built once, on the first sampling's 3 steps)."""
    from vidiff.pipelines.conditional import ImageToVideoPipeline

    pipe = ImageToVideoPipeline.from_pretrained(tiny_conditional_dir, base_only=True)
    pipe.enable_free_init(3, use_fast_sampling=True)
    grids, pasted = [], []
    real_keep_known = base.keep_known

    def recording_keep_known(scheduler, timesteps, *args):
        pasted.append(len(timesteps))
        return real_keep_known(scheduler, timesteps, *args)

    def fake_denoise(fn, scheduler, x, ts, project=None, **kw):
        grids.append(len(ts))
        return x

    monkeypatch.setattr(base, "keep_known", recording_keep_known)
    monkeypatch.setattr(base, "denoise", fake_denoise)
    pipe("a red circle moving left", torch.rand(1, 3, 8, 8), num_inference_steps=9, sampler="dpm++",
         generator=torch.Generator().manual_seed(0))
    assert grids == [3, 6, 9] and pasted == grids
