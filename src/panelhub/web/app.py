"""``create_app``: the route table, where every route states who may call it.

Every route is made with ``access.page`` or ``access.api`` (the guard and its access level);
the only other entry is the static files mount, which is public: stylesheets and scripts
hold no data.
"""

from __future__ import annotations

from typing import Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from panelhub.security import backup, bundle
from panelhub.web.access import Access, api, page
from panelhub.web.context import WebContext
from panelhub.web.middleware import MAX_BODY_BYTES, BodyLimitMiddleware, SecurityHeadersMiddleware
from panelhub.web.routes import (
    auth,
    devices,
    discovery,
    export,
    home,
    lifecycle,
    logs,
    maintenance,
    models,
    openapi,
    overview,
    sessionapi,
    settings,
    trends,
    users,
    usersapi,
)


def routes() -> list[BaseRoute]:
    return [
        page("/login", auth.login_page, access=Access.PUBLIC),
        page("/login", auth.login, access=Access.PUBLIC, methods=["POST"]),
        page("/logout", auth.logout, access=Access.PASSWORD_CHANGE, methods=["POST"]),
        page("/password", auth.password_page, access=Access.PASSWORD_CHANGE),
        page("/password", auth.change_password, access=Access.PASSWORD_CHANGE, methods=["POST"]),
        *overview.routes(),
        *trends.routes(),
        *export.routes(),
        page("/status", home.status_page, access=Access.VIEWER),
        api("/healthz", home.health, access=Access.PUBLIC),
        api("/api/session", home.whoami, access=Access.PASSWORD_CHANGE),
        api("/api/status", home.status, access=Access.VIEWER),
        *sessionapi.routes(),
        *settings.routes(),
        *devices.routes(),
        *discovery.routes(),
        *models.routes(),
        *users.routes(),
        *usersapi.routes(),
        *logs.routes(),
        *maintenance.routes(),
        *lifecycle.routes(),
        *openapi.routes(),
        Mount("/static", StaticFiles(packages=[("panelhub.web", "static")]), name="static"),
    ]


async def _not_found(_request: Request, _exc: Exception) -> Response:
    return PlainTextResponse("Not Found", status_code=404)


async def _server_error(_request: Request, _exc: Exception) -> Response:
    # Never a stack trace: the log has it, the page says only that it failed.
    return PlainTextResponse("Internal Server Error", status_code=500)


#: The uploads larger than a form: an update bundle and a backup (each with its form fields).
LARGER_BODIES: Final = {
    "/maintenance/firmware": bundle.MAX_BUNDLE_BYTES + MAX_BODY_BYTES,
    "/maintenance/restore": backup.MAX_BACKUP_BYTES + MAX_BODY_BYTES,
}


def create_app(context: WebContext) -> Starlette:
    app = Starlette(
        routes=routes(),
        # Asked per response: installing or reverting a certificate turns HSTS on or off.
        middleware=[
            Middleware(SecurityHeadersMiddleware, send_hsts=lambda: context.send_hsts),
            Middleware(BodyLimitMiddleware, larger=LARGER_BODIES),
        ],
        exception_handlers={404: _not_found, 500: _server_error},
    )
    app.state.context = context
    return app
