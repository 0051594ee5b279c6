"""Damage to the account store that ``test_accounts`` does not cover: each one fails closed.

Deleted, truncated and garbage stores are in ``test_accounts``. Here: a store emptied to
zero bytes or of its accounts, a lost ``provisioned`` marker beside a store in use, and a
write-ahead log deleted or damaged after the process died right after a password change.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from panelhub.errors import StateStoreError
from panelhub.security.accounts import (
    PROVISIONED_MARKER,
    STATE_FILE,
    AccountStore,
    LoginOutcome,
)
from panelhub.security.audit import AuditEvent, AuditLog, ChainIntact, Outcome
from panelhub.storage.db import Database
from tests.security.password_changer import fast_hasher

REPO = Path(__file__).parents[2]
NEW_PASSWORD = "Switchboard-Room7"  # noqa: S105 - a test password


def provision(data_dir: Path) -> str:
    provisioning = AccountStore.open(data_dir, fast_hasher())
    provisioning.store.close()
    assert provisioning.initial_password is not None
    return provisioning.initial_password


def assert_fails_closed(data_dir: Path) -> None:
    for _ in range(2):  # and the failed attempt did not make the next one succeed
        with pytest.raises(StateStoreError):
            AccountStore.open(data_dir, fast_hasher())


def logins(data_dir: Path, *passwords: str) -> list[bool]:
    async def check() -> list[bool]:
        provisioning = AccountStore.open(data_dir, fast_hasher())
        assert provisioning.initial_password is None
        try:
            return [
                (await provisioning.store.authenticate("admin", password)).outcome
                is LoginOutcome.OK
                for password in passwords
            ]
        finally:
            provisioning.store.close()

    return asyncio.run(check())


def test_a_store_emptied_to_zero_bytes_fails_closed(tmp_path):
    provision(tmp_path)
    (tmp_path / STATE_FILE).write_bytes(b"")
    assert_fails_closed(tmp_path)


def test_a_store_without_accounts_fails_closed(tmp_path):
    provision(tmp_path)
    with sqlite3.connect(tmp_path / STATE_FILE) as connection:
        connection.execute("DELETE FROM account")
    assert_fails_closed(tmp_path)


def test_a_lost_marker_never_erases_a_store_in_use(tmp_path):
    initial = provision(tmp_path)
    db = Database.open(tmp_path / STATE_FILE)
    AuditLog(db).record_sync(AuditEvent.LOGIN_FAILED, outcome=Outcome.FAILURE, user="admin",
                             source="192.0.2.7", interface="web")  # fmt: skip
    db.close()
    (tmp_path / PROVISIONED_MARKER).unlink()
    assert_fails_closed(tmp_path)  # not a first start: no new initial password
    # The accounts and the audit trail are still there for the console recovery to keep.
    recovered, password = AccountStore.recover(tmp_path, fast_hasher())
    try:
        assert AuditLog(recovered.db).verify_sync() == ChainIntact(1)
    finally:
        recovered.close()
    assert logins(tmp_path, initial, password) == [False, True]


def test_a_first_start_that_crashed_before_the_accounts_starts_again(tmp_path):
    Database.open(tmp_path / STATE_FILE).close()  # migrated, no accounts, no marker
    assert provision(tmp_path)


@pytest.mark.parametrize("damage", ["delete", "garbage", "flipped byte"])
def test_a_lost_write_ahead_log_never_brings_the_old_password_back(tmp_path, damage):
    initial = provision(tmp_path)
    killed = subprocess.run(  # the process dies right after the change, its log left behind
        [sys.executable, "-m", "tests.security.password_changer", str(tmp_path),
         "after-commit", initial, NEW_PASSWORD],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert killed.stdout.strip() == "committed", killed.stderr
    log = tmp_path / f"{STATE_FILE}-wal"
    if damage == "delete":
        log.unlink(missing_ok=True)
    elif log.exists() and log.stat().st_size:
        content = bytearray(log.read_bytes())
        if damage == "garbage":
            content[:] = b"\x00garbage" * (len(content) // 8)
        else:
            content[-100] ^= 0xFF
        log.write_bytes(bytes(content))
    assert logins(tmp_path, initial, NEW_PASSWORD) == [False, True]
