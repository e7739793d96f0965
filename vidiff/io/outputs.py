"""Output planning: before any work starts, check that every path a command will write is new, or (on an
explicit overwrite) safe to replace, and that none of them is one of its inputs.

What "safe to replace" means: a file of the same kind, or a folder that holds nothing but what vidiff itself
writes there (PNG frames ``frame_NNNN.png``). A folder holding anything else, the current folder or one
above it, and any path that contains or is an input, are never replaced, with or without overwrite.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vidiff.io.atomic import clean_stale, exists_error, is_temporary

FRAME_FILE = re.compile(r"^frame_\d{4,}\.png$")


def sidecar_path(output: Path) -> Path:
    """Where an output's settings go: ``clip.mp4`` -> ``clip.json``; a PNG folder ``clip/`` -> ``clip.json``."""
    return output.with_suffix(".json") if output.suffix else output.with_name(output.name + ".json")


def sheet_path(output: Path) -> Path:
    """Where an output's contact sheet goes: ``clip.mp4`` -> ``clip.png``; a PNG folder ``clip/`` -> ``clip.png``."""
    return output.with_suffix(".png") if output.suffix else output.with_name(output.name + ".png")


def absolute(path: str | os.PathLike) -> Path:
    """An absolute, normalised path (``..`` folded) that does not follow symlinks: a link is what gets replaced."""
    return Path(os.path.abspath(os.fspath(path)))


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _real(p: Path) -> Path:
    try:
        return p.resolve()
    except OSError:
        return p


def check_not_an_input(output: str | os.PathLike, inputs: list[str | os.PathLike | None]) -> None:
    """ValueError if ``output`` is one of ``inputs`` (None entries ignored) or a folder holding one, its symlinks
    followed: replacing it would destroy what the command reads."""
    out = absolute(output)
    for i in (absolute(i) for i in inputs if i is not None):
        if _inside(_real(i), _real(out)) or _inside(i, out):
            what = "is" if _real(i) == _real(out) else "contains"
            raise ValueError(f"{str(out)!r} {what} the input {str(i)!r}; vidiff never writes over its inputs: "
                             f"choose another output name")


def foreign_entries(folder: str | os.PathLike, ours, also_ours: re.Pattern | None = None) -> list[str]:
    """The names in ``folder`` that a vidiff writer did not put there: neither in ``ours`` nor matched whole by
    ``also_ours`` nor one of vidiff's temporaries, sorted; [] for a folder that does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name not in ours and not is_temporary(p.name)
                  and not (also_ours is not None and also_ours.fullmatch(p.name)))


def some(names: list[str], k: int = 3) -> str:
    """The first ``k`` of ``names`` for a message, '...' after them when there are more."""
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")


def check_replaceable_folder(path: str | os.PathLike, ours, kind: str,
                             remedy: str = "move them out, or choose another folder") -> None:
    """ValueError unless the folder ``path`` holds nothing but entries named in ``ours`` (what ``kind`` writes) and
    vidiff's own temporaries: an --overwrite replaces the whole folder, and must not delete a file of the user's."""
    foreign = foreign_entries(path, ours)
    if foreign:
        raise ValueError(f"{str(path)!r} holds files that {kind} does not write ({some(foreign)}), which replacing "
                         f"the folder would delete; {remedy}")


def check_outputs(outputs: list[str | os.PathLike], inputs: list[str | os.PathLike | None] = (),
                  overwrite: bool = False) -> list[Path]:
    """Raise ValueError naming the first output that would destroy something; return the outputs as absolute
    paths. ``inputs``: files or folders the command reads (None entries are ignored)."""
    outs = [absolute(o) for o in outputs]
    ins = [absolute(i) for i in inputs if i is not None]
    cwd = absolute(Path.cwd())
    for out in outs:
        bad = [c for c in out.name if ord(c) < 32 or ord(c) == 127 or "\udc80" <= c <= "\udcff"]
        if bad:
            raise ValueError(f"the output name {out.name!r} contains control characters or bytes that are not "
                             f"UTF-8; give a plain file name")
        try:
            name_max = os.pathconf(out.parent if out.parent.exists() else "/", "PC_NAME_MAX")
        except (OSError, ValueError):
            name_max = 255
        if len(os.fsencode(out.name)) + 24 > name_max:  # + the temporary's prefix and suffix
            raise ValueError(f"the output name is {len(os.fsencode(out.name))} bytes long; this filesystem allows "
                             f"{name_max - 24} for it")
        if _inside(cwd, out) or _inside(_real(cwd), _real(out)):
            raise ValueError(f"{str(out)!r} is the current folder or one above it; give a new name for the output")
        check_not_an_input(out, ins)
        clean_stale(out.parent, name=out.name)  # a killed earlier write of it: the old version back, temporaries out
        if not (out.exists() or out.is_symlink()):
            continue
        if out.is_dir() and not out.is_symlink():
            if not out.suffix and not any(out.iterdir()):
                continue  # an empty folder made for the frames
            foreign = sorted(p.name for p in out.iterdir() if not FRAME_FILE.match(p.name))
            if foreign:
                raise ValueError(f"the output folder {str(out)!r} exists and holds other files (e.g. {foreign[0]!r}); "
                                 f"vidiff replaces only a folder of its own frames: choose another name")
            if not out.suffix and overwrite:
                continue
        elif overwrite and out.suffix:
            continue  # a file where a file goes
        if overwrite:
            raise ValueError(f"{str(out)!r} is a {'folder' if out.is_dir() else 'file'}, but a "
                             f"{'file' if out.suffix else 'folder of frames'} goes there: choose another name")
        raise exists_error(out)
    return outs
