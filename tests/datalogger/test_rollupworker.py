"""The rollup worker on a real datalog.sqlite, run as the service runs it (every 5 minutes).

What a user would see go wrong: a meter silent across a 5-minute boundary losing that gap's
energy from every total; a new meter getting two days of empty, flagged buckets before it
was installed; a big installation whose series past the first group are never rolled up.
"""

from __future__ import annotations

import math

import pytest

from panelhub.datalogger.rollupworker import GROUP_SIZE, MAX_HOLD_S, SETTLE_S, RollupWorker
from panelhub.storage.series import Quality, Resolution, Sample, SeriesInfo, SeriesKind
from panelhub.storage.timeseries import TimeSeriesStore, open_datalog

DAY = 86_400
T0 = 20_000 * DAY + 3 * 3600  # 03:00 UTC, a 5-minute boundary
MINUTE = 60
FIVE = 300


@pytest.fixture
async def store(tmp_path):
    db = open_datalog(tmp_path / "datalog.sqlite")
    yield TimeSeriesStore(db)
    db.close()


async def energy(store: TimeSeriesStore, device: str = "meter1") -> SeriesInfo:
    return await store.register_series(
        device, "active_energy_import", kind=SeriesKind.COUNTER, unit="Wh", period_s=MINUTE
    )


async def passes(worker: RollupWorker, until_s: int, *, since_s: int = T0) -> None:
    """The service's passes: one SETTLE_S after each 5-minute boundary up to ``until_s``."""
    for boundary in range(since_s + FIVE, until_s + 1, FIVE):
        await worker.run_once(boundary + SETTLE_S)


async def test_a_new_series_is_rolled_up_from_its_first_sample(store):
    series = await energy(store)
    await store.append([(series.series_id, Sample(T0 + 60 * i, 1000.0 + i)) for i in range(16)])
    worker = RollupWorker(store)
    await worker.run_once(T0 + 15 * MINUTE + SETTLE_S)

    stored = await store.read_rollups(series.series_id, Resolution.FIVE_MINUTES, 0, T0 + DAY)
    assert [r.start for r in stored] == [T0, T0 + FIVE, T0 + 2 * FIVE]
    assert [r.quality for r in stored] == [Quality.GOOD] * 3
    assert [r.total for r in stored] == [5.0, 5.0, 5.0]


async def test_a_series_without_samples_is_not_rolled_up(store):
    series = await energy(store)
    await RollupWorker(store).run_once(T0 + DAY)
    assert await store.read_rollups(series.series_id, Resolution.FIVE_MINUTES, 0, T0 + DAY) == []


async def test_a_meter_silent_across_a_boundary_keeps_its_energy(store):
    """Silent for minutes 8-12 while the passes at 5 and 10 run: nothing of it is lost."""
    series = await energy(store)
    worker = RollupWorker(store)
    for minute in range(21):
        ts = T0 + minute * MINUTE
        silent = 8 <= minute <= 12
        sample = Sample.invalid(ts) if silent else Sample(ts, 1000.0 + 10 * minute)
        await store.append([(series.series_id, sample)])
        if minute % 5 == 1 and minute > 1:  # the pass SETTLE_S after each boundary
            await worker.run_once(ts)

    stored = await store.read_rollups(series.series_id, Resolution.FIVE_MINUTES, 0, T0 + DAY)
    assert [r.start for r in stored] == [T0, T0 + FIVE, T0 + 2 * FIVE]
    assert math.isclose(math.fsum(r.total for r in stored), 10 * 15)  # minute 0 to 15
    # The step from minute 7 to 13 is spread over both buckets it crosses, flagged.
    assert Quality.ESTIMATED in stored[1].quality
    assert Quality.ESTIMATED in stored[2].quality
    assert math.isclose(stored[1].total, 10 * 5)  # 10 Wh a minute, straight-line
    assert math.isclose(stored[2].total, 10 * 5)


async def test_a_meter_that_stays_silent_is_written_off_after_a_day(store):
    series = await energy(store)
    worker = RollupWorker(store)
    await store.append([(series.series_id, Sample(T0 + 60 * i, 1000.0 + i)) for i in range(6)])
    silent = [(series.series_id, Sample.invalid(T0 + 60 * i)) for i in range(6, 121)]
    await store.append(silent)

    await worker.run_once(T0 + 2 * 3600 + SETTLE_S)  # waits for the meter to answer
    held = await store.read_rollups(series.series_id, Resolution.FIVE_MINUTES, 0, T0 + DAY)
    assert [r.start for r in held] == [T0]

    silent = [(series.series_id, Sample.invalid(T0 + 60 * i)) for i in range(121, 25 * 60)]
    await store.append(silent)
    late = T0 + MAX_HOLD_S + 3600
    await worker.run_once(late + SETTLE_S)
    stored = await store.read_rollups(series.series_id, Resolution.FIVE_MINUTES, 0, late)
    assert stored[-1].start == late - MAX_HOLD_S - FIVE
    assert all(Quality.NO_DATA in r.quality for r in stored[2:])


async def test_every_series_of_a_large_installation_is_rolled_up(store):
    count = 2 * GROUP_SIZE + 7
    ids = []
    for index in range(count):
        series = await store.register_series(
            f"m{index}", "u1", kind=SeriesKind.INSTANT, unit="V", period_s=MINUTE
        )
        ids.append(series.series_id)
    await store.append([(sid, Sample(T0 + 60 * i, 230.0 + i)) for sid in ids for i in range(10)])
    written = await RollupWorker(store).run_once(T0 + 10 * MINUTE + SETTLE_S)

    assert written == 2 * count
    for sid in (ids[0], ids[GROUP_SIZE], ids[-1]):
        stored = await store.read_rollups(sid, Resolution.FIVE_MINUTES, 0, T0 + DAY)
        assert [(r.start, r.count, r.mean) for r in stored] == [
            (T0, 5, 232.0),
            (T0 + FIVE, 5, 237.0),
        ]


async def test_hours_and_days_follow_and_a_restart_resumes(store):
    series = await energy(store)
    worker = RollupWorker(store)
    # Until 05:00, then PanelHub stops for two hours, then the meter is read again.
    before = [(series.series_id, Sample(T0 + 60 * i, 1000.0 + i)) for i in range(121)]
    await store.append(before)
    await passes(worker, T0 + 2 * 3600)
    after = [(series.series_id, Sample(T0 + 4 * 3600 + 60 * i, 1240.0 + i)) for i in range(61)]
    await store.append(after)
    await RollupWorker(store).run_once(T0 + 5 * 3600 + SETTLE_S)  # a new worker: a restart

    hours = await store.read_rollups(series.series_id, Resolution.HOUR, 0, T0 + DAY)
    assert [h.start for h in hours] == [T0 + h * 3600 for h in range(5)]
    assert [h.total for h in hours[:2]] == [60.0, 60.0]
    # The downtime's 120 Wh are spread over its two hours, flagged, not lost.
    assert math.isclose(hours[2].total + hours[3].total, 120.0)
    assert all(Quality.ESTIMATED in h.quality for h in hours[2:4])
    assert hours[4].total == 60.0
