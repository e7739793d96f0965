"""Self-conditioning: the U-Net's input for its own previous estimate, training with it, sampling with it."""

import json

import pytest
import torch
from diffusers import DDPMScheduler
from safetensors.torch import load_file

from vidiff.diffusion.schedule import predicted_x0
from vidiff.diffusion.self_condition import SelfConditioned
from vidiff.models.surgery import INPUT_CONV, add_self_condition, widen_input
from vidiff.models.unet import build_unet


def _perturbed(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def _inputs(b=2):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(b, 3, 4, 8, 8, generator=g), torch.tensor([900, 300][:b]), torch.randn(b, 3, 8, generator=g))


def test_adding_self_conditioning_leaves_the_model_unchanged_until_trained():
    src = _perturbed(build_unet("stunet-tiny"))
    sc = add_self_condition(src)
    assert sc.config.self_condition and not src.config.self_condition
    x, t, text = _inputs()
    with torch.no_grad():
        ref = src(x, t, text)
        assert torch.equal(sc(x, t, text), ref)  # no estimate: zeros
        assert torch.equal(sc(x, t, text, self_cond=torch.randn_like(x)), ref)  # new weights zero
        _perturbed(sc, 1)
        assert not torch.allclose(sc(x, t, text, self_cond=torch.randn_like(x)), sc(x, t, text))  # read once trained
    assert sc.state_dict()[INPUT_CONV].shape[1] == 2 * src.state_dict()[INPUT_CONV].shape[1]
    with pytest.raises(ValueError, match="without self-conditioning"):
        src(x, t, text, self_cond=x)
    x4 = torch.randn(2, 4, 4, 8, 8)
    with torch.no_grad():  # conditioning channels added later go before the estimate's: still the source
        assert torch.equal(widen_input(sc, 4)(x, t, text, cond=x4, self_cond=x), sc(x, t, text, self_cond=x))
    with pytest.raises(ValueError, match="self_condition must be true or false"):
        build_unet("stunet-tiny", self_condition="yes")


def test_a_conditional_model_reads_its_conditioning_and_its_estimate_apart():
    """With conditioning channels and an adapter, the estimate enters after <x, cond> and the adapter reads
    only the conditioning."""
    src = _perturbed(build_unet("stunet-tiny", cond_channels=4, cond_adapter_channels=8))
    sc = add_self_condition(src)
    x, t, text = _inputs()
    cond = torch.randn(2, 4, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(sc(x, t, text, cond=cond, self_cond=torch.randn_like(x)), src(x, t, text, cond=cond))


@pytest.mark.parametrize("kind", ["v_prediction", "epsilon", "sample"])
def test_predicted_x0_inverts_the_forward_process(kind):
    s = DDPMScheduler(beta_schedule="squaredcos_cap_v2", prediction_type=kind)
    x0, eps = torch.randn(3, 3, 4, 8, 8), torch.randn(3, 3, 4, 8, 8)
    t = torch.tensor([10, 500, 990])
    x_t = s.add_noise(x0, eps, t)
    target = {"v_prediction": s.get_velocity(x0, eps, t), "epsilon": eps, "sample": x0}[kind]
    torch.testing.assert_close(predicted_x0(target, x_t, t, s.alphas_cumprod, kind), x0, atol=1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="unknown prediction_type"):
        predicted_x0(target, x_t, t, s.alphas_cumprod, "flow")


class _Spy:
    """A stand-in U-Net (prediction_type "sample": its output is its estimate) that records what it was given."""

    def __init__(self):
        self.seen = []

    def __call__(self, x, t, *args, self_cond=None):
        self.seen.append(None if self_cond is None else self_cond.clone())
        return x + float(torch.as_tensor(t).flatten()[0])  # an estimate that names its input and step


def test_the_sampling_wrapper_feeds_each_step_the_estimate_of_the_step_before():
    spy = _Spy()
    model = SelfConditioned(spy, torch.linspace(0.99, 0.01, 1000), "sample")
    x = torch.zeros(4, 3, 4, 8, 8)  # [null; text] of 2 prompts
    for t in (900, 600):
        model(x, torch.tensor([t] * 4))
    model(x[:2], torch.tensor([300] * 2))  # guidance only on the noisier steps: the text half goes on
    model(x, torch.tensor([950] * 4))  # a new trajectory (FreeInit's restart, a second sampling)
    first, second, third, fresh = spy.seen
    assert first is None and fresh is None
    assert second.shape == x.shape and bool((second == 900).all())
    assert third.shape == (2, 3, 4, 8, 8) and bool((third == 600).all())
    three = torch.cat([x[:2], x[:2], x[:2] + 1])  # two-scale guidance's [none; cond; both], then the model alone
    model(three, torch.tensor([900] * 6))
    model(three[:2], torch.tensor([300] * 2))
    assert torch.equal(spy.seen[-1], three[4:] + 900)  # the fully conditioned branch's


def test_training_and_sampling_with_self_conditioning(tmp_path, tiny_text_dir, tiny_pipeline_dir):
    from test_training import tiny_config

    from vidiff import TextToVideoPipeline
    from vidiff.training.config import config_from_dict
    from vidiff.training.trainer import train

    cfg = tiny_config(tmp_path / "run", tiny_text_dir, steps=4, init_from=str(tiny_pipeline_dir))
    cfg["model"] = {"self_condition": True}
    final = train(config_from_dict(cfg), progress=False)
    assert json.loads((final / "unet" / "config.json").read_text())["self_condition"] is True
    trained = load_file(str(tmp_path / "run" / "checkpoint-4" / "model.safetensors"))[INPUT_CONV]
    columns = trained.shape[1] // 2
    assert trained[:, columns:].abs().sum() > 0  # the estimate's weights started at zero and were trained
    again = train(config_from_dict({**cfg, "output_dir": str(tmp_path / "again")}), progress=False)
    assert torch.equal(load_file(str(tmp_path / "again" / "checkpoint-4" / "model.safetensors"))[INPUT_CONV],
                       trained)  # the batches that use an estimate are drawn from the run's seed

    pipe = TextToVideoPipeline.from_pretrained(again)
    calls = []
    forward = pipe.unet.forward
    pipe.unet.forward = lambda *a, self_cond=None, **k: calls.append(self_cond) or forward(*a, self_cond=self_cond, **k)
    out = pipe("a red circle moving left", num_inference_steps=3, generator=torch.Generator().manual_seed(0))
    assert out.frames.shape[:2] == (1, 4) and calls[0] is None and all(c is not None for c in calls[1:])
    with pytest.raises(ValueError, match="cannot be guidance-distilled"):
        train(config_from_dict({**cfg, "train": {**cfg["train"], "distill_guidance": 3.0},
                                "sample": {"guidance_scale": 1.0}, "output_dir": str(tmp_path / "distil")}),
              progress=False)
    assert not (tmp_path / "distil").exists()  # refused before anything was written
    cfg["model"] = {"self_condition": False}
    with pytest.raises(ValueError, match="model.self_condition on; it cannot be switched off"):
        train(config_from_dict({**cfg, "train": {**cfg["train"], "init_from": str(final)},
                                "output_dir": str(tmp_path / "off")}), progress=False)
