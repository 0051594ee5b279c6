"""The time-series store: series, raw samples and rollups in datalog.sqlite.

``TimeSeriesStore`` is used from the event loop: every call runs on the Database's worker
thread. ``SyncTimeSeriesStore`` is the same store for code without a loop (the benchmark,
console commands). Both map every SQLite failure (a full disk, a damaged or read-only file)
and every damaged chunk to ``DatalogStoreError`` naming the file; each call is one
transaction, so a failure leaves what was committed before it intact.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from panelhub.errors import DatalogStoreError
from panelhub.storage import rollups, samples
from panelhub.storage.db import DATALOG, Database, transaction
from panelhub.storage.series import Quality, Resolution, Rollup, Sample, SeriesInfo, SeriesKind

T = TypeVar("T")

_SERIES_COLUMNS = "series_id, device, key, kind, unit, period_s"


@dataclass(frozen=True, slots=True)
class DatalogStats:
    """What the status page shows of the store."""

    file_bytes: int  # the database file and its write-ahead log
    points: int  # raw samples stored, valid or not
    series: int


def open_datalog(path: Path, *, create: bool = True) -> Database:
    """Open datalog.sqlite (its own migrations, ``synchronous=NORMAL``).

    Raises:
        DatalogStoreError: the file is missing (without ``create``), damaged or too new.

    """
    return Database.open(path, create=create, schema=DATALOG)


class SyncTimeSeriesStore:
    """The store, called from a thread without an event loop (blocks until done)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._db.run_sync(_mapped(fn, self._db.path))

    def register_series(
        self, device: str, key: str, *, kind: SeriesKind, unit: str, period_s: int
    ) -> SeriesInfo:
        """The series of a measurement, created on first use; a new period keeps history."""
        return self.call(lambda c: _register(c, (device, key, kind, unit, period_s)))

    def series(self) -> list[SeriesInfo]:
        return self.call(lambda c: _select_series(c, "", ()))

    def series_for(self, device: str) -> list[SeriesInfo]:
        return self.call(lambda c: _select_series(c, "WHERE device = ?", (device,)))

    def append(self, batch: Sequence[tuple[int, Sample]]) -> None:
        """Store (series_id, sample) pairs; a sample at a stored time replaces the old one."""
        self.call(lambda c: samples.append(c, batch))

    def seal(self, before_ts: int) -> None:
        """Compress every whole day before ``before_ts`` (``append`` also does it lazily)."""
        self.call(lambda c: samples.seal(c, before_ts))

    def read_raw(self, series_id: int, start: int, end: int) -> Iterator[Sample]:
        """Samples in [start, end) in time order, read a few days at a time."""
        cursor: int | None = start
        while cursor is not None:
            page, cursor = self.call(partial_page(series_id, cursor, end))
            yield from page

    def write_rollups(self, buckets: Sequence[Rollup]) -> None:
        self.call(lambda c: rollups.write(c, buckets))

    def read_rollups(
        self, series_id: int, resolution: Resolution, start: int, end: int
    ) -> list[Rollup]:
        return self.call(lambda c: rollups.read(c, series_id, resolution, start, end))

    def totals(
        self, series_ids: Sequence[int], resolution: Resolution, start: int, end: int
    ) -> dict[int, tuple[float, Quality]]:
        """Consumption per series over [start, end) from its rollups, with its quality."""
        return self.call(lambda c: rollups.totals(c, series_ids, resolution, start, end))

    def purge_raw(self, before_ts: int) -> int:
        """Retention: delete raw samples older than ``before_ts``; returns how many."""
        return self.call(lambda c: samples.purge(c, before_ts))

    def purge_rollups(self, resolution: Resolution, before_ts: int) -> None:
        self.call(lambda c: rollups.purge(c, resolution, before_ts))

    def stats(self) -> DatalogStats:
        return self.call(lambda c: _stats(c, self._db.path))

    def checkpoint(self) -> None:
        """Fold the write-ahead log back into the file (after a bulk load)."""
        self.call(lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())


