"""Video models inflated from a text-to-image UNet2DConditionModel (Lumiere 3.1, AnimateDiff): parity at
initialisation, the folders diffusers and vidiff read, motion modules, temporal-only training, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from vidiff.models.inflated import InflatedUNet, save_motion_module

TINY_2D = dict(sample_size=16, in_channels=3, out_channels=3, block_out_channels=(32, 32),
               down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
               up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1, attention_head_dim=4,
               norm_num_groups=8, cross_attention_dim=8)


def tiny_image_unet(seed: int = 0, **overrides):
    """A plain diffusers UNet2DConditionModel with every weight moved off its init (conv_out is not zero)."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**{**TINY_2D, **overrides})
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return unet.eval()


def frame_by_frame(unet, x, t, text, mask):
    """The image model on every frame, through diffusers' own forward."""
    b, c, f, h, w = x.shape
    frames = x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
    out = unet(frames, t.repeat_interleave(f), text.repeat_interleave(f, 0),
               encoder_attention_mask=mask.repeat_interleave(f, 0)).sample
    return out.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


def inputs(frames: int = 8, size: int = 16, dim: int = 8):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, frames, size, size, generator=g)
    text = torch.randn(2, 5, dim, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    return x, torch.tensor([20, 700]), text, mask


@torch.no_grad()
def test_motion_module_model_starts_as_the_image_model_frame_by_frame():
    unet = tiny_image_unet()
    x, t, text, mask = inputs()
    ref = frame_by_frame(unet, x, t, text, mask)
    model = InflatedUNet.from_image_unet(unet, "motion-module").eval()
    assert (model(x, t, text, mask) - ref).abs().max() <= 1e-5
    # the test can fail: a motion module that is not the identity changes the clip
    for p in model.temporal_parameters():
        p.add_(torch.randn_like(p) * 0.05)
    assert (model(x, t, text, mask) - ref).abs().max() > 1e-3


@torch.no_grad()
@pytest.mark.parametrize("conv_inflation", ["temporal", "space-time"])
def test_stunet_model_starts_as_the_image_model_on_a_still_clip(conv_inflation):
    unet = tiny_image_unet()
    x, t, text, mask = inputs()
    still = x[:, :, :1].expand_as(x).contiguous()
    ref = frame_by_frame(unet, still, t, text, mask)
    model = InflatedUNet.from_image_unet(unet, "stunet", conv_inflation=conv_inflation).eval()
    assert model.temporal_compression == 2
    assert (model(still, t, text, mask) - ref).abs().max() <= 1e-5
    # on a moving clip the temporal down/up-sampling already mixes frames (it is not frame by frame)
    assert (model(x, t, text, mask) - frame_by_frame(unet, x, t, text, mask)).abs().max() > 1e-3
    # and one frame is exactly the image model
    assert (model(x[:, :, :1], t, text, mask) - ref[:, :, :1]).abs().max() <= 1e-5
    for p in model.temporal_parameters():
        p.add_(torch.randn_like(p) * 0.05)
    assert (model(still, t, text, mask) - ref).abs().max() > 1e-3


@torch.no_grad()
def test_the_space_time_conv_block_moves_features_across_pixels_between_frames():
    """Lumiere's inflation block (a new 3 x 3 conv, then the conv over time) carries a pixel of frame 0 to the
    neighbouring pixels of frame 1; the temporal conv alone keeps it at its pixel (with the image layers frozen,
    nothing else in a layer can move it)."""
    from vidiff.models.blocks import SpaceTimeConvBlock, TemporalConvBlock

    torch.manual_seed(0)
    x = torch.zeros(1, 2, 5, 5, 8)
    x[0, 0, 2, 2] = torch.randn(8)  # one pixel of frame 0
    for block, spreads in ((SpaceTimeConvBlock(8), True), (TemporalConvBlock(8), False)):
        for p in block.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # off the identity init
        change = (block(x) - block(torch.zeros_like(x)))[0, 1].abs().sum(-1)  # the pixel's effect on frame 1
        assert (change[2, 1] > 1e-3) == spreads and (change[1, 2] > 1e-3) == spreads, type(block).__name__
    assert torch.equal(SpaceTimeConvBlock(8)(x), x)  # the identity at init


def test_inflation_keeps_the_image_weights_and_adds_only_temporal_ones():
    unet = tiny_image_unet()
    model = InflatedUNet.from_image_unet(unet, "stunet")
    image = {f"image_unet.{k}": v for k, v in unet.state_dict().items()}
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in image.items())
    assert set(state) - set(image) == set(model.motion_state_dict())
    model.freeze_spatial()
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in model.temporal_parameters()} and trainable


@torch.no_grad()
def test_motion_module_reads_the_caption_only_when_asked():
    unet = tiny_image_unet()
    x, t, text, mask = inputs()
    ref = frame_by_frame(unet, x, t, text, mask)
    assert InflatedUNet.from_image_unet(unet, "motion-module").text_time is None  # AnimateDiff's: no text
    assert InflatedUNet.from_image_unet(unet, "stunet").text_time is not None
    model = InflatedUNet.from_image_unet(unet, "motion-module", text_to_time=True).eval()
    assert model.text_time is not None and model.config.text_to_time is True
    assert (model(x, t, text, mask) - ref).abs().max() <= 1e-5  # still the image model at init
    model.text_time.weight.add_(torch.randn_like(model.text_time.weight) * 0.05)
    other = text.flip(0)  # another caption for each clip changes the clip through the pooled text
    assert (model(x, t, other, mask.flip(0)) - frame_by_frame(unet, x, t, other, mask.flip(0))).abs().max() > 1e-3


