"""The web side of the composition root: accounts, audit log, certificate, HTTPS server.

Kept apart from ``service.py`` so that the gateway alone (tests, ``web.enable = false``)
does not load the web stack. Fail closed: when the account store cannot be opened, the
pages are replaced by one that says why and how to recover; the gateway keeps running.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from panelhub.config.models import Settings
from panelhub.errors import StateStoreError
from panelhub.gateway.local import ClockSink
from panelhub.gateway.server import RefusalSink
from panelhub.security.accounts import AccountStore
from panelhub.security.audit import AuditEvent, AuditLog, DetailValue, Outcome
from panelhub.security.certs import ensure_certificate
from panelhub.security.lockout import AddressRateLimiter
from panelhub.security.passwords import PasswordHasher, PasswordPolicy
from panelhub.security.sessions import SessionStore
from panelhub.transport.tls import server_context
from panelhub.web.app import create_app
from panelhub.web.certificate import ServedCertificate
from panelhub.web.context import DataloggerView, GatewayView, ServiceControl, WebContext
from panelhub.web.middleware import SecurityHeadersMiddleware
from panelhub.web.server import WebServer

logger = logging.getLogger(__name__)

RECOVERY_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: A client's clock changes are recorded at most once in this time (the rest counted).
CLOCK_RECORD_INTERVAL_S: Final = 60.0
#: Clients tracked one by one; beyond, their changes are counted together as from "*".
MAX_CLOCK_CLIENTS: Final = 64

RECOVERY_MESSAGE = (
    "The account store of this panel server is missing or damaged, so nobody can log in.\n"
    "On the panel server's console, run:  panelhub user reset-password admin\n"
)


@dataclass
class WebRuntime:
    server: WebServer
    store: AccountStore | None
    audit: AuditLog | None

    @property
    def refusals(self) -> RefusalSink | None:
        """Where the gateway reports refusals: the audit log, when the store could be opened."""
        return None if self.audit is None else refusal_recorder(self.audit)

    @property
    def clock_changes(self) -> ClockSink | None:
        """Where the gateway reports a clock set over Modbus: the audit log, when open."""
        return None if self.audit is None else clock_recorder(self.audit)

    async def aclose(self) -> None:
        await self.server.aclose()
        if self.audit is not None:
            await self.audit.record(AuditEvent.PROCESS_STOP, outcome=Outcome.SUCCESS, user=None,
                                    source="", interface="service")  # fmt: skip
        if self.store is not None:
            self.store.close()


async def start_web(
    settings: Settings,
    gateway: GatewayView,
    *,
    control: ServiceControl,
    on_initial_password: Callable[[str], None],
    datalog: DataloggerView | None = None,
) -> WebRuntime:
    """Open (or provision) the accounts, make sure of the certificate, and serve the pages.

    Raises:
        OSError: the web address cannot be bound.

    """
    web = settings.web
    data_dir = settings.data_dir
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    host_names = [socket.gethostname(), *web.certificate_names]
    certificate = ensure_certificate(data_dir / "tls", host_names=host_names, addresses=[web.host])
    tls = server_context(certificate.cert_path, certificate.key_path)
    try:
        provisioning = AccountStore.open(
            data_dir, PasswordHasher(), policy=PasswordPolicy(web.password_policy)
        )
    except StateStoreError as exc:
        logger.error(  # noqa: TRY400 - the reason is the message; no traceback helps here
            "web logins disabled: %s; recover with `panelhub user reset-password`", exc
        )
        server = WebServer(_recovery_app(), host=web.host, port=web.port, tls=tls)
        await server.start()
        return WebRuntime(server, None, None)
    store = provisioning.store
    audit = AuditLog(store.db)
    await audit.record(AuditEvent.PROCESS_START, outcome=Outcome.SUCCESS, user=None, source="",
                       interface="service")  # fmt: skip
    if provisioning.initial_password is not None:
        on_initial_password(provisioning.initial_password)
    context = WebContext(
        accounts=store,
        sessions=SessionStore(
            idle_timeout_s=web.session_idle_timeout_s,
            absolute_timeout_s=web.session_absolute_timeout_s,
        ),
        rate_limiter=AddressRateLimiter(),
        gateway=gateway,
        audit=audit,
        control=control,
        data_dir=data_dir,
        login_banner=web.login_banner,
        send_hsts=certificate.is_owner_installed,
        # The same context the server presents: a certificate installed in the pages is
        # served on new connections without a restart.
        certificate=ServedCertificate(
            data_dir / "tls", host_names=host_names, addresses=[web.host], tls=tls
        ),
        datalog=datalog,
    )
    server = WebServer(create_app(context), host=web.host, port=web.port, tls=tls)
    try:
        await server.start()
    except BaseException:
        store.close()
        raise
    return WebRuntime(server, store, audit)


def refusal_recorder(audit: AuditLog) -> RefusalSink:
    """A ``modbus.refused`` audit record per refusal the listener reports (already rate-limited).

    ``emit``, not ``record``: the listener calls on the event loop that carries every Modbus
    client, and a burst of refusals must not wait for the disk.
    """

    def record(*, client: str, listener: str, what: str, reason: str, suppressed: int) -> None:
        details: dict[str, DetailValue] = {"refused": what, "reason": reason}
        if suppressed:
            details["suppressed"] = suppressed  # since the last record of this client and reason
        audit.emit(AuditEvent.MODBUS_REFUSED, outcome=Outcome.FAILURE, user=None, source=client,
                   interface=f"modbus:{listener}", details=details)  # fmt: skip

    return record


def clock_recorder(audit: AuditLog, *, clock: Callable[[], float] = time.monotonic) -> ClockSink:
    """A ``clock.changed`` audit record per client and minute for clock changes over Modbus.

    Rate-limited like refusals: a SCADA writing the clock in a loop must not roll the login
    history off the audit log. The next record of that client says how many were left out.
    """
    last: dict[str, tuple[float, int]] = {}

    def record(*, client: str, listener: str, set_to: dt.datetime, offset: dt.timedelta) -> None:
        now = clock()
        key = client if client in last or len(last) < MAX_CLOCK_CLIENTS else "*"
        recorded_at, suppressed = last.get(key, (-CLOCK_RECORD_INTERVAL_S, 0))
        if now - recorded_at < CLOCK_RECORD_INTERVAL_S:
            last[key] = (recorded_at, suppressed + 1)
            return
        last[key] = (now, 0)
        details: dict[str, DetailValue] = {
            "set_to": set_to.isoformat(timespec="milliseconds"),
            "offset_ms": round(offset.total_seconds() * 1000),
        }
        if suppressed:
            details["suppressed"] = suppressed  # changes since the last record of this client
        audit.emit(AuditEvent.CLOCK_CHANGED, outcome=Outcome.SUCCESS, user=None, source=key,
                   interface=f"modbus:{listener}", details=details)  # fmt: skip

    return record


def _recovery_app() -> ASGIApp:
    async def explain(_request: Request) -> Response:
        return PlainTextResponse(RECOVERY_MESSAGE, status_code=503)

    app = Starlette(
        # Every method: an API client gets the way back too, not "405 Method Not Allowed".
        routes=[Route("/{path:path}", explain, methods=list(RECOVERY_METHODS))],
    )
    return SecurityHeadersMiddleware(app)
