"""What only a CUDA GPU runs: sampling on CUDA (the same video as on the CPU, to tolerance), bf16 / fp16 autocast,
SDPA attention, training on the GPU (the EMA on the device, fp16 loss scaling, accumulation) and one-process
FSDP. Deselected from the CPU suite (pyproject: -m "not gpu"); scripts/gpu_check.sh runs them with -m gpu.
Every code path here that a CPU can take is also tested on the CPU (tests/test_scale.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.test_training import tiny_config
from vidiff.training.config import config_from_dict
from vidiff.training.trainer import train

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (scripts/gpu_check.sh)")]
ROOT = Path(__file__).resolve().parents[1]


def _video(pipe, precision: str = "fp32"):
    from vidiff.hardware import autocast

    with autocast(pipe.device, precision):
        return pipe("a red circle moving left", num_inference_steps=10, generator=torch.Generator().manual_seed(0),
                    base_only=True, output_type="pt").videos


def test_the_default_gives_the_same_video_on_cuda_and_cpu():
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    pipe = TextToVideoPipeline.from_pretrained("default")
    cpu = _video(pipe)
    cuda = _video(pipe.to("cuda"))
    assert cuda.device.type == "cpu" and (cuda - cpu).abs().max() <= 2e-2  # the noise is drawn on the CPU
    for precision in ("bf16", "fp16"):
        half = _video(pipe, precision)
        assert torch.isfinite(half).all() and (half - cpu).abs().mean() <= 5e-2, precision


def test_sdpa_runs_on_cuda_and_matches_the_matmul_path(monkeypatch):
    import vidiff.models.blocks as blocks

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, n, 64, generator=g).cuda() for n in (50, 70, 70))
    mask = torch.ones(3, 70, dtype=torch.bool, device="cuda")
    mask[1, 30:] = False
    monkeypatch.setattr(blocks, "USE_SDPA", None)  # auto: SDPA on CUDA
    got = blocks.attention(q, k, v, 4, mask=mask)
    monkeypatch.setattr(blocks, "USE_SDPA", False)
    assert (got - blocks.attention(q, k, v, 4, mask=mask)).abs().max() <= 1e-4


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_training_on_the_gpu_keeps_the_ema_there(tmp_path, tiny_text_dir, precision):
    cfg = tiny_config(tmp_path / "run", tiny_text_dir, steps=4, mixed_precision=precision, batch_size=4,
                      gradient_accumulation_steps=2, num_workers=2)
    final = train(config_from_dict(cfg), progress=False)
    assert (final / "vidiff_pipeline.json").is_file()
    # resume on the GPU from the last checkpoint
    cfg["train"]["steps"] = 6
    train(config_from_dict(cfg), resume="latest", progress=False)


def test_one_process_fsdp_trains_and_resumes(tmp_path, tiny_text_dir):
    import yaml

    cfg = tiny_config(tmp_path / "run", tiny_text_dir, steps=4, checkpoint_every=2)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "configs/accelerate/fsdp.yaml"),
           "--num_processes", "1", "-m", "vidiff", "train", "--config", str(recipe), "-q"]
    r = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "run" / "final" / "vidiff_pipeline.json").is_file()
    r = subprocess.run(cmd + ["--resume", "latest", "--set", "train.steps=6"], env=dict(os.environ),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.parametrize("arch", ["animatediff", "stunet"])
def test_a_stable_diffusion_layout_video_model_samples_on_cuda(tmp_path, arch):
    """The latent path on the GPU: the VAE, CLIP's padded prompt and diffusers' UNetMotionModel (or vidiff's STUNet
    inflation) on CUDA give the CPU's clip, to tolerance, and finite ones under bf16 / fp16 autocast."""
    from tests.test_inflation import make_tiny_motion_adapter, make_tiny_sd_folder
    from vidiff.hardware import autocast
    from vidiff.pipelines.inflate import inflate

    sd = make_tiny_sd_folder(tmp_path / "sd")
    extra = {"motion_adapter": make_tiny_motion_adapter(tmp_path / "adapter")} if arch == "animatediff" else {}
    pipe = inflate(sd, arch, **extra)

    def clip(precision="fp32"):
        with autocast(pipe.device, precision):
            return pipe("a red circle moving left", num_frames=4, num_inference_steps=4, output_type="pt",
                        generator=torch.Generator().manual_seed(0)).videos

    cpu = clip()
    pipe.to("cuda")
    cuda = clip()
    assert (cuda - cpu).abs().max() <= 2e-2
    for precision in ("bf16", "fp16"):
        assert torch.isfinite(clip(precision)).all(), precision
