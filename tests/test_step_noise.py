"""Correlated step noise (vidiff.diffusion.step_noise): the fresh noise of a stochastic sampler's low-noise steps
correlated across frames, the other steps' draw for draw as before."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers.utils.torch_utils import randn_tensor

from vidiff.diffusion.sampling import denoise, timesteps_for
from vidiff.diffusion.schedule import DiffusionConfig, make_scheduler
from vidiff.diffusion.step_noise import DEFAULT_CORRELATION, DEFAULT_MAX_T, StepNoise
from vidiff.pipelines.text_to_video import TextToVideoPipeline


def test_the_noise_is_unit_per_frame_and_correlated_by_the_setting_below_max_t_only():
    noise = StepNoise(0.8, 500)
    g = torch.Generator().manual_seed(0)
    shape = (32, 3, 6, 16, 16)
    z = noise.draw(torch.tensor(499), shape, g, "cpu", torch.float32)
    frames = z.permute(2, 0, 1, 3, 4).reshape(6, -1)
    assert torch.allclose(frames.std(dim=1), torch.ones(6), atol=0.03)
    c = torch.corrcoef(frames)
    off = c[~torch.eye(6, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, 0.8), atol=0.03)
    # drawn as the scheduler draws its own: the generator moves on by one draw of the sample's shape
    g2 = torch.Generator().manual_seed(0)
    randn_tensor(shape, generator=g2, dtype=torch.float32)
    assert torch.equal(torch.randn(4, generator=g), torch.randn(4, generator=g2))
    assert noise.draw(torch.tensor(500), shape, g, "cpu", torch.float32) is None  # at max_t: the scheduler's own
    assert noise.draw(0, (2, 3, 1, 8, 8), g, "cpu", torch.float32) is None  # one frame: nothing to correlate
    assert StepNoise().as_dict() == {"correlation": DEFAULT_CORRELATION, "max_t": DEFAULT_MAX_T}


@pytest.mark.parametrize("kw, word", [({"correlation": 0}, "correlation"), ({"correlation": 1.0}, "correlation"),
                                      ({"correlation": float("nan")}, "correlation"),
                                      ({"correlation": True}, "correlation"), ({"correlation": "0.5"}, "correlation"),
                                      ({"max_t": 0}, "max_t"), ({"max_t": 2.5}, "max_t"), ({"max_t": True}, "max_t")])
def test_bad_settings_are_one_value_error(tiny_pipeline_dir, kw, word):
    with pytest.raises(ValueError, match=word):
        StepNoise(**kw)
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir, base_only=True)
    with pytest.raises(ValueError, match=word):
        pipe.enable_correlated_step_noise(**kw)
    assert pipe.step_noise is None


@pytest.mark.parametrize("sampler, eta", [("dpm++-sde", 0.0), ("ddim", 1.0)])
def test_the_sampler_adds_frame_correlated_noise_where_asked_and_its_own_elsewhere(sampler, eta):
    """A denoiser that predicts nothing, from a clip whose frames are all equal: what makes the frames differ is the
    noise the steps add. Correlated by rho, the frames' differences shrink to (1 - rho) of their variance; the steps
    at or above max_t are the i.i.d. sampling's, bit for bit."""
    cfg = DiffusionConfig()
    x0 = torch.randn(8, 3, 1, 8, 8).expand(8, 3, 6, 8, 8).contiguous()

    def run(step_noise):
        sch = make_scheduler(cfg, sampler)
        ts = timesteps_for(sch, 10)
        seen = []
        out = denoise(lambda x, t: torch.zeros_like(x), sch, x0.clone(), ts, eta=eta, step_noise=step_noise,
                      generator=torch.Generator().manual_seed(1), callback=lambda i, t, x: seen.append(x) or x)
        return out, ts, seen

    iid, ts, iid_steps = run(None)
    corr, _, _ = run(StepNoise(0.8, 1000))
    spread = (corr.diff(dim=2).var() / iid.diff(dim=2).var()).item()
    assert 0.1 < spread < 0.3, spread  # 1 - 0.8
    half = len(ts) // 2
    some, _, some_steps = run(StepNoise(0.8, int(ts[half - 1])))  # the steps from `half` on are below max_t
    for i in range(half):  # the steps at or above max_t: the i.i.d. sampling's, bit for bit
        assert torch.equal(some_steps[i], iid_steps[i])
    assert not torch.equal(some_steps[half], iid_steps[half])
    assert not torch.equal(some, corr)


