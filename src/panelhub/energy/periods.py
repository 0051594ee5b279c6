"""Periods of the energy pages: local days, spans, and which rollups cover a span exactly.

Pure. A local day (in the installation's time zone) is not a UTC day: Paris' 1 January runs
from 23:00 UTC the day before, and a day of the summer-time change lasts 23 or 25 hours. A
consumption over local days is therefore read from hour rollups at its ends and from day
rollups (UTC days) only where whole UTC days fit inside it (:func:`cover`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Final

from panelhub.storage.series import Resolution

#: Finest first: what :func:`cover` falls back to where a coarser bucket does not fit.
RESOLUTIONS: Final = (Resolution.DAY, Resolution.HOUR, Resolution.FIVE_MINUTES)
#: A bucket is read only once the rollup worker has surely written it: it rolls up a bucket
#: 60 s after it ends (``rollupworker.SETTLE_S``) and runs every 5 minutes.
ROLLED_UP_AFTER_S: Final = 60 + 300
#: Longest period a page or export accepts: ten years, the longest rollup retention.
MAX_SPAN_S: Final = 3_660 * 86_400


@dataclass(frozen=True, slots=True)
class Span:
    """A time range [start, end) in UTC seconds."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("a period needs an end after its start")
        if self.end - self.start > MAX_SPAN_S:
            raise ValueError("a period may not be longer than ten years")

    @property
    def length_s(self) -> int:
        return self.end - self.start

    def before(self) -> Span:
        """The span of equal length just before this one (the comparison period)."""
        return Span(self.start - self.length_s, self.start)


@dataclass(frozen=True, slots=True)
class Piece:
    """Part of a span read at one resolution: whole buckets of that resolution."""

    resolution: Resolution
    start: int
    end: int


def local_midnight(day: date, tz: tzinfo) -> int:
    """UTC seconds of the start of ``day`` in ``tz`` (an hour skipped at midnight is allowed)."""
    return int(datetime.combine(day, time(0), tzinfo=tz).timestamp())


def local_days(first: date, last: date, tz: tzinfo) -> Span:
    """The span from the start of local day ``first`` to the end of local day ``last``."""
    return Span(local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz))


def day_bounds(span: Span, tz: tzinfo) -> list[int]:
    """The local midnights that split ``span`` into days, ``span.start`` and ``span.end`` included.

    The span's ends are kept as they are, so a span not starting at midnight begins with a
    partial day.
    """
    bounds = [span.start]
    day = datetime.fromtimestamp(span.start, tz).date() + timedelta(days=1)
    while (midnight := local_midnight(day, tz)) < span.end:
        if midnight > bounds[-1]:
            bounds.append(midnight)
        day += timedelta(days=1)
    bounds.append(span.end)
    return bounds


def regular_bounds(span: Span, step_s: int) -> list[int]:
    """``span`` cut at the multiples of ``step_s`` (5 minutes, an hour), both ends included."""
    first = -(-span.start // step_s) * step_s
    inner = list(range(first, span.end, step_s))
    return [span.start, *(b for b in inner if b > span.start), span.end]


def ready_until(resolution: Resolution, now_s: float) -> int:
    """The end of the last bucket of ``resolution`` the rollup worker has surely written."""
    length = int(resolution)
    return int(now_s - ROLLED_UP_AFTER_S) // length * length


def cover(span: Span, now_s: float) -> list[Piece]:
    """Pieces that read ``span`` exactly from the coarsest rollups that fit.

    Day rows for whole UTC days, hour rollups up to the first day boundary and after the last,
    5-minute rollups for the parts off the hour (time zones at :30 or :45 from UTC). Buckets
    not rolled up yet (the last minutes before ``now_s``) and the future are left out: there
    is nothing to read there yet, which is not a gap. A span whose ends are not on 5-minute
    boundaries is read from its first whole bucket to its last.
    """
    pieces: list[Piece] = []
    cursor = span.start
    while cursor < span.end:
        piece = _next_piece(cursor, span.end, now_s)
        if piece is None and cursor % Resolution.FIVE_MINUTES:
            cursor = -(-cursor // Resolution.FIVE_MINUTES) * Resolution.FIVE_MINUTES
            continue
        if piece is None:  # nothing rolled up from here on
            break
        pieces.append(piece)
        cursor = piece.end
    return pieces


def _next_piece(cursor: int, end: int, now_s: float) -> Piece | None:
    for index, resolution in enumerate(RESOLUTIONS):
        length = int(resolution)
        if cursor % length:
            continue
        limit = min(end, ready_until(resolution, now_s))
        if index > 0:  # stop where the coarser resolution can take over
            coarser = int(RESOLUTIONS[index - 1])
            boundary = -(-cursor // coarser) * coarser
            if boundary + coarser <= min(end, ready_until(RESOLUTIONS[index - 1], now_s)):
                limit = min(limit, boundary)
        count = (limit - cursor) // length
        if count > 0:
            return Piece(resolution, cursor, cursor + count * length)
    return None
