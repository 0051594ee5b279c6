"""The trends page and /api/trends: one measurement of devices, or consumption by usage or zone.

A trend is a GET form, so every trend is a bookmarkable URL. Energy (counters) is drawn as
bars of consumption per bucket, anything else as lines; compare mode adds the period of equal
length (in local days) just before, bar next to bar or line over line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from panelhub.devices.units import UNITS
from panelhub.energy.aggregation import Commodity, Grouping
from panelhub.energy.queries import base_unit
from panelhub.storage.series import Sample, SeriesInfo, SeriesKind
from panelhub.storage.timeseries import TimeSeriesStore
from panelhub.web import energyparams as ep
from panelhub.web import trenddata as td
from panelhub.web.access import Access, api, context_of, page
from panelhub.web.charts import BarSeries, Bucket, ChartSeries, Period, bar_chart, line_chart
from panelhub.web.templating import render

VIEWS: Final = ("devices", "usage", "zone")
COMPARE: Final = ("", "previous")
BUCKET_CHOICES: Final = ("auto", *td.BUCKETS)
#: Devices drawn at most in one trend: more lines than colours are unreadable.
MAX_DEVICES: Final = 12
DEFAULT_KEY: Final = "active_energy_import"
KEY_PATTERN: Final = re.compile(r"^[a-z][a-z0-9_]{0,39}$")  # config.models.MeasurementKey
PREVIOUS_SUFFIX: Final = "(previous)"


@dataclass(frozen=True, slots=True)
class TrendQuery:
    view: str
    devices: tuple[str, ...]
    key: str
    commodity: Commodity
    days: ep.DayRange
    previous: ep.DayRange | None
    bucket: str


@dataclass(frozen=True, slots=True)
class Trend:
    kind: str  # "bars" or "lines"
    unit: str  # as shown
    bucket: str  # bars: 5min, hour or day; lines: raw, 5min or hour
    lines: tuple[td.Line, ...]
    chart: str


def routes() -> list[BaseRoute]:
    return [
        page("/trends", trends_page, access=Access.VIEWER),
        api("/api/trends", trends_api, access=Access.VIEWER),
    ]


async def trends_page(request: Request) -> Response:
    """A trend of devices or of usages and zones, as a chart with tooltips."""
    context = context_of(request)
    settings = context.control.settings
    series = [] if context.datalog is None else await context.datalog.store.series()
    base = {
        "views": VIEWS,
        "buckets": BUCKET_CHOICES,
        "commodities": [c.value for c in Commodity],
        "device_names": [d.name for d in settings.devices],
        "keys": sorted({info.key for info in series}),
        "given": _given(request),
    }
    try:
        query = _query(request)
        trend = await _trend(request, query)
    except ep.QueryError as exc:
        return render(
            request, "trends.html", {**base, "error": str(exc), "trend": None}, status_code=400
        )
    return render(request, "trends.html", {**base, "error": "", "query": query, "trend": trend})


async def trends_api(request: Request) -> Response:
    """The series of a trend: per bucket (energy) or per sample (other quantities)."""
    try:
        query = _query(request)
        trend = await _trend(request, query)
    except ep.QueryError as exc:
        return JSONResponse({"error": "invalid_query", "message": str(exc)}, status_code=400)
    body: dict[str, Any] = {
        "from": query.days.first.isoformat(),
        "to": query.days.last.isoformat(),
        "view": query.view,
        "key": query.key,
    }
    if trend is not None:
        body |= {"kind": trend.kind, "unit": trend.unit, "bucket": trend.bucket}
        body["series"] = td.lines_json(trend.lines)
    return JSONResponse(body)


def _given(request: Request) -> dict[str, Any]:
    params = request.query_params
    return {
        **{name: params.get(name, "")[: ep.MAX_PARAM_CHARS] for name in
           ("view", "key", "from", "to", "compare", "bucket", "commodity")},
        "device": params.getlist("device")[:MAX_DEVICES],
    }  # fmt: skip


def _query(request: Request) -> TrendQuery:
    context = context_of(request)
    settings = context.control.settings
    tz = ep.time_zone(settings)
    params = request.query_params
    today = ep.local_today(context.clock(), tz)
    first = ep.date_of(params, "from", today - timedelta(days=1))
    days = ep.day_range(first, ep.date_of(params, "to", max(first, today)), tz)
    previous = None
    if ep.choice_of(params, "compare", COMPARE):
        last = days.first - timedelta(days=1)
        previous = ep.day_range(last - (days.last - days.first), last, tz)
    key = ep.param(params, "key", DEFAULT_KEY) or DEFAULT_KEY
    if not KEY_PATTERN.match(key):
        raise ep.QueryError(f"key: {key!r} is not a measurement key")
    devices = tuple(dict.fromkeys(params.getlist("device")))
    known = {device.name for device in settings.devices}
    for name in devices:
        if name not in known:
            raise ep.QueryError(
                f"device: {name[: ep.MAX_PARAM_CHARS]!r} is not a configured device"
            )
    if len(devices) > MAX_DEVICES:
        raise ep.QueryError(f"device: at most {MAX_DEVICES} devices in one trend")
    bucket = ep.choice_of(params, "bucket", BUCKET_CHOICES)
    bucket = td.auto_bucket(days.span) if bucket == "auto" else bucket
    longest = td.BUCKETS[bucket]
    if longest is not None and days.span.length_s > longest:
        raise ep.QueryError(
            f"bucket: {bucket} bars are offered for at most {longest // 86_400} days"
        )
    view = ep.choice_of(params, "view", VIEWS)
    return TrendQuery(view, devices, key, ep.commodity_of(params), days, previous, bucket)


async def _trend(request: Request, query: TrendQuery) -> Trend | None:
    context = context_of(request)
    if context.datalog is None:
        return None
    store = context.datalog.store
    settings = context.control.settings
    series = await store.series()
    if query.view == "devices":
        targets, kind, base = _device_targets(series, query)
    else:
        meters = ep.meters(settings, series, query.commodity)
        targets = [td.Target(m.consumer.name, m.series_id, m.factor) for m in meters]
        kind, base = SeriesKind.COUNTER, base_unit(query.commodity)
    if not targets:
        return None
    unit, factor = ep.display_unit(base) if kind is SeriesKind.COUNTER else (base, 1.0)
    draw = _Draw(store, request, query, factor, unit)
    if kind is SeriesKind.COUNTER:
        return await draw.bars(targets)
    return await draw.lines(targets)


def _device_targets(
    series: list[SeriesInfo], query: TrendQuery
) -> tuple[list[td.Target], SeriesKind, str]:
    found = [info for info in series if info.key == query.key and info.unit in UNITS]
    if query.devices:
        order = {name: index for index, name in enumerate(query.devices)}
        found = sorted((i for i in found if i.device in order), key=lambda i: order[i.device])
    found = found[:MAX_DEVICES]
    if not found:
        return [], SeriesKind.INSTANT, ""
    bases = {UNITS[info.unit].base for info in found}
    counters = {info.kind is SeriesKind.COUNTER for info in found}
    if len(bases) > 1 or len(counters) > 1:
        raise ep.QueryError(f"key: {query.key!r} is not one quantity on the devices chosen")
    targets = [td.Target(i.device, i.series_id, UNITS[i.unit].factor) for i in found]
    kind = SeriesKind.COUNTER if counters == {True} else SeriesKind.INSTANT
    return targets, kind, bases.pop()


@dataclass(frozen=True, slots=True)
class _Draw:
    store: TimeSeriesStore
    request: Request
    query: TrendQuery
    factor: float  # base unit to the unit shown
    unit: str

    async def bars(self, targets: list[td.Target]) -> Trend:
        context = context_of(self.request)
        settings = context.control.settings
        tz = ep.time_zone(settings)
        periods = [self.query.days, *([self.query.previous] if self.query.previous else [])]
        bars: list[td.Line] = []
        for number, days in enumerate(periods):
            bounds, resolution = td.bucket_bounds(days.span, self.query.bucket, tz)
            lines = await td.energy_lines(
                self.store, targets, bounds, resolution=resolution, now_s=context.clock()
            )
            if self.query.view != "devices":
                by = Grouping(self.query.view)
                consumers = ep.consumers(settings)
                lines = td.grouped(lines, consumers, by=by, commodity=self.query.commodity)
            bars += td.shifted(lines, 0, PREVIOUS_SUFFIX) if number else lines
        shown = tuple(_scaled(line, self.factor) for line in bars)
        chart = bar_chart(
            [
                BarSeries(line.label, [Bucket(p.ts, p.value, p.quality) for p in line.points])
                for line in shown
            ],
            tz=tz,
            unit=self.unit,
            title=f"Consumption per {self.query.bucket}",
        )
        return Trend("bars", self.unit, self.query.bucket, shown, chart)

    async def lines(self, targets: list[td.Target]) -> Trend:
        span = self.query.days.span
        lines, step = await td.value_lines(self.store, targets, span)
        if self.query.previous is not None:
            before = self.query.previous.span
            earlier, _ = await td.value_lines(
                self.store, targets, before, shift_s=span.start - before.start
            )
            lines += td.shifted(earlier, 0, PREVIOUS_SUFFIX)
        shown = tuple(_scaled(line, self.factor) for line in lines)
        tz = ep.time_zone(context_of(self.request).control.settings)
        chart = line_chart(
            [ChartSeries(line.label, [_sample(p) for p in line.points]) for line in shown],
            Period(span.start, span.end, tz),
            unit=self.unit,
            title=f"{self.query.key} ({self.unit})",
            max_gap_s=2 * step if step else None,
        )
        return Trend("lines", self.unit, {0: "raw", 300: "5min", 3600: "hour"}[step], shown, chart)


def _scaled(line: td.Line, factor: float) -> td.Line:
    if factor == 1.0:
        return line
    return replace(line, points=tuple(replace(p, value=p.value * factor) for p in line.points))


def _sample(point: td.Point) -> Sample:
    return Sample(point.ts, point.value) if math.isfinite(point.value) else Sample.invalid(point.ts)
