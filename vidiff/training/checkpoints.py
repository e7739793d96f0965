"""Atomic checkpoints: written to a hidden ``.checkpoint-N.tmp*`` folder and renamed, so a run killed
mid-write never leaves a folder that ``latest`` would pick; older checkpoints are pruned only after a good save."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vidiff.io.atomic import atomic_path

_NAME = re.compile(r"^checkpoint-(\d+)$")


def complete_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first (``*.tmp`` and folders lacking state.json skipped)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = []
    for p in run_dir.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir() and (p / "state.json").exists():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def resolve_resume(run_dir: str | os.PathLike, resume: str | None) -> Path | None:
    """``None`` -> no resume; ``"latest"`` -> newest complete checkpoint or None; else a checkpoint path."""
    if resume in (None, "", "none"):
        return None
    if resume == "latest":
        ckpts = complete_checkpoints(run_dir)
        return ckpts[-1] if ckpts else None
    p = Path(resume)
    if not (p / "state.json").exists():
        raise ValueError(f"--resume {resume!r} is not a complete checkpoint folder (state.json missing); "
                         "use 'latest' or a checkpoint-N folder")
    return p


def _state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}


def save_checkpoint(run_dir: str | os.PathLike, step: int, model: torch.nn.Module, ema: torch.nn.Module | None,
                    optimizer: torch.optim.Optimizer, state: dict, keep: int = 2) -> Path:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / f"checkpoint-{step}"
    with atomic_path(final) as tmp:
        tmp.mkdir()
        save_file(_state_dict(model), str(tmp / "model.safetensors"))
        if ema is not None:
            save_file(_state_dict(ema), str(tmp / "ema.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps({**state, "step": step}, indent=2))  # written last
    for old in complete_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module, ema: torch.nn.Module | None,
                    optimizer: torch.optim.Optimizer) -> dict:
    path = Path(path)
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    if ema is not None and (path / "ema.safetensors").exists():
        ema.load_state_dict(load_file(str(path / "ema.safetensors")))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    return json.loads((path / "state.json").read_text())
