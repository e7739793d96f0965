import json
import re

import numpy as np
import pytest
from PIL import Image

from vidiff.data.folder import FolderVideoDataset, read_manifest
from vidiff.shapes.scenes import render, sample_scene
from vidiff.io.inputs import read_clip, read_image
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


BAD_IO_CALLS = {  # each ended in a ZeroDivisionError, IndexError, RuntimeError, MemoryError, or ran as something else
    "write no frames": (lambda d: write_video(np.zeros((0, 8, 8, 3), np.uint8), d / "z.mp4"), "at least one frame"),
    "gif no frames": (lambda d: write_video(np.zeros((0, 8, 8, 3), np.uint8), d / "z.gif"), "at least one frame"),
    "png folder no frames": (lambda d: write_video(np.zeros((0, 8, 8, 3), np.uint8), d / "z"), "at least one frame"),
    "write zero height": (lambda d: write_video(np.zeros((4, 0, 8, 3), np.uint8), d / "h.mp4"), "1x1 pixels"),
    "view_size huge": (lambda d: write_video(clip(2), d / "v.mp4", view_size=10**6), "view_size"),
    "view_size negative": (lambda d: write_video(clip(2), d / "v.mp4", view_size=-5), "view_size"),
    "view_size float": (lambda d: write_video(clip(2), d / "v.mp4", view_size=2.5), "view_size"),
    "fps True": (lambda d: write_video(clip(2), d / "f.mp4", fps=True), "fps"),
    "sheet no columns": (lambda d: contact_sheet(clip(2), d / "s.png", columns=0), "columns"),
    "sheet negative scale": (lambda d: contact_sheet(clip(2), d / "s.png", scale=-1), "scale"),
    "sheet no frames": (lambda d: contact_sheet(np.zeros((0, 8, 8, 3), np.uint8), d / "s.png"), "at least one frame"),
    "sheet float frames": (lambda d: contact_sheet(clip(2).astype(float), d / "s.png"), "uint8"),
    "read num_frames 0": (lambda d: read_video(d / "ok.gif", num_frames=0), "num_frames"),
    "read num_frames -1": (lambda d: read_video(d / "ok.gif", num_frames=-1), "num_frames"),
    "read stride 0": (lambda d: read_video(d / "ok.gif", stride=0), "stride"),
    "read stride -1": (lambda d: read_video(d / "ok.gif", stride=-1), "stride"),
    "read folder stride -1": (lambda d: read_video(d / "frames", stride=-1), "stride"),
    "read start -2": (lambda d: read_video(d / "ok.gif", start=-2), "start"),
    "image at height 0": (lambda d: read_image(d / "frames" / "frame_0000.png", 0, 8), "height must be in [1, "),
    "clip at width 0": (lambda d: read_clip(d / "ok.gif", 4, 8, 0), "width must be in [1, "),
    "image at height 2.5": (lambda d: read_image(d / "frames" / "frame_0000.png", 2.5, 8), "height must be an int"),
}


@pytest.mark.parametrize("name", list(BAD_IO_CALLS))
def test_the_io_helpers_refuse_bad_arguments_in_words_and_write_nothing(tmp_path, name):
    """The library's writers and reader with an empty clip, a 0-pixel side, a view size of a million or a stride
    of 0: one ValueError naming the argument, nothing new on disk."""
    write_video(clip(4), tmp_path / "ok.gif")
    write_video(clip(4), tmp_path / "frames")
    before = sorted(p.name for p in tmp_path.iterdir())
    call, words = BAD_IO_CALLS[name]
    with pytest.raises(ValueError, match=re.escape(words)):
        call(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_wide_clip_is_upscaled_no_further_than_the_longest_side_allows(tmp_path):
    from vidiff.io.video import MAX_VIEW, upscale

    assert upscale(np.zeros((1, 2, 9000, 3), np.uint8), 256).shape == (1, 2, 9000, 3)
    assert upscale(np.zeros((1, 32, 64, 3), np.uint8), 256).shape == (1, 256, 512, 3)
    assert max(upscale(np.zeros((1, 16, 1000, 3), np.uint8), 256).shape[1:3]) <= MAX_VIEW


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


def test_a_dataset_whose_files_vanish_mid_run_is_one_value_error(tmp_path):
    from vidiff.training.trainer import batch_for_step

    write_video(np.zeros((4, 8, 8, 3), np.uint8), tmp_path / "a.mp4", view_size=0)
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "a.mp4", "caption": "a clip"}) + "\n")
    ds = FolderVideoDataset(tmp_path / "m.jsonl", num_frames=4, resolution=8)
    (tmp_path / "a.mp4").unlink()  # an internal RuntimeError before
    with pytest.raises(ValueError, match="no readable video left in the dataset"):
        batch_for_step(ds, step=0, rank=0, world=1, batch_size=2, seed=0)


def test_manifest_errors(tmp_path):
    (tmp_path / "m.csv").write_text("file,text\na.mp4,x\n")
    with pytest.raises(ValueError, match="not a header naming the columns path and caption"):
        read_manifest(tmp_path / "m.csv")
    # no header line, or another delimiter: 'lists no videos' / 'row 1 lacks' before
    for name, text in (("noheader.csv", "a.mp4,a clip\n"), ("semicolon.csv", "path;caption\na.mp4;a clip\n")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match="'path,caption'"):
            read_manifest(tmp_path / name)
    # a spreadsheet's "CSV UTF-8" starts with a byte-order mark (it was read into the first column's name)
    (tmp_path / "bom.csv").write_text("path, caption\na.mp4,a clip\n", encoding="utf-8-sig")
    assert read_manifest(tmp_path / "bom.csv") == [{"path": str(tmp_path / "a.mp4"), "caption": "a clip"}]
    jsonl = tmp_path / "none.jsonl"  # every row missing or unreadable: one ValueError when the dataset is made
    jsonl.write_text(json.dumps({"path": "nothere.mp4", "caption": "x"}) + "\n" + json.dumps({"path": "none.jsonl",
                                                                                             "caption": "y"}) + "\n")
    with pytest.raises(ValueError, match="none of its 2 videos gives a clip .first: video file .* not found"):
        FolderVideoDataset(jsonl, num_frames=4, resolution=8)
    with pytest.raises(ValueError, match="must be .csv or .jsonl"):
        (tmp_path / "m.txt").write_text("x")
        read_manifest(tmp_path / "m.txt")



