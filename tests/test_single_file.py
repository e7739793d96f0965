"""Single-file checkpoints (the original Stable Diffusion / LDM layout) into diffusers folders: `vidiff convert`.

No real checkpoint is on these machines, so the tests write one: a tiny SD-layout folder (test_inflation's) is
turned into one LDM-layout safetensors file by :func:`to_ldm` below, the inverse of diffusers' single-file
conversion written from CompVis' names. The round trip (file -> `vidiff convert` -> the folder's weights equal to
the original's) checks both directions: a wrong name on either side leaves a key unloaded or a shape wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from test_inflation import _cli, make_tiny_sd_folder

# ---------------------------------------------------------------- diffusers -> LDM names (test-only writer)
_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
           ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))


def _unet_pairs(cfg) -> list[tuple[str, str]]:
    n, per = len(cfg["block_out_channels"]), cfg["layers_per_block"]
    pairs = [("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
             ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2."),
             ("mid_block.attentions.0.", "middle_block.1."), ("mid_block.resnets.0.", "middle_block.0."),
             ("mid_block.resnets.1.", "middle_block.2.")]
    for i in range(n):
        down_attn, up_attn = "CrossAttn" in cfg["down_block_types"][i], "CrossAttn" in cfg["up_block_types"][i]
        for j in range(per):
            pairs.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{(per + 1) * i + j + 1}.0."))
            if down_attn:
                pairs.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{(per + 1) * i + j + 1}.1."))
        for j in range(per + 1):
            pairs.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{(per + 1) * i + j}.0."))
            if up_attn:
                pairs.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{(per + 1) * i + j}.1."))
        if i < n - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(per + 1) * (i + 1)}.0.op."))
            pairs.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{(per + 1) * i + per}.{2 if up_attn else 1}."))
    return pairs


def _vae_pairs(cfg) -> list[tuple[str, str]]:
    n, per = len(cfg["block_out_channels"]), cfg["layers_per_block"]
    pairs = []
    for side in ("encoder.", "decoder."):
        pairs += [(side + "mid_block.resnets.0.", side + "mid.block_1."), (side + "mid_block.resnets.1.", side + "mid.block_2."),
                  (side + "mid_block.attentions.0.", side + "mid.attn_1."), (side + "conv_norm_out.", side + "norm_out.")]
    for i in range(n):
        pairs += [(f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}.") for j in range(per)]
        pairs += [(f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{n - 1 - i}.block.{j}.") for j in range(per + 1)]
        if i < n - 1:
            pairs += [(f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample."),
                      (f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{n - 1 - i}.upsample.")]
    return pairs


def to_ldm(folder: Path, parts=("unet", "vae", "text_encoder")) -> dict[str, torch.Tensor]:
    """One LDM-layout state dict of a diffusers SD-1.x folder's ``parts``."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    out = {}
    if "unet" in parts:
        unet = UNet2DConditionModel.from_pretrained(folder / "unet")
        pairs = _unet_pairs(unet.config)
        for key, v in unet.state_dict().items():
            hf, ldm = next((hf, ldm) for hf, ldm in pairs if key.startswith(hf))
            rest = key[len(hf):]
            if ".resnets." in hf:
                rest = next((b + rest[len(a):] for a, b in _RESNET if rest.startswith(a + ".")), rest)
            out["model.diffusion_model." + ldm + rest] = v
    if "vae" in parts:
        vae = AutoencoderKL.from_pretrained(folder / "vae")
        pairs = _vae_pairs(vae.config)
        attn = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}
        for key, v in vae.state_dict().items():
            hf, ldm = next(((hf, ldm) for hf, ldm in pairs if key.startswith(hf)), ("", ""))
            rest = key[len(hf):]
            if ldm.endswith("mid.attn_1."):
                a = next(a for a in attn if rest.startswith(a))
                rest = attn[a] + rest[len(a):]
                v = v[:, :, None, None] if v.ndim == 2 else v  # LDM's attention projections are 1x1 convs
            out["first_stage_model." + (ldm + rest).replace("conv_shortcut", "nin_shortcut")] = v
    if "text_encoder" in parts:  # transformers >= 5.6 saves CLIPTextModel without its "text_model." level
        for key, v in CLIPTextModel.from_pretrained(folder / "text_encoder").state_dict().items():
            out["cond_stage_model.transformer." + (key if key.startswith("text_model.") else "text_model." + key)] = v
    return {k: v.contiguous() for k, v in out.items()}


