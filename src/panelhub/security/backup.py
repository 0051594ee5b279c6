r"""The encrypted backup file: a container that is safe in a stranger's hands.

Layout (integers big-endian)::

    offset  size  field
    0       16    magic b"PANELHUB-BACKUP\n"
    16      4     header length H (at most MAX_HEADER_BYTES)
    20      H     header: UTF-8 JSON, in clear (below)
    20+H    ...   AES-256-GCM ciphertext of the contents, with its 16-byte tag at the end

The header says how to get the key back, and what made the file::

    {"format": 1, "product_version": "0.1.0", "created": "2026-11-29T05:00:00Z",
     "kdf": {"name": "argon2id", "salt": "<base64, 16 bytes>", "time_cost": 3,
             "memory_kib": 65536, "parallelism": 1},
     "cipher": {"name": "AES-256-GCM", "nonce": "<base64, 12 bytes>"}}

The key is argon2id of the backup password; the whole prefix (magic, length, header) is the
GCM associated data, so a changed KDF parameter, version or date fails the tag check just as
a changed ciphertext byte does. A fresh salt and nonce each time make two backups of the same
state differ. The contents are a ``tar`` archive of named members (``restore.py`` says which).

A wrong password and a damaged file look the same to GCM, and are reported the same way.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import struct
from dataclasses import dataclass
from typing import Any, Final

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from panelhub.errors import BackupError, WeakPasswordError

MAGIC: Final = b"PANELHUB-BACKUP\n"
FORMAT_VERSION: Final = 1
_PREFIX: Final = struct.Struct(">16sI")
MAX_HEADER_BYTES: Final = 4096
#: Configuration, accounts, keys, certificates and models: well under a megabyte. The bound
#: keeps a restore from reading (and decrypting into memory) an arbitrary upload.
MAX_BACKUP_BYTES: Final = 16 * 1024 * 1024
SALT_BYTES: Final = 16
NONCE_BYTES: Final = 12  # NIST SP 800-38D §8.2: 96-bit nonces
KEY_BYTES: Final = 32  # AES-256
TAG_BYTES: Final = 16
#: argon2id, RFC 9106 §4 second recommendation (64 MiB, 3 passes): about 0.2 s here. A backup
#: is made and restored rarely, so the cost falls on whoever guesses passwords.
TIME_COST: Final = 3
MEMORY_KIB: Final = 64 * 1024
PARALLELISM: Final = 1
#: What a restore accepts from a header: a file cannot make the device spend minutes or
#: gigabytes before the tag check says whether it is genuine.
MAX_TIME_COST: Final = 10
MAX_MEMORY_KIB: Final = 256 * 1024
MAX_PARALLELISM: Final = 4
#: The vendor guide's rule for the backup password.
MIN_PASSWORD_CHARS: Final = 6
MAX_PASSWORD_CHARS: Final = 32

WRONG_PASSWORD_OR_DAMAGED: Final = "wrong password or damaged file"  # noqa: S105 - a reason
NOT_A_BACKUP: Final = "not a PanelHub backup"
INCOMPATIBLE: Final = "made by an incompatible version"
TOO_LARGE: Final = "too large"


@dataclass(frozen=True, slots=True)
class BackupHeader:
    format: int
    product_version: str
    created: str
    salt: bytes
    time_cost: int
    memory_kib: int
    parallelism: int
    nonce: bytes


def check_backup_password(password: str) -> None:
    """6 to 32 characters, with an upper-case letter, a lower-case letter and a special one."""
    problems = []
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        problems.append(
            f"a backup password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )
    if not any(c.isupper() for c in password):
        problems.append("a backup password has an upper-case letter")
    if not any(c.islower() for c in password):
        problems.append("a backup password has a lower-case letter")
    if all(c.isalnum() for c in password):
        problems.append("a backup password has a special character (not a letter or digit)")
    if problems:
        raise WeakPasswordError(tuple(problems))


def _derive(password: str, header: BackupHeader) -> bytes:
    return hash_secret_raw(
        password.encode("utf-8"),
        header.salt,
        time_cost=header.time_cost,
        memory_cost=header.memory_kib,
        parallelism=header.parallelism,
        hash_len=KEY_BYTES,
        type=Type.ID,
    )


def _header_json(header: BackupHeader) -> bytes:
    doc = {
        "format": header.format,
        "product_version": header.product_version,
        "created": header.created,
        "kdf": {
            "name": "argon2id",
            "salt": base64.b64encode(header.salt).decode("ascii"),
            "time_cost": header.time_cost,
            "memory_kib": header.memory_kib,
            "parallelism": header.parallelism,
        },
        "cipher": {"name": "AES-256-GCM", "nonce": base64.b64encode(header.nonce).decode("ascii")},
    }
    return json.dumps(doc, sort_keys=True).encode("utf-8")


def seal(contents: bytes, password: str, *, product_version: str, now: dt.datetime) -> bytes:
    """The backup file of ``contents`` under ``password`` (checked against the guide's rule)."""
    check_backup_password(password)
    header = BackupHeader(
        format=FORMAT_VERSION,
        product_version=product_version,
        created=now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        salt=os.urandom(SALT_BYTES),
        time_cost=TIME_COST,
        memory_kib=MEMORY_KIB,
        parallelism=PARALLELISM,
        nonce=os.urandom(NONCE_BYTES),
    )
    header_json = _header_json(header)
    prefix = _PREFIX.pack(MAGIC, len(header_json)) + header_json
    ciphertext = AESGCM(_derive(password, header)).encrypt(header.nonce, contents, prefix)
    if len(prefix) + len(ciphertext) > MAX_BACKUP_BYTES:
        raise BackupError(
            f"the backup would be {len(ciphertext)} bytes, more than {MAX_BACKUP_BYTES}",
            reason=TOO_LARGE,
        )
    return prefix + ciphertext


def read_header(data: bytes) -> tuple[BackupHeader, int]:
    """The clear header and where the ciphertext starts; refuses what is not a backup."""
    if len(data) > MAX_BACKUP_BYTES:
        raise BackupError(
            f"the file is {len(data)} bytes, more than a backup may be", reason=TOO_LARGE
        )
    if len(data) < _PREFIX.size or not data.startswith(MAGIC):
        raise BackupError(f"{NOT_A_BACKUP}: the file does not start as one", reason=NOT_A_BACKUP)
    (_, header_len) = _PREFIX.unpack_from(data)
    end = _PREFIX.size + header_len
    if header_len > MAX_HEADER_BYTES or len(data) < end + TAG_BYTES:
        raise BackupError(
            f"{WRONG_PASSWORD_OR_DAMAGED}: the file is cut short", reason=WRONG_PASSWORD_OR_DAMAGED
        )
    try:
        doc = json.loads(data[_PREFIX.size : end].decode("utf-8"))
        header = _parse_header(doc)
    except (
        UnicodeDecodeError,
        json.JSONDecodeError,
        KeyError,
        TypeError,
        ValueError,
        binascii.Error,
        RecursionError,  # JSON nested thousands deep
        OverflowError,  # Infinity where a count goes
    ):
        raise BackupError(
            f"{WRONG_PASSWORD_OR_DAMAGED}: the header is damaged", reason=WRONG_PASSWORD_OR_DAMAGED
        ) from None
    return header, end


def _parse_header(doc: Any) -> BackupHeader:  # noqa: ANN401 - JSON, checked field by field
    if doc["format"] != FORMAT_VERSION:
        raise BackupError(
            f"{INCOMPATIBLE}: backup format {doc['format']} (made by PanelHub "
            f"{doc.get('product_version')}); this version reads format {FORMAT_VERSION}",
            reason=INCOMPATIBLE,
        )
    kdf, cipher = doc["kdf"], doc["cipher"]
    if kdf["name"] != "argon2id" or cipher["name"] != "AES-256-GCM":
        raise BackupError(f"{INCOMPATIBLE}: {kdf['name']} / {cipher['name']}", reason=INCOMPATIBLE)
    header = BackupHeader(
        format=doc["format"],
        product_version=str(doc["product_version"]),
        created=str(doc["created"]),
        salt=base64.b64decode(kdf["salt"], validate=True),
        time_cost=_count(kdf["time_cost"]),
        memory_kib=_count(kdf["memory_kib"]),
        parallelism=_count(kdf["parallelism"]),
        nonce=base64.b64decode(cipher["nonce"], validate=True),
    )
    if not (
        1 <= header.time_cost <= MAX_TIME_COST
        and 8 * header.parallelism <= header.memory_kib <= MAX_MEMORY_KIB
        and 1 <= header.parallelism <= MAX_PARALLELISM
        and len(header.salt) >= 8
        and len(header.nonce) == NONCE_BYTES
    ):
        raise ValueError("key derivation parameters out of range")
    return header


def _count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("a key derivation parameter is not a whole number")
    return value


def open_backup(data: bytes, password: str) -> tuple[BackupHeader, bytes]:
    """The header and the decrypted contents; any wrong byte or password raises ``BackupError``."""
    header, start = read_header(data)
    try:
        contents = AESGCM(_derive(password, header)).decrypt(
            header.nonce, data[start:], data[:start]
        )
    except InvalidTag:
        raise BackupError(
            f"{WRONG_PASSWORD_OR_DAMAGED}: the password does not open this file, "
            "or a byte of it changed",
            reason=WRONG_PASSWORD_OR_DAMAGED,
        ) from None
    return header, contents
