"""Rollups built as time goes: 5-minute buckets from raw samples, hours and days from those.

Theory of operation:
- A 5-minute bucket is rolled up once ``SETTLE_S`` after it ends, so its last poll and the
  reading at its end boundary (a counter's consumption needs it) are stored by then.
- Each series' progress (``rolled_until``) is in the store: a restart resumes, and buckets of a
  downtime come out empty and flagged (NO_DATA / GAP), never skipped.
- An hour is combined from its twelve 5-minute rollups once whole; a UTC day from its hours.
- A late sample (a slow device) older than the progress does not change rollups already
  written: rollups are for trends and totals, and the raw sample itself is kept.
- After a long stop, at most ``MAX_CATCH_UP_S`` is rolled up (older buckets are left empty),
  so a start after months offline does not spend minutes before polling resumes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from panelhub.energy.counters import CounterSpec
from panelhub.energy.rollups import build_rollups, combine_rollups
from panelhub.storage import progress
from panelhub.storage.series import Resolution, Rollup, SeriesInfo, SeriesKind
from panelhub.storage.timeseries import TimeSeriesStore

logger = logging.getLogger(__name__)

FIVE_MINUTES: Final = int(Resolution.FIVE_MINUTES)
HOUR: Final = int(Resolution.HOUR)
DAY: Final = int(Resolution.DAY)
#: Wait after a bucket ends before rolling it up: its last polls have landed by then.
SETTLE_S: Final = 60
#: Longest span rolled up in one go after a stop: two days.
MAX_CATCH_UP_S: Final = 2 * DAY


def floor_to(ts: float, length_s: int) -> int:
    return int(ts) // length_s * length_s


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
        advanced: dict[int, int] = {}
        written = 0
        for series in await self._store.series():
            start = max(done.get(series.series_id, 0), end - MAX_CATCH_UP_S)
            if start >= end:
                continue
            written += await self._roll(series, start, end)
            advanced[series.series_id] = end
        if advanced:
            await self._store.call(lambda c: progress.set_rolled_until(c, advanced))
        return written

    async def _roll(self, series: SeriesInfo, start: int, end: int) -> int:
        margin = series.period_s  # a counter needs the readings around each boundary
        samples = await self._store.read_raw(series.series_id, start - margin, end + margin)
        counter = None
        if series.kind is SeriesKind.COUNTER:
            counter = self.counters.get(series.series_id, CounterSpec())
        fine = build_rollups(
            series,
            samples,
            resolution=Resolution.FIVE_MINUTES,
            start=start,
            end=end,
            counter=counter,
        )
        await self._store.write_rollups(fine)
        hours = await self._combine(series, Resolution.HOUR, Resolution.FIVE_MINUTES, start, end)
        await self._store.write_rollups(hours)
        days = await self._combine(series, Resolution.DAY, Resolution.HOUR, start, end)
        await self._store.write_rollups(days)
        return len(fine) + len(hours) + len(days)

    async def _combine(
        self, series: SeriesInfo, coarse: Resolution, fine: Resolution, start: int, end: int
    ) -> list[Rollup]:
        """The ``coarse`` buckets that became whole in [start, end), from their ``fine`` ones."""
        length = int(coarse)
        first = floor_to(start, length)
        last = floor_to(end, length)  # buckets starting before this one are whole
        if last <= first:
            return []
        children = await self._store.read_rollups(series.series_id, fine, first, last)
        return combine_rollups(children, resolution=coarse, kind=series.kind)
