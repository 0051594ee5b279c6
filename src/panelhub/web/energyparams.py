"""The energy pages' query parameters, read and checked, and what they share: zone, meters, units.

A bad parameter raises ``QueryError`` with a message naming it; the pages answer 400 with that
message, never 500. Days are local days in ``Settings.timezone``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.datastructures import QueryParams

from panelhub.config.models import Settings
from panelhub.devices.units import UNITS
from panelhub.energy.aggregation import Commodity, Consumer
from panelhub.energy.periods import Span, local_days
from panelhub.energy.queries import Meter, pick_meters
from panelhub.storage.series import Quality, SeriesInfo

#: The home page's period presets, in days ending with yesterday (reference-device.md §1.5:
#: one day, one week, four weeks, or a custom range).
PRESET_DAYS: Final = {"day": 1, "week": 7, "4weeks": 28}
CUSTOM: Final = "custom"
#: Longest parameter value read: dates, keys and names are all far shorter.
MAX_PARAM_CHARS: Final = 64
#: Units shown with a prefix: consumption in kWh reads better than in Wh.
DISPLAY_UNITS: Final = {"Wh": ("kWh", 1e-3), "varh": ("kvarh", 1e-3), "VAh": ("kVAh", 1e-3)}


class QueryError(ValueError):
    """A query parameter that cannot be used; the message names it and says what is allowed."""


@dataclass(frozen=True, slots=True)
class DayRange:
    """Local days ``first`` to ``last`` (both included) and their span in UTC seconds."""

    first: date
    last: date
    span: Span


def time_zone(settings: Settings) -> tzinfo:
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):  # validated at load; a removed tzdata entry
        return ZoneInfo("UTC")


def param(params: QueryParams, name: str, default: str = "") -> str:
    value = params.get(name, default).strip()
    if len(value) > MAX_PARAM_CHARS:
        raise QueryError(f"{name}: at most {MAX_PARAM_CHARS} characters")
    return value


def commodity_of(params: QueryParams) -> Commodity:
    value = param(params, "commodity", Commodity.ELECTRICITY.value)
    try:
        return Commodity(value)
    except ValueError:
        allowed = ", ".join(item.value for item in Commodity)
        raise QueryError(f"commodity: {value!r} is not one of {allowed}") from None


def date_of(params: QueryParams, name: str, default: date) -> date:
    value = param(params, name)
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def choice_of(params: QueryParams, name: str, allowed: Sequence[str]) -> str:
    """The parameter, which must be one of ``allowed`` (the first is the default)."""
    value = param(params, name, allowed[0]) or allowed[0]
    if value not in allowed:
        raise QueryError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def day_range(first: date, last: date, tz: tzinfo) -> DayRange:
    if last < first:
        raise QueryError(f"to: {last} is before from: {first}")
    try:
        return DayRange(first, last, local_days(first, last, tz))
    except (ValueError, OverflowError) as exc:
        raise QueryError(f"from/to: {exc}") from None


def preset_range(params: QueryParams, *, today: date, tz: tzinfo) -> tuple[str, DayRange]:
    """The period of the home page: a preset ending yesterday, or custom ``from``-``to``."""
    preset = choice_of(params, "period", [*PRESET_DAYS, CUSTOM])
    yesterday = today - timedelta(days=1)
    if preset == CUSTOM:
        first = date_of(params, "from", yesterday)
        return preset, day_range(first, date_of(params, "to", first), tz)
    days = PRESET_DAYS[preset]
    return preset, day_range(yesterday - timedelta(days=days - 1), yesterday, tz)


def local_today(now_s: float, tz: tzinfo) -> date:
    return datetime.fromtimestamp(now_s, tz).date()


def consumers(settings: Settings) -> list[Consumer]:
    return [
        Consumer(device.name, device.usage, device.zone, device.commodity)
        for device in settings.devices
    ]


def meters(settings: Settings, series: Sequence[SeriesInfo], commodity: Commodity) -> list[Meter]:
    """Each device of ``commodity`` with the counter its consumption is read from."""
    return pick_meters(consumers(settings), series, commodity=commodity, units=UNITS)


def display_unit(unit: str) -> tuple[str, float]:
    """The unit a value in ``unit`` is shown in, and the factor to it."""
    return DISPLAY_UNITS.get(unit, (unit, 1.0))


def number_text(value: float, *, digits: int = 2) -> str:
    return "-" if not math.isfinite(value) else f"{value:,.{digits}f}"


def change_text(change_pct: float | None) -> str:
    """``▲ +50.0 %``, ``▼ -12.5 %``, ``= 0.0 %``; ``-`` when there is nothing to compare to."""
    if change_pct is None:
        return "-"
    if round(change_pct, 1) == 0:
        return "= 0.0 %"
    arrow = "▲" if change_pct > 0 else "▼"
    return f"{arrow} {change_pct:+.1f} %"


def quality_text(quality: Quality) -> str:
    """The flags of a figure in words (``gap, estimated``); empty when it is a clean figure."""
    return ", ".join(
        str(flag.name).lower().replace("_", " ") for flag in Quality if flag and flag in quality
    )
