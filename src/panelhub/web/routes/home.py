"""The status page and API: what the gateway is doing now (the home page is the overview)."""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from panelhub.web.access import context_of, session_of
from panelhub.web.templating import render


async def status_page(request: Request) -> Response:
    """Listeners, buses and devices of the gateway: health, traffic, answers."""
    return render(request, "status.html", {"status": context_of(request).gateway.status()})


async def status(request: Request) -> Response:
    return JSONResponse(dataclasses.asdict(context_of(request).gateway.status()))


async def whoami(request: Request) -> Response:
    """Who the session belongs to, and the token its state-changing API calls must send.

    The token is safe to give here: only a same-origin script or a client holding the session
    cookie can read this answer (no CORS), which is who may send it back anyway.
    """
    session = session_of(request)
    return JSONResponse(
        {
            "user": session.user_name,
            "role": session.role,
            "must_change_password": session.must_change_password,
            "csrf_token": session.csrf_token,
        }
    )


async def health(_request: Request) -> Response:
    """The probe a supervisor polls: says only that the web server answers."""
    return JSONResponse({"status": "ok"})
