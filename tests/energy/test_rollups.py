"""Rollups per 5 minutes, hour and day: what the trend pages and the CSV daily totals show."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panelhub.energy.counters import CounterSpec
from panelhub.energy.rollups import build_rollups, combine_rollups
from panelhub.storage.series import Quality, Resolution, Rollup, Sample, SeriesInfo, SeriesKind

Q = Quality
R = Resolution
DAY0 = 1_800_000_000 - 1_800_000_000 % 86_400  # a UTC midnight


def series(kind: SeriesKind = SeriesKind.INSTANT, period_s: int = 60) -> SeriesInfo:
    return SeriesInfo(7, "Q12", "p_total", kind, "W", period_s)


def every(period_s: int, values: list[float | None], start: int = DAY0) -> list[Sample]:
    return [
        Sample.invalid(start + i * period_s) if v is None else Sample(start + i * period_s, v)
        for i, v in enumerate(values)
    ]


def stats(rollup: Rollup) -> tuple[object, ...]:
    return (rollup.count, rollup.minimum, rollup.maximum, rollup.mean, rollup.quality)


def test_instant_series_min_max_mean_per_five_minutes():
    samples = every(60, [1, 2, 3, 4, 10, 5, 5, 5, 5, 5])
    rollups = build_rollups(series(), samples, resolution=R.FIVE_MINUTES, start=DAY0,
                            end=DAY0 + 600)  # fmt: skip
    assert [stats(r) for r in rollups] == [(5, 1, 10, 4, Q.GOOD), (5, 5, 5, 5, Q.GOOD)]
    assert [r.start for r in rollups] == [DAY0, DAY0 + 300]
    assert all(math.isnan(r.total) for r in rollups)
    assert {(r.series_id, r.resolution) for r in rollups} == {(7, R.FIVE_MINUTES)}


def test_invalid_and_missing_samples_are_a_gap_and_an_empty_bucket_no_data():
    samples = every(60, [1, None, 3, math.nan])  # then nothing
    first, second = build_rollups(series(), samples, resolution=R.FIVE_MINUTES, start=DAY0,
                                  end=DAY0 + 600)  # fmt: skip
    assert stats(first) == (2, 1, 3, 2, Q.GAP)
    assert second.count == 0
    assert second.quality == Q.GAP | Q.NO_DATA
    assert all(math.isnan(v) for v in (second.minimum, second.maximum, second.mean))


def test_samples_outside_the_range_are_not_counted():
    samples = every(60, [100, 1, 2, 3, 4, 5, 100], start=DAY0 - 60)
    (only,) = build_rollups(series(), samples, resolution=R.FIVE_MINUTES, start=DAY0,
                            end=DAY0 + 300)  # fmt: skip
    assert stats(only) == (5, 1, 5, 3, Q.GOOD)


def test_a_fifteen_minute_series_has_two_quiet_five_minute_buckets_in_three():
    samples = every(900, [10, 20])
    rollups = build_rollups(series(period_s=900), samples, resolution=R.FIVE_MINUTES,
                            start=DAY0, end=DAY0 + 1800)  # fmt: skip
    assert [(r.count, r.quality) for r in rollups] == [
        (1, Q.GOOD), (0, Q.GOOD), (0, Q.GOOD), (1, Q.GOOD), (0, Q.GOOD), (0, Q.GOOD),
    ]  # fmt: skip


def test_counter_series_total_is_its_consumption_with_the_counter_flags():
    samples = every(60, [100, 101, 103, 106, 110, 115, 2, 4, 6, 8, 10, 12])
    counter = series(SeriesKind.COUNTER)
    first, second = build_rollups(counter, samples, resolution=R.FIVE_MINUTES, start=DAY0,
                                  end=DAY0 + 600, counter=CounterSpec())  # fmt: skip
    assert (first.total, first.quality) == (15, Q.GOOD)  # 100 -> 115 at 10:05
    assert (second.total, second.quality) == (10, Q.RESET)  # 115 -> 2 (restarted) -> 10
    assert second.minimum == 2


def test_counter_without_spec_uses_a_plain_counter():
    samples = every(60, [0, 1, 2, 3, 4, 5])
    (only,) = build_rollups(series(SeriesKind.COUNTER), samples, resolution=R.FIVE_MINUTES,
                            start=DAY0, end=DAY0 + 300)  # fmt: skip
    assert (only.total, only.quality) == (5, Q.GOOD)


def test_the_live_bucket_with_a_lone_reading_is_a_gap_with_no_total_yet():
    samples = every(60, [0, 1, 2, 3, 4, 5])
    rollups = build_rollups(series(SeriesKind.COUNTER), samples, resolution=R.FIVE_MINUTES,
                            start=DAY0, end=DAY0 + 600)  # fmt: skip
    assert (rollups[1].count, rollups[1].total, rollups[1].quality) == (1, 0, Q.GAP)


def test_state_series_mean_is_the_last_value_and_max_shows_a_passing_alarm():
    samples = every(60, [0, 0, 3, 0, 1])
    (only,) = build_rollups(series(SeriesKind.STATE), samples, resolution=R.FIVE_MINUTES,
                            start=DAY0, end=DAY0 + 300)  # fmt: skip
    assert stats(only) == (5, 0, 3, 1, Q.GOOD)


def test_an_empty_range_has_no_rollups():
    assert build_rollups(series(SeriesKind.COUNTER), [], resolution=R.HOUR, start=DAY0,
                         end=DAY0) == []  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": DAY0 + 1, "end": DAY0 + 300}, "whole number of 300-second"),
        ({"start": DAY0, "end": DAY0 + 301}, "whole number"),
        ({"start": DAY0 + 300, "end": DAY0}, "whole number"),
        ({"start": DAY0, "end": DAY0 + 300, "counter": CounterSpec()}, "Q12/p_total is not a"),
    ],
)
def test_build_refuses_bad_ranges_and_misplaced_specs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_rollups(series(), [], resolution=R.FIVE_MINUTES, **kwargs)


def rollup(
    start: int,
    count: int,
    lo: float,
    hi: float,
    mean: float,
    *,
    total: float = math.nan,
    quality: Quality = Q.GOOD,
    resolution: Resolution = R.FIVE_MINUTES,
) -> Rollup:
    return Rollup(7, resolution, start, count, lo, hi, mean, total, quality)


def test_hour_from_five_minute_rollups():
    children = [rollup(DAY0 + 300 * i, 5, i, 10 * i, 2 * i, total=i) for i in range(12)]
    children[3] = rollup(DAY0 + 900, 2, 3, 30, 6, total=3, quality=Q.GAP)
    (hour,) = combine_rollups(children, resolution=R.HOUR, kind=SeriesKind.COUNTER)
    assert (hour.start, hour.resolution, hour.count) == (DAY0, R.HOUR, 57)
    assert (hour.minimum, hour.maximum, hour.total, hour.quality) == (0, 110, 66, Q.GAP)
    assert hour.mean == pytest.approx((sum(2 * i * 5 for i in range(12)) - 6 * 3) / 57)


def test_missing_children_make_a_gap_and_empty_children_are_skipped():
    nan = math.nan
    children = [
        rollup(DAY0, 5, 1, 1, 1),
        rollup(DAY0 + 300, 0, nan, nan, nan, quality=Q.GAP | Q.NO_DATA),
    ]
    (hour,) = combine_rollups(children, resolution=R.HOUR, kind=SeriesKind.INSTANT)
    assert (hour.count, hour.minimum, hour.mean, hour.quality) == (5, 1, 1, Q.GAP)
    assert math.isnan(hour.total)


def test_a_coarse_bucket_with_nothing_keeps_no_data():
    nan = math.nan
    children = [rollup(DAY0 + 300 * i, 0, nan, nan, nan, total=0.0, quality=Q.GAP | Q.NO_DATA)
                for i in range(12)]  # fmt: skip
    (hour,) = combine_rollups(children, resolution=R.HOUR, kind=SeriesKind.COUNTER)
    assert (hour.count, hour.total, hour.quality) == (0, 0, Q.GAP | Q.NO_DATA)
    assert math.isnan(hour.mean)


def test_state_hour_takes_the_last_child_with_samples():
    nan = math.nan
    children = [rollup(DAY0, 1, 0, 4, 4), rollup(DAY0 + 300, 1, 2, 2, 2),
                rollup(DAY0 + 600, 0, nan, nan, nan)]  # fmt: skip
    (hour,) = combine_rollups(children, resolution=R.HOUR, kind=SeriesKind.STATE)
    assert (hour.minimum, hour.maximum, hour.mean) == (0, 4, 2)


def test_days_from_hours_one_per_day_in_order():
    hours = [rollup(DAY0 + 3600 * i, 1, i, i, i, resolution=R.HOUR) for i in range(48)]
    days = combine_rollups(reversed(hours), resolution=R.DAY, kind=SeriesKind.INSTANT)
    assert [(d.start, d.count, d.minimum, d.maximum) for d in days] == [
        (DAY0, 24, 0, 23), (DAY0 + 86_400, 24, 24, 47),
    ]  # fmt: skip


def test_nothing_to_combine():
    assert combine_rollups([], resolution=R.DAY, kind=SeriesKind.INSTANT) == []


@pytest.mark.parametrize(
    ("children", "resolution", "message"),
    [
        ([rollup(DAY0, 1, 1, 1, 1), rollup(DAY0, 1, 1, 1, 1, resolution=R.HOUR)], R.DAY, "one"),
        ([rollup(DAY0, 1, 1, 1, 1, resolution=R.HOUR)], R.HOUR, "HOUR rollups do not combine"),
        ([rollup(DAY0, 1, 1, 1, 1, resolution=R.DAY)], R.HOUR, "DAY rollups do not combine"),
    ],
)
def test_combine_refuses_mixed_or_coarser_rollups(children, resolution, message):
    with pytest.raises(ValueError, match=message):
        combine_rollups(children, resolution=resolution, kind=SeriesKind.INSTANT)


def test_combine_refuses_rollups_of_two_series():
    other = Rollup(8, R.FIVE_MINUTES, DAY0, 1, 1, 1, 1, math.nan)
    with pytest.raises(ValueError, match="one series"):
        combine_rollups([rollup(DAY0, 1, 1, 1, 1), other], resolution=R.HOUR,
                        kind=SeriesKind.INSTANT)  # fmt: skip


# --- property: hour rollups built from 5-minute ones equal hour rollups built from samples ------

sample_values = st.lists(
    st.one_of(st.none(), st.integers(0, 50).map(float)), min_size=0, max_size=150
)


@settings(max_examples=150, deadline=None)
@given(
    increments=sample_values,
    kind=st.sampled_from(list(SeriesKind)),
    period_s=st.sampled_from([60, 300, 900]),
    offset_slots=st.integers(-5, 5),
)
def test_hours_from_five_minutes_equal_hours_from_samples(increments, kind, period_s, offset_slots):
    # A rising counter for COUNTER series (so the values double as readings), raw values else.
    values, level = [], 0.0
    for inc in increments:
        level += 0 if inc is None else inc
        values.append(None if inc is None else (level if kind is SeriesKind.COUNTER else inc))
    samples = every(period_s, values, start=DAY0 + offset_slots * period_s)
    info = series(kind, period_s)
    end = DAY0 + 3 * 3600
    fine = build_rollups(info, samples, resolution=R.FIVE_MINUTES, start=DAY0, end=end)
    direct = build_rollups(info, samples, resolution=R.HOUR, start=DAY0, end=end)
    combined = combine_rollups(fine, resolution=R.HOUR, kind=kind)
    assert len(combined) == len(direct) == 3
    for a, b in zip(combined, direct, strict=True):
        assert (a.start, a.count, a.quality) == (b.start, b.count, b.quality)
        for x, y in ((a.minimum, b.minimum), (a.maximum, b.maximum), (a.mean, b.mean),
                     (a.total, b.total)):  # fmt: skip
            assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, abs=1e-9)
