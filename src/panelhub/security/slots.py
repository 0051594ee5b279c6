"""Installed software slots: a verified bundle goes into a new one, never over the running one.

Layout of the slots directory (``/var/lib/panelhub-slots`` on a device)::

    slot-0.2.0-9f86d081884c/   one per installed bundle (version, payload digest)
        site/                  the payload: ``panelhub/`` and its ``.dist-info``, read-only
        bundle-header          the signed header (manifest and signature) of that bundle
    current -> slot-...        the slot that last came up healthy
    trial   -> slot-...        a slot installed and not yet proven (the launcher tries it)
    previous -> slot-...       the one before ``current``, kept for a manual way back
    failed  -> slot-...        the last trial that did not come up healthy

Every switch is one ``rename`` of a symbolic link (atomic on POSIX), and a slot directory is
complete (fsynced, then renamed from ``.new-*``) before any link points at it, so a kill at any
moment leaves the old or the new code to run, never a mix. With no ``current`` link, the
launcher runs the base install it comes from (the factory image).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from packaging.version import InvalidVersion, Version

import panelhub
from panelhub.errors import BundleError
from panelhub.security import bundle, fileset

logger = logging.getLogger(__name__)

#: Set by the launcher for the process it starts: the slot whose code that process runs.
SLOT_ENV: Final = "PANELHUB_SLOT"
SITE_DIR: Final = "site"
LOCK_FILE: Final = ".lock"
HEADER_FILE: Final = "bundle-header"
CURRENT: Final = "current"
TRIAL: Final = "trial"
PREVIOUS: Final = "previous"
FAILED: Final = "failed"
_NEW_PREFIX: Final = ".new-"
SLOT_PREFIX: Final = "slot-"


def slot_name(manifest: bundle.Manifest) -> str:
    return f"{SLOT_PREFIX}{manifest.version}-{manifest.payload_sha256[:12]}"


def install(verified: bundle.VerifiedBundle, slots_dir: Path) -> Path:
    """Unpack ``verified`` into a new slot and make it the trial; returns the slot.

    One install or switch at a time (a lock file), so that two uploads, or an upload and
    the launcher promoting a trial, never remove each other's work.
    """
    slots_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    with _locked(slots_dir):
        return _install(verified, slots_dir)


def _install(verified: bundle.VerifiedBundle, slots_dir: Path) -> Path:
    """The install, under the lock.

    Reinstalling a bundle whose slot is there (changed since, perhaps: the reason page says
    to reinstall) unpacks it afresh and swaps the whole slot directory.
    """
    _remove_partial(slots_dir)
    target = slots_dir / slot_name(verified.manifest)
    staging = slots_dir / f"{_NEW_PREFIX}{uuid.uuid4().hex}"
    staging.mkdir(mode=0o755)
    try:
        bundle.unpack(verified, staging / SITE_DIR)
        fileset.write_synced(staging / HEADER_FILE, verified.header.raw, 0o644)
        _sync_tree(staging)
        if target.is_dir():
            old = slots_dir / f"{_NEW_PREFIX}old-{uuid.uuid4().hex}"
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fileset.fsync_dir(slots_dir)
    point(slots_dir, TRIAL, target.name)
    logger.info(
        "bundle %s installed in %s, to be tried at the next start",
        verified.manifest.version,
        target,
    )
    return target


def point(slots_dir: Path, link: str, slot: str) -> None:
    """Make ``link`` name ``slot`` in one atomic rename."""
    temporary = slots_dir / f".{link}.{uuid.uuid4().hex}"
    temporary.symlink_to(slot)
    temporary.replace(slots_dir / link)
    fileset.fsync_dir(slots_dir)


def target_of(slots_dir: Path, link: str) -> Path | None:
    path = slots_dir / link
    if not path.is_symlink():
        return None
    slot = slots_dir / path.readlink()
    return slot if slot.is_dir() else None


def promote_trial(slots_dir: Path) -> None:
    """The trial came up healthy: it becomes current, the old current becomes previous."""
    with _locked(slots_dir):
        _promote_trial(slots_dir)


def _promote_trial(slots_dir: Path) -> None:
    current = target_of(slots_dir, CURRENT)
    if current is not None:
        point(slots_dir, PREVIOUS, current.name)
    (slots_dir / TRIAL).replace(slots_dir / CURRENT)  # the link itself moves: one step
    fileset.fsync_dir(slots_dir)
    _prune(slots_dir)


def reject_trial(slots_dir: Path) -> None:
    """The trial did not come up healthy: remember it as failed, and run current again."""
    (slots_dir / TRIAL).replace(slots_dir / FAILED)
    fileset.fsync_dir(slots_dir)


def installed_version(slots_dir: Path | None) -> Version:
    """The version a new bundle replaces: the current slot's, else this running code's."""
    current = None if slots_dir is None else target_of(slots_dir, CURRENT)
    if current is not None:
        try:
            return bundle.manifest_of_header((current / HEADER_FILE).read_bytes()).version
        except (OSError, BundleError):
            pass  # a damaged current slot: compare with the running code instead
    try:
        return Version(panelhub.__version__)
    except InvalidVersion:  # pragma: no cover - our own version is PEP 440
        return Version("0")


def slots_dir_of_process() -> Path | None:
    """The slots directory this process runs from (the launcher names its slot), if any."""
    slot = os.environ.get(SLOT_ENV)
    return Path(slot).parent if slot else None


@contextlib.contextmanager
def _locked(slots_dir: Path) -> Iterator[None]:
    fd = os.open(slots_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _remove_partial(slots_dir: Path) -> None:
    for path in slots_dir.glob(f"{_NEW_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)


def _prune(slots_dir: Path) -> None:
    """Remove slots no link names (and not the failed one: it is kept for a look)."""
    named = {p.readlink().name for p in slots_dir.iterdir() if p.is_symlink()}
    for path in slots_dir.glob(f"{SLOT_PREFIX}*"):
        if path.is_dir() and path.name not in named:
            shutil.rmtree(path, ignore_errors=True)


def _sync_tree(root: Path) -> None:
    """The directories' entries; the files were fsynced as ``unpack`` wrote them."""
    for directory, _, _ in os.walk(root):
        fileset.fsync_dir(Path(directory))
