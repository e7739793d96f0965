"""Video files: read any format FFmpeg decodes (PyAV); write H.264 mp4, GIF, a lossless PNG folder and a
contact sheet. Every writer goes to a temporary name in the target folder and renames, so an
interrupted run never leaves a half-written file.

Frames in and out are uint8 ``(t, h, w, 3)`` numpy arrays.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from vidiff.checks import whole_in
from vidiff.io.atomic import atomic_path

FORMATS = {".mp4": "mp4", ".gif": "gif", ".webm": "webm", "": "png"}
MAX_VIEW = 4096  # the largest side the writers upscale to (a 1 x 9000 clip at view_size 256 asked for 10 TiB)


def check_frames(frames, what: str = "frames") -> np.ndarray:
    """``frames`` as a contiguous uint8 (t, h, w, 3) array with at least one frame of at least 1 x 1 pixels, or one
    ValueError (an empty clip ended in an encoder's RuntimeError, a ZeroDivisionError, or an empty folder)."""
    frames = np.ascontiguousarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{what} must be uint8 (t, h, w, 3), got {frames.dtype} {frames.shape}")
    if min(frames.shape[:3]) < 1:
        raise ValueError(f"{what} must hold at least one frame of at least 1x1 pixels, got shape {frames.shape}")
    return frames


def output_format(path: str | os.PathLike) -> str:
    """'mp4', 'gif', 'webm', or 'png' (a folder of frames: no suffix)."""
    name = Path(path).name
    if str(path) == "-":  # a folder of PNG frames named '-' was written
        raise ValueError("vidiff cannot write a video to standard output ('-'); give a file name such as clip.mp4")
    if name.lower() in FORMATS and name:  # '.mp4' is a hidden name without a suffix: it became a folder of PNGs
        raise ValueError(f"the output {str(path)!r} has no name before its extension; give one such as clip{name}")
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"unsupported output {str(path)!r}; allowed: .mp4, .gif, .webm, or a folder name for PNG frames")
    return FORMATS[suffix]


def check_writable(path: str | os.PathLike) -> None:
    """Raise ValueError unless ``path``'s folder exists (or can be made) and is writable."""
    parent = Path(path).resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot create the output folder {str(parent)!r}: {e.strerror}") from None
    if not os.access(parent, os.W_OK):
        raise ValueError(f"the output folder {str(parent)!r} is not writable")


MAX_FPS = 1000.0


def check_fps(fps: float) -> float:
    """Frames per second a container can hold: a finite number in (0, 1000] (FFmpeg keeps it as a fraction)."""
    import math

    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or not 0 < fps <= MAX_FPS:
        raise ValueError(f"fps must be a number in (0, {MAX_FPS:g}], got {fps!r}")
    if Fraction(fps).limit_denominator(1000) == 0:
        raise ValueError(f"fps {fps} is too small to store; give at least 0.001")
    return float(fps)


