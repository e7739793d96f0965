import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vidiff.training.checkpoints import complete_checkpoints, resolve_resume
from vidiff.training.config import config_from_dict, load_config
from vidiff.training.trainer import train

ROOT = Path(__file__).resolve().parents[1]


def tiny_config(out: Path, text_dir: Path, steps: int = 6, **train_kw) -> dict:
    return {
        "model": {"preset": "stunet-tiny"},
        "data": {"kind": "shapes", "num_frames": 4, "fps": 8, "resolution": 8},
        "train": {"steps": steps, "batch_size": 2, "lr": 1e-3, "warmup_steps": 2, "checkpoint_every": 3,
                  "keep_checkpoints": 5, "mixed_precision": "no", "ema_decay": 0.9, **train_kw},
        "text_encoder": str(text_dir),
        "output_dir": str(out),
    }


def weights(path: Path) -> dict:
    return load_file(str(path))


def test_resume_refuses_a_recipe_that_changes_the_run(tmp_path, tiny_text_dir):
    """A resumed run keeps its model, diffusion process and text encoder (a changed prediction type trained the
    checkpoint on towards another target, silently); steps, data and the loss weighting may change."""
    train(config_from_dict(tiny_config(tmp_path / "run", tiny_text_dir, steps=3)), progress=False)
    for key, value in (("diffusion.prediction_type", "epsilon"), ("model.channels", [16, 16, 16]),
                       ("diffusion.beta_schedule", "linear")):
        cfg = config_from_dict(tiny_config(tmp_path / "run", tiny_text_dir, steps=6), {key: value})
        with pytest.raises(ValueError, match=f"trained with {key.split('.')[0]}"):
            train(cfg, resume="latest", progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["diffusion"]["prediction_type"] == "v_prediction" and saved["train"]["steps"] == 3  # untouched
    cfg = config_from_dict(tiny_config(tmp_path / "run", tiny_text_dir, steps=4, batch_size=4),
                           {"diffusion.min_snr_gamma": 5.0})
    train(cfg, resume="latest", progress=False)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["steps"] == 4


def test_resume_reaches_the_same_weights(tmp_path, tiny_text_dir):
    shift = {"timestep_shift": 3.0}  # as the default recipe
    full = train(config_from_dict(tiny_config(tmp_path / "full", tiny_text_dir, **shift)), progress=False)
    half = config_from_dict(tiny_config(tmp_path / "split", tiny_text_dir, **shift), {"train.steps": 6})
    # an interrupted run: stop after the first checkpoint by training 3 steps into the same folder
    train(config_from_dict(tiny_config(tmp_path / "split", tiny_text_dir, steps=3, **shift)), progress=False)
    assert [p.name for p in complete_checkpoints(tmp_path / "split")] == ["checkpoint-3"]
    resumed = train(half, resume="latest", progress=False)
    a = weights(tmp_path / "full" / "checkpoint-6" / "model.safetensors")
    b = weights(tmp_path / "split" / "checkpoint-6" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    ea = weights(next((full / "unet").glob("*.safetensors")))
    eb = weights(next((resumed / "unet").glob("*.safetensors")))
    assert all(torch.allclose(ea[k], eb[k], atol=1e-6) for k in ea)
    log = [json.loads(l) for l in (tmp_path / "full" / "train_log.jsonl").read_text().splitlines()]
    assert log and all(r["loss"] == r["loss"] for r in log if "loss" in r)


def test_a_half_written_checkpoint_is_never_latest(tmp_path, tiny_text_dir):
    train(config_from_dict(tiny_config(tmp_path, tiny_text_dir, steps=3)), progress=False)
    # simulate a kill during the next save: a .tmp folder with partial files, and a folder without state.json
    (tmp_path / "checkpoint-6.tmp").mkdir()
    (tmp_path / "checkpoint-6.tmp" / "model.safetensors").write_bytes(b"\x00" * 10)
    (tmp_path / "checkpoint-9").mkdir()
    assert resolve_resume(tmp_path, "latest").name == "checkpoint-3"
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        resolve_resume(tmp_path, str(tmp_path / "checkpoint-9"))


def test_non_finite_loss_skips_the_update(tmp_path, tiny_text_dir, monkeypatch, caplog):
    import vidiff.training.trainer as trainer

    real = trainer.diffusion_loss
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        loss = real(*a, **k)
        return loss * float("nan") if calls["n"] == 2 else loss

    monkeypatch.setattr(trainer, "diffusion_loss", flaky)
    train(config_from_dict(tiny_config(tmp_path, tiny_text_dir, steps=3)), progress=False)
    assert "non-finite loss at step 1" in caplog.text
    events = [json.loads(l) for l in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert {"step": 1, "event": "nonfinite_loss"} in events
    w = weights(tmp_path / "checkpoint-3" / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in w.values())


def test_consecutive_non_finite_losses_stop_the_run(tmp_path, tiny_text_dir, monkeypatch):
    import vidiff.training.trainer as trainer

    monkeypatch.setattr(trainer, "diffusion_loss", lambda *a, **k: torch.full((2,), float("inf")))
    with pytest.raises(RuntimeError, match="consecutive non-finite"):
        train(config_from_dict(tiny_config(tmp_path, tiny_text_dir, steps=10, max_nonfinite=3)), progress=False)


def test_fine_tune_switches_on_the_frame_clock(tmp_path, tiny_text_dir, tiny_pipeline_dir):
    cfg = tiny_config(tmp_path, tiny_text_dir, steps=2, init_from=str(tiny_pipeline_dir))
    cfg["model"] = {"frame_position_embedding": True}
    train(config_from_dict(cfg), progress=False)
    trained = weights(tmp_path / "checkpoint-2" / "model.safetensors")
    clock = [k for k in trained if ".frame_embed." in k]
    assert clock and any(trained[k].abs().sum() > 0 for k in clock)  # started at zero, trained
    cfg["model"] = {"frame_position_embedding": True, "channels": [8, 32]}
    with pytest.raises(ValueError, match="only model.cond_channels"):
        train(config_from_dict({**cfg, "output_dir": str(tmp_path / "other")}), progress=False)


def test_a_fine_tune_samples_with_its_starting_models_sampler(tmp_path, tiny_text_dir, tiny_text_encoder):
    from conftest import make_tiny_pipeline

    start = make_tiny_pipeline(tmp_path / "start", tiny_text_encoder,
                               defaults={"sampler": "dpm++-sde", "logsnr_min": -8.5, "guidance_scale": 3.0,
                                         "guidance_min_t": 400, "guidance_rescale": 0.7})
    cfg = tiny_config(tmp_path / "run", tiny_text_dir, steps=1, init_from=str(start))
    cfg["sample"] = {"guidance_scale": 2.0, "num_inference_steps": 5}
    got = json.loads((train(config_from_dict(cfg), progress=False) / "vidiff_pipeline.json").read_text())["defaults"]
    assert (got["sampler"], got["logsnr_min"], got["guidance_min_t"], got["guidance_scale"],
            got["num_inference_steps"], got["guidance_rescale"]) == ("dpm++-sde", -8.5, 400, 2.0, 5, 0.7)
    cfg.update(output_dir=str(tmp_path / "own"), sample={"sampler": "ddim"})  # the recipe's word wins
    got = json.loads((train(config_from_dict(cfg), progress=False) / "vidiff_pipeline.json").read_text())["defaults"]
    assert got["sampler"] == "ddim" and got["logsnr_min"] == -8.5
    cfg.update(output_dir=str(tmp_path / "fresh"), sample={})
    del cfg["train"]["init_from"]  # from scratch: nothing to inherit
    got = json.loads((train(config_from_dict(cfg), progress=False) / "vidiff_pipeline.json").read_text())["defaults"]
    assert "sampler" not in got and "logsnr_min" not in got and got.get("guidance_min_t") is None


@pytest.mark.parametrize("key,marker,proj", [("temporal_attention_levels", "tattn", ".proj."),
                                             ("spacetime_attention_levels", "stattn", ".proj1.")])
def test_fine_tune_adds_attention_levels(tmp_path, tiny_text_dir, tiny_pipeline_dir, key, marker, proj):
    cfg = tiny_config(tmp_path, tiny_text_dir, steps=2, init_from=str(tiny_pipeline_dir))
    cfg["model"] = {key: [0]}
    train(config_from_dict(cfg), progress=False)
    trained = weights(tmp_path / "checkpoint-2" / "model.safetensors")
    new = [k for k in trained if k.startswith((f"down.0.{marker}.", f"up.1.{marker}."))]
    assert new and any(trained[k].abs().sum() > 0 for k in new if proj in k)  # started at zero, trained
    for bad, words in (([1], "levels 0-0"), ("all", "list of level indices")):
        cfg["model"] = {key: bad}
        with pytest.raises(ValueError, match=words):
            train(config_from_dict({**cfg, "output_dir": str(tmp_path / f"bad-{bad}")}), progress=False)


def test_frozen_spatial_training_changes_only_temporal_weights(tmp_path, tiny_text_dir, tiny_pipeline_dir):
    cfg = tiny_config(tmp_path, tiny_text_dir, steps=2, freeze_spatial=True, init_from=str(tiny_pipeline_dir))
    final = train(config_from_dict(cfg), progress=False)
    trained = weights(tmp_path / "checkpoint-2" / "model.safetensors")
    start = weights(next((tiny_pipeline_dir / "unet").glob("*.safetensors")))
    changed = {k for k in trained if not torch.equal(trained[k], start[k])}
    assert changed and all(("temporal" in k or "sample" in k or "spacetime" in k) for k in changed)
    assert (final / "vidiff_pipeline.json").exists()


def test_joint_image_video_training(tmp_path, tiny_text_dir):
    cfg = tiny_config(tmp_path, tiny_text_dir, steps=2)
    cfg["data"]["image_prob"] = 0.5
    final = train(config_from_dict(cfg), progress=False)
    assert (final / "vidiff_pipeline.json").exists()
    cfg["train"]["freeze_spatial"] = True
    with pytest.raises(ValueError, match="freeze_spatial"):
        train(config_from_dict(cfg), progress=False)


def test_unknown_recipe_keys_are_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown key"):
        config_from_dict({"train": {"stepz": 3}})
    with pytest.raises(ValueError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="timestep_shift must be"):
        config_from_dict({"train": {"timestep_shift": 0.0}})
    with pytest.raises(ValueError, match="conditional' only"):
        config_from_dict({"train": {"known_pixel_weight": 5.0}})


def test_a_recipe_can_start_from_a_base(tmp_path):
    (tmp_path / "base.yaml").write_text("model: {preset: stunet-tiny}\ntrain: {steps: 100, lr: 0.001}\n"
                                        "output_dir: runs/base\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "child.yaml").write_text("base: ../base.yaml\nmodel: {frame_position_embedding: true}\n"
                                                 "train: {steps: 20}\noutput_dir: runs/child\n")
    cfg = load_config(tmp_path / "sub" / "child.yaml", {"train.seed": 3})
    assert cfg.model == {"preset": "stunet-tiny", "frame_position_embedding": True}
    assert (cfg.train.steps, cfg.train.lr, cfg.train.seed, cfg.output_dir) == (20, 0.001, 3, "runs/child")
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ValueError, match="its own base"):
        load_config(tmp_path / "loop.yaml")
    (tmp_path / "orphan.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ValueError, match="missing.yaml' not found"):
        load_config(tmp_path / "orphan.yaml")


def test_recipe_values_are_type_checked():
    # PyYAML reads `lr: 1e-4` (and `--set train.lr=1e-4`) as the string "1e-4"; a float field takes it
    assert config_from_dict({}, {"train.lr": "1e-4"}).train.lr == 1e-4
    assert config_from_dict({"train": {"lr": 1}}).train.lr == 1
    for key, bad, kind in (("train.lr", "fast", "float"), ("train.steps", 1.5, "int"),
                           ("train.freeze_spatial", "yes", "bool"), ("data.num_frames", True, "int")):
        with pytest.raises(ValueError, match=f"{key} must be of type {kind}"):
            config_from_dict({}, {key: bad})
    # `mixed_precision: no` is the boolean False in YAML 1.1: say so rather than a bare type error
    with pytest.raises(ValueError, match="must be of type str, got False .YAML reads no"):
        config_from_dict({}, {"train.mixed_precision": False})
    with pytest.raises(ValueError, match="train.mixed_precision must be one of auto, bf16, fp16, no, fp32, got 'fp8'"):
        config_from_dict({}, {"train.mixed_precision": "fp8"})
    assert config_from_dict({}, {"train.mixed_precision": "fp32"}).train.mixed_precision == "fp32"


@pytest.fixture
def fresh_accelerate_state():
    """accelerate keeps one precision per process (its AcceleratorState refuses another): reset it around a test
    that trains in bf16, as accelerate's own tests do, so the suite's other runs keep theirs."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


@pytest.mark.parametrize("native, launched, ran", [(True, None, "bf16"), (False, None, "fp32"), (False, "bf16", "bf16")])
def test_auto_precision_is_bf16_only_where_native_and_the_run_says_what_ran(tmp_path, tiny_text_dir, monkeypatch,
                                                                             fresh_accelerate_state, native, launched,
                                                                             ran):
    """The default precision never assumes bf16: on an AVX2-only CPU emulated bf16 made the default's training step
    40 s against 2.7 s in fp32. What ran goes into the run's config.json, also when accelerate launch's precision
    won over the recipe's."""
    import vidiff.hardware as hw

    assert config_from_dict({}).train.mixed_precision == "auto"
    monkeypatch.setattr(hw, "native_bf16", lambda device_type="cpu": native)
    if launched:
        monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", launched)
    train(config_from_dict(tiny_config(tmp_path / "run", tiny_text_dir, steps=1, checkpoint_every=1,
                                       mixed_precision="auto")), progress=False)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["mixed_precision"] == ran


def test_known_pixel_weight_follows_the_mask_and_keeps_mean_one():
    from vidiff.conditioning.masks import condition_input, first_frame_mask
    from vidiff.training.trainer import known_pixel_weight

    video = torch.rand(2, 3, 4, 6, 6) * 2 - 1
    cond = condition_input(video, first_frame_mask(2, 4, 6, 6))
    cfg = config_from_dict({"task": "conditional", "train": {"known_pixel_weight": 10.0}})
    w = known_pixel_weight(cfg, cond)
    assert w.shape == (2, 1, 4, 6, 6)
    assert torch.allclose(w.flatten(1).mean(1), torch.ones(2))
    assert torch.allclose(w[:, :, 0] / w[:, :, 1], torch.full_like(w[:, :, 0], 10.0))  # known frame 10x
    assert known_pixel_weight(config_from_dict({"task": "conditional"}), cond) is None


def test_shipped_recipes_parse():
    recipes = [r for r in (ROOT / "configs").rglob("*.yaml") if r.parent.name not in ("metrics", "accelerate")]
    assert len(recipes) >= 3
    for recipe in recipes:
        cfg = load_config(recipe)
        assert cfg.train.steps > 0


@pytest.mark.slow
def test_two_process_cpu_training_with_accelerate(tmp_path, tiny_text_dir):
    import yaml

    cfg = tiny_config(tmp_path / "run", tiny_text_dir, steps=2)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "vidiff", "train", "--config", str(recipe), "-q"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "run" / "final" / "vidiff_pipeline.json").exists()
    state = json.loads((tmp_path / "run" / "checkpoint-2" / "state.json").read_text())
    assert state["world_size"] == 2


def test_conditional_finetune_widens_the_text_to_video_model(tmp_path, tiny_text_dir, tiny_pipeline_dir):
    from vidiff.pipelines.conditional import ImageToVideoPipeline

    cfg = tiny_config(tmp_path / "cond", tiny_text_dir, steps=2, init_from=str(tiny_pipeline_dir), known_pixel_weight=10.0)
    cfg.update(task="conditional", model={"cond_channels": 4})
    final = train(config_from_dict(cfg), progress=False)
    pipe = ImageToVideoPipeline.from_pretrained(final)
    assert pipe.unet.config.cond_channels == 4
    assert pipe(["a red circle"], torch.rand(1, 3, 8, 8), num_inference_steps=2).videos.shape == (1, 3, 4, 8, 8)
    adapter = dict(cfg, model={"cond_channels": 4, "cond_adapter_channels": 4}, output_dir=str(tmp_path / "adapter"))
    pipe = ImageToVideoPipeline.from_pretrained(train(config_from_dict(adapter), progress=False))
    assert pipe.unet.config.cond_adapter_channels == 4 and pipe.unet.cond_adapter.proj[0].weight.any()  # trained
    bad = dict(cfg, model={"cond_channels": 4, "channels": [4, 8]}, output_dir=str(tmp_path / "bad"))
    with pytest.raises(ValueError, match="only model.cond_channels"):
        train(config_from_dict(bad), progress=False)


def test_super_resolution_training_on_crops_and_windows(tmp_path, tiny_text_dir):
    from vidiff.pipelines.super_resolution import SuperResolutionPipeline

    cfg = tiny_config(tmp_path / "ssr", tiny_text_dir, steps=2, lowres_noise=0.1)
    cfg.update(task="super-resolution", model={"preset": "ssr-tiny"},
               data={"kind": "shapes", "num_frames": 4, "resolution": 16, "lowres": 8, "crop_size": 8, "window_frames": 2})
    final = train(config_from_dict(cfg), progress=False)
    pipe = SuperResolutionPipeline.from_pretrained(final)
    assert pipe("a red circle", torch.rand(1, 3, 6, 8, 8), window=2, stride=1, num_inference_steps=2).videos.shape \
        == (1, 3, 6, 16, 16)
    no_pairs = dict(cfg, data={"kind": "shapes", "num_frames": 4, "resolution": 16})
    with pytest.raises(ValueError, match="data.lowres"):
        train(config_from_dict(no_pairs), progress=False)


@pytest.mark.parametrize("how", [{"image_prob": 1.0}, {"freeze_temporal": True}])
def test_style_finetunes_leave_temporal_layers_untouched(tmp_path, tiny_text_dir, tiny_pipeline_dir, how):
    """Two ways to train only the spatial weights: image batches (they skip every temporal layer), or videos
    with the temporal layers frozen."""
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    cfg = tiny_config(tmp_path / "style", tiny_text_dir, steps=3, init_from=str(tiny_pipeline_dir),
                      freeze_temporal=how.get("freeze_temporal", False))
    cfg["data"] = {"kind": "shapes", "num_frames": 4, "resolution": 8, "style": "outlined",
                   "image_prob": how.get("image_prob", 0.0)}
    final = train(config_from_dict(cfg), progress=False)
    before = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir).unet
    after = TextToVideoPipeline.from_pretrained(final).unet
    temporal = {id(p) for p in after.temporal_parameters()}
    names = {n for n, p in after.named_parameters() if id(p) in temporal}
    b, a = dict(before.named_parameters()), dict(after.named_parameters())
    assert names and all(torch.equal(b[n], a[n]) for n in names)
    assert any(not torch.equal(b[n], a[n]) for n in a if n not in names)  # the spatial weights did move


def test_fine_tune_onto_wider_text_features(tmp_path, tiny_text_dir, tiny_pipeline_dir):
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    cfg = tiny_config(tmp_path, tiny_text_dir, steps=2, init_from=str(tiny_pipeline_dir))
    cfg["text_features"] = "last+embeddings"
    final = train(config_from_dict(cfg), progress=False)
    pipe = TextToVideoPipeline.from_pretrained(final)
    assert pipe.text_encoder.features == "last+embeddings" and pipe.unet.config.text_dim == 16
    trained = weights(tmp_path / "checkpoint-2" / "model.safetensors")
    assert trained["text_pool.weight"][:, 8:].abs().sum() > 0  # the new columns started at zero and trained
    assert pipe("a red circle", num_inference_steps=2).videos.shape == (1, 3, 4, 8, 8)


def test_checkpoints_and_exports_record_the_versions_that_wrote_them(tmp_path, tiny_text_dir):
    """Every output carries the settings, seed and versions that made it: the video sidecars did, a run's checkpoints
    and exported folder did not say which torch / diffusers / vidiff wrote them."""
    import vidiff
    from vidiff.pipelines.text_to_video import TextToVideoPipeline
    from vidiff.training.trainer import train

    final = train(config_from_dict(tiny_config(tmp_path / "run", tiny_text_dir, steps=2, checkpoint_every=2)),
                  progress=False)
    want = vidiff.versions()
    assert json.loads((tmp_path / "run" / "checkpoint-2" / "state.json").read_text())["versions"] == want
    meta = json.loads((final / "vidiff_pipeline.json").read_text())
    assert meta["versions"] == want and meta["train_config"]["train"]["seed"] == 0
    pipe = TextToVideoPipeline.from_pretrained(final)
    assert "versions" not in pipe.extra  # read as what wrote the folder, not carried as a setting
    pipe.save_pretrained(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "vidiff_pipeline.json").read_text())["versions"] == want


