"""Finding devices: scan a serial line's addresses or a list of TCP hosts, watch, cancel, add.

A scan runs in the service (``DataloggerView.start_scan``), not in the request: a whole line
takes minutes. Its page refreshes itself every few seconds while it runs, shows what it found
with the model each device matched, and links each to a filled-in "add a device" form.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from panelhub.config.models import MAX_SERIAL_UNIT_ID, RTUBusConfig
from panelhub.devices.discovery import ScanState
from panelhub.errors import DeviceError
from panelhub.web.access import Access, context_of, datalog_of, page
from panelhub.web.context import ScanRequest
from panelhub.web.routes.settings import split_list
from panelhub.web.templating import render

PAGE: Final = "/devices/discover"
#: Hosts one scan may ask: a plant's worth, not a network sweep.
MAX_HOSTS: Final = 32
REFRESH_S: Final = 2


def _render(request: Request, *, problems: tuple[str, ...] = (), status: int = 200) -> Response:
    settings = context_of(request).control.settings
    lines = [bus.name for bus in settings.buses if isinstance(bus, RTUBusConfig)]
    return render(
        request,
        "discover.html",
        {"lines": lines, "problems": problems, "max_address": MAX_SERIAL_UNIT_ID},
        status_code=status,
    )


async def discover_page(request: Request) -> Response:
    return _render(request)


def _unit_ids(first: str, last: str, *, limit: int) -> range:
    """Raises ValueError with the sentence the page shows."""
    try:
        start, end = int(first), int(last)
    except ValueError:
        raise ValueError("addresses must be whole numbers") from None
    if not 1 <= start <= end <= limit:
        raise ValueError(f"addresses must be from 1 to {limit}, the first not above the last")
    return range(start, end + 1)


def _scan_request(form: dict[str, str], lines: list[str]) -> ScanRequest:
    """Raises ValueError with the sentence the page shows."""
    if form.get("target") == "line":
        line = form.get("line", "")
        if line not in lines:
            raise ValueError(f"there is no serial line {line!r}")
        ids = _unit_ids(form.get("first", "1"), form.get("last", "247"), limit=MAX_SERIAL_UNIT_ID)
        return ScanRequest(bus=line, unit_ids=ids)
    hosts = split_list(form.get("hosts", ""))
    if not hosts or len(hosts) > MAX_HOSTS:
        raise ValueError(f"give 1 to {MAX_HOSTS} hosts (host or host:port, one per line)")
    ids = _unit_ids(form.get("first", "1"), form.get("last", "1"), limit=255)
    return ScanRequest(hosts=hosts, unit_ids=ids)


async def start_scan(request: Request) -> Response:
    raw = await request.form(max_files=0, max_fields=8)
    form = {key: value[:4096] for key, value in raw.items() if isinstance(value, str)}
    settings = context_of(request).control.settings
    lines = [bus.name for bus in settings.buses if isinstance(bus, RTUBusConfig)]
    try:
        scan_id = datalog_of(request).start_scan(_scan_request(form, lines))
    except (ValueError, DeviceError) as exc:
        return _render(request, problems=(str(exc),), status=400)
    return RedirectResponse(f"{PAGE}/{scan_id}", status_code=303)


async def scan_page(request: Request) -> Response:
    scan_id = request.path_params["scan_id"]
    progress = datalog_of(request).scan(scan_id)
    if progress is None:
        return _render(request, problems=(f"there is no scan {scan_id}",), status=404)
    catalog = datalog_of(request).catalog
    settings = context_of(request).control.settings
    return render(
        request,
        "scan.html",
        {
            "scan_id": scan_id,
            "progress": progress,
            "is_running": progress.state is ScanState.RUNNING,
            "refresh_s": REFRESH_S,
            "models": {model_id: f"{t.vendor} {t.model}" for model_id, t in catalog.items()},
            "lines": {bus.name for bus in settings.buses if isinstance(bus, RTUBusConfig)},
        },
    )


async def cancel_scan(request: Request) -> Response:
    scan_id = request.path_params["scan_id"]
    progress = datalog_of(request).scan(scan_id)
    if progress is not None:
        progress.cancel()
    return RedirectResponse(f"{PAGE}/{scan_id}", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        page(PAGE, discover_page, access=Access.ADMIN),
        page(PAGE, start_scan, access=Access.ADMIN, methods=["POST"]),
        page(PAGE + "/{scan_id:str}", scan_page, access=Access.ADMIN),
        page(PAGE + "/{scan_id:str}/cancel", cancel_scan, access=Access.ADMIN, methods=["POST"]),
    ]
