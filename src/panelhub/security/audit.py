"""The audit log: who did what, when, from where, through which interface, with what outcome.

Theory of operation:
- Records live in ``state.sqlite`` as a hash chain (``auditchain`` says how, and what
  ``verify`` can and cannot detect). Every read and write runs on the database's worker
  thread, never on the event loop: ``record`` awaits the write, ``emit`` queues it and returns
  at once (synchronous callbacks: the Modbus gateway's refusal path), ``record_sync`` is for
  the console commands.
- Bounded: once ``max_records`` are stored, the oldest tenth rolls off in the same transaction
  as the next record, and an ``audit.rolled_off`` record says how many and which ids. A full
  store never fails a caller.
- No secrets and no injection: detail keys that look like secrets are refused (a caller's
  mistake fails its tests), a name typed at a failed login is kept only as a keyed hash
  prefix (``label_unknown_user``, the key in ``auditkey``), details are stored as JSON,
  exports neutralise spreadsheet formulas, and the ``panelhub.audit`` log line quotes every
  text it carries.
- Every record also goes to the ``panelhub.audit`` logger once committed: a copy outside the
  database, which is what shows a chain rewritten by someone who could write the file.

Size: over the 400-line target because it is one API (write, query, export) over one filter
and record type; the chain itself is in ``auditchain``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any, Final, TypeAlias

from panelhub.errors import StateStoreError
from panelhub.security import auditchain
from panelhub.security.auditchain import ChainBroken, ChainIntact, Fields, Row, VerifyResult
from panelhub.security.auditkey import load_or_create_key
from panelhub.storage.db import Database, transaction

__all__ = [
    "ANONYMOUS",
    "AuditEvent",
    "AuditFilter",
    "AuditLog",
    "AuditRecord",
    "ChainBroken",
    "ChainIntact",
    "DetailValue",
    "Outcome",
    "VerifyResult",
    "encode_details",
    "format_time",
    "unknown_user_label",
]

logger = logging.getLogger(__name__)
#: The security-event log stream (CONVENTIONS.md §9): one line per committed record.
trail = logging.getLogger("panelhub.audit")

DetailValue: TypeAlias = str | int | bool | None

#: The acting user when nobody is logged in (a failed login names the attempted account).
ANONYMOUS: Final = "anonymous"
#: Who rolls records off: the audit log itself.
SYSTEM: Final = "system"
#: Some 22 MB on disk (measured with typical records): small for an SD card, and ``verify``
#: walks it in about 0.35 s on a desktop CPU (a few times that on a Raspberry Pi class board).
DEFAULT_MAX_RECORDS: Final = 100_000
#: Roll-off deletes max_records // 10 at a time (not one per insert), and at least two, so the
#: store stays within max_records though each roll-off adds its own record.
ROLL_OFF_DIVISOR: Final = 10
MIN_MAX_RECORDS: Final = 20
#: A flood of refused Modbus requests must not queue writes without bound: beyond this many
#: waiting ``emit`` writes, records are counted and dropped, and an ``audit.dropped`` record
#: with the count goes in as soon as there is room.
MAX_PENDING_EMITS: Final = 1_000
#: Text is cut, not refused: a long name typed by a client must not prevent its own record.
MAX_TEXT_CHARS: Final = 200
MAX_DETAIL_CHARS: Final = 500
#: Details are a few facts about the event, not a payload.
MAX_DETAILS: Final = 16
DETAIL_KEY: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: Substrings of detail keys refused outright: audit records never hold secrets.
SECRET_WORDS: Final = ("password", "secret", "token", "session", "key")
#: Hex digits of HMAC-SHA256 kept for an unknown login name: enough to tell attempts apart.
UNKNOWN_USER_HEX: Final = 12
DEFAULT_QUERY_LIMIT: Final = 100
#: One page of the logs page at most; exports stream instead.
MAX_QUERY_LIMIT: Final = 1_000
#: Rows read per database call while exporting: memory stays flat whatever the log size.
EXPORT_PAGE_ROWS: Final = 500
#: A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")
#: The columns of ``audit_record`` in order, with ``user_name`` shown as "user".
EXPORT_FIELDS: Final = (
    "id",
    "time",
    "event",
    "outcome",
    "user",
    "source",
    "interface",
    "details",
    "prev_hash",
    "hash",
)

# Fixed SQL (no string building): an absent filter is a NULL parameter.
_FILTERED = (
    "SELECT id, time, event, outcome, user_name, source, interface, details, prev_hash, hash "
    "FROM audit_record WHERE (:since IS NULL OR time >= :since) "
    "AND (:until IS NULL OR time < :until) AND (:event IS NULL OR event = :event) "
    "AND (:user IS NULL OR user_name = :user) AND (:outcome IS NULL OR outcome = :outcome) "
    "AND (:source IS NULL OR source = :source) "
)
_NEWEST_FIRST = _FILTERED + "AND id < :bound ORDER BY id DESC LIMIT :limit"
_OLDEST_FIRST = _FILTERED + "AND id > :bound AND id <= :upto ORDER BY id LIMIT :limit"


class AuditEvent(StrEnum):
    LOGIN_OK = "login.ok"
    LOGIN_FAILED = "login.failed"
    LOGIN_LOCKED = "login.locked"
    ACCOUNT_UNLOCKED = "account.unlocked"
    LOGOUT = "logout"
    SESSION_ENDED = "session.ended"  # by an admin
    PASSWORD_CHANGED = "password.changed"  # noqa: S105 - an event name, not a password
    ACCOUNT_CREATED = "account.created"
    ACCOUNT_CHANGED = "account.changed"
    CONFIG_CHANGED = "config.changed"  # the setting's name, never a secret value
    SERVICE_CHANGED = "service.changed"
    CERTIFICATE_CHANGED = "certificate.changed"
    FIRMWARE_ACCEPTED = "firmware.accepted"
    FIRMWARE_REJECTED = "firmware.rejected"
    INTEGRITY_FAILED = "integrity.failed"  # the start-up check found changed code
    BACKUP_CREATED = "backup.created"
    RESTORE_OK = "restore.ok"
    RESTORE_REFUSED = "restore.refused"
    FACTORY_RESET = "factory_reset"
    PROCESS_START = "process.start"
    PROCESS_STOP = "process.stop"
    CLOCK_CHANGED = "clock.changed"
    MODBUS_REFUSED = "modbus.refused"
    AUDIT_ROLLED_OFF = auditchain.ROLLED_OFF_EVENT
    AUDIT_DROPPED = "audit.dropped"  # emit's queue was full
    AUDIT_EXPORTED = "audit.exported"  # a download of the log: who took a copy, and of what
    DATA_EXPORTED = "data.exported"  # a CSV of logged data: who took which device's, which days


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    #: UTC, ISO 8601 with microseconds and "Z", exactly as hashed.
    time: str
    #: ``str``, not ``AuditEvent``: a record written by a newer version still reads.
    event: str
    outcome: str
    user: str
    source: str
    interface: str
    details: Mapping[str, DetailValue]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilter:
    """What the logs page and the exports select; ``None`` selects everything."""

    #: Inclusive; aware datetimes (compared in UTC).
    since: dt.datetime | None = None
    #: Exclusive.
    until: dt.datetime | None = None
    event: AuditEvent | None = None
    user: str | None = None
    outcome: Outcome | None = None
    #: The client address exactly as recorded.
    source: str | None = None

    def parameters(self) -> dict[str, str | None]:
        return {
            "since": None if self.since is None else format_time(self.since),
            "until": None if self.until is None else format_time(self.until),
            "event": self.event,
            "user": self.user,
            "outcome": self.outcome,
            "source": self.source,
        }


def unknown_user_label(typed_name: str, key: bytes) -> str:
    """How a failed login with an unknown name is recorded: never the text itself.

    People type their password into the name field; the label lets repeated attempts be
    told apart without storing what was typed, and without ``key`` (``auditkey``) it cannot
    be turned back into the text by trying candidates.
    """
    typed = typed_name.encode("utf-8", "surrogatepass")
    return "unknown#" + hmac.new(key, typed, hashlib.sha256).hexdigest()[:UNKNOWN_USER_HEX]


def format_time(moment: dt.datetime) -> str:
    """Fixed-width UTC text, so that text order is time order (the filters rely on it).

    Raises:
        ValueError: ``moment`` is naive: its time zone would be a guess.

    """
    if moment.utcoffset() is None:
        raise ValueError("audit times must be timezone-aware")
    utc = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def encode_details(details: Mapping[str, DetailValue]) -> str:
    """Canonical JSON (sorted keys, ASCII escapes): the same bytes to hash on every read.

    Raises:
        ValueError: too many details, a key that is not a short lower-case name, or one that
            looks like a secret.
        TypeError: a value that is not str, int, bool or None.

    """
    if len(details) > MAX_DETAILS:
        raise ValueError(f"at most {MAX_DETAILS} details, got {len(details)}")
    clean: dict[str, DetailValue] = {}
    for key, value in details.items():
        if not DETAIL_KEY.fullmatch(key):
            raise ValueError(f"detail key {key!r} is not a short lower-case name")
        if any(word in key for word in SECRET_WORDS):
            raise ValueError(f"detail key {key!r} looks like a secret: never audited")
        if value is not None and not isinstance(value, str | int):
            raise TypeError(f"detail {key!r} is a {type(value).__name__}, not str/int/bool/None")
        clean[key] = _text(value, MAX_DETAIL_CHARS) if isinstance(value, str) else value
    return json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _text(value: str, limit: int) -> str:
    # A lone surrogate (from undecodable bytes) cannot be stored as UTF-8: keep it visible.
    text = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _load_details(text: str) -> dict[str, DetailValue]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    # Only a tampered row is not a JSON object: show what is there rather than fail the page.
    return value if isinstance(value, dict) else {"unreadable": text}


def _record(row: Row) -> AuditRecord:
    record_id, time, event, outcome, user, source, interface, details, prev_hash, hash_ = row
    return AuditRecord(record_id, time, event, outcome, user, source, interface,
                       _load_details(details), prev_hash, hash_)  # fmt: skip


@contextlib.contextmanager
def _store_errors(db: Database) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StateStoreError(f"audit log: {exc}", path=db.path) from exc


class AuditLog:
    """The audit log in one ``Database``; share the instance, it is safe from any thread."""

    def __init__(
        self,
        db: Database,
        *,
        max_records: int = DEFAULT_MAX_RECORDS,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        """Open the log in ``db``, whose migrations created its tables.

        Args:
            db: the state database, shared with the accounts.
            max_records: how many records to keep before the oldest roll off.
            clock: returns an aware datetime; tests inject a fixed one.

        Raises:
            ValueError: ``max_records`` is below ``MIN_MAX_RECORDS``.

        """
        if max_records < MIN_MAX_RECORDS:
            raise ValueError(f"max_records must be at least {MIN_MAX_RECORDS}")
        self._db = db
        self._max_records = max_records
        self._roll_off_count = max_records // ROLL_OFF_DIVISOR
        self._clock = clock
        self._lock = threading.Lock()  # emit runs on the caller's thread, its callback on ours
        self._pending = 0
        self._dropped = 0
        self._label_key: bytes | None = None

    def label_unknown_user(self, typed_name: str) -> str:
        """``unknown_user_label`` with this installation's key, next to the database.

        The key is read (or made) on the first call: a few bytes from the data directory,
        once, on the caller's thread.

        Raises:
            StateStoreError: the key file cannot be read, written, or is damaged.

        """
        with self._lock:
            if self._label_key is None:
                self._label_key = load_or_create_key(self._db.path.parent)
            key = self._label_key
        return unknown_user_label(typed_name, key)

    async def record(
        self,
        event: AuditEvent,
        *,
        outcome: Outcome,
        user: str | None,
        source: str,
        interface: str,
        details: Mapping[str, DetailValue] | None = None,
    ) -> None:
        """Write one record and wait until it is committed.

        Args:
            event: what happened.
            outcome: whether it succeeded.
            user: the acting account's name, ``label_unknown_user(...)`` for a name that is
                not an account, or ``None`` for ``"anonymous"``.
            source: the client's address ("" when there is none, as for the service itself).
            interface: "web", "console", "modbus:<listener name>", "service".
            details: a few facts, never secrets; stored as JSON.

        Raises:
            ValueError: details that break the rules of ``encode_details``.
            TypeError: a detail value that is not str, int, bool or None.
            StateStoreError: the database refused the write (disk full, damaged file).

        """
        entry = self._fields(event, outcome, user, source, interface, details)
        with _store_errors(self._db):
            await self._db.run(partial(self._append, [entry]))

    def record_sync(
        self,
        event: AuditEvent,
        *,
        outcome: Outcome,
        user: str | None,
        source: str,
        interface: str,
        details: Mapping[str, DetailValue] | None = None,
    ) -> None:
        """``record`` for code without an event loop (console commands); blocks until written."""
        entry = self._fields(event, outcome, user, source, interface, details)
        with _store_errors(self._db):
            self._db.run_sync(partial(self._append, [entry]))

    def emit(
        self,
        event: AuditEvent,
        *,
        outcome: Outcome,
        user: str | None,
        source: str,
        interface: str,
        details: Mapping[str, DetailValue] | None = None,
    ) -> None:
        """Queue one record and return at once; never raises.

        For synchronous code on the event loop, where waiting for an fsync would stall every
        Modbus client. A record that cannot be written is logged (its event, not its
        contents) on this module's logger.
        """
        try:
            entry = self._fields(event, outcome, user, source, interface, details)
        except (ValueError, TypeError):
            logger.exception("audit record %s refused", event)
            return
        entries = self._admit(entry)
        if not entries:
            return
        try:
            future = self._db.submit(partial(self._append, entries))
        except RuntimeError:  # the database is closed: the service is stopping
            self._settle()
            logger.error("audit record %s not written: the database is closed", event)  # noqa: TRY400 - no traceback to show
            return
        future.add_done_callback(partial(self._emitted, event))

    async def verify(self) -> VerifyResult:
        """Walk the whole chain; it holds the database thread (``DEFAULT_MAX_RECORDS``)."""
        with _store_errors(self._db):
            return await self._db.run(auditchain.verify)

    def verify_sync(self) -> VerifyResult:
        with _store_errors(self._db):
            return self._db.run_sync(auditchain.verify)

    async def query(
        self,
        filters: AuditFilter | None = None,
        *,
        limit: int = DEFAULT_QUERY_LIMIT,
        before_id: int | None = None,
    ) -> list[AuditRecord]:
        """Newest first: one page of the logs page; the next page passes the last id shown.

        Raises:
            ValueError: ``limit`` outside 1..``MAX_QUERY_LIMIT``, or a naive time filter.

        """
        if not 1 <= limit <= MAX_QUERY_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_QUERY_LIMIT}")
        parameters: dict[str, Any] = (filters or AuditFilter()).parameters()
        parameters.update(limit=limit, bound=before_id if before_id is not None else 2**63 - 1)
        with _store_errors(self._db):
            rows = await self._db.run(partial(_select, _NEWEST_FIRST, parameters))
        return [_record(row) for row in rows]

    def export_csv(self, filters: AuditFilter | None = None) -> Iterator[str]:
        """CSV chunks, oldest first, header row first; formulas neutralised.

        Blocks on the database for each page: iterate off the event loop (Starlette's
        ``StreamingResponse`` runs a plain iterator in a worker thread).
        """
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_FIELDS)
        for page in self._pages(filters):
            writer.writerows([_csv_cell(value) for value in row] for row in page)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()  # the header alone when nothing matched

    def export_json(self, filters: AuditFilter | None = None) -> Iterator[str]:
        """Chunks of one JSON array of records, oldest first (blocking as ``export_csv``)."""
        separator = "[\n"
        for page in self._pages(filters):
            chunk = []
            for row in page:
                item: dict[str, object] = dict(zip(EXPORT_FIELDS, row, strict=True))
                item["details"] = _load_details(row[7])
                chunk.append(separator + json.dumps(item, ensure_ascii=True))
                separator = ",\n"
            yield "".join(chunk)
        yield "[]\n" if separator == "[\n" else "\n]\n"

    def _pages(self, filters: AuditFilter | None) -> Iterator[list[Row]]:
        parameters: dict[str, Any] = (filters or AuditFilter()).parameters()
        # Stop at the newest record when the export began: a busy log cannot make it endless.
        with _store_errors(self._db):
            upto = self._db.run_sync(_head_id)
        parameters.update(limit=EXPORT_PAGE_ROWS, bound=0, upto=upto)
        while True:
            with _store_errors(self._db):
                rows = self._db.run_sync(partial(_select, _OLDEST_FIRST, dict(parameters)))
            if not rows:
                return
            yield rows
            parameters["bound"] = rows[-1][0]

    def _fields(
        self,
        event: AuditEvent,
        outcome: Outcome,
        user: str | None,
        source: str,
        interface: str,
        details: Mapping[str, DetailValue] | None,
    ) -> Fields:
        return (
            format_time(self._clock()),
            AuditEvent(event).value,  # a plain str from an untyped caller is checked here
            Outcome(outcome).value,
            _text(ANONYMOUS if user is None else user, MAX_TEXT_CHARS),
            _text(source, MAX_TEXT_CHARS),
            _text(interface, MAX_TEXT_CHARS),
            encode_details(details or {}),
        )

    def _append(self, entries: Sequence[Fields], connection: sqlite3.Connection) -> None:
        """On the database thread: append ``entries`` in one transaction, rolling off first."""
        written: list[Row] = []
        with transaction(connection):
            anchor = auditchain.read_anchor(connection)
            if anchor is None:
                raise StateStoreError("the audit chain anchor is missing", path=self._db.path)
            for entry in entries:
                if anchor.count >= self._max_records:
                    anchor, row = self._roll_off(connection, anchor)
                    written.append(row)
                anchor, row = auditchain.append(connection, anchor, entry)
                written.append(row)
        for row in written:  # only once committed: the trail never shows a rolled-back record
            trail.info(
                "%s %s user=%s source=%s interface=%s details=%s (record %d)",
                row[2], row[3], json.dumps(row[4]), json.dumps(row[5]), json.dumps(row[6]),
                row[7], row[0],
            )  # fmt: skip

    def _roll_off(
        self, connection: sqlite3.Connection, anchor: auditchain.Anchor
    ) -> tuple[auditchain.Anchor, Row]:
        moved, deleted = auditchain.roll_off(connection, anchor, self._roll_off_count)
        last_id = moved.first_id - 1
        logger.warning(
            "audit log full (%d records): rolled off records %d to %d",
            anchor.count, anchor.first_id, last_id,
        )  # fmt: skip
        details = {"count": deleted, "first_id": anchor.first_id, "last_id": last_id}
        entry = self._fields(AuditEvent.AUDIT_ROLLED_OFF, Outcome.SUCCESS, SYSTEM, "",
                             "audit", details)  # fmt: skip
        return auditchain.append(connection, moved, entry)

    def _admit(self, entry: Fields) -> list[Fields]:
        with self._lock:
            if self._pending >= MAX_PENDING_EMITS:
                self._dropped += 1
                if self._dropped == 1:  # once per overflow, not once per record
                    logger.warning("audit queue full: dropping records until it drains")
                return []
            self._pending += 1
            dropped, self._dropped = self._dropped, 0
        if not dropped:
            return [entry]
        note = self._fields(AuditEvent.AUDIT_DROPPED, Outcome.FAILURE, SYSTEM, "", "audit",
                            {"count": dropped})  # fmt: skip
        return [note, entry]

    def _settle(self) -> None:
        with self._lock:
            self._pending -= 1

    def _emitted(self, event: AuditEvent, future: Future[None]) -> None:
        self._settle()
        error = future.exception()
        if error is not None:
            logger.error("audit record %s not written: %s", event, error)


def _select(sql: str, parameters: Mapping[str, Any], connection: sqlite3.Connection) -> list[Row]:
    return connection.execute(sql, parameters).fetchall()


def _head_id(connection: sqlite3.Connection) -> int:
    row = connection.execute("SELECT head_id FROM audit_anchor WHERE id = 1").fetchone()
    return 0 if row is None else int(row[0])


def _csv_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
