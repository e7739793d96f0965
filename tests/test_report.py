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
