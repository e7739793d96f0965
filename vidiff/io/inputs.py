"""Inputs of the conditional and editing commands, read into the model's size.

Images and videos become float tensors in [0, 1]: images ``(1, 3, h, w)``, videos ``(1, 3, t, h, w)``.
Masks are files where white marks the region (to fill, or to animate): a PNG (one mask for every frame)
or a video (a mask per frame), binarised at mid-grey like diffusers' inpainting pipelines; the result is
``(1, 1, h, w)`` or ``(1, 1, t, h, w)`` in {0, 1}.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


ASPECT_TOLERANCE = 0.02  # relative; a 1% off-by-one crop still passes, a different picture shape does not


def check_aspect(h: int, w: int, height: int, width: int, source: str = "the input") -> None:
    """Raise ValueError when an ``h`` x ``w`` picture would have to be squashed to become ``height`` x ``width``."""
    if abs((w / h) / (width / height) - 1) > ASPECT_TOLERANCE:
        raise ValueError(f"{source} is {w}x{h} (width x height), but the model takes {width}x{height}: crop it to "
                         f"that aspect ratio first (resizing would squash it)")


def resize_frames(frames: np.ndarray, height: int, width: int, nearest: bool = False, source: str = "the input") -> np.ndarray:
    """uint8 (t, h, w, 3) -> (t, height, width, 3); area-averaging when shrinking. A different aspect ratio is
    an error (resizing would silently squash the picture): crop it first."""
    from PIL import Image

    from vidiff.checks import in_limits

    # the size asked for, named (0 was a ZeroDivisionError in the aspect check; 2.5 was reported as an aspect ratio)
    height, width = in_limits(height, "side", "height"), in_limits(width, "side", "width")
    h, w = frames.shape[1:3]
    check_aspect(h, w, height, width, source)
    if (h, w) == (height, width):
        return frames
    resample = Image.NEAREST if nearest else Image.BOX if h >= height else Image.BICUBIC
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), resample)) for f in frames])


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (t, h, w, 3) -> float (1, 3, t, h, w) in [0, 1]."""
    return torch.from_numpy(frames.astype(np.float32) / 255.0).permute(3, 0, 1, 2)[None]  # (1, 3, t, h, w)


def _open_image(path: Path, mode: str, what: str) -> np.ndarray:
    from vidiff.io.images import open_image

    return open_image(path, mode, what)


def images_to_tensor(images: np.ndarray, height: int, width: int, source: str) -> torch.Tensor:
    """uint8 (b, h, w, 3) pictures -> float (b, 3, height, width) in [0, 1], resized: a file (:func:`read_image`) and
    PIL images given to a pipeline (:func:`image_input`) alike."""
    return frames_to_tensor(resize_frames(images, height, width, source=source))[0].permute(1, 0, 2, 3)


def grey_to_mask(grey: np.ndarray, height: int, width: int, source: str) -> torch.Tensor:
    """uint8 (h, w) grey -> (1, 1, height, width) in {0, 1}, white (>= 128) = 1, resized nearest: a PNG mask
    (:func:`read_mask`) and a PIL mask given to a pipeline (:func:`mask_input`) alike."""
    frames = np.repeat(grey[None, ..., None], 3, -1)
    m = resize_frames(frames, height, width, nearest=True, source=source)[0, ..., 0]
    return torch.from_numpy(m >= 128).float()[None, None]


def read_image(path: str | os.PathLike, height: int, width: int) -> torch.Tensor:
    img = _open_image(Path(path), "RGB", "image")
    return images_to_tensor(img[None], height, width, repr(str(path)))  # (1, 3, h, w)


def read_clip(path: str | os.PathLike, num_frames: int, height: int, width: int) -> tuple[torch.Tensor, float]:
    """The first ``num_frames`` frames of a video (or frame folder), resized; an error if it is shorter."""
    from vidiff.io.video import read_video

    frames, fps = read_video(path, num_frames=num_frames)
    if len(frames) < num_frames:
        raise ValueError(f"{str(path)!r} has {len(frames)} frames; the model needs {num_frames}")
    return frames_to_tensor(resize_frames(frames, height, width, source=repr(str(path)))), fps


