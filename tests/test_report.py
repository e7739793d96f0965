"""What a ``vidiff evaluate`` report says about small samples, and its captioned contact sheets."""

import math

import numpy as np
import torch
from PIL import Image

from vidiff.evaluation.report_files import _sheet, markdown, sample_warnings


def test_small_samples_are_warned_about_and_large_ones_are_not():
    small = sample_warnings(16, 16, {"fvd": 3.0, "kvd": -0.02, "kvd_std": 0.05, "is": 1.5, "is_std": None})
    text = " ".join(small)
    assert "FVD from 16 videos" in text and "--samples 256" in text
    assert "KVD is -0.02 < 0" in text and "no spread" in text
    assert sample_warnings(512, 512, {"fvd": 3.0, "kvd": 0.01, "is": 1.5, "is_std": 0.1}) == []
    assert "no spread" in " ".join(sample_warnings(512, 512, {"is": 1.5, "is_std": math.nan}))
    report = {"metrics": {"fvd": 1.0}, "extractors": {}, "seconds": {"total": 1}, "warnings": small}
    assert "## Warnings" in markdown(report) and small[0] in markdown(report)


def test_contact_sheets_are_captioned(tmp_path):
    videos = torch.rand(3, 3, 4, 8, 8)
    _sheet(videos, [2, 0], tmp_path / "plain.png")
    _sheet(videos, [2, 0], tmp_path / "captioned.png", ["a red circle", "a blue square"], [0.5, 0.25])
    plain, captioned = (np.asarray(Image.open(tmp_path / f)) for f in ("plain.png", "captioned.png"))
    assert captioned.shape[0] == plain.shape[0] + 2 * 14  # one caption line per clip
    assert captioned[:14].max() > 200  # the caption is drawn (light text on black)


def test_a_folder_report_is_strict_json_and_says_how_many_clips_its_captions_cover(tmp_path):
    """Clips with no object read NaN area spread (np.nanmean warned 'Mean of empty slice'), which metrics.json wrote
    as NaN, a token JSON parsers other than Python's reject; captions naming only some clips were used silently."""
    import json

    from conftest import random_clip_folders

    from vidiff.evaluation.report import evaluate_folders

    random_clip_folders(tmp_path, 3)
    (tmp_path / "caps.csv").write_text("path,caption\nc0.mp4,a red circle moving left\n")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no 'Mean of empty slice'
        report = evaluate_folders(tmp_path / "real", tmp_path / "fake", tmp_path / "report",
                                  captions=tmp_path / "caps.csv", progress=False)
    assert any("names 1 of the 3 generated videos" in w for w in report["warnings"])

    def refuse(token):
        raise AssertionError(f"{token} in metrics.json")

    saved = json.loads((tmp_path / "report" / "metrics.json").read_text(), parse_constant=refuse)
    assert saved["shapes"]["all"]["area_cv"] is None and saved["metrics"]["is_std"] is None
    # where and with what it was made, as beside every other output (a report recorded neither until 2026-12-02)
    assert set(saved["versions"]) >= {"vidiff", "torch", "diffusers"} and saved["threads"] >= 1 and saved["cpu"]
    for line in (tmp_path / "report" / "samples.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=refuse)


def test_videos_in_subfolders_are_named_not_silently_left_out(tmp_path):
    """A folder organised in subfolders (by prompt or class) was read on its top level only, without a word, or
    refused as holding "no videos"."""
    import pytest

    from vidiff.evaluation.report import evaluate_folders
    from vidiff.io.video import write_video

    rng = np.random.default_rng(0)
    for name in ("real/a.mp4", "real/b.mp4", "fake/a.mp4", "fake/b.mp4", "fake/cats/c.mp4", "nested/x/a.mp4",
                 "nested/y/b.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_video(rng.integers(0, 255, (16, 32, 32, 3), dtype=np.uint8), tmp_path / name, view_size=0)
    with pytest.raises(ValueError, match="no videos in .*nested.*2 video\\(s\\) in its subfolders are not read"):
        evaluate_folders(tmp_path / "real", tmp_path / "nested", tmp_path / "r1", progress=False)
    report = evaluate_folders(tmp_path / "real", tmp_path / "fake", tmp_path / "r2", progress=False)
    assert report["n_fake"] == 2 and any("1 video(s) in its subfolders are not read" in w for w in report["warnings"])


def _shapes_report(n=3):
    s = dict.fromkeys(("color", "shape", "motion", "speed", "present_all", "shape_stable", "background_flicker"), 1.0)
    s["n"] = n
    return {"model": "m", "extractors": {}, "metrics": {"fvd": 1.0}, "seconds": {"total": 1.0},
            "shapes": {"all": s, "seen": s, "held_out": {}, "per_motion": {"moving left": 1.0}},
            "steps_sweep": [{"steps": 1, "n": 2, "color": 1.0, "shape": 1.0, "motion": 1.0, "fvd": 3.0}]}


def test_an_overwritten_report_keeps_no_file_of_the_earlier_one(tmp_path):
    """A model evaluation's accuracy plots and contact sheets stayed beside a later folder evaluation's
    metrics.json, written over it with --overwrite."""
    from vidiff.evaluation.report_files import write_report

    records = [{"caption": f"c{i}", "score": i / 3} for i in range(3)]
    write_report(tmp_path, _shapes_report(), records, torch.rand(3, 3, 4, 8, 8))
    first = sorted(p.name for p in tmp_path.iterdir())
    assert {"accuracy.png", "best.png", "samples.jsonl", "metrics.json"} <= set(first)
    write_report(tmp_path, {"real": "r", "fake": "f", "extractors": {}, "metrics": {"fvd": 2.0}, "seconds": {}}, [], None,
                 overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "report.md"]


def test_a_report_write_that_fails_leaves_the_earlier_report_whole(tmp_path, monkeypatch):
    """The files were written one by one into the report folder: a failure (or a kill) while plotting left the new
    contact sheets beside the old metrics.json."""
    import vidiff.evaluation.report_files as rf

    records = [{"caption": f"c{i}", "score": i / 3} for i in range(3)]
    rf.write_report(tmp_path, _shapes_report(), records, torch.rand(3, 3, 4, 8, 8))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rf, "_plots", fail)
    try:
        rf.write_report(tmp_path, _shapes_report(5), records[::-1], torch.rand(3, 3, 4, 8, 8), overwrite=True)
    except OSError:
        pass
    else:
        raise AssertionError("the failure did not reach the caller")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporary either
