"""Atomic checkpoints.

A checkpoint is written to a hidden ``.checkpoint-N.tmp<pid>`` folder and renamed, so a run killed mid-write
never leaves a folder that ``latest`` would pick. Saving step N again (a rerun, or a resume from an older
checkpoint) moves the old ``checkpoint-N`` aside only after the new one is complete; older checkpoints are
pruned only after a good save. Resuming from ``latest`` tries the most recently saved complete checkpoint (its
``save_index``; after a resume from an older checkpoint that is not the highest step) and falls back to the one
saved before it when its files do not load; what killed writers left behind is tidied first.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vidiff.io.atomic import _TMP, _sibling, atomic_path, clean_stale, put_in_place, remove_path

CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")  # a checkpoint folder's name
log = logging.getLogger("vidiff.train")


def _save_index(path: Path) -> int:
    """A checkpoint's ``save_index`` (state.json): 0 for checkpoints written before it existed, or unreadable."""
    try:
        index = json.loads((path / "state.json").read_text()).get("save_index", 0)
    except (OSError, ValueError, AttributeError):
        return 0
    return index if isinstance(index, int) else 0


def complete_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoint folders of a run, least recently saved first (temporaries and folders lacking state.json
    skipped).

    The order is the order of the saves (``save_index``, then the step), not the step alone: after a resume from an
    older checkpoint the run's newest save can have a lower step than checkpoints of the abandoned continuation,
    which ``latest`` picked (and pruning removed the new branch's saves first)."""
    return [p for *_, p in _in_save_order(run_dir)]


def _in_save_order(run_dir: str | os.PathLike) -> list[tuple[int, int, Path]]:
    """``(save_index, step, folder)`` of each complete checkpoint, least recently saved first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = []
    for p in run_dir.iterdir():
        m = CHECKPOINT_NAME.match(p.name)
        if m and p.is_dir() and (p / "state.json").exists():
            found.append((_save_index(p), int(m.group(1)), p))
    return sorted(found)


def next_save_index(run_dir: Path) -> int:
    """The ``save_index`` of the run's next checkpoint: one more than any it holds."""
    found = _in_save_order(run_dir)
    return 1 + (found[-1][0] if found else 0)


def tidy_run_dir(run_dir: str | os.PathLike) -> list[str]:
    """Remove temporaries of killed writers (and the legacy ``checkpoint-N.tmp`` folders), and put back a
    checkpoint moved aside whose replacement never arrived."""
    run_dir = Path(run_dir)
    done = clean_stale(run_dir)
    if run_dir.is_dir():
        for p in run_dir.glob("checkpoint-*.tmp*"):
            remove_path(p)
            done.append(f"removed {p.name}")
    if (run_dir / "snapshots").is_dir():
        done += clean_stale(run_dir / "snapshots")
    return done


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
    # the run's own folder: replacing it is what saving step N again means (old one moved aside, removed last)
    with atomic_path(final, overwrite=True) as tmp:
        tmp.mkdir()
        save_file(_state_dict(model), str(tmp / "model.safetensors"))
        if ema is not None:
            save_file(_state_dict(ema), str(tmp / "ema.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps({**state, "step": step, "save_index": next_save_index(run_dir)},
                                                   indent=2))  # written last
    _prune(run_dir, keep)
    return final


def _prune(run_dir: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently saved complete checkpoints (0: keep all); called only after a good
    save."""
    for old in complete_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        # out of the checkpoint names first (one rename), then removed: a kill during the removal left a
        # checkpoint-N folder with part of its files gone, which still counted as complete if state.json remained;
        # now it leaves a temporary of a dead process, which the next start tidies (tidy_run_dir)
        aside = _sibling(old, _TMP)
        os.rename(old, aside)
        shutil.rmtree(aside, ignore_errors=True)


ACCELERATE_FORMAT = "accelerate"  # state.json "format": written by accelerator.save_state (sharded under FSDP / DeepSpeed)


def save_state_checkpoint(accelerator, run_dir: str | os.PathLike, step: int, ema: torch.nn.Module | None,
                          state: dict, keep: int = 2) -> Path:
    """A checkpoint through ``accelerator.save_state`` (called on every rank: each writes its shard under FSDP /
    DeepSpeed), kept to the same promises as :func:`save_checkpoint`: written into a hidden temporary folder that
    the main process names, EMA and ``state.json`` (last) added, then renamed into place; an older
    ``checkpoint-N`` of the same step moves aside only then; older checkpoints are pruned only after."""
    from accelerate.utils import broadcast_object_list

    run_dir = Path(run_dir)
    final = run_dir / f"checkpoint-{step}"
    names = [None]
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = _sibling(final, ".tmp")
        remove_path(tmp)
        tmp.mkdir()
        names = [str(tmp)]
    if accelerator.num_processes > 1:
        broadcast_object_list(names)
    tmp = Path(names[0])
    try:
        accelerator.save_state(str(tmp), safe_serialization=True)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            if ema is not None:
                save_file(_state_dict(ema), str(tmp / "ema.safetensors"))
            (tmp / "state.json").write_text(json.dumps({**state, "step": step, "format": ACCELERATE_FORMAT,
                                                        "save_index": next_save_index(run_dir)}, indent=2))
            put_in_place(tmp, final, overwrite=True)
            _prune(run_dir, keep)
    finally:
        if accelerator.is_main_process:
            remove_path(tmp)
    accelerator.wait_for_everyone()
    return final


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Every file of a checkpoint, read and checked before anything is applied (so a bad file changes nothing).
    Raises ValueError naming the file that does not load."""
    path = Path(path)
    out = {}
    try:
        out["state"] = json.loads((path / "state.json").read_text())
        if not isinstance(out["state"].get("step"), int):
            raise ValueError("no step")
        if out["state"].get("format") == ACCELERATE_FORMAT:  # model and optimizer are accelerate's to load
            out["ema"] = load_file(str(path / "ema.safetensors")) if (path / "ema.safetensors").exists() else None
            return out
        out["model"] = load_file(str(path / "model.safetensors"))
        out["ema"] = load_file(str(path / "ema.safetensors")) if (path / "ema.safetensors").exists() else None
        out["optimizer"] = torch.load(path / "optimizer.pt", weights_only=True)
    except Exception as e:  # any unreadable file: truncated, zero bytes, foreign, a pickle, ...
        raise ValueError(f"checkpoint {str(path)!r} does not load ({type(e).__name__}: {str(e)[:120]})") from None
    return out


def apply_checkpoint(ckpt: dict, model: torch.nn.Module, ema: torch.nn.Module | None,
                     optimizer: torch.optim.Optimizer, accelerator=None, path: Path | None = None) -> dict:
    if ckpt["state"].get("format") == ACCELERATE_FORMAT:
        if accelerator is None:
            raise ValueError(f"checkpoint {str(path)!r} was written by accelerate's save_state: resume it with vidiff train")
        try:
            accelerator.load_state(str(path))
        except Exception as e:  # a missing or truncated shard, another sharding
            raise ValueError(f"checkpoint {str(path)!r} does not load ({type(e).__name__}: {str(e)[:120]})") from None
        if ema is not None and ckpt["ema"] is not None:
            ema.load_state_dict(ckpt["ema"])
        return ckpt["state"]
    model.load_state_dict(ckpt["model"])
    if ema is not None and ckpt["ema"] is not None:
        ema.load_state_dict(ckpt["ema"])
    optimizer.load_state_dict(ckpt["optimizer"])
    return ckpt["state"]


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module, ema: torch.nn.Module | None,
                    optimizer: torch.optim.Optimizer) -> dict:
    return apply_checkpoint(read_checkpoint(path), model, ema, optimizer)


def load_resume(run_dir: str | os.PathLike, resume: str | None, model: torch.nn.Module, ema: torch.nn.Module | None,
                optimizer: torch.optim.Optimizer, accelerator=None) -> tuple[Path | None, dict | None]:
    """Load the checkpoint ``resume`` names (either format; ``accelerator``: the prepared run's, for checkpoints
    accelerate wrote). With ``"latest"``, the newest complete checkpoint that loads: one that fails is reported
    and the next older one is tried; when none loads it is an error (never a silent fresh start over them), and
    so is a named checkpoint that fails."""
    if resume in (None, "", "none"):
        return None, None
    if resume != "latest":
        path = resolve_resume(run_dir, resume)
        return path, apply_checkpoint(read_checkpoint(path), model, ema, optimizer, accelerator, path)
    found = complete_checkpoints(run_dir)
    for path in reversed(found):
        try:
            ckpt = read_checkpoint(path)
            state = apply_checkpoint(ckpt, model, ema, optimizer, accelerator, path)
        except (ValueError, RuntimeError, KeyError) as e:  # RuntimeError: the weights do not fit this model
            log.warning("skipping %s: %s", path.name, e)
            continue
        return path, state
    if found:
        raise ValueError(f"no checkpoint in {str(run_dir)!r} loads into this run (see the warnings above; a changed "
                         f"model or train.spatial_lr_scale?): restore the recipe it was made with, or set another "
                         f"output_dir")
    return None, None
