"""The time-series store on a real datalog.sqlite: what goes in comes out, in order, and
failures of the file are reported with its path without losing what was committed."""

from __future__ import annotations

import math
import stat
from collections.abc import Callable

import pytest

from panelhub.errors import DatalogStoreError
from panelhub.storage.db import Database
from panelhub.storage.series import Quality, Resolution, Rollup, Sample, SeriesInfo, SeriesKind
from panelhub.storage.timeseries import SyncTimeSeriesStore, TimeSeriesStore, open_datalog

DAY = 86_400
T0 = 20_000 * DAY  # a UTC day start


@pytest.fixture
def db(tmp_path):
    database = open_datalog(tmp_path / "data" / "datalog.sqlite")
    yield database
    database.close()


@pytest.fixture
def store(db):
    return SyncTimeSeriesStore(db)


def volts(store: SyncTimeSeriesStore) -> SeriesInfo:
    return store.register_series("meter1", "u1", kind=SeriesKind.INSTANT, unit="V", period_s=60)


def minutes(
    series_id: int,
    start: int,
    count: int,
    *,
    value: Callable[[int], float] = lambda i: 230.0 + i / 10,
) -> list[tuple[int, Sample]]:
    return [(series_id, Sample(start + 60 * i, value(i))) for i in range(count)]


def chunk_days(store: SyncTimeSeriesStore) -> list[int]:
    return store.call(lambda c: [row[0] for row in c.execute("SELECT day FROM raw_chunk")])