def upscale(frames: np.ndarray, min_size: int = 256) -> np.ndarray:
    """Nearest-neighbour upscale by an integer factor so the short side is at least ``min_size``, as far as the long
    side stays within :data:`MAX_VIEW`."""
    h, w = frames.shape[1:3]
    k = max(1, min(-(-min_size // min(h, w)), MAX_VIEW // max(h, w)))
    return frames.repeat(k, axis=1).repeat(k, axis=2) if k > 1 else frames


def write_video(frames: np.ndarray, path: str | os.PathLike, fps: float = 8.0, view_size: int = 256,
                overwrite: bool = False) -> Path:
    """Write uint8 (t, h, w, 3) frames to ``path``: .mp4 (H.264 yuv420p, upscaled to ``view_size`` for
    browsers), .webm (VP9), .gif, or a folder of lossless PNG frames. An existing ``path`` is an error
    unless ``overwrite`` (see :func:`vidiff.io.outputs.check_outputs` for what may be replaced)."""
    frames = check_frames(frames)
    view_size = whole_in(view_size, "view_size", 0, MAX_VIEW)
    path = Path(path)
    fmt = output_format(path)
    check_fps(fps)
    check_writable(path)
    if path.exists():
        from vidiff.io.outputs import check_outputs
        check_outputs([path], overwrite=overwrite)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if fmt == "png":
            _write_png_folder(frames, tmp)
        elif fmt == "gif":
            _write_gif(upscale(frames, view_size), tmp, fps)
        else:
            _write_av(upscale(frames, view_size), tmp, fps, fmt)
    return path


def _write_png_folder(frames: np.ndarray, folder: Path) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"frame_{i:04d}.png")


def _write_gif(frames: np.ndarray, path: Path, fps: float) -> None:
    from PIL import Image

    imgs = [Image.fromarray(f) for f in frames]
    imgs[0].save(path, format="GIF", save_all=True, append_images=imgs[1:], duration=int(round(1000 / fps)), loop=0)


def _write_av(frames: np.ndarray, path: Path, fps: float, fmt: str) -> None:
    import av

    h, w = frames.shape[1:3]
    h2, w2 = h + h % 2, w + w % 2  # yuv420p needs even sizes
    if (h2, w2) != (h, w):
        frames = np.pad(frames, ((0, 0), (0, h2 - h), (0, w2 - w), (0, 0)), mode="edge")
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(path), mode="w", format=fmt) as container:
        codec = "libx264" if fmt == "mp4" else "libvpx-vp9"
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w2, h2, "yuv420p"
        stream.options = {"crf": "18"} if fmt == "mp4" else {"crf": "20", "b:v": "0"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def contact_sheet(frames: np.ndarray, path: str | os.PathLike, columns: int = 8, scale: int = 4, pad: int = 2,
                  overwrite: bool = False) -> Path:
    """A PNG grid of the frames (upscaled by ``scale``), for a quick look."""
    from PIL import Image

    frames = check_frames(frames)
    columns, scale, pad = whole_in(columns, "columns", 1), whole_in(scale, "scale", 1, 64), whole_in(pad, "pad", 0, 64)
    t, h, w, _ = frames.shape
    big = frames.repeat(scale, 1).repeat(scale, 2)
    cols = min(columns, t)
    rows = -(-t // cols)
    H, W = h * scale, w * scale
    sheet = np.full((rows * (H + pad) + pad, cols * (W + pad) + pad, 3), 64, dtype=np.uint8)
    for i, f in enumerate(big):
        r, c = divmod(i, cols)
        sheet[pad + r * (H + pad): pad + r * (H + pad) + H, pad + c * (W + pad): pad + c * (W + pad) + W] = f
    path = Path(path)
    check_writable(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")
    return path


def read_video(path: str | os.PathLike, num_frames: int | None = None, stride: int = 1, start: int = 0) -> tuple[np.ndarray, float]:
    """Decode frames ``start, start + stride, ...`` (up to ``num_frames``) as uint8 (t, h, w, 3), and the fps.
    A folder reads its PNG/JPG frames in name order (fps 8). Raises ValueError for an unreadable file."""
    if num_frames is not None:  # 0 and -1 read the whole video
        num_frames = whole_in(num_frames, "num_frames", 1)
    stride, start = whole_in(stride, "stride", 1), whole_in(start, "start", 0)  # a negative one read backwards
    path = Path(path)
    if path.is_dir():
        from vidiff.io.images import open_image

        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        files = files[start::stride][:num_frames] if num_frames else files[start::stride]
        if not files:
            raise ValueError(f"no frames in folder {str(path)!r}")
        frames = [open_image(f, "RGB", "frame") for f in files]
        sizes = sorted({f.shape for f in frames})
        if len(sizes) > 1:
            raise ValueError(f"the frames in {str(path)!r} differ in size ({sizes[0][1]}x{sizes[0][0]} and "
                             f"{sizes[1][1]}x{sizes[1][0]}); every frame must have the same size")
        return np.stack(frames), 8.0
    if not path.exists():
        raise ValueError(f"video file {str(path)!r} not found")
    if not path.is_file():  # a FIFO or a device would block or never end
        raise ValueError(f"{str(path)!r} is not a regular file (a FIFO, device or socket); give a video file")
    import av

    with _open_video(path) as container:
        stream = _video_stream(container, path)
        fps = float(stream.average_rate or stream.guessed_rate or 8)
        out = []
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i >= start and (i - start) % stride == 0:
                    out.append(_as_shown(frame))
                    if num_frames and len(out) == num_frames:
                        break
        except (av.error.FFmpegError, UnicodeDecodeError, OSError, ValueError) as e:
            raise ValueError(_undecodable(path, e)) from None
    if not out:
        raise ValueError(f"video {str(path)!r} has no frames" + (f" from frame {start} on" if start else ""))
    return np.stack(out), fps


def count_frames(path: str | os.PathLike) -> int:
    import av

    if not Path(path).is_file():
        raise ValueError(f"{str(path)!r} is not a regular file")
    with _open_video(path) as container:
        stream = _video_stream(container, path)
        if stream.frames:
            return int(stream.frames)
        try:
            return sum(1 for _ in container.decode(stream))
        except (av.error.FFmpegError, UnicodeDecodeError, OSError, ValueError) as e:
            raise ValueError(_undecodable(path, e)) from None


def _as_shown(frame) -> np.ndarray:
    """A decoded frame as players show it: turned by the stream's display matrix (a phone's portrait video is stored
    landscape with a 90-degree rotation that every player applies; PyAV reports it, counterclockwise, and leaves it)."""
    arr = frame.to_ndarray(format="rgb24")
    k = round(float(getattr(frame, "rotation", 0) or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(arr, k)) if k else arr


def _open_video(path):
    import av

    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, OSError, ValueError) as e:
        raise ValueError(_undecodable(path, e)) from None


def _video_stream(container, path):
    """The first video stream, or one ValueError for a file without one (an audio-only .mp4)."""
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no"]
        raise ValueError(f"{str(path)!r} has no video stream ({', '.join(kinds)} streams only); give a video file")
    return container.streams.video[0]


def _undecodable(path, e: Exception) -> str:
    """One line for a file FFmpeg cannot read: its reason, without the path FFmpeg repeats."""
    reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return f"cannot decode video {str(path)!r}: {str(reason).replace(str(path), '').strip(': ')}"