def test_image_unets_attend_with_matmul_on_cpu_and_sdpa_where_asked(monkeypatch, tmp_path):
    """DeviceAttnProcessor: the CPU path (matmul) and the SDPA path give the same output, and the CPU runs the
    matmul one unless blocks.USE_SDPA asks otherwise; every ImageUNet vidiff builds or loads, and every
    inflated model's image U-Net, carries it."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    from vidiff.models import blocks
    from vidiff.models.image import DeviceAttnProcessor, ImageUNet, build_image_unet

    calls = []

    def spy(cls):  # cls.__call__ that records the class's name before it runs
        run = cls.__call__

        def call(self, *args, **kwargs):
            calls.append(cls.__name__)
            return run(self, *args, **kwargs)
        return call

    for cls in (AttnProcessor, AttnProcessor2_0):
        monkeypatch.setattr(cls, "__call__", spy(cls))
    unet = tiny_image_unet()
    model = InflatedUNet.from_image_unet(unet, "motion-module").eval()
    assert all(isinstance(p, DeviceAttnProcessor) for p in model.image_unet.attn_processors.values())
    x, t, text, mask = inputs(frames=2)
    with torch.no_grad():
        matmul = model(x, t, text, mask)
        assert set(calls) == {"AttnProcessor"}
        calls.clear()
        monkeypatch.setattr(blocks, "USE_SDPA", True)
        sdpa = model(x, t, text, mask)
        assert set(calls) == {"AttnProcessor2_0"}
    assert (matmul - sdpa).abs().max() <= 1e-5
    built = build_image_unet("t2i-tiny", 8)
    built.save_pretrained(tmp_path / "unet")
    for m in (built, ImageUNet.from_pretrained(tmp_path / "unet"),
              ImageUNet.from_config(dict(built.config))):
        assert all(isinstance(p, DeviceAttnProcessor) for p in m.attn_processors.values())


# ---------------------------------------------------------------- folders
def make_image_folder(path: Path, text_encoder, seed: int = 0, **overrides) -> Path:
    """A text-to-image folder as `vidiff train` writes one (an ImageUNet saved as UNet2DConditionModel)."""
    from vidiff.diffusion.schedule import DiffusionConfig
    from vidiff.models.image import ImageUNet
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    unet = tiny_image_unet(seed, cross_attention_dim=text_encoder.dim, **overrides)
    image = ImageUNet(**{k: v for k, v in unet.config.items() if not k.startswith("_")})
    image.load_state_dict(unet.state_dict())
    pipe = TextToVideoPipeline(image, text_encoder, DiffusionConfig(),
                               defaults={"num_frames": 4, "height": 16, "width": 16, "num_inference_steps": 2})
    pipe.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory, tiny_text_encoder) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("t2i") / "image", tiny_text_encoder)


def test_diffusers_loads_the_image_folder_vidiff_writes(image_dir, tiny_text_encoder):
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from vidiff.pipelines.folder import load_unet

    plain = UNet2DConditionModel.from_pretrained(image_dir, subfolder="unet").eval()
    assert json.loads((image_dir / "unet" / "config.json").read_text())["_class_name"] == "UNet2DConditionModel"
    DDPMScheduler.from_pretrained(image_dir, subfolder="scheduler")
    ours = load_unet(image_dir / "unet", torch.float32).eval()
    x, t, text, mask = inputs(frames=3, dim=tiny_text_encoder.dim)
    assert all(torch.equal(v, ours.state_dict()[k]) for k, v in plain.state_dict().items())
    with torch.no_grad():  # diffusers attends with SDPA, vidiff's ImageUNet with matmul on CPU: rounding apart
        assert (ours(x, t, text, mask) - frame_by_frame(plain, x, t, text, mask)).abs().max() <= 1e-5


def test_inflate_command_writes_a_video_model_every_command_takes(image_dir, tmp_path):
    from vidiff.cli import main
    from vidiff.pipelines.folder import load_unet
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    for arch, extra in (("stunet", []), ("motion-module", []), ("stunet", ["--conv-inflation", "space-time"])):
        out = tmp_path / (arch + "-".join(["", *extra[1:]]))
        assert main(["inflate", str(image_dir), "--arch", arch, "-o", str(out), *extra]) == 0
        model = load_unet(out / "unet", torch.float32)
        assert isinstance(model, InflatedUNet) and model.config.arch == arch
        assert model.config.conv_inflation == (extra[-1] if extra else "temporal")
        assert (out / "motion_module.safetensors").is_file()  # the new layers on their own
        assert main(["generate", "a red circle", "--model", str(out), "--frames", "4", "--steps", "2", "-q",
                     "-o", str(tmp_path / f"{out.name}.mp4")]) == 0
        assert (tmp_path / f"{out.name}.mp4").stat().st_size > 0
        pipe = TextToVideoPipeline.from_pretrained(out)
        assert pipe("a red circle", num_inference_steps=2, generator=torch.Generator().manual_seed(0),
                    progress=False).videos.shape == (1, 3, 4, 16, 16)


def test_a_motion_module_plugs_into_another_image_model_of_the_same_layout(image_dir, tmp_path, tiny_text_encoder):
    from vidiff.pipelines.inflate import inflate

    trained = inflate(image_dir, "motion-module").unet
    with torch.no_grad():
        for p in trained.temporal_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    save_motion_module(trained, tmp_path / "motion.safetensors", half=False)
    size = (tmp_path / "motion.safetensors").stat().st_size
    assert size < sum(p.numel() * 4 for p in trained.parameters()) / 2  # the new layers only
    other = make_image_folder(tmp_path / "other", tiny_text_encoder, seed=5)  # another fine-tune, same layout
    pipe = inflate(other, "motion-module", tmp_path / "video", motion_module=tmp_path / "motion.safetensors")
    got = pipe.unet.state_dict()
    for k, v in trained.motion_state_dict().items():
        assert torch.equal(got[k], v), k
    assert not torch.equal(got["image_unet.conv_in.weight"], trained.state_dict()["image_unet.conv_in.weight"])
    # the wrong architecture is refused with the layouts named
    with pytest.raises(ValueError, match="another inflation"):
        inflate(other, "stunet", motion_module=tmp_path / "motion.safetensors")


def test_motion_modules_written_before_a_setting_existed_still_load(image_dir, tmp_path):
    """A file whose metadata predates model.conv_inflation was made with its original value ("temporal"):
    it loads into such a model and is refused by a "space-time" one."""
    import json

    from safetensors.torch import load_file, save_file

    from vidiff.models.inflated import load_motion_module, motion_signature
    from vidiff.pipelines.inflate import inflate

    model = inflate(image_dir, "stunet").unet
    meta = motion_signature(model)
    old = {**meta, "inflation": json.dumps({k: v for k, v in json.loads(meta["inflation"]).items()
                                            if k != "conv_inflation"}, sort_keys=True)}
    save_motion_module(model, tmp_path / "new.safetensors", half=False)
    save_file(load_file(tmp_path / "new.safetensors"), str(tmp_path / "old.safetensors"), metadata=old)
    load_motion_module(inflate(image_dir, "stunet").unet, tmp_path / "old.safetensors")
    with pytest.raises(ValueError, match="another inflation"):
        load_motion_module(inflate(image_dir, "stunet", conv_inflation="space-time").unet, tmp_path / "old.safetensors")


def test_temporal_only_training_of_an_inflated_model(tmp_path, tiny_text_dir, image_dir):
    from vidiff.pipelines.folder import load_unet
    from vidiff.pipelines.inflate import inflate
    from vidiff.training.config import config_from_dict
    from vidiff.training.trainer import train

    inflate(image_dir, "stunet", tmp_path / "video")
    cfg = config_from_dict({
        "data": {"num_frames": 4, "resolution": 16}, "text_encoder": str(tiny_text_dir),
        "train": {"steps": 3, "batch_size": 2, "checkpoint_every": 3, "mixed_precision": "no", "ema_decay": 0.0,
                  "init_from": str(tmp_path / "video"), "warmup_steps": 1, "lr": 1e-2},
        "output_dir": str(tmp_path / "run")})
    final = train(cfg, progress=False)
    before, after = load_unet(tmp_path / "video" / "unet", torch.float32), load_unet(final / "unet", torch.float32)
    b, a = before.state_dict(), after.state_dict()
    assert all(torch.equal(b[k], a[k]) for k in b if k.startswith("image_unet."))  # frozen by default
    assert any(not torch.equal(b[k], a[k]) for k in b if not k.startswith("image_unet."))
    # the switch to unfreeze
    cfg2 = config_from_dict({**cfg.to_dict(), "train": {**cfg.to_dict()["train"], "freeze_spatial": False},
                             "output_dir": str(tmp_path / "run2")})
    a2 = load_unet(train(cfg2, progress=False) / "unet", torch.float32).state_dict()
    assert any(not torch.equal(b[k], a2[k]) for k in b if k.startswith("image_unet."))
    # image batches would train the frozen image weights: refused before the run folder is touched
    cfg3 = config_from_dict({**cfg.to_dict(), "data": {**cfg.to_dict()["data"], "image_prob": 0.5},
                             "output_dir": str(tmp_path / "run3")})
    with pytest.raises(ValueError, match="temporal layers by default"):
        train(cfg3, progress=False)
    assert not (tmp_path / "run3").exists()


def test_spatial_lr_scale_moves_the_image_weights_less(tmp_path, tiny_text_dir, image_dir):
    """One Adam step moves each weight by about lr x its group's scale (the first step's update is lr x g / |g|):
    the new layers by lr, the image layers by a tenth of it."""
    from vidiff.pipelines.folder import load_unet
    from vidiff.pipelines.inflate import inflate
    from vidiff.training.config import config_from_dict
    from vidiff.training.trainer import train

    inflate(image_dir, "stunet", tmp_path / "video")
    lr = 1e-3
    cfg = config_from_dict({
        "data": {"num_frames": 4, "resolution": 16}, "text_encoder": str(tiny_text_dir),
        "train": {"steps": 1, "batch_size": 2, "checkpoint_every": 1, "mixed_precision": "no", "ema_decay": 0.0,
                  "init_from": str(tmp_path / "video"), "warmup_steps": 0, "lr": lr, "freeze_spatial": False,
                  "spatial_lr_scale": 0.1},
        "output_dir": str(tmp_path / "run")})
    b = load_unet(tmp_path / "video" / "unet", torch.float32).state_dict()
    a = load_unet(train(cfg, progress=False) / "unet", torch.float32).state_dict()

    def moved(image: bool) -> float:
        return max(float((a[k] - b[k]).abs().max()) for k in b if k.startswith("image_unet.") == image)

    assert 0.05 * lr < moved(True) <= 0.1 * lr * 1.01
    assert 0.5 * lr < moved(False) <= lr * 1.01
    # frozen image layers have no learning rate to scale: refused before the run folder is touched
    frozen = config_from_dict({**cfg.to_dict(), "train": {**cfg.to_dict()["train"], "freeze_spatial": None},
                               "output_dir": str(tmp_path / "run2")})
    with pytest.raises(ValueError, match=r"train.spatial_lr_scale \(0.1\) .* trains no spatial layers"):
        train(frozen, progress=False)
    assert not (tmp_path / "run2").exists()
    with pytest.raises(ValueError, match=r"train.spatial_lr_scale must be in \[1e-06, 1.0\]"):
        config_from_dict({"train": {"spatial_lr_scale": 0}})


@pytest.mark.parametrize("kwargs, words", [
    ({"heads": 3}, "model.heads (3) must divide the widths its temporal attention runs at (32)"),
    ({"heads": 0}, "model.heads must be an integer >= 1"), ({"heads": 2.5}, "model.heads must be an integer"),
    ({"mid_spacetime_layers": -1}, "model.mid_spacetime_layers must be an integer >= 0"),
    ({"text_to_time": "yes"}, "model.text_to_time must be true, false or null"),
    ({"conv_inflation": "3d"}, "model.conv_inflation must be one of temporal, space-time, got '3d'"),
    ({"conv_inflation": "space-time"}, "model.conv_inflation 'space-time' is the stunet arch's conv block"),
])
def test_bad_inflation_settings_are_one_line_errors(kwargs, words, tmp_path, tiny_text_dir, image_dir):
    from vidiff.training.config import config_from_dict
    from vidiff.training.trainer import train

    with pytest.raises(ValueError, match=re.escape(words)):
        InflatedUNet.from_image_unet(tiny_image_unet(), "motion-module", **kwargs)
    cfg = config_from_dict({  # the same from a recipe: nothing written
        "model": {"inflate": "motion-module", **kwargs}, "data": {"num_frames": 4, "resolution": 16},
        "text_encoder": str(tiny_text_dir), "train": {"steps": 2, "batch_size": 2, "init_from": str(image_dir),
                                                      "mixed_precision": "no"},
        "output_dir": str(tmp_path / "run")})
    with pytest.raises(ValueError, match=re.escape(words)) as e:
        train(cfg, progress=False)
    assert "\n" not in str(e.value) and not (tmp_path / "run").exists()


def test_training_a_text_to_image_model_writes_a_diffusers_folder(tmp_path, tiny_text_dir):
    from diffusers import UNet2DConditionModel

    from vidiff.training.config import config_from_dict
    from vidiff.training.trainer import train

    cfg = config_from_dict({
        "model": {"preset": "t2i-tiny"}, "data": {"num_frames": 4, "resolution": 16, "image_prob": 1.0},
        "text_encoder": str(tiny_text_dir),
        "train": {"steps": 2, "batch_size": 4, "checkpoint_every": 2, "mixed_precision": "no"},
        "output_dir": str(tmp_path / "run")})
    final = train(cfg, progress=False)
    unet = UNet2DConditionModel.from_pretrained(final, subfolder="unet")
    assert unet.config.cross_attention_dim == 8 and (final / "scheduler" / "scheduler_config.json").is_file()


def test_train_only_confines_a_fine_tune_to_the_named_layers(tmp_path, tiny_text_dir):
    """train.train_only: a style fine-tune of an image model that moves its decoder half only; a prefix that names
    no parameter, or one beside a LoRA, is refused before anything is written."""
    from vidiff.pipelines.folder import load_unet
    from vidiff.training.config import config_from_dict
    from vidiff.training.trainer import train

    base = {"model": {"preset": "t2i-tiny"}, "data": {"num_frames": 4, "resolution": 16, "image_prob": 1.0},
            "text_encoder": str(tiny_text_dir), "output_dir": str(tmp_path / "t2i"),
            "train": {"steps": 2, "batch_size": 4, "checkpoint_every": 2, "mixed_precision": "no"}}
    image = train(config_from_dict(base), progress=False)
    tuned = {**base, "output_dir": str(tmp_path / "up"), "data": {**base["data"], "style": "outlined"},
             "train": {**base["train"], "lr": 0.01, "init_from": str(image),
                       "train_only": "up_blocks, conv_norm_out,conv_out"}}
    after = load_unet(train(config_from_dict(tuned), progress=False) / "unet", torch.float32).state_dict()
    before = load_unet(image / "unet", torch.float32).state_dict()
    decoder = ("up_blocks", "conv_norm_out", "conv_out")
    assert all(torch.equal(v, after[k]) for k, v in before.items() if not k.startswith(decoder))
    assert any(not torch.equal(v, after[k]) for k, v in before.items() if k.startswith("up_blocks"))
    for extra, words in (({"train_only": "up_blokcs"}, "names no parameter of this ImageUNet: up_blokcs"),
                         ({"train_only": "up_blocks", "lora_rank": 4}, "train.lora_rank trains a LoRA instead")):
        bad = {**tuned, "output_dir": str(tmp_path / "bad"), "train": {**tuned["train"], **extra}}
        with pytest.raises(ValueError, match=words):
            train(config_from_dict(bad), progress=False)
        assert not (tmp_path / "bad").exists()


# ---------------------------------------------------------------- bad input
def _cli(args, capsys):
    from vidiff.cli import main

    code = main(args)
    return code, capsys.readouterr().err.strip()


def test_bad_image_models_are_one_line_errors_and_write_nothing(tmp_path, capsys, image_dir, tiny_pipeline_dir):
    import shutil

    out = tmp_path / "out"
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    sdxl = tmp_path / "sdxl"
    shutil.copytree(image_dir, sdxl)
    cfg = json.loads((sdxl / "unet" / "config.json").read_text())
    (sdxl / "unet" / "config.json").write_text(json.dumps({**cfg, "addition_embed_type": "text_time"}))
    other_block = tmp_path / "other_block"
    shutil.copytree(image_dir, other_block)
    (other_block / "unet" / "config.json").write_text(json.dumps(
        {**cfg, "down_block_types": ["SimpleCrossAttnDownBlock2D", "DownBlock2D"]}))
    garbage = tmp_path / "motion.safetensors"
    garbage.write_bytes(b"not a file of tensors")
    cases = [([str(not_a_model)], "no unet/config.json"),
             ([str(tiny_pipeline_dir)], "is a VideoUNet; supported: diffusers UNet2DConditionModel"),
             ([str(sdxl)], "added conditioning"),
             ([str(other_block)], "SimpleCrossAttnDownBlock2D"),
             ([str(image_dir), "--arch", "vdm"], "unknown --arch 'vdm'"),
             ([str(image_dir), "--conv-inflation", "3d"], "unknown --conv-inflation '3d'"),  # named model.conv_inflation
             ([str(image_dir), "--motion-module", str(garbage)], "not a motion module")]
    for args, says in cases:
        code, err = _cli(["inflate", *args, "-o", str(out)], capsys)
        assert code == 2 and says in err and len(err.splitlines()) == 1, (args, err)
        assert not out.exists()
    out.mkdir()
    code, err = _cli(["inflate", str(image_dir), "-o", str(out)], capsys)
    assert code == 2 and "exists" in err and not any(out.iterdir())


def test_inflate_overwrite_never_replaces_the_image_model_or_a_users_file(tmp_path, capsys, image_dir):
    """`vidiff inflate t2i -o t2i --overwrite` replaced the image model by the video model, exit 0; a video model
    folder with the user's notes in it was replaced with them, and only after the models had loaded."""
    import shutil

    image = shutil.copytree(image_dir, tmp_path / "image")
    before = sorted(str(p.relative_to(image)) for p in image.rglob("*"))
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    for out, says in ((image, "is the input"), (image / "unet" / "..", "is the input"), (notes, "is a file")):
        code, err = _cli(["inflate", str(image), "-o", str(out), "--overwrite"], capsys)
        assert code == 2 and says in err and len(err.splitlines()) == 1, err
    assert sorted(str(p.relative_to(image)) for p in image.rglob("*")) == before and notes.read_text() == "mine"
    video = tmp_path / "video"
    assert _cli(["inflate", str(image), "-o", str(video)], capsys)[0] == 0
    (video / "NOTES.md").write_text("mine")
    code, err = _cli(["inflate", str(image), "-o", str(video), "--overwrite"], capsys)
    assert code == 2 and "a pipeline export does not write (NOTES.md)" in err
    assert (video / "NOTES.md").read_text() == "mine"
    (video / "NOTES.md").unlink()
    assert _cli(["inflate", str(image), "-o", str(video), "--overwrite"], capsys)[0] == 0


