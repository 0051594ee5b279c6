"""The records of the time-series store, shared by the poller, the energy code and the pages.

Times are whole seconds since the Unix epoch, UTC: a sample carries the time of the poll slot
it belongs to (a 1-minute measurement polled at 10:03:00.4 is stored at 10:03:00), so series
of one device line up in the CSV export and in aggregates. Local time is only for display.

A sample that could not be read is stored, not skipped: ``is_valid`` false and ``value`` NaN.
That is how the CSV "Error" column and the gaps in trends are told apart from a missing poll.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum, IntFlag, StrEnum


class SeriesKind(StrEnum):
    """How values of a series combine over time."""

    #: A continuous quantity (voltage, current, power, temperature): min, max and mean.
    INSTANT = "instant"
    #: A cumulative register (energy, volume), stored as read; consumption is derived.
    COUNTER = "counter"
    #: A status word or enumeration: only the last value of a period means anything.
    STATE = "state"


class Resolution(IntEnum):
    """Rollup bucket lengths, in seconds. Buckets start at multiples of their length (UTC)."""

    FIVE_MINUTES = 300
    HOUR = 3_600
    DAY = 86_400


class Quality(IntFlag):
    """Why a derived value (a rollup, a consumption) may not be what a perfect meter gives."""

    GOOD = 0
    #: Some samples of the period were missing or invalid (device down, poll lost).
    GAP = 1
    #: Part of the value is an estimate spread over a gap, not a measured difference.
    ESTIMATED = 2
    #: The counter went backwards (reset to zero or cleared); counting restarted from it.
    RESET = 4
    #: The counter wrapped past its largest value; the wrap was added back.
    ROLLOVER = 8
    #: The meter was replaced during the period; the old and new readings were joined.
    REPLACED = 16
    #: A jump no load could produce was left out instead of showing as a spike.
    IMPLAUSIBLE = 32
    #: Nothing valid in the period: the value is NaN (or 0 for a consumption, flagged).
    NO_DATA = 64


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """What the store knows of one series: which device and measurement, and how to combine."""

    series_id: int
    device: str  # the device's name, as configured (<= 20 characters)
    key: str  # the measurement's stable key within the device template (the topic)
    kind: SeriesKind
    unit: str
    period_s: int  # the logging period the series was sampled at


@dataclass(frozen=True, slots=True)
class Sample:
    ts: int  # slot time, UTC seconds
    value: float  # NaN when not valid
    is_valid: bool = True

    @classmethod
    def invalid(cls, ts: int) -> Sample:
        return cls(ts, math.nan, is_valid=False)


@dataclass(frozen=True, slots=True)
class Rollup:
    """One bucket of one series at one resolution.

    ``total`` is the consumption in the bucket for a counter (NaN for other kinds); ``mean``
    is over valid samples; ``count`` is the number of valid samples, so a gap shows as a
    count below what the period holds and as ``Quality.GAP``.
    """

    series_id: int
    resolution: Resolution
    start: int
    count: int
    minimum: float
    maximum: float
    mean: float
    total: float
    quality: Quality = Quality.GOOD

    @property
    def end(self) -> int:
        return self.start + int(self.resolution)
