"""Raw samples in datalog.sqlite: recent ones as rows, sealed days as chunks.

Every function takes the connection (they run on the Database's worker thread) and owns its
transaction; ``timeseries.TimeSeriesStore`` is the façade the rest of PanelHub uses.

Why two tables: a poll round appends one sample per series, and re-encoding a day's chunk at
every round would cost a decode and an encode per sample. Rows take the appends; each hour
(once it is ``SEAL_DELAY_S`` old, for late samples) is sealed into the day's chunk of each
series, so the row table stays small. A series' ``sealed_before`` splits the two: a sample
older than it is merged into its chunk.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Final

from panelhub.storage.chunks import CHUNK_SPAN_S, chunk_start, decode_samples, encode_samples
from panelhub.storage.db import transaction
from panelhub.storage.series import Sample

#: An hour is sealed this long after it ended, so that samples of its last poll round (polled
#: late, a bus busy with SCADA traffic) still land in rows, not in a re-encode.
SEAL_DELAY_S: Final = 600
#: Rows are sealed an hour at a time: a decode and an encode per series and hour (~1 ms each)
#: keep the row table, which one series' reads scan, to about an hour of all series.
SEAL_STEP_S: Final = 3_600
#: Days of chunks read per database call while streaming: a week of one-minute samples is
#: about 10,000 samples, small enough not to hold the worker thread for long.
PAGE_DAYS: Final = 7


def append(connection: sqlite3.Connection, batch: Sequence[tuple[int, Sample]]) -> None:
    """Store a batch in one transaction; seal the days the batch shows to be over.

    Raises:
        ValueError: a series id that was never registered.

    """
    if not batch:
        return
    with transaction(connection):
        watermarks = dict(connection.execute("SELECT series_id, sealed_before FROM series"))
        rows: list[tuple[int, Sample]] = []
        late: defaultdict[tuple[int, int], list[Sample]] = defaultdict(list)
        for series_id, sample in batch:
            if series_id not in watermarks:
                raise ValueError(f"series {series_id} is not registered")
            if sample.ts < watermarks[series_id]:
                late[series_id, chunk_start(sample.ts)].append(sample)
            else:
                rows.append((series_id, sample))
        _insert_rows(connection, rows)
        for (series_id, day), samples in late.items():
            _merge_into_chunk(connection, series_id, day, samples)
        newest = max(sample.ts for _, sample in batch) - SEAL_DELAY_S
        _seal(connection, newest - newest % SEAL_STEP_S)


def seal(connection: sqlite3.Connection, before_ts: int) -> None:
    """Move every row older than ``before_ts`` into its day's chunk."""
    with transaction(connection):
        _seal(connection, before_ts)


def read_page(
    connection: sqlite3.Connection, series_id: int, start: int, end: int
) -> tuple[list[Sample], int | None]:
    """Samples in [start, end) from at most ``PAGE_DAYS`` chunks, and where to go on.

    The second item is the ``start`` of the next page, or None when this page was the last
    (it then includes the recent rows, which are newer than any chunk).
    """
    with transaction(connection, immediate=False):
        chunks = connection.execute(
            "SELECT day, data FROM raw_chunk WHERE series_id = ? AND day >= ? AND day < ?"
            " ORDER BY day LIMIT ?",
            (series_id, chunk_start(start), end, PAGE_DAYS),
        ).fetchall()
        samples = [
            sample
            for _day, data in chunks
            for sample in decode_samples(data)
            if start <= sample.ts < end
        ]
        if len(chunks) == PAGE_DAYS:
            return samples, chunks[-1][0] + CHUNK_SPAN_S
        rows = connection.execute(
            "SELECT ts, bits FROM raw_row WHERE ts >= ? AND ts < ? AND series_id = ? ORDER BY ts",
            (start, end, series_id),
        ).fetchall()
    return samples + _samples_of_rows(rows), None


def purge(connection: sqlite3.Connection, before_ts: int) -> int:
    """Delete every sample older than ``before_ts``; returns how many were deleted."""
    day = chunk_start(before_ts)
    with transaction(connection):
        (deleted,) = connection.execute(
            "SELECT coalesce(sum(count), 0) FROM raw_chunk WHERE day < ?", (day,)
        ).fetchone()
        connection.execute("DELETE FROM raw_chunk WHERE day < ?", (day,))
        straddling = []
        if before_ts > day:  # a boundary inside a day: that day's chunks are cut
            straddling = connection.execute(
                "SELECT series_id, count, data FROM raw_chunk WHERE day = ?", (day,)
            ).fetchall()
        for series_id, count, data in straddling:
            kept = [sample for sample in decode_samples(data) if sample.ts >= before_ts]
            deleted += count - len(kept)
            _write_chunk(connection, series_id, day, kept)
        deleted += connection.execute("DELETE FROM raw_row WHERE ts < ?", (before_ts,)).rowcount
    return int(deleted)


