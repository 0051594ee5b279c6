"""Who may call each route: every route is built here with its access level, or not at all.

Theory of operation:
- ``page`` and ``api`` wrap an endpoint in a guard and tag the route with its ``Access``. A
  test walks the application's route table and checks every route and method against it, so
  a route added without a guard cannot exist.
- The guard finds the session from the ``__Host-`` cookie. Without a live session, pages
  redirect to the login page and the API answers 401; never protected content.
- Until the user has changed an initial or reset password, pages lead to the change-password
  page and the API answers 403 ``password_change_required``.
- State-changing methods need the session's CSRF token (a form field or the
  ``X-CSRF-Token`` header) and, when the browser names one, a same-origin ``Origin``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from enum import Enum
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from panelhub.security.sessions import Session
from panelhub.web.context import DataloggerView, WebContext
from panelhub.web.sessionsync import sync_sessions

SESSION_COOKIE: Final = "__Host-panelhub-session"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "x-csrf-token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
#: Roles in increasing power; a route open to a role is open to those above it.
ROLE_RANK: Final = {"viewer": 0, "operator": 1, "admin": 2}


class Access(Enum):
    PUBLIC = "public"  # the login page, its assets, the health probe
    PASSWORD_CHANGE = "password change"  # noqa: S105 - a session whose password must still be changed
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


Endpoint = Callable[[Request], Awaitable[Response]]


class GuardedRoute(Route):
    """A route with its access level and kind (page or API) on record."""

    def __init__(
        self, path: str, endpoint: Endpoint, *, methods: Sequence[str], access: Access, is_api: bool
    ) -> None:
        super().__init__(path, _guard(endpoint, access, is_api=is_api), methods=list(methods))
        self.access = access
        self.is_api = is_api


def page(
    path: str, endpoint: Endpoint, *, access: Access, methods: Sequence[str] = ("GET",)
) -> GuardedRoute:
    return GuardedRoute(path, endpoint, methods=methods, access=access, is_api=False)


def api(
    path: str, endpoint: Endpoint, *, access: Access, methods: Sequence[str] = ("GET",)
) -> GuardedRoute:
    return GuardedRoute(path, endpoint, methods=methods, access=access, is_api=True)


def context_of(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


def datalog_of(request: Request) -> DataloggerView:
    """The datalogger the energy and device pages read; 503 when it is not running."""
    datalog = context_of(request).datalog
    if datalog is None:  # its store could not be opened: the log says why
        raise HTTPException(503, "the datalogger is not running: the service log says why")
    return datalog


def session_of(request: Request) -> Session:
    """The session the guard found; only for endpoints that are not PUBLIC."""
    session: Session = request.state.session
    return session


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def is_same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin.

    Browsers send ``Origin`` on every cross-site POST; a page elsewhere cannot forge it. Its
    absence (non-browser clients) is judged by the CSRF token alone.

    Our ``Referrer-Policy: no-referrer`` makes browsers send ``Origin: null`` even on the
    pages' own form posts; then ``Sec-Fetch-Site``, which no page can set, tells whether
    the post came from this very origin (a page on another port of this host is
    ``same-site``, not ``same-origin``).
    """
    origin = request.headers.get("origin")
    if origin == "null":
        return request.headers.get("sec-fetch-site") == "same-origin"
    if origin is None:
        referer = request.headers.get("referer")
        if referer is None:
            return True
        parts = urllib.parse.urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


def _guard(endpoint: Endpoint, access: Access, *, is_api: bool) -> Endpoint:
    async def guarded(request: Request) -> Response:  # noqa: PLR0911 - one return per refusal
        if access is Access.PUBLIC:
            return await endpoint(request)
        context = context_of(request)
        await sync_sessions(context)
        session_id = request.cookies.get(SESSION_COOKIE)
        session = context.sessions.get(session_id) if session_id else None
        if session is None:
            return _unauthenticated(request, is_api=is_api)
        if session.must_change_password and access is not Access.PASSWORD_CHANGE:
            if is_api:
                return JSONResponse({"error": "password_change_required"}, status_code=403)
            return RedirectResponse("/password", status_code=303)
        required = ROLE_RANK.get(access.value)
        if required is not None and ROLE_RANK.get(session.role, -1) < required:
            return _forbidden(is_api=is_api)
        if request.method not in SAFE_METHODS and not await _is_genuine(request, session):
            return _forbidden(is_api=is_api, reason="csrf")
        request.state.session = session
        return await endpoint(request)

    guarded.__name__ = getattr(endpoint, "__name__", "endpoint")
    guarded.__doc__ = endpoint.__doc__  # the OpenAPI document's summaries come from it
    return guarded


async def _is_genuine(request: Request, session: Session) -> bool:
    if not is_same_origin(request):
        return False
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
    return token is not None and session.check_csrf(token)


def _unauthenticated(request: Request, *, is_api: bool) -> Response:
    if is_api:
        return JSONResponse({"error": "not_authenticated"}, status_code=401)
    target = request.url.path
    if request.method in SAFE_METHODS and target != "/":
        query = urllib.parse.urlencode({"next": target})
        return RedirectResponse(f"/login?{query}", status_code=303)
    return RedirectResponse("/login", status_code=303)


def _forbidden(*, is_api: bool, reason: str = "forbidden") -> Response:
    if is_api:
        return JSONResponse({"error": reason}, status_code=403)
    return Response("Forbidden", status_code=403, media_type="text/plain")
