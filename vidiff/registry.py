"""The embedded models by name: every ``from_pretrained`` and every command resolves these names the same way
(one table, not one per caller). No heavy imports: the CLI resolves names before anything loads."""

from __future__ import annotations

import os
import re
from pathlib import Path

EMBEDDED = ("default", "conditional", "ssr", "style-outlined", "t2i-shapes")  # pipeline folders under vidiff/weights


def weights_dir() -> Path:
    return Path(__file__).resolve().parent / "weights"


def model_path(name_or_path: str | os.PathLike) -> Path:
    """The folder a name or path stands for, unchecked: an embedded name maps into vidiff/weights (a folder of the
    same name in the current folder is written as a path, ./ssr, and a warning says so once)."""
    name = os.fspath(name_or_path)
    if name not in EMBEDDED:
        return Path(name)
    if name not in _WARNED and Path(name).is_dir():
        import warnings

        _WARNED.add(name)
        warnings.warn(f"{name!r} is the embedded model; the folder {name!r} here is not used (write ./{name} for it)",
                      UserWarning, stacklevel=2)
    return weights_dir() / name


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_WARNED: set[str] = set()  # names warned about in this process (resolve_model runs several times a command)


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """A pipeline folder, a plain diffusers text-to-image folder (Stable Diffusion as downloaded), or the name of
    an embedded one (:data:`EMBEDDED`). Raises ValueError when it is none of these."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ValueError(f"a model is a folder path or one of: {', '.join(EMBEDDED)}; got {type(name_or_path).__name__}")
    name = os.fspath(name_or_path)
    p = model_path(name)
    if not p.exists():
        hint = " (not shipped in this install)" if name in EMBEDDED else ""
        # "owner/name", as diffusers' from_pretrained takes a hub repository (not "runs/x" with runs/ here)
        if HUB_ID.fullmatch(name) and not Path(name.split("/")[0]).exists():
            hint += (f"; vidiff fetches nothing from a model hub: download it first ('hf download {name} "
                     f"--local-dir DIR') and give DIR")
        raise ValueError(f"model path {name!r} does not exist{hint}; give a pipeline folder (from 'vidiff train') "
                         f"or one of: {', '.join(EMBEDDED)}")
    if not (p / "vidiff_pipeline.json").exists():
        from vidiff.pipelines.folder import SUPPORTED_IMAGE_FOLDER, is_diffusers_image_folder

        if not is_diffusers_image_folder(p):  # a plain diffusers text-to-image folder is read as one (read_meta)
            raise ValueError(f"{name!r} is not a vidiff pipeline folder (vidiff_pipeline.json missing) nor "
                             f"{SUPPORTED_IMAGE_FOLDER}")
    return p
