"""train.image_weight_noise: Gaussian noise on the frozen image weights while the temporal layers train."""
import pytest
import torch
from test_training import tiny_config

from vidiff.training.config import config_from_dict
from vidiff.training.trainer import train
from vidiff.training.weight_noise import FrozenWeightNoise


def two_layer_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.Linear(256, 8))
    model[0].requires_grad_(False)  # "the image weights"
    return model


def test_the_frozen_weights_carry_noise_of_the_asked_scale_inside_the_block_only():
    model = two_layer_model()
    frozen = {k: v.clone() for k, v in model[0].state_dict().items()}
    trained = {k: v.clone() for k, v in model[1].state_dict().items()}
    noise = FrozenWeightNoise(model, 0.1, seed=3)
    with noise.applied(0):
        seen0 = model[0].weight.detach().clone()
        rel = (seen0 - frozen["weight"]).std() / frozen["weight"].pow(2).mean().sqrt()
        assert 0.095 < float(rel) < 0.105  # 16384 draws: the std within a few percent
        assert not torch.equal(model[0].bias, frozen["bias"])
        assert all(torch.equal(v, model[1].state_dict()[k]) for k, v in trained.items())  # the trained ones untouched
    assert all(torch.equal(v, model[0].state_dict()[k]) for k, v in frozen.items())  # exactly back, not approximately
    with noise.applied(0):
        assert torch.equal(model[0].weight, seen0)  # micro-batch 0's noise again: a resumed run draws the same
    with noise.applied(1):
        assert not torch.equal(model[0].weight, seen0)
    assert torch.equal(next(FrozenWeightNoise(model, 0.1, seed=3).draw(5)), next(noise.draw(5)))  # no state but (seed, m)
    assert not torch.equal(next(FrozenWeightNoise(model, 0.1, seed=4).draw(5)), next(noise.draw(5)))


def test_an_error_inside_the_block_still_puts_the_weights_back():
    model = two_layer_model()
    before = model[0].weight.detach().clone()
    noise = FrozenWeightNoise(model, 0.5, seed=0)
    with pytest.raises(KeyboardInterrupt):
        with noise.applied(7):
            assert not torch.equal(model[0].weight, before)
            raise KeyboardInterrupt
    assert torch.equal(model[0].weight, before)


def test_gradients_flow_through_the_noisy_weights_to_the_trained_ones():
    """The backward runs inside the block: the trained layer's gradient is taken at the perturbed weights."""
    model = two_layer_model()
    x = torch.randn(4, 64)
    model(x).square().sum().backward()
    clean = model[1].weight.grad.clone()
    model.zero_grad()
    with FrozenWeightNoise(model, 0.3, seed=0).applied(0):
        model(x).square().sum().backward()
    assert not torch.allclose(model[1].weight.grad, clean) and model[0].weight.grad is None


def test_a_model_without_frozen_weights_is_refused():
    with pytest.raises(ValueError, match="freezes none"):
        FrozenWeightNoise(torch.nn.Linear(2, 2), 0.1, seed=0)


def _unet_weights(final) -> dict:
    from safetensors.torch import load_file

    return load_file(str(next((final / "unet").glob("*.safetensors"))))


def test_temporal_only_training_under_weight_noise(tmp_path, tiny_text_dir, tiny_pipeline_dir, monkeypatch):
    """Every micro-batch sees its own noisy image weights; the image weights come out exactly as they went in; the
    temporal layers learn something else than without the noise; an interrupted run resumes to the same weights."""
    import vidiff.training.trainer as trainer

    kw = dict(steps=4, freeze_spatial=True, ema_decay=0.0, warmup_steps=0, lr_schedule="constant", checkpoint_every=2,
              init_from=str(tiny_pipeline_dir))
    plain = _unet_weights(train(config_from_dict(tiny_config(tmp_path / "plain", tiny_text_dir, **kw)), progress=False))

    seen, real = [], trainer.micro_loss

    def spy(cfg, model, *a, **k):  # the first image weight as the forward sees it
        name, image = next((n, p) for n, p in model.named_parameters() if not p.requires_grad and p.numel() > 100)
        seen.append((name, image.detach().clone()))
        return real(cfg, model, *a, **k)

    monkeypatch.setattr(trainer, "micro_loss", spy)
    noisy_cfg = tiny_config(tmp_path / "noisy", tiny_text_dir, image_weight_noise=0.1, **kw)
    noisy = _unet_weights(train(config_from_dict(noisy_cfg), progress=False))
    monkeypatch.setattr(trainer, "micro_loss", real)
    assert len(seen) == 4 and not torch.equal(seen[0][1], seen[1][1])
    image_keys = [k for k in plain if torch.equal(plain[k], noisy[k])]
    changed = [k for k in plain if not torch.equal(plain[k], noisy[k])]
    assert seen[0][0] in image_keys and changed  # the frozen weights come out bit for bit as in the run without noise
    name, first = seen[0]
    assert not torch.equal(first, plain[name]) and 0.05 < float((first - plain[name]).std() / plain[name].std()) < 0.2

    # interrupted after step 2, resumed: the noise of micro-batches 2 and 3 is drawn again, the same
    half = tiny_config(tmp_path / "split", tiny_text_dir, image_weight_noise=0.1, **{**kw, "steps": 2})
    train(config_from_dict(half), progress=False)
    half["train"]["steps"] = 4
    resumed = _unet_weights(train(config_from_dict(half), resume="latest", progress=False))
    assert all(torch.equal(resumed[k], noisy[k]) for k in noisy)


@pytest.mark.parametrize("kw, says", [
    ({"image_weight_noise": 0.1}, "train.image_weight_noise perturbs the frozen image weights of a temporal-only run"),
    # a video model that is not inflated from an image model trains every weight unless told: known once it is built
    ({"image_weight_noise": 0.1, "init_from": "PIPE"}, "a model not inflated from an image model"),
    ({"image_weight_noise": 0.1, "freeze_spatial": False}, "set train.freeze_spatial to true"),
    ({"image_weight_noise": -0.1, "freeze_spatial": True}, r"train.image_weight_noise must be in \[0.0, 1.0\]"),
    ({"image_weight_noise": 2.0, "freeze_spatial": True}, r"train.image_weight_noise must be in \[0.0, 1.0\]"),
])
def test_bad_weight_noise_settings_are_refused_before_the_run_folder(kw, says, tmp_path, tiny_text_dir,
                                                                     tiny_pipeline_dir):
    out = tmp_path / "run"
    kw = {k: str(tiny_pipeline_dir) if v == "PIPE" else v for k, v in kw.items()}
    with pytest.raises(ValueError, match=says) as e:
        train(config_from_dict(tiny_config(out, tiny_text_dir, **kw)), progress=False)
    assert "\n" not in str(e.value) and not out.exists()


def test_a_sharded_run_is_refused_before_the_run_folder(tmp_path, tiny_text_dir, tiny_pipeline_dir, monkeypatch):
    """FSDP and DeepSpeed hold flattened shards, not the image weights' tensors: refused, not perturbed wrongly."""
    import vidiff.training.trainer as trainer

    monkeypatch.setattr(trainer, "sharded", lambda accelerator: True)
    out = tmp_path / "run"
    cfg = tiny_config(out, tiny_text_dir, image_weight_noise=0.1, freeze_spatial=True, init_from=str(tiny_pipeline_dir))
    with pytest.raises(ValueError, match="cannot perturb sharded weights"):
        train(config_from_dict(cfg), progress=False)
    assert not out.exists()
