"""The composition root: build the gateway from ``Settings``, run it, shut it down in order.

Shutdown follows uvicorn: stop accepting, let answers under way drain for ``SHUTDOWN_GRACE_S``,
then close the downstream links. Only ``run`` installs signal handlers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from panelhub.config.models import BusConfig, ListenerConfig, RTUBusConfig, Settings
from panelhub.config.store import load_settings, save_settings
from panelhub.datalogservice import DataloggerService
from panelhub.errors import (
    ConfigError,
    DatalogStoreError,
    IntegrityError,
    SettingsApplyError,
    SettingsConflictError,
)
from panelhub.gateway.local import ClockSink, Health, LocalServer
from panelhub.gateway.routing import Route, Router
from panelhub.gateway.server import Listener, RefusalSink
from panelhub.launcher import notify_ready
from panelhub.security import firmware, integrity, reset, restore
from panelhub.security.reset import factory_reset
from panelhub.transport.bus import Bus, Link
from panelhub.transport.serial import LineSettings, SerialLink
from panelhub.transport.tcp import TCPLink
from panelhub.web.context import (
    BusStatus,
    DeviceStatus,
    GatewayStatus,
    ListenerStatus,
    NextStart,
)

logger = logging.getLogger(__name__)

#: Time given to transactions under way to finish at shutdown; a SCADA retries what it loses.
SHUTDOWN_GRACE_S: Final = 2.0
#: Between a restart asked for in the pages and its start: time for the answer to go out.
RESTART_DELAY_S: Final = 0.5


def build_bus(config: BusConfig) -> Bus:
    return Bus(
        config.name, build_link(config), queue_size=config.queue_size, retries=config.retries
    )


def build_router(settings: Settings, buses: dict[str, Bus]) -> Router[Bus]:
    routes = {
        route.unit_id: Route(
            buses[route.bus],
            route.unit_id if route.target_unit_id is None else route.target_unit_id,
        )
        for route in settings.routes
    }
    default = settings.gateway.default_bus
    return Router(routes, default_bus=None if default is None else buses[default])


def _takes_over(listener: Listener, new: ListenerConfig) -> bool:
    """Whether ``new`` keeps the socket of ``listener``: the same address, whatever else changed.

    Keeping it is what lets a rename or new limits apply without cutting SCADA off (binding a
    second socket on the address would fail anyway). A port given as 0 (any free one) is the
    same address only for the same listener, by name. The listen backlog set at bind time
    stays; ``max_connections`` itself applies at once.
    """
    old = listener.config
    if old.host != new.host:
        return False
    if new.port == 0:
        return old.port == 0 and old.name == new.name
    return new.port in (old.port, listener.address[1])


def build_link(config: BusConfig) -> Link:
    if isinstance(config, RTUBusConfig):
        return SerialLink(
            LineSettings(
                device=str(config.device),
                baud_rate=config.baud_rate,
                parity=config.parity,
                stop_bits=config.stop_bits,
                response_timeout_s=config.response_timeout_s,
                turnaround_delay_s=config.turnaround_delay_s,
                inter_frame_delay_s=config.inter_frame_delay_s,
                frame_gap_s=config.frame_gap_s,
            )
        )
    return TCPLink(
        host=config.host,
        port=config.port,
        connect_timeout_s=config.connect_timeout_s,
        response_timeout_s=config.response_timeout_s,
        capacity=config.max_in_flight,
    )


class Gateway:
    """Buses, routes, the local server and the listeners of one configuration."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._on_refusal: RefusalSink | None = None
        self._on_clock_set: ClockSink | None = None
        self.buses = {config.name: build_bus(config) for config in settings.buses}
        self.router = build_router(settings, self.buses)
        self.local = self.build_local(settings)
        self.listeners = [
            self._build_listener(config, settings) for config in settings.listeners if config.enable
        ]

    def bus(self, name: str) -> Bus | None:
        """The bus named ``name`` now: a settings change replaces the ``buses`` dict itself."""
        return self.buses.get(name)

    def build_local(self, settings: Settings) -> LocalServer:
        local = LocalServer(
            settings.gateway.identity,
            health=self.health,
            now=lambda: dt.datetime.now().astimezone(),
            allow_set_clock=settings.gateway.allow_set_clock,
        )
        local.on_clock_set = self._on_clock_set
        previous: LocalServer | None = getattr(self, "local", None)
        if previous is not None:
            local.clock_offset = previous.clock_offset
        return local

    def _build_listener(self, config: ListenerConfig, settings: Settings) -> Listener:
        return Listener(
            config,
            router=self.router,
            local=self.local,
            request_ttl_s=settings.gateway.request_ttl_ms / 1000,
            on_refusal=self._on_refusal,
        )

    def audit_refusals(self, sink: RefusalSink | None) -> None:
        """Report the listeners' refusals to ``sink`` (the audit log); None: to the log only."""
        self._on_refusal = sink
        for listener in self.listeners:
            listener.on_refusal = sink

    def audit_clock_changes(self, sink: ClockSink | None) -> None:
        """Report clock changes made over Modbus (unit 255) to ``sink``; None: to the log."""
        self._on_clock_set = sink
        self.local.on_clock_set = sink

    async def prepare(self, settings: Settings) -> Reconfiguration:
        """Get ready to run ``settings`` in place of the current ones, changing nothing yet.

        The one step that can fail, binding the addresses of new or moved listeners, is done
        here; ``Reconfiguration.commit`` then only swaps objects. Buses whose settings did not
        change are kept with their connections and queues; so are listeners whose address did
        not change, with their clients.

        Raises:
            SettingsApplyError: a listener address cannot be bound (in use, not on this host).
        """
        buses = {
            config.name: self.buses[config.name]
            if config.name in self.buses and self._bus_config(config.name) == config
            else build_bus(config)
            for config in settings.buses
        }
        router = build_router(settings, buses)
        kept: list[tuple[Listener, ListenerConfig]] = []
        started: list[Listener] = []
        try:
            for config in settings.listeners:
                if not config.enable:
                    continue
                claimed = [old for old, _ in kept]
                listener = next(
                    (old for old in self.listeners
                     if old not in claimed and _takes_over(old, config)),
                    None,
                )  # fmt: skip
                if listener is not None:
                    kept.append((listener, config))
                    continue
                fresh = self._build_listener(config, settings)
                fresh.router = router
                await fresh.start()
                started.append(fresh)
        except OSError as exc:
            for listener in started:
                await listener.aclose()
            raise SettingsApplyError(
                f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}",
                problems=(f"listeners[{config.name}]: {exc.strerror or exc}",),
            ) from exc
        return Reconfiguration(self, settings, buses, router, kept, started)

    def _bus_config(self, name: str) -> BusConfig | None:
        return next((bus for bus in self.settings.buses if bus.name == name), None)

    def status(self) -> GatewayStatus:
        """A snapshot for the web pages (``web.context.GatewayView``)."""
        return GatewayStatus(
            health=self.health().name.lower(),
            listeners=[
                ListenerStatus(
                    name=listener.config.name,
                    address="{}:{}".format(*listener.address),
                    connections=len(listener.connections),
                    is_read_only=listener.config.is_read_only,
                )
                for listener in self.listeners
            ],
            buses=[
                BusStatus(
                    name=name,
                    peer=bus.link.peer,
                    is_available=bus.is_available,
                    submitted=bus.stats.submitted,
                    answered=bus.stats.answered,
                    errors=bus.stats.errors,
                    timeouts=bus.stats.timeouts,
                    queued=bus.queued,
                )
                for name, bus in self.buses.items()
            ],
            devices=self._devices(),
        )

    def _devices(self) -> list[DeviceStatus]:
        """Every address a route names or a request reached, by bus and address."""
        unit_ids: dict[tuple[str, int], list[int]] = {}
        for route in self.settings.routes:
            address = route.unit_id if route.target_unit_id is None else route.target_unit_id
            unit_ids.setdefault((route.bus, address), []).append(route.unit_id)
        for name, bus in self.buses.items():
            for address in bus.devices:
                unit_ids.setdefault((name, address), [])
        transparent = self.settings.gateway.default_bus
        now = time.time()
        devices = []
        for (name, address), units in sorted(unit_ids.items()):
            if name == transparent and address not in units:
                units.append(address)
            state = self.buses[name].devices.get(address)
            devices.append(
                DeviceStatus(
                    bus=name,
                    address=address,
                    unit_ids=sorted(units),
                    state="not asked yet"
                    if state is None
                    else "answering"
                    if state.is_answering
                    else "not answering",
                    answered=0 if state is None else state.answered,
                    failed=0 if state is None else state.failed,
                    last_answer_age_s=None
                    if state is None or not state.last_answer_at
                    else round(now - state.last_answer_at, 1),
                )
            )
        return devices

    def health(self) -> Health:
        """Nominal when every bus answers, out of order when none does, degraded between."""
        available = [bus.is_available for bus in self.buses.values()]
        if all(available):
            return Health.NOMINAL
        return Health.DEGRADED if any(available) else Health.OUT_OF_ORDER

    async def start(self) -> None:
        for listener in self.listeners:
            await listener.start()

    async def aclose(self) -> None:
        # Client connections are closed only after the drain: closing them first would throw
        # away the very answers the grace time is there for.
        for listener in self.listeners:
            listener.stop_accepting()
        async with asyncio.timeout(SHUTDOWN_GRACE_S + 1):
            await self._drain()
        for listener in self.listeners:
            await listener.aclose()
        for bus in self.buses.values():
            await bus.aclose()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + SHUTDOWN_GRACE_S
        # Polling, bounded by the grace time: links complete by callbacks and have no event to
        # wait on, and shutdown is the one place where 50 ms granularity costs nothing.
        while loop.time() < until and not all(  # noqa: ASYNC110
            bus.is_idle for bus in self.buses.values()
        ):
            await asyncio.sleep(0.05)


