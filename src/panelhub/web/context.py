"""What the web application needs from the rest of PanelHub, passed in by the service.

The web layer sits beside the gateway, not above it: it sees the gateway through
``GatewayView`` (a snapshot of its state), so it never imports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol

from panelhub.config.models import DeviceConfig, Settings
from panelhub.devices.catalog import TemplateCatalog
from panelhub.devices.discovery import ScanProgress
from panelhub.devices.template import DeviceTemplate
from panelhub.security.accounts import AccountStore
from panelhub.security.audit import AuditLog
from panelhub.security.lockout import AddressRateLimiter
from panelhub.security.sessions import SessionStore
from panelhub.storage.timeseries import TimeSeriesStore
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


@dataclass(frozen=True, slots=True)
class LiveReading:
    """The latest value of one measurement, as the monitoring page shows it."""

    key: str
    name: str
    unit: str
    #: None when the last read failed or none was made yet.
    value: float | None
    #: Wall-clock time of the last read (0: none yet).
    read_at: float


@dataclass(frozen=True, slots=True)
class DeviceView:
    """A configured device, its template and how its polling goes."""

    config: DeviceConfig
    #: None when the configured model is not in the catalog (a deleted custom model).
    template: DeviceTemplate | None
    #: "answering", "not answering", "unknown" (not polled yet) or "disabled".
    state: str
    #: Wall-clock time of the last change of ``state`` (0: none yet).
    since: float
    last_error: str
    #: Wall-clock time of the last answer (0: none yet).
    last_answer_at: float


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """A discovery run: addresses on a configured bus, or unit IDs on a list of TCP hosts."""

    bus: str | None = None
    unit_ids: Sequence[int] = ()
    #: "host" or "host:port" entries, each scanned for ``unit_ids`` (when ``bus`` is None).
    hosts: Sequence[str] = ()


class DataloggerView(Protocol):
    """What the energy pages may ask of the datalogger (implemented in ``datalogservice``)."""

    @property
    def store(self) -> TimeSeriesStore:
        """The time series: raw samples, rollups, totals."""

    @property
    def catalog(self) -> TemplateCatalog:
        """Built-in templates and the custom models."""

    def devices(self) -> Sequence[DeviceView]: ...

    def live(self, device: str) -> Sequence[LiveReading]:
        """The latest values of ``device``, and keep reading them for a minute (a watch)."""

    async def save_model(self, text: str) -> DeviceTemplate:
        """Validate and keep a custom model (created or replaced); raises ``TemplateError``."""

    async def delete_model(self, model_id: str) -> None:
        """Remove a custom model; raises ``DeviceError`` while a device uses it."""

    def start_scan(self, request: ScanRequest) -> str:
        """Start a discovery run in the background; returns its id for ``scan``."""

    def scan(self, scan_id: str) -> ScanProgress | None:
        """The progress of a run (``cancel()`` on it stops it); None for an unknown id."""


class NextStart(Enum):
    """What a restart asked for from the pages leads to."""

    RESTART = "restart"  # stop and start again with the configuration file as it is now
    UPDATE = "update"  # exit so that the launcher starts the newly installed slot
    FACTORY_RESET = "factory_reset"  # stop, erase the data directory, start as new


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

    @property
    def config_path(self) -> Path | None:
        """The configuration file the service runs from (None: built-in settings, the demo)."""

    def request_restart(self, next_start: NextStart = NextStart.RESTART) -> None:
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
    #: The datalogger and its store; None where the pages run without one (some tests).
    datalog: DataloggerView | None = None
