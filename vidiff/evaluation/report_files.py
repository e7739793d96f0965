"""The files of a ``vidiff evaluate`` report: metrics.json, report.md, samples.jsonl, plots and captioned contact
sheets of the best and worst clips; and the warnings a report carries when a sample is too small for a metric."""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from vidiff.io.atomic import clean_stale, put_in_place, remove_path, write_text_atomic
from vidiff.io.lock import LOCK_NAME, check_not_in_use, folder_lock

FEATURE_DIM = 128  # the Shapes encoder's video and frame features (FVD / frame FID covariances are 128 x 128)


def sample_warnings(n_real: int, n_fake: int, metrics: dict, frames_per_video: int = 16) -> list[str]:
    """What a reader of ``metrics`` must know about the sample size: a Frechet distance from fewer videos than
    feature dimensions rests on a rank-deficient covariance (biased up and unstable: a real-vs-real value can exceed
    a model's); KVD / KID are unbiased estimates that go negative on small sets; IS has no spread from one split."""
    n = min(n_real, n_fake)
    out = []
    if n < 2 * FEATURE_DIM:
        out.append(f"FVD from {n} videos per set (under twice the {FEATURE_DIM} feature dimensions) is biased upwards "
                   f"and unstable, and may not even rank models: use at least {2 * FEATURE_DIM} (--samples "
                   f"{2 * FEATURE_DIM})")
    if n * frames_per_video < 2 * FEATURE_DIM:
        out.append(f"frame FID from {n * frames_per_video} frames per set is unreliable: use at least "
                   f"{2 * FEATURE_DIM} frames")
    for k in ("kvd", "frame_kid"):
        v = metrics.get(k)
        if v is not None and v < 0:
            out.append(f"{k.upper().replace('FRAME_', 'frame ')} is {v:.3g} < 0: an unbiased estimate below its noise "
                       f"on {n} videos; read it as 0 +- {metrics.get(k + '_std', float('nan')):.2g} and use more samples")
    if "is" in metrics and (metrics.get("is_std") is None or math.isnan(metrics["is_std"])):
        out.append(f"the Inception Score has no spread: one split of {n} videos (TGANv2's protocol); compare it only "
                   f"with scores from as many videos")
    return out


