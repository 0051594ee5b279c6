"""A set of files in one directory replaced all together, so a crash never mixes old and new.

Theory of operation: the new files are written and fsynced in ``.staging/``, which is renamed
to ``.commit/`` (the commit point); each file is then renamed into place and ``.commit/``
removed. ``recover`` (called under the lock before any read or write) finishes a ``.commit/``
left by a crash and discards a ``.staging/``. Renames stay inside one directory, so each is
atomic (POSIX ``rename``), and fsyncing the directories makes them durable in that order.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

logger = logging.getLogger(__name__)

LOCK_FILE: Final = ".lock"
STAGING_DIR: Final = ".staging"
COMMIT_DIR: Final = ".commit"
#: The directory and its lock file: owner only, as they sit next to secrets.
DIR_MODE: Final = 0o700
LOCK_MODE: Final = 0o600


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the directory's exclusive lock: one writer at a time across processes.

    Creates the directory (0700) if needed and tightens its mode if it was looser.
    """
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    directory.chmod(DIR_MODE)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, LOCK_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def replace_files(directory: Path, files: Mapping[str, tuple[bytes, int]]) -> None:
    """Put every ``name: (content, mode)`` in place, or (after a crash) none of them.

    Call under ``locked`` and after ``recover``. Files not named are left as they are.
    """
    staging = directory / STAGING_DIR
    staging.mkdir(mode=DIR_MODE)
    for name, (data, mode) in files.items():
        write_synced(staging / name, data, mode)
    fsync_dir(staging)
    staging.rename(directory / COMMIT_DIR)
    fsync_dir(directory)
    _finish(directory)


def recover(directory: Path) -> None:
    """Finish or discard a replacement a crash interrupted."""
    if (directory / COMMIT_DIR).is_dir():
        logger.warning("finishing a file replacement that was interrupted in %s", directory)
        _finish(directory)
    staging = directory / STAGING_DIR
    if staging.exists():
        shutil.rmtree(staging)


def _finish(directory: Path) -> None:
    commit = directory / COMMIT_DIR
    for path in commit.iterdir():
        path.replace(directory / path.name)
    fsync_dir(directory)
    commit.rmdir()
    fsync_dir(directory)


def write_synced(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(fd, mode)  # the exact mode, whatever the umask took away
        file.write(data)
        file.flush()
        os.fsync(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
