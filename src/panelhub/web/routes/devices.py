"""The devices the datalogger polls: the list, the add / edit / delete forms, and monitoring.

A device is a settings entry (``[[devices]]``): every change goes through the same
validation, atomic save, live apply and audit as the Modbus settings (``apply_change``). A
Modbus TCP device added here gets a TCP bus of its own unless one already reaches its host
and port (a gateway in front of several devices is one bus).

Monitoring shows each device's health and live values; ``static/monitoring.js`` refreshes
them in place from ``/api/monitoring``, and without script the page is whole when loaded.
"""

from __future__ import annotations

import re
from typing import Any, Final

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute

from panelhub.config.models import LOGGING_PERIODS_MIN, Commodity, RTUBusConfig, Usage
from panelhub.web.access import Access, api, context_of, datalog_of, page, session_of
from panelhub.web.context import DataloggerView, DeviceView
from panelhub.web.routes.settings import ChangeRefusedError, apply_change, current_data
from panelhub.web.templating import render

PAGE: Final = "/devices"
MAX_FIELDS: Final = 24
MAX_FIELD_LENGTH: Final = 256
_BUS_NAME_CHARACTERS: Final = re.compile(r"[^A-Za-z0-9_.-]+")
#: Fields of the add and edit forms, as the settings name them.
DEVICE_FIELDS: Final = ("name", "label", "model", "usage", "zone", "commodity", "period_min")


async def _form(request: Request) -> dict[str, str]:
    form: FormData = await request.form(max_files=0, max_fields=MAX_FIELDS)
    return {k: v[:MAX_FIELD_LENGTH] for k, v in form.items() if isinstance(v, str)}


def _render(request: Request, *, problems: tuple[str, ...] = (), status: int = 200) -> Response:
    datalog = datalog_of(request)
    settings = context_of(request).control.settings
    keys = ("model", "bus", "unit_id", "host", "port")
    prefill = {key: request.query_params.get(key, "") for key in keys}
    views = datalog.devices()
    overrides = {v.config.name: {m.key: m for m in v.config.measurements} for v in views}
    return render(
        request,
        "devices.html",
        {
            "devices": views,
            "measurement_overrides": overrides,
            "models": sorted(datalog.catalog.values(), key=lambda t: (t.vendor, t.model)),
            "lines": [bus.name for bus in settings.buses if isinstance(bus, RTUBusConfig)],
            "usages": [usage.value for usage in Usage],
            "commodities": [commodity.value for commodity in Commodity],
            "periods": LOGGING_PERIODS_MIN,
            "problems": problems,
            "saved": request.query_params.get("saved") == "1",
            "prefill": prefill,
            "can_edit": session_of(request).role == "admin",
        },
        status_code=status,
    )


async def devices_page(request: Request) -> Response:
    return _render(request)


async def _submit(request: Request, data: dict[str, Any]) -> Response:
    catalog = datalog_of(request).catalog
    unknown = sorted({str(d.get("model")) for d in data["devices"]} - set(catalog))
    if unknown:
        problems = tuple(f"model {m!r} is not a known template: import it first" for m in unknown)
        return _render(request, problems=problems, status=400)
    try:
        await apply_change(request, data, "web")
    except ChangeRefusedError as exc:
        return _render(request, problems=exc.problems, status=exc.status)
    return RedirectResponse(f"{PAGE}?saved=1", status_code=303)


def _entry(form: dict[str, str]) -> dict[str, Any]:
    """The device's settings from the form's fields (validation is the settings model's)."""
    entry: dict[str, Any] = {key: form[key].strip() for key in DEVICE_FIELDS if key in form}
    entry["enable"] = form.get("enable", "yes") == "yes"
    period = entry.get("period_min", "")
    if period.isdigit():  # a choice among numbers: the model takes no numeric text for it
        entry["period_min"] = int(period)
    return entry


def _tcp_bus(data: dict[str, Any], host: str, port: str, device_name: str) -> str:
    """The bus reaching ``host:port``: an existing one, or a new one added to ``data``."""
    for bus in data["buses"]:
        if bus["kind"] == "tcp" and bus["host"] == host and str(bus["port"]) == port:
            return str(bus["name"])
    base = _BUS_NAME_CHARACTERS.sub("-", device_name).strip("-")[:24] or "device"
    taken = {bus["name"] for bus in data["buses"]}
    name = base
    suffix = 2
    while name in taken:
        name, suffix = f"{base}-{suffix}", suffix + 1
    data["buses"].append({"kind": "tcp", "name": name, "host": host, "port": port})
    return name


