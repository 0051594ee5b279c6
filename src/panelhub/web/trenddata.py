"""The data of a trend: consumption per bucket for energy, values over time for the rest.

Energy (a counter) is drawn as bars, one per bucket: 5 minutes, an hour, or a local day
summed from hour rollups. Continuous quantities are drawn as lines: raw samples for ranges up
to ``RAW_MAX_S``, 5-minute rollup means up to ``FIVE_MINUTE_MAX_S``, hour means beyond, so a
year of one series is a few thousand points, not half a million. Values are converted to the
base unit (kWh counters and Wh counters add; kV and V draw on one axis).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Final

from panelhub.energy.aggregation import Commodity, Consumer, Grouping, aggregate
from panelhub.energy.periods import Span, day_bounds, regular_bounds
from panelhub.energy.queries import bucket_series
from panelhub.storage.series import Quality, Resolution
from panelhub.storage.timeseries import TimeSeriesStore

#: Raw samples up to two days (a one-minute series: 2,880 points), as the brief for trends says.
RAW_MAX_S: Final = 2 * 86_400 + 3_600  # a 25-hour day at a summer-time change included
#: 5-minute means up to about 60 days (17,000 points per series), hour means beyond.
FIVE_MINUTE_MAX_S: Final = 61 * 86_400
#: Bucket choices for bars, and the longest range each is offered for (bars stay readable).
BUCKETS: Final = {"5min": 86_400 + 3_600, "hour": 31 * 86_400 + 3_600, "day": None}


@dataclass(frozen=True, slots=True)
class Target:
    """One series to draw: its label, store id and factor to the base unit."""

    label: str
    series_id: int
    factor: float


@dataclass(frozen=True, slots=True)
class Point:
    ts: int
    value: float  # NaN: no value (a gap)
    quality: Quality = Quality.GOOD


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    points: tuple[Point, ...]


def auto_bucket(span: Span) -> str:
    """Hours for a day or two, days beyond."""
    return "hour" if span.length_s <= 2 * 86_400 + 3_600 else "day"


def bucket_bounds(span: Span, bucket: str, tz: tzinfo) -> tuple[list[int], Resolution]:
    """The bucket boundaries of ``span`` and the rollups they are summed from."""
    if bucket == "5min":
        return regular_bounds(span, 300), Resolution.FIVE_MINUTES
    if bucket == "hour":
        return regular_bounds(span, 3_600), Resolution.HOUR
    return day_bounds(span, tz), Resolution.HOUR


async def energy_lines(
    store: TimeSeriesStore,
    targets: Sequence[Target],
    bounds: Sequence[int],
    *,
    resolution: Resolution,
    now_s: float,
) -> list[Line]:
    """Consumption per bucket of each target, in the base unit."""
    lines = []
    for target in targets:
        found = await bucket_series(
            store, target.series_id, bounds, resolution=resolution, now_s=now_s
        )
        points = tuple(
            Point(start, value * target.factor, quality)
            for start, (value, quality) in zip(bounds, found, strict=False)
        )
        lines.append(Line(target.label, points))
    return lines


def grouped(
    lines: Sequence[Line],
    consumers: Sequence[Consumer],
    *,
    by: Grouping,
    commodity: Commodity,
) -> list[Line]:
    """Device lines (labelled by device name, one length) summed per usage or zone."""
    if not lines:
        return []
    starts = [point.ts for point in lines[0].points]
    values = {line.label: [point.value for point in line.points] for line in lines}
    sums = aggregate(consumers, values, by=by, commodity=commodity)
    of_device = {c.name: (c.usage.value if by is Grouping.USAGE else c.zone) for c in consumers}
    flags: dict[str, list[Quality]] = {group: [Quality.GOOD] * len(starts) for group in sums}
    for line in lines:
        group = of_device.get(line.label)
        if group in flags:
            for index, point in enumerate(line.points):
                flags[group][index] |= point.quality
    return [
        Line(
            group or "(no zone)",
            tuple(
                Point(ts, v, q) for ts, v, q in zip(starts, sums[group], flags[group], strict=True)
            ),
        )
        for group in sums
    ]


async def value_lines(
    store: TimeSeriesStore, targets: Sequence[Target], span: Span, *, shift_s: int = 0
) -> tuple[list[Line], int]:
    """Values of each target over ``span`` (moved by ``shift_s``), and the step that breaks a line.

    Raw samples, 5-minute or hour means depending on the span's length.
    """
    lines = []
    step = 0
    for target in targets:
        if span.length_s <= RAW_MAX_S:
            samples = await store.read_raw(target.series_id, span.start, span.end)
            points = tuple(
                Point(s.ts + shift_s, s.value * target.factor if s.is_valid else math.nan)
                for s in samples
            )
        else:
            resolution = (
                Resolution.FIVE_MINUTES if span.length_s <= FIVE_MINUTE_MAX_S else Resolution.HOUR
            )
            step = max(step, int(resolution))
            rollups = await store.read_rollups(target.series_id, resolution, span.start, span.end)
            points = tuple(
                Point(r.start + shift_s, r.mean * target.factor if r.count else math.nan, r.quality)
                for r in rollups
            )
        lines.append(Line(target.label, points))
    return lines, step


def shifted(lines: Sequence[Line], shift_s: int, suffix: str) -> list[Line]:
    """Lines moved by ``shift_s`` and relabelled: the comparison period over the first."""
    return [
        Line(
            f"{line.label} {suffix}",
            tuple(Point(p.ts + shift_s, p.value, p.quality) for p in line.points),
        )
        for line in lines
    ]


def lines_json(lines: Sequence[Line]) -> list[dict[str, object]]:
    return [
        {
            "label": line.label,
            "points": [
                {
                    "ts": point.ts,
                    "value": None if math.isnan(point.value) else point.value,
                    "quality": int(point.quality),
                }
                for point in line.points
            ],
        }
        for line in lines
    ]
