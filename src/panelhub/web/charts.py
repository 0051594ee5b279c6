"""Charts drawn on the server as SVG text: lines for quantities, bars for energy, a donut.

Pure: records in, an ``<svg>`` string out, ready to be placed in a page as it is. Charts work
without JavaScript: each drawn point, bar and slice carries an SVG ``<title>``, which browsers
show as a tooltip ("time, device, value unit"). Times are drawn in the installation's time
zone. Everything a user typed (device names, titles) is escaped (see :mod:`.chartsvg`).
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Final

from panelhub.storage.series import Quality, Rollup, Sample
from panelhub.web import chartsvg
from panelhub.web.chartaxes import TimeUnit, time_label, time_ticks, value_ticks
from panelhub.web.chartpoints import Point, runs
from panelhub.web.chartsvg import Box

#: Chart size in SVG units; the style sheet scales it to the page width.
WIDTH: Final = 800
#: Room for value labels on the left, the unit above, time labels below (SVG units).
PLOT: Final = Box(left=64, top=28, width=WIDTH - 64 - 32, height=220)
TIME_LABELS_H: Final = 34
#: Time bars get at most this many labels (one per N buckets) so labels never overlap.
MAX_BAR_LABELS: Final = 12
#: Share of a bucket's width its bars fill: the rest separates neighbouring buckets.
BAR_GROUP_SHARE: Final = 0.8
#: The home page's pie: the five largest consumers, the rest as one "others" slice.
TOP_SLICES: Final = 5
#: Donut geometry (SVG units): 220 square, a 36-unit ring, the legend to its right.
DONUT_SIZE: Final = 220
DONUT_RADIUS: Final = 80
DONUT_WIDTH: Final = 36
DONUT_LEGEND_X: Final = 240
DONUT_ROW_H: Final = 22
#: Radius of a tooltip target around a line point; an isolated point is drawn this size too.
POINT_RADIUS: Final = 3


@dataclass(frozen=True, slots=True)
class Period:
    """The time range a chart shows, UTC seconds, and the zone its times are written in."""

    start: int
    end: int
    tz: tzinfo

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("a chart period needs an end after its start")


@dataclass(frozen=True, slots=True)
class ChartSeries:
    label: str  # the device name (user input), shown in the legend and the tooltips
    samples: Sequence[Sample]  # oldest first; invalid samples are gaps

    @classmethod
    def from_rollups(cls, label: str, rollups: Sequence[Rollup]) -> ChartSeries:
        """Return the series of the buckets' means, at their start; an empty bucket is a gap.

        Long trends read rollups (5 minutes, hours) rather than raw samples.
        """
        return cls(
            label,
            [
                Sample(rollup.start, rollup.mean)
                if rollup.count and math.isfinite(rollup.mean)
                else Sample.invalid(rollup.start)
                for rollup in rollups
            ],
        )


@dataclass(frozen=True, slots=True)
class Bucket:
    start: int  # UTC seconds; shown in the tooltip
    value: float  # consumption in the chart's unit; NaN when there is none
    quality: Quality = Quality.GOOD


@dataclass(frozen=True, slots=True)
class BarSeries:
    """One series of bars; the i-th bucket of every series is drawn in the i-th slot.

    Aligning by position is what compare mode needs (period 2's first day next to period 1's)
    and keeps 23- and 25-hour local days in line.
    """

    label: str
    buckets: Sequence[Bucket]


@dataclass(frozen=True, slots=True)
class Slice:
    label: str  # a usage, a zone or a device (user input)
    value: float
    is_others: bool = False  # the remainder after the top slices: drawn grey


@dataclass(frozen=True, slots=True)
class _Labels:
    """What a tooltip says besides the time and value: the series, the unit, the zone."""

    series: str
    unit: str
    tz: tzinfo


@dataclass(frozen=True, slots=True)
class _BarLayout:
    slot_w: float
    bar_w: float
    bottom_value: float
    top_value: float

    @classmethod
    def of(cls, slots: int, series: int, value_range: tuple[float, float]) -> _BarLayout:
        slot_w = PLOT.width / max(slots, 1)
        return cls(slot_w, slot_w * BAR_GROUP_SHARE / max(series, 1), *value_range)

    def centre(self, slot: int) -> float:
        return PLOT.left + (slot + 0.5) * self.slot_w

    def rect(self, slot: int, index: int, value: float) -> dict[str, str]:
        x = PLOT.left + slot * self.slot_w + self.slot_w * (1 - BAR_GROUP_SHARE) / 2
        x += index * self.bar_w
        # Never a negative bar: below zero is drawn as an empty bar at the axis.
        share = (max(value, 0.0) - self.bottom_value) / (self.top_value - self.bottom_value)
        height = share * PLOT.height
        return {
            "x": f"{x:.1f}",
            "y": f"{PLOT.bottom - height:.1f}",
            "width": f"{self.bar_w:.1f}",
            "height": f"{height:.1f}",
        }


def line_chart(
    series: Sequence[ChartSeries],
    period: Period,
    *,
    unit: str,
    title: str,
    max_gap_s: int | None = None,
) -> str:
    """Return a line chart: one polyline per run of valid samples, ticks, legend, tooltips.

    Args:
        series: the series to draw, in legend order.
        period: the time axis.
        unit: the values' unit, written above the value axis and in the tooltips.
        title: what the chart shows, for screen readers and the chart's own tooltip.
        max_gap_s: a longer step between samples breaks the line (None: only invalid ones).
    """
    kept = [
        runs(item.samples, start=period.start, end=period.end, max_gap_s=max_gap_s)
        for item in series
    ]
    values = [point.value for item in kept for run in item for point in run]
    ticks = value_ticks(min(values, default=math.nan), max(values, default=math.nan))
    labels = [item.label for item in series]
    svg = chartsvg.root(
        _size(len(series)),
        ident=chartsvg.chart_id(title, labels),
        title=title,
        description=f"Line chart in {unit} from {_moment(period.start, period.tz)} to "
        f"{_moment(period.end, period.tz)}: {', '.join(labels) or 'no series'}.",
    )
    chartsvg.value_axis(svg, ticks, PLOT, unit)
    x_of = _time_scale(period)
    y_of = _value_scale(ticks[0].position, ticks[-1].position)
    axis = time_ticks(period.start, period.end, period.tz)
    chartsvg.time_axis(svg, [(x_of(tick.position), tick.label) for tick in axis], PLOT)
    for index, (item, item_runs) in enumerate(zip(series, kept, strict=True)):
        group = ET.SubElement(svg, "g", {"class": "series", "fill": chartsvg.colour(index)})
        labels_of = _Labels(item.label, unit, period.tz)
        for run in item_runs:
            xy = [(x_of(point.ts), y_of(point.value)) for point in run]
            _draw_run(group, run, xy, labels_of, colour=chartsvg.colour(index))
    legend = [(label, chartsvg.colour(index)) for index, label in enumerate(labels)]
    chartsvg.legend(svg, legend, PLOT, PLOT.bottom + TIME_LABELS_H)
    return chartsvg.serialise(svg)


def bar_chart(series: Sequence[BarSeries], *, tz: tzinfo, unit: str, title: str) -> str:
    """Return a bar chart: a group of bars per bucket, one bar per series, never negative.

    A bucket whose quality is not GOOD is drawn hatched and its tooltip names the flags; a
    bucket with no value (NaN) draws no bar. A negative value (which the energy code never
    produces) draws an empty bar; its tooltip still shows the value.
    """
    slots = max((len(item.buckets) for item in series), default=0)
    values = [b.value for item in series for b in item.buckets if math.isfinite(b.value)]
    ticks = value_ticks(0.0, max([*values, 0.0]) or 1.0)
    labels = [item.label for item in series]
    ident = chartsvg.chart_id(title, labels)
    legend = [(label, chartsvg.colour(index)) for index, label in enumerate(labels)]
    if any(b.quality != Quality.GOOD for item in series for b in item.buckets):
        legend.append(("flagged: see tooltip", f"url(#{ident}-flag-legend)"))
    svg = chartsvg.root(
        _size(len(legend)),
        ident=ident,
        title=title,
        description=f"Bar chart in {unit}, {slots} periods: {', '.join(labels) or 'no series'}.",
    )
    _hatches(svg, ident, len(series))
    chartsvg.value_axis(svg, ticks, PLOT, unit)
    layout = _BarLayout.of(slots, len(series), (ticks[0].position, ticks[-1].position))
    starts = _slot_starts(series, slots)
    time_unit = _bucket_unit(starts)
    every = -(-slots // MAX_BAR_LABELS) or 1
    axis = [
        (layout.centre(slot), time_label(datetime.fromtimestamp(ts, tz), time_unit))
        for slot, ts in enumerate(starts)
        if slot % every == 0 and ts is not None
    ]
    chartsvg.time_axis(svg, axis, PLOT)
    for index, item in enumerate(series):
        _draw_bars(svg, item, index, layout, (_Labels(item.label, unit, tz), time_unit, ident))
    chartsvg.legend(svg, legend, PLOT, PLOT.bottom + TIME_LABELS_H)
    return chartsvg.serialise(svg)


def top_slices(
    slices: Sequence[Slice], *, count: int = TOP_SLICES, others_label: str = "Others"
) -> list[Slice]:
    """Return the ``count`` largest slices and one ``others_label`` slice summing the rest."""
    ranked = sorted(slices, key=lambda item: item.value, reverse=True)
    rest = [item.value for item in ranked[count:] if math.isfinite(item.value)]
    if not rest:
        return ranked[:count]
    return [*ranked[:count], Slice(others_label, sum(rest), is_others=True)]


def pie_chart(slices: Sequence[Slice], *, unit: str, title: str, centre_text: str = "") -> str:
    """Return a donut chart with a legend of percentages; ``<title>`` on each slice.

    Slices that are zero, negative or NaN take no room and are left out of the legend; the
    percentages are of the sum of the others. The "others" slice of :func:`top_slices` is
    grey, so it never looks like one more consumer.
    """
    shown = [item for item in slices if math.isfinite(item.value) and item.value > 0]
    total = sum(item.value for item in shown)
    size = (DONUT_LEGEND_X + chartsvg.LEGEND_ITEM_W + 40, DONUT_SIZE)
    size = (size[0], max(DONUT_SIZE, len(shown) * DONUT_ROW_H + 2 * DONUT_ROW_H))
    parts = ", ".join(f"{item.label} {_percent(item.value, total)}" for item in shown)
    svg = chartsvg.root(
        size,
        ident=chartsvg.chart_id(title, [item.label for item in slices]),
        title=title,
        description=f"Donut chart of {_number(total)} {unit}: {parts or 'nothing to show'}.",
    )
    centre = DONUT_SIZE / 2
    ring = {"cx": f"{centre:g}", "cy": f"{centre:g}", "r": f"{DONUT_RADIUS:g}", "fill": "none"}
    ring["stroke-width"] = f"{DONUT_WIDTH:g}"
    ET.SubElement(svg, "circle", {**ring, "stroke": chartsvg.GRID_COLOUR})
    done = 0.0
    for index, item in enumerate(shown):
        share = item.value / total * 100
        slice_colour = chartsvg.OTHERS_COLOUR if item.is_others else chartsvg.colour(index)
        _draw_slice(svg, ring, (done, share), slice_colour)
        chartsvg.tooltip(svg[-1], f"{item.label}: {_number(item.value)} {unit} ({share:.1f} %)")
        _legend_row(svg, index, f"{item.label}: {share:.1f} %", slice_colour)
        done += share
    text = centre_text if total > 0 else "No consumption"
    chartsvg.text(svg, (centre, centre + 4), text, **{"text-anchor": "middle"})
    return chartsvg.serialise(svg)


def _draw_run(
    group: ET.Element,
    run: Sequence[Point],
    xy: Sequence[tuple[float, float]],
    labels: _Labels,
    *,
    colour: str,
) -> None:
    if len(xy) > 1:
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        line = {"points": points, "fill": "none", "stroke": colour, "stroke-width": "1.5"}
        ET.SubElement(group, "polyline", line | {"stroke-linejoin": "round"})
    # One circle per kept point carries the tooltip; the style sheet shows it on hover only,
    # except for a lone point between two gaps, which is the only mark of its value.
    point_class = "point lone" if len(run) == 1 else "point"
    for point, (x, y) in zip(run, xy, strict=True):
        circle = {"cx": f"{x:.1f}", "cy": f"{y:.1f}", "r": str(POINT_RADIUS)}
        node = ET.SubElement(group, "circle", circle | {"class": point_class})
        chartsvg.tooltip(
            node,
            f"{_moment(point.ts, labels.tz)}, {labels.series}, "
            f"{_number(point.value)} {labels.unit}",
        )


def _draw_bars(
    svg: ET.Element,
    item: BarSeries,
    index: int,
    layout: _BarLayout,
    context: tuple[_Labels, TimeUnit, str],
) -> None:
    labels, time_unit, ident = context
    group = ET.SubElement(svg, "g", {"class": "series", "fill": chartsvg.colour(index)})
    for slot, bucket in enumerate(item.buckets):
        if not math.isfinite(bucket.value):
            continue
        bar = layout.rect(slot, index, bucket.value)
        text = f"{_when(bucket.start, labels.tz, time_unit)}, {labels.series}, "
        text += f"{_number(bucket.value)} {labels.unit}"
        if bucket.quality != Quality.GOOD:
            bar |= {"fill": f"url(#{ident}-flag-{index})", "stroke": chartsvg.colour(index)}
            bar["class"] = "flagged"
            text += f" (flagged: {_flags(bucket.quality)})"
        chartsvg.tooltip(ET.SubElement(group, "rect", bar), text)


def _hatches(svg: ET.Element, ident: str, count: int) -> None:
    """Define one diagonal hatch per series colour (and a grey one for the legend)."""
    defs = ET.SubElement(svg, "defs")
    fills = [(f"{ident}-flag-{index}", chartsvg.colour(index)) for index in range(count)]
    for pattern_id, fill in [*fills, (f"{ident}-flag-legend", chartsvg.MUTED_COLOUR)]:
        pattern = ET.SubElement(
            defs,
            "pattern",
            {
                "id": pattern_id,
                "width": "6",
                "height": "6",
                "patternUnits": "userSpaceOnUse",
                "patternTransform": "rotate(45)",
            },
        )
        ET.SubElement(pattern, "rect", {"width": "6", "height": "6", "fill": "#ffffff"})
        stripe = {"x1": "0", "y1": "0", "x2": "0", "y2": "6", "stroke": fill}
        ET.SubElement(pattern, "line", stripe | {"stroke-width": "3"})


def _draw_slice(
    svg: ET.Element, ring: dict[str, str], span: tuple[float, float], fill: str
) -> None:
    # A dash of the ring's circumference (pathLength 100 makes it a percentage), rotated to
    # start at twelve o'clock: no arc maths, and a 100 % slice is still a full ring.
    done, share = span
    centre = ring["cx"]
    dash = {"pathLength": "100", "stroke-dasharray": f"{share:.3f} 100", "stroke": fill}
    dash |= {"stroke-dashoffset": f"{-done:.3f}", "transform": f"rotate(-90 {centre} {centre})"}
    ET.SubElement(svg, "circle", ring | dash | {"class": "slice"})


def _legend_row(svg: ET.Element, index: int, label: str, fill: str) -> None:
    y = DONUT_ROW_H + index * DONUT_ROW_H
    swatch = {"x": str(DONUT_LEGEND_X), "y": f"{y - 10:g}", "width": "12", "height": "12"}
    ET.SubElement(svg, "rect", swatch | {"fill": fill})
    chartsvg.text(svg, (DONUT_LEGEND_X + 18, y), label)


def _slot_starts(series: Sequence[BarSeries], slots: int) -> list[int | None]:
    """Return each slot's start from the first series that has a bucket there."""
    return [
        next((item.buckets[slot].start for item in series if slot < len(item.buckets)), None)
        for slot in range(slots)
    ]


