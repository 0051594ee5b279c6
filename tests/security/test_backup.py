"""The backup container: it opens only with its password and only unchanged."""

from __future__ import annotations

import datetime as dt
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panelhub.errors import BackupError, WeakPasswordError
from panelhub.security import backup

PASSWORD = "Panel#42"  # noqa: S105 - a test password
NOW = dt.datetime(2026, 11, 29, 5, 0, tzinfo=dt.UTC)
CANARY = b"canary-secret-7f3a9c1e"
CONTENTS = b"config and keys " + CANARY * 10


def sealed(contents: bytes = CONTENTS, password: str = PASSWORD) -> bytes:
    return backup.seal(contents, password, product_version="0.1.0", now=NOW)


GOOD = sealed()


def test_a_backup_opens_with_its_password_to_the_same_contents() -> None:
    header, contents = backup.open_backup(GOOD, PASSWORD)
    assert contents == CONTENTS
    assert header.product_version == "0.1.0"
    assert header.created == "2026-11-29T05:00:00Z"


def test_the_contents_never_appear_in_clear_and_two_backups_differ() -> None:
    again = sealed()
    assert CANARY not in GOOD
    assert CANARY[:8] not in GOOD
    assert again != GOOD  # fresh salt and nonce
    assert backup.open_backup(again, PASSWORD)[1] == CONTENTS


def test_the_header_carries_the_format_and_the_key_derivation_parameters() -> None:
    (length,) = struct.unpack_from(">I", GOOD, 16)
    header = json.loads(GOOD[20 : 20 + length])
    assert header["format"] == 1
    assert header["kdf"]["name"] == "argon2id"
    assert header["kdf"]["memory_kib"] == backup.MEMORY_KIB
    assert header["cipher"]["name"] == "AES-256-GCM"


def test_a_wrong_password_is_refused() -> None:
    with pytest.raises(BackupError) as caught:
        backup.open_backup(GOOD, "Panel#43")
    assert caught.value.reason == "wrong password or damaged file"


@settings(max_examples=40, deadline=None)  # each try derives a key: about 0.1 s
@given(position=st.integers(0, len(GOOD) - 1), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused(position: int, bit: int) -> None:
    flipped = bytearray(GOOD)
    flipped[position] ^= 1 << bit
    with pytest.raises(BackupError):
        backup.open_backup(bytes(flipped), PASSWORD)


@pytest.mark.parametrize("length", [0, 10, 19, 60, len(GOOD) // 2, len(GOOD) - 1])
def test_a_truncated_file_is_refused(length: int) -> None:
    with pytest.raises(BackupError):
        backup.open_backup(GOOD[:length], PASSWORD)


def test_an_oversized_file_is_refused_before_any_key_is_derived() -> None:
    with pytest.raises(BackupError) as caught:
        backup.open_backup(GOOD + bytes(backup.MAX_BACKUP_BYTES), PASSWORD)
    assert caught.value.reason == "too large"


def test_a_random_file_is_not_a_backup() -> None:
    with pytest.raises(BackupError) as caught:
        backup.open_backup(b"PK\x03\x04" + bytes(200), PASSWORD)
    assert caught.value.reason == "not a PanelHub backup"


def _with_header(change: dict[str, object]) -> bytes:
    (length,) = struct.unpack_from(">I", GOOD, 16)
    header = json.loads(GOOD[20 : 20 + length])
    header.update(change)
    text = json.dumps(header).encode()
    return GOOD[:16] + struct.pack(">I", len(text)) + text + GOOD[20 + length :]


def test_a_backup_of_another_format_is_refused_as_incompatible() -> None:
    with pytest.raises(BackupError) as caught:
        backup.open_backup(_with_header({"format": 2, "product_version": "9.0.0"}), PASSWORD)
    assert caught.value.reason == "made by an incompatible version"
    assert "9.0.0" in str(caught.value)


def test_key_derivation_parameters_that_would_exhaust_the_device_are_refused() -> None:
    (length,) = struct.unpack_from(">I", GOOD, 16)
    header = json.loads(GOOD[20 : 20 + length])
    header["kdf"]["memory_kib"] = 64 * 1024 * 1024  # 64 GiB
    with pytest.raises(BackupError):
        backup.open_backup(_with_header({"kdf": header["kdf"]}), PASSWORD)


@pytest.mark.parametrize(
    "password", ["Ab#de", "abcdef#", "ABCDEF#", "Abcdef1", "A" + "b" * 31 + "#"]
)
def test_a_backup_password_outside_the_guide_rule_is_refused(password: str) -> None:
    with pytest.raises(WeakPasswordError):
        sealed(password=password)


def test_a_backup_password_at_the_guide_limits_is_accepted() -> None:
    for password in ("Ab#def", "A" + "b" * 30 + "#"):
        assert backup.open_backup(sealed(password=password), password)[1] == CONTENTS


@pytest.mark.parametrize(
    "change",
    [{"kdf": "[" * 4000}, {"kdf": {"name": "argon2id", "salt": "AAAAAAAAAAA=", "time_cost": 1e999,
                                   "memory_kib": 65536, "parallelism": 1}},
     {"kdf": {"name": "argon2id", "salt": "AAAAAAAAAAA=", "time_cost": True,
              "memory_kib": 65536, "parallelism": 1}}],
)  # fmt: skip
def test_a_header_built_to_crash_the_parser_is_refused_as_damaged(
    change: dict[str, object],
) -> None:
    (length,) = struct.unpack_from(">I", GOOD, 16)
    header = json.loads(GOOD[20 : 20 + length])
    header.update(change)
    text = json.dumps(header).replace('"' + "[" * 4000 + '"', "[" * 4000).encode()
    data = GOOD[:16] + struct.pack(">I", min(len(text), 4096)) + text[:4096] + GOOD[20 + length :]
    with pytest.raises(BackupError):
        backup.open_backup(data, PASSWORD)


def test_a_header_nested_thousands_deep_is_refused_as_damaged() -> None:
    text = b"[" * 4000
    data = GOOD[:16] + struct.pack(">I", len(text)) + text + bytes(64)
    with pytest.raises(BackupError):
        backup.read_header(data)
