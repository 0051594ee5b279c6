"""The export page and its downloads: a device's raw data, a device set's daily totals (CSV).

The downloads are API routes (``/api/export/...``) the page's forms call: a download is no
page to bookmark, and a refusal is a JSON message. The raw CSV is the reference layout
(``export.csvraw``): the gateway's identity (Settings' gateway identity), the device's (its
template), one topic per logged measurement (``modbus:{unit}_mb_{key}``) and one row per
logging slot. Daily totals are per local day (``export.csvdaily``). Both are streamed, named
by the reference's rule (``export.filename``), and each download is audited
(``data.exported``): who took a copy of which data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute

from panelhub.config.models import DeviceConfig, Settings
from panelhub.devices.template import DeviceTemplate
from panelhub.energy.aggregation import Commodity
from panelhub.energy.periods import day_bounds
from panelhub.energy.queries import Meter, base_unit, bucket_series
from panelhub.export.chunks import chunks
from panelhub.export.csvdaily import DayTotals, daily_csv_lines
from panelhub.export.csvraw import (
    DeviceIdentity,
    GatewayIdentity,
    Measurement,
    RawHeader,
    raw_csv_lines,
)
from panelhub.export.filename import csv_file_name
from panelhub.security.audit import AuditEvent, DetailValue, Outcome
from panelhub.storage.series import Quality, Resolution, SeriesInfo
from panelhub.storage.timeseries import SyncTimeSeriesStore
from panelhub.web import energyparams as ep
from panelhub.web import rawexport
from panelhub.web.access import Access, api, client_address, context_of, page, session_of
from panelhub.web.templating import render

CSV_TYPE: Final = "text/csv; charset=utf-8"
#: The reduced id of a daily-totals file, in place of a device's ``{unit}_mb``.
DAILY_ID: Final = "daily"


class _RefusedError(Exception):
    """A download that cannot be made; ``status`` and the message say why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def routes() -> list[BaseRoute]:
    return [
        page("/export", export_page, access=Access.VIEWER),
        api("/api/export/raw.csv", raw_csv, access=Access.VIEWER),
        api("/api/export/daily.csv", daily_csv, access=Access.VIEWER),
    ]


async def export_page(request: Request) -> Response:
    """The two download forms: a device's raw data, daily totals of devices."""
    context = context_of(request)
    settings = context.control.settings
    tz = ep.time_zone(settings)
    yesterday = ep.local_today(context.clock(), tz) - dt.timedelta(days=1)
    data = {
        "devices": [device.name for device in settings.devices],
        "commodities": [c.value for c in Commodity],
        "yesterday": yesterday.isoformat(),
        "timezone": settings.timezone,
    }
    return render(request, "export.html", data)


async def raw_csv(request: Request) -> Response:
    """A device's raw samples of a period (local days) in the reference CSV layout."""
    try:
        plan = await _raw_plan(request)
    except (ep.QueryError, _RefusedError) as exc:
        return await _refused(request, exc)
    await _audit(request, {"format": "raw", "devices": plan.device.name, **plan.days_detail})
    return _download(request, plan.lines(), plan.filename)


async def daily_csv(request: Request) -> Response:
    """Daily consumption of devices over a period of local days, one column per device."""
    try:
        names, days, filename, lines = await _daily_plan(request)
    except (ep.QueryError, _RefusedError) as exc:
        return await _refused(request, exc)
    details = {"format": "daily", "devices": ", ".join(names), **_days_detail(days)}
    await _audit(request, details)
    return _download(request, lines, filename)


@dataclass(frozen=True, slots=True)
class _RawPlan:
    store: SyncTimeSeriesStore
    device: DeviceConfig
    header: RawHeader  # row_count filled in by ``lines``
    series: Sequence[SeriesInfo]
    range_s: tuple[int, int]
    tz: dt.tzinfo
    filename: str
    days_detail: dict[str, DetailValue]

    def lines(self) -> Iterator[str]:
        # Runs in a worker thread (Starlette iterates a plain iterator there): both reads block.
        start, end = self.range_s
        count = rawexport.count_rows(self.store, self.series, start, end)
        header = dataclasses.replace(self.header, row_count=count)
        rows = rawexport.rows(self.store, self.series, start, end)
        yield from chunks(raw_csv_lines(header, rows, tz=self.tz))


async def _raw_plan(request: Request) -> _RawPlan:
    context = context_of(request)
    settings = context.control.settings
    if context.datalog is None:
        raise _RefusedError("the datalogger is not running: there is no data to export", 503)
    device = _device(settings, ep.param(request.query_params, "device"))
    template = context.datalog.catalog.get(device.model)
    tz = ep.time_zone(settings)
    days = _days(request, tz)
    stored = await context.datalog.store.series_for(device.name)
    switched_off = {item.key for item in device.measurements if not item.enable}
    series = _in_template_order([i for i in stored if i.key not in switched_off], template)
    header = RawHeader(
        gateway=_gateway_identity(settings, request),
        device=_device_identity(device, template),
        logging_interval_min=device.period_min,
        measurements=[_measurement(device, info, template) for info in series],
        row_count=0,
    )
    now = dt.datetime.fromtimestamp(context.clock(), tz)
    return _RawPlan(
        context.datalog.store.sync,
        device,
        header,
        series,
        rawexport.settled(days.span, context.clock()),
        tz,
        csv_file_name(f"{device.unit_id}_mb", device.name, now),
        _days_detail(days),
    )


