"""Headers every response carries, methods no route may answer, and the largest body read.

Pure ASGI middlewares (not ``BaseHTTPMiddleware``): they edit the response start message
only, so streamed downloads stay streamed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect
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
#: Largest request body read: a certificate upload (two 64 KiB files) with room to spare.
#: Forms are parsed before any endpoint sees them (the CSRF check reads the token field),
#: so this is the limit that holds for every route, whatever the route then allows.
MAX_BODY_BYTES: Final = 256 * 1024


class BodyLimitMiddleware:
    """Refuse (413) a body larger than ``max_bytes``, announced or found while reading.

    ``larger`` names the paths allowed more (uploads of updates and backups); their endpoints
    are admin-only, and the session and role are checked before a byte of the body is read.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int = MAX_BODY_BYTES,
        larger: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.larger.get(scope["path"], self.max_bytes)
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            await _too_large(send)
            return
        received = 0
        is_too_large = has_started = False

        async def counting_receive() -> Message:
            nonlocal received, is_too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # What the app sees as the client going away: it stops reading.
                    is_too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal has_started
            has_started = has_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except ClientDisconnect:
            if not is_too_large:
                raise
        if is_too_large and not has_started:
            await _too_large(send)


async def _too_large(send: Send) -> None:
    headers = [(b"content-type", b"text/plain"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": b"Request body too large"})


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

        if scope["method"] in REFUSED_METHODS:
            headers = [(b"content-type", b"text/plain"), (b"allow", b"GET, POST")]
            await send_with_headers(
                {"type": "http.response.start", "status": 405, "headers": headers}
            )
            await send_with_headers({"type": "http.response.body", "body": b"Method Not Allowed"})
            return
        await self.app(scope, receive, send_with_headers)
