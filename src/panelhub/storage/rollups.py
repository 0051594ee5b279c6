"""Rollups in datalog.sqlite: 5-minute and hour buckets as daily chunks, days as rows.

Measured on the synthetic year (bench/datalog/store.py): as rows, the 5-minute rollups of a
series would take more room than its raw samples (288 rows of ~60 bytes a day), and hour rows
about 1 byte per raw sample; as daily chunks both fit in the budget. Day rollups stay rows:
there are few of them, and period totals (the overview of 100 devices) are then SQL sums.
Chunks keep min/max/mean as float32 (7 significant digits: they draw trends) and totals
exact; day rows are exact.
"""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from collections.abc import Sequence

from panelhub.storage.chunks import chunk_start, decode_rollups, encode_rollups
from panelhub.storage.db import transaction
from panelhub.storage.series import Quality, Resolution, Rollup

_DAY_COLUMNS = "series_id, start, count, minimum, maximum, mean, total, quality"


def write(connection: sqlite3.Connection, rollups: Sequence[Rollup]) -> None:
    """Insert or replace rollups (a bucket written again replaces the stored one)."""
    days = [rollup for rollup in rollups if rollup.resolution is Resolution.DAY]
    chunked: defaultdict[tuple[int, Resolution, int], list[Rollup]] = defaultdict(list)
    for rollup in rollups:
        if rollup.resolution is not Resolution.DAY:
            chunked[rollup.series_id, rollup.resolution, chunk_start(rollup.start)].append(rollup)
    with transaction(connection):
        connection.executemany(
            f"INSERT OR REPLACE INTO rollup_day ({_DAY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - a constant
            [_day_row(rollup) for rollup in days],
        )
        for (series_id, resolution, day), new in chunked.items():
            merged = {r.start: r for r in _chunk(connection, series_id, resolution, day)}
            merged.update((rollup.start, rollup) for rollup in new)
            _write_chunk(connection, resolution, day, [merged[s] for s in sorted(merged)])


def read(
    connection: sqlite3.Connection, series_id: int, resolution: Resolution, start: int, end: int
) -> list[Rollup]:
    """The buckets of one series that start in [start, end), in time order."""
    with transaction(connection, immediate=False):
        if resolution is Resolution.DAY:
            rows = connection.execute(
                f"SELECT {_DAY_COLUMNS} FROM rollup_day"  # noqa: S608 - a constant
                " WHERE series_id = ? AND start >= ? AND start < ? ORDER BY start",
                (series_id, start, end),
            ).fetchall()
            return [_rollup_of_row(row) for row in rows]
        chunks = connection.execute(
            "SELECT data FROM rollup_chunk WHERE series_id = ? AND resolution = ?"
            " AND day >= ? AND day < ? ORDER BY day",
            (series_id, int(resolution), chunk_start(start), end),
        ).fetchall()
    return [
        rollup
        for (data,) in chunks
        for rollup in decode_rollups(data, series_id)
        if start <= rollup.start < end
    ]