@torch.no_grad()
def test_parity_at_initialisation_on_the_shipped_image_model():
    """The shipped Shapes image model (vidiff/weights/t2i-shapes), inflated both ways, in fp32."""
    from vidiff.pipelines.folder import load_unet
    from vidiff.registry import model_path

    image = load_unet(model_path("t2i-shapes") / "unet", torch.float32).eval()
    g = torch.Generator().manual_seed(3)
    x, text = torch.randn(1, 3, 8, 32, 32, generator=g), torch.randn(1, 6, image.text_dim, generator=g)
    t, mask = torch.tensor([400]), torch.ones(1, 6, dtype=torch.bool)
    ref = image(x, t, text, mask)  # the image model frame by frame (ImageUNet = diffusers' forward per frame)
    motion = InflatedUNet.from_image_unet(image, "motion-module").eval()
    assert (motion(x, t, text, mask) - ref).abs().max() <= 1e-5
    still = x[:, :, :1].expand_as(x).contiguous()
    stunet = InflatedUNet.from_image_unet(image, "stunet").eval()
    assert (stunet(still, t, text, mask) - image(still, t, text, mask)).abs().max() <= 1e-5


def test_inflate_takes_the_embedded_image_model_by_name(tmp_path, capsys):
    # --model t2i-shapes worked for generate --zero-shot; `vidiff inflate t2i-shapes` was "'t2i-shapes' is not a folder"
    from vidiff.cli import main
    from vidiff.pipelines.inflate import inflate
    from vidiff.registry import model_path

    pipe = inflate("t2i-shapes", "motion-module")  # nothing written
    assert pipe.extra["image_model"]["path"] == str(model_path("t2i-shapes").resolve())
    assert main(["inflate", "t2i-shapes", "--arch", "stunet", "-o", str(tmp_path / "video")]) == 0
    assert (tmp_path / "video" / "vidiff_pipeline.json").is_file()


# ---------------------------------------------------------------- zero-shot (Text2Video-Zero)
@torch.no_grad()
def test_cross_frame_attention_reads_the_first_frame():
    from diffusers.models.attention_processor import AttnProcessor2_0

    from vidiff.pipelines.zero_shot import FirstFrameAttnProcessor

    unet = tiny_image_unet()
    x, t, text, mask = inputs(frames=4)
    plain = frame_by_frame(unet, x, t, text, mask)
    procs = unet.attn_processors
    unet.set_attn_processor({n: FirstFrameAttnProcessor(4, AttnProcessor2_0()) if "attn1" in n else p
                             for n, p in procs.items()})
    crossed = frame_by_frame(unet, x, t, text, mask)
    assert (crossed[:, :, 0] - plain[:, :, 0]).abs().max() <= 1e-5  # the first frame attends to itself
    assert (crossed[:, :, 1:] - plain[:, :, 1:]).abs().max() > 1e-3  # the others read it
    # a clip whose frames all equal the first is unchanged
    still = x[:, :, :1].expand_as(x).contiguous()
    unet.set_attn_processor(dict(procs))  # (diffusers empties the dict it is given)
    ref = frame_by_frame(unet, still, t, text, mask)
    unet.set_attn_processor({n: FirstFrameAttnProcessor(4, AttnProcessor2_0()) if "attn1" in n else p
                             for n, p in procs.items()})
    assert (frame_by_frame(unet, still, t, text, mask) - ref).abs().max() <= 1e-5


