from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panelhub.energy.aggregation import rank
from panelhub.energy.periods import local_days
from panelhub.energy.queries import Grouped, merge_totals, period_totals, sum_buckets
from panelhub.storage.series import Quality, Resolution, Rollup, SeriesKind
from panelhub.storage.timeseries import TimeSeriesStore, open_datalog


def hour(start: int, total: float, quality: Quality = Quality.GOOD) -> Rollup:
    return Rollup(1, Resolution.HOUR, start, 12, 0.0, 0.0, 0.0, total, quality)


def test_a_group_that_dropped_to_zero_keeps_its_previous_figure():
    ranking = rank({"heating": 0.0, "lighting": 10.0, "pumps": 5.0},
                   {"heating": 20.0, "lighting": 10.0, "pumps": 1.0}, top=2)  # fmt: skip
    grouped = Grouped(ranking, {"heating": 20.0, "lighting": 10.0, "pumps": 1.0},
                      {"pumps": Quality.GAP})  # fmt: skip
    assert [(s.name, s.change_pct) for s in ranking.top] == [("lighting", 0.0), ("pumps", 400.0)]
    assert ranking.others is not None
    assert ranking.others.change_pct == -100.0
    assert grouped.previous(ranking.others) == 20.0
    assert grouped.flags(ranking.top[1]) == Quality.GAP
    assert grouped.flags(ranking.others) == Quality.GOOD


def test_pieces_without_data_make_the_whole_a_gap_unless_none_had_any():
    assert merge_totals([(5.0, Quality.GOOD), (0.0, Quality.NO_DATA | Quality.GAP)]) == (
        5.0,
        Quality.GAP,
    )
    assert merge_totals([(0.0, Quality.NO_DATA), (0.0, Quality.NO_DATA)]) == (0.0, Quality.NO_DATA)
    assert merge_totals([]) == (0.0, Quality.GOOD)


def test_buckets_sum_their_hours_and_flag_missing_ones():
    rollups = [hour(0, 1.0), hour(3_600, 2.0, Quality.RESET), hour(3 * 3_600, 4.0)]
    found = sum_buckets(rollups, [0, 7_200, 14_400, 21_600], resolution=Resolution.HOUR,
                        ready_s=18_000)  # fmt: skip
    assert found[0] == (3.0, Quality.RESET)
    assert found[1] == (4.0, Quality.GAP)  # 02:00 missing
    value, quality = found[2]  # 04:00 rolled up but missing, 05:00 not yet due
    assert math.isnan(value)
    assert quality == Quality.GAP | Quality.NO_DATA


def test_a_bucket_not_due_yet_is_empty_and_not_flagged():
    [(value, quality)] = sum_buckets([], [0, 3_600], resolution=Resolution.HOUR, ready_s=0)
    assert math.isnan(value)
    assert quality == Quality.GOOD


def test_totals_over_any_local_days_equal_the_sum_of_their_hours(tmp_path):
    """Day rows inside, hours at the ends: whatever the zone and days, nothing counted twice."""
    db = open_datalog(tmp_path / "datalog.sqlite")
    store = TimeSeriesStore(db)
    info = store.sync.register_series("m", "e", kind=SeriesKind.COUNTER, unit="Wh", period_s=300)
    first = 1_800_000_000 // 86_400 * 86_400 - 10 * 86_400
    hours = [hour(first + h * 3_600, float(h % 7 + h // 24)) for h in range(12 * 24)]
    hours = [
        Rollup(info.series_id, r.resolution, r.start, 12, 0.0, 0.0, 0.0, r.total) for r in hours
    ]
    days = [
        Rollup(info.series_id, Resolution.DAY, first + d * 86_400, 288, 0.0, 0.0, 0.0,
               math.fsum(r.total for r in hours[d * 24 : (d + 1) * 24]))
        for d in range(12)
    ]  # fmt: skip
    store.sync.write_rollups(hours + days)

    @settings(max_examples=60, deadline=None)
    @given(
        zone=st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"]),
        offset=st.integers(1, 9),
        length=st.integers(0, 8),
    )
    def check(zone: str, offset: int, length: int) -> None:
        tz = ZoneInfo(zone)
        day = datetime.fromtimestamp(first, UTC).date() + timedelta(days=offset)
        span = local_days(
            day, min(day + timedelta(days=length), day + timedelta(days=10 - offset)), tz
        )
        found = asyncio.run(period_totals(store, [info.series_id], span, now_s=2_000_000_000))
        expected = math.fsum(r.total for r in hours if span.start <= r.start < span.end)
        total, quality = found[info.series_id]
        assert total == pytest.approx(expected)
        assert quality == Quality.GOOD

    try:
        check()
    finally:
        db.close()