def write_checkpoint(folder: Path, path: Path, dtype=torch.float16, **kw) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.to(dtype) for k, v in to_ldm(folder, **kw).items()}, str(path))
    return path


@pytest.fixture(scope="module")
def sd(tmp_path_factory) -> Path:
    return make_tiny_sd_folder(tmp_path_factory.mktemp("single") / "sd")


# ---------------------------------------------------------------- the tests
def test_a_checkpoint_converts_to_the_same_weights_and_keeps_its_precision(sd, tmp_path):
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from safetensors import safe_open
    from transformers import CLIPTextModel

    from vidiff.pipelines.single_file import PROVENANCE_FILE, convert_single_file

    ckpt = write_checkpoint(sd, tmp_path / "model.safetensors")
    import shutil

    config = shutil.copytree(sd, tmp_path / "sd15")  # with the model_index.json of SD 1.5's folder, safety checker too
    (config / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.6.0",
        "feature_extractor": ["transformers", "CLIPImageProcessor"], "safety_checker": ["stable_diffusion",
        "StableDiffusionSafetyChecker"], "scheduler": ["diffusers", "DDPMScheduler"], "text_encoder": ["transformers",
        "CLIPTextModel"], "tokenizer": ["transformers", "BertTokenizerFast"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"]}))
    out = convert_single_file(ckpt, config, tmp_path / "out")
    assert {p.name for p in out.iterdir()} == {"unet", "vae", "text_encoder", "tokenizer", "scheduler",
                                               "model_index.json", PROVENANCE_FILE}
    for sub, cls in (("unet", UNet2DConditionModel), ("vae", AutoencoderKL), ("text_encoder", CLIPTextModel)):
        want, got = cls.from_pretrained(sd / sub).state_dict(), cls.from_pretrained(out / sub).state_dict()
        assert set(want) == set(got), sub
        for k in want:  # the file held fp16: equal to the original rounded to fp16
            torch.testing.assert_close(got[k].float().reshape(want[k].shape), want[k].half().float(), rtol=0, atol=0, msg=k)
    weights = next((out / "unet").glob("*.safetensors"))
    with safe_open(str(weights), "pt") as f:
        assert f.get_slice(next(iter(f.keys()))).get_dtype() == "F16"  # the file's precision, not fp32's size
    assert (out / "scheduler" / "scheduler_config.json").read_bytes() == \
        (sd / "scheduler" / "scheduler_config.json").read_bytes()
    side = json.loads((out / PROVENANCE_FILE).read_text())
    assert side["components"]["unet"] == "checkpoint" and side["dtype"] == "float16" and "diffusers" in side["versions"]
    assert type(StableDiffusionPipeline.from_pretrained(out)).__name__ == "StableDiffusionPipeline"  # as diffusers reads it


def test_a_unet_only_checkpoint_takes_the_vae_and_text_encoder_from_the_config_folder(sd, tmp_path):
    from diffusers import UNet2DConditionModel

    from vidiff.pipelines.single_file import convert_single_file

    # a fine-tune of the U-Net alone, as some are shared: every weight changed, so a copy of the config's would show
    changed = tmp_path / "changed"
    unet = UNet2DConditionModel.from_pretrained(sd / "unet")
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(0.01)
    import shutil

    shutil.copytree(sd, changed)
    shutil.rmtree(changed / "unet")
    unet.save_pretrained(changed / "unet")
    ckpt = write_checkpoint(changed, tmp_path / "unet-only.safetensors", dtype=torch.float32, parts=("unet",))
    out = convert_single_file(ckpt, sd, tmp_path / "out")
    got = UNet2DConditionModel.from_pretrained(out / "unet").state_dict()
    for k, v in unet.state_dict().items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=0)
    side = json.loads((out / "vidiff_convert.json").read_text())
    assert side["components"]["vae"].startswith("copied from") and side["components"]["text_encoder"].startswith("copied")
    assert (out / "vae" / "diffusion_pytorch_model.safetensors").read_bytes() == \
        (sd / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()


def test_convert_then_inflate_then_generate(sd, tmp_path, capsys):
    """The command a user with a community fine-tune runs, end to end on the tiny layout: a playable clip."""
    import av

    ckpt = write_checkpoint(sd, tmp_path / "model.safetensors")
    code, err = _cli(["convert", str(ckpt), "--config", str(sd), "-o", str(tmp_path / "image")], capsys)
    assert code == 0, err
    code, err = _cli(["inflate", str(tmp_path / "image"), "--arch", "motion-module", "-o", str(tmp_path / "video")],
                     capsys)
    assert code == 0, err
    code, err = _cli(["generate", "a red circle moving left", "--model", str(tmp_path / "video"), "--frames", "4",
                      "--steps", "2", "-q", "-o", str(tmp_path / "clip.mp4")], capsys)
    assert code == 0, err
    with av.open(str(tmp_path / "clip.mp4")) as f:
        assert sum(1 for _ in f.decode(video=0)) == 4


def test_bad_checkpoints_are_one_line_errors_and_write_nothing(sd, tmp_path, capsys):
    from safetensors.torch import save_file

    good = write_checkpoint(sd, tmp_path / "model.safetensors")
    pickle = tmp_path / "model.ckpt"
    torch.save({"state_dict": {}}, pickle)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:1000])
    sdxl = tmp_path / "sdxl.safetensors"
    save_file({"model.diffusion_model.out.2.weight": torch.zeros(1),
               "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight": torch.zeros(1)},
              str(sdxl))
    lora = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(1, 1)}, str(lora))
    diffusers_sd = tmp_path / "diffusers.safetensors"
    save_file({"conv_in.weight": torch.zeros(1)}, str(diffusers_sd))
    other = tmp_path / "other"  # a folder of another layout: wider blocks
    import shutil

    shutil.copytree(sd, other)
    cfg = json.loads((other / "unet" / "config.json").read_text())
    cfg["block_out_channels"] = [64, 64]
    (other / "unet" / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "out"
    cases = [
        ([str(tmp_path / "missing.safetensors"), "--config", str(sd)], "does not exist"),
        ([str(pickle), "--config", str(sd)], "pickle file"),
        ([str(empty), "--config", str(sd)], "not a readable safetensors"),
        ([str(truncated), "--config", str(sd)], "not a readable safetensors"),
        ([str(sdxl), "--config", str(sd)], "SDXL"),
        ([str(lora), "--config", str(sd)], "a LoRA"),
        ([str(diffusers_sd), "--config", str(sd)], "no LDM U-Net"),
        ([str(sd), "--config", str(sd)], "is a folder"),
        ([str(good), "--config", str(tmp_path)], "not a diffusers text-to-image folder"),
        ([str(good), "--config", str(other)], "does not fit the layout"),
    ]
    for args, says in cases:
        code, err = _cli(["convert", *args, "-o", str(out)], capsys)
        assert code == 2 and says in err and len(err.splitlines()) == 1, (args, err)
        assert not out.exists() and not list(tmp_path.glob(".out*")), args
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, err = _cli(["convert", str(good), "--config", str(sd), "-o", str(out)], capsys)
    assert code == 2 and "already exists" in err and (out / "keep.txt").read_text() == "mine"


def test_a_checkpoint_where_a_folder_or_lora_is_read_says_to_convert_it(sd, tmp_path, capsys, tiny_pipeline_dir):
    ckpt = write_checkpoint(sd, tmp_path / "model.safetensors")
    code, err = _cli(["inflate", str(ckpt), "-o", str(tmp_path / "video")], capsys)
    assert code == 2 and "vidiff convert" in err and len(err.splitlines()) == 1, err
    code, err = _cli(["generate", "a red circle", "--model", str(tiny_pipeline_dir), "--image-model", str(ckpt),
                      "-q", "-o", str(tmp_path / "clip.mp4")], capsys)
    assert code == 2 and "vidiff convert" in err and "not a LoRA" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "video").exists() and not (tmp_path / "clip.mp4").exists()
