"""Scale-out on the CPU: devices and precisions refused by name, gradient accumulation, gradient checkpointing,
DataLoader workers, trackers, accelerate's save_state checkpoints (one process and two), the EMA matched by name.
What only a GPU runs (CUDA, fp16, FSDP) is in scripts/gpu_check.sh; every code path it takes that a CPU can take
is tested here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.test_training import tiny_config
from vidiff.training.config import config_from_dict
from vidiff.training.trainer import train


def _weights(final: Path) -> dict:
    return load_file(str(final / "unet" / "diffusion_pytorch_model.safetensors"))


def _equal(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


# ---------------------------------------------------------------- devices and precisions
def test_devices_and_precisions_are_resolved_or_refused_by_name():
    from vidiff.hardware import autocast, check_precision, resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad, says in (("tpu", "unknown device"), ("cuda:x", "unknown device")):
        with pytest.raises(ValueError, match=says):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda:0")
    with pytest.raises(ValueError, match="fp16 autocast runs on CUDA devices only"):
        check_precision("fp16", torch.device("cpu"))
    assert check_precision("no", torch.device("cpu")) == "fp32"
    with autocast("cpu", "bf16"):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    with autocast("cpu", "fp32"):
        assert not torch.is_autocast_enabled("cpu")


def test_native_bf16_needs_the_cpus_bf16_instructions_not_only_onednns_word(monkeypatch):
    """oneDNN says bf16 on every AVX512 CPU; without AVX512-BF16 / AMX its bf16 matmul ran 5x slower than fp32
    (an AVX512 Xeon, 2026-12-01), so the flags decide."""
    import vidiff.hardware as hw

    monkeypatch.setattr(hw.platform, "machine", lambda: "x86_64")
    for onednn, flags, native in ((True, {"avx2", "avx512f", "avx512bw"}, False), (True, {"avx512f", "avx512_bf16"}, True),
                                  (True, {"amx_bf16", "amx_tile"}, True), (False, {"avx512_bf16"}, False),
                                  (True, None, True)):
        monkeypatch.setattr(hw, "_onednn_bf16", lambda: onednn)
        monkeypatch.setattr(hw, "_cpu_flags", lambda: flags)
        assert hw.native_bf16() is native, (onednn, flags)
    monkeypatch.setattr(hw.platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(hw, "_onednn_bf16", lambda: True)
    for flags, native in (({"fp", "asimd", "bf16"}, True), ({"fp", "asimd"}, False)):
        monkeypatch.setattr(hw, "_cpu_flags", lambda: flags)
        assert hw.native_bf16() is native


def test_cpu_name_says_the_widest_vector_instructions(monkeypatch):
    """Two machines both called "AMD EPYC" differ 5-6x in a training step (AVX512-BF16 against AVX2 only): a figure's
    machine line names the instructions too."""
    import vidiff.hardware as hw

    for flags, isa in (({"avx2", "avx512f", "avx512_bf16", "amx_bf16"}, "AMX"), ({"avx2", "avx512f", "avx512_bf16"},
                       "AVX512-BF16"), ({"avx2", "avx512f"}, "AVX512"), ({"sse2", "avx2"}, "AVX2"),
                       ({"sse2"}, None), (None, None)):
        monkeypatch.setattr(hw, "_cpu_flags", lambda: flags)
        assert hw.vector_isa() == isa, flags
        name = hw.cpu_name()
        labels = [f", {label}" for _, label in hw._ISA]
        assert [name.endswith(x) for x in labels] == [x == f", {isa}" for x in labels], (flags, name)


def test_cli_device_flags(tmp_path, capsys, tiny_pipeline_dir):
    from vidiff.cli import main

    base = ["generate", "a red circle", "--model", str(tiny_pipeline_dir), "--frames", "4", "--steps", "2", "-q"]
    cases = [(["--device", "tpu"], "unknown device"), (["--dtype", "fp16", "--device", "cpu"], "CUDA devices only"),
             (["--dtype", "fp32", "--bf16"], "disagree")]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "no CUDA device"))
    for extra, says in cases:
        out = tmp_path / "bad.mp4"
        code = main(base + extra + ["-o", str(out)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and says in err and len(err.splitlines()) == 1, (extra, err)
        assert not out.exists()
    assert main(base + ["--device", "cpu", "--dtype", "fp32", "-o", str(tmp_path / "ok.mp4")]) == 0
    sidecar = json.loads((tmp_path / "ok.json").read_text())
    assert sidecar["device"] == "cpu" and sidecar["dtype"] == "fp32"


# ---------------------------------------------------------------- training
def test_the_global_batch_splits_into_micro_batches_over_the_same_items():
    """A step's clips do not depend on how the batch is split into processes and accumulation steps."""
    from vidiff.shapes.scenes import ShapesConfig, ShapesDataset
    from vidiff.training.trainer import batch_for_step

    ds = ShapesDataset(ShapesConfig(4, 8, 8))
    whole = batch_for_step(ds, 3, 0, 1, 4, 0)["caption"]
    accumulated = batch_for_step(ds, 6, 0, 1, 2, 0)["caption"] + batch_for_step(ds, 7, 0, 1, 2, 0)["caption"]
    two_ranks = [c for m in (6, 7) for r in (0, 1) for c in batch_for_step(ds, m, r, 2, 1, 0)["caption"]]
    assert whole == accumulated and sorted(whole) == sorted(two_ranks)