def test_the_pipeline_samples_with_it_records_it_and_carries_it(tiny_pipeline_dir):
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir, base_only=True)

    def run(p=pipe, **kw):
        return p("a red circle moving left", num_inference_steps=4, sampler="dpm++-sde",
                 generator=torch.Generator().manual_seed(0), **kw)

    plain = run()
    assert "correlated_step_noise" not in plain.settings
    pipe.enable_correlated_step_noise(0.9, 1000)
    a, b = run(), run()
    assert torch.equal(a.videos, b.videos) and not torch.equal(a.videos, plain.videos)
    assert a.settings["correlated_step_noise"] == {"correlation": 0.9, "max_t": 1000}
    assert TextToVideoPipeline.from_pipe(pipe).step_noise == pipe.step_noise
    pipe.disable_correlated_step_noise()
    assert torch.equal(run().videos, plain.videos)


@pytest.mark.parametrize("sampler, eta, word", [("dpm++", 0.0, "dpm\\+\\+-sde"), ("ddim", 0.0, "eta 0"),
                                                ("ddpm", 0.0, "takes none")])
def test_a_sampler_without_noise_of_ours_to_add_is_refused(tiny_pipeline_dir, sampler, eta, word):
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir, base_only=True)
    pipe.enable_correlated_step_noise()
    with pytest.raises(ValueError, match=word):
        pipe("a red circle", num_inference_steps=3, sampler=sampler, eta=eta)


def test_a_model_with_a_noise_prior_and_a_max_t_past_its_timesteps_are_refused(tiny_pipeline_dir):
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir, base_only=True)
    with pytest.raises(ValueError, match="1..1000"):  # refused when asked for
        pipe.enable_correlated_step_noise(0.8, 1001)
    assert pipe.step_noise is None
    pipe.step_noise = StepNoise(0.8, 1001)  # and when it samples, set by hand
    with pytest.raises(ValueError, match="1..1000"):
        pipe("a red circle", num_inference_steps=3, sampler="dpm++-sde")
    pipe.enable_correlated_step_noise()
    pipe.diffusion = DiffusionConfig(noise_prior="mixed")
    with pytest.raises(ValueError, match="noise prior \\(mixed\\)"):
        pipe("a red circle", num_inference_steps=3, sampler="dpm++-sde")


def test_the_command_line_takes_it_records_it_and_refuses_bad_values(tiny_pipeline_dir, tmp_path, capsys):
    from vidiff.cli import main

    def gen(name, *extra):
        return main(["generate", "a red circle moving left", "--model", str(tiny_pipeline_dir), "--steps", "3", "-q",
                     "--native-size", "-o", str(tmp_path / f"{name}.mp4"), *extra])

    assert gen("ok", "--sampler", "dpm++-sde", "--correlated-noise", "0.7", "--correlated-noise-max-t", "600") == 0
    assert json.loads((tmp_path / "ok.json").read_text())["correlated_step_noise"] == {"correlation": 0.7, "max_t": 600}
    capsys.readouterr()
    for name, extra, word in (("rho", ["--correlated-noise", "1.5"], "--correlated-noise must be a number in (0, 1)"),
                              ("maxt", ["--correlated-noise-max-t", "300"], "give --correlated-noise too"),
                              ("zero", ["--correlated-noise", "0.8", "--correlated-noise-max-t", "0"],
                               "--correlated-noise-max-t must be a timestep"),
                              ("past", ["--correlated-noise", "0.8", "--correlated-noise-max-t", "5000"],
                               "--correlated-noise-max-t must be a timestep in 1..1000"),
                              ("ode", ["--sampler", "dpm++", "--correlated-noise", "0.8"], "dpm++-sde")):
        assert gen(name, *extra) == 2
        err = capsys.readouterr().err.strip()
        assert word in err and len(err.splitlines()) == 1, err
        assert not list(tmp_path.glob(f"{name}.*"))
