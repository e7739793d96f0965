import pytest
import torch

from vidiff.diffusion.sampling import classifier_free_guidance, denoise, timesteps_for
from vidiff.diffusion.schedule import DiffusionConfig, diffusion_loss, make_scheduler, shift_timesteps

MU, SIGMA = 0.3, 0.2


def analytic_denoiser(scheduler, prediction_type):
    """The exact posterior-mean denoiser for data x0 ~ N(MU, SIGMA^2) elementwise."""
    ac_all = scheduler.alphas_cumprod

    def fn(x, t):
        ac = ac_all[t.long()].view(-1, *([1] * (x.dim() - 1)))
        a, s = ac.sqrt(), (1 - ac).sqrt()
        x0 = MU + a * SIGMA**2 / (a**2 * SIGMA**2 + s**2) * (x - a * MU)
        eps = (x - a * x0) / s
        return {"v_prediction": a * eps - s * x0, "epsilon": eps, "sample": x0}[prediction_type]

    return fn


@pytest.mark.parametrize("sampler,steps,logsnr_min", [("dpm++", 20, None), ("dpm++", 20, -8.5), ("dpm++", 10, -8.5),
                                                       ("dpm++-sde", 25, -8.5), ("ddim", 100, None), ("ddpm", 500, None)])
@pytest.mark.parametrize("prediction_type", ["v_prediction", "epsilon", "sample"])
def test_samplers_recover_an_analytic_gaussian(sampler, steps, logsnr_min, prediction_type):
    cfg = DiffusionConfig(prediction_type=prediction_type)
    sch = make_scheduler(cfg, sampler, logsnr_min=logsnr_min)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 1, 2, 2, 2, generator=g) * sch.init_noise_sigma
    out = denoise(analytic_denoiser(sch, prediction_type), sch, x, timesteps_for(sch, steps), generator=g)
    assert out.mean().item() == pytest.approx(MU, abs=0.01)
    assert out.std().item() == pytest.approx(SIGMA, rel=0.06)


def test_dpm_steps_are_spent_below_the_pure_noise_end():
    """diffusers' log-SNR spacing from t = 999 puts 10 of 25 cosine-schedule steps at t >= 990, where the clip is
    pure noise; vidiff's spacing starts its grid at log-SNR -8.5 (t = 990) and puts one step there."""
    from diffusers import DPMSolverMultistepScheduler

    lu = DPMSolverMultistepScheduler(**DiffusionConfig().schedule(), use_lu_lambdas=True, final_sigmas_type="zero")
    lu.set_timesteps(25)
    assert (lu.timesteps >= 990).sum() >= 9
    sch = make_scheduler(DiffusionConfig(), "dpm++", logsnr_min=-8.5)
    for n in (1, 2, 3, 10, 12, 25, 50):
        ts = timesteps_for(sch, n)
        assert len(ts) == n and ts[0] == 999 and bool((ts[1:] < ts[:-1]).all()) and (ts >= 990).sum() == 1
    assert len(timesteps_for(sch, 200)) < 200  # past ~50 steps the grid is finer than the training timesteps
    import pickle

    copy = type(sch).from_config(sch.config)  # what a pipeline makes for every call
    assert timesteps_for(copy, 12).tolist() == timesteps_for(sch, 12).tolist()
    assert timesteps_for(pickle.loads(pickle.dumps(sch)), 12).tolist() == timesteps_for(sch, 12).tolist()


