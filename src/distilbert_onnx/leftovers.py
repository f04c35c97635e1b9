"""Telling the staging files of a live process from those a dead one left, and removing the latter.

Every temporary folder or file this package builds an output in (`.NAME.XXXX.partial` beside the
target, a bulk job's `.NAME.partial` parts folder) is held with an exclusive `flock` for as long as
its writer runs. The kernel drops the lock when the process ends, however it ends (SIGKILL
included), so a staging path nobody holds belongs to a dead process. The next run that targets the
same place removes such leftovers; a path a live process holds is never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import shutil
import time
from pathlib import Path

logger = logging.getLogger("distilbert_onnx")

# A leftover is only removed once it has not changed for this long: the moment between a staging
# folder being made and being locked is then never mistaken for a dead writer.
SETTLE_SECONDS = 2.0


class Busy(Exception):
    """Another live process holds the path."""


def hold(path: str | Path) -> int:
    """An open descriptor holding `path` (a file or a folder) exclusively until it is closed or the
    process ends; Busy when another process holds it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Busy(str(path)) from None
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def held(path: str | Path) -> bool:
    """Whether a live process holds `path` now."""
    try:
        release(hold(path))
    except Busy:
        return True
    except OSError:  # gone, or unreadable: not ours to judge
        return True
    return False


def clean_abandoned(target: str | Path) -> list[Path]:
    """Remove the staging leftovers of dead processes beside `target` (`.NAME.*.partial`, and the
    `.NAME.*.old` folders a replacement retires); the paths removed."""
    target = Path(target).absolute()
    name = glob.escape(target.name)
    removed = []
    for pattern in (f".{name}.*.partial", f".{name}.*.old", f".{name}.old"):
        removed += [path for path in target.parent.glob(pattern) if _remove_if_abandoned(path)]
    return removed


def _remove_if_abandoned(path: Path) -> bool:
    if path.is_symlink() or not _settled(path) or held(path):
        return False
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    logger.info("removed %s, left by an interrupted run", path)
    return True


def _settled(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime >= SETTLE_SECONDS
    except OSError:
        return False
