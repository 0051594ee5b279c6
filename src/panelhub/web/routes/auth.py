"""Logging in and out, and changing one's own password.

The login form is protected against cross-site request forgery before any session exists by
a double-submit token: a random value in a short-lived ``__Host-`` cookie and in the form,
which a page on another origin can neither read nor set. A successful login always creates a
new session id (no fixation), and a password change ends every other session of that user.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from panelhub.errors import AccountError, WeakPasswordError
from panelhub.security.passwords import PasswordPolicy
from panelhub.web.access import (
    CSRF_FIELD,
    SESSION_COOKIE,
    client_address,
    context_of,
    is_same_origin,
    session_of,
)
from panelhub.web.login import (
    MAX_FIELD_LENGTH,
    LoginState,
    change_own_password,
    log_in,
    log_out,
)
from panelhub.web.templating import render

LOGIN_COOKIE: Final = "__Host-panelhub-login"
#: How long a login form stays usable: long enough to type, short enough to go stale.
LOGIN_FORM_TTL_S: Final = 600
BAD_CREDENTIALS: Final = "Wrong user name or password."
POLICY_HINTS: Final = {
    PasswordPolicy.GUIDE: "8 to 50 characters, with at least three of: upper case, lower "
    "case, digits, special characters. Not a common password, not your user name.",
    PasswordPolicy.NIST: "At least 15 characters (up to 128). Not a common password, not "
    "your user name.",
}


def _set_cookie(response: Response, name: str, value: str, *, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict"
    )


def _safe_next(target: str) -> str:
    """Only a path on this site: never ``//host`` or a full URL (no open redirect)."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and len(target) < 512:
        return target
    return "/"


async def login_page(request: Request) -> Response:
    context = context_of(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id and context.sessions.get(session_id) is not None:
        return RedirectResponse("/", status_code=303)
    return _login_form(request, next_path=request.query_params.get("next", "/"))


def _login_form(
    request: Request, *, next_path: str, error: str = "", username: str = "", status: int = 200
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {
            "csrf_token": token,
            "next": _safe_next(next_path),
            "banner": context_of(request).login_banner,
            "error": error,
            "username": username,
        },
        status_code=status,
    )
    _set_cookie(response, LOGIN_COOKIE, token, max_age=LOGIN_FORM_TTL_S)
    return response


async def login(request: Request) -> Response:
    context = context_of(request)
    form = await request.form(max_files=0, max_fields=8)
    username = str(form.get("username", ""))[:MAX_FIELD_LENGTH]
    next_path = str(form.get("next", "/"))
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    field = str(form.get(CSRF_FIELD, ""))
    if not (is_same_origin(request) and cookie and hmac.compare_digest(cookie, field)):
        return _login_form(request, next_path=next_path, error="The form expired; try again.",
                           status=403)  # fmt: skip
    attempt = await log_in(context, username, str(form.get("password", "")),
                           source=client_address(request), interface="web")  # fmt: skip
    if attempt.state is LoginState.OK and attempt.session is not None:
        target = "/password" if attempt.session.must_change_password else _safe_next(next_path)
        response: Response = RedirectResponse(target, status_code=303)
        set_session_cookie(response, attempt.session_id)
        response.delete_cookie(
            LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict"
        )
        return response
    if attempt.state is LoginState.RATE_LIMITED:
        limited = _login_form(
            request, next_path=next_path, username=username, status=429,
            error="Too many login attempts from this address; wait a little.",
        )  # fmt: skip
        limited.headers["Retry-After"] = str(attempt.retry_after_s)
        return limited
    if attempt.state is LoginState.LOCKED:
        until = dt.datetime.fromtimestamp(attempt.locked_until, dt.UTC)
        error = f"This account is locked until {until:%Y-%m-%d %H:%M} UTC."
        return _login_form(request, next_path=next_path, error=error, username=username,
                           status=401)  # fmt: skip
    return _login_form(request, next_path=next_path, error=BAD_CREDENTIALS, status=401)


def set_session_cookie(response: Response, session_id: str) -> None:
    _set_cookie(response, SESSION_COOKIE, session_id, max_age=None)


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")


async def logout(request: Request) -> Response:
    await log_out(context_of(request), session_of(request), source=client_address(request),
                  interface="web")  # fmt: skip
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


async def password_page(request: Request) -> Response:
    return _password_form(request)


def _password_form(request: Request, problems: tuple[str, ...] = (), status: int = 200) -> Response:
    policy = context_of(request).accounts.policy
    return render(request, "password.html",
                  {"problems": problems, "policy_hint": POLICY_HINTS[policy]},
                  status_code=status)  # fmt: skip


async def change_password(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=8)
    new = str(form.get("new", ""))[:MAX_FIELD_LENGTH]
    if new != str(form.get("confirm", ""))[:MAX_FIELD_LENGTH]:
        return _password_form(request, ("the two new passwords differ",), status=400)
    try:
        session_id, _ = await change_own_password(
            context_of(request), session_of(request), str(form.get("current", "")), new,
            source=client_address(request), interface="web",
        )  # fmt: skip
    except WeakPasswordError as exc:
        return _password_form(request, exc.problems, status=400)
    except AccountError as exc:
        return _password_form(request, (str(exc),), status=400)
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, session_id)
    return response