@pytest.mark.parametrize("kwargs, words", [
    ({"num_frames": 0}, "num_frames must be an integer >= 1"),  # was: none of its videos gives a clip
    ({"resolution": 0}, "resolution must be"), ({"frame_stride": 0}, "frame_stride must be"),
    ({"frame_stride": 4, "frame_stride_max": 2}, "frame_stride_max (2) must be 0 or >= frame_stride (4)"),
    ({"random_start": "yes"}, "random_start must be True or False"), ({"seed": -1}, "seed must be"),
    ({"num_frames": 2.5}, "num_frames must be an integer"),
])
def test_the_folder_dataset_checks_its_settings_before_its_files(tmp_path, kwargs, words):
    manifest = make_folder(tmp_path) / "m.jsonl"
    with pytest.raises(ValueError, match="^" + re.escape(words)):  # the setting itself, not "no video gives a clip"
        FolderVideoDataset(manifest, **kwargs)

def test_odd_but_valid_images_read_as_they_look(tmp_path):
    """16-bit greyscale is scaled (it read as white when Pillow clipped it), grey and palette images become RGB,
    transparency is composited over black; a 1x1 picture is an error, not a flat colour."""
    from vidiff.io.images import open_image

    Image.fromarray(np.full((4, 4), 32896, np.uint16)).save(tmp_path / "g16.png")  # 0.502 of full scale
    assert (open_image(tmp_path / "g16.png") == 128).all()
    Image.fromarray(np.full((4, 4), 77, np.uint8)).save(tmp_path / "grey.png")
    assert open_image(tmp_path / "grey.png").shape == (4, 4, 3) and (open_image(tmp_path / "grey.png") == 77).all()
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:2, ..., 3] = 255  # top half opaque red, bottom half transparent red
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = open_image(tmp_path / "rgba.png")
    assert (out[:2, :, 0] == 255).all() and (out[2:] == 0).all()
    Image.fromarray(np.full((4, 4, 3), 40, np.uint8)).convert("P", palette=Image.ADAPTIVE).save(tmp_path / "pal.png")
    assert (open_image(tmp_path / "pal.png") == 40).all()
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    with pytest.raises(ValueError, match="at least 2x2"):
        open_image(tmp_path / "dot.png")
    # a camera JPEG: pixels stored 16 wide x 8 high, left half red, with EXIF orientation 6 (shown turned 90 degrees
    # clockwise, as every viewer shows it: 8 wide x 16 high, the red half on top)
    raw = np.zeros((8, 16, 3), np.uint8)
    raw[:, :8, 0] = 255
    im = Image.fromarray(raw)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "camera.jpg", exif=exif, quality=100)
    out = open_image(tmp_path / "camera.jpg")
    assert out.shape == (16, 8, 3)
    assert out[:6, :, 0].min() > 200 and out[10:, :, 0].max() < 60


def test_a_phone_video_is_read_turned_as_players_show_it(tmp_path):
    """An .mp4 whose track header carries a 90-degree display rotation (as a phone stores a portrait video) reads
    turned, as every player shows it; PyAV decodes the stored, landscape pixels."""
    import struct

    from vidiff.io.video import read_video, write_video

    raw = np.zeros((16, 16, 32, 3), np.uint8)
    raw[:, :, :16, 0] = 255  # stored 32 wide x 16 high, left half red
    write_video(raw, tmp_path / "stored.mp4", view_size=0)
    data = bytearray((tmp_path / "stored.mp4").read_bytes())
    i = data.find(b"tkhd")
    assert data[i + 4] == 0  # version 0: the matrix is 40 bytes after the box's version and flags
    off = i + 4 + 4 + 20 + 8 + 8
    assert struct.unpack(">9i", data[off:off + 36]) == (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)  # identity
    data[off:off + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)  # rotate 90 clockwise
    (tmp_path / "phone.mp4").write_bytes(bytes(data))
    shown, _ = read_video(tmp_path / "phone.mp4")
    assert shown.shape == (16, 32, 16, 3)  # 16 wide x 32 high
    assert shown[:, :12, :, 0].min() > 200 and shown[:, 20:, :, 0].max() < 60  # the left half is now on top
    stored, _ = read_video(tmp_path / "stored.mp4")
    assert stored.shape == (16, 16, 32, 3)


def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(tmp_path, tiny_pipeline_dir):
    """RLIMIT_FSIZE makes every write past 2 kB fail with EFBIG, as a full disk fails with ENOSPC (Python
    ignores SIGXFSZ, so the write raises instead of killing the process)."""
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    out = tmp_path / "out"
    out.mkdir()
    r = subprocess.run([sys.executable, "-m", "vidiff", "generate", "a red circle", "-o", str(out / "clip.gif"),
                        "--model", str(tiny_pipeline_dir), "-q"], capture_output=True, text=True, preexec_fn=limit,
                       timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr and "too large" in lines[0].lower(), r.stderr[-2000:]
    assert list(out.iterdir()) == []
