"""What the web application needs from the rest of PanelHub, passed in by the service.

The web layer sits beside the gateway, not above it: it sees the gateway through
``GatewayView`` (a snapshot of its state), so it never imports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from panelhub.config.models import Settings
from panelhub.security.accounts import AccountStore
from panelhub.security.audit import AuditLog
from panelhub.security.lockout import AddressRateLimiter
from panelhub.security.sessions import SessionStore
from panelhub.web.certificate import ServedCertificate


@dataclass(frozen=True, slots=True)
class BusStatus:
    name: str
    peer: str
    is_available: bool
    submitted: int
    answered: int
    errors: int
    timeouts: int
    queued: int


@dataclass(frozen=True, slots=True)
class ListenerStatus:
    name: str
    address: str
    connections: int
    is_read_only: bool


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One device behind the gateway: an address on a bus."""

    bus: str
    address: int
    #: The unit IDs a SCADA uses to reach it (routes; on the transparent bus, the address).
    unit_ids: Sequence[int]
    #: "answering", "not answering", or "not asked yet".
    state: str
    answered: int
    failed: int
    #: Seconds since its last answer; None if it never answered.
    last_answer_age_s: float | None


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    health: str
    listeners: Sequence[ListenerStatus]
    buses: Sequence[BusStatus]
    devices: Sequence[DeviceStatus] = ()


class GatewayView(Protocol):
    def status(self) -> GatewayStatus: ...


class ServiceControl(Protocol):
    """What the settings and maintenance pages may ask of the running service."""

    @property
    def settings(self) -> Settings:
        """The settings in force now."""

    async def apply_settings(
        self, settings: Settings, *, based_on: Settings | None = None
    ) -> tuple[str, ...]:
        """Save ``settings`` atomically and put them in force without a restart.

        ``based_on``: the settings the change was made from; when others are in force by
        now (another admin saved meanwhile), ``SettingsConflictError`` and nothing changes,
        rather than one change silently undoing the other.

        Returns the setting names that only a restart puts in force. Raises
        ``SettingsApplyError`` when nothing was changed (the file and the running gateway
        are both as before).
        """

    def request_restart(self) -> None:
        """Restart the service (gateway and pages) shortly, once the answer is sent."""


@dataclass(slots=True)
class WebContext:
    accounts: AccountStore
    sessions: SessionStore
    rate_limiter: AddressRateLimiter
    gateway: GatewayView
    audit: AuditLog
    control: ServiceControl
    data_dir: Path
    login_banner: str = ""
    #: Strict-Transport-Security only with an owner-installed certificate: with a self-signed
    #: one it would lock browsers out of the panel after a certificate change.
    send_hsts: bool = False
    clock: Callable[[], float] = field(default=time.time)
    #: When live sessions were last compared with the accounts (``web.sessionsync``).
    sessions_synced_at: float = float("-inf")
    #: The HTTPS certificate the maintenance page shows and changes; ``None`` when this app
    #: is not behind PanelHub's own TLS server.
    certificate: ServedCertificate | None = None
    #: ``time.monotonic()`` when the pages started: the uptime the maintenance page shows.
    started_at: float = field(default_factory=time.monotonic)