def test_zero_shot_generation_from_an_image_model(image_dir, tiny_pipeline_dir, tmp_path, capsys):
    from vidiff.pipelines.zero_shot import TextToVideoZeroPipeline, motion_from_caption

    assert motion_from_caption("a red circle moving left", 2.0) == (-2.0, 0.0)
    assert motion_from_caption("a red circle moving up") == (0.0, -0.5)
    pipe = TextToVideoZeroPipeline.from_pretrained(image_dir)
    procs = dict(pipe.unet.attn_processors)
    out = pipe("a red circle moving left", num_frames=4, num_inference_steps=10, generator=torch.Generator().manual_seed(0))
    assert out.videos.shape == (1, 3, 4, 16, 16) and out.settings["zero_shot"]["motion"] == [[-0.5, 0.0]]
    assert {n: type(p) for n, p in pipe.unet.attn_processors.items()} == {n: type(p) for n, p in procs.items()}
    two = pipe("a red circle moving left", num_frames=4, num_inference_steps=10, num_videos_per_prompt=2,
               generator=[torch.Generator().manual_seed(s) for s in (0, 1)], return_dict=False)[0]
    assert two.shape[0] == 2 and np.allclose(two[0], out.frames[0], atol=1e-4)  # video 0 is the single call's
    # its own sampling loop checks what the caller gives as the shared one does (a TypeError from torch before)
    pipe.enable_free_init(2)
    with pytest.raises(ValueError, match="without FreeInit"):
        pipe("a red circle moving left", num_frames=4, num_inference_steps=10)
    pipe.disable_free_init()
    # its DDIM takes eta (diffusers' eta=), drawn from the call's generator, and rescaled guidance
    noisy = pipe("a red circle moving left", num_frames=4, num_inference_steps=10, eta=1.0,
                 generator=torch.Generator().manual_seed(0))
    assert noisy.settings["eta"] == 1.0 and not np.allclose(noisy.frames, out.frames, atol=1e-3)
    again = pipe("a red circle moving left", num_frames=4, num_inference_steps=10, eta=1.0,
                 generator=torch.Generator().manual_seed(0))
    assert np.array_equal(again.frames, noisy.frames)
    rescaled = pipe("a red circle moving left", num_frames=4, num_inference_steps=10, guidance_rescale=1.0,
                    generator=torch.Generator().manual_seed(0))
    assert rescaled.settings["guidance_rescale"] == 1.0 and not np.allclose(rescaled.frames, out.frames, atol=1e-3)
    # diffusers' step callback on the clip's steps (i counted on the whole grid) and pipe._interrupt in every phase
    seen = []

    def watch(p, i, t, kw):
        seen.append((i, tuple(kw["latents"].shape)))
        return kw

    watched = pipe("a red circle moving left", num_frames=4, num_inference_steps=10, callback_on_step_end=watch,
                   generator=torch.Generator().manual_seed(0))
    assert np.array_equal(watched.frames, out.frames) and "interrupted_after_step" not in watched.settings
    assert seen[0][0] > 0 and [i for i, _ in seen] == list(range(seen[0][0], 10)), seen  # t1 = 0.5: from step 5 on
    assert all(shape == (1, 3, 4, 16, 16) for _, shape in seen)

    def stop_at(n):
        def cb(p, i, t, kw):
            p._interrupt = i + 1 >= n
            return kw
        return cb

    cut = pipe("a red circle moving left", num_frames=4, num_inference_steps=10, callback_on_step_end=stop_at(7),
               generator=torch.Generator().manual_seed(0))
    assert cut.settings["interrupted_after_step"] == 7 and not np.allclose(cut.frames, out.frames, atol=1e-3)
    early = []  # interrupted from another thread before the clip exists: the first frame in every frame
    real_stop = pipe._stop_here

    def stop_after_two():
        early.append(pipe._steps_done)
        if len(early) > 2:
            pipe._interrupt = True
        return real_stop()

    pipe._stop_here = stop_after_two
    try:
        first = pipe("a red circle moving left", num_frames=4, num_inference_steps=10,
                     generator=torch.Generator().manual_seed(0))
    finally:
        del pipe._stop_here
    assert first.settings["interrupted_after_step"] == 2 and first.frames.shape == out.frames.shape
    assert all(np.array_equal(first.frames[0, k], first.frames[0, 0]) for k in range(4))
    again_fine = pipe("a red circle moving left", num_frames=4, num_inference_steps=10,
                      generator=torch.Generator().manual_seed(0))  # the flag is reset by the next call
    assert np.array_equal(again_fine.frames, out.frames)
    with pytest.raises(ValueError, match="callback_on_step_end must be callable"):
        pipe("a red circle moving left", num_frames=4, num_inference_steps=10, callback_on_step_end=3)
    for bad, says in (({"generator": 3}, "generator must be a torch.Generator"),
                      ({"latents": torch.zeros(1, 3, 2, 2)}, "latents must be a tensor of shape"),
                      ({"motion": "10"}, "motion must be \\(dx, dy\\)"),  # a string was iterated: (1, 0)
                      ({"motion": ("1", "0")}, "motion must be \\(dx, dy\\)"),
                      ({"motion_speed": "2"}, "motion_speed must be a number"),  # a TypeError from math.isfinite
                      ({"t0": "0.5"}, "t0 must be a number")):
        with pytest.raises(ValueError, match=says):
            pipe("a red circle moving left", num_frames=4, num_inference_steps=10, **bad)
    code, err = _cli(["generate", "a red circle moving left", "--model", str(image_dir), "--zero-shot", "--frames", "4",
                      "--steps", "10", "--motion", "0,1", "--eta", "0.5", "-q", "-o", str(tmp_path / "z.mp4")], capsys)
    assert code == 0, err
    side = json.loads((tmp_path / "z.json").read_text())
    assert side["zero_shot"]["motion"] == [[0.0, 1.0]] and side["eta"] == 0.5
    for args, says in ((["--model", str(tiny_pipeline_dir), "--zero-shot"], "is a video model"),
                       (["--model", str(image_dir)], "add --zero-shot"),
                       (["--model", str(image_dir), "--zero-shot", "--motion", "left"], "--motion takes DX,DY"),
                       (["--model", str(image_dir), "--zero-shot", "--motion", "nan,1"], "two finite numbers"),
                       (["--model", str(image_dir), "--zero-shot", "--motion", "0,1e30"], "at most the frame's size"),
                       (["--model", str(image_dir), "--zero-shot", "--free-init", "2"], "does not take --free-init"),
                       (["--model", str(image_dir), "--zero-shot", "--window", "8"], "does not take --window")):
        code, err = _cli(["generate", "a red circle", *args, "-q", "-o", str(tmp_path / "bad.mp4")], capsys)
        assert code == 2 and says in err and len(err.splitlines()) == 1, (args, err)
        assert not (tmp_path / "bad.mp4").exists()


