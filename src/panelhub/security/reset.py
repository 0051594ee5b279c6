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

logger = logging.getLogger(__name__)

_ZEROS: Final = bytes(1024 * 1024)
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

    Raises:
        ConfigError: ``factory_config`` does not validate; nothing was erased.
    """
    factory = load_settings(factory_config) if factory_config is not None else None
    erased = 0
    if data_dir.is_dir():
        for path in sorted(data_dir.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_file() and not path.is_symlink():
                _wipe(path)
                erased += 1
        for child in list(data_dir.iterdir()):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    data_dir.chmod(DIR_MODE)
    if config_path is not None:
        _reset_config(config_path, factory or Settings(data_dir=data_dir))
    logger.warning("factory reset: %d files erased in %s", erased, data_dir)
    return erased


def _reset_config(config_path: Path, settings: Settings) -> None:
    """The factory settings in place of the owner's; no copy of theirs is left beside it."""
    previous = config_path.with_name(config_path.name + PREVIOUS_SUFFIX)
    for old in (previous, config_path):
        if old.is_file() and not old.is_symlink():
            _wipe(old)
    save_settings(config_path, settings, header="Factory settings, written by a factory reset")
    previous.unlink(missing_ok=True)  # a link to the zeroed old file


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