def test_gradient_accumulation_runs_micro_batches_and_resumes_exactly(tmp_path, tiny_text_dir, monkeypatch):
    import vidiff.training.trainer as trainer

    seen = []
    real = trainer.micro_loss

    def spy(cfg, model, te, vae, sched, batch, m, rank, device, **kw):
        seen.append((m, len(batch["caption"])))
        return real(cfg, model, te, vae, sched, batch, m, rank, device, **kw)

    monkeypatch.setattr(trainer, "micro_loss", spy)
    cfg = tiny_config(tmp_path / "a", tiny_text_dir, steps=4, batch_size=4, gradient_accumulation_steps=2,
                      checkpoint_every=2)
    full = _weights(train(config_from_dict(cfg), progress=False))
    assert seen == [(m, 2) for m in range(8)]  # 4 optimizer steps of 2 micro-batches of 2
    log = [json.loads(line) for line in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 4
    # killed after step 2, resumed: the same weights
    half = dict(cfg, output_dir=str(tmp_path / "b"))
    half["train"] = {**cfg["train"], "steps": 2}
    train(config_from_dict(half), progress=False)
    half["train"]["steps"] = 4
    assert _equal(_weights(train(config_from_dict(half), resume="latest", progress=False)), full) == 0.0
    # a different split of the same global batch trains on the same clips, with its own noise: close, not equal
    other = dict(cfg, output_dir=str(tmp_path / "c"))
    other["train"] = {**cfg["train"], "gradient_accumulation_steps": 1}
    assert 0.0 < _equal(_weights(train(config_from_dict(other), progress=False)), full)


def test_bad_scale_settings_are_refused_before_the_run_folder(tmp_path, tiny_text_dir):
    for kw, says in (({"batch_size": 3, "gradient_accumulation_steps": 2}, "does not divide into 1 process"),
                     ({"mixed_precision": "fp16"}, "fp16 autocast runs on CUDA devices only"),
                     ({"checkpoint_format": "sharded"}, "train.checkpoint_format must be one of"),
                     ({"log_with": "csv"}, "train.log_with must be one of")):
        if torch.cuda.is_available() and "fp16" in str(kw):
            continue
        out = tmp_path / "run"
        with pytest.raises(ValueError, match=says):
            train(config_from_dict(tiny_config(out, tiny_text_dir, **kw)), progress=False)
        assert not out.exists()


def test_out_of_memory_is_one_line_and_keeps_the_checkpoint(tmp_path, tiny_text_dir, monkeypatch):
    import vidiff.training.trainer as trainer

    real = trainer.micro_loss

    def oom_at_step_4(cfg, model, te, vae, sched, batch, m, *a, **kw):
        if m == 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(cfg, model, te, vae, sched, batch, m, *a, **kw)

    monkeypatch.setattr(trainer, "micro_loss", oom_at_step_4)
    cfg = tiny_config(tmp_path / "run", tiny_text_dir, steps=6)
    with pytest.raises(ValueError, match="out of memory .* at step 4 with 2 clip.* per micro-batch"):
        train(config_from_dict(cfg), progress=False)
    assert (tmp_path / "run" / "checkpoint-3" / "state.json").is_file()


def test_gradient_checkpointing_gives_the_same_gradients():
    from vidiff.models.image import build_image_unet
    from vidiff.models.inflated import InflatedUNet
    from vidiff.models.unet import build_unet

    g = torch.Generator().manual_seed(0)
    x, text = torch.randn(2, 3, 4, 16, 16, generator=g), torch.randn(2, 5, 8, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1] * 5], dtype=torch.bool)
    models = [build_unet("stunet-tiny", text_dim=8),
              InflatedUNet.from_image_unet(build_image_unet("t2i-tiny", 8), "stunet")]
    for model in models:
        for p in model.parameters():
            p.data.add_(torch.randn(p.shape, generator=g) * 0.02)
        grads = []
        for on in (False, True):
            model.zero_grad()
            if on:
                model.enable_gradient_checkpointing()
            model(x, torch.tensor([10, 600]), text, mask).square().mean().backward()
            grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        assert model.gradient_checkpointing and grads[0].keys() == grads[1].keys()
        assert max(float((grads[0][k] - grads[1][k]).abs().max()) for k in grads[0]) <= 1e-6


