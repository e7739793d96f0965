"""Single-file checkpoints (the original Stable Diffusion / LDM layout) into diffusers folders: `vidiff convert`.

No real checkpoint is on these machines, so the tests write one: a tiny SD-layout folder (test_inflation's) is
turned into one LDM-layout safetensors file by ``save_single_file`` (vidiff's inverse of diffusers' single-file
conversion, from CompVis' names). The round trip (file -> `vidiff convert`, i.e. diffusers' own conversion -> the
folder's weights equal to the original's) checks both directions: a wrong name on either side leaves a key unloaded
or a shape wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from test_inflation import _cli, make_tiny_sd_folder


def write_checkpoint(folder: Path, path: Path, dtype=torch.float16, **kw) -> Path:
    from vidiff.pipelines.single_file import save_single_file

    return save_single_file(folder, path, dtype=dtype, **kw)


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
    with pytest.raises(ValueError, match="already exists"):
        write_checkpoint(sd, ckpt)  # the writer is atomic and replaces nothing unasked
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


def test_a_stable_diffusion_2_layout_converts_too(sd, tmp_path):
    """SD 2.x: OpenCLIP's names for the text encoder (q, k, v in one in_proj) and linear projections in the U-Net's
    transformers; diffusers' conversion of the file written here gives every weight back."""
    import shutil

    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    from vidiff.pipelines.single_file import convert_single_file, read_checkpoint_keys

    sd2 = shutil.copytree(sd, tmp_path / "sd2")
    shutil.rmtree(sd2 / "unet")
    torch.manual_seed(1)
    unet = UNet2DConditionModel(**{**UNet2DConditionModel.load_config(sd / "unet"), "use_linear_projection": True})
    unet.save_pretrained(sd2 / "unet")
    ckpt = write_checkpoint(sd2, tmp_path / "sd2.safetensors", dtype=torch.float32, text_layout="open_clip")
    assert any(k.startswith("cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight")
               for k in read_checkpoint_keys(ckpt))
    out = convert_single_file(ckpt, sd2, tmp_path / "out")
    for sub, cls, want in (("unet", UNet2DConditionModel, unet.state_dict()),
                           ("text_encoder", CLIPTextModel, CLIPTextModel.from_pretrained(sd / "text_encoder").state_dict())):
        got = cls.from_pretrained(out / sub).state_dict()
        assert set(got) == set(want), sub
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=0, atol=0, msg=k)


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
    unet_only = write_checkpoint(sd, tmp_path / "unet-only.safetensors", parts=("unet",))
    broken_vae = shutil.copytree(sd, tmp_path / "broken_vae")  # the part the file lacks cannot be read from there
    (broken_vae / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"not tensors")
    no_tokenizer = shutil.copytree(sd, tmp_path / "no_tokenizer")
    shutil.rmtree(no_tokenizer / "tokenizer")
    bad_scheduler = shutil.copytree(sd, tmp_path / "bad_scheduler")
    (bad_scheduler / "scheduler" / "scheduler_config.json").write_text("{not json")
    out = tmp_path / "out"
    cases = [  # (checkpoint, --config, what the one line says)
        (tmp_path / "missing.safetensors", sd, "does not exist"),
        (pickle, sd, "pickle file"),
        (empty, sd, "not a readable safetensors"),
        (truncated, sd, "not a readable safetensors"),
        (sdxl, sd, "SDXL"),
        (lora, sd, "a LoRA"),
        (diffusers_sd, sd, "no LDM U-Net"),
        (sd, sd, "is a folder"),
        (good, tmp_path, "not a diffusers text-to-image folder"),
        (good, other, "does not fit the layout"),
        (unet_only, broken_vae, "could not be read"),
        (good, no_tokenizer, "lacks tokenizer"),
        (good, bad_scheduler, "not a JSON object"),
    ]
    for ckpt, config, says in cases:
        code, err = _cli(["convert", str(ckpt), "--config", str(config), "-o", str(out)], capsys)
        assert code == 2 and says in err and len(err.splitlines()) == 1, (ckpt, config, err)
        assert not out.exists() and not list(tmp_path.glob(".out*")), (ckpt, config)
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, err = _cli(["convert", str(good), "--config", str(sd), "-o", str(out)], capsys)
    assert code == 2 and "already exists" in err and (out / "keep.txt").read_text() == "mine"


def test_convert_overwrite_replaces_only_an_earlier_conversion_never_an_input(sd, tmp_path, capsys):
    """`vidiff convert sd/model.safetensors --config sd -o sd --overwrite` deleted the checkpoint being converted and
    everything else in the folder, exit 0; --overwrite replaced any folder or file."""
    import shutil

    folder = shutil.copytree(sd, tmp_path / "sd")
    (folder / "README.md").write_text("the model card")
    ckpt = write_checkpoint(sd, folder / "model.safetensors")
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "thesis.tex").write_text("mine")
    (tmp_path / "notes.txt").write_text("mine")
    before = sorted(p.name for p in folder.iterdir())
    for out, says in ((folder, "contains the input"), (tmp_path / "user", "no model_index.json"),
                      (tmp_path / "notes.txt", "is a file")):
        code, err = _cli(["convert", str(ckpt), "--config", str(folder), "-o", str(out), "--overwrite"], capsys)
        assert code == 2 and says in err and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in folder.iterdir()) == before and (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "user" / "thesis.tex").read_text() == "mine"
    out = tmp_path / "converted"
    assert _cli(["convert", str(ckpt), "--config", str(folder), "-o", str(out)], capsys)[0] == 0
    (out / "samples").mkdir()
    code, err = _cli(["convert", str(ckpt), "--config", str(folder), "-o", str(out), "--overwrite"], capsys)
    assert code == 2 and "a conversion does not write (samples)" in err and (out / "samples").is_dir()
    (out / "samples").rmdir()
    assert _cli(["convert", str(ckpt), "--config", str(folder), "-o", str(out), "--overwrite"], capsys)[0] == 0


def test_a_checkpoint_where_a_folder_or_lora_is_read_says_to_convert_it(sd, tmp_path, capsys, tiny_pipeline_dir):
    ckpt = write_checkpoint(sd, tmp_path / "model.safetensors")
    code, err = _cli(["inflate", str(ckpt), "-o", str(tmp_path / "video")], capsys)
    assert code == 2 and "vidiff convert" in err and len(err.splitlines()) == 1, err
    code, err = _cli(["generate", "a red circle", "--model", str(tiny_pipeline_dir), "--image-model", str(ckpt),
                      "-q", "-o", str(tmp_path / "clip.mp4")], capsys)
    assert code == 2 and "vidiff convert" in err and "not a LoRA" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "video").exists() and not (tmp_path / "clip.mp4").exists()
