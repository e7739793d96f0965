"""Video noise priors (vidiff.diffusion.noise_prior): the covariance, sampling in whitened coordinates, training."""

import json

import pytest
import torch

from conftest import make_tiny_pipeline
from vidiff.diffusion.noise_prior import NoisePrior, frame_factor, whitened
from vidiff.diffusion.sampling import denoise, timesteps_for
from vidiff.diffusion.schedule import DiffusionConfig, make_scheduler
from vidiff.pipelines.text_to_video import TextToVideoPipeline
from vidiff.training.config import config_from_dict
from vidiff.training.trainer import train
from test_training import tiny_config


def frame_correlation(x: torch.Tensor) -> torch.Tensor:
    """The (t, t) correlation between frames of x (b, c, t, h, w), over every other axis."""
    f = x.transpose(0, 2).reshape(x.shape[2], -1).double()
    return torch.corrcoef(f)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_each_frame_is_standard_normal_and_frames_correlate_as_the_prior_says(alpha):
    n = 8
    i = torch.arange(n, dtype=torch.float64)
    mixed = frame_factor("mixed", alpha, n)
    cov = mixed @ mixed.T
    want = torch.full((n, n), alpha ** 2 / (1 + alpha ** 2), dtype=torch.float64).fill_diagonal_(1.0)
    assert torch.allclose(cov, want, atol=1e-12)
    prog = frame_factor("progressive", alpha, n)
    rho = alpha / (1 + alpha ** 2) ** 0.5
    assert torch.allclose(prog @ prog.T, rho ** (i[:, None] - i[None, :]).abs(), atol=1e-12)
    assert torch.equal(prog, prog.tril()) and torch.equal(mixed, mixed.tril())
    for kind, L in (("mixed", mixed), ("progressive", prog)):  # stationary: any run of frames has the short prior
        short = frame_factor(kind, alpha, 3)
        full = L @ L.T
        assert torch.allclose(full[4:7, 4:7], short @ short.T, atol=1e-12)
    z = torch.randn(64, 4, n, 16, 16, generator=torch.Generator().manual_seed(0))
    prior = NoisePrior("mixed", alpha, n)
    got = frame_correlation(prior.correlate(z))
    assert torch.allclose(got, want, atol=0.03)
    assert torch.allclose(prior.whiten(prior.correlate(z)), z, atol=1e-5)


def test_an_ode_sampler_in_whitened_coordinates_is_the_same_process():
    """Deterministic steps are linear in the sample and the prediction: running them on y = L^-1 x with the
    prediction whitened equals running them on x. Fails if a prediction or the start is not mapped."""
    torch.manual_seed(0)
    n = 6
    mix = torch.randn(n, n) / n + torch.eye(n)  # a denoiser that mixes frames and is not linear
    fn = lambda x, t: torch.tanh(torch.einsum("ij,bcjhw->bcihw", mix, x)) * (t.float()[:, None, None, None, None] / 1000)
    prior = NoisePrior("progressive", 1.5, n)
    for sampler in ("dpm++", "ddim"):
        cfg = DiffusionConfig(noise_prior="progressive", noise_prior_alpha=1.5)
        x = prior.correlate(torch.randn(2, 3, n, 8, 8, generator=torch.Generator().manual_seed(1)))
        direct_s, white_s = make_scheduler(cfg, sampler), make_scheduler(cfg, sampler)
        direct = denoise(fn, direct_s, x, timesteps_for(direct_s, 8))
        fn_w, _, _ = whitened(prior, fn)
        white = prior.correlate(denoise(fn_w, white_s, prior.whiten(x), timesteps_for(white_s, 8)))
        assert torch.allclose(direct, white, atol=1e-4), sampler
        assert not torch.allclose(direct, x, atol=1e-2)


def zero_clip_denoiser(scheduler):
    """The exact v-prediction for data that is all zeros: x_t = sigma_t eps, so v = alpha_t eps = alpha_t / sigma_t x_t."""
    ac = scheduler.alphas_cumprod

    def fn(x, t):
        a = ac[t.long()].to(x.dtype)[:, None, None, None, None]
        return a.sqrt() / (1 - a).sqrt() * x

    return fn


