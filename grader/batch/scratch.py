"""The batch's scratch folder (``mlflow-kit-batch-*``, in shared memory when there is
room): private copies of submissions, the grading hosts' folders, learner code.

A live batch holds an exclusive ``flock`` on ``batch.lock`` inside its folder; the kernel
drops the lock when the batch dies, however it dies. So the next batch removes every such
folder whose lock it can take: one a killed batch left, holding learner code in memory.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from grader.ground import files

PREFIX = "mlflow-kit-batch-"
LOCK = "batch.lock"
# A folder without a lock file is a batch between creating its folder and locking it, or
# one of a kit from before the lock: left alone until it is this old.
UNLOCKED_GRACE_SECONDS = 600
REMOVAL_TRIES = 10


@contextmanager
def batch_folder(parent: str | None) -> Iterator[Path]:
    """A new locked scratch folder in ``parent`` (None: the system's temporary folder),
    after removing the ones dead batches left there. Removed on the way out."""
    place = Path(parent or tempfile.gettempdir())
    sweep(place)
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=place))
    lock = os.open(folder / LOCK, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield folder
    finally:
        # Processes of a grading just killed may still be going for a moment: look again.
        for _ in range(REMOVAL_TRIES):
            if files.remove_tree(folder):
                break
            time.sleep(0.2)
        os.close(lock)


def sweep(place: Path) -> list[Path]:
    """Remove this user's scratch folders in ``place`` that no live batch holds."""
    removed = []
    for candidate in place.glob(PREFIX + "*"):
        if _abandoned(candidate):
            files.remove_tree(candidate)
            removed.append(candidate)
    return removed


def _abandoned(folder: Path) -> bool:
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return False
    try:
        lock = os.open(folder / LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return time.time() - info.st_mtime > UNLOCKED_GRACE_SECONDS
    except OSError:
        return False
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True  # no live batch holds it, and a dead one never takes it back
    except OSError as error:
        if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise
        return False
    finally:
        os.close(lock)
