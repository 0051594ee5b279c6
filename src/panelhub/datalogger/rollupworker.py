"""Rollups built as time goes: 5-minute buckets from raw samples, hours and days from those.

Theory of operation:
- A 5-minute bucket is rolled up once ``SETTLE_S`` after it ends, so its last poll and the
  reading at its end boundary (a counter's consumption needs it) are stored by then.
- Each series' progress (``rolled_until``) is in the store: a restart resumes, and buckets of a
  downtime come out empty and flagged (NO_DATA / GAP), never skipped.
- An hour is combined from its twelve 5-minute rollups once whole; a UTC day from its hours.
- A late sample (a slow device) older than the progress does not change rollups already
  written: rollups are for trends and totals, and the raw sample itself is kept.
- A counter's bucket also waits for a valid reading at or after its end: the consumption of a
  meter silent across a boundary is only known, and spread over the gap, once it answers
  again. Rolled up before, the gap's energy would be lost from every total. A counter waits at
  most ``MAX_HOLD_S``; after that its buckets are written as they are (flagged).
- After a long stop, at most ``MAX_CATCH_UP_S`` is rolled up (older buckets are left empty),
  so a start after months offline does not spend minutes before polling resumes.
- A new series is rolled up from its first sample, not ``MAX_CATCH_UP_S`` back: two days of
  empty buckets for each of 50,000 new series took minutes of CPU.
- Series are rolled up ``GROUP_SIZE`` at a time in one call on the store's thread: one hop
  and a handful of transactions for many series instead of five per series. A group holds
  the store for about a tenth of a second, so the poller's appends wait at most that long.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Final, NamedTuple

from panelhub.energy.counters import CounterSpec
from panelhub.energy.rollups import build_rollups, combine_rollups
from panelhub.storage import progress, rollups, samples
from panelhub.storage.series import Resolution, Rollup, Sample, SeriesInfo, SeriesKind
from panelhub.storage.timeseries import TimeSeriesStore

logger = logging.getLogger(__name__)

FIVE_MINUTES: Final = int(Resolution.FIVE_MINUTES)
HOUR: Final = int(Resolution.HOUR)
DAY: Final = int(Resolution.DAY)
#: Wait after a bucket ends before rolling it up: its last polls have landed by then.
SETTLE_S: Final = 60
#: Longest span rolled up in one go after a stop: two days.
MAX_CATCH_UP_S: Final = 2 * DAY
#: Longest a counter's buckets wait for the meter to answer again: a day.
MAX_HOLD_S: Final = DAY
#: Series rolled up per call on the store's thread (~0.5 ms each in a 5-minute pass).
GROUP_SIZE: Final = 200


def floor_to(ts: float, length_s: int) -> int:
    return int(ts) // length_s * length_s


class _Work(NamedTuple):
    """One series to roll up over [start, end)."""

    series: SeriesInfo
    start: int
    end: int


class RollupWorker:
    """Brings every series' rollups up to date; ``run_once`` is called every 5 minutes."""

    def __init__(
        self, store: TimeSeriesStore, *, counters: Mapping[int, CounterSpec] | None = None
    ) -> None:
        self._store = store
        #: Per series id: its counter's rollover and meter replacements (default: plain).
        self.counters: Mapping[int, CounterSpec] = counters or {}

    async def run_once(self, now_s: float) -> int:
        """Roll up every whole bucket before ``now_s - SETTLE_S``; returns the buckets written."""
        end = floor_to(now_s - SETTLE_S, FIVE_MINUTES)
        done = await self._store.call(progress.rolled_until)
        every = await self._store.series()
        fresh = [s.series_id for s in every if not done.get(s.series_id)]
        if fresh:
            firsts = await self._store.call(lambda c: samples.first_times(c, fresh))
            done |= {series_id: floor_to(ts, FIVE_MINUTES) for series_id, ts in firsts.items()}
        counters = [s.series_id for s in every if s.kind is SeriesKind.COUNTER]
        answered: dict[int, int] = {}
        if counters:
            answered = await self._store.call(lambda c: samples.last_valid_times(c, counters))
        work: list[_Work] = []
        for series in every:
            if not done.get(series.series_id):
                continue  # nothing stored yet
            until = end
            if series.kind is SeriesKind.COUNTER:
                known = floor_to(answered.get(series.series_id, 0), FIVE_MINUTES)
                until = max(min(end, known), end - MAX_HOLD_S)
            start = max(done[series.series_id], until - MAX_CATCH_UP_S)
            if start < until:
                work.append(_Work(series, start, until))
        written = 0
        for index in range(0, len(work), GROUP_SIZE):
            group = work[index : index + GROUP_SIZE]
            written += await self._store.call(functools.partial(self._roll_group, group=group))
        return written

    def _roll_group(self, connection: sqlite3.Connection, *, group: Sequence[_Work]) -> int:
        """Roll up a group of series (on the store's thread); returns the buckets written."""
        fine: list[Rollup] = []
        for series, start, end in group:
            margin = series.period_s  # a counter needs the readings around each boundary
            counter = None
            if series.kind is SeriesKind.COUNTER:
                counter = self.counters.get(series.series_id, CounterSpec())
            fine += build_rollups(
                series,
                _read_raw(connection, series.series_id, start - margin, end + margin),
                resolution=Resolution.FIVE_MINUTES,
                start=start,
                end=end,
                counter=counter,
            )
        rollups.write(connection, fine)
        hours = _combine(connection, group, Resolution.HOUR, Resolution.FIVE_MINUTES)
        rollups.write(connection, hours)
        days = _combine(connection, group, Resolution.DAY, Resolution.HOUR)
        rollups.write(connection, days)
        progress.set_rolled_until(connection, {work.series.series_id: work.end for work in group})
        return len(fine) + len(hours) + len(days)


def _read_raw(connection: sqlite3.Connection, series_id: int, start: int, end: int) -> list[Sample]:
    found: list[Sample] = []
    cursor: int | None = start
    while cursor is not None:
        page, cursor = samples.read_page(connection, series_id, cursor, end)
        found += page
    return found


def _combine(
    connection: sqlite3.Connection,
    group: Sequence[_Work],
    coarse: Resolution,
    fine: Resolution,
) -> list[Rollup]:
    """The ``coarse`` buckets that became whole in [start, end), from their ``fine`` ones."""
    length = int(coarse)
    combined: list[Rollup] = []
    for series, start, end in group:
        first = floor_to(start, length)
        last = floor_to(end, length)  # buckets starting before this one are whole
        if last <= first:
            continue
        children = rollups.read(connection, series.series_id, fine, first, last)
        combined += combine_rollups(children, resolution=coarse, kind=series.kind)
    return combined