class TimeSeriesStore:
    """The store for the event loop: the methods of ``SyncTimeSeriesStore``, awaited."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.sync = SyncTimeSeriesStore(db)  # for code that runs on no loop

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._db.run(_mapped(fn, self._db.path))

    async def register_series(
        self, device: str, key: str, *, kind: SeriesKind, unit: str, period_s: int
    ) -> SeriesInfo:
        return await self.call(lambda c: _register(c, (device, key, kind, unit, period_s)))

    async def register_device(
        self, device: str, measurements: Sequence[tuple[str, SeriesKind, str, int]]
    ) -> list[SeriesInfo]:
        """``register_series`` for each (key, kind, unit, period_s) of a device, in one go."""
        specs = [(device, key, kind, unit, period_s) for key, kind, unit, period_s in measurements]
        return await self.call(lambda c: _register_many(c, specs))

    async def series(self) -> list[SeriesInfo]:
        return await self.call(lambda c: _select_series(c, "", ()))

    async def series_for(self, device: str) -> list[SeriesInfo]:
        return await self.call(lambda c: _select_series(c, "WHERE device = ?", (device,)))

    async def append(self, batch: Sequence[tuple[int, Sample]]) -> None:
        await self.call(lambda c: samples.append(c, batch))

    async def seal(self, before_ts: int) -> None:
        await self.call(lambda c: samples.seal(c, before_ts))

    async def iter_raw(self, series_id: int, start: int, end: int) -> AsyncIterator[Sample]:
        """Samples in [start, end) in time order; the loop runs between pages."""
        cursor: int | None = start
        while cursor is not None:
            page, cursor = await self.call(partial_page(series_id, cursor, end))
            for sample in page:
                yield sample

    async def read_raw(self, series_id: int, start: int, end: int) -> list[Sample]:
        return [sample async for sample in self.iter_raw(series_id, start, end)]

    async def write_rollups(self, buckets: Sequence[Rollup]) -> None:
        await self.call(lambda c: rollups.write(c, buckets))

    async def read_rollups(
        self, series_id: int, resolution: Resolution, start: int, end: int
    ) -> list[Rollup]:
        return await self.call(lambda c: rollups.read(c, series_id, resolution, start, end))

    async def totals(
        self, series_ids: Sequence[int], resolution: Resolution, start: int, end: int
    ) -> dict[int, tuple[float, Quality]]:
        return await self.call(lambda c: rollups.totals(c, series_ids, resolution, start, end))

    async def purge_raw(self, before_ts: int) -> int:
        return await self.call(lambda c: samples.purge(c, before_ts))

    async def purge_rollups(self, resolution: Resolution, before_ts: int) -> None:
        await self.call(lambda c: rollups.purge(c, resolution, before_ts))

    async def stats(self) -> DatalogStats:
        return await self.call(lambda c: _stats(c, self._db.path))


def partial_page(
    series_id: int, start: int, end: int
) -> Callable[[sqlite3.Connection], tuple[list[Sample], int | None]]:
    return lambda c: samples.read_page(c, series_id, start, end)


def _mapped(fn: Callable[[sqlite3.Connection], T], path: Path) -> Callable[[sqlite3.Connection], T]:
    """``fn`` with SQLite errors and damaged chunks reported as the file's fault."""

    def run(connection: sqlite3.Connection) -> T:
        try:
            return fn(connection)
        except sqlite3.Error as exc:
            raise DatalogStoreError(f"{path}: {_explain(exc)}", path=path) from exc
        except DatalogStoreError as exc:
            if exc.path is not None:
                raise
            raise DatalogStoreError(f"{path}: {exc}", path=path) from exc

    return run


def _explain(exc: sqlite3.Error) -> str:
    if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
        return f"{exc} (free space on the data disk or lower the raw retention)"
    if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc):
        return f"{exc} (the file or its folder is not writable by PanelHub)"
    return str(exc)


def _register(
    connection: sqlite3.Connection, spec: tuple[str, str, SeriesKind, str, int]
) -> SeriesInfo:
    return _register_many(connection, [spec])[0]


def _register_many(
    connection: sqlite3.Connection, specs: Sequence[tuple[str, str, SeriesKind, str, int]]
) -> list[SeriesInfo]:
    """Create or update series in one transaction; their infos in the order given."""
    for *_, period_s in specs:
        if period_s <= 0:
            raise ValueError(f"period must be positive, not {period_s} s")
    with transaction(connection):
        connection.executemany(
            "INSERT INTO series (device, key, kind, unit, period_s) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (device, key) DO UPDATE SET kind = excluded.kind,"
            " unit = excluded.unit, period_s = excluded.period_s",
            [
                (device, key, str(kind), unit, period_s)
                for device, key, kind, unit, period_s in specs
            ],
        )
        found = {
            (info.device, info.key): info
            for device in {spec[0] for spec in specs}
            for info in _select_series(connection, "WHERE device = ?", (device,))
        }
    return [found[device, key] for device, key, *_ in specs]


def _select_series(
    connection: sqlite3.Connection, where: str, params: tuple[str, ...]
) -> list[SeriesInfo]:
    rows = connection.execute(
        f"SELECT {_SERIES_COLUMNS} FROM series {where} ORDER BY series_id",  # noqa: S608 - constants
        params,
    ).fetchall()
    return [
        SeriesInfo(series_id, device, key, SeriesKind(kind), unit, period_s)
        for series_id, device, key, kind, unit, period_s in rows
    ]


def _stats(connection: sqlite3.Connection, path: Path) -> DatalogStats:
    file_bytes = 0
    for name in (path.name, path.name + "-wal"):
        with contextlib.suppress(FileNotFoundError):
            file_bytes += path.with_name(name).stat().st_size
    (series,) = connection.execute("SELECT count(*) FROM series").fetchone()
    return DatalogStats(file_bytes, samples.count_points(connection), int(series))
