"""``panelhub audit verify`` as an operator runs it: a real process on a real data directory."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

from panelhub.security.audit import AuditEvent, AuditLog, Outcome
from panelhub.storage.db import Database


async def panelhub(*args: str, cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "panelhub", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def write_records(data_dir: Path, count: int) -> Path:
    path = data_dir / "state.sqlite"
    db = Database.open(path)
    try:
        log = AuditLog(db)
        for _ in range(count):
            log.record_sync(AuditEvent.ACCOUNT_UNLOCKED, outcome=Outcome.SUCCESS,
                            user="admin", source="", interface="console")  # fmt: skip
    finally:
        db.close()
    return path


async def test_verify_reports_an_intact_log_in_the_default_data_dir(tmp_path: Path):
    write_records(tmp_path / "var", 3)
    code, out, _ = await panelhub("audit", "verify", cwd=tmp_path)
    assert (code, out) == (0, "audit log OK: 3 records\n")


async def test_verify_names_the_deleted_record_with_its_own_exit_code(tmp_path: Path):
    path = write_records(tmp_path / "data", 4)
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TRIGGER audit_record_no_delete")
        connection.execute("DELETE FROM audit_record WHERE id = 2")
    code, out, _ = await panelhub("audit", "verify", "--data-dir", str(tmp_path / "data"),
                                  cwd=tmp_path)  # fmt: skip
    assert code == 4
    assert out == "audit log BROKEN at record 2: is missing: deleted\n"


async def test_verify_without_a_database_fails_without_creating_one(tmp_path: Path):
    code, out, err = await panelhub("audit", "verify", "--data-dir", "nowhere", cwd=tmp_path)
    assert code == 1
    assert out == ""
    assert "state.sqlite does not exist" in err
    assert not (tmp_path / "nowhere" / "state.sqlite").exists()