# ---------------------------------------------------------------- a Stable-Diffusion-layout folder, end to end
def make_tiny_sd_folder(path: Path) -> Path:
    """unet/ (a 2-block UNet2DConditionModel on 4 latent channels), vae/ (a tiny AutoencoderKL, 2x), text_encoder/
    (a tiny CLIPTextModel), tokenizer/ (MiniLM's files: any tokenizer AutoTokenizer reads), scheduler/ (SD's)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel

    from vidiff.conditioning.text import default_encoder_path

    torch.manual_seed(0)
    UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 32),
                         down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                         up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1,
                         attention_head_dim=4, norm_num_groups=8, cross_attention_dim=16).save_pretrained(path / "unet")
    AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4,
                  norm_num_groups=8, sample_size=16).save_pretrained(path / "vae")
    CLIPTextModel(CLIPTextConfig(vocab_size=30522, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, max_position_embeddings=64)).save_pretrained(path / "text_encoder")
    # a tokenizer as long as the encoder's positions, as in Stable Diffusion (77 and 77): here 16 of its 64
    AutoTokenizer.from_pretrained(default_encoder_path(), model_max_length=16).save_pretrained(path / "tokenizer")
    DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                  prediction_type="epsilon").save_pretrained(path / "scheduler")
    return path


def test_a_diffusers_folder_reads_prompts_as_its_stable_diffusion_pipeline(tmp_path):
    """The prompt and the empty one padded to the tokenizer's length, the padding attended: diffusers'
    ``StableDiffusionPipeline.encode_prompt`` gives the same embeddings, and the U-Net sees every position."""
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel

    from vidiff.pipelines.inflate import inflate

    sd = make_tiny_sd_folder(tmp_path / "sd")
    pipe = inflate(sd, "motion-module")
    assert pipe.text_encoder.features == "padded" and pipe.text_encoder.max_length == 16
    ref = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(sd / "vae"), text_encoder=CLIPTextModel.from_pretrained(sd / "text_encoder"),
        tokenizer=AutoTokenizer.from_pretrained(sd / "tokenizer"), unet=UNet2DConditionModel.from_pretrained(sd / "unet"),
        scheduler=DDPMScheduler.from_pretrained(sd / "scheduler"), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    for caption in ("a red circle moving left", "", "a very long caption " * 8):
        want, _ = ref.encode_prompt(caption, torch.device("cpu"), 1, False)
        emb, mask = pipe.text_encoder.encode([caption])
        assert emb.shape == want.shape == (1, 16, 16) and bool(mask.all()), caption
        torch.testing.assert_close(emb, want, rtol=0, atol=1e-6)
    # vidiff's own reading of the same encoder: the caption's tokens alone, masked. CLIP attends causally, so those
    # read the same; what the padded reading adds is the padding, attended by the U-Net as SD was trained
    from vidiff.conditioning.text import TextEncoder

    short, short_mask = TextEncoder(sd / "text_encoder").encode(["a red circle"])
    emb, mask = pipe.text_encoder.encode(["a red circle"])
    k = short.shape[1]
    assert k < 16 and bool(short_mask.all()) and emb.shape[1] == 16 and bool(mask.all())
    torch.testing.assert_close(emb[:, :k], short, rtol=0, atol=1e-5)


def test_a_stable_diffusion_layout_folder_end_to_end(tmp_path, capsys):
    """inflate -> 3 training steps on a folder of mp4 clips -> generate -> a playable mp4, all on the latent path."""
    import av
    import numpy as np

    from vidiff.io.video import write_video
    from vidiff.pipelines.text_to_video import TextToVideoPipeline
    from vidiff.training.config import config_from_dict
    from vidiff.training.trainer import train

    sd = make_tiny_sd_folder(tmp_path / "sd")
    code, err = _cli(["inflate", str(sd), "--arch", "stunet", "-o", str(tmp_path / "video")], capsys)
    assert code == 0, err
    video = tmp_path / "video"
    assert {"vae", "text_encoder", "tokenizer", "unet", "scheduler"} <= {p.name for p in video.iterdir()}
    meta = json.loads((video / "vidiff_pipeline.json").read_text())
    assert meta["text_encoder"] == "text_encoder" and meta["diffusion"]["beta_end"] == 0.012
    assert meta["text_features"] == "padded"
    pipe = TextToVideoPipeline.from_pretrained(video)
    assert pipe.latent_scale == 2 and pipe.defaults["height"] == 16
    data = tmp_path / "clips"
    data.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(3):
        write_video((rng.random((6, 16, 16, 3)) * 255).astype(np.uint8), data / f"c{i}.mp4", fps=8, view_size=16)
        rows.append(f"c{i}.mp4,a clip number {i}")
    (data / "train.csv").write_text("path,caption\n" + "\n".join(rows) + "\n")
    cfg = config_from_dict({
        "data": {"kind": "folder", "manifest": str(data / "train.csv"), "num_frames": 4, "resolution": 16},
        "diffusion": {"prediction_type": "epsilon", "beta_schedule": "scaled_linear", "beta_start": 0.00085,
                      "beta_end": 0.012},
        "text_encoder": str(video / "text_encoder"), "text_features": "padded",
        "train": {"steps": 3, "batch_size": 2, "checkpoint_every": 3, "mixed_precision": "no",
                  "init_from": str(video)},
        "output_dir": str(tmp_path / "run")})
    final = train(cfg, progress=False)
    assert (final / "vae").is_dir() and (final / "text_encoder").is_dir()
    code, err = _cli(["generate", "a clip number 1", "--model", str(final), "--frames", "4", "--steps", "3", "-q",
                      "-o", str(tmp_path / "out.mp4")], capsys)
    assert code == 0, err
    with av.open(str(tmp_path / "out.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 4 and frames[0].shape[2] == 3
    # sizes are checked in the U-Net's units before anything loads: 15 px is not a whole number of latents
    code, err = _cli(["generate", "a clip", "--model", str(final), "--size", "15", "-q", "-o", str(tmp_path / "b.mp4")],
                     capsys)
    assert code == 2 and "autoencoder's scale" in err and not (tmp_path / "b.mp4").exists()
    # a recipe whose schedule is not the model's is refused before anything is written
    bad = config_from_dict({**cfg.to_dict(), "diffusion": {}, "output_dir": str(tmp_path / "run2")})
    with pytest.raises(ValueError, match="not the schedule of"):
        train(bad, progress=False)
    # and so is one that would read text otherwise than the model (masked, not padded)
    bad = config_from_dict({**cfg.to_dict(), "text_features": "last", "output_dir": str(tmp_path / "run2")})
    with pytest.raises(ValueError, match="reads text as 'padded'"):
        train(bad, progress=False)
    assert not (tmp_path / "run2").exists()


def one_clip_manifest(tmp_path: Path) -> Path:
    """A manifest of one random 6-frame 16 px mp4 clip captioned "a clip"."""
    import numpy as np

    from vidiff.io.video import write_video

    clips = tmp_path / "clips"
    clips.mkdir()
    write_video((np.random.default_rng(0).random((6, 16, 16, 3)) * 255).astype(np.uint8), clips / "c.mp4", fps=8,
                view_size=16)
    (clips / "train.csv").write_text("path,caption\nc.mp4,a clip\n")
    return clips / "train.csv"


def test_output_type_latent_gives_the_samples_before_the_vae_as_diffusers_does(tmp_path, tiny_pipeline_dir,
                                                                                tiny_conditional_dir):
    from vidiff.pipelines.conditional import ImageToVideoPipeline
    from vidiff.pipelines.inflate import inflate
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    pipe = inflate(make_tiny_sd_folder(tmp_path / "sd"), "motion-module")
    call = dict(num_frames=4, num_inference_steps=2)
    out = pipe("a red circle", output_type="latent", generator=torch.Generator().manual_seed(0), **call)
    video = pipe("a red circle", output_type="pt", generator=torch.Generator().manual_seed(0), **call)
    assert out.frames.shape == (1, 4, 4, 8, 8) and video.videos.shape == (1, 3, 4, 16, 16)
    assert out.frames.min() < -0.5 and out.frames.max() > 0.5  # latents, not a [0, 1] video
    assert torch.equal(pipe.to_pixels(out.frames), video.videos)
    (frames,) = pipe("a red circle", output_type="latent", generator=torch.Generator().manual_seed(0),
                     return_dict=False, **call)
    assert torch.equal(frames, out.frames)
    with pytest.raises(ValueError, match="not a video: pipe.to_pixels"):
        out.save(tmp_path / "latents.mp4")
    assert not list(tmp_path.glob("latents*"))
    with pytest.raises(ValueError, match="works in pixels"):  # it was "unknown output_type" for every model
        TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)("a red circle", output_type="latent")
    with pytest.raises(ValueError, match="for text-to-video with a latent model"):
        ImageToVideoPipeline.from_pretrained(tiny_conditional_dir)("a red circle", torch.rand(1, 3, 16, 16),
                                                                   output_type="latent")


def test_a_plain_stable_diffusion_folder_is_taken_where_an_image_model_is(tmp_path, capsys):
    """No vidiff_pipeline.json: zero-shot video from it, its sizes and guidance as diffusers' defaults, a fine-tune of
    it (another folder of the same layout) under an inflated model's temporal layers, and a recipe inflating it."""
    from diffusers import UNet2DConditionModel

    from vidiff.pipelines.folder import read_meta
    from vidiff.pipelines.text_to_video import TextToVideoPipeline
    from vidiff.training.config import config_from_dict
    from vidiff.training.trainer import train

    sd = make_tiny_sd_folder(tmp_path / "sd")
    meta = read_meta(sd)
    assert meta["text_features"] == "padded" and meta["defaults"]["height"] == 16  # 8 latents x the VAE's 2
    assert meta["defaults"]["guidance_scale"] == 7.5 and meta["diffusion"]["beta_schedule"] == "scaled_linear"
    code, err = _cli(["generate", "a red circle moving left", "--model", str(sd), "--zero-shot", "--frames", "4",
                      "--steps", "6", "-q", "-o", str(tmp_path / "z.mp4")], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "z.json").read_text())["height"] == 16
    code, err = _cli(["generate", "a red circle", "--model", str(sd), "-q", "-o", str(tmp_path / "bad.mp4")], capsys)
    assert code == 2 and "add --zero-shot" in err and not (tmp_path / "bad.mp4").exists()

    tuned = make_tiny_sd_folder(tmp_path / "tuned")  # the same layout, other U-Net weights: a "DreamBooth" of it
    UNet2DConditionModel.from_pretrained(tuned / "unet").requires_grad_(False).apply(
        lambda m: [p.mul_(0.9) for p in m.parameters(recurse=False)]).save_pretrained(tuned / "unet")
    code, err = _cli(["inflate", str(sd), "--arch", "motion-module", "-o", str(tmp_path / "video")], capsys)
    assert code == 0, err
    code, err = _cli(["generate", "a red circle", "--model", str(tmp_path / "video"), "--image-model", str(tuned),
                      "--frames", "4", "--steps", "2", "-q", "-o", str(tmp_path / "p.mp4")], capsys)
    assert code == 0, err
    # a DreamBooth that trained its text encoder too brings it along
    from transformers import CLIPTextModel

    te = CLIPTextModel.from_pretrained(tuned / "text_encoder")
    with torch.no_grad():
        te.encoder.layers[0].self_attn.q_proj.weight.mul_(1.5)
    te.save_pretrained(tuned / "text_encoder")
    video = TextToVideoPipeline.from_pretrained(tmp_path / "video")
    swapped = video.with_image_model(tuned)
    assert torch.equal(swapped.text_encoder.model.encoder.layers[0].self_attn.q_proj.weight,
                       te.encoder.layers[0].self_attn.q_proj.weight)
    assert not torch.allclose(swapped.text_encoder.encode(["a red circle"])[0], video.text_encoder.encode(["a red circle"])[0])
    with pytest.raises(ValueError, match="a scale cannot reach"):  # it would scale the U-Net, not the text encoder
        video.with_image_model(tuned, scale=1.5)

    cfg = config_from_dict({
        "data": {"kind": "folder", "manifest": str(one_clip_manifest(tmp_path)), "num_frames": 4, "resolution": 16},
        "diffusion": meta["diffusion"], "model": {"inflate": "motion-module"},
        "text_encoder": str(sd / "text_encoder"), "text_features": "padded",
        "train": {"steps": 1, "batch_size": 1, "checkpoint_every": 1, "mixed_precision": "no", "init_from": str(sd)},
        "output_dir": str(tmp_path / "run")})
    final = train(cfg, progress=False)
    assert read_meta(final)["text_features"] == "padded" and (final / "vae").is_dir()
    # AnimateDiff's layout from the recipe too, a new adapter (or model.motion_adapter: a MotionAdapter folder)
    ad = train(config_from_dict({**cfg.to_dict(), "model": {"inflate": "animatediff"},
                                 "output_dir": str(tmp_path / "run-ad")}), progress=False)
    assert (ad / "motion_adapter").is_dir() and json.loads((ad / "unet" / "config.json").read_text())[
        "_class_name"] == "UNetMotionModel"
    bad = config_from_dict({**cfg.to_dict(), "model": {"inflate": "animatediff", "heads": 2},
                            "output_dir": str(tmp_path / "run-bad")})
    with pytest.raises(ValueError, match="takes only model.motion_adapter"):
        train(bad, progress=False)
    assert not (tmp_path / "run-bad").exists()


