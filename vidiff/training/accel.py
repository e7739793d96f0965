"""The run's accelerate side: the Accelerator a recipe and a launch ask for, and what differs between unsharded
and sharded (FSDP, DeepSpeed) runs: the EMA's view of the weights, the checkpoint format."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from vidiff.training.config import RunConfig
from vidiff.training.ema import EMA


def make_accelerator(cfg: RunConfig, out: Path):
    """The run's Accelerator: the process group ``accelerate launch`` set up (DDP, FSDP, DeepSpeed), its mixed
    precision (one given to accelerate other than "no" wins over the recipe's ``train.mixed_precision``), the
    recipe's tracker. Raises ValueError for what this machine or run cannot honour."""
    from accelerate import Accelerator
    from accelerate.utils import GradientAccumulationPlugin, ProjectConfiguration

    from vidiff.hardware import check_precision, native_bf16

    tc = cfg.train
    launched = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    device = torch.device("cuda" if torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_CPU", "").lower()
                          not in ("1", "true", "yes") else "cpu")
    asked = {"fp32": "no"}.get(tc.mixed_precision, tc.mixed_precision)
    if asked == "auto":  # bf16 where it is native, never emulated bf16 (15x fp32 on an AVX2-only CPU)
        asked = "bf16" if native_bf16(device.type) else "no"
    precision = launched if launched != "no" else asked
    try:
        check_precision(precision, device)
    except ValueError as e:
        where = "accelerate's config" if launched != "no" else "train.mixed_precision"
        raise ValueError(f"{where} asks for {precision}: {e}") from None
    if tc.log_with:
        import importlib.util

        if importlib.util.find_spec(tc.log_with) is None:
            raise ValueError(f"train.log_with {tc.log_with} needs the {tc.log_with} package: pip install {tc.log_with}")
    try:
        # accumulation through accelerate (DeepSpeed counts it itself); the loop calls accumulate() exactly
        # gradient_accumulation_steps times per optimizer step, so its counter stays aligned across resumes
        accumulation = GradientAccumulationPlugin(num_steps=tc.gradient_accumulation_steps, adjust_scheduler=False,
                                                  sync_with_dataloader=False)
        accelerator = Accelerator(cpu=device.type == "cpu", mixed_precision=precision, log_with=tc.log_with,
                                  gradient_accumulation_plugin=accumulation,
                                  project_config=ProjectConfiguration(project_dir=str(out),
                                                                      logging_dir=str(out / "logs")))
    except (RuntimeError, ImportError, ValueError, NotImplementedError) as e:
        # e.g. FSDP without a GPU (accelerate refuses it on CPUs), a DeepSpeed config without deepspeed installed
        raise ValueError(f"accelerate cannot start this configuration: {' '.join(str(e).split())[:200]}") from None
    world = accelerator.num_processes
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    if env_world != world:
        raise RuntimeError(f"accelerate started {world} process(es) but WORLD_SIZE={env_world}: "
                           "on CPU use ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N")
    split = world * tc.gradient_accumulation_steps
    if tc.batch_size % split:
        raise ValueError(f"train.batch_size {tc.batch_size} (the global batch of one optimizer step) does not divide "
                         f"into {world} process(es) x {tc.gradient_accumulation_steps} accumulation step(s); use a "
                         f"multiple of {split}")
    return accelerator


def sharded(accelerator) -> bool:
    """Whether the run shards weights or optimizer state (FSDP, DeepSpeed): checkpoints are then accelerate's."""
    from accelerate.utils import DistributedType

    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def ema_update(accelerator, model, ema: EMA, step: int) -> None:
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP:  # gather the full weights for the EMA copy
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        with FSDP.summon_full_params(model, writeback=False):
            ema.update(model, step)
        return
    ema.update(accelerator.unwrap_model(model), step)


def flat_config(d: dict, prefix: str = "") -> dict:
    """A nested config as flat scalars (what trackers take)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_config(v, key + "."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out