class Reconfiguration:
    """New settings made ready by ``Gateway.prepare``: commit them, or abort to change nothing."""

    def __init__(
        self,
        gateway: Gateway,
        settings: Settings,
        buses: dict[str, Bus],
        router: Router[Bus],
        kept: list[tuple[Listener, ListenerConfig]],
        started: list[Listener],
    ) -> None:
        self._gateway = gateway
        self._settings = settings
        self._buses = buses
        self._router = router
        self._kept = kept
        self._started = started

    async def abort(self) -> None:
        for listener in self._started:
            await listener.aclose()
        for name, bus in self._buses.items():
            if self._gateway.buses.get(name) is not bus:
                await bus.aclose()

    async def commit(self) -> None:
        """Put the new settings in force: from the next request on, for every client."""
        gateway = self._gateway
        old_settings, old_buses = gateway.settings, gateway.buses
        gateway.settings = self._settings
        gateway.buses = self._buses
        gateway.router = self._router
        if (old_settings.gateway.identity, old_settings.gateway.allow_set_clock) != (
            self._settings.gateway.identity,
            self._settings.gateway.allow_set_clock,
        ):
            gateway.local = gateway.build_local(self._settings)
        ttl_s = self._settings.gateway.request_ttl_ms / 1000
        retired = [listener for listener in gateway.listeners if listener not in dict(self._kept)]
        for listener, config in self._kept:
            listener.reconfigure(config)
        gateway.listeners = [listener for listener, _ in self._kept] + self._started
        for listener in gateway.listeners:
            listener.router = self._router
            listener.local = gateway.local
            listener.request_ttl_s = ttl_s
        for listener in retired:
            await listener.aclose()
        for name, bus in old_buses.items():
            if self._buses.get(name) is not bus:
                await bus.aclose()