def test_loader_workers_tracker_and_checkpointing_leave_the_weights_alone(tmp_path, tiny_text_dir):
    """DataLoader workers build the same batches; gradient checkpointing computes the same gradients; the tracker
    only observes. All three together give the weights of a plain run."""
    plain = _weights(train(config_from_dict(tiny_config(tmp_path / "plain", tiny_text_dir, steps=4)), progress=False))
    cfg = tiny_config(tmp_path / "busy", tiny_text_dir, steps=4, num_workers=2, gradient_checkpointing=True,
                      log_with="tensorboard")
    busy = _weights(train(config_from_dict(cfg), progress=False))
    assert _equal(plain, busy) <= 1e-6
    events = list((tmp_path / "busy" / "logs").rglob("events.out.tfevents*"))
    assert events and events[0].stat().st_size > 0


def test_folder_clips_sample_start_and_stride_per_clip_deterministically(tmp_path):
    from tests.test_io import make_folder
    from vidiff.data.folder import FolderVideoDataset

    make_folder(tmp_path)
    ds = FolderVideoDataset(tmp_path / "m.csv", num_frames=2, resolution=8, frame_stride=1, random_start=True, seed=3,
                            frame_stride_max=3)
    again = FolderVideoDataset(tmp_path / "m.csv", num_frames=2, resolution=8, frame_stride=1, random_start=True,
                               seed=3, frame_stride_max=3)
    draws = [ds.clip_of(i) for i in range(0, 40, len(ds))]  # the same file, epoch after epoch
    assert draws == [again.clip_of(i) for i in range(0, 40, len(ds))]
    assert len(set(draws)) > 1 and all(1 <= s <= 3 for _, s in draws)
    with pytest.raises(ValueError, match="frame_stride_max"):
        config_from_dict({"data": {"kind": "shapes", "random_start": True}})


