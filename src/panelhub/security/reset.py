"""Factory reset: every file of the data directory erased, so the next start is a first one.

What goes: accounts, the audit log and its key, certificates and keys, the datalog, custom
models, trust anchors added by the owner, publication credentials, whatever else is there.
What stays: the permanent disable of radio services (kept apart, ``services/permanent.py``)
and the installed software.

Each regular file is overwritten with zeros and fsynced before it is unlinked, so a file
still open by a process (a SQLite database and its WAL) holds no old data either, and a
file system that reuses the blocks in place gets zeros. On flash with wear levelling that is
best effort: the storage's own erase (or full-disk encryption) is what clears every cell.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Final

from panelhub.config.models import Settings
from panelhub.config.store import PREVIOUS_SUFFIX, load_settings, save_settings
from panelhub.security import fileset

logger = logging.getLogger(__name__)

_ZEROS: Final = bytes(1024 * 1024)
#: Written first and removed last: a reset found under way at start is finished.
MARKER_FILE: Final = ".factory-reset"
#: The data directory's mode when made again (ARCHITECTURE.md: 0700).
DIR_MODE: Final = 0o700


def factory_reset(
    data_dir: Path, *, config_path: Path | None = None, factory_config: Path | None = None
) -> int:
    """Erase the data directory's contents; return how many files were erased.

    The directory stays, empty, 0700. ``config_path``, if given, is replaced by the factory
    configuration (``factory_config``: the file the device was provisioned with, checked
    before anything is erased) or else by the built-in defaults keeping only ``data_dir``;
    its previous copy is erased too.

    Crash-safe: a marker file is written first and removed last, and ``recover`` (at every
    start) finishes a reset it finds; the configuration is reset before the data, so the
    next start can read it.

    Raises:
        ConfigError: ``factory_config`` does not validate; nothing was erased.
    """
    factory = load_settings(factory_config) if factory_config is not None else None
    data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    data_dir.chmod(DIR_MODE)
    marker = data_dir / MARKER_FILE
    if not marker.exists():
        fileset.write_synced(marker, b"factory reset under way\n", 0o600)
        fileset.fsync_dir(data_dir)
    keep = {marker}
    if config_path is not None:
        _reset_config(config_path, factory or Settings(data_dir=data_dir))
        keep.add(config_path)
    erased = _erase(data_dir, keep={path.resolve() for path in keep})
    marker.unlink()
    fileset.fsync_dir(data_dir)
    logger.warning("factory reset: %d files erased in %s", erased, data_dir)
    return erased


def recover(
    data_dir: Path, *, config_path: Path | None = None, factory_config: Path | None = None
) -> None:
    """Finish a factory reset that a crash or a power cut interrupted."""
    if (data_dir / MARKER_FILE).exists():
        logger.warning("finishing a factory reset that was interrupted in %s", data_dir)
        factory_reset(data_dir, config_path=config_path, factory_config=factory_config)


def _erase(data_dir: Path, *, keep: set[Path]) -> int:
    erased = 0
    for path in sorted(data_dir.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file() and not path.is_symlink() and path.resolve() not in keep:
            _wipe(path)
            erased += 1
    for child in list(data_dir.iterdir()):
        if child.resolve() in keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return erased


def _reset_config(config_path: Path, settings: Settings) -> None:
    """The factory settings in place of the owner's; no copy of theirs is left beside it.

    The new file replaces the old in one rename (the file is never invalid); the old content
    then lives only in ``*.previous``, a link to its bytes, which are zeroed and unlinked.
    """
    previous = config_path.with_name(config_path.name + PREVIOUS_SUFFIX)
    _wipe_and_remove(previous)  # an older copy of the owner's settings
    save_settings(config_path, settings, header="Factory settings, written by a factory reset")
    _wipe_and_remove(previous)  # the owner's settings as they were until now


def _wipe_and_remove(path: Path) -> None:
    if path.is_file() and not path.is_symlink():
        _wipe(path)
        path.unlink()


def _wipe(path: Path) -> None:
    """Overwrite a file's bytes in place with zeros, to its full length, and flush them."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        left = os.fstat(fd).st_size
        while left > 0:
            left -= os.write(fd, _ZEROS[: min(left, len(_ZEROS))])
        os.fsync(fd)
    finally:
        os.close(fd)
