"""The users API: what the users page does, as JSON.

::

    GET    /api/users                         {"users": [user, ...]}
    POST   /api/users                         {"name", "role"} -> 201 {"user", "password"}
    GET    /api/users/{name}                  {"user"}
    PATCH  /api/users/{name}                  {"role"?, "enabled"?} -> {"user"}
    POST   /api/users/{name}/unlock           -> {"user"}
    POST   /api/users/{name}/password/reset   -> {"user", "password"}
    POST   /api/users/{name}/sessions/end     -> {"user", "ended"}

Errors are ``{"error": code, "message": text}``: 400 for a malformed request, 404 for an
unknown user, 409 for a change a rule refuses (``name_taken``, ``last_admin``,
``own_account``, ``conflict``). A ``password`` appears in the one answer that made it.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from panelhub.security.accounts import Role
from panelhub.web.access import Access, api, client_address, context_of, session_of
from panelhub.web.bodies import BodyError, parse_json
from panelhub.web.useradmin import (
    REFUSAL_STATUS,
    AccountRefusedError,
    Administration,
    NewPassword,
    Refusal,
    parse_role,
)

#: A users request is a name and a role or a flag: a few hundred bytes. Larger is refused
#: before the JSON is parsed (the body itself is bounded by ``middleware.MAX_BODY_BYTES``).
MAX_BODY_BYTES: Final = 4_096


def _administration(request: Request) -> Administration:
    return Administration(context_of(request), session_of(request), client_address(request))


def _error(reason: Refusal, message: str) -> Response:
    return JSONResponse(
        {"error": reason.value, "message": message}, status_code=REFUSAL_STATUS[reason]
    )


def _refused(exc: AccountRefusedError) -> Response:
    return _error(exc.reason, str(exc))


def _with_password(created: NewPassword, *, status: int = 200) -> Response:
    return JSONResponse(
        {"user": created.user.as_json(), "password": created.password}, status_code=status
    )


async def _body(request: Request, allowed: frozenset[str]) -> dict[str, object]:
    """The JSON object of the request, with only ``allowed`` keys.

    Raises:
        AccountRefusedError: not a small JSON object, or an unknown key (INVALID).

    """
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise AccountRefusedError("the request body is too large", reason=Refusal.INVALID)
    try:
        body = parse_json(raw)
    except BodyError:
        raise AccountRefusedError(
            "the body must be a JSON object", reason=Refusal.INVALID
        ) from None
    if not isinstance(body, dict):
        raise AccountRefusedError("the body must be a JSON object", reason=Refusal.INVALID)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise AccountRefusedError(f"unknown fields: {', '.join(unknown)}", reason=Refusal.INVALID)
    return body


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise AccountRefusedError(f"{field} must be a string", reason=Refusal.INVALID)
    return value


def _change_of(body: dict[str, object]) -> tuple[Role | None, bool | None]:
    """The role and enabled state a PATCH asks for; at least one of them."""
    role = parse_role(body["role"]) if "role" in body else None
    enabled = body.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise AccountRefusedError("enabled must be true or false", reason=Refusal.INVALID)
    if role is None and enabled is None:
        raise AccountRefusedError("nothing to change: give role or enabled", reason=Refusal.INVALID)
    return role, enabled


async def list_users(request: Request) -> Response:
    """Every account, with its lock and its number of live sessions."""
    users = await _administration(request).users()
    return JSONResponse({"users": [user.as_json() for user in users]})


async def create_user(request: Request) -> Response:
    """Create an account; the answer holds its initial password, shown only there."""
    try:
        body = await _body(request, frozenset({"name", "role"}))
        name = _text(body.get("name"), "name")
        role = parse_role(body.get("role", Role.VIEWER.value))
        created = await _administration(request).create(name, role)
    except AccountRefusedError as exc:
        return _refused(exc)
    return _with_password(created, status=201)


async def get_user(request: Request) -> Response:
    """One account."""
    try:
        user = await _administration(request).user(request.path_params["name"])
    except AccountRefusedError as exc:
        return _refused(exc)
    return JSONResponse({"user": user.as_json()})


async def change_user(request: Request) -> Response:
    """Set an account's role and/or enabled state; its sessions follow at once."""
    try:
        body = await _body(request, frozenset({"role", "enabled"}))
        role, enabled = _change_of(body)
        user = await _administration(request).change(
            request.path_params["name"], role=role, is_enabled=enabled
        )
    except AccountRefusedError as exc:
        return _refused(exc)
    return JSONResponse({"user": user.as_json()})


async def unlock_user(request: Request) -> Response:
    """End an account's login lock."""
    try:
        user = await _administration(request).unlock(request.path_params["name"])
    except AccountRefusedError as exc:
        return _refused(exc)
    return JSONResponse({"user": user.as_json()})


async def reset_password(request: Request) -> Response:
    """Give an account a new random password, to be changed at its next login."""
    try:
        reset = await _administration(request).reset_password(request.path_params["name"])
    except AccountRefusedError as exc:
        return _refused(exc)
    return _with_password(reset)


async def end_sessions(request: Request) -> Response:
    """End every session of an account (the caller's own current one stays)."""
    administration = _administration(request)
    name = request.path_params["name"]
    try:
        ended = await administration.end_sessions(name)
        user = await administration.user(name)
    except AccountRefusedError as exc:
        return _refused(exc)
    return JSONResponse({"user": user.as_json(), "ended": ended})


def routes() -> list[BaseRoute]:
    """The users API: admins only.

    A name may hold "/" (``{name:path}``) and the first matching route wins, so the routes
    with a suffix come before the plain ``/api/users/{name}``.
    """
    actions = {
        "unlock": unlock_user,
        "password/reset": reset_password,
        "sessions/end": end_sessions,
    }
    return [
        api("/api/users", list_users, access=Access.ADMIN),
        api("/api/users", create_user, access=Access.ADMIN, methods=["POST"]),
        *(
            api(f"/api/users/{{name:path}}/{suffix}", action, access=Access.ADMIN, methods=["POST"])
            for suffix, action in actions.items()
        ),
        api("/api/users/{name:path}", get_user, access=Access.ADMIN),
        api("/api/users/{name:path}", change_user, access=Access.ADMIN, methods=["PATCH"]),
    ]
