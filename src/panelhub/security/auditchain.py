"""The audit log's hash chain in ``state.sqlite``: appending, rolling off, verifying.

Theory of operation:
- Record ``n`` stores ``prev_hash`` (the hash of record ``n - 1``) and ``hash``, the SHA-256 of a
  canonical JSON array of all its fields and ``prev_hash`` (``digest``). Ids are consecutive:
  the writer gives each record the anchor's ``head_id + 1``.
- The one-row ``audit_anchor`` says where the chain starts (``first_id``, the oldest id still
  stored, and ``first_prev_hash``, the hash of the last record rolled off before it) and where
  it ends (``head_id``, ``head_hash``). It is read and written in the same ``BEGIN IMMEDIATE``
  transaction as the records, so two processes (the service, a console command) can append.
- Roll-off deletes the oldest records, moves the anchor's start past them, and appends an
  ``audit.rolled_off`` record naming the ids. The newest such record must therefore always end
  just before ``first_id``: moving the start without writing one is visible.

What ``verify`` finds (the first problem, by walking from the start):
- a record edited (any field, its hash, or its link), inserted, deleted (anywhere: the oldest
  remaining, the newest, or between), or moved (ids or contents swapped);
- the oldest records deleted with the anchor's start moved past them;
- the newest record rewritten with a correctly recomputed hash (the anchor's end disagrees).

What it cannot find: the chain has no secret, so whoever can write the file can recompute
every hash after a change and rewrite the anchor to match; in particular, deleting the newest
records and moving the anchor's end back is a consistent shorter log. Only a copy kept
elsewhere shows that: the ``panelhub.audit`` log lines (journal, syslog) or an export.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from panelhub.storage.db import transaction

#: ``prev_hash`` of the very first record, and the anchor's hashes before any record.
GENESIS_HASH: Final = "0" * 64
#: Stored as the chain's start when the record it should name was already gone at roll-off:
#: never a SHA-256, so ``verify`` keeps reporting that damage instead of it rolling away.
MISSING_HASH: Final = "missing"
#: First element of every hashed array: a later encoding gets a new tag, never a collision.
HASH_TAG: Final = "panelhub-audit-1"
#: Event name of the roll-off record (``AuditEvent.AUDIT_ROLLED_OFF``; kept here so the chain
#: does not import the API built on it).
ROLLED_OFF_EVENT: Final = "audit.rolled_off"

#: time, event, outcome, user, source, interface, details: what a caller's record holds.
Fields = tuple[str, str, str, str, str, str, str]
#: A stored record: id, the fields, prev_hash, hash (the column order of ``audit_record``).
Row = tuple[int, str, str, str, str, str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class Anchor:
    first_id: int
    first_prev_hash: str
    head_id: int
    head_hash: str

    @property
    def count(self) -> int:
        return self.head_id - self.first_id + 1


@dataclass(frozen=True, slots=True)
class ChainIntact:
    count: int


@dataclass(frozen=True, slots=True)
class ChainBroken:
    """The first bad record: ``record_id`` is the id it has, or would have if it was deleted."""

    record_id: int
    reason: str


VerifyResult = ChainIntact | ChainBroken


def digest(values: Sequence[object]) -> str:
    """SHA-256 hex of ``(id, time, event, outcome, user, source, interface, details, prev)``.

    JSON with ASCII escapes is unambiguous (no field can run into the next) and the same on
    every platform. ``repr`` only matters for a value tampered into another SQLite type: it
    still hashes, and then mismatches.
    """
    payload = json.dumps(
        [HASH_TAG, *values], ensure_ascii=True, separators=(",", ":"), default=repr
    )
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


def read_anchor(connection: sqlite3.Connection) -> Anchor | None:
    row = connection.execute(
        "SELECT first_id, first_prev_hash, head_id, head_hash FROM audit_anchor WHERE id = 1"
    ).fetchone()
    return None if row is None else Anchor(*row)


def append(connection: sqlite3.Connection, anchor: Anchor, fields: Fields) -> tuple[Anchor, Row]:
    """Insert ``fields`` as the record after the anchor's head; return the moved anchor.

    The caller holds the write transaction and passes the anchor it read inside it.
    """
    record_id, prev_hash = anchor.head_id + 1, anchor.head_hash
    row: Row = (record_id, *fields, prev_hash, digest((record_id, *fields, prev_hash)))
    connection.execute(
        "INSERT INTO audit_record (id, time, event, outcome, user_name, source, interface, "
        "details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        row,
    )
    connection.execute(
        "UPDATE audit_anchor SET head_id = ?, head_hash = ? WHERE id = 1", (row[0], row[9])
    )
    return replace(anchor, head_id=row[0], head_hash=row[9]), row


def roll_off(connection: sqlite3.Connection, anchor: Anchor, count: int) -> tuple[Anchor, int]:
    """Delete the ``count`` oldest records; return the moved anchor and how many were there.

    The caller appends the ``audit.rolled_off`` record in the same transaction.
    """
    last_id = anchor.first_id + count - 1
    boundary = connection.execute(
        "SELECT hash FROM audit_record WHERE id = ?", (last_id,)
    ).fetchone()
    moved = replace(
        anchor,
        first_id=last_id + 1,
        first_prev_hash=MISSING_HASH if boundary is None else boundary[0],
    )
    # The anchor moves first: the delete trigger only lets records before its start go.
    connection.execute(
        "UPDATE audit_anchor SET first_id = ?, first_prev_hash = ? WHERE id = 1",
        (moved.first_id, moved.first_prev_hash),
    )
    deleted = connection.execute("DELETE FROM audit_record WHERE id <= ?", (last_id,)).rowcount
    return moved, deleted


def verify(connection: sqlite3.Connection) -> VerifyResult:
    """Walk the chain in one read transaction (a consistent snapshot while others append)."""
    with transaction(connection, immediate=False):
        anchor = read_anchor(connection)
        if anchor is None:
            return ChainBroken(0, "the chain anchor is missing: the chain's start and end are lost")
        problem = _check_start(connection, anchor)
        return problem if problem is not None else _walk(connection, anchor)


def _check_start(connection: sqlite3.Connection, anchor: Anchor) -> ChainBroken | None:
    if anchor.first_id == 1:
        return None
    row = connection.execute(
        "SELECT details FROM audit_record WHERE event = ? ORDER BY id DESC LIMIT 1",
        (ROLLED_OFF_EVENT,),
    ).fetchone()
    through = None if row is None else _rolled_off_through(row[0])
    if through == anchor.first_id - 1:
        return None
    first_gap = 1 if through is None else min(through, anchor.first_id - 1) + 1
    return ChainBroken(
        first_gap,
        f"the chain starts at record {anchor.first_id} but no roll-off record says so: "
        "old records deleted, or the anchor edited",
    )


def _rolled_off_through(details: object) -> int | None:
    try:
        last_id = json.loads(str(details)).get("last_id")
    except (ValueError, AttributeError):  # tampered into non-JSON, or JSON but not an object
        return None
    return last_id if isinstance(last_id, int) else None


def _walk(connection: sqlite3.Connection, anchor: Anchor) -> VerifyResult:
    expected_id, expected_prev = anchor.first_id, anchor.first_prev_hash
    rows = connection.execute(
        "SELECT id, time, event, outcome, user_name, source, interface, details, prev_hash, "
        "hash FROM audit_record ORDER BY id"
    )
    for row in rows:
        problem = _check_row(row, expected_id, expected_prev, anchor.head_id)
        if problem is not None:
            return problem
        expected_id, expected_prev = expected_id + 1, row[9]
    if expected_id <= anchor.head_id:
        return ChainBroken(expected_id, "is missing: the newest records were deleted")
    if expected_prev != anchor.head_hash:
        return ChainBroken(anchor.head_id, "is not the record that was written last: replaced")
    return ChainIntact(expected_id - anchor.first_id)


def _check_row(row: Row, expected_id: int, expected_prev: str, head_id: int) -> ChainBroken | None:
    record_id = row[0]
    if record_id < expected_id:
        return ChainBroken(record_id, "is older than the start of the chain: inserted")
    if record_id > expected_id:
        return ChainBroken(expected_id, "is missing: deleted")
    if record_id > head_id:
        return ChainBroken(record_id, "is newer than the last record written: inserted")
    if row[8] != expected_prev:
        return ChainBroken(
            record_id, "does not follow the record before it: reordered, or that one replaced"
        )
    if digest(row[:9]) != row[9]:
        return ChainBroken(record_id, "does not match its hash: edited")
    return None
