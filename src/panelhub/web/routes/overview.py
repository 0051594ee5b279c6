"""The home page: the consumption overview of a commodity, and its JSON twin /api/overview.

reference-device.md §1.5: a period (yesterday by default, one week, four weeks or custom
days) against the period of equal length before it; two donuts of the top five consumers by
usage and by zone plus "others", each with a table of shares, consumption and change; the
main supply (devices of usage main or sub-main, left out of the donuts) shown apart. A figure
whose rollups were flagged (a gap, an estimate, a counter reset) is marked with its flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from panelhub.energy.aggregation import Commodity, Share
from panelhub.energy.queries import Figure, Grouped, Overview, overview
from panelhub.web import energyparams as ep
from panelhub.web.access import Access, api, context_of, page
from panelhub.web.charts import Slice, pie_chart
from panelhub.web.templating import render

#: What the page calls a group of devices with no zone set.
NO_ZONE: Final = "(no zone)"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a side table, as text: what the page shows and the tests read."""

    name: str
    share: str
    consumption: str
    previous: str
    change: str
    flags: str
    is_others: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    ident: str  # "usage" or "zone": the table's id
    title: str
    chart: str  # SVG, escaped when built
    rows: tuple[Row, ...]
    total: str


def routes() -> list[BaseRoute]:
    return [
        page("/", home, access=Access.VIEWER),
        api("/api/overview", overview_api, access=Access.VIEWER),
    ]


async def home(request: Request) -> Response:
    """The consumption overview: top consumers by usage and by zone, the mains apart."""
    base = {
        "commodities": [c.value for c in Commodity],
        "presets": [*ep.PRESET_DAYS, ep.CUSTOM],
        "timezone": context_of(request).control.settings.timezone,
    }
    try:
        query, found = await _overview(request)
    except ep.QueryError as exc:
        given = {key: request.query_params.get(key, "") for key in ("commodity", "period")}
        page_data = {**base, "error": str(exc), "given": given, "found": None}
        return render(request, "home.html", page_data, status_code=400)
    return render(request, "home.html", {**base, "error": "", **_page(query, found)})


async def overview_api(request: Request) -> Response:
    """The overview's figures: per device, per usage and per zone, in the commodity's unit."""
    try:
        query, found = await _overview(request)
    except ep.QueryError as exc:
        return JSONResponse({"error": "invalid_query", "message": str(exc)}, status_code=400)
    body: dict[str, Any] = {**_query_json(query), "datalogger": found is not None}
    if found is not None:
        body |= {
            "unit": found.unit,
            "devices": [_figure_json(f) for f in found.devices],
            "mains": [_figure_json(f) for f in found.mains],
            "by_usage": _grouped_json(found.by_usage),
            "by_zone": _grouped_json(found.by_zone),
        }
    return JSONResponse(body)


@dataclass(frozen=True, slots=True)
class _Query:
    commodity: Commodity
    preset: str
    days: ep.DayRange
    previous: ep.DayRange


async def _overview(request: Request) -> tuple[_Query, Overview | None]:
    context = context_of(request)
    settings = context.control.settings
    tz = ep.time_zone(settings)
    now_s = context.clock()
    params = request.query_params
    commodity = ep.commodity_of(params)
    preset, days = ep.preset_range(params, today=ep.local_today(now_s, tz), tz=tz)
    before_last = days.first - timedelta(days=1)
    previous = ep.day_range(before_last - (days.last - days.first), before_last, tz)
    query = _Query(commodity, preset, days, previous)
    if context.datalog is None:
        return query, None
    store = context.datalog.store
    meters = ep.meters(settings, await store.series(), commodity)
    return query, await overview(store, meters, days.span, previous=previous.span, now_s=now_s)


def _page(query: _Query, found: Overview | None) -> dict[str, Any]:
    given = {
        "commodity": query.commodity.value,
        "period": query.preset,
        "from": query.days.first.isoformat(),
        "to": query.days.last.isoformat(),
    }
    data: dict[str, Any] = {
        "given": given,
        "query": query,
        "found": found,
        "period_text": _days_text(query.days),
        "previous_text": _days_text(query.previous),
    }
    if found is None:
        return data
    unit, factor = ep.display_unit(found.unit)
    data |= {
        "unit": unit,
        "mains": [_figure_row(f, factor) for f in found.mains],
        "sections": [
            _section("usage", "By usage", found.by_usage, (unit, factor)),
            _section("zone", "By zone", found.by_zone, (unit, factor)),
        ],
    }
    return data


def _days_text(days: ep.DayRange) -> str:
    if days.first == days.last:
        return days.first.isoformat()
    return f"{days.first.isoformat()} to {days.last.isoformat()}"


def _section(ident: str, title: str, grouped: Grouped, unit: tuple[str, float]) -> Section:
    name, factor = unit
    ranking = grouped.ranking
    shares = [*ranking.top, *([ranking.others] if ranking.others else [])]
    rows = tuple(_share_row(share, grouped, factor) for share in shares)
    slices = [
        Slice(row.name, share.consumption * factor, is_others=row.is_others)
        for row, share in zip(rows, shares, strict=True)
    ]
    total = f"{ep.number_text(ranking.total * factor)} {name}"
    chart = pie_chart(slices, unit=name, title=f"Consumption {title.lower()}", centre_text=total)
    return Section(ident, title, chart, rows, total)


def _share_row(share: Share, grouped: Grouped, factor: float) -> Row:
    is_others = share is grouped.ranking.others
    return Row(
        "Others" if is_others else share.name or NO_ZONE,
        f"{share.share_pct:.1f} %",
        ep.number_text(share.consumption * factor),
        ep.number_text(grouped.previous(share) * factor),
        ep.change_text(share.change_pct),
        ep.quality_text(grouped.flags(share)),
        is_others=is_others,
    )


def _figure_row(figure: Figure, factor: float) -> Row:
    return Row(
        figure.name,
        "",
        ep.number_text(figure.now * factor),
        ep.number_text(figure.before * factor),
        ep.change_text(figure.change_pct),
        ep.quality_text(figure.quality),
    )


def _query_json(query: _Query) -> dict[str, Any]:
    return {
        "commodity": query.commodity.value,
        "period": {"from": query.days.first.isoformat(), "to": query.days.last.isoformat()},
        "previous": {
            "from": query.previous.first.isoformat(),
            "to": query.previous.last.isoformat(),
        },
    }


def _figure_json(figure: Figure) -> dict[str, Any]:
    return {
        "name": figure.name,
        "consumption": figure.now,
        "previous": figure.before,
        "change_pct": figure.change_pct,
        "quality": ep.quality_text(figure.quality).split(", ") if figure.quality else [],
    }


def _grouped_json(grouped: Grouped) -> dict[str, Any]:
    def share(item: Share) -> dict[str, Any]:
        flags = grouped.flags(item)
        return {
            "name": item.name,
            "consumption": item.consumption,
            "previous": grouped.previous(item),
            "share_pct": item.share_pct,
            "change_pct": item.change_pct,
            "quality": ep.quality_text(flags).split(", ") if flags else [],
        }

    ranking = grouped.ranking
    return {
        "top": [share(item) for item in ranking.top],
        "others": share(ranking.others) if ranking.others else None,
        "total": ranking.total,
        "previous_total": ranking.previous_total,
        "change_pct": ranking.change_pct,
    }