def read_mask(path: str | os.PathLike, height: int, width: int, num_frames: int | None = None) -> torch.Tensor:
    """A PNG mask -> (1, 1, h, w); a video mask -> (1, 1, t, h, w); white (>= 128) = 1."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"mask file {str(path)!r} not found")
    if not (path.is_file() or path.is_dir()):
        raise ValueError(f"the mask {str(path)!r} is not a regular file (a FIFO, device or socket)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return grey_to_mask(_open_image(path, "L", "mask"), height, width, repr(str(path)))
    if num_frames is None:
        raise ValueError(f"the mask {str(path)!r} must be an image ({', '.join(IMAGE_SUFFIXES)})")
    clip, _ = read_clip(path, num_frames, height, width)
    return (clip.mean(1, keepdim=True) >= 0.5).float()  # (1, 1, t, h, w)


def model_size_of(path: str | os.PathLike, h: int, w: int) -> tuple[int, int] | None:
    """The size vidiff made a clip at, when its sidecar (``clip.json`` beside ``clip.mp4``) records an
    ``output_size`` that the file's ``h`` x ``w`` is an integer multiple of (the players' nearest-neighbour
    upscale of :func:`vidiff.io.video.write_video`); else None."""
    import json

    from vidiff.io.outputs import sidecar_path

    try:
        size = json.loads(sidecar_path(Path(path)).read_text(encoding="utf-8")).get("output_size")
        mh, mw = int(size[0]), int(size[1])
    except (OSError, ValueError, TypeError, AttributeError, IndexError, KeyError):
        return None
    if mh < 1 or mw < 1 or h % mh or w % mw or h // mh != w // mw:
        return None
    return mh, mw


def read_lowres(path: str | os.PathLike, num_frames: int | None = None) -> tuple[np.ndarray, float]:
    """A video for the super-resolution stage: a clip vidiff wrote comes back at the size it was made at
    (:func:`model_size_of`, an exact block average of its nearest-neighbour upscale), any other as it is."""
    from vidiff.io.video import read_video

    frames, fps = read_video(path, num_frames=num_frames)
    h, w = frames.shape[1:3]
    size = model_size_of(path, h, w)
    if size is not None and size != (h, w):
        k = h // size[0]
        frames = frames.reshape(len(frames), size[0], k, size[1], k, 3).astype(np.float32).mean((2, 4))
        frames = np.clip(frames.round(), 0, 255).astype(np.uint8)
    return frames, fps


# ---------------------------------------------------------------------- PIL images given to the library
# diffusers' image and video pipelines take PIL images (an image; a list of frames for a video) as well as tensors,
# resized to the pipeline's size; vidiff's took only float tensors (a PIL image was "must be a float tensor").
def _is_pil(x) -> bool:
    from PIL import Image

    return isinstance(x, Image.Image)


def _pil_list(x) -> bool:
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(_is_pil(i) for i in x)


def _pil_arrays(images: list, mode: str, what: str) -> np.ndarray:
    """uint8 (n, h, w, 3) for mode 'RGB', (n, h, w) for 'L', of PIL images read as :func:`read_image` reads a file."""
    from vidiff.io.images import check_side, pil_to_array

    arrays = []
    for img in images:
        try:
            arr = pil_to_array(img, mode)
        except (OSError, ValueError, SyntaxError) as e:  # a PIL image of a truncated or broken file
            raise ValueError(f"cannot read the {what} (a PIL image): {str(e).splitlines()[0][:100]}") from None
        check_side(arr, f"the {what}")
        arrays.append(arr)
    if len({a.shape for a in arrays}) > 1:
        raise ValueError(f"the {what}'s PIL images differ in size: give them at one size")
    return np.stack(arrays)


def image_input(image, height: int, width: int, what: str = "image"):
    """A PIL image -> (1, 3, height, width) in [0, 1], a list of them -> (b, 3, height, width), resized as the CLI
    resizes a file; numpy pictures (:func:`_numpy_pictures`) likewise; anything else is returned as given (the
    pipelines check tensors)."""
    if _is_numpy(image):
        return _numpy_pictures(image, height, width, what, frames=False)
    if not (_is_pil(image) or _pil_list(image)):
        return image
    return images_to_tensor(_pil_arrays(image if _pil_list(image) else [image], "RGB", what), height, width,
                            f"the {what}")


def video_input(video, height: int | None, width: int | None, what: str = "video"):
    """A list of PIL frames (diffusers' video) -> (1, 3, t, height, width) in [0, 1] (``height`` None: at their
    size); numpy frames (:func:`_numpy_pictures`) likewise; anything else as given."""
    if _is_numpy(video):
        return _numpy_pictures(video, height, width, what, frames=True)
    if not _pil_list(video):
        return video
    return _uint8_video(_pil_arrays(video, "RGB", what), height, width, what)


def _uint8_video(frames: np.ndarray, height: int | None, width: int | None, what: str) -> torch.Tensor:
    """uint8 (t, h, w, 3) frames -> (1, 3, t, height, width) in [0, 1], resized as a file's are (None: at their
    size): PIL frames and uint8 numpy frames given to a pipeline alike."""
    if height is None or width is None:  # e.g. a low-resolution video, which stays at its size
        height, width = frames.shape[1:3]
    return frames_to_tensor(resize_frames(frames, height, width, source=f"the {what}"))


# numpy arrays given to the library, in diffusers' layout: channel-last pictures, float in [0, 1] as a pipeline's
# output_type="np" gives them (so one pipeline's frames feed the next), or uint8 as image readers give them. A
# pipeline's own np frames were refused ("the video must be a float tensor"), so chaining needed a torch detour.
def _is_numpy(x) -> bool:
    return isinstance(x, np.ndarray) or (isinstance(x, (list, tuple)) and len(x) > 0
                                         and all(isinstance(i, np.ndarray) for i in x))


def _numpy_pictures(x, height: int | None, width: int | None, what: str, frames: bool) -> torch.Tensor:
    """Channel-last numpy pictures -> a float tensor in the pipelines' layout: an image (h, w, 3) or a batch
    (b, h, w, 3) -> (b, 3, h, w); a video (t, h, w, 3), a batch (b, t, h, w, 3) or a list of (h, w, 3) frames ->
    (b, 3, t, h, w). Float arrays are taken as they are, like tensors (values in [0, 1], any size the model takes);
    uint8 arrays (0-255) are resized to ``height`` x ``width`` as PIL images and files are (a video: None keeps its
    size)."""
    if isinstance(x, (list, tuple)):  # a list of images (a batch) or of frames (one video)
        if len({a.shape for a in x}) > 1 or len({a.dtype for a in x}) > 1:
            raise ValueError(f"the {what}'s numpy arrays differ in shape or dtype: give them at one size and dtype")
        x = np.stack(x)[None] if frames else np.stack(x)
    one = 3 if not frames else 4  # the rank of one image / one video
    layout = "(t, h, w, 3) or (b, t, h, w, 3)" if frames else "(h, w, 3) or (b, h, w, 3)"
    if x.ndim not in (one, one + 1) or x.shape[-1] != 3 or 0 in x.shape:
        raise ValueError(f"a numpy {what} must be channel-last RGB, {layout} (diffusers' np layout), got shape "
                         f"{x.shape}; a channel-first tensor goes in as a torch tensor")
    x = x[None] if x.ndim == one else x
    if x.dtype == np.uint8:
        if frames:
            return torch.cat([_uint8_video(v, height, width, what) for v in x])
        return images_to_tensor(x, height, width, f"the {what}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"a numpy {what} must be float in [0, 1] or uint8 (0-255), got dtype {x.dtype}")
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return t.permute(0, 4, 1, 2, 3) if frames else t.permute(0, 3, 1, 2)


def mask_input(mask, height: int, width: int, what: str = "mask"):
    """A PIL mask (white, >= 128, marks the region) -> (1, 1, height, width) in {0, 1}, as :func:`read_mask` reads a
    PNG; a numpy mask (h, w), or (t, h, w) for one per frame, -> (1, 1, [t,] h, w): bool or float as it is (1 = the
    region), uint8 as a grey PNG (>= 128, resized); anything else as given."""
    if isinstance(mask, np.ndarray):
        if mask.ndim not in (2, 3) or 0 in mask.shape:
            raise ValueError(f"a numpy {what} must be (h, w), or (t, h, w) for one per frame, got shape {mask.shape}")
        if mask.dtype == np.uint8:
            masks = [grey_to_mask(m, height, width, f"the {what}") for m in (mask[None] if mask.ndim == 2 else mask)]
            return masks[0] if mask.ndim == 2 else torch.stack(masks, 2)
        if mask.dtype != np.bool_ and not np.issubdtype(mask.dtype, np.floating):
            raise ValueError(f"a numpy {what} must be bool, float (0 or 1) or uint8 (white >= 128), got dtype "
                             f"{mask.dtype}")
        return torch.from_numpy(mask.astype(np.float32))[None, None]
    if not _is_pil(mask):
        return mask
    return grey_to_mask(_pil_arrays([mask], "L", what)[0], height, width, f"the {what}")