def first_times(connection: sqlite3.Connection, series_ids: Sequence[int]) -> dict[int, int]:
    """The time of each series' oldest stored sample; series without any are left out."""
    wanted = set(series_ids)
    found: dict[int, int] = {}
    with transaction(connection, immediate=False):
        for series_id in wanted:  # chunks hold the older samples: look there first
            chunk = connection.execute(
                "SELECT data FROM raw_chunk WHERE series_id = ? ORDER BY day LIMIT 1",
                (series_id,),
            ).fetchone()
            if chunk is not None:
                found[series_id] = decode_samples(chunk[0])[0].ts
        # One pass over the rows (keyed time first), not one per series.
        rows = connection.execute("SELECT series_id, min(ts) FROM raw_row GROUP BY series_id")
        for series_id, oldest in rows:
            if series_id in wanted and series_id not in found:
                found[series_id] = int(oldest)
    return found


def last_valid_times(connection: sqlite3.Connection, series_ids: Sequence[int]) -> dict[int, int]:
    """The time of each series' newest valid sample (in the rows or its newest chunk).

    Series whose newest chunk and rows hold no valid sample are left out: silent for a day
    or more, or never answered.
    """
    wanted = set(series_ids)
    found: dict[int, int] = {}
    with transaction(connection, immediate=False):
        rows = connection.execute(
            "SELECT series_id, max(ts) FROM raw_row WHERE bits IS NOT NULL GROUP BY series_id"
        )
        found = {series_id: int(ts) for series_id, ts in rows if series_id in wanted}
        for series_id in wanted - found.keys():  # silent for the last hour or so
            chunk = connection.execute(
                "SELECT data FROM raw_chunk WHERE series_id = ? ORDER BY day DESC LIMIT 1",
                (series_id,),
            ).fetchone()
            valid = [s.ts for s in decode_samples(chunk[0]) if s.is_valid] if chunk else []
            if valid:
                found[series_id] = valid[-1]
    return found


def count_points(connection: sqlite3.Connection) -> int:
    (chunked,) = connection.execute("SELECT coalesce(sum(count), 0) FROM raw_chunk").fetchone()
    (rows,) = connection.execute("SELECT count(*) FROM raw_row").fetchone()
    return int(chunked) + int(rows)


def _seal(connection: sqlite3.Connection, boundary: int) -> None:
    (oldest,) = connection.execute("SELECT min(sealed_before) FROM series").fetchone()
    if oldest is None or oldest >= boundary:
        return
    rows = connection.execute(
        "SELECT series_id, ts, bits FROM raw_row WHERE ts < ? ORDER BY series_id, ts",
        (boundary,),
    ).fetchall()
    by_chunk: defaultdict[tuple[int, int], list[tuple[int, int | None]]] = defaultdict(list)
    for series_id, ts, bits in rows:
        by_chunk[series_id, chunk_start(ts)].append((ts, bits))
    for (series_id, day), day_rows in by_chunk.items():
        _merge_into_chunk(connection, series_id, day, _samples_of_rows(day_rows))
    connection.execute("DELETE FROM raw_row WHERE ts < ?", (boundary,))
    connection.execute(
        "UPDATE series SET sealed_before = ? WHERE sealed_before < ?", (boundary, boundary)
    )


def _merge_into_chunk(
    connection: sqlite3.Connection, series_id: int, day: int, samples: Iterable[Sample]
) -> None:
    """Add samples to a day's chunk; a sample replaces one already stored at its time."""
    found = connection.execute(
        "SELECT data FROM raw_chunk WHERE series_id = ? AND day = ?", (series_id, day)
    ).fetchone()
    merged = {sample.ts: sample for sample in decode_samples(found[0])} if found else {}
    merged.update((sample.ts, sample) for sample in samples)
    _write_chunk(connection, series_id, day, [merged[ts] for ts in sorted(merged)])


def _write_chunk(
    connection: sqlite3.Connection, series_id: int, day: int, samples: Sequence[Sample]
) -> None:
    if not samples:
        connection.execute(
            "DELETE FROM raw_chunk WHERE series_id = ? AND day = ?", (series_id, day)
        )
        return
    (period_s,) = connection.execute(
        "SELECT period_s FROM series WHERE series_id = ?", (series_id,)
    ).fetchone()
    connection.execute(
        "INSERT OR REPLACE INTO raw_chunk (series_id, day, count, data) VALUES (?, ?, ?, ?)",
        (series_id, day, len(samples), encode_samples(day, period_s, samples)),
    )


def _insert_rows(connection: sqlite3.Connection, rows: Sequence[tuple[int, Sample]]) -> None:
    # The double's bit pattern as a signed integer: exact, where a REAL column would turn NaN
    # into NULL.
    bits = array("q", array("d", [sample.value for _, sample in rows]).tobytes())
    connection.executemany(
        "INSERT OR REPLACE INTO raw_row (ts, series_id, bits) VALUES (?, ?, ?)",
        (
            (sample.ts, series_id, pattern if sample.is_valid else None)
            for (series_id, sample), pattern in zip(rows, bits, strict=True)
        ),
    )


def _samples_of_rows(rows: Sequence[tuple[int, int | None]]) -> list[Sample]:
    values = array("d", array("q", [0 if bits is None else bits for _, bits in rows]).tobytes())
    return [
        Sample.invalid(ts) if bits is None else Sample(ts, value)
        for (ts, bits), value in zip(rows, values, strict=True)
    ]