def test_the_sampler_draws_its_start_and_its_fresh_noise_from_the_prior(tmp_path, tiny_text_encoder):
    """After the first DPM++ SDE step from pure noise nearly all of the sample is the step's fresh noise; on
    all-zero data the sample stays pure noise, so its frames must correlate as the prior's (0.5 at alpha 1), not
    as i.i.d. noise's (0)."""
    pipe = TextToVideoPipeline.from_pretrained(make_tiny_pipeline(tmp_path / "m", tiny_text_encoder))
    seen = {}

    def grab(p, i, t, kw):
        seen.setdefault(i, kw["latents"].clone())
        return kw

    shape = (4, 3, 8, 32, 32)
    for prior in (None, "mixed"):
        seen.clear()
        pipe.diffusion = DiffusionConfig(noise_prior=prior)
        fn = zero_clip_denoiser(pipe.make_scheduler("dpm++-sde"))
        out = pipe.sample(lambda frames: fn, shape, 10, "dpm++-sde", torch.Generator().manual_seed(0),
                          callback_on_step_end=grab)
        assert torch.allclose(out, torch.full_like(out, 0.5), atol=1e-3)  # the data: zeros, i.e. grey
        corr = frame_correlation(seen[0])
        off = corr[~torch.eye(8, dtype=torch.bool)]
        if prior is None:
            assert off.abs().max() < 0.06
        else:
            assert (off - 0.5).abs().max() < 0.06, off
            assert (frame_correlation(seen[5])[~torch.eye(8, dtype=torch.bool)] - 0.5).abs().max() < 0.06


def test_a_run_with_a_noise_prior_trains_on_its_noise_and_ships_it(tmp_path, tiny_text_dir, monkeypatch):
    import vidiff.training.trainer as trainer

    drawn, loss = [], trainer.diffusion_loss
    monkeypatch.setattr(trainer, "diffusion_loss", lambda *a, **k: drawn.append(k["noise"]) or loss(*a, **k))
    raw = tiny_config(tmp_path / "run", tiny_text_dir, steps=2, batch_size=8)
    raw["diffusion"] = {"noise_prior": "mixed", "noise_prior_alpha": 2.0}
    raw["data"]["num_frames"] = 8
    final = train(config_from_dict(raw), progress=False)
    noise = torch.cat(drawn)
    off = frame_correlation(noise)[~torch.eye(8, dtype=torch.bool)]
    assert (off - 0.8).abs().max() < 0.1, off  # alpha 2: 4 / 5
    meta = json.loads((final / "vidiff_pipeline.json").read_text())
    assert meta["diffusion"]["noise_prior"] == "mixed" and meta["diffusion"]["noise_prior_alpha"] == 2.0
    pipe = TextToVideoPipeline.from_pretrained(final)
    assert pipe.diffusion.noise_prior == "mixed"
    out = pipe("a red circle", generator=torch.Generator().manual_seed(0), output_type="pt")
    video = out.videos
    assert video.shape[2] == 8 and torch.isfinite(video).all()
    assert out.settings["noise_prior"] == {"kind": "mixed", "alpha": 2.0}  # the sidecar says how it was sampled
    plain = json.loads((final / "vidiff_pipeline.json").read_text())
    plain["diffusion"] = {k: v for k, v in plain["diffusion"].items() if not k.startswith("noise_prior")}
    (final / "vidiff_pipeline.json").write_text(json.dumps(plain))  # the same weights sampled with i.i.d. noise
    other = TextToVideoPipeline.from_pretrained(final)("a red circle", generator=torch.Generator().manual_seed(0),
                                                       output_type="pt").videos
    assert not torch.allclose(video, other, atol=1e-3)


def test_bad_noise_priors_are_one_line(tmp_path, tiny_text_encoder):
    for kw, words in (({"noise_prior": "pyoco"}, "must be one of mixed, progressive"),
                      ({"noise_prior_alpha": 1.0}, "without diffusion.noise_prior"),
                      ({"noise_prior": "mixed", "noise_prior_alpha": float("nan")}, "noise_prior_alpha must be"),
                      ({"noise_prior": "mixed", "noise_prior_alpha": -1}, "noise_prior_alpha must be")):
        with pytest.raises(ValueError, match=words):
            DiffusionConfig(**kw)
    folder = make_tiny_pipeline(tmp_path / "m", tiny_text_encoder)
    pipe = TextToVideoPipeline.from_pretrained(folder)
    pipe.diffusion = DiffusionConfig(noise_prior="mixed")
    from diffusers import DDPMScheduler

    pipe.scheduler = DDPMScheduler.from_config(pipe.scheduler.config, clip_sample=True)  # it clips: not linear
    with pytest.raises(ValueError, match="needs a scheduler without clip_sample"):
        pipe("a red circle", num_inference_steps=2)
    assert torch.isfinite(pipe("a red circle", num_inference_steps=2, sampler="ddpm", output_type="pt").videos).all()
    meta = json.loads((folder / "vidiff_pipeline.json").read_text())
    meta["diffusion"]["noise_prior"] = "brownian"
    (folder / "vidiff_pipeline.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="vidiff_pipeline.json.*noise_prior must be one of"):
        TextToVideoPipeline.from_pretrained(folder)