def make_tiny_motion_adapter(path: Path, block_out_channels=(32, 32)) -> Path:
    """A diffusers MotionAdapter for make_tiny_sd_folder's U-Net, its motion modules moved off diffusers' init."""
    from diffusers import MotionAdapter

    torch.manual_seed(1)
    adapter = MotionAdapter(block_out_channels=block_out_channels, motion_layers_per_block=1,
                            motion_num_attention_heads=2, motion_norm_num_groups=8, motion_max_seq_length=8)
    with torch.no_grad():
        for p in adapter.parameters():
            p.add_(0.02 * torch.randn_like(p))
    adapter.save_pretrained(path)
    return path


def test_an_animatediff_motion_adapter_runs_under_every_command(tmp_path, capsys, image_dir):
    """--arch animatediff: diffusers' UNetMotionModel with a MotionAdapter folder, behind vidiff's contract. The
    denoiser equals diffusers' own model called as its AnimateDiffPipeline calls it; generate writes a clip;
    temporal-only training moves the motion modules only; misfits are one line each, nothing written."""
    from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel

    from vidiff.pipelines.folder import load_unet, read_meta
    from vidiff.pipelines.inflate import inflate
    from vidiff.pipelines.text_to_video import TextToVideoPipeline
    from vidiff.training.config import config_from_dict
    from vidiff.training.trainer import train

    sd = make_tiny_sd_folder(tmp_path / "sd")
    adapter = make_tiny_motion_adapter(tmp_path / "adapter")
    code, err = _cli(["inflate", str(sd), "--arch", "animatediff", "--motion-adapter", str(adapter), "-o",
                      str(tmp_path / "ad")], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "ad" / "unet" / "config.json").read_text())["_class_name"] == "UNetMotionModel"
    pipe = TextToVideoPipeline.from_pretrained(tmp_path / "ad")
    ref = UNetMotionModel.from_unet2d(UNet2DConditionModel.from_pretrained(sd / "unet"),
                                      MotionAdapter.from_pretrained(adapter)).eval()
    assert UNetMotionModel.from_pretrained(tmp_path / "ad" / "unet") is not None  # diffusers reads the folder
    x, t = torch.randn(2, 4, 6, 8, 8), torch.tensor([700, 300])
    text, mask = pipe.text_encoder.encode(["a red circle moving left", ""])
    with torch.no_grad():
        got = pipe.unet(x, t, text, mask)
        want = ref(x, t, encoder_hidden_states=text.repeat_interleave(6, 0)).sample
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert not torch.allclose(got[:, :, 0], got[:, :, 1], atol=1e-3)  # the frames talk to each other
    code, err = _cli(["generate", "a red circle", "--model", str(tmp_path / "ad"), "--frames", "4", "--steps", "2",
                      "-q", "-o", str(tmp_path / "ad.mp4")], capsys)
    assert code == 0, err

    cfg = config_from_dict({
        "data": {"kind": "folder", "manifest": str(one_clip_manifest(tmp_path)), "num_frames": 4, "resolution": 16},
        "diffusion": read_meta(sd)["diffusion"], "text_encoder": str(tmp_path / "ad" / "text_encoder"),
        "text_features": "padded",
        "train": {"steps": 2, "batch_size": 1, "checkpoint_every": 2, "mixed_precision": "no", "lr": 1e-3,
                  "init_from": str(tmp_path / "ad")},
        "output_dir": str(tmp_path / "run")})
    before = pipe.unet.state_dict()
    final = train(cfg, progress=False)
    after = TextToVideoPipeline.from_pretrained(final).unet.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all("motion_modules" in k for k in moved), sorted(moved)[:3]
    # the trained adapter on its own (diffusers reads it), into another image model of the same layout
    assert list(MotionAdapter.from_pretrained(final / "motion_adapter").config.block_out_channels) == [32, 32]
    other = make_tiny_sd_folder(tmp_path / "other")
    code, err = _cli(["inflate", str(other), "--arch", "animatediff", "--motion-adapter", str(final / "motion_adapter"),
                      "-o", str(tmp_path / "ad2")], capsys)
    assert code == 0, err
    moved_key = sorted(moved)[0]
    assert torch.equal(TextToVideoPipeline.from_pretrained(tmp_path / "ad2").unet.state_dict()[moved_key],
                       after[moved_key])

    # new motion modules (no adapter given) start as the identity: the image model, frame by frame
    with torch.no_grad():
        fresh = inflate(sd, "animatediff").unet(x, t, text, mask)
        frames = load_unet(sd / "unet", torch.float32)(x, t, text, mask)
    torch.testing.assert_close(fresh, frames, rtol=0, atol=1e-5)

    for args, says in ((["--arch", "animatediff", "--motion-adapter", str(make_tiny_motion_adapter(
                            tmp_path / "wide", (32, 64)))], "block_out_channels"),
                       (["--arch", "animatediff", "--motion-adapter", str(sd / "unet")], "expected a diffusers MotionAdapter"),
                       (["--arch", "stunet", "--motion-adapter", str(adapter)], "goes with --arch animatediff")):
        code, err = _cli(["inflate", str(sd), *args, "-o", str(tmp_path / "bad")], capsys)
        assert code == 2 and says in err and len(err.splitlines()) == 1, (args, err)
        assert not (tmp_path / "bad").exists()
    # a vidiff image model reads masked text, which diffusers' UNetMotionModel cannot take
    code, err = _cli(["inflate", str(image_dir), "--arch", "animatediff", "-o", str(tmp_path / "bad")], capsys)
    assert code == 2 and "takes no text mask" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()


def test_a_kohya_lora_changes_the_unet_and_the_text_encoder_as_a1111_applies_it(tmp_path, capsys):
    """Community LoRAs (kohya's keys, an alpha per module, a text-encoder half): fused as W + scale alpha / rank
    up down into the image U-Net (vidiff's motion-module inflation and AnimateDiff's) and into a copy of the CLIP text
    encoder, never its cache; one naming a module the model lacks is one line, exit 2."""
    from safetensors.torch import save_file

    from vidiff.pipelines.inflate import inflate

    sd = make_tiny_sd_folder(tmp_path / "sd")
    pipe = inflate(sd, "motion-module", tmp_path / "video")
    unet_name, te_name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", "encoder.layers.0.self_attn.q_proj"
    W = dict(pipe.unet.image_unet.named_modules())[unet_name].weight.detach().clone()
    T = dict(pipe.text_encoder.model.named_modules())[te_name].weight.detach().clone()
    g = torch.Generator().manual_seed(0)
    ud, uu = torch.randn(4, W.shape[1], generator=g), torch.randn(W.shape[0], 4, generator=g)
    td, tu = torch.randn(2, T.shape[1], generator=g), torch.randn(T.shape[0], 2, generator=g)
    uk, tk = "lora_unet_" + unet_name.replace(".", "_"), "lora_te_text_model_" + te_name.replace(".", "_")
    save_file({f"{uk}.lora_down.weight": ud, f"{uk}.lora_up.weight": uu, f"{uk}.alpha": torch.tensor(2.0),
               f"{tk}.lora_down.weight": td, f"{tk}.lora_up.weight": tu, f"{tk}.alpha": torch.tensor(1.0)},
              str(tmp_path / "kohya.safetensors"))
    out = pipe.with_image_model(tmp_path / "kohya.safetensors", scale=0.5)
    got = dict(out.unet.image_unet.named_modules())[unet_name].weight
    torch.testing.assert_close(got, W + 0.5 * 2.0 / 4 * uu @ ud, rtol=0, atol=1e-5)
    got = dict(out.text_encoder.model.named_modules())[te_name].weight
    torch.testing.assert_close(got, T + 0.5 * 1.0 / 2 * tu @ td, rtol=0, atol=1e-5)
    assert out.text_encoder is not pipe.text_encoder and torch.equal(
        dict(pipe.text_encoder.model.named_modules())[te_name].weight, T)  # the original is untouched
    assert not torch.allclose(out.text_encoder.encode(["a red circle"])[0], pipe.text_encoder.encode(["a red circle"])[0])

    # the original LDM naming of older A1111 LoRAs: input_blocks.1.1 is down_blocks.0.attentions.0 here
    K = dict(pipe.unet.image_unet.named_modules())[unet_name.replace("to_q", "to_k")].weight.detach().clone()
    save_file({"lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_k.lora_down.weight": ud,
               "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_k.lora_up.weight": uu},
              str(tmp_path / "ldm.safetensors"))
    got = dict(pipe.with_image_model(tmp_path / "ldm.safetensors").unet.image_unet.named_modules())[
        unet_name.replace("to_q", "to_k")].weight
    torch.testing.assert_close(got, K + uu @ ud, rtol=0, atol=1e-5)  # no alpha: alpha = rank

    adapter = make_tiny_motion_adapter(tmp_path / "adapter")
    ad = inflate(sd, "animatediff", motion_adapter=adapter).with_image_model(tmp_path / "kohya.safetensors")
    torch.testing.assert_close(dict(ad.unet.named_modules())[unet_name].weight, W + 2.0 / 4 * uu @ ud, rtol=0, atol=1e-5)
    # below a boundary: a LoRA of the U-Net only splits the steps; one that changes the text encoder too cannot
    from vidiff.models.experts import TimestepExperts

    split = inflate(sd, "animatediff", motion_adapter=adapter).with_image_model(tmp_path / "ldm.safetensors",
                                                                                   boundary_ratio=0.5)
    k_name = unet_name.replace("to_q", "to_k")
    assert isinstance(split.unet, TimestepExperts) and split.unet.boundary == 500
    assert torch.equal(dict(split.unet.high.named_modules())[k_name].weight, K)  # its own above the boundary
    torch.testing.assert_close(dict(split.unet.low.named_modules())[k_name].weight, K + uu @ ud, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="brings its own text encoder"):
        pipe.with_image_model(tmp_path / "kohya.safetensors", boundary_ratio=0.5)

    code, err = _cli(["generate", "a red circle", "--model", str(tmp_path / "video"), "--image-model",
                      str(tmp_path / "kohya.safetensors"), "--frames", "4", "--steps", "2", "-q", "-o",
                      str(tmp_path / "k.mp4")], capsys)
    assert code == 0, err
    save_file({"lora_unet_mid_block_nothing_here.lora_down.weight": ud, "lora_unet_mid_block_nothing_here.lora_up.weight": uu},
              str(tmp_path / "other.safetensors"))
    code, err = _cli(["generate", "a red circle", "--model", str(tmp_path / "video"), "--image-model",
                      str(tmp_path / "other.safetensors"), "-q", "-o", str(tmp_path / "bad.mp4")], capsys)
    assert code == 2 and "does not have" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "bad.mp4").exists()