def _json_safe(x):
    """``x`` with NaN and infinite floats as None: JSON has no NaN, and other tools' parsers reject the token
    Python writes for it (a reading of clips with no object has no area spread, for one)."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)) and not math.isfinite(float(x)):
        return None
    return x


def _fmt(x) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else (f"{x:.4g}" if abs(x) < 1000 else f"{x:.1f}")
    return str(x)


def markdown(report: dict) -> str:
    lines = ["# vidiff evaluation", ""]
    for k in ("model", "suite", "real", "fake", "samples", "n_real", "n_fake", "seeds", "steps", "guidance_scale",
              "sampler", "frames", "fps", "resolution"):
        if k in report:
            lines.append(f"- {k}: {report[k]}")
    lines.append(f"- feature networks: {report['extractors']}")
    if "versions" in report:
        made = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        lines.append(f"- made on: {report.get('cpu')}, {report.get('threads')} threads"
                     f"{', ' + report['device'] if report.get('device') else ''}; {made}")
    lines += ["", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in report["metrics"].items()]
    shapes = report.get("shapes")
    if shapes:
        lines += ["", "## Shapes analytic scores", "", "| set | n | color | shape | motion | speed | present all | "
                  "shape stable | flicker |", "|---|---|---|---|---|---|---|---|---|"]
        for name in ("all", "seen", "held_out"):
            s = shapes[name]
            if s:
                lines.append(f"| {name} | {s['n']} | " + " | ".join(_fmt(s[k]) for k in (
                    "color", "shape", "motion", "speed", "present_all", "shape_stable", "background_flicker")) + " |")
        st = shapes.get("strict")
        if st:
            floor = st.get("floor", {})
            lines += ["", "Strict reader (docs/evaluation.md): motion counts only when coherent in time; the floor is "
                      "what temporally shuffled true clips reach.", "",
                      "| set | n | color | shape | motion | motion floor | present | time-reversed |",
                      "|---|---|---|---|---|---|---|---|"]
            for name in ("all", "seen", "held_out"):
                s = st[name]
                if s:
                    fl = _fmt(floor["motion"]) if floor and name == "all" else "-"
                    lines.append(f"| {name} | {s['n']} | {_fmt(s['color'])} | {_fmt(s['shape'])} | {_fmt(s['motion'])} | "
                                 f"{fl} | {_fmt(s['present'])} | {_fmt(s['time_reversed'])} |")
        lines += ["", "| motion | accuracy | strict | strict floor |", "|---|---|---|---|"]
        sp = (st or {}).get("per_motion", {})
        fp = (st or {}).get("floor", {}).get("per_motion", {})
        lines += [f"| {m} | {_fmt(a)} | {_fmt(sp.get(m, '-'))} | {_fmt(fp.get(m, '-'))} |"
                  for m, a in shapes["per_motion"].items()]
    if report.get("steps_sweep"):
        lines += ["", "## Sampling steps", "", "| steps | n | color | shape | motion | FVD |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['steps']} | {r['n']} | {_fmt(r['color'])} | {_fmt(r['shape'])} | {_fmt(r['motion'])} | "
                  f"{_fmt(r['fvd'])} |" for r in report["steps_sweep"]]
    if report.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in report["warnings"]]
    lines += ["", f"Seconds: {report['seconds']}", ""]
    return "\n".join(lines)


def _plots(out_dir: Path, report: dict, overwrite: bool = False) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vidiff.io.atomic import atomic_path

    written = []

    def save(fig, name):
        with atomic_path(out_dir / name, overwrite=overwrite) as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(name)

    shapes = report.get("shapes")
    if shapes:
        attrs = ["color", "shape", "motion", "speed", "present_all"]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        sets = [s for s in ("seen", "held_out") if shapes[s]] or ["all"]
        for j, name in enumerate(sets):
            vals = [shapes[name][a] for a in attrs]
            ax.bar(np.arange(len(attrs)) + j * 0.4, vals, 0.4, label=f"{name} (n={shapes[name]['n']})")
        ax.set_xticks(np.arange(len(attrs)) + 0.2 * (len(sets) - 1), attrs)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.legend()
        ax.set_title("Shapes attribute accuracy")
        save(fig, "accuracy.png")
        pm = shapes["per_motion"]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.barh(list(pm), list(pm.values()))
        ax.set_xlim(0, 1)
        ax.set_xlabel("motion accuracy")
        ax.set_title("per motion")
        save(fig, "per_motion.png")
    sweep = report.get("steps_sweep")
    if sweep:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        xs = [r["steps"] for r in sweep]
        for k in ("color", "shape", "motion"):
            ax.plot(xs, [r[k] for r in sweep], marker="o", label=k)
        ax.set_xlabel("sampling steps")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
        ax2 = ax.twinx()
        ax2.plot(xs, [r["fvd"] for r in sweep], color="k", ls="--", marker="s", label="FVD")
        ax2.set_ylabel("FVD (Shapes encoder)")
        ax.legend(loc="center right")
        ax.set_title("metrics vs sampling steps")
        save(fig, "steps.png")
    return written


def _sheet(videos: torch.Tensor, idx: list[int], path: Path, captions: list[str] | None = None,
           scores: list[float] | None = None, overwrite: bool = False) -> None:
    """One row of frames per clip, each under a line with its caption and score."""
    from PIL import Image, ImageDraw

    from vidiff.io.atomic import atomic_path

    rows = []
    for n, i in enumerate(idx):
        v = (videos[i].clamp(0, 1).permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8)  # (t, h, w, c)
        v = v.repeat(2, 1).repeat(2, 2)
        pad = np.full((v.shape[1], 2, 3), 64, np.uint8)
        row = np.concatenate([np.concatenate([f, pad], 1) for f in v], 1)
        if captions is not None:
            label = Image.new("RGB", (row.shape[1], 14), (0, 0, 0))
            text = captions[n] + (f"  (score {scores[n]:.2f})" if scores is not None else "")
            ImageDraw.Draw(label).text((2, 1), text, fill=(230, 230, 230))
            rows.append(np.asarray(label))
        rows.append(row)
        rows.append(np.full((2, row.shape[1], 3), 64, np.uint8))
    with atomic_path(path, overwrite=overwrite) as tmp:
        Image.fromarray(np.concatenate(rows, 0)).save(tmp, format="PNG")


REPORT_FILES = ("metrics.json", "report.md", "samples.jsonl", "best.png", "worst.png", "accuracy.png",
                "per_motion.png", "steps.png")


def check_report_dir(out_dir: str | os.PathLike, overwrite: bool = False) -> None:
    """Before the work: a report folder is new or empty, or (``overwrite``) holds only an earlier report, and no
    other evaluation is writing there.

    What a killed report write left (vidiff's temporaries of a process that is gone, an old file moved aside) is
    tidied first, so that the rerun it calls for is not refused over it."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"the report folder {str(out_dir)!r} is a file; choose a folder name")
    check_not_in_use(out_dir, "the report folder")
    _check_contents(out_dir, overwrite)


def _check_contents(out_dir: Path, overwrite: bool) -> None:
    clean_stale(out_dir)
    entries = [p for p in out_dir.iterdir() if p.name != LOCK_NAME] if out_dir.is_dir() else []
    if not entries:
        return
    if not overwrite:
        raise ValueError(f"the report folder {str(out_dir)!r} is not empty; choose another, or pass --overwrite to "
                         f"replace the report in it")
    foreign = sorted(p.name for p in entries if p.name not in REPORT_FILES)
    if foreign:
        raise ValueError(f"the report folder {str(out_dir)!r} holds other files (e.g. {foreign[0]!r}); vidiff "
                         f"replaces only its own report files: choose another folder")


@contextmanager
def report_folder(out_dir: str | os.PathLike, overwrite: bool = False):
    """Hold ``out_dir`` as a report folder for the ``with`` block: checked (``check_report_dir``), created, and
    locked against a second evaluation (two ``vidiff evaluate`` into one folder both ran to the end and, with
    --overwrite, left one's report.md beside the other's metrics.json). A folder this call created is removed
    again (with the parents it created) when the block fails before anything was written into it."""
    out_dir = Path(out_dir)
    check_report_dir(out_dir, overwrite)
    created = [p for p in (out_dir, *out_dir.parents) if not p.exists()]  # the deepest first
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with folder_lock(out_dir, "the report folder"):
            _check_contents(out_dir, overwrite)  # again, holding the lock: a writer may have come and gone
            try:
                yield out_dir
            except BaseException:
                if created and [p.name for p in out_dir.iterdir()] == [LOCK_NAME]:
                    (out_dir / LOCK_NAME).unlink()  # still holding it: a process opening it now is refused
                raise
    finally:
        for folder in created:
            try:
                folder.rmdir()  # only if empty
            except OSError:
                break


def one_writer(fn):
    """Run an evaluation holding its report folder (the ``out_dir`` and ``overwrite`` arguments) for the whole
    call: ``report_folder``."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def run(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        with report_folder(bound.arguments["out_dir"], bound.arguments["overwrite"]):
            return fn(*args, **kwargs)

    return run


def write_report(out_dir: Path, report: dict, records: list[dict], videos: torch.Tensor | None,
                 overwrite: bool = False) -> None:
    """Write the report's files into ``out_dir`` as one set. They are made in a temporary folder beside them (a kill
    while plotting leaves only that, which the next evaluation tidies) and moved in at the end, ``metrics.json``
    last; with ``overwrite``, an earlier report's files that this one does not have go first (a model's accuracy
    plots and contact sheets stayed beside a later folder evaluation's metrics.json)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = out_dir / f".report.tmp{os.getpid()}"
    remove_path(stage)
    stage.mkdir()
    try:
        if records and videos is not None:
            order = sorted(range(len(records)), key=lambda i: (records[i]["score"], -i))
            k = min(8, len(records))
            worst, best = order[:k], order[::-1][:k]
            for name, idx in (("best", best), ("worst", worst)):
                _sheet(videos, idx, stage / f"{name}.png", [records[i]["caption"] for i in idx],
                       [records[i]["score"] for i in idx])
            report["contact_sheets"] = {"best": [records[i]["caption"] for i in best],
                                        "worst": [records[i]["caption"] for i in worst]}
            lines = "".join(json.dumps(_json_safe(r), default=float) + "\n" for r in records)
            write_text_atomic(stage / "samples.jsonl", lines)
        report["plots"] = _plots(stage, report)
        write_text_atomic(stage / "report.md", markdown(report))
        write_text_atomic(stage / "metrics.json", json.dumps(_json_safe(report), indent=2, default=float))
        new = [n for n in REPORT_FILES[::-1] if (stage / n).is_file()]  # metrics.json, the report's result, last
        if overwrite:
            for name in REPORT_FILES:  # metrics.json first: a report without it is visibly unfinished
                if name not in new[:-1]:
                    (out_dir / name).unlink(missing_ok=True)
        for name in new:
            put_in_place(stage / name, out_dir / name, overwrite)
    finally:
        remove_path(stage)
