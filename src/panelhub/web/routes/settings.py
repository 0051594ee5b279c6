"""The Modbus settings: listeners and their allow-lists, routes, the request time-to-live.

Every change, from a form or the API, follows one path: the current settings with the change
applied are validated as a whole (the same rules as ``panelhub check-config``), saved
atomically to the configuration file and put in force without a restart
(``ServiceControl.apply_settings``), then audited with the names of what changed. A change
that does not validate or cannot be put in force changes nothing and says why.

Viewers may read the settings (they say who may talk to the panel, which a commissioning
report needs); only admins change them.
"""

from __future__ import annotations

import re
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute

from panelhub.config.diff import ITEM_KEYS, changed_settings
from panelhub.config.models import Settings
from panelhub.config.store import parse_settings
from panelhub.errors import ConfigError, SettingsApplyError, SettingsConflictError
from panelhub.security.audit import AuditEvent, Outcome
from panelhub.web.access import Access, api, client_address, context_of, page, session_of
from panelhub.web.bodies import BodyError, read_json
from panelhub.web.templating import render

PAGE: Final = "/settings/modbus"
#: The sections of the configuration the API may replace; the rest is edited in the file.
API_SECTIONS: Final = ("gateway", "listeners", "buses", "routes")
_SEPARATORS: Final = re.compile(r"[\s,;]+")
POST: Final = ("POST",)


def routes() -> list[BaseRoute]:
    return [
        page(PAGE, settings_page, access=Access.VIEWER),
        page(f"{PAGE}/general", save_general, access=Access.ADMIN, methods=POST),
        page(f"{PAGE}/listeners", save_listener, access=Access.ADMIN, methods=POST),
        page(
            f"{PAGE}/listeners/{{name}}/delete", delete_listener, access=Access.ADMIN, methods=POST
        ),
        page(f"{PAGE}/routes", save_route, access=Access.ADMIN, methods=POST),
        page(
            f"{PAGE}/routes/{{unit_id:int}}/delete", delete_route, access=Access.ADMIN, methods=POST
        ),
        api("/api/settings/modbus", get_settings, access=Access.VIEWER),
        api("/api/settings/modbus", put_settings, access=Access.ADMIN, methods=["PUT"]),
    ]


class ChangeRefusedError(Exception):
    """A change that is not applied; ``status`` and ``problems`` say why."""

    def __init__(self, code: str, problems: tuple[str, ...], status: int) -> None:
        super().__init__(code)
        self.code = code
        self.problems = problems
        self.status = status


def settings_document(settings: Settings) -> dict[str, Any]:
    """The Modbus part of the settings as the API shows it."""
    data = settings.model_dump(mode="json")
    return {section: data[section] for section in API_SECTIONS}


def split_list(text: str) -> list[str]:
    """A list typed in one field: separated by commas, semicolons, spaces or new lines."""
    return [item for item in _SEPARATORS.split(text.strip()) if item]


async def apply_change(request: Request, data: dict[str, Any], interface: str) -> tuple[str, ...]:
    """Validate, save, put in force and audit ``data`` (the whole settings, as in the file).

    Returns the settings that only a restart puts in force.

    Raises:
        ChangeRefusedError: the settings do not validate (400), or cannot be saved or put in
            force (409); in both cases nothing changed.
    """
    context = context_of(request)
    session = session_of(request)
    old = context.control.settings
    try:
        new = parse_settings(data)
    except ConfigError as exc:
        raise ChangeRefusedError("invalid_settings", exc.problems, 400) from exc
    changed = changed_settings(old, new)
    if not changed:
        return ()
    audit = {"user": session.user_name, "source": client_address(request), "interface": interface}
    try:
        restart = await context.control.apply_settings(new, based_on=old)
    except SettingsConflictError as exc:
        raise ChangeRefusedError("changed_meanwhile", exc.problems, 409) from exc
    except SettingsApplyError as exc:
        await context.audit.record(AuditEvent.CONFIG_CHANGED, outcome=Outcome.FAILURE,
                                   details={"changed": ", ".join(changed), "reason": str(exc)},
                                   **audit)  # fmt: skip
        raise ChangeRefusedError("cannot_apply", exc.problems or (str(exc),), 409) from exc
    await context.audit.record(AuditEvent.CONFIG_CHANGED, outcome=Outcome.SUCCESS,
                               details={"changed": ", ".join(changed)}, **audit)  # fmt: skip
    return restart


def current_data(request: Request) -> dict[str, Any]:
    """The settings in force as plain data, their lists as lists to edit."""
    data = context_of(request).control.settings.model_dump(mode="python")
    return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}


# -- pages


async def settings_page(request: Request) -> Response:
    return _render(request)


