"""Atomic writes that never destroy what the caller did not ask to replace.

Everything vidiff writes (videos, sidecars, checkpoints, pipelines, snapshots, reports) goes to a hidden
temporary sibling and is renamed into place, so an interrupted run never leaves a half-written file or
folder under the final name. An existing target is an error unless the caller passes ``overwrite=True``;
then the old file is replaced by one atomic rename, and an old folder is moved aside only *after* the new
one is complete, renamed back if the swap fails, and removed last. Nothing else is ever removed.
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

_TMP = ".tmp"
_OLD = ".old"
_SIBLING = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)(?P<pid>\d+)(?P<suffix>\.[^.]*)?$")


def is_temporary(name: str) -> bool:
    """Whether ``name`` is one of vidiff's temporaries or moved-aside olds (``.NAME.tmpPID`` / ``.NAME.oldPID``)."""
    return _SIBLING.match(name) is not None


def _sibling(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}{kind}{os.getpid()}{path.suffix}")


def exists_error(path: Path, what: str = "the output") -> ValueError:
    kind = "folder" if path.is_dir() else "file"
    return ValueError(f"{what} {str(path)!r} already exists (a {kind}); choose another name, or pass --overwrite "
                      f"(overwrite=True) to replace it")


@contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False):
    """Yield a temporary sibling path (a file or a folder to create); on success it becomes ``path``.

    ``path`` must not exist unless ``overwrite``; checked before the work starts and again before the rename.
    On failure (or interruption) the temporary is removed and ``path`` is untouched."""
    path = Path(path)
    clean_stale(path.parent, name=path.name)  # a killed earlier write of this path: its old version comes back
    if not overwrite and _occupied(path, folder=None):
        raise exists_error(path)
    tmp = _sibling(path, _TMP)
    try:
        yield tmp
        if not (tmp.exists() or tmp.is_symlink()):
            raise RuntimeError(f"nothing was written to {tmp}")  # an internal bug, not bad input
        put_in_place(tmp, path, overwrite)
    finally:
        remove_path(tmp)


def _occupied(path: Path, folder: bool | None) -> bool:
    """Whether writing ``path`` would replace something: anything there but an empty folder that a new folder
    (``folder`` True, or None: not known yet) would take the place of."""
    if path.is_symlink() or path.is_file():
        return True
    if path.is_dir():
        return folder is False or any(path.iterdir())
    return path.exists()


def put_in_place(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the complete temporary ``tmp`` to ``path``: into a free place without replacing anything that appeared
    meanwhile; over an existing one only with ``overwrite`` (a file in one rename, a folder moved aside first)."""
    if not _occupied(path, folder=tmp.is_dir()):
        if tmp.is_dir():
            os.rename(tmp, path)  # POSIX: a folder takes the place of an empty folder, never of anything else
            return
        try:
            os.link(tmp, path)  # no-clobber: fails if a file appeared there meanwhile (rename would replace it)
        except FileExistsError:
            if not overwrite:
                raise exists_error(path) from None
        except OSError:  # a filesystem without hard links
            os.rename(tmp, path)
            return
        else:
            tmp.unlink()
            return
    if not overwrite:
        raise exists_error(path)
    if tmp.is_file() and path.is_file() and not path.is_symlink():
        os.replace(tmp, path)  # one atomic step: a reader sees the old file or the new one
        return
    old = _sibling(path, _OLD)
    os.rename(path, old)  # the old one moves aside only now that the new one is complete
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(old, path)
        raise
    remove_path(old)


def remove_path(p: Path) -> None:
    """Remove a file, link or folder tree if it is there."""
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(folder: str | os.PathLike, name: str | None = None) -> list[str]:
    """Tidy what killed writers left in ``folder`` (of the entry ``name`` only, if given): temporaries of dead
    processes are removed, and an old version moved aside whose replacement never arrived is renamed back.
    Returns what was done."""
    folder = Path(folder)
    done: list[str] = []
    if not folder.is_dir():
        return done
    for p in sorted(folder.iterdir()):
        m = _SIBLING.match(p.name)
        if not m or (name is not None and m["name"] != name) or _pid_alive(int(m["pid"])):
            continue
        target = folder / m["name"]
        if m["kind"] == "old" and not (target.exists() or target.is_symlink()):
            os.rename(p, target)
            done.append(f"restored {m['name']}")
        else:
            remove_path(p)
            done.append(f"removed {p.name}")
    return done


def write_text_atomic(path: str | os.PathLike, text: str, overwrite: bool = False) -> None:
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)