class ServiceController:
    """The running service as the web pages see it (``web.context.ServiceControl``)."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        config_path: Path | None,
        on_restart: Callable[[], None],
        datalog: DataloggerService | None = None,
    ) -> None:
        self._gateway = gateway
        self._config_path = config_path
        self._on_restart = on_restart
        self._datalog = datalog
        self._lock = asyncio.Lock()
        #: What the last restart asked for leads to (``run`` reads it when ``_serve`` ends).
        self.next_start = NextStart.RESTART

    @property
    def config_path(self) -> Path | None:
        return self._config_path

    @property
    def settings(self) -> Settings:
        return self._gateway.settings

    async def apply_settings(
        self, settings: Settings, *, based_on: Settings | None = None
    ) -> tuple[str, ...]:
        """Save, then put in force; see ``ServiceControl.apply_settings``.

        Raises:
            SettingsApplyError: a new listener cannot bind, or the file cannot be written;
                nothing was changed.
        """
        async with self._lock:  # two admins saving at once: one after the other
            if based_on is not None and based_on != self._gateway.settings:
                raise SettingsConflictError(
                    "the settings were changed meanwhile (by someone else?); nothing was "
                    "changed: reload them and make the change again",
                    problems=("the settings were changed meanwhile; reload and try again",),
                )
            plan = await self._gateway.prepare(settings)
            if self._config_path is not None:
                try:
                    header = f"Saved from the PanelHub pages at {dt.datetime.now(dt.UTC):%c} UTC."
                    await asyncio.to_thread(
                        save_settings, self._config_path, settings, header=header
                    )
                except ConfigError as exc:
                    await plan.abort()
                    raise SettingsApplyError(str(exc), problems=exc.problems) from exc
            old = self._gateway.settings
            await plan.commit()
            if self._datalog is not None:
                await self._datalog.apply(settings)
        logger.info("settings applied")
        return restart_needed(old, settings)

    def request_restart(self, next_start: NextStart = NextStart.RESTART) -> None:
        # A plain restart asked for just after an update or a reset does not cancel it.
        if next_start is not NextStart.RESTART or self.next_start is NextStart.RESTART:
            self.next_start = next_start
        # A moment's delay: the page that asked gets its answer before the server goes away.
        asyncio.get_running_loop().call_later(RESTART_DELAY_S, self._on_restart)


def restart_needed(old: Settings, new: Settings) -> tuple[str, ...]:
    """Settings that changed but take effect only at the next start."""
    return tuple(
        name
        for name in ("data_dir", "web", "log_level")
        if getattr(old, name) != getattr(new, name)
    )


async def run(
    settings: Settings,
    *,
    config_path: Path | None = None,
    stop: asyncio.Event | None = None,
    on_started: Callable[[Gateway], None] | None = None,
    on_initial_password: Callable[[str], None] | None = None,
    factory_config: Path | None = None,
) -> bool:
    """Run the gateway and the web pages until SIGINT/SIGTERM (or ``stop`` is set).

    Returns True when the pages asked to run a newly installed slot: the process must exit
    with ``launcher.RESTART_EXIT_CODE`` so that the launcher starts it.

    ``config_path`` is the file the settings came from: settings saved from the pages are
    written there, and a restart asked for in the pages reads it again.
    ``on_started`` is called each time every listener is accepting connections.
    ``on_initial_password`` gets the admin's initial password at the very first start: the
    console shows it once (it is never logged).
    ``factory_config`` is the configuration a factory reset from the pages brings back.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        # A reset or a restore cut short is finished before anything reads the data.
        reset.recover(settings.data_dir, config_path=config_path, factory_config=factory_config)
        restore.recover(settings.data_dir)
        try:
            check_code(settings)
        except IntegrityError as exc:
            from panelhub.refusal import serve_reason  # noqa: PLC0415 - only on this path

            await serve_reason(settings, exc, stop)
            return False
        while True:
            restart = asyncio.Event()
            next_start = await _serve(
                settings,
                config_path=config_path,
                until=(stop, restart),
                on_started=on_started,
                on_initial_password=on_initial_password or _print_password,
            )
            if stop.is_set():
                return False
            if next_start is NextStart.UPDATE:
                logger.warning("exiting to run the newly installed software")
                return True
            if next_start is NextStart.FACTORY_RESET:
                try:
                    erased = factory_reset(
                        settings.data_dir, config_path=config_path, factory_config=factory_config
                    )
                except ConfigError as exc:  # the factory file changed since the start
                    logger.error("factory reset NOT done, nothing erased: %s", exc)  # noqa: TRY400
                else:
                    logger.warning("factory reset from the pages: %d files erased", erased)
            logger.info("restarting")
            settings = _reread(config_path, settings)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _serve(
    settings: Settings,
    *,
    config_path: Path | None,
    until: tuple[asyncio.Event, asyncio.Event],
    on_started: Callable[[Gateway], None] | None,
    on_initial_password: Callable[[str], None],
) -> NextStart | None:
    """One life of the service: start everything, wait for stop or restart, stop everything.

    Returns what the restart asked for (None when stopped, or restarted by no page).
    """
    restart = until[1]
    gateway = Gateway(settings)
    web = None
    datalog = None
    control: ServiceController | None = None
    try:
        await gateway.start()
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        datalog = await _start_datalogger(settings, gateway)
        if settings.web.enable:
            from panelhub.webservice import start_web  # noqa: PLC0415 - the web stack on demand

            control = ServiceController(
                gateway, config_path=config_path, on_restart=restart.set, datalog=datalog
            )
            web = await start_web(
                settings,
                gateway,
                control=control,
                on_initial_password=on_initial_password,
                datalog=datalog,
            )
            gateway.audit_refusals(web.refusals)
            gateway.audit_clock_changes(web.clock_changes)
        if on_started is not None:
            on_started(gateway)
        notify_ready()  # to the launcher, if it started us: the first time only
        waiters = [asyncio.ensure_future(event.wait()) for event in until]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        logger.info("stopping")
        return control.next_start if control is not None and restart.is_set() else None
    finally:
        if web is not None:
            gateway.audit_refusals(None)  # the audit log closes with the pages
            gateway.audit_clock_changes(None)
            await web.aclose()
        if datalog is not None:
            await datalog.aclose()
        await gateway.aclose()


