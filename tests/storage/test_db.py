"""The SQLite owner: private files, migrations once, damaged files refused, work off the loop."""

from __future__ import annotations

import sqlite3
import stat
import threading

import pytest

from panelhub.errors import StateStoreError
from panelhub.storage.db import Database, migration_scripts, transaction


def test_new_database_is_private_and_fully_migrated(tmp_path):
    path = tmp_path / "data" / "state.sqlite"
    db = Database.open(path)
    try:
        version = db.run_sync(lambda c: c.execute("PRAGMA user_version").fetchone()[0])
        tables = db.run_sync(
            lambda c: {row[0] for row in c.execute("SELECT name FROM sqlite_master")}
        )
        mode = db.run_sync(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        db.close()
    assert version == len(migration_scripts()) >= 1
    assert "account" in tables
    assert mode == "wal"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_migrations_run_once(tmp_path):
    path = tmp_path / "state.sqlite"
    Database.open(path).close()
    db = Database.open(path)  # a second open must not re-run CREATE TABLE (it would fail)
    db.close()


def test_missing_file_is_an_error_without_create(tmp_path):
    with pytest.raises(StateStoreError, match="does not exist"):
        Database.open(tmp_path / "state.sqlite", create=False)
    assert not (tmp_path / "state.sqlite").exists()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"this is not a database at all" * 200, id="random"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:100] + bytes(64) + data[164:], id="header-zeroed"),
    ],
)
def test_damaged_file_is_refused(tmp_path, damage):
    path = tmp_path / "state.sqlite"
    db = Database.open(path)
    db.run_sync(lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
    db.close()
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(StateStoreError):
        Database.open(path)


def test_schema_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "state.sqlite"
    Database.open(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 999")
    with pytest.raises(StateStoreError, match="newer PanelHub"):
        Database.open(path)


async def test_run_uses_one_worker_thread_not_the_loop(tmp_path):
    db = Database.open(tmp_path / "state.sqlite")
    try:
        names = {await db.run(lambda _c: threading.current_thread().name) for _ in range(5)}
    finally:
        db.close()
    assert len(names) == 1
    assert names != {threading.current_thread().name}


def test_transaction_rolls_back_on_error(tmp_path):
    db = Database.open(tmp_path / "state.sqlite")

    def failing(connection: sqlite3.Connection) -> None:
        with transaction(connection):
            connection.execute(
                "INSERT INTO account (name, role, created_at) VALUES ('x', 'viewer', 'now')"
            )
            raise RuntimeError("boom")

    try:
        with pytest.raises(RuntimeError):
            db.run_sync(failing)
        count = db.run_sync(lambda c: c.execute("SELECT COUNT(*) FROM account").fetchone()[0])
    finally:
        db.close()
    assert count == 0