def _bucket_unit(starts: Sequence[int | None]) -> TimeUnit:
    """Guess the buckets' length from their spacing: a 23-hour local day is still a day."""
    known = [ts for ts in starts if ts is not None]
    spacing_s = min((b - a for a, b in itertools.pairwise(known)), default=86_400)
    if spacing_s < 20 * 3_600:
        return TimeUnit.HOUR
    if spacing_s < 27 * 86_400:
        return TimeUnit.DAY
    return TimeUnit.MONTH if spacing_s < 360 * 86_400 else TimeUnit.YEAR


def _size(legend_items: int) -> tuple[float, float]:
    return WIDTH, PLOT.bottom + TIME_LABELS_H + chartsvg.legend_height(legend_items, PLOT.width)


def _time_scale(period: Period) -> Callable[[float], float]:
    span_s = period.end - period.start
    return lambda ts: PLOT.left + (ts - period.start) / span_s * PLOT.width


def _value_scale(low: float, high: float) -> Callable[[float], float]:
    return lambda value: PLOT.bottom - (value - low) / (high - low) * PLOT.height


def _moment(ts: float, tz: tzinfo) -> str:
    return f"{datetime.fromtimestamp(ts, tz):%Y-%m-%d %H:%M}"


def _when(ts: int, tz: tzinfo, unit: TimeUnit) -> str:
    """Return a bucket's time as precise as the bucket: an hour, a day, a month, a year."""
    formats = {TimeUnit.DAY: "%Y-%m-%d", TimeUnit.MONTH: "%Y-%m", TimeUnit.YEAR: "%Y"}
    return f"{datetime.fromtimestamp(ts, tz):{formats.get(unit, '%Y-%m-%d %H:%M')}}"


def _number(value: float) -> str:
    """Return a value with the decimals a reader needs: 231.5 V, 0.012 kWh, 12346 kWh."""
    magnitude = abs(value)
    decimals = 0 if magnitude >= 1000 else 1 if magnitude >= 100 else 2 if magnitude >= 1 else 3
    return f"{value:.{decimals}f}"


def _percent(value: float, total: float) -> str:
    return f"{value / total * 100:.1f} %"


def _flags(quality: Quality) -> str:
    return ", ".join(
        str(flag.name).lower().replace("_", " ") for flag in Quality if flag and flag in quality
    )