@pytest.mark.parametrize("call, words", [
    (lambda: config_from_dict(None), "a recipe is a mapping of sections"),  # TypeError from dict()
    (lambda: config_from_dict([1, 2]), "got list"),
    (lambda: config_from_dict("model: {preset: stunet-tiny}"), "got str"),  # "dictionary update sequence element"
    (lambda: config_from_dict({}, ["train.steps=3"]), "overrides are a mapping"),  # AttributeError
    (lambda: load_config(None), "a recipe is a YAML file path"),  # TypeError from Path()
])
def test_the_recipe_readers_refuse_what_is_not_a_recipe_in_words(call, words):
    with pytest.raises(ValueError, match=words):
        call()


def test_train_takes_a_recipe_path_or_dict_as_the_command_does(tmp_path, tiny_text_dir):
    # vidiff.train is a top-level name now; given the YAML path or a dict, it ended in "'dict' object has no attribute
    # 'train'" (an AttributeError)
    import yaml

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_config(tmp_path / "a", tiny_text_dir, steps=2)))
    a = train(str(recipe), progress=False)
    b = train(tiny_config(tmp_path / "b", tiny_text_dir, steps=2), progress=False)
    wa, wb = (weights(next((f / "unet").glob("*.safetensors"))) for f in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    for bad in (None, 3, ["train.steps=2"]):
        with pytest.raises(ValueError, match="train takes a recipe: a RunConfig"):
            train(bad, progress=False)


def test_init_from_takes_a_shipped_model_by_name(tmp_path, tiny_text_dir):
    # `--model default` worked everywhere, `train.init_from: default` was read as a folder named "default"
    from vidiff.registry import model_path

    cfg = config_from_dict(tiny_config(tmp_path / "run", tiny_text_dir), {"train.init_from": "default"})
    assert cfg.train.init_from == str(model_path("default")) and Path(cfg.train.init_from).is_dir()
    cfg = config_from_dict(tiny_config(tmp_path / "run", tiny_text_dir), {"train.init_from": "runs/x"})
    assert cfg.train.init_from == "runs/x"  # a path stays as written
