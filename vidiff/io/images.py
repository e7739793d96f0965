"""Reading still images into uint8 arrays without silent garbage: 16-bit and 32-bit greyscale are scaled
(not clipped to white), grey and palette images become RGB, transparency is composited over black (the
colour transparent pixels have in most editors' exports is undefined)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

MIN_SIDE = 2  # a picture needs at least 2 x 2 pixels; 1 x 1 is a colour, not an image


def open_image(path: str | os.PathLike, mode: str = "RGB", what: str = "image") -> np.ndarray:
    """uint8 (h, w, 3) for ``mode`` 'RGB', (h, w) for 'L'. Raises ValueError naming the file and the problem."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        kind = "not a regular file" if path.exists() else "not found"
        raise ValueError(f"{what} file {str(path)!r} {kind}")
    try:
        with Image.open(path) as img:
            img.load()
            arr = pil_to_array(img, mode)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:  # PIL raises all four on bad files
        raise ValueError(f"cannot read {str(path)!r} as an image (PNG, JPEG, ...): "
                         f"{str(e).splitlines()[0][:100] if str(e) else type(e).__name__}") from None
    check_side(arr, f"{what} {str(path)!r}")
    return arr


def pil_to_array(img, mode: str = "RGB") -> np.ndarray:
    """A PIL image as uint8 (h, w, 3) for ``mode`` 'RGB', (h, w) for 'L': its EXIF orientation applied, more than
    8 bits scaled, transparency composited over black."""
    from PIL import Image, ImageOps

    # a camera's JPEG stores its pixels sideways with an EXIF orientation that every viewer applies; read raw, a
    # portrait photo was animated lying on its side (or refused for an aspect the user never saw)
    img = _to_8bit(ImageOps.exif_transpose(img))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, rgba)
    return np.asarray(img.convert(mode))


def check_side(arr: np.ndarray, what: str) -> None:
    if min(arr.shape[:2]) < MIN_SIDE:
        raise ValueError(f"{what} is {arr.shape[1]}x{arr.shape[0]} pixels; it must be at least {MIN_SIDE}x{MIN_SIDE}")


def _to_8bit(img):
    """Greyscale of more than 8 bits -> 8-bit 'L' by its bit depth (Pillow's convert would clip at 255)."""
    from PIL import Image

    if img.mode.startswith("I;16"):
        a = np.asarray(img).astype(np.float64) / 65535.0
    elif img.mode == "I":  # 32-bit ints: PNG 16-bit greyscale in older Pillow, TIFF
        a = np.asarray(img).astype(np.float64)
        a = a / (65535.0 if a.max() > 255 else 255.0)
    elif img.mode == "F":
        a = np.asarray(img).astype(np.float64)
        a = a / 255.0 if a.max() > 1.0 else a
    else:
        return img
    return Image.fromarray((np.clip(a, 0, 1) * 255).round().astype(np.uint8), mode="L")
