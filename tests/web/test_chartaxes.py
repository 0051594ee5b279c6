"""Axis ticks people can read: 1-2-5 values, local calendar times, for every range a page offers."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from panelhub.web.chartaxes import time_ticks, value_ticks

PARIS = ZoneInfo("Europe/Paris")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=PARIS).timestamp())


@pytest.mark.parametrize(
    ("start", "end", "labels"),
    [
        (
            local(2026, 11, 27, 10),
            local(2026, 11, 27, 11),
            ["10:00", "10:10", "10:20", "10:30", "10:40", "10:50", "11:00"],
        ),
        (
            local(2026, 11, 27),
            local(2026, 11, 28),
            ["27 Nov", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00", "28 Nov"],
        ),
        # 30 days: weekly ticks on Mondays (2 Nov 2026 is a Monday).
        (local(2026, 11, 1), local(2026, 12, 1), ["2 Nov", "9 Nov", "16 Nov", "23 Nov", "30 Nov"]),
        (
            local(2026, 1, 1),
            local(2027, 1, 1),
            ["Jan 2026", "Mar 2026", "May 2026", "Jul 2026", "Sep 2026", "Nov 2026", "Jan 2027"],
        ),
        (local(2000, 1, 1), local(2026, 1, 1), ["2000", "2005", "2010", "2015", "2020", "2025"]),
    ],
    ids=["1 hour", "1 day", "30 days", "1 year", "26 years"],
)
def test_time_ticks_for_the_ranges_pages_offer(start: int, end: int, labels: list[str]) -> None:
    ticks = time_ticks(start, end, PARIS)

    assert [tick.label for tick in ticks] == labels
    assert all(start <= tick.position <= end for tick in ticks)


def test_the_day_summer_time_starts_keeps_wall_clock_ticks() -> None:
    # 29 March 2026 has 23 hours: 02:00 does not exist, 03:00 is two hours after 00:00.
    ticks = time_ticks(local(2026, 3, 29), local(2026, 3, 30), PARIS)

    assert [tick.label for tick in ticks][:3] == ["29 Mar", "03:00", "06:00"]
    assert ticks[1].position - ticks[0].position == 2 * 3600


@pytest.mark.parametrize(
    ("low", "high", "labels"),
    [
        (0, 1, ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
        (228.3, 233.9, ["228", "230", "232", "234"]),
        (-3, 7, ["-4", "-2", "0", "2", "4", "6", "8"]),
        (0, 0.034, ["0", "0.01", "0.02", "0.03", "0.04"]),
        (math.nan, math.nan, ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
    ],
)
def test_value_ticks_are_round_numbers(low: float, high: float, labels: list[str]) -> None:
    assert [tick.label for tick in value_ticks(low, high)] == labels


@given(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.floats(min_value=0, max_value=1e9, allow_nan=False),
)
def test_value_ticks_cover_the_data_with_a_1_2_5_step(low: float, width: float) -> None:
    high = low + width
    ticks = value_ticks(low, high)
    positions = [tick.position for tick in ticks]

    assert positions[0] <= low
    assert positions[-1] >= high
    assert 2 <= len(ticks) <= 12
    step = positions[1] - positions[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, nice, rel_tol=1e-3) for nice in (1, 2, 5, 10))
    assert len({tick.label for tick in ticks}) == len(ticks)  # no two ticks read the same