def test_dpm_solver_is_imported_without_scipy_stats_and_its_beta_sigmas_still_work():
    """scipy.stats (about 1 s of a cold generate) loads only when diffusers' beta-sigma option is used, and that option
    gives what it gives in a process that imported scipy.stats first; the schedulers that need scipy stay real."""
    import subprocess
    import sys

    beta = ("from diffusers.schedulers.scheduling_dpmsolver_multistep import DPMSolverMultistepScheduler as D\n"
            "b = D(use_beta_sigmas=True); b.set_timesteps(10); print(b.timesteps.tolist(), b.sigmas.tolist())\n")
    deferred = ("import sys\nfrom vidiff.diffusion.schedule import DiffusionConfig, make_scheduler\n"
                "make_scheduler(DiffusionConfig(), 'dpm++-sde', logsnr_min=-8.5).set_timesteps(20)\n"
                "make_scheduler(DiffusionConfig(), 'dpm++').set_timesteps(20)\n"
                "print('scipy.stats' in sys.modules)\n" + beta +
                "from diffusers import LMSDiscreteScheduler; LMSDiscreteScheduler().set_timesteps(5); print('lms ok')\n")
    first = "import scipy.stats\n" + beta

    def run(code):
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()

    out, ref = run(deferred), run(first)
    assert out[0] == "False" and out[1] == ref[0] and out[2] == "lms ok"


