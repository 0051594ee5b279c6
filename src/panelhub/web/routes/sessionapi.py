"""Logging in, out and changing one's password from a program: the JSON twins of the pages.

A SCADA or a script logs in with ``POST /api/login`` and then calls the API with the session
cookie and the ``X-CSRF-Token`` it got back. Login forgery from another site is stopped by the
JSON body itself: a page elsewhere can send ``application/json`` only after a CORS preflight,
which this server never grants; the ``Origin`` check stands behind it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from panelhub.errors import AccountError, WeakPasswordError
from panelhub.security.sessions import Session
from panelhub.web.access import Access, api, client_address, context_of, is_same_origin, session_of
from panelhub.web.bodies import BodyError, read_json
from panelhub.web.login import LoginState, change_own_password, log_in, log_out, utc_iso
from panelhub.web.routes.auth import clear_session_cookie, set_session_cookie


def routes() -> list[BaseRoute]:
    return [
        api("/api/login", login, access=Access.PUBLIC, methods=["POST"]),
        api("/api/logout", logout, access=Access.PASSWORD_CHANGE, methods=["POST"]),
        api("/api/password", change_password, access=Access.PASSWORD_CHANGE, methods=["POST"]),
    ]


def _error(code: str, message: str, status: int, **extra: Any) -> Response:  # noqa: ANN401
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


def _session_document(session: Session) -> dict[str, Any]:
    return {
        "user": session.user_name,
        "role": session.role,
        "must_change_password": session.must_change_password,
        "csrf_token": session.csrf_token,
    }


async def _strings(request: Request, *names: str) -> list[str] | Response:
    """The named string fields of a JSON object body, or the error answer."""
    try:
        body = await read_json(request)
    except BodyError as exc:
        return _error(exc.code, str(exc), exc.status)
    if not isinstance(body, dict) or not all(isinstance(body.get(n), str) for n in names):
        return _error("invalid_body", f"send a JSON object with strings {', '.join(names)}", 400)
    return [body[name] for name in names]


async def login(request: Request) -> Response:
    """Log in: sets the session cookie; answers the session's user, role and CSRF token."""
    if not is_same_origin(request):
        return _error("cross_origin", "login from another site is refused", 403)
    fields = await _strings(request, "user", "password")
    if isinstance(fields, Response):
        return fields
    user, password = fields
    attempt = await log_in(context_of(request), user, password, source=client_address(request),
                           interface="api")  # fmt: skip
    if attempt.state is LoginState.OK and attempt.session is not None:
        response = JSONResponse(_session_document(attempt.session))
        set_session_cookie(response, attempt.session_id)
        return response
    if attempt.state is LoginState.RATE_LIMITED:
        limited = _error("rate_limited", "too many login attempts from this address", 429)
        limited.headers["Retry-After"] = str(attempt.retry_after_s)
        return limited
    if attempt.state is LoginState.LOCKED:
        return _error("locked", "this account is locked", 401,
                      locked_until=utc_iso(attempt.locked_until))  # fmt: skip
    return _error("bad_credentials", "wrong user name or password", 401)


async def logout(request: Request) -> Response:
    """End this session."""
    await log_out(context_of(request), session_of(request), source=client_address(request),
                  interface="api")  # fmt: skip
    response = Response(status_code=204)
    clear_session_cookie(response)
    return response


async def change_password(request: Request) -> Response:
    """Change one's own password: every session of the user ends, a new one is returned."""
    fields = await _strings(request, "current", "new")
    if isinstance(fields, Response):
        return fields
    current, new = fields
    try:
        session_id, session = await change_own_password(
            context_of(request), session_of(request), current, new,
            source=client_address(request), interface="api",
        )  # fmt: skip
    except WeakPasswordError as exc:
        return _error("weak_password", str(exc), 400, problems=list(exc.problems))
    except AccountError as exc:
        return _error("refused", str(exc), 400)
    response = JSONResponse(_session_document(session))
    set_session_cookie(response, session_id)
    return response