def test_folder_clips_count_each_file_once_and_again_when_it_changes(tmp_path, monkeypatch):
    """random_start needs a file's frame count; a WebM or GIF has none in its header, so counting decodes it whole:
    once per file, not once per item (it was both for every item of every epoch)."""
    import vidiff.io.video as video
    from tests.test_io import make_folder
    from vidiff.data.folder import FolderVideoDataset

    make_folder(tmp_path)
    ds = FolderVideoDataset(tmp_path / "m.csv", num_frames=2, resolution=8, random_start=True, seed=3)
    calls = []
    real = video.count_frames
    monkeypatch.setattr(video, "count_frames", lambda p: calls.append(str(p)) or real(p))
    good = next(i for i in range(len(ds)) if ds[i] is not None)
    draws = [ds.clip_of(good + k * len(ds)) for k in range(6)]
    assert calls.count(calls[0]) == 1 and len(set(draws)) > 1
    path = ds.rows[good]["path"]
    data = Path(path).read_bytes()
    Path(path).write_bytes(data)  # the same file written again: a new mtime
    os.utime(path, ns=(1, 1))
    ds.clip_of(good)
    assert calls.count(calls[0]) == 2


def test_ema_follows_a_wrapped_model_by_name_on_its_own_device():
    from vidiff.training.ema import EMA

    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    ema = EMA(model, 0.0).to("cpu")

    class Wrapped(torch.nn.Module):  # the names DDP and FSDP give
        def __init__(self, inner):
            super().__init__()
            self.module = inner

    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update(Wrapped(model), step=100)
    assert torch.equal(ema.model[0].weight, model[0].weight)
    with pytest.raises(RuntimeError, match="no counterpart"):
        ema.update(torch.nn.Linear(5, 5), step=1)


def test_accelerate_save_state_checkpoints_resume_exactly(tmp_path, tiny_text_dir):
    cfg = tiny_config(tmp_path / "a", tiny_text_dir, steps=6, checkpoint_format="accelerate")
    full = _weights(train(config_from_dict(cfg), progress=False))
    ck = tmp_path / "a" / "checkpoint-6"
    assert json.loads((ck / "state.json").read_text())["format"] == "accelerate"
    assert (ck / "ema.safetensors").is_file() and any(p.name.startswith("optimizer") for p in ck.iterdir())
    part = dict(cfg, output_dir=str(tmp_path / "b"))
    part["train"] = {**cfg["train"], "steps": 3}
    train(config_from_dict(part), progress=False)
    part["train"]["steps"] = 6
    assert _equal(_weights(train(config_from_dict(part), resume="latest", progress=False)), full) == 0.0


@pytest.mark.slow
def test_two_processes_resume_exactly_from_accelerate_checkpoints(tmp_path, tiny_text_dir):
    import yaml

    def launch(out: Path, steps: int, resume: bool = False):
        cfg = tiny_config(out, tiny_text_dir, steps=steps, checkpoint_format="accelerate", batch_size=4,
                          checkpoint_every=2)
        recipe = tmp_path / f"{out.name}-{steps}.yaml"
        recipe.write_text(yaml.safe_dump(cfg))
        env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "vidiff", "train", "--config", str(recipe), "-q"] + (["--resume", "latest"] if resume else [])
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        return out / "final"

    full = _weights(launch(tmp_path / "full", 4))
    launch(tmp_path / "part", 2)
    resumed = _weights(launch(tmp_path / "part", 4, resume=True))
    assert json.loads((tmp_path / "part" / "checkpoint-4" / "state.json").read_text())["world_size"] == 2
    assert _equal(resumed, full) == 0.0


def test_shipped_accelerate_configs_load_and_a_run_they_cannot_start_is_one_line(tmp_path, tiny_text_dir):
    import yaml
    from accelerate.commands.config.config_args import load_config_from_file

    root = Path(__file__).resolve().parents[1] / "configs" / "accelerate"
    kinds = {}
    for f in sorted(root.glob("*.yaml")):
        kinds[f.stem] = str(load_config_from_file(str(f)).distributed_type)
    assert {"single-gpu", "ddp", "fsdp", "deepspeed-zero2", "ddp-cpu"} <= set(kinds)
    assert "FSDP" in kinds["fsdp"] and "DEEPSPEED" in kinds["deepspeed-zero2"]
    if torch.cuda.is_available():
        return
    cfg = tiny_config(tmp_path / "run", tiny_text_dir, steps=2)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(root / "fsdp.yaml"),
           "--num_processes", "1", "-m", "vidiff", "train", "--config", str(recipe), "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode != 0
    ours = [line for line in r.stderr.splitlines() if line.startswith("vidiff: error")]  # (the launcher adds its own report)
    assert len(ours) == 1 and "accelerate cannot start this configuration" in ours[0], r.stderr[-2000:]
    assert not (tmp_path / "run").exists()