def test_stable_diffusion_folders_as_they_are_downloaded(tmp_path, capsys):
    """A hub snapshot holds several weight files: the default one is read (not the fp16 or non-EMA variant beside
    it); a download made with variant="fp16" holds only the fp16 ones, read in fp32; a large U-Net comes in shards;
    a pickle-only U-Net is refused, naming why."""
    import shutil

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    from vidiff.pipelines.inflate import inflate

    sd = make_tiny_sd_folder(tmp_path / "sd")
    unet = UNet2DConditionModel.from_pretrained(sd / "unet")
    want = unet.state_dict()["conv_in.weight"].clone()
    other = UNet2DConditionModel.from_config(unet.config)  # other weights under the variants' names
    other.save_pretrained(sd / "unet", variant="fp16")
    other.save_pretrained(sd / "unet", variant="non_ema")
    assert torch.equal(inflate(sd, "motion-module").unet.image_unet.state_dict()["conv_in.weight"], want)

    fp16 = tmp_path / "sd-fp16"  # only fp16 variants, as `from_pretrained(..., variant="fp16")` downloads them
    shutil.copytree(sd, fp16, ignore=shutil.ignore_patterns("*.safetensors"))
    UNet2DConditionModel.from_pretrained(sd / "unet").half().save_pretrained(fp16 / "unet", variant="fp16")
    AutoencoderKL.from_pretrained(sd / "vae").half().save_pretrained(fp16 / "vae", variant="fp16")
    CLIPTextModel.from_pretrained(sd / "text_encoder").half().save_pretrained(fp16 / "text_encoder", variant="fp16")
    assert not list(fp16.glob("*/diffusion_pytorch_model.safetensors")) and not (fp16 / "text_encoder" / "model.safetensors").exists()
    pipe = inflate(fp16, "motion-module", tmp_path / "video-fp16")
    got = pipe.unet.image_unet.state_dict()["conv_in.weight"]
    assert got.dtype == torch.float32 and torch.equal(got, want.half().float())
    assert pipe.vae.dtype == torch.float32 and next(pipe.text_encoder.model.parameters()).dtype == torch.float32
    code, err = _cli(["generate", "a clip", "--model", str(tmp_path / "video-fp16"), "--frames", "2", "--steps", "2",
                      "-q", "-o", str(tmp_path / "fp16.mp4")], capsys)
    assert code == 0, err

    sharded = tmp_path / "sd-sharded"
    shutil.copytree(sd, sharded, ignore=shutil.ignore_patterns("diffusion_pytorch_model*"))
    shutil.copytree(sd / "vae", sharded / "vae", dirs_exist_ok=True)
    unet.save_pretrained(sharded / "unet", max_shard_size="100KB")
    assert len(list((sharded / "unet").glob("*.safetensors"))) > 1
    assert torch.equal(inflate(sharded, "stunet").unet.image_unet.state_dict()["conv_in.weight"], want)
    shutil.rmtree(sharded / "unet")  # and fp16 shards, as a variant="fp16" download of a large model holds them
    UNet2DConditionModel.from_pretrained(sd / "unet").half().save_pretrained(sharded / "unet", variant="fp16",
                                                                           max_shard_size="100KB")
    got = inflate(sharded, "stunet").unet.image_unet.state_dict()["conv_in.weight"]
    assert torch.equal(got, want.half().float())

    pickled = tmp_path / "sd-bin"
    shutil.copytree(sd, pickled, ignore=shutil.ignore_patterns("diffusion_pytorch_model*"))
    shutil.copytree(sd / "vae", pickled / "vae", dirs_exist_ok=True)
    unet.save_pretrained(pickled / "unet", safe_serialization=False)
    code, err = _cli(["inflate", str(pickled), "-o", str(tmp_path / "bad")], capsys)
    assert code == 2 and "safetensors only" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()


# ---------------------------------------------------------------- personalization and styles of the image model
def trained_motion_module(image_dir: Path, video: Path):
    """``image_dir`` inflated with a motion module moved off its identity init ("trained"), saved at ``video`` and
    loaded back."""
    from vidiff.pipelines.inflate import inflate

    pipe = inflate(image_dir, "motion-module", video)
    with torch.no_grad():
        for p in pipe.unet.temporal_parameters():
            p.add_(0.05)
    pipe.save_pretrained(video, overwrite=True)
    return type(pipe).from_pretrained(video)


def test_another_image_model_and_image_styles_keep_the_motion_module(image_dir, tmp_path, tiny_text_encoder, capsys,
                                                                     tiny_pipeline_dir):
    from vidiff.pipelines.folder import load_unet

    video = tmp_path / "video"
    pipe = trained_motion_module(image_dir, video)
    styled_dir = make_image_folder(tmp_path / "styled", tiny_text_encoder, seed=7)  # a "fine-tune": other weights
    styled = load_unet(styled_dir / "unet", torch.float32)
    own = pipe.unet.image_unet.state_dict()
    for alpha in (1.0, 0.5):
        out = pipe.with_image_model(styled_dir) if alpha == 1.0 else pipe.with_style(styled_dir, alpha)
        new = out.unet.state_dict()
        for k, v in pipe.unet.motion_state_dict().items():
            assert torch.equal(new[k], v), k  # the motion module is kept
        w = "conv_in.weight"
        assert torch.allclose(new["image_unet." + w], torch.lerp(own[w], styled.state_dict()[w], alpha))
    code, err = _cli(["generate", "a red circle", "--model", str(video), "--image-model", str(styled_dir), "--frames",
                      "4", "--steps", "2", "-q", "-o", str(tmp_path / "p.mp4")], capsys)
    assert code == 0, err
    other = make_image_folder(tmp_path / "other", tiny_text_encoder, block_out_channels=(32, 64))
    for model, image, says in ((video, other, "another layout"), (tiny_pipeline_dir, styled_dir, "needs a model inflated")):
        code, err = _cli(["generate", "a red circle", "--model", str(model), "--image-model", str(image), "-q",
                          "-o", str(tmp_path / "bad.mp4")], capsys)
        assert code == 2 and says in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "bad.mp4").exists()
    # --style: an image model is a style of an inflated model only, and an inflated model takes only an image model's
    for model, style, says in ((tiny_pipeline_dir, styled_dir, "is a text-to-image model, not a style of this video"),
                               (video, tiny_pipeline_dir, "a style of a model inflated from an image model")):
        code, err = _cli(["generate", "a red circle", "--model", str(model), "--style", str(style), "-q",
                          "-o", str(tmp_path / "bad.mp4")], capsys)
        assert code == 2 and says in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "bad.mp4").exists()