def totals(
    connection: sqlite3.Connection,
    series_ids: Sequence[int],
    resolution: Resolution,
    start: int,
    end: int,
) -> dict[int, tuple[float, Quality]]:
    """Sum of ``total`` per series over the buckets in [start, end), with their quality.

    Quality is the union of the buckets' flags, plus ``GAP`` when buckets are missing, and
    ``NO_DATA`` with a total of 0 when there is no bucket with a total at all. Day buckets
    are summed in SQL; finer ones decoded from their chunks.
    """
    if resolution is Resolution.DAY:
        with transaction(connection, immediate=False):
            groups = _day_groups(connection, series_ids, start, end)
    else:
        groups = defaultdict(list)
        for series_id in series_ids:
            for rollup in read(connection, series_id, resolution, start, end):
                has_total = not math.isnan(rollup.total)
                groups[series_id].append(
                    (int(rollup.quality), rollup.total if has_total else 0.0, int(has_total), 1)
                )
    expected = max(0, -(-(end - start) // int(resolution)))
    return {series_id: _total(groups.get(series_id, []), expected) for series_id in series_ids}


def purge(connection: sqlite3.Connection, resolution: Resolution, before_ts: int) -> None:
    """Delete the buckets of one resolution that start before ``before_ts``."""
    with transaction(connection):
        if resolution is Resolution.DAY:
            connection.execute("DELETE FROM rollup_day WHERE start < ?", (before_ts,))
            return
        day = chunk_start(before_ts)
        connection.execute(
            "DELETE FROM rollup_chunk WHERE resolution = ? AND day < ?", (int(resolution), day)
        )
        if before_ts == day:  # a day boundary: no chunk is cut
            return
        straddling = connection.execute(
            "SELECT series_id, data FROM rollup_chunk WHERE resolution = ? AND day = ?",
            (int(resolution), day),
        ).fetchall()
        for series_id, data in straddling:
            kept = [r for r in decode_rollups(data, series_id) if r.start >= before_ts]
            _write_chunk(connection, resolution, day, kept, series_id=series_id)


def _day_groups(
    connection: sqlite3.Connection, series_ids: Sequence[int], start: int, end: int
) -> dict[int, list[tuple[int, float, int, int]]]:
    marks = ", ".join("?" * len(series_ids))
    query = (
        "SELECT series_id, quality, total(total), count(total), count(*) FROM rollup_day"  # noqa: S608 - only "?" marks are formatted in
        f" WHERE series_id IN ({marks}) AND start >= ? AND start < ? GROUP BY series_id, quality"
    )
    rows = connection.execute(query, (*series_ids, start, end)).fetchall()
    groups: defaultdict[int, list[tuple[int, float, int, int]]] = defaultdict(list)
    for series_id, quality, total, with_total, buckets in rows:
        groups[series_id].append((quality, total, with_total, buckets))
    return groups


def _total(groups: Sequence[tuple[int, float, int, int]], expected: int) -> tuple[float, Quality]:
    quality = Quality.GOOD
    for flags, *_ in groups:
        quality |= Quality(flags)
    if sum(buckets for *_, buckets in groups) < expected:
        quality |= Quality.GAP
    if not any(with_total for _, _, with_total, _ in groups):
        return 0.0, quality | Quality.NO_DATA
    return math.fsum(total for _, total, _, _ in groups), quality


def _chunk(
    connection: sqlite3.Connection, series_id: int, resolution: Resolution, day: int
) -> list[Rollup]:
    found = connection.execute(
        "SELECT data FROM rollup_chunk WHERE series_id = ? AND resolution = ? AND day = ?",
        (series_id, int(resolution), day),
    ).fetchone()
    return decode_rollups(found[0], series_id) if found else []


def _write_chunk(
    connection: sqlite3.Connection,
    resolution: Resolution,
    day: int,
    rollups: Sequence[Rollup],
    *,
    series_id: int | None = None,
) -> None:
    series_id = rollups[0].series_id if rollups else series_id
    if not rollups:
        connection.execute(
            "DELETE FROM rollup_chunk WHERE series_id = ? AND resolution = ? AND day = ?",
            (series_id, int(resolution), day),
        )
        return
    data = encode_rollups(day, rollups, as_float32=True)
    connection.execute(
        "INSERT OR REPLACE INTO rollup_chunk (series_id, resolution, day, data)"
        " VALUES (?, ?, ?, ?)",
        (series_id, int(resolution), day, data),
    )


def _day_row(rollup: Rollup) -> tuple[object, ...]:
    def real(value: float) -> float | None:
        return None if math.isnan(value) else value

    return (
        rollup.series_id,
        rollup.start,
        rollup.count,
        real(rollup.minimum),
        real(rollup.maximum),
        real(rollup.mean),
        real(rollup.total),
        int(rollup.quality),
    )


def _rollup_of_row(
    row: tuple[int, int, int, float | None, float | None, float | None, float | None, int],
) -> Rollup:
    series_id, start, count, minimum, maximum, mean, total, quality = row
    nan = math.nan
    return Rollup(
        series_id,
        Resolution.DAY,
        start,
        count,
        nan if minimum is None else minimum,
        nan if maximum is None else maximum,
        nan if mean is None else mean,
        nan if total is None else total,
        Quality(quality),
    )