def test_out_of_memory_while_sampling_is_one_line(monkeypatch, capsys, tmp_path, tiny_pipeline_dir):
    from vidiff.cli import main
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    def oom(self, *a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.1 GiB total)")

    monkeypatch.setattr(TextToVideoPipeline, "__call__", oom)
    code = main(["generate", "a red circle", "--model", str(tiny_pipeline_dir), "-q", "-o", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "out of memory on the GPU" in err and "--frames" in err
    assert not (tmp_path / "x.mp4").exists()


def test_folder_batches_from_workers_equal_in_process_ones_and_count_skips(tmp_path):
    from tests.test_io import make_folder
    from vidiff.data.folder import FolderVideoDataset
    from vidiff.training.loader import micro_batches
    from vidiff.training.trainer import batch_for_step

    make_folder(tmp_path)  # one good clip, a truncated one, a short one and a missing file
    ds = FolderVideoDataset(tmp_path / "m.csv", num_frames=4, resolution=8, random_start=True, seed=1)
    here = list(micro_batches(ds, batch_for_step, 0, 1, 2, 0, 3, 7, workers=0))
    there = list(micro_batches(ds, batch_for_step, 0, 1, 2, 0, 3, 7, workers=2))
    assert len(here) == len(there) == 4
    for a, b in zip(here, there):
        assert a["caption"] == b["caption"] and torch.equal(a["video"], b["video"]) and a["skipped"] == b["skipped"]
    assert sum(b["skipped"] for b in here) > 0  # the unreadable rows were met, skipped and counted


# ---------------------------------------------------------------- the lent GPU machine's working tree
def test_device_kit_leaves_models_behind_for_one_call_and_restores_the_index(tmp_path):
    """scripts/device_kit.py: the device tool sends tracked and unignored files (64 MiB at most); the kit takes the
    shipped models the GPU check does not load out of git's index, ignored, files kept on disk, and puts the index
    back exactly; a second prepare, staged changes and a restore with nothing to restore are refused."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        import device_kit as kit
    finally:
        sys.path.pop(0)

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    sizes = {"vidiff/weights/default/w.safetensors": 3000, "vidiff/weights/ssr/w.safetensors": 2000, "code.py": 10}
    sizes.update({f"{p}/w.safetensors": 5000 for p in kit.LEFT_BEHIND})
    for name, n in sizes.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * n)
    git("add", "-A")
    git("commit", "-q", "-m", "init")
    index = git("ls-files", "-s")
    assert kit.travelling_bytes(tmp_path)[0] == sum(sizes.values())

    kit.untrack(tmp_path)
    assert kit.is_prepared(tmp_path)
    assert kit.travelling_bytes(tmp_path)[0] == 5010  # the models left behind neither tracked nor unignored
    assert all((tmp_path / f"{p}/w.safetensors").is_file() for p in kit.LEFT_BEHIND)  # still on disk
    assert git("status", "--porcelain", "--untracked-files=all").count("D  ") == len(kit.LEFT_BEHIND)
    with pytest.raises(SystemExit, match="already prepared"):
        kit.untrack(tmp_path)

    assert kit.retrack(tmp_path) == ""
    assert git("ls-files", "-s") == index and git("status", "--porcelain") == ""
    assert "device_kit" not in kit.exclude_file(tmp_path).read_text()
    with pytest.raises(SystemExit, match="nothing to restore"):
        kit.retrack(tmp_path)
    (tmp_path / "code.py").write_text("changed")
    git("add", "code.py")
    with pytest.raises(SystemExit, match="staged changes"):
        kit.untrack(tmp_path)
