from __future__ import annotations

import itertools
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from panelhub.energy.periods import Span, cover, day_bounds, local_days, regular_bounds
from panelhub.storage.series import Resolution

PARIS = ZoneInfo("Europe/Paris")
KOLKATA = ZoneInfo("Asia/Kolkata")
LONG_AFTER = 2_000_000_000.0  # every bucket of the spans below is rolled up by then


def test_a_paris_winter_day_is_read_from_hours_at_its_ends_and_a_day_row_between():
    span = local_days(date(2026, 1, 14), date(2026, 1, 16), PARIS)
    pieces = cover(span, LONG_AFTER)
    assert [(p.resolution, p.end - p.start) for p in pieces] == [
        (Resolution.HOUR, 3_600),  # 23:00-24:00 UTC on the 13th
        (Resolution.DAY, 2 * 86_400),  # the 14th and 15th, UTC
        (Resolution.HOUR, 23 * 3_600),  # 00:00-23:00 UTC on the 16th
    ]


def test_half_hour_zones_use_five_minute_rollups_off_the_hour():
    pieces = cover(local_days(date(2026, 1, 14), date(2026, 1, 14), KOLKATA), LONG_AFTER)
    assert pieces[0].resolution is Resolution.FIVE_MINUTES
    assert pieces[0].end - pieces[0].start == 1_800


def test_the_summer_time_change_day_has_23_hours():
    span = local_days(date(2026, 3, 29), date(2026, 3, 29), PARIS)
    assert span.length_s == 23 * 3_600
    assert day_bounds(local_days(date(2026, 3, 28), date(2026, 3, 30), PARIS), PARIS)[1:3] == [
        span.start,
        span.end,
    ]


def test_nothing_is_read_where_nothing_is_rolled_up_yet():
    span = Span(86_400 * 20_000, 86_400 * 20_002)
    now = span.start + 3_600 + 15 * 60  # 01:15: the first hour and one 5-minute bucket are done
    pieces = cover(span, now)
    assert [(p.resolution, p.start - span.start, p.end - span.start) for p in pieces] == [
        (Resolution.HOUR, 0, 0 + 3_600),
        (Resolution.FIVE_MINUTES, 3_600, 3_600 + 300),
    ]


@given(
    start=st.integers(1_600_000_000 // 300, 1_700_000_000 // 300),
    buckets=st.integers(1, 3 * 288 * 10),
)
def test_cover_reads_every_bucket_once_in_order(start: int, buckets: int):
    span = Span(start * 300, start * 300 + buckets * 300)
    pieces = cover(span, LONG_AFTER)
    assert pieces[0].start == span.start
    assert pieces[-1].end == span.end
    for before, after in itertools.pairwise(pieces):
        assert before.end == after.start
    for piece in pieces:
        assert piece.start % piece.resolution == 0
        assert (piece.end - piece.start) % piece.resolution == 0


def test_regular_bounds_cut_at_multiples():
    assert regular_bounds(Span(100, 700), 300) == [100, 300, 600, 700]


def test_a_period_must_have_an_end_after_its_start():
    with pytest.raises(ValueError, match="end after"):
        Span(10, 10)
