"""Axis ticks for the server-drawn charts: 1-2-5 values and calendar-aligned local times.

Pure: numbers and times in, tick positions and labels out. Time ticks fall on local wall-clock
boundaries (every 3 hours from midnight, Mondays, the first of a month) in the installation's
time zone, so a day chart reads 00:00, 03:00 ... even on the days summer time starts or ends;
a wall time that does not exist that day (02:00 when clocks jump to 03:00) gets no tick.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from enum import Enum
from typing import Final

#: English month abbreviations, fixed so labels do not follow the host's C locale.
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: Most time intervals on an axis: about 90 px each on an 800 px wide chart, room for a label.
MAX_TIME_TICKS: Final = 8
#: About as many value intervals as a 200 px high plot reads without crowding.
VALUE_TICK_TARGET: Final = 5
#: A range narrower than this share of its values (or than this, for values below 1) is drawn
#: as flat: ticks near a float's precision (2**-52 relative) would repeat the same label.
RELATIVE_RESOLUTION: Final = 1e-9
#: 1-2-5 steps (times a power of ten) are the ones people read at a glance.
NICE_MULTIPLES: Final = (1.0, 2.0, 5.0, 10.0)


class TimeUnit(Enum):
    MINUTE = 60
    HOUR = 3_600
    DAY = 86_400
    MONTH = 2_629_746  # a mean Gregorian month, only to choose a step
    YEAR = 31_556_952


@dataclass(frozen=True, slots=True)
class TimeStep:
    unit: TimeUnit
    count: int

    @property
    def approx_s(self) -> int:
        return self.unit.value * self.count


#: Time steps from finest to coarsest; the first giving at most MAX_TIME_TICKS intervals wins.
TIME_STEPS: Final = tuple(
    TimeStep(unit, count)
    for unit, counts in (
        (TimeUnit.MINUTE, (1, 2, 5, 10, 15, 30)),
        (TimeUnit.HOUR, (1, 2, 3, 6, 12)),
        (TimeUnit.DAY, (1, 2, 7, 14)),
        (TimeUnit.MONTH, (1, 2, 3, 6)),
        (TimeUnit.YEAR, (1, 2, 5, 10, 20, 50, 100)),
    )
    for count in counts
)


@dataclass(frozen=True, slots=True)
class Tick:
    position: float  # a value, or UTC seconds for a time tick
    label: str


def value_ticks(low: float, high: float, *, target: int = VALUE_TICK_TARGET) -> list[Tick]:
    """Return 1-2-5 ticks whose first is <= ``low`` and last >= ``high``.

    Non-finite bounds give 0..1 (an empty chart still has an axis); equal (or nearly equal)
    bounds are widened so a flat line sits mid-chart.
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = 0.0, 1.0
    low, high = min(low, high), max(low, high)
    if high - low <= max(abs(low), abs(high), 1.0) * RELATIVE_RESOLUTION:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / target
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(multiple * magnitude for multiple in NICE_MULTIPLES if multiple * magnitude >= raw)
    # The products are checked, not the quotients: low / step rounds (to 0 for a tiny low).
    first = math.floor(low / step)
    first -= first * step > low
    last = math.ceil(high / step)
    last += last * step < high
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    ticks = []
    for index in range(first, last + 1):
        value = index * step
        ticks.append(Tick(value, f"{value + 0.0:.{decimals}f}" if index else "0"))
    return ticks


def time_step(start: int, end: int, *, max_ticks: int = MAX_TIME_TICKS) -> TimeStep:
    """Return the finest calendar step giving at most ``max_ticks`` intervals over the range."""
    span_s = max(end - start, 1)
    for step in TIME_STEPS:
        if span_s / step.approx_s <= max_ticks:
            return step
    return TIME_STEPS[-1]


def time_ticks(start: int, end: int, tz: tzinfo, *, max_ticks: int = MAX_TIME_TICKS) -> list[Tick]:
    """Return ticks on local calendar boundaries between ``start`` and ``end`` (UTC seconds)."""
    step = time_step(start, end, max_ticks=max_ticks)
    return [
        Tick(ts, time_label(wall, step.unit))
        for wall, ts in _wall_times(start, end, tz, step)
        if start <= ts <= end
    ]


def time_label(wall: datetime, unit: TimeUnit) -> str:
    """Return the label of a tick at local time ``wall``: a midnight tick names its day."""
    day = f"{wall.day} {MONTHS[wall.month - 1]}"
    if unit in (TimeUnit.MINUTE, TimeUnit.HOUR):
        return day if (wall.hour, wall.minute) == (0, 0) else f"{wall:%H:%M}"
    if unit is TimeUnit.DAY:
        return day
    if unit is TimeUnit.MONTH:
        return f"{MONTHS[wall.month - 1]} {wall.year}"
    return str(wall.year)


def _wall_times(start: int, end: int, tz: tzinfo, step: TimeStep) -> Iterator[tuple[datetime, int]]:
    wall = _floor(datetime.fromtimestamp(start, tz).replace(tzinfo=None), step)
    last_wall = datetime.fromtimestamp(end, tz).replace(tzinfo=None)
    while wall <= last_wall:
        aware = wall.replace(tzinfo=tz)
        ts = int(aware.timestamp())
        # A wall time skipped by a summer-time jump does not round-trip: no tick for it.
        if datetime.fromtimestamp(ts, tz).replace(tzinfo=None) == wall:
            yield wall, ts
        wall = _advance(wall, step)


def _floor(wall: datetime, step: TimeStep) -> datetime:
    count = step.count
    midnight = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    if step.unit is TimeUnit.MINUTE:
        return wall.replace(minute=wall.minute - wall.minute % count, second=0, microsecond=0)
    if step.unit is TimeUnit.HOUR:
        return midnight.replace(hour=wall.hour - wall.hour % count)
    if step.unit is TimeUnit.DAY:
        # Weekly steps start on Mondays (ISO 8601); others count days from 0001-01-01.
        offset = wall.weekday() if count == 7 else (wall.toordinal() - 1) % count
        return midnight - timedelta(days=offset)
    if step.unit is TimeUnit.MONTH:
        month_index = (wall.year * 12 + wall.month - 1) // count * count
        return datetime.combine(date(month_index // 12, month_index % 12 + 1, 1), midnight.time())
    return datetime.combine(date(max(1, wall.year - wall.year % count), 1, 1), midnight.time())


def _advance(wall: datetime, step: TimeStep) -> datetime:
    if step.unit in (TimeUnit.MINUTE, TimeUnit.HOUR, TimeUnit.DAY):
        return wall + timedelta(seconds=step.unit.value * step.count)
    months = step.count if step.unit is TimeUnit.MONTH else 12 * step.count
    month_index = wall.year * 12 + wall.month - 1 + months
    return wall.replace(year=month_index // 12, month=month_index % 12 + 1)
