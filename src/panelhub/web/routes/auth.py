"""Logging in and out, and changing one's own password.

The login form is protected against cross-site request forgery before any session exists by
a double-submit token: a random value in a short-lived ``__Host-`` cookie and in the form,
which a page on another origin can neither read nor set. A successful login always creates a
new session id (no fixation), and a password change ends every other session of that user.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from panelhub.errors import AccountError, StateStoreError, WeakPasswordError
from panelhub.security.accounts import ADMIN_NAME, LoginOutcome, forget_initial_password
from panelhub.security.audit import AuditEvent, Outcome
from panelhub.security.passwords import PasswordPolicy
from panelhub.web.access import (
    CSRF_FIELD,
    SESSION_COOKIE,
    client_address,
    context_of,
    is_same_origin,
    session_of,
)
from panelhub.web.context import WebContext
from panelhub.web.templating import render

logger = logging.getLogger(__name__)

LOGIN_COOKIE: Final = "__Host-panelhub-login"
#: Recorded for an unknown user name when the label key cannot be read.
UNLABELLED_UNKNOWN_USER: Final = "unknown#?"
#: How long a login form stays usable: long enough to type, short enough to go stale.
LOGIN_FORM_TTL_S: Final = 600
#: Longest user name or password read from a form; longer input is refused unread.
MAX_FIELD_LENGTH: Final = 256
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
    source = client_address(request)
    form = await request.form(max_files=0, max_fields=8)
    username = str(form.get("username", ""))[:MAX_FIELD_LENGTH]
    password = str(form.get("password", ""))[:MAX_FIELD_LENGTH]
    next_path = str(form.get("next", "/"))
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    field = str(form.get(CSRF_FIELD, ""))
    if not (is_same_origin(request) and cookie and hmac.compare_digest(cookie, field)):
        return _login_form(request, next_path=next_path, error="The form expired; try again.",
                           status=403)  # fmt: skip
    now = context.clock()
    if not context.rate_limiter.allow(source, now):
        limited = _login_form(
            request, next_path=next_path, username=username, status=429,
            error="Too many login attempts from this address; wait a little.",
        )  # fmt: skip
        limited.headers["Retry-After"] = str(int(context.rate_limiter.retry_after(source, now)) + 1)
        return limited
    result = await context.accounts.authenticate(username, password)
    user = username if result.is_known_name else _label(context, username)
    if result.outcome is LoginOutcome.OK and result.account is not None:
        account = result.account
        session_id, session = context.sessions.create(
            account_id=account.id,
            user_name=account.name,
            role=account.role.value,
            source=source,
            must_change_password=account.must_change_password,
            password_stamp=account.password_changed_at,
        )
        await context.audit.record(AuditEvent.LOGIN_OK, outcome=Outcome.SUCCESS, user=account.name,
                                   source=source, interface="web")  # fmt: skip
        target = "/password" if session.must_change_password else _safe_next(next_path)
        response: Response = RedirectResponse(target, status_code=303)
        _set_cookie(response, SESSION_COOKIE, session_id, max_age=None)
        response.delete_cookie(
            LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict"
        )
        return response
    if result.outcome is LoginOutcome.LOCKED:
        until = dt.datetime.fromtimestamp(result.locked_until, dt.UTC)
        await context.audit.record(
            AuditEvent.LOGIN_LOCKED, outcome=Outcome.FAILURE, user=user, source=source,
            interface="web", details={"locked_until": until.isoformat(timespec="seconds")},
        )  # fmt: skip
        error = f"This account is locked until {until:%Y-%m-%d %H:%M} UTC."
        return _login_form(request, next_path=next_path, error=error, username=username,
                           status=401)  # fmt: skip
    await context.audit.record(AuditEvent.LOGIN_FAILED, outcome=Outcome.FAILURE, user=user,
                               source=source, interface="web")  # fmt: skip
    return _login_form(request, next_path=next_path, error=BAD_CREDENTIALS, status=401)


def _label(context: WebContext, typed_name: str) -> str:
    """The audit label of an unknown name; without the label key, a label that says so.

    A damaged key must not turn every failed login into a server error: the attempt is still
    recorded, and the error log says what to repair.
    """
    try:
        return context.audit.label_unknown_user(typed_name)
    except StateStoreError as exc:
        logger.error("unknown user names recorded without a label: %s", exc)  # noqa: TRY400
        return UNLABELLED_UNKNOWN_USER


async def logout(request: Request) -> Response:
    context = context_of(request)
    session = session_of(request)
    context.sessions.end_key(session.key)
    await context.audit.record(AuditEvent.LOGOUT, outcome=Outcome.SUCCESS, user=session.user_name,
                               source=client_address(request), interface="web")  # fmt: skip
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


async def password_page(request: Request) -> Response:
    return _password_form(request)


def _password_form(request: Request, problems: tuple[str, ...] = (), status: int = 200) -> Response:
    policy = context_of(request).accounts.policy
    return render(request, "password.html",
                  {"problems": problems, "policy_hint": POLICY_HINTS[policy]},
                  status_code=status)  # fmt: skip


async def change_password(request: Request) -> Response:
    context = context_of(request)
    session = session_of(request)
    form = await request.form(max_files=0, max_fields=8)
    current = str(form.get("current", ""))[:MAX_FIELD_LENGTH]
    new = str(form.get("new", ""))[:MAX_FIELD_LENGTH]
    if new != str(form.get("confirm", ""))[:MAX_FIELD_LENGTH]:
        return _password_form(request, ("the two new passwords differ",), status=400)
    source = client_address(request)
    try:
        await context.accounts.change_password(session.account_id, current, new)
    except WeakPasswordError as exc:
        return _password_form(request, exc.problems, status=400)
    except AccountError as exc:
        await context.audit.record(AuditEvent.PASSWORD_CHANGED, outcome=Outcome.FAILURE,
                                   user=session.user_name, source=source, interface="web",
                                   details={"reason": str(exc)})  # fmt: skip
        return _password_form(request, (str(exc),), status=400)
    # Every session of this user ends, this one too: the browser gets a fresh id.
    context.sessions.end_user(session.account_id)
    account = await context.accounts.get_by_id(session.account_id)
    session_id, _ = context.sessions.create(
        account_id=session.account_id,
        user_name=session.user_name,
        role=session.role,
        source=source,
        must_change_password=False,
        password_stamp=None if account is None else account.password_changed_at,
    )
    if session.user_name == ADMIN_NAME:
        forget_initial_password(context.data_dir)
    await context.audit.record(AuditEvent.PASSWORD_CHANGED, outcome=Outcome.SUCCESS,
                               user=session.user_name, source=source, interface="web")  # fmt: skip
    response = RedirectResponse("/", status_code=303)
    _set_cookie(response, SESSION_COOKIE, session_id, max_age=None)
    return response