def test_datalog_file_is_private_wal_and_not_synced_per_commit(db, tmp_path):
    pragma = {
        name: db.run_sync(lambda c, n=name: c.execute(f"PRAGMA {n}").fetchone()[0])
        for name in ("journal_mode", "synchronous", "page_size")
    }
    assert pragma == {"journal_mode": "wal", "synchronous": 1, "page_size": 65_536}
    assert stat.S_IMODE(db.path.stat().st_mode) == 0o600
    state = Database.open(tmp_path / "state.sqlite")  # the state file keeps FULL
    try:
        assert state.run_sync(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2
    finally:
        state.close()


def test_register_is_idempotent_and_a_new_period_keeps_history(store):
    first = volts(store)
    store.append(minutes(first.series_id, T0, 3 * 1440))  # days 0 and 1 get sealed
    again = store.register_series("meter1", "u1", kind=SeriesKind.INSTANT, unit="V", period_s=300)
    store.append([(first.series_id, Sample(T0 + 3 * DAY + 300 * i, 1.0)) for i in range(300)])
    store.seal(T0 + 10 * DAY)
    assert again.series_id == first.series_id
    assert again.period_s == 300
    assert store.series() == [again]
    assert store.series_for("meter1") == [again]
    assert store.series_for("other") == []
    stored = list(store.read_raw(first.series_id, T0, T0 + 10 * DAY))
    assert len(stored) == 3 * 1440 + 300
    assert stored[1441] == Sample(T0 + DAY + 60, 230.0 + 1441 / 10)


def test_past_hours_are_sealed_lazily_and_read_back_in_order(store):
    series = volts(store)
    batch = minutes(series.series_id, T0, 2 * 1440 + 150)  # two days and 2.5 hours
    batch[5] = (series.series_id, Sample.invalid(T0 + 300))
    store.append(batch)
    assert sorted(chunk_days(store)) == [T0, T0 + DAY, T0 + 2 * DAY]  # the last, partial
    rows = store.call(lambda c: c.execute("SELECT count(*) FROM raw_row").fetchone()[0])
    assert rows == 30  # the last half hour, newer than the seal delay, stays in rows
    stored = list(store.read_raw(series.series_id, T0, T0 + 3 * DAY))
    assert [s.ts for s in stored] == [s.ts for _, s in batch]
    assert stored[5].is_valid is False
    assert math.isnan(stored[5].value)
    assert [s.value for s in stored[6:]] == [s.value for _, s in batch[6:]]
    assert store.stats().points == len(batch)


def test_a_late_sample_for_a_sealed_day_is_merged_and_replaces(store):
    series = volts(store)
    store.append(minutes(series.series_id, T0, 2 * 1440))
    store.append(
        [(series.series_id, Sample(T0 + 90, 1.5)), (series.series_id, Sample(T0 + 60, 9.0))]
    )
    stored = list(store.read_raw(series.series_id, T0, T0 + 180))
    assert stored == [
        Sample(T0, 230.0),
        Sample(T0 + 60, 9.0),
        Sample(T0 + 90, 1.5),
        Sample(T0 + 120, 230.2),
    ]


def test_reading_streams_many_days_and_honours_the_bounds(store):
    series = volts(store)
    store.append(minutes(series.series_id, T0, 20 * 1440, value=float))
    start, end = T0 + 3 * DAY + 17 * 60, T0 + 17 * DAY + 5
    stored = list(store.read_raw(series.series_id, start, end))
    assert [s.ts for s in stored] == list(range(start, end, 60))
    assert [s.value for s in stored] == [float((ts - T0) // 60) for ts in range(start, end, 60)]


async def test_the_async_store_runs_off_the_loop(db):
    store = TimeSeriesStore(db)
    series = await store.register_series("m", "p", kind=SeriesKind.INSTANT, unit="W", period_s=60)
    await store.append(minutes(series.series_id, T0, 1500))
    await store.seal(T0 + 2 * DAY)
    pages = [s async for s in store.iter_raw(series.series_id, T0, T0 + 2 * DAY)]
    assert pages == await store.read_raw(series.series_id, T0, T0 + 2 * DAY)
    assert len(pages) == 1500
    assert (await store.stats()).series == 1
    assert await store.series_for("m") == [series]


async def test_a_device_registers_its_series_in_one_go_and_keeps_their_ids(db):
    store = TimeSeriesStore(db)
    power = await store.register_series("m", "p", kind=SeriesKind.INSTANT, unit="W", period_s=60)
    found = await store.register_device(
        "m",
        [("e", SeriesKind.COUNTER, "Wh", 900), ("p", SeriesKind.INSTANT, "W", 300)],
    )
    assert [(s.key, s.kind, s.period_s) for s in found] == [
        ("e", SeriesKind.COUNTER, 900),
        ("p", SeriesKind.INSTANT, 300),
    ]
    assert found[1].series_id == power.series_id  # a new period keeps the history
    with pytest.raises(ValueError, match="period must be positive"):
        await store.register_device("m", [("q", SeriesKind.INSTANT, "W", 0)])
    assert [s.key for s in await store.series_for("m")] == ["p", "e"]


def test_purges_at_a_day_boundary_keep_that_day_whole(store):
    sid = volts(store).series_id
    store.append(minutes(sid, T0, 3 * 1440))
    assert store.purge_raw(T0 + DAY) == 1440
    assert len(list(store.read_raw(sid, 0, T0 + 10 * DAY))) == 2 * 1440
    assert store.purge_raw(T0 + DAY) == 0


def rollup(
    series_id: int,
    resolution: Resolution,
    start: int,
    total: float,
    quality: Quality = Quality.GOOD,
) -> Rollup:
    return Rollup(series_id, resolution, start, 5, 229.5, 231.25, 230.123456, total, quality)


def test_rollups_are_upserted_and_read_by_range(store):
    sid = volts(store).series_id
    five = [rollup(sid, Resolution.FIVE_MINUTES, T0 + 300 * i, math.nan) for i in range(300)]
    hours = [rollup(sid, Resolution.HOUR, T0 + 3600 * i, float(i)) for i in range(30)]
    days = [rollup(sid, Resolution.DAY, T0 + DAY * i, 1e6 + i / 3) for i in range(3)]
    store.write_rollups(five + hours + days)
    store.write_rollups([rollup(sid, Resolution.HOUR, T0 + 3600, 99.0, Quality.GAP)])
    got = store.read_rollups(sid, Resolution.FIVE_MINUTES, T0 + 600, T0 + DAY + 600)
    assert [r.start for r in got] == [T0 + 300 * i for i in range(2, 290)]
    assert got[0].mean == pytest.approx(230.123456, rel=1e-7)
    assert math.isnan(got[0].total)
    hour = store.read_rollups(sid, Resolution.HOUR, T0, T0 + 7200)
    assert [(r.total, r.quality) for r in hour] == [(0.0, Quality.GOOD), (99.0, Quality.GAP)]
    assert store.read_rollups(sid, Resolution.DAY, T0, T0 + 3 * DAY) == days


def test_totals_sum_buckets_and_flag_gaps(store):
    a = volts(store).series_id
    b = store.register_series("meter2", "e", kind=SeriesKind.COUNTER, unit="Wh", period_s=60)
    c = store.register_series("meter3", "e", kind=SeriesKind.COUNTER, unit="Wh", period_s=60)
    store.write_rollups(
        [rollup(a, Resolution.DAY, T0 + DAY * i, 10.0 * i) for i in range(4)]
        + [
            rollup(b.series_id, Resolution.DAY, T0, 5.0, Quality.RESET),
            rollup(b.series_id, Resolution.DAY, T0 + 2 * DAY, 7.0, Quality.ESTIMATED),
        ]
        + [rollup(a, Resolution.HOUR, T0 + 3600 * i, 1.5) for i in range(24)]
    )
    totals = store.totals([a, b.series_id, c.series_id], Resolution.DAY, T0, T0 + 4 * DAY)
    assert totals[a] == (60.0, Quality.GOOD)
    assert totals[b.series_id] == (12.0, Quality.RESET | Quality.ESTIMATED | Quality.GAP)
    assert totals[c.series_id] == (0.0, Quality.GAP | Quality.NO_DATA)
    assert store.totals([a], Resolution.HOUR, T0, T0 + 10 * 3600) == {a: (15.0, Quality.GOOD)}


def test_purges_keep_what_is_newer(store):
    sid = volts(store).series_id
    store.append(minutes(sid, T0, 3 * 1440))
    deleted = store.purge_raw(T0 + DAY + 600)
    assert deleted == 1440 + 10
    assert next(iter(store.read_raw(sid, 0, T0 + 10 * DAY))).ts == T0 + DAY + 600
    store.write_rollups(
        [
            rollup(sid, res, T0 + DAY * i + int(res) * j, 1.0)
            for res in Resolution
            for i in range(3)
            for j in range(2)
        ]
    )
    for resolution in Resolution:
        store.purge_rollups(resolution, T0 + DAY + int(resolution))
        kept = store.read_rollups(sid, resolution, 0, T0 + 10 * DAY)
        assert kept[0].start == T0 + DAY + int(resolution)


def test_a_full_disk_is_reported_and_committed_data_kept(store):
    sid = volts(store).series_id
    store.append(minutes(sid, T0, 100))
    store.call(lambda c: c.execute("PRAGMA max_page_count = 1").fetchall())  # as full as it gets
    with pytest.raises(DatalogStoreError, match="full") as caught:
        store.append(minutes(sid, T0 + 100 * 60, 50_000))
    assert caught.value.path is not None
    assert str(caught.value.path).endswith("datalog.sqlite")
    store.call(lambda c: c.execute("PRAGMA max_page_count = 1000000").fetchall())
    assert len(list(store.read_raw(sid, T0, T0 + 10 * DAY))) == 100


def test_a_read_only_file_is_reported_with_its_path(store, db):
    # query_only: the tests run as root, for whom a 0400 file is still writable.
    store.call(lambda c: c.execute("PRAGMA query_only = 1").fetchall())
    with pytest.raises(DatalogStoreError, match="not writable") as caught:
        volts(store)
    assert caught.value.path == db.path


def test_a_damaged_chunk_is_reported_with_its_path(store, db):
    sid = volts(store).series_id
    store.append(minutes(sid, T0, 2 * 1440))
    (blob,) = store.call(lambda c: c.execute("SELECT data FROM raw_chunk LIMIT 1").fetchone())
    damaged = blob[:20] + bytes([blob[20] ^ 0x10]) + blob[21:]
    store.call(lambda c: c.execute("UPDATE raw_chunk SET data = ?", (damaged,)).fetchall())
    with pytest.raises(DatalogStoreError, match="damaged chunk") as caught:
        list(store.read_raw(sid, T0, T0 + DAY))
    assert caught.value.path == db.path


def test_a_missing_or_damaged_datalog_file_is_refused(tmp_path):
    with pytest.raises(DatalogStoreError, match="does not exist"):
        open_datalog(tmp_path / "datalog.sqlite", create=False)
    (tmp_path / "bad.sqlite").write_bytes(b"not a database" * 500)
    with pytest.raises(DatalogStoreError):
        open_datalog(tmp_path / "bad.sqlite")