async def _start_datalogger(settings: Settings, gateway: Gateway) -> DataloggerService | None:
    """The datalogger, or None when its store cannot be used: the gateway runs without it."""
    try:
        datalog = DataloggerService(settings, bus_for=gateway.bus, bus_factory=build_bus)
    except DatalogStoreError as exc:
        logger.error(  # noqa: TRY400 - the reason is the message; no traceback helps here
            "datalogger not running: %s; move the file aside to start a new one", exc
        )
        return None
    await datalog.start()
    return datalog


def check_code(settings: Settings) -> None:
    """The start-up integrity check, before any listener opens; logs what it checked."""
    anchors = firmware.trust_anchors(settings.data_dir)
    result = integrity.check_running_code([anchor.key for anchor in anchors])
    logger.warning(
        "code check: %s (%d files, %.0f ms)", result.what, result.files, result.elapsed_s * 1000
    )


def _reread(config_path: Path | None, settings: Settings) -> Settings:
    """The configuration file as it is now; the settings in force if it no longer validates."""
    if config_path is None:
        return settings
    try:
        return load_settings(config_path)
    except ConfigError as exc:
        logger.error(  # noqa: TRY400 - the problems are the message
            "keeping the running settings: %s: %s", exc, "; ".join(exc.problems)
        )
        return settings


def _print_password(password: str) -> None:
    # The console, not the log: the log is kept and shipped; this is shown once.
    print(
        f"Initial password of the web user 'admin': {password}  (change it at first login)",
        flush=True,
    )
