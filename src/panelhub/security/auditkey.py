"""The installation's key for labelling unknown login names in the audit log.

A name typed at a failed login that is not an account is often a password typed into the
wrong field, so the audit log keeps only a label: a keyed hash (HMAC-SHA256) of the text.
A plain hash would not do: a 12-hex-digit SHA-256 prefix of a short password is found by
brute force in seconds by anyone holding an export. With a random key that never leaves the
data directory, the same wrong name still gets the same label on this installation (an
auditor sees it repeated), but a label says nothing to whoever lacks the key.

The key is made at first use, written whole before it is visible (a crash leaves no short
key), and never replaced: a key that is there but not of the right size is an error.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Final

from panelhub.errors import StateStoreError

KEY_FILE: Final = "audit-key"
#: RFC 2104: a key as long as the hash output (32 bytes for SHA-256); longer adds nothing.
KEY_BYTES: Final = 32


def load_or_create_key(data_dir: Path) -> bytes:
    """The key in ``data_dir``, made (0600) the first time it is asked for.

    Raises:
        StateStoreError: the key file cannot be read or written, or holds something that is
            not a key (it is never replaced: labels already written would lose their meaning).

    """
    path = data_dir / KEY_FILE
    try:
        if not path.exists():
            _create(path)
        key = path.read_bytes()
    except OSError as exc:
        raise StateStoreError(f"audit label key: {exc}", path=path) from exc
    if len(key) != KEY_BYTES:
        raise StateStoreError(
            f"audit label key is {len(key)} bytes, not {KEY_BYTES}: damaged", path=path
        )
    return key


def _create(path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)  # the exact mode, whatever the umask
            file.write(secrets.token_bytes(KEY_BYTES))
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: keep it
            os.link(temporary, path)  # unlike rename, never replaces an existing key
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
