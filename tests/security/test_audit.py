"""The audit log: complete records, a chain that names the first tampered record, a bounded
store, writes off the event loop, no secrets, and exports a spreadsheet cannot be tricked by."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import itertools
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panelhub.errors import StateStoreError
from panelhub.security import audit
from panelhub.security.audit import (
    ANONYMOUS,
    AuditEvent,
    AuditFilter,
    AuditLog,
    ChainBroken,
    ChainIntact,
    Outcome,
    unknown_user_label,
)
from panelhub.security.auditchain import digest
from panelhub.storage.db import Database

START = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
GENESIS = "0" * 64


class Clock:
    """One second later at every reading, so each record has its own time."""

    def __init__(self, start: dt.datetime = START) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite"


@pytest.fixture
def db(path: Path) -> Iterator[Database]:
    database = Database.open(path)
    yield database
    database.close()


@pytest.fixture
def log(db: Database) -> AuditLog:
    return AuditLog(db, clock=Clock())


def login(log: AuditLog, user: str = "alice", **details: str | int | bool | None) -> None:
    log.record_sync(AuditEvent.LOGIN_OK, outcome=Outcome.SUCCESS, user=user,
                    source="192.0.2.7", interface="web", details=details)  # fmt: skip


def fill(log: AuditLog, count: int) -> None:
    for number in range(count):
        login(log, f"user{number}", number=number)


Step = str | tuple[str, tuple[object, ...]]


def tamper(path: Path, *steps: Step) -> None:
    """What someone with write access to the file does: drop our guards, change rows."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN")
        connection.execute("DROP TRIGGER IF EXISTS audit_record_no_update")
        connection.execute("DROP TRIGGER IF EXISTS audit_record_no_delete")
        for step in steps:
            sql, parameters = (step, ()) if isinstance(step, str) else step
            connection.execute(sql, parameters)
        connection.execute("COMMIT")
    finally:
        connection.close()


