"""Never destroy or corrupt user data: outputs never replace what the user did not ask to replace, never an
input; checkpoints are replaced only once the new one is complete; resume is exact."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from vidiff.cli import main
from vidiff.io.atomic import atomic_path, clean_stale
from vidiff.io.video import write_video
from vidiff.training.checkpoints import complete_checkpoints, save_checkpoint, tidy_run_dir
from vidiff.training.config import config_from_dict
from vidiff.training.trainer import train


def _run(capsys, *args):
    code = main([*map(str, args)])
    return code, capsys.readouterr().err


def _tree(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes() if p.is_file() else b"") for p in folder.rglob("*"))


def test_an_existing_folder_is_never_deleted(tmp_path, capsys, tiny_pipeline_dir):
    user = tmp_path / "photos"
    user.mkdir()
    (user / "holiday.jpg").write_bytes(b"precious")
    (user / "sub").mkdir()
    (user / "sub" / "notes.txt").write_text("keep me")
    before = _tree(user)
    for extra in ([], ["--overwrite"]):
        code, err = _run(capsys, "generate", "a red circle", "-o", user, "--model", tiny_pipeline_dir, "-q", *extra)
        assert code == 2 and "holds other files" in err and "holiday.jpg" in err, err
        assert len(err.strip().splitlines()) == 1
        assert _tree(user) == before


def test_dot_dot_from_a_subfolder_erases_nothing(tmp_path, capsys, tiny_pipeline_dir, monkeypatch):
    (tmp_path / "keep.txt").write_text("x")
    sub = tmp_path / "work"
    sub.mkdir()
    (sub / "mine.txt").write_text("y")
    monkeypatch.chdir(sub)
    for out in ("..", ".", str(tmp_path)):
        code, err = _run(capsys, "generate", "a red circle", "-o", out, "--model", tiny_pipeline_dir, "-q", "--overwrite")
        assert code == 2, err
        assert (tmp_path / "keep.txt").read_text() == "x" and (sub / "mine.txt").read_text() == "y"


def test_existing_outputs_are_refused_by_name_and_replaced_only_on_overwrite(tmp_path, capsys, tiny_pipeline_dir):
    out = tmp_path / "clip.mp4"
    (tmp_path / "clip.json").write_text("my notes")
    code, err = _run(capsys, "generate", "a red circle", "-o", out, "--model", tiny_pipeline_dir, "-q")
    assert code == 2 and "clip.json" in err and "--overwrite" in err, err
    assert (tmp_path / "clip.json").read_text() == "my notes" and not out.exists()
    assert _run(capsys, "generate", "a red circle", "-o", out, "--model", tiny_pipeline_dir, "-q", "--overwrite")[0] == 0
    assert json.loads((tmp_path / "clip.json").read_text())["prompt"] == "a red circle"
    # a folder of vidiff's own frames may be replaced on request; an empty folder is simply filled
    frames = tmp_path / "frames"
    frames.mkdir()
    assert _run(capsys, "generate", "a red circle", "-o", frames, "--model", tiny_pipeline_dir, "-q", "--no-sheet")[0] == 0
    code, err = _run(capsys, "generate", "a red circle", "-o", frames, "--model", tiny_pipeline_dir, "-q", "--no-sheet")
    assert code == 2 and "frames" in err
    code, err = _run(capsys, "generate", "a blue square", "-o", frames, "--model", tiny_pipeline_dir, "-q", "--no-sheet",
                     "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in frames.iterdir()) == [f"frame_{i:04d}.png" for i in range(4)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries or moved-aside folders left


def test_a_command_never_writes_over_its_input(tmp_path, capsys, tiny_conditional_dir):
    img = tmp_path / "frame.png"
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(img)
    before = img.read_bytes()
    for extra in ([], ["--overwrite"]):
        code, err = _run(capsys, "animate", img, "a red circle", "-o", tmp_path / "frame.mp4", "--model",
                         tiny_conditional_dir, "--steps", "2", "-q", *extra)
        assert code == 2 and "frame.png" in err and "input" in err, err
        assert img.read_bytes() == before and not (tmp_path / "frame.mp4").exists()
    code, err = _run(capsys, "animate", img, "a red circle", "-o", tmp_path / "frame.png", "--model",
                     tiny_conditional_dir, "-q", "--overwrite")
    assert code == 2 and img.read_bytes() == before


def test_atomic_path_replaces_a_folder_only_after_the_new_one_is_complete(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "a").write_text("old")
    with pytest.raises(ValueError, match="already exists"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
    with pytest.raises(RuntimeError):  # the writer fails half-way: the old folder is untouched
        with atomic_path(target, overwrite=True) as tmp:
            tmp.mkdir()
            (tmp / "a").write_text("half")
            raise RuntimeError("disk full")
    assert (target / "a").read_text() == "old"
    with atomic_path(target, overwrite=True) as tmp:
        tmp.mkdir()
        (tmp / "b").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_write_video_refuses_to_replace_a_file_unless_asked(tmp_path):
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    (tmp_path / "a.gif").write_bytes(b"user data")
    with pytest.raises(ValueError, match="already exists"):
        write_video(frames, tmp_path / "a.gif")
    assert (tmp_path / "a.gif").read_bytes() == b"user data"
    write_video(frames, tmp_path / "a.gif", overwrite=True)
    assert (tmp_path / "a.gif").read_bytes()[:3] == b"GIF"
    with pytest.raises(ValueError, match="fps"):
        write_video(frames, tmp_path / "b.mp4", fps=1e-9)


# ---------------------------------------------------------------------------------------------- checkpoints
def _tiny(out, text_dir, steps, **kw):
    return config_from_dict({
        "model": {"preset": "stunet-tiny"},
        "data": {"kind": "shapes", "num_frames": 4, "fps": 8, "resolution": 8},
        "train": {"steps": steps, "batch_size": 2, "lr": 1e-3, "warmup_steps": 2, "checkpoint_every": 3,
                  "keep_checkpoints": 5, "mixed_precision": "no", "ema_decay": 0.9, "caption_dropout": 0.3, **kw},
        "text_encoder": "minilm" if text_dir is None else str(text_dir), "output_dir": str(out)})


class Killed(BaseException):
    """Stands in for SIGKILL: not an Exception, not a KeyboardInterrupt, so nothing saves on the way out."""


def _kill_at(monkeypatch, step):
    import vidiff.training.trainer as trainer

    real = trainer.batch_for_step

    def batch(dataset, s, *a, **k):
        if s == step:
            raise Killed
        return real(dataset, s, *a, **k)

    monkeypatch.setattr(trainer, "batch_for_step", batch)


def test_saving_a_step_again_keeps_the_old_checkpoint_until_the_new_one_is_complete(tmp_path, monkeypatch):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    first = save_checkpoint(tmp_path, 6, model, None, opt, {"elapsed_s": 1.0})
    old = load_file(str(first / "model.safetensors"))
    import vidiff.training.checkpoints as ck

    def dying_save(*a, **k):
        raise Killed

    monkeypatch.setattr(ck, "save_file", dying_save)
    with torch.no_grad():
        model.weight.add_(1)
    with pytest.raises(Killed):
        save_checkpoint(tmp_path, 6, model, None, opt, {"elapsed_s": 2.0})
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-6"]
    assert torch.equal(load_file(str(first / "model.safetensors"))["weight"], old["weight"])
    # a kill between moving the old one aside and renaming the new one in: the next start puts it back
    os.rename(first, tmp_path / ".checkpoint-6.old999999999")
    (tmp_path / ".checkpoint-9.tmp999999999").mkdir()
    (tmp_path / "checkpoint-12.tmp").mkdir()  # the name older versions used
    done = tidy_run_dir(tmp_path)
    assert "restored checkpoint-6" in done and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-6"]
    assert clean_stale(tmp_path) == []


def test_a_kill_while_pruning_leaves_no_half_removed_checkpoint(tmp_path, monkeypatch):
    """Pruning removed the oldest checkpoint in place: a kill midway left checkpoint-N with its weights gone and its
    state.json still there, which counted as complete (the fallback for a newest checkpoint that does not load)."""
    import shutil

    import vidiff.training.checkpoints as ck
    from vidiff.io.atomic import is_temporary

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    for step in (2, 4):
        save_checkpoint(tmp_path, step, model, None, opt, {"elapsed_s": 1.0})

    def dying_rmtree(path, *a, **k):
        os.remove(os.path.join(path, "model.safetensors"))  # the first file gone, then the kill
        raise Killed

    rmtree = shutil.rmtree
    monkeypatch.setattr(ck.shutil, "rmtree", dying_rmtree)
    with pytest.raises(Killed):
        save_checkpoint(tmp_path, 6, model, None, opt, {"elapsed_s": 2.0})
    monkeypatch.setattr(ck.shutil, "rmtree", rmtree)
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-4", "checkpoint-6"]
    assert all((p / "model.safetensors").is_file() for p in complete_checkpoints(tmp_path))
    left = [p for p in tmp_path.iterdir() if not p.name.startswith("checkpoint-")]
    assert len(left) == 1 and is_temporary(left[0].name)
    os.rename(left[0], tmp_path / ".checkpoint-2.tmp999999999")  # its process gone: the next start tidies it
    assert tidy_run_dir(tmp_path) == ["removed .checkpoint-2.tmp999999999"]


def test_a_newest_checkpoint_that_does_not_load_falls_back_to_the_older_one(tmp_path, tiny_text_dir, caplog):
    full = train(_tiny(tmp_path / "full", tiny_text_dir, 9), progress=False)
    run = tmp_path / "run"
    train(_tiny(run, tiny_text_dir, 9), progress=False)
    (run / "checkpoint-9" / "model.safetensors").write_bytes(b"\x00" * 64)  # bit rot / a torn write
    (run / "checkpoint-6" / "optimizer.pt").write_bytes(b"")
    final = train(_tiny(run, tiny_text_dir, 9), resume="latest", progress=False)
    assert "skipping checkpoint-9" in caplog.text and "skipping checkpoint-6" in caplog.text
    a, b = (load_file(str(next((p / "unet").glob("*.safetensors")))) for p in (full, final))
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="does not load"):  # a named checkpoint is not silently replaced
        (run / "checkpoint-3" / "model.safetensors").write_bytes(b"")
        train(_tiny(run, tiny_text_dir, 9), resume=str(run / "checkpoint-3"), progress=False)
    # none loads: refused, not a silent fresh start over the run's checkpoints
    from vidiff.training.checkpoints import complete_checkpoints

    kept = complete_checkpoints(run)
    for ckpt in kept:
        (ckpt / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="no checkpoint in .* loads into this run"):
        train(_tiny(run, tiny_text_dir, 9), resume="latest", progress=False)
    assert complete_checkpoints(run) == kept and kept


def test_a_fresh_start_never_replaces_an_earlier_run(tmp_path, tiny_text_dir):
    train(_tiny(tmp_path, tiny_text_dir, 3), progress=False)
    before = load_file(str(tmp_path / "checkpoint-3" / "model.safetensors"))
    with pytest.raises(ValueError, match="--resume latest"):
        train(_tiny(tmp_path, tiny_text_dir, 3, seed=5), progress=False)
    after = load_file(str(tmp_path / "checkpoint-3" / "model.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_training_never_writes_over_a_users_files_in_output_dir(tmp_path, tiny_text_dir):
    """The user's own config.json in output_dir was replaced by the run's recipe, exit 0; a fresh start among other
    files of the user's is refused too (as a report folder is); a run folder of vidiff's own is still continued."""
    run = tmp_path / "mine"
    run.mkdir()
    (run / "config.json").write_text('{"lr": 0.1}')
    with pytest.raises(ValueError, match="config.json that is not a vidiff run's"):
        train(_tiny(run, tiny_text_dir, 2), progress=False)
    assert (run / "config.json").read_text() == '{"lr": 0.1}'
    for resume in (None, "latest"):
        with pytest.raises(ValueError, match="not a vidiff run's"):
            train(_tiny(run, tiny_text_dir, 2), resume=resume, progress=False)
    (run / "config.json").unlink()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"files that are not a training run's \(notes.txt\)"):
        train(_tiny(run, tiny_text_dir, 2), progress=False)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
    fresh = tmp_path / "fresh"
    train(_tiny(fresh, tiny_text_dir, 2), progress=False)
    (fresh / "notes.txt").write_text("added later")  # a note beside a run does not block its resume
    train(_tiny(fresh, tiny_text_dir, 3), resume="latest", progress=False)
    assert (fresh / "notes.txt").read_text() == "added later"


def test_resume_after_a_hard_kill_is_exact_over_120_steps(tmp_path, tiny_text_dir, monkeypatch):
    """Caption dropout and a shuffled finite caption set make batch-mates change between the two runs: the
    embeddings must not depend on them (they did, up to 7e-6, when captions were encoded in padded batches)."""
    kw = dict(checkpoint_every=40, caption_dropout=0.3)
    full = train(_tiny(tmp_path / "full", None, 120, **kw), progress=False)
    run = tmp_path / "killed"
    _kill_at(monkeypatch, 97)
    with pytest.raises(Killed):
        train(_tiny(run, None, 120, **kw), progress=False)
    assert [p.name for p in complete_checkpoints(run)] == ["checkpoint-40", "checkpoint-80"]
    monkeypatch.undo()  # train() builds a new text encoder: an empty caption cache, as in a new process
    resumed = train(_tiny(run, None, 120, **kw), resume="latest", progress=False)
    for name in ("model.safetensors", "ema.safetensors"):
        a = load_file(str(tmp_path / "full" / "checkpoint-120" / name))
        b = load_file(str(run / "checkpoint-120" / name))
        worst = max((a[k] - b[k]).abs().max().item() for k in a)
        assert worst == 0.0, (name, worst)
    a, b = (load_file(str(next((p / "unet").glob("*.safetensors")))) for p in (full, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_report_folder_left_by_a_killed_evaluate_takes_the_rerun(tmp_path):
    """A kill -9 while the report was written left vidiff's temporary in the folder, and the rerun with --overwrite
    was refused over it ("holds other files"): a dead process's temporaries are tidied, a live one's and the
    user's files are not."""
    from vidiff.evaluation.report_files import check_report_dir

    report = tmp_path / "report"
    report.mkdir()
    (report / "metrics.json").write_text("{}")
    (report / ".metrics.json.tmp999999999.json").write_text('{"par')  # its writer is gone
    check_report_dir(report, overwrite=True)
    assert sorted(p.name for p in report.iterdir()) == ["metrics.json"]
    only_stale = tmp_path / "only-stale"
    only_stale.mkdir()
    (only_stale / ".samples.jsonl.tmp999999999.jsonl").write_text("x")
    check_report_dir(only_stale)  # empty once tidied: a fresh report may go there
    live = report / f".report.md.tmp{os.getpid()}.md"  # another evaluate writing there now
    live.write_text("x")
    with pytest.raises(ValueError, match="holds other files"):
        check_report_dir(report, overwrite=True)
    assert live.exists()
    live.unlink()
    (report / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds other files"):
        check_report_dir(report, overwrite=True)
    assert (report / "notes.txt").read_text() == "mine"


def test_a_second_evaluate_into_a_report_folder_in_use_is_refused_before_its_work(tmp_path, capsys):
    """Two `vidiff evaluate` into one report folder both ran to the end; with --overwrite the folder was left with
    one's report.md beside the other's metrics.json. A failed evaluation leaves no folder it created behind, and a
    folder holding only the lock of a finished one takes the next report."""
    from conftest import random_clip_folders

    from vidiff.cli import main
    from vidiff.evaluation.report import evaluate_folders
    from vidiff.io.lock import LOCK_NAME, folder_lock

    random_clip_folders(tmp_path, 2)
    report = tmp_path / "report"
    evaluate_folders(tmp_path / "real", tmp_path / "fake", report, progress=False)
    first = (report / "metrics.json").read_text()
    with folder_lock(report, "the report folder"):  # another evaluate writing there now
        for overwrite in (False, True):
            with pytest.raises(ValueError, match="report folder .* is in use by another run"):
                evaluate_folders(tmp_path / "real", tmp_path / "fake", report, overwrite=overwrite, progress=False)
        code = main(["evaluate", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--out",
                     str(report), "--overwrite", "--quiet"])
        assert code == 2 and "in use by another run" in capsys.readouterr().err
    assert (report / "metrics.json").read_text() == first
    evaluate_folders(tmp_path / "real", tmp_path / "fake", report, overwrite=True, progress=False)  # released
    fresh = tmp_path / "new" / "report"
    with pytest.raises(ValueError, match="fewer than 2 readable videos"):
        (tmp_path / "fake" / "c1.mp4").write_bytes(b"not a video")
        evaluate_folders(tmp_path / "real", tmp_path / "fake", fresh, progress=False)
    assert not (tmp_path / "new").exists()
    only_lock = tmp_path / "only-lock"
    only_lock.mkdir()
    (only_lock / LOCK_NAME).write_text("")
    (tmp_path / "fake" / "c2.mp4").write_bytes((tmp_path / "fake" / "c0.mp4").read_bytes())
    evaluate_folders(tmp_path / "real", tmp_path / "fake", only_lock, progress=False)
    assert (only_lock / "metrics.json").is_file()


def test_an_output_whose_overwrite_was_killed_gets_its_old_version_back(tmp_path):
    """A kill between moving an old output folder aside and renaming the new one in left the user's folder hidden
    as .NAME.oldPID, and a rerun wrote a new one beside it: the next write of that path puts the old one back
    first (and then refuses to replace it without overwrite), and removes the dead writer's temporaries."""
    (tmp_path / ".frames.old999999999").mkdir()
    (tmp_path / ".frames.old999999999" / "mine.png").write_text("user data")
    (tmp_path / ".clip.mp4.tmp999999999.mp4").write_text("half a video")
    (tmp_path / ".other.old999999999").mkdir()  # another output's: left for that output's own next write
    with pytest.raises(ValueError, match="already exists"):
        with atomic_path(tmp_path / "frames") as tmp:
            tmp.mkdir()
    assert (tmp_path / "frames" / "mine.png").read_text() == "user data"
    with atomic_path(tmp_path / "clip.mp4") as tmp:
        tmp.write_text("video")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.old999999999", "clip.mp4", "frames"]


def test_the_output_check_brings_back_an_output_whose_overwrite_was_killed(tmp_path):
    """check_outputs runs before any model loads: the old version comes back there, so a rerun is refused at once
    rather than after the work."""
    from vidiff.io.outputs import check_outputs

    (tmp_path / ".clip.old999999999").mkdir()
    (tmp_path / ".clip.old999999999" / "frame_0000.png").write_bytes(b"png")
    with pytest.raises(ValueError, match="already exists"):
        check_outputs([tmp_path / "clip"])
    assert (tmp_path / "clip" / "frame_0000.png").read_bytes() == b"png"


def test_a_second_run_into_a_folder_in_use_is_refused_and_a_killed_holder_frees_it(tmp_path, tiny_text_dir):
    """Three `vidiff train` into one output_dir, started seconds apart (one with --resume latest), all trained,
    interleaved their logs (duplicate steps) and replaced each other's checkpoints and export, exit 0 each."""
    import signal
    import subprocess
    import sys

    from vidiff.io.lock import LOCK_NAME

    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from vidiff.io.lock import folder_lock\n"
                               f"with folder_lock({str(out)!r}):\n print('held', flush=True); time.sleep(120)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for resume in (None, "latest"):
            with pytest.raises(ValueError, match=f"is in use by another run \\(process {holder.pid}\\)"):
                train(_tiny(out, tiny_text_dir, 3), resume=resume, progress=False)
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written beside the lock
    finally:
        holder.send_signal(signal.SIGKILL)  # the kernel drops a killed holder's lock: no stale lock to clean
        holder.wait()
    final = train(_tiny(out, tiny_text_dir, 3), progress=False)
    assert final.is_dir()
    steps = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == [3]
    from vidiff.io.lock import folder_lock

    with folder_lock(out, "output_dir"):  # the same process, a second open of the lock: refused as well
        with pytest.raises(ValueError, match="in use"):
            train(_tiny(out, tiny_text_dir, 6), resume="latest", progress=False)
    train(_tiny(out, tiny_text_dir, 6), resume="latest", progress=False)  # released after a run and after a failure


def test_a_resume_whose_steps_end_before_its_checkpoint_is_refused(tmp_path, tiny_text_dir):
    """`--resume latest --set train.steps=2` on a run at step 6 trained nothing, rewrote the run's config.json to say
    2 steps and exported step 6's weights again as `final`, exit 0. Equal steps still export (a run killed after its
    last checkpoint and before its export)."""
    out = tmp_path / "run"
    train(_tiny(out, tiny_text_dir, 6), progress=False)
    recipe = (out / "config.json").read_text()
    with pytest.raises(ValueError, match="continues from checkpoint-6, at step 6, and train.steps is 2"):
        train(_tiny(out, tiny_text_dir, 2), resume="latest", progress=False)
    assert (out / "config.json").read_text() == recipe
    assert train(_tiny(out, tiny_text_dir, 6), resume="latest", progress=False).is_dir()


def test_files_of_the_users_in_a_runs_final_folder_survive_a_resumed_run(tmp_path, tiny_text_dir, monkeypatch):
    """Notes or samples kept in a run's final/ were deleted, exit 0, when the run was resumed for more steps and
    exported again (the export replaced any vidiff pipeline folder)."""
    import vidiff.training.trainer as trainer

    run = tmp_path / "run"
    train(_tiny(run, tiny_text_dir, 3), progress=False)
    (run / "final" / "NOTES.md").write_text("my notes")
    with pytest.raises(ValueError, match=r"final' holds files that a pipeline export does not write \(NOTES.md\)"):
        train(_tiny(run, tiny_text_dir, 6), resume="latest", progress=False)
    assert not (run / "checkpoint-6").exists()  # refused before it trained
    (run / "final" / "NOTES.md").unlink()
    real = trainer.ema_update

    def user_writes_during_the_run(accelerator, model, ema, step):  # the user saves a sample there meanwhile
        if step == 5:
            (run / "final" / "sample.mp4").write_bytes(b"mine")
        return real(accelerator, model, ema, step)

    monkeypatch.setattr(trainer, "ema_update", user_writes_during_the_run)
    with pytest.raises(ValueError, match=r"\(sample.mp4\).*--resume latest to export the weights kept in .*checkpoint-6"):
        train(_tiny(run, tiny_text_dir, 6), resume="latest", progress=False)
    monkeypatch.setattr(trainer, "ema_update", real)
    assert (run / "final" / "sample.mp4").read_bytes() == b"mine" and (run / "checkpoint-6").is_dir()
    (run / "final" / "sample.mp4").unlink()
    final = train(_tiny(run, tiny_text_dir, 6), resume="latest", progress=False)  # exports the kept weights
    assert json.loads((final / "vidiff_pipeline.json").read_text())["train_config"]["train"]["steps"] == 6


def test_latest_is_the_last_save_after_going_back_to_an_older_checkpoint(tmp_path, tiny_text_dir):
    """A run went back to checkpoint-2 (of 2, 4, 6) with a new learning rate and trained to step 3; `--resume latest`
    then continued the abandoned checkpoint-6 instead of the run's own last save, and pruning removed the new
    branch's checkpoints before the abandoned ones."""
    run = tmp_path / "run"
    train(_tiny(run, tiny_text_dir, 6, checkpoint_every=2, keep_checkpoints=3), progress=False)
    branch = _tiny(run, tiny_text_dir, 3, checkpoint_every=2, keep_checkpoints=3, lr=1e-4)
    train(branch, resume=str(run / "checkpoint-2"), progress=False)
    assert [p.name for p in complete_checkpoints(run)] == ["checkpoint-4", "checkpoint-6", "checkpoint-3"]
    from vidiff.training.checkpoints import resolve_resume

    assert resolve_resume(run, "latest").name == "checkpoint-3"
    cont = _tiny(run, tiny_text_dir, 4, checkpoint_every=2, keep_checkpoints=3, lr=1e-4)
    train(cont, resume="latest", progress=False)  # step 3 -> 4: checkpoint-4 saved again, the abandoned 6 pruned next
    assert [p.name for p in complete_checkpoints(run)] == ["checkpoint-6", "checkpoint-3", "checkpoint-4"]
    assert json.loads((run / "checkpoint-4" / "state.json").read_text())["save_index"] == 5
    straight = tmp_path / "straight"  # the same path taken without the detour: 2 steps, then 2 at the new rate
    train(_tiny(straight, tiny_text_dir, 6, checkpoint_every=2, keep_checkpoints=3), progress=False)
    train(_tiny(straight, tiny_text_dir, 4, checkpoint_every=2, keep_checkpoints=3, lr=1e-4),
          resume=str(straight / "checkpoint-2"), progress=False)
    a, b = (load_file(str(p / "checkpoint-4" / "model.safetensors")) for p in (run, straight))
    assert all(torch.equal(a[k], b[k]) for k in a)