def _render(
    request: Request, *, problems: tuple[str, ...] = (), status: int = 200, form: str = ""
) -> Response:
    settings = context_of(request).control.settings
    return render(
        request,
        "settings_modbus.html",
        {
            "settings": settings,
            "problems": problems,
            "failed_form": form,
            "saved": request.query_params.get("saved") == "1",
            "restart": split_list(request.query_params.get("restart", "")),
            "can_edit": session_of(request).role == "admin",
        },
        status_code=status,
    )


async def _submit(request: Request, data: dict[str, Any], form: str) -> Response:
    try:
        restart = await apply_change(request, data, "web")
    except ChangeRefusedError as exc:
        return _render(request, problems=exc.problems, status=exc.status, form=form)
    query = "saved=1" + (f"&restart={','.join(restart)}" if restart else "")
    return RedirectResponse(f"{PAGE}?{query}", status_code=303)


async def save_general(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=16)
    data = current_data(request)
    data["gateway"] |= {
        "request_ttl_ms": str(form.get("request_ttl_ms", "")),
        "default_bus": str(form.get("default_bus", "")) or None,
        "allow_set_clock": form.get("allow_set_clock") == "on",
    }
    return await _submit(request, data, "general")


async def save_listener(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=32)
    original = str(form.get("original_name", ""))
    listener = {
        "name": str(form.get("name", "")).strip(),
        "host": str(form.get("host", "")).strip(),
        "port": str(form.get("port", "")),
        "enable": form.get("enable") == "on",
        "allow_clients": split_list(str(form.get("allow_clients", ""))),
        "is_read_only": form.get("is_read_only") == "on",
        "allow_function_codes": split_list(str(form.get("allow_function_codes", ""))),
        "allow_unit_ids": split_list(str(form.get("allow_unit_ids", ""))),
        "max_connections": str(form.get("max_connections", "")),
        "max_connections_per_client": str(form.get("max_connections_per_client", "")),
        "idle_timeout_s": str(form.get("idle_timeout_s", "")),
    }
    data = current_data(request)
    listeners = data["listeners"]
    names = [item["name"] for item in listeners]
    if original and original not in names:
        return _render(request, problems=(f"listener {original!r} no longer exists",),
                       status=404, form="listener")  # fmt: skip
    if original:
        listeners[names.index(original)] = listener
    else:
        listeners.append(listener)
    return await _submit(request, data, f"listener:{original}")


async def delete_listener(request: Request) -> Response:
    name = request.path_params["name"]
    return await _delete(request, "listeners", name, f"listener {name!r} does not exist")


async def save_route(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=8)
    unit_id = str(form.get("unit_id", "")).strip()
    route = {
        "unit_id": unit_id,
        "bus": str(form.get("bus", "")),
        "target_unit_id": str(form.get("target_unit_id", "")).strip() or None,
    }
    data = current_data(request)
    data["routes"] = [item for item in data["routes"] if str(item["unit_id"]) != unit_id]
    data["routes"].append(route)
    return await _submit(request, data, "route")


async def delete_route(request: Request) -> Response:
    unit_id = request.path_params["unit_id"]
    return await _delete(request, "routes", unit_id, f"there is no route for unit {unit_id}")


async def _delete(request: Request, section: str, key: object, missing: str) -> Response:
    """Remove the item of ``section`` named by ``key`` (its ``ITEM_KEYS`` field)."""
    data = current_data(request)
    field = ITEM_KEYS[section]
    remaining = [item for item in data[section] if item[field] != key]
    if len(remaining) == len(data[section]):
        return _render(request, problems=(missing,), status=404)
    data[section] = remaining
    return await _submit(request, data, f"{section}:{key}")


# -- API


async def get_settings(request: Request) -> Response:
    """The Modbus settings in force: gateway, listeners, buses and routes."""
    return JSONResponse(settings_document(context_of(request).control.settings))


async def put_settings(request: Request) -> Response:
    """Replace sections of the Modbus settings; each section given is replaced whole."""
    try:
        body = await read_json(request)
    except BodyError as exc:
        return JSONResponse({"error": exc.code, "message": str(exc)}, status_code=exc.status)
    if not isinstance(body, dict):
        return _refused("invalid_settings", ("the body must be a JSON object",), 400)
    unknown = sorted(set(body) - set(API_SECTIONS))
    if unknown:
        problems = tuple(f"{key}: not a Modbus setting (edit it in the file)" for key in unknown)
        return _refused("invalid_settings", problems, 400)
    data = current_data(request) | body
    try:
        restart = await apply_change(request, data, "api")
    except ChangeRefusedError as exc:
        return _refused(exc.code, exc.problems, exc.status)
    return JSONResponse(
        {
            "settings": settings_document(context_of(request).control.settings),
            "restart_required": list(restart),
        }
    )


def _refused(code: str, problems: tuple[str, ...], status: int) -> Response:
    return JSONResponse({"error": code, "problems": list(problems)}, status_code=status)
