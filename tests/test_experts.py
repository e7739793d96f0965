"""Noise-range experts (vidiff.models.experts): dispatch by timestep, the folder format, training one."""

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import make_tiny_pipeline
from vidiff.models.experts import BOUNDARY_KEY, HIGH_NOISE_DIR, TimestepExperts
from vidiff.pipelines.folder import load_unet
from vidiff.pipelines.text_to_video import TextToVideoPipeline
from vidiff.training.config import config_from_dict
from vidiff.training.trainer import train
from test_training import tiny_config


def two_unets(tmp_path, encoder):
    low = load_unet(make_tiny_pipeline(tmp_path / "low", encoder, seed=1) / "unet", torch.float32)
    high = load_unet(make_tiny_pipeline(tmp_path / "high", encoder, seed=2) / "unet", torch.float32)
    return low, high


def test_each_timestep_goes_to_its_expert(tmp_path, tiny_text_encoder):
    low, high = two_unets(tmp_path, tiny_text_encoder)
    experts = TimestepExperts(low, high, 600)
    x = torch.randn(4, 3, 4, 8, 8)
    text, mask = tiny_text_encoder.encode(["a red circle", "a", "b c", "moving left"])
    t = torch.tensor([999, 600, 599, 0])
    with torch.no_grad():
        got = experts(x, t, text, mask)
        want_high, want_low = high(x, t, text, mask), low(x, t, text, mask)
        assert torch.allclose(got[:2], want_high[:2], atol=1e-6) and torch.allclose(got[2:], want_low[2:], atol=1e-6)
        assert not torch.allclose(want_high, want_low, atol=1e-3)  # the two differ, so the test can fail
        assert torch.equal(experts(x, torch.tensor(700), text, mask), high(x, torch.tensor(700), text, mask))
    wide = load_unet(make_tiny_pipeline(tmp_path / "wide", tiny_text_encoder, cond_channels=3) / "unet", torch.float32)
    with pytest.raises(ValueError, match="differ in cond_channels"):
        TimestepExperts(low, wide, 600)


def test_a_folder_with_a_high_noise_expert_round_trips(tmp_path, tiny_text_encoder):
    start = make_tiny_pipeline(tmp_path / "start", tiny_text_encoder, seed=1)
    pipe = TextToVideoPipeline.from_pretrained(start)
    _, high = two_unets(tmp_path, tiny_text_encoder)
    pipe.unet = TimestepExperts(pipe.unet, high, 800)
    pipe.save_pretrained(tmp_path / "experts")
    meta = json.loads((tmp_path / "experts" / "vidiff_pipeline.json").read_text())
    assert meta[BOUNDARY_KEY] == 0.8 and (tmp_path / "experts" / HIGH_NOISE_DIR / "config.json").exists()
    back = TextToVideoPipeline.from_pretrained(tmp_path / "experts")
    assert isinstance(back.unet, TimestepExperts) and back.unet.boundary == 800
    a = back("a red circle", generator=torch.Generator().manual_seed(0), output_type="pt").videos
    b = pipe("a red circle", generator=torch.Generator().manual_seed(0), output_type="pt").videos
    plain = TextToVideoPipeline.from_pretrained(start)("a red circle", generator=torch.Generator().manual_seed(0),
                                                       output_type="pt").videos
    assert torch.allclose(a, b, atol=1e-6) and not torch.allclose(a, plain, atol=1e-3)
    back.save_pretrained(tmp_path / "again")  # the boundary is written from the model, not carried as an extra
    assert json.loads((tmp_path / "again" / "vidiff_pipeline.json").read_text())[BOUNDARY_KEY] == 0.8
    back.unet = back.unet.low
    back.save_pretrained(tmp_path / "single")
    assert BOUNDARY_KEY not in json.loads((tmp_path / "single" / "vidiff_pipeline.json").read_text())
    bad = json.loads((tmp_path / "experts" / "vidiff_pipeline.json").read_text())
    bad[BOUNDARY_KEY] = 1.5
    (tmp_path / "experts" / "vidiff_pipeline.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="no valid boundary_ratio"):
        TextToVideoPipeline.from_pretrained(tmp_path / "experts")


def test_training_a_high_noise_expert_exports_it_beside_its_start(tmp_path, tiny_text_dir, tiny_text_encoder,
                                                                  monkeypatch):
    import vidiff.training.trainer as trainer

    drawn, loss = [], trainer.diffusion_loss
    monkeypatch.setattr(trainer, "diffusion_loss", lambda *a, **k: drawn.append(k["timesteps"]) or loss(*a, **k))
    start = make_tiny_pipeline(tmp_path / "start", tiny_text_encoder, seed=1)
    cfg = tiny_config(tmp_path / "run", tiny_text_dir, steps=2, init_from=str(start), timestep_min=700)
    final = train(config_from_dict(cfg), progress=False)
    assert drawn and int(torch.cat(drawn).min()) >= 700
    meta = json.loads((final / "vidiff_pipeline.json").read_text())
    assert meta[BOUNDARY_KEY] == 0.7
    files = {d: next((final / d).glob("*.safetensors")) for d in ("unet", HIGH_NOISE_DIR)}
    before = load_file(str(next((start / "unet").glob("*.safetensors"))))
    low, high = (load_file(str(f)) for f in files.values())
    assert all(torch.equal(before[k], low[k]) for k in before)  # the rest of the range: the start, untouched
    assert any(not torch.equal(before[k], high[k]) for k in before)  # the expert: trained
    # training it again starts from the folder's expert and keeps the other U-Net
    again = train(config_from_dict({**cfg, "output_dir": str(tmp_path / "again"),
                                    "train": {**cfg["train"], "init_from": str(final)}}), progress=False)
    assert torch.equal(load_file(str(next((again / "unet").glob("*.safetensors"))))[next(iter(low))], low[next(iter(low))])
    for extra, words in (({"timestep_max": 900}, "not a middle band"), ({"timestep_shift": 3.0}, "timestep_shift to 1"),
                         ({"init_from": None}, "set train.init_from"), ({"timestep_min": 1000}, "0 <= min <= max")):
        bad = {**cfg, "output_dir": str(tmp_path / "bad"), "train": {**cfg["train"], **extra}}
        with pytest.raises(ValueError, match=words):
            config_from_dict(bad)


def test_a_style_goes_into_the_low_noise_unet_and_keeps_the_expert(tmp_path, tiny_text_encoder):
    start = make_tiny_pipeline(tmp_path / "start", tiny_text_encoder, seed=1)
    pipe = TextToVideoPipeline.from_pretrained(start)
    style = TextToVideoPipeline.from_pretrained(start)
    temporal = {id(p) for p in style.unet.temporal_parameters()}
    with torch.no_grad():  # a style fine-tune: spatial weights moved, temporal ones kept
        for p in style.unet.parameters():
            if id(p) not in temporal:
                p.add_(0.1)
    style.save_pretrained(tmp_path / "style")
    _, high = two_unets(tmp_path, tiny_text_encoder)
    pipe.unet = TimestepExperts(pipe.unet, high, 800)
    styled = pipe.with_style(tmp_path / "style", alpha=0.5)
    assert isinstance(styled.unet, TimestepExperts) and styled.unet.high is high and styled.unet.boundary == 800
    moved = {n for n, p in style.unet.named_parameters() if id(p) not in temporal}
    got = dict(styled.unet.low.named_parameters())
    for name, w in pipe.unet.low.named_parameters():
        assert torch.allclose(got[name], w + 0.05 if name in moved else w, atol=1e-5), name