def test_two_threads_importing_the_dpm_solver_at_once_leave_diffusers_scipy_check_real():
    """The import switches diffusers' scipy check off for a moment; a second thread entering meanwhile must not take
    the stand-in for the real check and put it back for good (the import is slowed so the two overlap)."""
    import subprocess
    import sys

    code = ("import importlib, threading, time, sys\n"
            "import diffusers.utils\n"
            "from vidiff.diffusion import schedule\n"
            "real = diffusers.utils.is_scipy_available\n"
            "original = importlib.import_module\n"
            "def slow(name, *a):\n"
            "    if name == schedule.DPM_SOLVER_MODULE and name not in sys.modules:\n"
            "        time.sleep(0.5)\n"
            "    return original(name, *a)\n"
            "importlib.import_module = slow\n"
            "mods = []\n"
            "threads = [threading.Thread(target=lambda: mods.append(schedule.dpm_solver_module())) for _ in range(2)]\n"
            "for t in threads: t.start(); time.sleep(0.1)\n"
            "for t in threads: t.join()\n"
            "print(diffusers.utils.is_scipy_available is real, real(), mods[0] is mods[1],\n"
            "      mods[0].is_scipy_available is real)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "True", "True"]


def test_a_fresh_scheduler_equals_from_config_and_a_default_clip_imports_no_scipy_stats():
    """A pipeline call's scheduler is built from the pipeline's without diffusers' from_config, which imports every
    compatible scheduler and scipy.stats (about 1 s cold); same class, same config, none of the used one's state."""
    import subprocess
    import sys

    from diffusers import DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler, UniPCMultistepScheduler

    from vidiff.diffusion.schedule import fresh_scheduler

    cfg = DiffusionConfig()
    for sch in (make_scheduler(cfg, "dpm++-sde", logsnr_min=-8.5), make_scheduler(cfg, "dpm++"),
                make_scheduler(cfg, "ddpm"), DDIMScheduler(**cfg.schedule(), timestep_spacing="trailing"),
                DDPMScheduler.from_config({**DDPMScheduler().config, "some_other_key": 1}),
                EulerDiscreteScheduler(**cfg.schedule()), UniPCMultistepScheduler(solver_order=3)):
        sch.set_timesteps(7)
        new, ref = fresh_scheduler(sch), type(sch).from_config(sch.config)
        assert type(new) is type(sch) and dict(new.config) == dict(ref.config)
        assert new.num_inference_steps is None and new is not sch
        new.set_timesteps(9)
        ref.set_timesteps(9)
        assert new.timesteps.tolist() == ref.timesteps.tolist() and len(sch.timesteps) == 7
    code = ("import sys, torch\nfrom vidiff import TextToVideoPipeline\n"
            "pipe = TextToVideoPipeline.from_pretrained('default')\n"
            "out = pipe('a red circle moving left', num_inference_steps=2, generator=torch.Generator().manual_seed(0))\n"
            "print(tuple(out.frames.shape), 'scipy.stats' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == "False", out


def test_sdedit_strength_zero_returns_the_input_and_partial_starts_late():
    sch = make_scheduler(DiffusionConfig(), "ddim")
    assert len(timesteps_for(sch, 20, strength=0.0)) == 0
    ts = timesteps_for(sch, 20, strength=0.5)
    assert len(ts) == 10 and ts[0] < 600
    # the start is a point in diffusion time, whatever the spacing (DPM++ spaces its steps in log-SNR)
    dpm = make_scheduler(DiffusionConfig(), "dpm++")
    ts = timesteps_for(dpm, 25, strength=0.6)
    assert 0 < len(ts) < 25 and ts.max() <= 600


def test_loss_is_zero_for_the_exact_target_and_weighted():
    cfg = DiffusionConfig(min_snr_gamma=5.0)
    sch = make_scheduler(cfg, "ddpm")
    x0 = torch.randn(4, 3, 2, 4, 4)
    noise = torch.randn_like(x0)
    t = torch.tensor([0, 10, 500, 999])
    v = sch.get_velocity(x0, noise, t)
    assert torch.allclose(diffusion_loss(lambda x, tt: v, x0, sch, cfg, timesteps=t, noise=noise), torch.zeros(4), atol=1e-10)
    wrong = diffusion_loss(lambda x, tt: torch.zeros_like(x), x0, sch, cfg, timesteps=t, noise=noise)
    plain = diffusion_loss(lambda x, tt: torch.zeros_like(x), x0, sch, DiffusionConfig(min_snr_gamma=None), timesteps=t, noise=noise)
    assert (wrong <= plain + 1e-6).all() and wrong[0] < plain[0]  # min-SNR down-weights v-loss everywhere


def test_x0_prediction_loss_targets_the_clean_sample():
    cfg = DiffusionConfig(prediction_type="sample")
    sch = make_scheduler(cfg, "ddpm")
    x0, noise, t = torch.randn(3, 3, 2, 4, 4), torch.randn(3, 3, 2, 4, 4), torch.tensor([0, 500, 999])
    assert torch.allclose(diffusion_loss(lambda x, tt: x0, x0, sch, cfg, timesteps=t, noise=noise), torch.zeros(3))
    assert (diffusion_loss(lambda x, tt: x, x0, sch, cfg, timesteps=t, noise=noise) > 0).all()


def test_pixel_weight_scales_the_error_where_it_is_set():
    cfg = DiffusionConfig(prediction_type="sample")
    sch = make_scheduler(cfg, "ddpm")
    x0, t = torch.randn(2, 3, 2, 4, 4), torch.tensor([100, 900])
    pred = lambda x, tt: x0 + 1.0  # error 1 everywhere  # noqa: E731
    w = torch.ones(2, 1, 2, 4, 4)
    w[:, :, 0] = 3.0  # frame 0 weighs 3
    assert torch.allclose(diffusion_loss(pred, x0, sch, cfg, timesteps=t, pixel_weight=w), torch.full((2,), 2.0))


def test_the_temporal_difference_term_weighs_what_changes_between_frames():
    cfg = DiffusionConfig(prediction_type="sample")
    sch = make_scheduler(cfg, "ddpm")
    x0, t = torch.randn(2, 3, 4, 4, 4), torch.tensor([100, 900])
    still = lambda x, tt: x0 + 1.0  # the same error in every frame: no frame-to-frame difference  # noqa: E731
    flicker = torch.tensor([1.0, -1.0, 1.0, -1.0]).view(1, 1, 4, 1, 1)
    jumping = lambda x, tt: x0 + flicker  # noqa: E731
    for w in (0.0, 1.0, 2.5):
        loss = lambda fn: diffusion_loss(fn, x0, sch, cfg, timesteps=t, temporal_weight=w)  # noqa: E731
        assert torch.allclose(loss(still), torch.ones(2))
        assert torch.allclose(loss(jumping), torch.full((2,), 1.0 + w * 4.0))  # each difference is 2: squared 4
    image = torch.randn(2, 3, 1, 4, 4)  # one frame: nothing to difference
    assert torch.allclose(diffusion_loss(lambda x, tt: image + 1.0, image, sch, cfg, timesteps=t, temporal_weight=3.0),
                          torch.ones(2))


@pytest.mark.parametrize("shift", [2.0, 3.0])
def test_timestep_shift_moves_training_noise_by_two_log_shift(shift):
    import math

    sch = make_scheduler(DiffusionConfig(), "ddpm")
    t = torch.arange(1000)
    assert torch.equal(shift_timesteps(t, sch, 1.0), t)
    s = shift_timesteps(t, sch, shift)
    assert (s[1:] >= s[:-1]).all() and (s >= t).all()  # monotone, toward more noise
    ac = sch.alphas_cumprod.double()
    logsnr = (ac / (1 - ac)).log()
    inside = (t > 50) & (s < 990)  # away from the ends, where the schedule's log-SNR is steep
    gap = logsnr[t[inside]] - logsnr[s[inside]]
    err = (gap - 2 * math.log(shift)).abs()
    assert err.max() < 0.15 and err.mean() < 0.02  # nearest integer timestep: within half a step's log-SNR
    # the band where a clip's trajectory is decided (SDEdit keeps it from t = 809, drifts 2-5 px from t = 895-942)
    band = lambda u: ((u >= 850) & (u < 970)).float().mean()  # noqa: E731
    assert band(s) > (1.5 if shift == 2.0 else 2.5) * band(t)  # 12% of uniform draws; 23% (shift 2), 31% (shift 3)


def test_a_timestep_shift_under_one_moves_training_noise_towards_the_clean_end():
    import math

    sch = make_scheduler(DiffusionConfig(), "ddpm")
    t = torch.arange(1000)
    s = shift_timesteps(t, sch, 0.5)
    assert (s[1:] >= s[:-1]).all() and (s <= t).all() and (s < t).float().mean() > 0.9
    ac = sch.alphas_cumprod.double()
    logsnr = (ac / (1 - ac)).log()
    inside = (s > 50) & (t < 990)
    assert ((logsnr[s[inside]] - logsnr[t[inside]]) - 2 * math.log(2.0)).abs().mean() < 0.02


def test_guidance_scale_one_and_zero_pick_one_branch():
    calls = []

    def model(x, t, text, mask, cond=None):
        calls.append(text.shape[0])
        return text.mean((1, 2)).view(-1, 1, 1, 1, 1) + 0 * x

    text, null = torch.ones(2, 3, 4), torch.zeros(1, 2, 4)
    tm, nm = torch.ones(2, 3, dtype=torch.bool), torch.ones(1, 2, dtype=torch.bool)
    x = torch.zeros(2, 1, 1, 1, 1)
    assert torch.all(classifier_free_guidance(model, text, tm, null, nm, 1.0)(x, torch.zeros(2)) == 1)
    assert torch.all(classifier_free_guidance(model, text, tm, null, nm, 0.0)(x, torch.zeros(2)) == 0)
    out = classifier_free_guidance(model, text, tm, null, nm, 3.0)(x, torch.zeros(2))
    # padded text: mean over 3 tokens of ones = 1, null padded to 3 tokens of zeros = 0 -> 0 + 3 * (1 - 0)
    assert torch.allclose(out, torch.full_like(out, 3.0)) and calls[-1] == 4


def test_guidance_on_the_conditioning_video():
    # eps = 10 * [text given] + 100 * [cond given] + 1000 * [both], per sample
    def model(x, t, text, mask, cond):
        has_text = (text.abs().sum((1, 2)) > 0).float()
        has_cond = (cond.abs().sum((1, 2, 3, 4)) > 0).float()
        return (10 * has_text + 100 * has_cond + 1000 * has_text * has_cond).view(-1, 1, 1, 1, 1) + 0 * x

    text, null = torch.ones(2, 3, 4), torch.zeros(1, 3, 4)
    tm, nm = torch.ones(2, 3, dtype=torch.bool), torch.ones(1, 3, dtype=torch.bool)
    cond, x, t = torch.ones(2, 4, 1, 1, 1), torch.zeros(2, 1, 1, 1, 1), torch.zeros(2)
    # cond_scale 1: both branches see the conditioning: 100 + 3 * (1110 - 100)
    plain = classifier_free_guidance(model, text, tm, null, nm, 3.0, cond=cond)(x, t)
    assert torch.allclose(plain, torch.full_like(plain, 100 + 3 * 1010.0))
    assert torch.equal(classifier_free_guidance(model, text, tm, null, nm, 3.0, cond=cond, cond_scale=1.0)(x, t), plain)
    # two scales: none + 2 * (given - none) + 3 * (both - given) = 0 + 2 * 100 + 3 * 1010
    two = classifier_free_guidance(model, text, tm, null, nm, 3.0, cond=cond, cond_scale=2.0)(x, t)
    assert torch.allclose(two, torch.full_like(two, 200 + 3 * 1010.0))


@pytest.mark.parametrize("phi", [0.0, 0.3, 0.7, 1.0])
def test_rescaled_guidance_is_diffusers_rescale_noise_cfg(phi):
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

    from vidiff.diffusion.sampling import rescale_guidance

    g = torch.Generator().manual_seed(0)
    guided, cond = torch.randn(3, 4, 5, 6, 6, generator=g) * 3, torch.randn(3, 4, 5, 6, 6, generator=g)
    ours = rescale_guidance(guided, cond, phi)
    assert torch.allclose(ours, rescale_noise_cfg(guided, cond, guidance_rescale=phi), atol=1e-6)
    if phi == 1.0:  # each clip's spread is the conditional prediction's
        assert torch.allclose(ours.std(dim=(1, 2, 3, 4)), cond.std(dim=(1, 2, 3, 4)), atol=1e-5)


def test_guidance_rescale_acts_on_the_guided_prediction():
    # per sample: the text branch gives 2 + x-noise, the null branch 0: guided = 3 * text; rescaled back to text's spread
    def model(x, t, text, mask, cond=None):
        has_text = (text.abs().sum((1, 2)) > 0).float().view(-1, 1, 1, 1, 1)
        return has_text * (2 + x)

    text, null = torch.ones(2, 3, 4), torch.zeros(1, 3, 4)
    tm, nm = torch.ones(2, 3, dtype=torch.bool), torch.ones(1, 3, dtype=torch.bool)
    x, t = torch.randn(2, 1, 2, 3, 3, generator=torch.Generator().manual_seed(1)), torch.zeros(2)
    plain = classifier_free_guidance(model, text, tm, null, nm, 3.0)(x, t)
    assert torch.allclose(plain, 3 * (2 + x))
    full = classifier_free_guidance(model, text, tm, null, nm, 3.0, rescale=1.0)(x, t)
    assert torch.allclose(full, (2 + x), atol=1e-5)  # 3 * (2 + x) scaled by std(2 + x) / std(3 (2 + x)) = 1/3
    half = classifier_free_guidance(model, text, tm, null, nm, 3.0, rescale=0.5)(x, t)
    assert torch.allclose(half, 2 * (2 + x), atol=1e-5)
    cond = torch.ones(2, 4, 2, 3, 3)  # the two-scale form rescales towards the branch with text and video
    two = classifier_free_guidance(model, text, tm, null, nm, 3.0, cond=cond, cond_scale=2.0, rescale=1.0)(x, t)
    assert torch.allclose(two, (2 + x), atol=1e-5)


def test_eta_reaches_ddim_and_is_refused_elsewhere():
    from vidiff.diffusion.sampling import check_eta

    cfg = DiffusionConfig()
    ddim = make_scheduler(cfg, "ddim")
    check_eta(ddim, 1.0)
    for sampler in ("dpm++", "dpm++-sde", "ddpm"):
        check_eta(make_scheduler(cfg, sampler), 0.0)
        with pytest.raises(ValueError, match="eta=0.5 is DDIM's"):
            check_eta(make_scheduler(cfg, sampler), 0.5)
    fn = analytic_denoiser(ddim, cfg.prediction_type)
    x = torch.randn(2, 1, 2, 4, 4, generator=torch.Generator().manual_seed(0))

    def run(eta, seed):
        ts = timesteps_for(ddim, 6)
        return denoise(fn, ddim, x.clone(), ts, generator=torch.Generator().manual_seed(seed), eta=eta)

    assert torch.equal(run(0.0, 0), run(0.0, 1))  # deterministic DDIM: the generator is not drawn from
    assert torch.equal(run(1.0, 0), run(1.0, 0)) and not torch.allclose(run(1.0, 0), run(1.0, 1))


def test_unknown_sampler_is_a_value_error():
    with pytest.raises(ValueError, match="allowed"):
        make_scheduler(DiffusionConfig(), "euler-x")


def test_a_folder_chooses_its_dpm_step_spacing(tmp_path, tiny_text_encoder):
    import json

    from conftest import make_tiny_pipeline
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    spaced = make_tiny_pipeline(tmp_path / "spaced", tiny_text_encoder, defaults={"logsnr_min": -8.5})
    plain = make_tiny_pipeline(tmp_path / "plain", tiny_text_encoder)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = TextToVideoPipeline.from_pretrained(spaced)
    b = TextToVideoPipeline.from_pretrained(plain)
    out_a, out_b = a("a red circle", generator=g()), b("a red circle", generator=g())
    assert out_a.settings["logsnr_min"] == -8.5 and out_a.settings["sampler"] == "dpm++"
    assert "logsnr_min" not in out_b.settings
    assert a("a red circle", generator=g(), sampler="dpm++").settings["logsnr_min"] == -8.5  # named: same spacing
    assert not torch.equal(out_a.videos, out_b.videos)  # other timesteps, other clip
    meta = json.loads((spaced / "vidiff_pipeline.json").read_text())
    meta["defaults"]["logsnr_min"] = "low"
    (spaced / "vidiff_pipeline.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="logsnr_min"):
        TextToVideoPipeline.from_pretrained(spaced)


def test_a_folder_can_guide_only_the_noisier_steps(tmp_path, tiny_text_encoder):
    """guidance_min_t: the guided batch (null and caption, 2 clips a caption) on the steps with t >= it, the caption
    alone (1) below; the result equals a denoiser built by hand that way, and the sidecar says so."""
    import json

    from conftest import make_tiny_pipeline
    from vidiff.diffusion.sampling import classifier_free_guidance, guidance_from
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    folder = make_tiny_pipeline(tmp_path / "cut", tiny_text_encoder, defaults={"guidance_min_t": 400, "guidance_scale": 3.0})
    pipe = TextToVideoPipeline.from_pretrained(folder)
    seen = []
    pipe.unet.register_forward_pre_hook(lambda m, a: seen.append((a[0].shape[0], int(a[1].flatten()[0]))))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    out = pipe("a red circle", generator=g(), num_inference_steps=6)
    assert len(seen) == 6 and all(b == (2 if t >= 400 else 1) for b, t in seen), seen
    assert {b for b, _ in seen} == {1, 2}
    assert out.settings["guidance_min_t"] == 400

    own = pipe.denoiser  # put back after the hand-made denoiser below
    pipe.defaults["guidance_min_t"] = None
    seen.clear()
    full = pipe("a red circle", generator=g(), num_inference_steps=6)
    assert all(b == 2 for b, _ in seen) and "guidance_min_t" not in full.settings
    assert not torch.equal(full.videos, out.videos)

    # the cut made here, not by the folder
    def by_hand(prompts, guidance, negative_prompt="", cond=None, cond_scale=1.0, embeds=None, rescale=0.0):
        text, mask = pipe.text_encoder.encode(prompts)
        null, null_mask = pipe.text_encoder.encode([negative_prompt])
        fn = guidance_from(classifier_free_guidance(pipe.unet, text, mask, null, null_mask, guidance),
                           classifier_free_guidance(pipe.unet, text, mask, null, null_mask, 1.0), 400)
        return lambda frames=None: fn

    pipe.denoiser = by_hand
    assert torch.allclose(pipe("a red circle", generator=g(), num_inference_steps=6).videos, out.videos, atol=1e-6)
    pipe.denoiser = own
    pipe.defaults["guidance_min_t"] = "late"  # set by a library user: the call says what is allowed
    with pytest.raises(ValueError, match="guidance_min_t.*0..1000"):
        pipe("a red circle", num_inference_steps=2)
    for bad in ("late", -1, 1001, float("nan"), True):
        meta = json.loads((folder / "vidiff_pipeline.json").read_text())
        meta["defaults"]["guidance_min_t"] = bad
        (folder / "vidiff_pipeline.json").write_text(json.dumps(meta))
        with pytest.raises(ValueError, match="guidance_min_t"):
            TextToVideoPipeline.from_pretrained(folder)


def test_a_folder_can_sample_with_dpm_sde_reproducibly_from_its_generator(tmp_path, tiny_text_encoder):
    from conftest import make_tiny_pipeline
    from vidiff.diffusion.schedule import sampler_name
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    folder = make_tiny_pipeline(tmp_path / "sde", tiny_text_encoder, defaults={"sampler": "dpm++-sde", "logsnr_min": -8.5})
    pipe = TextToVideoPipeline.from_pretrained(folder)
    assert sampler_name(pipe.scheduler) == "dpm++-sde" and pipe.scheduler.config.algorithm_type == "sde-dpmsolver++"
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    latents = torch.randn(1, 3, 4, 8, 8, generator=g(5))
    a = pipe("a red circle", generator=g(0), latents=latents, num_inference_steps=4)
    b = pipe("a red circle", generator=g(0), latents=latents, num_inference_steps=4)
    c = pipe("a red circle", generator=g(1), latents=latents, num_inference_steps=4)
    ode = pipe("a red circle", generator=g(0), latents=latents, num_inference_steps=4, sampler="dpm++")
    assert torch.equal(a.videos, b.videos)  # the same generator: the same clip
    assert not torch.equal(a.videos, c.videos)  # the steps draw fresh noise from it
    assert not torch.equal(a.videos, ode.videos)
    assert a.settings["sampler"] == "dpm++-sde" and a.settings["logsnr_min"] == -8.5
    assert ode.settings["sampler"] == "dpm++"


def test_a_diffusers_scheduler_swapped_in_gets_its_scaled_input_and_a_nan_clip_is_refused(tiny_pipeline_dir):
    """pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config), the diffusers idiom: the model
    was fed the unscaled sample (|x| ~ 10^5 at the first step of this noise schedule) and made garbage; Euler
    ancestral's step makes NaN on this schedule (diffusers' own), which became a black clip without a word."""
    from diffusers import EulerDiscreteScheduler

    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    seen, forward = [], pipe.unet.forward

    def recording(x, *a, **k):
        seen.append(float(x.abs().max()))
        return forward(x, *a, **k)

    pipe.unet.forward = recording
    out = pipe("a red circle", num_inference_steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.videos).all() and seen[0] < 10, seen[:1]  # the scaled sample, about unit variance
    pipe.unet.forward = forward

    def nan_at_the_end(pipe, i, t, kw):  # what Euler ancestral's step does on this schedule (4 steps), for certain
        return {"latents": kw["latents"] * float("nan")} if i == 2 else None

    with pytest.raises(ValueError, match="NaN or infinite values .scheduler EulerDiscreteScheduler.*nothing was written"):
        pipe("a red circle", num_inference_steps=3, generator=torch.Generator().manual_seed(0),
             callback_on_step_end=nan_at_the_end)


@pytest.mark.parametrize("change", [{"prediction_type": "epsilon"}, {"beta_schedule": "scaled_linear"},
                                    {"num_train_timesteps": 500}])
def test_a_scheduler_of_another_noise_process_is_refused(tiny_pipeline_dir, change):
    """DDIMScheduler() (diffusers' defaults: epsilon, linear betas) or a config changed on the way sampled this
    v-prediction cosine-schedule model into garbage without a word."""
    from diffusers import DDIMScheduler

    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, **change)
    (key, value), = change.items()
    with pytest.raises(ValueError, match=f"pipe.scheduler has {key}={value!r}; this model was trained with"):
        pipe("a red circle", num_inference_steps=2)
