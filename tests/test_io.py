import json

import numpy as np
import pytest

from vidiff.data.folder import FolderVideoDataset, read_manifest
from vidiff.data.shapes import render, sample_scene
from vidiff.io.video import contact_sheet, read_video, write_video


def clip(frames=8, size=32, seed=1):
    v = render(sample_scene(seed, "test"), frames, 8, size)  # (c t h w)
    return (v.transpose(1, 2, 3, 0) * 255).round().astype(np.uint8)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def test_png_folder_is_lossless(tmp_path):
    f = clip()
    write_video(f, tmp_path / "frames")
    back, _ = read_video(tmp_path / "frames")
    assert np.array_equal(back, f)


def test_mp4_is_h264_upscaled_and_readable(tmp_path):
    import av

    f = clip()
    write_video(f, tmp_path / "a.mp4", fps=8)
    with av.open(str(tmp_path / "a.mp4")) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p" and s.width == 256
    back, fps = read_video(tmp_path / "a.mp4")
    assert back.shape == (8, 256, 256, 3) and fps == pytest.approx(8)
    down = back.reshape(8, 32, 8, 32, 8, 3).mean((2, 4))
    assert psnr(down, f) > 25
    assert not list(tmp_path.glob(".*tmp*"))


def test_gif_and_contact_sheet(tmp_path):
    from PIL import Image

    f = clip()
    write_video(f, tmp_path / "a.gif")
    assert Image.open(tmp_path / "a.gif").n_frames == 8
    contact_sheet(f, tmp_path / "sheet.png", columns=4, scale=2)
    assert Image.open(tmp_path / "sheet.png").size == (4 * 66 + 2, 2 * 66 + 2)


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    import vidiff.io.video as vio

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(vio, "_write_av", boom)
    with pytest.raises(KeyboardInterrupt):
        write_video(clip(), tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


def test_bad_outputs_and_inputs(tmp_path):
    with pytest.raises(ValueError, match="unsupported output"):
        write_video(clip(), tmp_path / "x.avi")
    (tmp_path / "garbage.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(ValueError, match="cannot decode"):
        read_video(tmp_path / "garbage.mp4")
    with pytest.raises(ValueError, match="not found"):
        read_video(tmp_path / "missing.mp4")


def make_folder(tmp_path):
    write_video(clip(16), tmp_path / "good.mp4", view_size=32)
    write_video(clip(4, seed=2), tmp_path / "short.mp4", view_size=32)
    good = (tmp_path / "good.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(good[: len(good) // 3])
    rows = [{"path": "good.mp4", "caption": "a clip"}, {"path": "truncated.mp4", "caption": "broken"},
            {"path": "short.mp4", "caption": "too short"}, {"path": "missing.mp4", "caption": "gone"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "m.csv").write_text("path,caption\n" + "\n".join(f"{r['path']},{r['caption']}" for r in rows))
    return tmp_path


def test_folder_dataset_skips_bad_files_and_counts_them(tmp_path, caplog):
    make_folder(tmp_path)
    for manifest in ("m.jsonl", "m.csv"):
        ds = FolderVideoDataset(tmp_path / manifest, num_frames=8, resolution=16, frame_stride=2)
        assert len(ds) == 4
        item = ds[0]
        assert item["video"].shape == (3, 8, 16, 16) and item["caption"] == "a clip"
        assert ds[1] is None and ds[2] is None and ds[3] is None
        assert ds.skipped["too_short"] == 1 and sum(ds.skipped.values()) == 3
    assert "skipping" in caplog.text


def test_folder_dataset_trains_through_the_batch_sampler(tmp_path):
    from vidiff.training.trainer import batch_for_step

    make_folder(tmp_path)
    ds = FolderVideoDataset(tmp_path / "m.csv", num_frames=4, resolution=8)
    batch = batch_for_step(ds, step=0, rank=0, world=1, batch_size=3, seed=0)
    assert batch["video"].shape == (3, 3, 4, 8, 8)
    assert set(batch["caption"]) <= {"a clip", "too short"}


def test_manifest_errors(tmp_path):
    (tmp_path / "m.csv").write_text("file,text\na.mp4,x\n")
    with pytest.raises(ValueError, match="lacks 'path'"):
        read_manifest(tmp_path / "m.csv")
    with pytest.raises(ValueError, match="must be .csv or .jsonl"):
        (tmp_path / "m.txt").write_text("x")
        read_manifest(tmp_path / "m.txt")
