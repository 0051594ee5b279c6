"""Headers every response carries, and methods no route may answer.

A pure ASGI middleware (not ``BaseHTTPMiddleware``): it edits the response start message
only, so streamed downloads stay streamed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: No inline script or style anywhere: the pages load /static files only.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
#: One year, as browsers' preload lists expect; sent only with an owner's certificate.
HSTS: Final = "max-age=31536000"
#: TRACE echoes requests (cookies included) back; CONNECT has no meaning here.
REFUSED_METHODS: Final = frozenset({"TRACE", "TRACK", "CONNECT"})


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, send_hsts: bool | Callable[[], bool] = False) -> None:
        """Add the headers; ``send_hsts`` may be a callable, asked per response.

        A callable because the certificate can change while the server runs (an owner
        installs one, or goes back to self-signed), and HSTS follows it.
        """
        self.app = app
        self.send_hsts = send_hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in REFUSED_METHODS:
            headers = [(b"content-type", b"text/plain"), (b"allow", b"GET, POST")]
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            await send({"type": "http.response.body", "body": b"Method Not Allowed"})
            return
        is_static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Frame-Options"] = "DENY"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                # Pages show live state and personal data: never from a cache. Static files
                # are public and versioned with the package.
                headers["Cache-Control"] = "no-cache" if is_static else "no-store"
                if self.send_hsts() if callable(self.send_hsts) else self.send_hsts:
                    headers["Strict-Transport-Security"] = HSTS
                if "server" in headers:
                    del headers["server"]
            await send(message)

        await self.app(scope, receive, send_with_headers)