def test_the_image_model_of_a_trained_inflated_model_is_its_own_folder(image_dir, tmp_path, tiny_text_encoder,
                                                                       tiny_pipeline_dir):
    """image_pipeline(): the image weights as training left them (not the image model inflated from), a one-frame
    clip of the video model; saved, diffusers loads the folder and --image-model takes it back unchanged."""
    from diffusers import UNet2DConditionModel

    from vidiff.models.image import ImageUNet
    from vidiff.pipelines.inflate import inflate
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    pipe = inflate(image_dir, "stunet")
    with torch.no_grad():  # "trained" with the image layers trainable: every weight moved
        for p in pipe.unet.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    image = pipe.image_pipeline()
    assert isinstance(image.unet, ImageUNet) and isinstance(pipe.unet, InflatedUNet)
    x, t, text, mask = inputs(frames=1, dim=tiny_text_encoder.dim)
    with torch.no_grad():
        assert (image.unet(x, t, text, mask) - pipe.unet(x, t, text, mask)).abs().max() <= 1e-5
    image.save_pretrained(tmp_path / "own")
    plain = UNet2DConditionModel.from_pretrained(tmp_path / "own", subfolder="unet")
    trained = pipe.unet.image_unet.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in plain.state_dict().items())
    back = pipe.with_image_model(tmp_path / "own").unet.state_dict()
    assert all(torch.equal(v, back[k]) for k, v in pipe.unet.state_dict().items())
    assert not torch.equal(trained["conv_in.weight"], inflate(image_dir, "stunet").unet.image_unet.conv_in.weight)
    with pytest.raises(ValueError, match="held by a model inflated from one"):
        TextToVideoPipeline.from_pretrained(tiny_pipeline_dir).image_pipeline()


@pytest.mark.parametrize("args, kwargs, words", [
    ((3,), {}, "the image model is a folder path, got int"),  # TypeError from Path()
    (("{image}", "stunet"), {"bogus": 1}, "unknown inflation option(s) bogus; allowed: heads"),  # after the load
    (("{image}", "stunet"), {"temporal_attention_levels": [1]}, "unknown inflation option(s) temporal_attention_levels"),
])
def test_inflate_refuses_what_it_cannot_take_before_loading(args, kwargs, words, image_dir, monkeypatch):
    import vidiff.pipelines.folder as folder
    from vidiff.pipelines.inflate import inflate

    monkeypatch.setattr(folder, "load_unet", None)  # a load would fail with a TypeError
    with pytest.raises(ValueError, match=re.escape(words)):
        inflate(*[image_dir if a == "{image}" else a for a in args], **kwargs)


def test_another_image_model_below_a_boundary_keeps_the_model_s_own_above(image_dir, tmp_path, tiny_text_encoder,
                                                                          capsys):
    """with_image_model(boundary_ratio=r): the other image weights on the timesteps below r * T only, the model's own
    above (Wan 2.2's boundary between experts); r = 1 is the whole swap; a folder trained as a low-noise expert gives
    its own boundary; out-of-range ratios are one-line errors."""
    from vidiff.models.experts import TimestepExperts
    from vidiff.pipelines.inflate import inflate

    pipe = inflate(image_dir, "stunet")
    styled_dir = make_image_folder(tmp_path / "styled", tiny_text_encoder, seed=7)
    whole = pipe.with_image_model(styled_dir)
    below = pipe.with_image_model(styled_dir, boundary_ratio=0.5)
    assert isinstance(below.unet, TimestepExperts) and below.unet.boundary == 500
    assert below.style == {"image_model": str(styled_dir), "image_model_scale": 1.0, "boundary_ratio": 0.5}
    x, t, text, mask = inputs(dim=tiny_text_encoder.dim)  # t = (20, 700): one step on each side
    with torch.no_grad():
        got = below.unet(x, t, text, mask)
        assert torch.equal(got[:1], whole.unet(x[:1], t[:1], text[:1], mask[:1]))
        assert torch.equal(got[1:], pipe.unet(x[1:], t[1:], text[1:], mask[1:]))
        assert not torch.allclose(whole.unet(x, t, text, mask)[1:], got[1:])
    assert pipe.with_image_model(styled_dir, boundary_ratio=1).unet.__class__ is whole.unet.__class__
    # a style trained as a low-noise expert (train.timestep_max) carries its boundary: taken unless one is given
    image = type(pipe).from_pretrained(styled_dir)
    expert = image._with_unet(TimestepExperts(image.unet, image.unet, 700), None)
    expert.save_pretrained(tmp_path / "low-expert")
    assert pipe.with_image_model(tmp_path / "low-expert").unet.boundary == 700
    assert not isinstance(pipe.with_image_model(tmp_path / "low-expert", boundary_ratio=1.0).unet, TimestepExperts)
    # a style of the image model blended on top reaches the image weights below the boundary
    other_dir = make_image_folder(tmp_path / "other", tiny_text_encoder, seed=3)
    styled = below.with_style(other_dir, 0.5)
    assert torch.equal(styled.unet.high.image_unet.conv_in.weight, pipe.unet.image_unet.conv_in.weight)
    other = type(pipe).from_pretrained(other_dir).unet.conv_in.weight
    torch.testing.assert_close(styled.unet.low.image_unet.conv_in.weight,
                               torch.lerp(below.unet.low.image_unet.conv_in.weight, other, 0.5))
    for bad in (0, 1.5, -0.1, True, "0.5", float("nan")):
        with pytest.raises(ValueError, match="boundary_ratio must be a number in"):
            pipe.with_image_model(styled_dir, boundary_ratio=bad)
    pipe.save_pretrained(tmp_path / "video")
    sidecar = _generate_with_image_model(
        tmp_path, capsys, refused=((["--image-model-boundary", "0.5"], "give --image-model too"),
                                   (["--image-model", str(styled_dir), "--image-model-boundary", "0"], "must be in (0, 1]")),
        accepted=["--image-model", str(styled_dir), "--image-model-boundary", "0.7"])
    assert sidecar["boundary_ratio"] == 0.7  # the sidecar says so


def _generate_with_image_model(tmp_path: Path, capsys, refused, accepted: list[str]) -> dict:
    """``vidiff generate`` on the model saved in tmp_path/video: each of ``refused`` ((flags, what the error says)) is
    one line, exit 2, nothing written; then the ``accepted`` flags make a clip, whose sidecar is returned."""
    for extra, says in refused:
        code, err = _cli(["generate", "a red circle", "--model", str(tmp_path / "video"), *extra, "-q",
                          "-o", str(tmp_path / "bad.mp4")], capsys)
        assert code == 2 and says in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "bad.mp4").exists()
    code, err = _cli(["generate", "a red circle", "--model", str(tmp_path / "video"), *accepted, "--frames", "4",
                      "--steps", "2", "-q", "-o", str(tmp_path / "p.mp4")], capsys)
    assert code == 0, err
    return json.loads((tmp_path / "p.json").read_text())


def test_a_scale_applies_more_or_less_of_the_other_image_model(image_dir, tmp_path, tiny_text_encoder, capsys):
    """with_image_model(scale=s): image weights W + s (W_other - W), the temporal layers kept; s > 1 extrapolates
    (a stronger style of the same fine-tune), below a boundary too; lora_scale is its former name; bad scales are
    one-line errors and the CLI's --image-model-scale is recorded in the sidecar."""
    from vidiff.pipelines.inflate import inflate

    pipe = inflate(image_dir, "stunet")
    styled_dir = make_image_folder(tmp_path / "styled", tiny_text_encoder, seed=7)
    own = pipe.unet.image_unet.state_dict()
    other = type(pipe).from_pretrained(styled_dir).unet.state_dict()
    for scale in (1.0, 1.5, 0.5, -0.5):
        got = pipe.with_image_model(styled_dir, scale=scale)
        assert got.style["image_model_scale"] == scale
        for key in ("conv_in.weight", "up_blocks.0.resnets.0.conv1.weight"):
            want = own[key] + scale * (other[key] - own[key])
            if scale == 1.0:
                assert torch.equal(got.unet.image_unet.state_dict()[key], other[key])  # the other model as it is
            torch.testing.assert_close(got.unet.image_unet.state_dict()[key], want, rtol=0, atol=1e-6)
        assert all(torch.equal(v, pipe.unet.state_dict()[k]) for k, v in got.unet.state_dict().items()
                   if not k.startswith("image_unet."))  # the temporal layers are kept
    split = pipe.with_image_model(styled_dir, 1.5, boundary_ratio=0.5)
    assert torch.equal(split.unet.high.image_unet.conv_in.weight, own["conv_in.weight"])
    torch.testing.assert_close(split.unet.low.image_unet.conv_in.weight,
                               own["conv_in.weight"] + 1.5 * (other["conv_in.weight"] - own["conv_in.weight"]))
    with pytest.warns(FutureWarning, match="now scale"):
        old = pipe.with_image_model(styled_dir, lora_scale=1.5)
    assert torch.equal(old.unet.image_unet.conv_in.weight, pipe.with_image_model(styled_dir, 1.5).unet.image_unet.conv_in.weight)
    with pytest.raises(ValueError, match="not both"):
        pipe.with_image_model(styled_dir, 2.0, lora_scale=1.5)
    for bad, says in ((True, "scale must be a number"), ("1.5", "scale must be a number"),
                      (float("nan"), "scale must be a finite number"), (float("inf"), "scale must be a finite number")):
        with pytest.raises(ValueError, match=says):
            pipe.with_image_model(styled_dir, bad)
    pipe.save_pretrained(tmp_path / "video")
    sidecar = _generate_with_image_model(
        tmp_path, capsys, refused=((["--image-model-scale", "1.5"], "give --image-model too"),
                                   (["--image-model", str(styled_dir), "--image-model-scale", "nan"], "must be a finite")),
        accepted=["--image-model", str(styled_dir), "--image-model-scale", "1.25", "--image-model-boundary", "0.5"])
    assert sidecar["image_model_scale"] == 1.25 and sidecar["boundary_ratio"] == 0.5
