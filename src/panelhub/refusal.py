"""What a service whose code failed its integrity check does: serve the reason, nothing else.

No Modbus listener opens and the web application is not loaded: the code that would run is
the code in doubt. Only this module's few lines answer, on the pages' address, every request
with ``503`` and the reason in plain text, over TLS with the panel's certificate (none is
made here: without one, nothing listens and the reason is in the system log only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Final

from panelhub.config.models import Settings
from panelhub.errors import CertificateError, IntegrityError, StateStoreError
from panelhub.security import certs
from panelhub.security.accounts import STATE_FILE
from panelhub.security.audit import AuditEvent, AuditLog, Outcome
from panelhub.storage.db import Database
from panelhub.transport.tls import server_context

logger = logging.getLogger(__name__)

#: A request line and headers are read up to this, then the answer goes whatever came.
MAX_REQUEST_BYTES: Final = 8 * 1024
READ_TIMEOUT_S: Final = 5.0


def reason_text(error: IntegrityError) -> str:
    lines = [
        "PanelHub is not running: its installed code does not match its signed manifest.",
        "",
        str(error),
        *(f"  {problem}" for problem in error.problems),
        "",
        "Install a signed update bundle again (panelhub firmware install), or restore the file.",
    ]
    return "\n".join(lines) + "\n"


def audit_failure(settings: Settings, error: IntegrityError) -> None:
    try:
        db = Database.open(settings.data_dir / STATE_FILE, create=False)
    except StateStoreError:
        return  # never provisioned: nothing to record into
    try:
        AuditLog(db).record_sync(
            AuditEvent.INTEGRITY_FAILED, outcome=Outcome.FAILURE, user="", source="",
            interface="system", details={"problems": "; ".join(error.problems)[:500]},
        )  # fmt: skip
    finally:
        db.close()


async def serve_reason(settings: Settings, error: IntegrityError, stop: asyncio.Event) -> None:
    """Answer every HTTPS request with the reason until ``stop`` is set."""
    text = reason_text(error)
    logger.critical("%s", text)
    audit_failure(settings, error)
    context = _tls_context(settings)
    if context is None or not settings.web.enable:
        await stop.wait()
        return
    body = text.encode("utf-8")
    answer = (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"cache-control: no-store\r\nconnection: close\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode("ascii")
        + body
    )

    async def answer_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
            async with asyncio.timeout(READ_TIMEOUT_S):
                await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(
        answer_one, settings.web.host, settings.web.port, ssl=context, limit=MAX_REQUEST_BYTES
    )
    async with server:
        await stop.wait()


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The pages' own TLS settings and certificate (``transport.tls``), or None without one."""
    tls_dir = settings.data_dir / "tls"
    try:
        return server_context(tls_dir / certs.CERT_FILE, tls_dir / certs.KEY_FILE)
    except CertificateError as exc:
        logger.error("no certificate to serve the reason with: %s", exc)  # noqa: TRY400
        return None