async def add_device(request: Request) -> Response:
    form = await _form(request)
    data = current_data(request)
    entry = _entry(form)
    entry["unit_id"] = form.get("unit_id", "").strip()
    if form.get("connection") == "tcp":
        host, port = form.get("host", "").strip(), form.get("port", "502").strip() or "502"
        if not host:
            return _render(request, problems=("a Modbus TCP device needs its host",), status=400)
        entry["bus"] = _tcp_bus(data, host, port, entry.get("name", ""))
    else:
        entry["bus"] = form.get("line", "").strip()
    data["devices"].append(entry)
    return await _submit(request, data)


async def edit_device(request: Request) -> Response:
    form = await _form(request)
    data = current_data(request)
    original = form.get("original", "")
    for index, device in enumerate(data["devices"]):
        if device["name"] == original:
            data["devices"][index] = {**device, **_entry(form)}
            return await _submit(request, data)
    return _render(request, problems=(f"there is no device {original!r}",), status=404)


#: A form names a measurement's fields after its key: ``log:<key>``, ``period:<key>``.
MAX_MEASUREMENT_FIELDS: Final = 4 * 1_000 + 8


async def edit_measurements(request: Request) -> Response:
    """Which measurements of a device are logged, and at which period (the device's if none)."""
    raw = await request.form(max_files=0, max_fields=MAX_MEASUREMENT_FIELDS)
    form = {key: value[:MAX_FIELD_LENGTH] for key, value in raw.items() if isinstance(value, str)}
    data = current_data(request)
    original = form.get("original", "")
    device = next((d for d in data["devices"] if d["name"] == original), None)
    template = None if device is None else datalog_of(request).catalog.get(device["model"])
    if device is None or template is None:
        return _render(request, problems=(f"there is no device {original!r}",), status=404)
    overrides = []
    for measurement in template.measurements:
        is_logged = form.get(f"log:{measurement.key}") == "on"
        period = form.get(f"period:{measurement.key}", "")
        if not is_logged or period:
            overrides.append(
                {
                    "key": measurement.key,
                    "enable": is_logged,
                    "period_min": int(period) if period.isdigit() else (period or None),
                }
            )
    device["measurements"] = overrides
    return await _submit(request, data)


async def delete_device(request: Request) -> Response:
    form = await _form(request)
    data = current_data(request)
    remaining = [d for d in data["devices"] if d["name"] != form.get("name", "")]
    if len(remaining) == len(data["devices"]):
        return _render(request, problems=(f"there is no device {form.get('name')!r}",), status=404)
    data["devices"] = remaining
    return await _submit(request, data)


# -- monitoring


def _monitoring(datalog: DataloggerView) -> list[dict[str, Any]]:
    """Every device with its health and live values: the page and its JSON twin."""
    return [_device_state(datalog, view) for view in datalog.devices()]


def _device_state(datalog: DataloggerView, view: DeviceView) -> dict[str, Any]:
    config = view.config
    readings = datalog.live(config.name) if config.enable else []
    return {
        "name": config.name,
        "label": config.label,
        "model": view.template.model if view.template is not None else config.model,
        "state": view.state,
        "since": view.since,
        "last_error": view.last_error,
        "last_answer_at": view.last_answer_at,
        "readings": [
            {
                "key": r.key,
                "name": r.name,
                "unit": r.unit,
                "value": r.value,
                "read_at": r.read_at,
            }
            for r in readings
        ],
    }


async def monitoring_page(request: Request) -> Response:
    return render(request, "monitoring.html", {"devices": _monitoring(datalog_of(request))})


async def monitoring_api(request: Request) -> Response:
    return JSONResponse({"devices": _monitoring(datalog_of(request))})


async def devices_api(request: Request) -> Response:
    return JSONResponse(
        {
            "devices": [
                {**view.config.model_dump(mode="json"), "state": view.state}
                for view in datalog_of(request).devices()
            ]
        }
    )


def routes() -> list[BaseRoute]:
    return [
        page(PAGE, devices_page, access=Access.VIEWER),
        page(f"{PAGE}/add", add_device, access=Access.ADMIN, methods=["POST"]),
        page(f"{PAGE}/edit", edit_device, access=Access.ADMIN, methods=["POST"]),
        page(f"{PAGE}/delete", delete_device, access=Access.ADMIN, methods=["POST"]),
        page(f"{PAGE}/measurements", edit_measurements, access=Access.ADMIN, methods=["POST"]),
        page("/monitoring", monitoring_page, access=Access.VIEWER),
        api("/api/monitoring", monitoring_api, access=Access.VIEWER),
        api("/api/devices", devices_api, access=Access.VIEWER),
    ]
