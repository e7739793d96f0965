"""One writer per folder: an advisory lock on a hidden file in it, held while a command writes there.

Two ``vidiff train`` runs into the same ``output_dir`` (a command started twice, a job requeued while the first
still runs) both trained, interleaved their logs and replaced each other's checkpoints and export, exit 0. The lock
is ``flock`` (POSIX; the kernel drops it when its process ends, however it ends, so a killed run leaves no stale
lock behind and nothing has to be cleaned). The file itself stays, empty but for the holder's process id; vidiff
never deletes it, since deleting a lock file races with the next process opening it. Where ``fcntl`` is missing
(Windows) there is no lock.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None

LOCK_NAME = ".vidiff.lock"


def _in_use(folder: Path, fd: int, what: str) -> ValueError:
    try:
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        pid = ""
    by = f" (process {pid})" if pid.isdigit() else ""
    return ValueError(f"{what} {str(folder)!r} is in use by another run{by}; wait for it to end, or choose another "
                      f"folder")


def check_not_in_use(folder: str | os.PathLike, what: str = "the folder") -> None:
    """Raise ValueError if another process holds ``folder``'s lock. Creates nothing: a check that runs before
    the work, when the folder may not be vidiff's at all."""
    path = Path(folder) / LOCK_NAME
    if fcntl is None or not path.is_file():
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # fails while another process holds it exclusively
        except BlockingIOError:
            raise _in_use(Path(folder), fd, what) from None
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "the folder"):
    """Hold ``folder``'s lock (the folder must exist) for the ``with`` block; ValueError if another process
    holds it. A second lock of the same folder in the same process is refused too (a run inside a run)."""
    if fcntl is None:
        yield
        return
    folder = Path(folder)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _in_use(folder, fd, what) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
