"""A folder dataset for real video-text data: a manifest (CSV or JSONL with ``path``, ``caption``) of video
files decoded with PyAV. Items are ``num_frames`` frames taken every ``frame_stride`` frames (a stride
drawn per clip up to ``frame_stride_max``; from a random start when ``random_start``), short side resized to ``resolution`` and centre-cropped.

A corrupt, unreadable or too-short file is skipped with a counted warning (``__getitem__`` returns
None and ``skipped`` counts it); a clip is never silently shortened.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidiff.checks import whole_in
from vidiff.io.video import read_video

log = logging.getLogger("vidiff.data")


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Rows with ``path`` (relative to the manifest's folder) and ``caption``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"manifest {str(path)!r} {'is not a regular file' if path.exists() else 'not found'}")
    if path.suffix.lower() == ".jsonl":
        rows = []
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"manifest {str(path)!r} is not UTF-8 text") from None
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    raise ValueError(f"{path}:{n} is not valid JSON") from None
    elif path.suffix.lower() == ".csv":
        try:  # utf-8-sig: spreadsheets' "CSV UTF-8" starts with a byte-order mark, which was read into 'path'
            with open(path, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                header = reader.fieldnames or []
                rows = [{(k.strip() if isinstance(k, str) else k): v for k, v in r.items()} for r in reader]
        except (UnicodeDecodeError, csv.Error) as e:
            raise ValueError(f"manifest {str(path)!r} is not a readable UTF-8 CSV: {e}") from None
        if header and not {"path", "caption"} <= {str(h).strip() for h in header}:
            # no header line (its first row was taken as one) or another delimiter: 'lists no videos' / 'row 1
            # lacks path' before
            raise ValueError(f"manifest {str(path)!r}: its first line {','.join(map(str, header))[:80]!r} is not a "
                             f"header naming the columns path and caption; a CSV manifest starts with the line "
                             f"'path,caption' (comma-separated)")
    else:
        raise ValueError(f"manifest {str(path)!r} must be .csv or .jsonl")
    from vidiff.conditioning.captions import check_caption

    base = path.parent
    out = []
    for n, r in enumerate(rows, 1):
        where = f"manifest {str(path)!r} row {n}"
        if not isinstance(r, dict) or not r.get("path") or r.get("caption") is None:
            raise ValueError(f"{where} lacks 'path' or 'caption'")
        if not isinstance(r["path"], str) or not isinstance(r["caption"], str):
            raise ValueError(f"{where}: 'path' and 'caption' must be strings")
        check_caption(r["caption"], f"the caption of {where}")
        p = base / r["path"]
        if p.exists() and not (p.is_file() or p.is_dir()):  # a FIFO would block, a device never ends
            raise ValueError(f"{where}: {str(p)!r} is not a regular file (a FIFO, device or socket)")
        out.append({"path": str(p), "caption": r["caption"]})
    return out


def resize_crop(frames: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (t, h, w, 3) -> float (3, t, size, size) in [-1, 1]: short side to ``size`` (antialiased
    bilinear), centre crop."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1  # (t, 3, h, w)
    h, w = x.shape[-2:]
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[..., top: top + size, left: left + size]
    return x.permute(1, 0, 2, 3).clamp(-1, 1).contiguous()  # (3, t, size, size)


class FolderVideoDataset:
    def __init__(self, manifest: str | os.PathLike, num_frames: int = 16, resolution: int = 32, frame_stride: int = 1,
                 random_start: bool = False, seed: int = 0, frame_stride_max: int = 0):
        # checked before the manifest's files are probed: num_frames 0 was reported as each video failing to give a
        # clip, resolution 0 as a crop error in the first batch
        num_frames, resolution = whole_in(num_frames, "num_frames", 1), whole_in(resolution, "resolution", 1)
        frame_stride, frame_stride_max = whole_in(frame_stride, "frame_stride", 1), whole_in(frame_stride_max,
                                                                                              "frame_stride_max", 0)
        if frame_stride_max and frame_stride_max < frame_stride:  # the training config's rule, for direct use
            raise ValueError(f"frame_stride_max ({frame_stride_max}) must be 0 or >= frame_stride ({frame_stride})")
        if not isinstance(random_start, bool):
            raise ValueError(f"random_start must be True or False, got {random_start!r}")
        seed = whole_in(seed, "seed", 0)
        self.rows = read_manifest(manifest)
        if not self.rows:
            raise ValueError(f"manifest {str(manifest)!r} lists no videos")
        self.num_frames, self.resolution, self.stride = num_frames, resolution, frame_stride
        self.stride_max = max(frame_stride, frame_stride_max)
        self.random_start, self.seed = random_start, seed
        self.skipped: Counter = Counter()
        # frames per file, counted once: a container without a frame count in its header (WebM, GIF, some MKV) is
        # decoded whole to count it, which random_start did for every item (keyed by size and mtime, so a file
        # replaced during a run is counted again)
        self._frame_counts: dict[tuple[str, int, int], int] = {}
        self._check_readable(manifest)

    PROBE = 16  # rows read when the dataset is made

    def _check_readable(self, manifest) -> None:
        """One ValueError, before a run folder exists, when none of the first :attr:`PROBE` rows gives a clip (so a
        manifest of missing or unreadable files, or of clips all shorter than ``num_frames``, is refused whole; it
        was an internal error after the run folder was made). Later bad rows are skipped and counted in training."""
        reasons = []
        for row in self.rows[: self.PROBE]:
            try:
                frames, _ = read_video(row["path"], self.num_frames, self.stride)
            except ValueError as e:
                reasons.append(str(e))
                continue
            if len(frames) >= self.num_frames:
                return
            reasons.append(f"{row['path']!r} has {len(frames)} frames at stride {self.stride}, fewer than "
                           f"data.num_frames {self.num_frames}")
        n = len(reasons)
        which = f"its {n} videos" if n == len(self.rows) else f"the first {n} of its {len(self.rows)} videos"
        raise ValueError(f"manifest {str(manifest)!r}: none of {which} gives a clip (first: {reasons[0]})")

    def __len__(self) -> int:
        return len(self.rows)

    def clip_of(self, i: int) -> tuple[int, int]:
        """The (start, stride) of item ``i``: a pure function of ``(seed, i)``, so every epoch (``i`` runs on past
        ``len``) draws a new window of the same file and a resumed run draws the same ones."""
        rng = np.random.default_rng([self.seed, i])
        stride = int(rng.integers(self.stride, self.stride_max + 1)) if self.stride_max > self.stride else self.stride
        if not self.random_start:
            return 0, stride
        total = self.frame_count(self.rows[i % len(self.rows)]["path"])
        need = (self.num_frames - 1) * stride + 1
        return int(rng.integers(0, max(1, total - need + 1))), stride

    def frame_count(self, path: str) -> int:
        from vidiff.io.video import count_frames

        try:
            st = os.stat(path)
        except OSError:
            return count_frames(path)  # its own ValueError for a missing file
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._frame_counts:
            self._frame_counts[key] = count_frames(path)
        return self._frame_counts[key]

    def __getitem__(self, i: int) -> dict | None:
        row = self.rows[i % len(self.rows)]
        try:
            start, stride = self.clip_of(i)
            frames, _ = read_video(row["path"], self.num_frames, stride, start)
        except ValueError as e:
            return self._skip("unreadable", row, str(e))
        if len(frames) < self.num_frames:
            return self._skip("too_short", row, f"{len(frames)} of {self.num_frames} frames")
        return {"video": resize_crop(frames, self.resolution), "caption": row["caption"]}

    def _skip(self, why: str, row: dict, detail: str) -> None:
        self.skipped[why] += 1
        log.warning("skipping %s (%s: %s); skipped so far: %s", row["path"], why, detail, dict(self.skipped))
        return None
