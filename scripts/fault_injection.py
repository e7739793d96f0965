"""Kill -9 fault injection for training: a run is SIGKILLed at random moments (some while a checkpoint is being
written, some while an existing checkpoint is written again after a resume from an older one) and resumed
each time; at the end its weights must equal those of an uninterrupted run, bit for bit.

    python scripts/fault_injection.py --kills 20            # the campaign quoted in docs/reliability.md
    python scripts/fault_injection.py --kills 3 --steps 120 # what tests/test_fault_injection.py runs
    python scripts/fault_injection.py --kills 9 --steps 120 --checkpoint-format accelerate   # save_state checkpoints

Checked at every restart: the checkpoint picked is complete and loads (no fallback was needed), at most one
checkpoint interval of finished steps was lost, and no temporary or moved-aside folder survives the restart.
Writes a JSON summary (``--out``) and prints one line per kill.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vidiff.io.lock import LOCK_NAME

RECIPE = """model: {{preset: stunet-tiny}}
data: {{kind: shapes, num_frames: 4, fps: 8, resolution: 8}}
train: {{steps: {steps}, batch_size: 2, lr: 0.001, warmup_steps: 5, checkpoint_every: {every},
        keep_checkpoints: 3, mixed_precision: 'no', ema_decay: 0.9, caption_dropout: 0.2, threads: 1,
        checkpoint_format: {fmt}}}
text_encoder: {text}
output_dir: {out}
"""


def _launch(recipe: Path, resume: str | None, log) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vidiff", "train", "--config", str(recipe), "-q"]
    if resume:
        cmd += ["--resume", resume]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def _steps_done(run: Path) -> int:
    """The newest complete checkpoint's step (what a restart must resume from)."""
    best = 0
    for p in run.glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m and (p / "state.json").exists():
            best = max(best, int(m.group(1)))
    return best


def _wait_for(pred, timeout: float, poll: float = 0.0005) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(poll)
    return False


def campaign(kills: int, steps: int, every: int, seed: int, work: Path, text: str, fmt: str = "files") -> dict:
    """``fmt``: the checkpoint format (train.checkpoint_format: "files", or "accelerate" for save_state)."""
    from safetensors.torch import load_file

    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    ref_dir, run = work / "reference", work / "killed"
    for name, out in (("reference", ref_dir), ("killed", run)):
        (work / f"{name}.yaml").write_text(RECIPE.format(steps=steps, every=every, text=text, out=out, fmt=fmt))
    log = open(work / "log.txt", "w")
    t0 = time.time()
    ref = _launch(work / "reference.yaml", None, log)
    _wait_for(lambda: _steps_done(ref_dir) > 0 or ref.poll() is not None, 600, poll=0.01)
    startup = time.time() - t0  # process start, imports, model build, the first interval
    if ref.wait() != 0:
        raise RuntimeError(f"the reference run failed; see {work / 'log.txt'}")
    training = time.time() - t0 - startup
    span = 2 * training / kills  # random kills land on average one kills-th of the training apart

    events, resume = [], None
    modes = ["random", "mid-save", "mid-resave"]
    while len(events) < kills:
        before = _steps_done(run)
        mode = modes[len(events) % 3]
        done = sorted(int(p.name.split("-")[1]) for p in run.glob("checkpoint-*") if (p / "state.json").exists())
        if mode == "mid-resave" and len(done) < 2:
            mode = "mid-save"  # nothing to rewrite yet
        if mode == "mid-resave":  # resume from the second-newest checkpoint: the next saves rewrite existing ones
            resume = str(run / f"checkpoint-{done[-2]}")
        proc = _launch(work / "killed.yaml", resume, log)
        if mode == "random":
            hit = not _wait_for(lambda: proc.poll() is not None, startup + rng.uniform(0, span), poll=0.01)
        else:  # kill the moment a checkpoint temporary appears
            hit = _wait_for(lambda: any(run.glob(f".checkpoint-*.tmp{proc.pid}")) or proc.poll() is not None, 600)
            hit = hit and proc.poll() is None
        if proc.poll() is not None:
            if proc.returncode == 0:
                break  # it finished before the kill landed: the run is complete
            raise RuntimeError(f"the run failed on its own (exit {proc.returncode}); see {work / 'log.txt'}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        leftovers = sorted(p.name for p in run.glob(".*") if p.name != LOCK_NAME)  # (the run's lock file stays)
        after = _steps_done(run)
        events.append({"mode": mode, "resumed_with": resume, "checkpoint_before": before, "checkpoint_after": after,
                       "leftovers_at_kill": leftovers, "landed": hit})
        print(f"kill {len(events):2d} ({mode:10s}): newest complete checkpoint {before} -> {after}; "
              f"temporaries left by the kill: {leftovers or 'none'}", flush=True)
        resume = "latest"
    # finish the run
    proc = _launch(work / "killed.yaml", "latest", log)
    if proc.wait() != 0:
        raise RuntimeError(f"the final resume failed; see {work / 'log.txt'}")
    log.close()
    text_log = (work / "log.txt").read_text()
    skipped = text_log.count("skipping checkpoint-")
    leftovers = sorted(p.name for p in run.glob(".*") if p.name != LOCK_NAME)
    worst = 0.0
    for name in ("model.safetensors", "ema.safetensors"):
        a = load_file(str(ref_dir / f"checkpoint-{steps}" / name))
        b = load_file(str(run / f"checkpoint-{steps}" / name))
        worst = max([worst] + [(a[k] - b[k]).abs().max().item() for k in a])
    lost = [max(0, e["checkpoint_before"] - e["checkpoint_after"]) for e in events if e["mode"] != "mid-resave"]
    return {"checkpoint_format": fmt, "kills": len(events), "by_mode": {m: sum(e["mode"] == m for e in events) for m in modes},
            "mid_save_kills_with_a_temporary_on_disk": sum(bool(e["leftovers_at_kill"]) for e in events),
            "steps": steps, "checkpoint_every": every, "unloadable_checkpoints_met": skipped,
            "most_steps_lost_by_a_kill": max(lost, default=0), "leftovers_after_finish": leftovers,
            "max_abs_weight_difference": worst, "equal": worst == 0.0, "events": events,
            "seconds": round(time.time() - t0, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--every", type=int, default=10, help="checkpoint interval in steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--text-encoder", default="minilm")
    p.add_argument("--work", default=None, help="folder for the two runs (default: a temporary folder)")
    p.add_argument("--checkpoint-format", default="files", choices=["files", "accelerate"],
                   help="train.checkpoint_format of the runs (accelerate: accelerator.save_state)")
    p.add_argument("--out", default=None, help="write the JSON summary here")
    a = p.parse_args()
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="vidiff-faults-"))
    summary = campaign(a.kills, a.steps, a.every, a.seed, work, a.text_encoder, a.checkpoint_format)
    brief = {k: v for k, v in summary.items() if k != "events"}
    print(json.dumps(brief, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(summary, indent=1))
    ok = (summary["equal"] and not summary["unloadable_checkpoints_met"] and not summary["leftovers_after_finish"]
          and summary["most_steps_lost_by_a_kill"] <= a.every and summary["kills"] == a.kills)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