async def _daily_plan(request: Request) -> tuple[list[str], ep.DayRange, str, Iterator[str]]:
    context = context_of(request)
    settings = context.control.settings
    if context.datalog is None:
        raise _RefusedError("the datalogger is not running: there is no data to export", 503)
    params = request.query_params
    commodity = ep.commodity_of(params)
    tz = ep.time_zone(settings)
    days = _days(request, tz)
    chosen = [_device(settings, name).name for name in dict.fromkeys(params.getlist("device"))]
    meters = ep.meters(settings, await context.datalog.store.series(), commodity)
    if chosen:
        by_name = {meter.consumer.name: meter for meter in meters}
        missing = [name for name in chosen if name not in by_name]
        if missing:
            raise ep.QueryError(f"device: {', '.join(missing)} logs no {commodity} counter")
        meters = [by_name[name] for name in chosen]
    if not meters:
        raise _RefusedError(f"no device logs a {commodity} counter", 404)
    bounds = day_bounds(days.span, tz)
    columns = [
        await bucket_series(context.datalog.store, m.series_id, bounds,
                            resolution=Resolution.HOUR, now_s=context.clock())
        for m in meters
    ]  # fmt: skip
    unit, factor = ep.display_unit(base_unit(commodity))
    rows = _day_rows(meters, bounds, columns, tz)
    names = [m.consumer.name for m in meters]
    lines = chunks(daily_csv_lines(names, rows, unit=unit, factor=factor))
    now = dt.datetime.fromtimestamp(context.clock(), tz)
    return names, days, csv_file_name(DAILY_ID, str(commodity), now), lines


def _day_rows(
    meters: Sequence[Meter],
    bounds: Sequence[int],
    columns: Sequence[Sequence[tuple[float, Quality]]],
    tz: dt.tzinfo,
) -> list[DayTotals]:
    """One row per local day from each meter's daily totals (in its unit: times its factor)."""
    return [
        DayTotals(
            dt.datetime.fromtimestamp(start, tz).date(),
            [
                None if math.isnan(value) else value * meter.factor
                for meter, (value, _quality) in zip(meters, cells, strict=True)
            ],
            [quality for _value, quality in cells],
        )
        for start, cells in zip(bounds, zip(*columns, strict=True), strict=False)
    ]


def _days(request: Request, tz: dt.tzinfo) -> ep.DayRange:
    yesterday = ep.local_today(context_of(request).clock(), tz) - dt.timedelta(days=1)
    first = ep.date_of(request.query_params, "from", yesterday)
    return ep.day_range(first, ep.date_of(request.query_params, "to", max(first, yesterday)), tz)


def _days_detail(days: ep.DayRange) -> dict[str, DetailValue]:
    return {"from": days.first.isoformat(), "to": days.last.isoformat()}


def _device(settings: Settings, name: str) -> DeviceConfig:
    for device in settings.devices:
        if device.name == name:
            return device
    raise ep.QueryError(
        f"device: {name!r} is not a configured device" if name else "device: choose one"
    )


def _in_template_order(
    series: list[SeriesInfo], template: DeviceTemplate | None
) -> list[SeriesInfo]:
    order = {m.key: index for index, m in enumerate(template.measurements)} if template else {}
    return sorted(series, key=lambda info: (order.get(info.key, len(order)), info.series_id))


def _gateway_identity(settings: Settings, request: Request) -> GatewayIdentity:
    identity = settings.gateway.identity
    name = identity.user_application_name or identity.product_name
    # The address the user reached the panel at; the MAC is not known to the pages.
    return GatewayIdentity(name, identity.serial_number, request.url.hostname or "", "")


def _device_identity(device: DeviceConfig, template: DeviceTemplate | None) -> DeviceIdentity:
    type_name = f"{template.vendor} {template.model}" if template else device.model
    return DeviceIdentity(device.name, f"modbus:{device.unit_id}_mb", device.model, type_name)


def _measurement(
    device: DeviceConfig, info: SeriesInfo, template: DeviceTemplate | None
) -> Measurement:
    name = info.key
    if template is not None:
        name = next((m.name for m in template.measurements if m.key == info.key), info.key)
    return Measurement(f"modbus:{device.unit_id}_mb_{info.key}", name, info.unit)


async def _audit(request: Request, details: dict[str, DetailValue]) -> None:
    if request.method == "HEAD":  # no copy is taken: nothing to record
        return
    await context_of(request).audit.record(
        AuditEvent.DATA_EXPORTED,
        outcome=Outcome.SUCCESS,
        user=session_of(request).user_name,
        source=client_address(request),
        interface="web",
        details=details,
    )


def _download(request: Request, lines: Iterator[str], filename: str) -> Response:
    if request.method == "HEAD":
        lines = iter(())
    return StreamingResponse(
        lines,
        media_type=CSV_TYPE,
        headers={"Content-Disposition": content_disposition(filename)},
    )


def content_disposition(filename: str) -> str:
    """An attachment header any browser reads, for any device name (RFC 6266, RFC 5987).

    HTTP headers are Latin-1: a name in another script goes in ``filename*`` (UTF-8,
    percent-encoded), with an ASCII ``filename`` for old clients.
    """
    ascii_name = "".join(char if " " <= char < "\x7f" else "_" for char in filename)
    encoded = urllib.parse.quote(filename, safe="")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"


async def _refused(request: Request, exc: Exception) -> Response:
    # The forms' fields are lists and dates: a refusal is rare enough to be a plain message.
    status = exc.status if isinstance(exc, _RefusedError) else 400
    code = "invalid_query" if status == 400 else "unavailable"
    return JSONResponse({"error": code, "message": str(exc)}, status_code=status)
