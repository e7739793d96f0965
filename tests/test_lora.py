"""LoRA of the image model (peft, diffusers' file format): trained by a recipe, fused into an export, loaded by
diffusers, applied to an inflated model's image weights (AnimateDiff's personalization), and refused when it
does not fit."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from tests.test_inflation import frame_by_frame, inputs, make_image_folder, tiny_image_unet, trained_motion_module
from vidiff.models.lora import LORA_FILE, add_lora, apply_lora, fused, read_lora, save_lora


def _moved_lora(unet, rank: int = 4, seed: int = 0, targets=("to_q", "to_k", "to_v", "to_out.0")):
    """``unet`` with a LoRA whose up-projections are moved off their zero init (else it changes nothing)."""
    add_lora(unet, rank, targets)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in unet.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return unet


@torch.no_grad()
def test_a_lora_saved_by_vidiff_loads_in_diffusers_and_fuses_exactly(tmp_path):
    from diffusers import UNet2DConditionModel

    unet = _moved_lora(tiny_image_unet())
    trainable = [n for n, p in unet.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)  # only the LoRA trains
    x, t, text, mask = inputs(frames=2)
    ref = frame_by_frame(unet, x, t, text, mask)
    plain = fused(unet)
    assert not any("lora" in k or "base_layer" in k for k in plain.state_dict())
    assert (frame_by_frame(plain, x, t, text, mask) - ref).abs().max() <= 1e-4
    save_lora(unet, tmp_path / LORA_FILE, half=False)
    base = tiny_image_unet()  # the same base weights, no LoRA
    assert (frame_by_frame(base, x, t, text, mask) - ref).abs().max() > 1e-2  # the LoRA matters
    # diffusers' own loader reads the file vidiff writes
    theirs = UNet2DConditionModel.from_config(base.config)
    theirs.load_state_dict(base.state_dict())
    theirs.load_lora_adapter(read_lora(tmp_path / LORA_FILE), prefix="unet")
    assert (frame_by_frame(theirs, x, t, text, mask) - ref).abs().max() <= 1e-4
    ours = apply_lora(base, tmp_path)  # a folder holding the file works too
    assert (frame_by_frame(ours, x, t, text, mask) - ref).abs().max() <= 1e-4
    assert (frame_by_frame(base, x, t, text, mask) - ref).abs().max() > 1e-2  # a copy: the base is untouched
    half = apply_lora(base, tmp_path / LORA_FILE, scale=np.float32(0.5))  # a numpy number is a number
    assert 1e-3 < (frame_by_frame(half, x, t, text, mask) - ref).abs().max()
    for bad in (True, "0.5", float("nan")):  # True read as scale 1
        with pytest.raises(ValueError, match="a LoRA scale must be a"):
            apply_lora(base, tmp_path / LORA_FILE, scale=bad)


def test_training_a_lora_of_the_image_model(tmp_path, tiny_text_dir, tiny_text_encoder):
    from vidiff.pipelines.folder import load_unet
    from vidiff.training.config import config_from_dict
    from vidiff.training.trainer import train

    image = make_image_folder(tmp_path / "image", tiny_text_encoder)
    raw = {"data": {"num_frames": 4, "resolution": 16, "image_prob": 1.0, "style": "outlined"},
           "text_encoder": str(tiny_text_dir),
           "train": {"steps": 3, "batch_size": 2, "checkpoint_every": 2, "mixed_precision": "no", "ema_decay": 0.0,
                     "init_from": str(image), "warmup_steps": 1, "lr": 5e-2, "lora_rank": 4},
           "output_dir": str(tmp_path / "run")}
    final = train(config_from_dict(raw), progress=False)
    assert (final / LORA_FILE).is_file()
    before, after = load_unet(image / "unet", torch.float32), load_unet(final / "unet", torch.float32)
    b, a = before.state_dict(), after.state_dict()
    assert set(a) == set(b)  # the export is a plain image model (the LoRA fused)
    moved = {k for k in b if not torch.equal(a[k], b[k])}
    assert moved and all(".to_" in k for k in moved)  # only the attention projections the LoRA targets
    # the exported LoRA applied to the original gives the fused export (fp16 file)
    x, t, text, mask = inputs(frames=2, dim=tiny_text_encoder.dim)
    with torch.no_grad():
        got = apply_lora(before, final / LORA_FILE)(x, t, text, mask)
        assert (got - after(x, t, text, mask)).abs().max() <= 2e-3
    # resume reads the LoRA's checkpoint (same keys)
    raw["train"]["steps"] = 4
    train(config_from_dict(raw), resume="latest", progress=False)
    # a LoRA of a video model is refused before the run folder exists
    bad = {**raw, "train": {**raw["train"], "init_from": None}, "model": {"preset": "stunet-tiny"},
           "data": {"num_frames": 4, "resolution": 16}, "output_dir": str(tmp_path / "bad")}
    with pytest.raises(ValueError, match="LoRA of a text-to-image model"):
        train(config_from_dict(bad), progress=False)
    assert not (tmp_path / "bad").exists()


def test_a_lora_personalizes_an_inflated_model_like_the_fused_folder(tmp_path, tiny_text_encoder, capsys):
    from safetensors.torch import save_file

    from vidiff.cli import main
    from vidiff.models.image import ImageUNet
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    image = make_image_folder(tmp_path / "image", tiny_text_encoder)
    video = tmp_path / "video"
    pipe = trained_motion_module(image, video)
    # a LoRA of the image model, and the same LoRA fused into a styled image folder
    base = TextToVideoPipeline.from_pretrained(image)
    lora_unet = _moved_lora(base.unet)
    assert isinstance(lora_unet, ImageUNet)
    base.save_pretrained(tmp_path / "styled")  # writes the fused U-Net and the LoRA file
    by_lora = pipe.with_image_model(tmp_path / "styled" / LORA_FILE)
    by_folder = pipe.with_image_model(tmp_path / "styled")
    for k, v in pipe.unet.motion_state_dict().items():
        assert torch.equal(by_lora.unet.state_dict()[k], v)
    x, t, text, mask = inputs(frames=4, dim=tiny_text_encoder.dim)
    with torch.no_grad():
        a, b = by_lora.unet(x, t, text, mask), by_folder.unet(x, t, text, mask)
        assert (a - b).abs().max() <= 2e-3 and (a - pipe.unet(x, t, text, mask)).abs().max() > 1e-2
    code = main(["generate", "a red circle", "--model", str(video), "--image-model", str(tmp_path / "styled" / LORA_FILE),
                 "--frames", "4", "--steps", "2", "-q", "-o", str(tmp_path / "lora.mp4")])
    assert code == 0 and (tmp_path / "lora.mp4").stat().st_size > 0
    capsys.readouterr()
    # LoRAs that do not fit, or are not LoRAs: one line, exit 2, nothing written
    other = tiny_image_unet(block_out_channels=(32, 64))
    _moved_lora(other)
    save_lora(other, tmp_path / "wide.safetensors")
    save_file({"unet.nowhere.to_q.lora.down.weight": torch.zeros(4, 8),
               "unet.nowhere.to_q.lora.up.weight": torch.zeros(8, 4)}, str(tmp_path / "missing.safetensors"))
    save_file({"conv_in.weight": torch.zeros(2, 2)}, str(tmp_path / "weights.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 40)
    for name, says in (("wide", "does not fit"), ("missing", "does not have"), ("weights", "not a LoRA"),
                       ("junk", "not a LoRA file")):
        out = tmp_path / f"{name}.mp4"
        code = main(["generate", "a red circle", "--model", str(video), "--image-model",
                     str(tmp_path / f"{name}.safetensors"), "-q", "-o", str(out)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and says in err and len(err.splitlines()) == 1, (name, err)
        assert not out.exists()


@torch.no_grad()
def test_a_lora_of_the_convolutions_round_trips(tmp_path):
    unet = _moved_lora(tiny_image_unet(), targets=("conv1", "conv2", "to_q"))
    assert any("conv1.lora_A" in n for n, _ in unet.named_parameters())
    x, t, text, mask = inputs(frames=2)
    ref = frame_by_frame(unet, x, t, text, mask)
    save_lora(unet, tmp_path / LORA_FILE, half=False)
    got = frame_by_frame(apply_lora(tiny_image_unet(), tmp_path / LORA_FILE), x, t, text, mask)
    assert (got - ref).abs().max() <= 1e-4
    with pytest.raises(ValueError, match="name no module"):
        add_lora(tiny_image_unet(), 4, ("conv9",))