def rehash(path: Path, record_id: int) -> None:
    """Recompute a tampered record's hash, as an attacker who read the code would."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        row = connection.execute(
            "SELECT id, time, event, outcome, user_name, source, interface, details, prev_hash "
            "FROM audit_record WHERE id = ?", (record_id,),
        ).fetchone()  # fmt: skip
    finally:
        connection.close()
    tamper(path, ("UPDATE audit_record SET hash = ? WHERE id = ?", (digest(row), record_id)))


def stored(db: Database, sql: str) -> list[tuple[Any, ...]]:
    return db.run_sync(lambda connection: connection.execute(sql).fetchall())


# --- records ------------------------------------------------------------------------------


async def test_a_record_keeps_every_field_and_links_to_the_one_before(log):
    await log.record(AuditEvent.LOGIN_FAILED, outcome=Outcome.FAILURE, user=None,
                     source="192.0.2.7", interface="web", details={"attempts": 3})  # fmt: skip
    await log.record(AuditEvent.CONFIG_CHANGED, outcome=Outcome.SUCCESS, user="admin",
                     source="198.51.100.1", interface="modbus:up",
                     details={"setting": "web.port", "is_restart": True, "old": None})  # fmt: skip
    newest, oldest = await log.query()
    assert (oldest.id, oldest.time, oldest.event, oldest.outcome, oldest.user) == (
        1, "2024-05-01T12:00:01.000000Z", "login.failed", "failure", ANONYMOUS,
    )  # fmt: skip
    assert (oldest.source, oldest.interface, oldest.details) == (
        "192.0.2.7",
        "web",
        {"attempts": 3},
    )
    assert (newest.id, newest.time, newest.user, newest.interface) == (
        2, "2024-05-01T12:00:02.000000Z", "admin", "modbus:up",
    )  # fmt: skip
    assert newest.details == {"setting": "web.port", "is_restart": True, "old": None}
    assert oldest.prev_hash == GENESIS
    assert newest.prev_hash == oldest.hash
    assert len(newest.hash) == 64
    assert int(newest.hash, 16) >= 0


def test_times_are_utc_with_microseconds_whatever_the_clock_zone(db):
    paris = dt.timezone(dt.timedelta(hours=2))
    moment = dt.datetime(2024, 5, 1, 14, 0, 0, 5, tzinfo=paris)
    log = AuditLog(db, clock=lambda: moment)
    login(log)
    assert stored(db, "SELECT time FROM audit_record") == [("2024-05-01T12:00:00.000005Z",)]


def test_a_naive_clock_is_refused_rather_than_guessed(db):
    log = AuditLog(db, clock=lambda: dt.datetime(2024, 5, 1))  # noqa: DTZ001 - the mistake under test
    with pytest.raises(ValueError, match="timezone-aware"):
        login(log)


def test_event_names_cover_the_security_requirements():
    required = {"login.ok", "login.failed", "login.locked", "account.unlocked", "logout",
                "session.ended", "password.changed", "account.created", "account.changed",
                "config.changed", "service.changed", "certificate.changed", "firmware.accepted",
                "firmware.rejected", "backup.created", "restore.ok", "restore.refused",
                "factory_reset", "process.start", "process.stop", "clock.changed",
                "modbus.refused", "audit.rolled_off"}  # fmt: skip
    assert required <= {event.value for event in AuditEvent}


def test_an_event_name_that_is_not_an_audit_event_is_refused(log):
    with pytest.raises(ValueError, match="not a valid AuditEvent"):
        log.record_sync("login.fial", outcome=Outcome.FAILURE, user=None, source="",
                        interface="web")  # fmt: skip
    assert log.verify_sync() == ChainIntact(0)


def test_each_committed_record_also_goes_to_the_audit_logger_quoted(log, caplog):
    caplog.set_level(logging.INFO, logger="panelhub.audit")
    login(log, "eve\nFAKE login.ok user=admin")
    [line] = [r.getMessage() for r in caplog.records if r.name == "panelhub.audit"]
    assert line.startswith("login.ok success user=")
    assert "\n" not in line
    assert '"eve\\nFAKE login.ok user=admin"' in line


# --- no secrets, no injection -------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["password", "new_password", "api_token", "session_id", "private_key", "secret"]
)
def test_a_detail_key_that_looks_like_a_secret_fails_the_caller(log, key):
    with pytest.raises(ValueError, match="looks like a secret"):
        login(log, **{key: "hunter2"})
    assert log.verify_sync() == ChainIntact(0)


@pytest.mark.parametrize(
    ("details", "error"),
    [
        pytest.param({"Bad Key": 1}, ValueError, id="not-a-name"),
        pytest.param({f"k{n}": n for n in range(17)}, ValueError, id="too-many"),
        pytest.param({"ratio": 0.5}, TypeError, id="float"),
        pytest.param({"items": [1, 2]}, TypeError, id="list"),
    ],
)
def test_details_are_a_few_named_plain_values(log, details, error):
    with pytest.raises(error):
        log.record_sync(AuditEvent.CONFIG_CHANGED, outcome=Outcome.SUCCESS, user="admin",
                        source="", interface="console", details=details)  # fmt: skip


def test_unknown_user_label_is_a_stable_keyed_hash_prefix_not_the_text():
    key = bytes(range(32))
    label = unknown_user_label("Tr0ub4dor&3", key)
    assert label == unknown_user_label("Tr0ub4dor&3", key)
    assert label != unknown_user_label("Tr0ub4dor&4", key)
    assert label != unknown_user_label("Tr0ub4dor&3", bytes(32))  # another installation
    assert label.startswith("unknown#")
    assert len(label) == len("unknown#") + 12
    assert "Tr0ub4dor" not in label
    assert unknown_user_label("\udcff", key).startswith("unknown#")  # undecodable input


def test_a_password_typed_as_the_user_name_never_reaches_the_file(log, db, path):
    typed = "Tr0ub4dor&3-typed-in-the-name-field"
    log.record_sync(AuditEvent.LOGIN_FAILED, outcome=Outcome.FAILURE,
                    user=log.label_unknown_user(typed), source="", interface="web")  # fmt: skip
    db.close()
    files = [path, path.with_name(path.name + "-wal")]
    assert all(typed.encode() not in f.read_bytes() for f in files if f.exists())


async def test_hostile_text_is_stored_and_returned_as_data(log, db):
    hostile = "x'); DROP TABLE audit_record; --\r\n\x00\x1b[31m\"<script>"
    await log.record(AuditEvent.MODBUS_REFUSED, outcome=Outcome.FAILURE, user=hostile,
                     source=hostile, interface="modbus:a", details={"reason": hostile})  # fmt: skip
    [record] = await log.query()
    assert (record.user, record.source, record.details) == (hostile, hostile, {"reason": hostile})
    assert await log.verify() == ChainIntact(1)


def test_long_text_is_cut_and_undecodable_text_kept_visible(log):
    login(log, "n" * 5_000, note="d" * 5_000)
    login(log, "bad\udcffbyte")
    second, first = asyncio.run(log.query())
    assert len(first.user) == audit.MAX_TEXT_CHARS
    assert first.user.endswith("…")
    assert len(str(first.details["note"])) == audit.MAX_DETAIL_CHARS
    assert second.user == "bad\\udcffbyte"


TEXT = st.text(max_size=40)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(user=TEXT, source=TEXT, value=st.one_of(TEXT, st.integers(), st.booleans(), st.none()))
def test_any_text_round_trips_and_keeps_the_chain_intact(log, user, source, value):
    before = log.verify_sync()
    assert isinstance(before, ChainIntact)
    log.record_sync(AuditEvent.CONFIG_CHANGED, outcome=Outcome.SUCCESS, user=user,
                    source=source, interface="web", details={"value": value})  # fmt: skip
    [record] = asyncio.run(log.query(limit=1))
    clean = user.encode("utf-8", "backslashreplace").decode()
    assert record.user == clean[: audit.MAX_TEXT_CHARS]
    assert record.details["value"] == (
        value.encode("utf-8", "backslashreplace").decode() if isinstance(value, str) else value
    )
    assert log.verify_sync() == ChainIntact(before.count + 1)


# --- verify: the first bad record ---------------------------------------------------------


def test_an_untouched_log_verifies_with_its_count(log):
    assert log.verify_sync() == ChainIntact(0)
    fill(log, 5)
    assert log.verify_sync() == ChainIntact(5)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("time", "2024-01-01T00:00:00.000000Z", "edited"),
        ("event", "logout", "edited"),
        ("outcome", "failure", "edited"),
        ("user_name", "mallory", "edited"),
        ("source", "10.0.0.1", "edited"),
        ("interface", "console", "edited"),
        ("details", "{}", "edited"),
        ("hash", "f" * 64, "edited"),
        ("prev_hash", "e" * 64, "does not follow"),
    ],
)
def test_an_edited_field_is_named_at_its_record(log, path, column, value, reason):
    fill(log, 5)
    # A column name cannot be a parameter; it comes from the table above, not from input.
    tamper(path, (f"UPDATE audit_record SET {column} = ? WHERE id = 3", (value,)))  # noqa: S608
    result = log.verify_sync()
    assert isinstance(result, ChainBroken)
    assert result.record_id == 3
    assert reason in result.reason


@pytest.mark.parametrize(("deleted", "reason"), [(1, "deleted"), (3, "deleted"), (5, "newest")])
def test_a_deleted_record_is_named_wherever_it_was(log, path, deleted, reason):
    fill(log, 5)
    tamper(path, ("DELETE FROM audit_record WHERE id = ?", (deleted,)))
    result = log.verify_sync()
    assert isinstance(result, ChainBroken)
    assert result.record_id == deleted
    assert reason in result.reason


def test_swapped_ids_are_named_at_the_first_moved_record(log, path):
    fill(log, 5)
    tamper(path, "UPDATE audit_record SET id = -1 WHERE id = 2",
                 "UPDATE audit_record SET id = 2 WHERE id = 3",
                 "UPDATE audit_record SET id = 3 WHERE id = -1")  # fmt: skip
    assert log.verify_sync() == ChainBroken(
        2, "does not follow the record before it: reordered, or that one replaced"
    )


def test_an_edit_with_a_recomputed_hash_still_breaks_the_next_link(log, path):
    fill(log, 5)
    tamper(path, "UPDATE audit_record SET user_name = 'mallory' WHERE id = 2")
    rehash(path, 2)
    assert log.verify_sync() == ChainBroken(
        3, "does not follow the record before it: reordered, or that one replaced"
    )


def test_the_newest_record_replaced_with_a_recomputed_hash_is_seen(log, path):
    fill(log, 5)
    tamper(path, "UPDATE audit_record SET outcome = 'failure' WHERE id = 5")
    rehash(path, 5)
    result = log.verify_sync()
    assert result == ChainBroken(5, "is not the record that was written last: replaced")


@pytest.mark.parametrize(("forged_id", "reason"), [(0, "older than the start"), (6, "newer")])
def test_an_inserted_record_is_named(log, path, forged_id, reason):
    fill(log, 5)
    tamper(path, ("INSERT INTO audit_record SELECT ?, time, event, outcome, user_name, source, "
                  "interface, details, prev_hash, hash FROM audit_record WHERE id = 5",
                  (forged_id,)))  # fmt: skip
    result = log.verify_sync()
    assert isinstance(result, ChainBroken)
    assert result.record_id == forged_id
    assert reason in result.reason


def test_a_missing_anchor_breaks_verify_and_stops_writes(log, path):
    fill(log, 2)
    tamper(path, "DELETE FROM audit_anchor")
    assert log.verify_sync() == ChainBroken(
        0, "the chain anchor is missing: the chain's start and end are lost"
    )
    with pytest.raises(StateStoreError, match="anchor is missing"):
        login(log)


def test_our_own_code_cannot_edit_or_delete_live_records(log, db):
    fill(log, 3)

    def edit(connection: sqlite3.Connection) -> None:
        connection.execute("UPDATE audit_record SET user_name = 'x' WHERE id = 1")

    def delete(connection: sqlite3.Connection) -> None:
        connection.execute("DELETE FROM audit_record WHERE id = 1")

    with pytest.raises(sqlite3.IntegrityError, match="never edited"):
        db.run_sync(edit)
    with pytest.raises(sqlite3.IntegrityError, match="only deleted by roll-off"):
        db.run_sync(delete)
    assert log.verify_sync() == ChainIntact(3)


# --- bounded store ------------------------------------------------------------------------


def test_a_full_store_rolls_off_the_oldest_tenth_and_says_so(db, caplog):
    log = AuditLog(db, max_records=20, clock=Clock())
    fill(log, 20)
    with caplog.at_level(logging.WARNING, logger="panelhub.security.audit"):
        fill(log, 1)
    ids = [row[0] for row in stored(db, "SELECT id FROM audit_record ORDER BY id")]
    assert ids == list(range(3, 23))
    rolled = stored(
        db, "SELECT details, user_name FROM audit_record WHERE event = 'audit.rolled_off'"
    )
    assert rolled == [('{"count":2,"first_id":1,"last_id":2}', "system")]
    assert "rolled off records 1 to 2" in caplog.text
    assert log.verify_sync() == ChainIntact(20)


def test_the_store_never_exceeds_its_bound_and_stays_verifiable(db):
    log = AuditLog(db, max_records=20, clock=Clock())
    for _ in range(6):
        fill(log, 15)
        count = stored(db, "SELECT COUNT(*) FROM audit_record")[0][0]
        assert count <= 20
        assert log.verify_sync() == ChainIntact(count)
    assert count == 20


def test_after_roll_off_the_oldest_remaining_record_is_still_guarded(db, path):
    log = AuditLog(db, max_records=20, clock=Clock())
    fill(log, 25)
    first = stored(db, "SELECT MIN(id) FROM audit_record")[0][0]
    tamper(path, ("DELETE FROM audit_record WHERE id = ?", (first,)))
    assert log.verify_sync() == ChainBroken(first, "is missing: deleted")


def test_old_records_deleted_with_the_anchor_moved_are_seen(db, path):
    log = AuditLog(db, max_records=20, clock=Clock())
    fill(log, 25)
    first = stored(db, "SELECT MIN(id) FROM audit_record")[0][0]
    kept = first + 2
    tamper(path, ("DELETE FROM audit_record WHERE id < ?", (kept,)),
                 ("UPDATE audit_anchor SET first_id = ?, first_prev_hash = "
                  "(SELECT prev_hash FROM audit_record WHERE id = ?)", (kept, kept)))  # fmt: skip
    result = log.verify_sync()
    assert isinstance(result, ChainBroken)
    assert result.record_id == first
    assert "no roll-off record" in result.reason


def test_old_records_deleted_before_any_roll_off_are_seen(log, path):
    fill(log, 5)
    tamper(path, "DELETE FROM audit_record WHERE id = 1",
                 "UPDATE audit_anchor SET first_id = 2, "
                 "first_prev_hash = (SELECT prev_hash FROM audit_record WHERE id = 2)")  # fmt: skip
    result = log.verify_sync()
    assert isinstance(result, ChainBroken)
    assert result.record_id == 1


def test_a_tampered_roll_off_record_does_not_vouch_for_the_start(db, path):
    log = AuditLog(db, max_records=20, clock=Clock())
    fill(log, 21)
    tamper(path, "UPDATE audit_record SET details = 'not json' WHERE event = 'audit.rolled_off'")
    result = log.verify_sync()
    assert isinstance(result, ChainBroken)
    assert result.record_id == 1


def test_damage_at_the_roll_off_boundary_is_not_rolled_away(db, path):
    log = AuditLog(db, max_records=20, clock=Clock())
    fill(log, 20)
    tamper(path, "DELETE FROM audit_record WHERE id = 2")
    fill(log, 1)  # rolls off 1 and 2: the boundary record is the one deleted
    result = log.verify_sync()
    assert isinstance(result, ChainBroken)
    assert result.record_id == 3


def test_max_records_has_a_floor(db):
    with pytest.raises(ValueError, match="at least 20"):
        AuditLog(db, max_records=19)


def test_two_processes_appending_at_once_keep_one_chain(path, db):
    """The console command writes while the service runs: two connections, two threads."""
    other = Database.open(path)
    logs = [AuditLog(db), AuditLog(other)]

    def write(log: AuditLog) -> None:
        fill(log, 25)

    threads = [threading.Thread(target=write, args=(log,)) for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.close()
    assert logs[0].verify_sync() == ChainIntact(50)


# --- never blocking the event loop --------------------------------------------------------


@pytest.fixture
def blocked(db: Database) -> Iterator[threading.Event]:
    """Hold the database thread, as a slow fsync would; released at the end of the test."""
    gate = threading.Event()
    db.submit(lambda _connection: gate.wait(5))
    yield gate
    gate.set()


async def test_record_waits_for_the_database_without_stalling_the_loop(log, blocked):
    task = asyncio.create_task(log.record(AuditEvent.LOGOUT, outcome=Outcome.SUCCESS,
                                          user="alice", source="", interface="web"))  # fmt: skip
    await asyncio.sleep(0.05)  # the loop runs other work meanwhile
    assert not task.done()
    blocked.set()
    await task
    assert [r.event for r in await log.query()] == ["logout"]


async def test_emit_returns_at_once_and_the_record_follows(log, blocked):
    log.emit(AuditEvent.MODBUS_REFUSED, outcome=Outcome.FAILURE, user=None,
             source="192.0.2.9", interface="modbus:up", details={"function_code": 6})  # fmt: skip
    blocked.set()
    [record] = await log.query()
    assert (record.event, record.interface, record.details) == (
        "modbus.refused", "modbus:up", {"function_code": 6},
    )  # fmt: skip


async def test_emit_counts_what_a_full_queue_drops_and_records_it(
    log, blocked, caplog, monkeypatch
):
    monkeypatch.setattr(audit, "MAX_PENDING_EMITS", 3)
    for number in range(8):
        log.emit(AuditEvent.MODBUS_REFUSED, outcome=Outcome.FAILURE, user=None,
                 source="192.0.2.9", interface="modbus:up", details={"number": number})  # fmt: skip
    assert caplog.text.count("audit queue full") == 1  # once, not once per record
    blocked.set()
    await log.query()  # queued behind the emits: they are all written now
    log.emit(AuditEvent.MODBUS_REFUSED, outcome=Outcome.FAILURE, user=None,
             source="192.0.2.9", interface="modbus:up", details={"number": 8})  # fmt: skip
    records = list(reversed(await log.query()))
    assert [(r.event, r.details) for r in records] == [
        ("modbus.refused", {"number": 0}),
        ("modbus.refused", {"number": 1}),
        ("modbus.refused", {"number": 2}),
        ("audit.dropped", {"count": 5}),
        ("modbus.refused", {"number": 8}),
    ]
    assert await log.verify() == ChainIntact(5)


def test_emit_never_raises_and_logs_a_refused_record_without_its_values(log, caplog):
    log.emit(AuditEvent.PASSWORD_CHANGED, outcome=Outcome.SUCCESS, user="alice", source="",
             interface="web", details={"new_password": "hunter2"})  # fmt: skip
    assert "password.changed refused" in caplog.text
    assert "hunter2" not in caplog.text
    assert log.verify_sync() == ChainIntact(0)


def test_emit_logs_a_failed_write(log, db, path, caplog):
    tamper(path, "DROP TABLE audit_record")
    log.emit(AuditEvent.PROCESS_STOP, outcome=Outcome.SUCCESS, user=None, source="",
             interface="service")  # fmt: skip
    db.run_sync(lambda _connection: None)  # the write and its callback are done
    assert "audit record process.stop not written: no such table: audit_record" in caplog.text


def test_emit_after_close_logs_instead_of_raising(path, caplog):
    database = Database.open(path)
    log = AuditLog(database)
    database.close()
    log.emit(AuditEvent.PROCESS_STOP, outcome=Outcome.SUCCESS, user=None, source="",
             interface="service")  # fmt: skip
    assert "not written: the database is closed" in caplog.text


async def test_database_failures_become_state_store_errors(log, path):
    tamper(path, "DROP TABLE audit_record")
    with pytest.raises(StateStoreError, match="no such table"):
        await log.record(AuditEvent.LOGOUT, outcome=Outcome.SUCCESS, user="alice", source="",
                         interface="web")  # fmt: skip
    with pytest.raises(StateStoreError):
        await log.verify()
    with pytest.raises(StateStoreError):
        log.verify_sync()
    with pytest.raises(StateStoreError):
        await log.query()


# --- query and export ---------------------------------------------------------------------


@pytest.fixture
def mixed(log: AuditLog) -> AuditLog:
    """Ten records over ten seconds: alice's logins, bob's failures, one config change."""
    for number in range(10):
        if number == 9:
            event, outcome, user = AuditEvent.CONFIG_CHANGED, Outcome.SUCCESS, "=HYPERLINK(1)"
        elif number % 2:
            event, outcome, user = AuditEvent.LOGIN_FAILED, Outcome.FAILURE, "bob"
        else:
            event, outcome, user = AuditEvent.LOGIN_OK, Outcome.SUCCESS, "alice"
        log.record_sync(event, outcome=outcome, user=user, source="@SUM(A1)", interface="web",
                        details={"number": number})  # fmt: skip
    return log


def numbers(records) -> list[int]:
    return [int(r.details["number"]) for r in records]


async def test_query_returns_newest_first_with_filters_and_paging(mixed):
    assert numbers(await mixed.query()) == list(range(9, -1, -1))
    assert numbers(await mixed.query(AuditFilter(user="bob"))) == [7, 5, 3, 1]
    assert numbers(await mixed.query(AuditFilter(outcome=Outcome.SUCCESS), limit=3)) == [9, 8, 6]
    assert numbers(await mixed.query(AuditFilter(event=AuditEvent.LOGIN_OK))) == [8, 6, 4, 2, 0]
    window = AuditFilter(
        since=START + dt.timedelta(seconds=3), until=START + dt.timedelta(seconds=6)
    )
    assert numbers(await mixed.query(window)) == [4, 3, 2]  # since inclusive, until exclusive
    first_page = await mixed.query(limit=4)
    next_page = await mixed.query(limit=4, before_id=first_page[-1].id)
    assert numbers(first_page + next_page) == list(range(9, 1, -1))


@pytest.mark.parametrize("limit", [0, audit.MAX_QUERY_LIMIT + 1])
async def test_query_limit_is_bounded(log, limit):
    with pytest.raises(ValueError, match="limit"):
        await log.query(limit=limit)


async def test_query_refuses_a_naive_time(log):
    with pytest.raises(ValueError, match="timezone-aware"):
        await log.query(AuditFilter(since=dt.datetime(2024, 5, 1)))  # noqa: DTZ001 - under test


def test_csv_export_has_a_header_oldest_first_and_no_live_formulas(mixed):
    rows = list(csv.reader(io.StringIO("".join(mixed.export_csv()))))
    assert rows[0] == ["id", "time", "event", "outcome", "user", "source", "interface",
                       "details", "prev_hash", "hash"]  # fmt: skip
    assert [row[0] for row in rows[1:]] == [str(n) for n in range(1, 11)]
    last = dict(zip(rows[0], rows[-1], strict=True))
    assert last["user"] == "'=HYPERLINK(1)"
    assert last["source"] == "'@SUM(A1)"
    assert json.loads(last["details"]) == {"number": 9}
    assert all(cell[:1] not in "=+-@\t\r" for row in rows for cell in row if cell)


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@A1", "\tx", "\rx"])
def test_csv_neutralises_every_formula_prefix(log, text):
    login(log, text)
    rows = list(csv.reader(io.StringIO("".join(log.export_csv()))))
    assert rows[1][4] == "'" + text


def test_exports_stream_in_pages_and_take_the_same_filters(mixed, monkeypatch):
    monkeypatch.setattr(audit, "EXPORT_PAGE_ROWS", 2)
    chunks = list(mixed.export_csv(AuditFilter(user="alice")))
    assert len(chunks) == 4  # header with the first page, two more pages, the empty tail
    assert len(list(csv.reader(io.StringIO("".join(chunks))))) == 1 + 5
    records = json.loads("".join(mixed.export_json(AuditFilter(user="bob"))))
    assert [r["details"]["number"] for r in records] == [1, 3, 5, 7]


def test_json_export_is_one_valid_array_with_the_chain_fields(mixed):
    records = json.loads("".join(mixed.export_json()))
    assert [r["id"] for r in records] == list(range(1, 11))
    assert records[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(records))
    assert records[9]["user"] == "=HYPERLINK(1)"  # JSON is data to a program: left as typed


def test_empty_exports_are_still_well_formed(log):
    assert json.loads("".join(log.export_json())) == []
    assert list(csv.reader(io.StringIO("".join(log.export_csv()))))[1:] == []


def test_an_export_stops_at_the_record_that_was_newest_when_it_began(mixed, monkeypatch):
    monkeypatch.setattr(audit, "EXPORT_PAGE_ROWS", 4)
    chunks = mixed.export_json()
    first = next(chunks)
    fill(mixed, 5)  # written while the export is under way
    assert len(json.loads(first + "".join(chunks))) == 10


@pytest.mark.parametrize("text", ['["not an object"]', "{not json"])
async def test_a_tampered_details_text_is_shown_not_fatal(log, path, text):
    login(log, number=1)
    tamper(path, ("UPDATE audit_record SET details = ? WHERE id = 1", (text,)))
    [record] = await log.query()
    assert record.details == {"unreadable": text}
    [exported] = json.loads("".join(log.export_json()))
    assert exported["details"] == {"unreadable": text}
