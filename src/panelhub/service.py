"""The composition root: build the gateway from ``Settings``, run it, shut it down in order.

Shutdown follows uvicorn: stop accepting, let answers under way drain for ``SHUTDOWN_GRACE_S``,
then close the downstream links. Only ``run`` installs signal handlers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
from collections.abc import Callable
from typing import Final

from panelhub.config.models import BusConfig, RTUBusConfig, Settings
from panelhub.gateway.local import Health, LocalServer
from panelhub.gateway.routing import Route, Router
from panelhub.gateway.server import Listener
from panelhub.transport.bus import Bus, Link
from panelhub.transport.serial import LineSettings, SerialLink
from panelhub.transport.tcp import TCPLink
from panelhub.web.context import BusStatus, GatewayStatus, ListenerStatus

logger = logging.getLogger(__name__)

#: Time given to transactions under way to finish at shutdown; a SCADA retries what it loses.
SHUTDOWN_GRACE_S: Final = 2.0


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
        self.buses = {
            config.name: Bus(
                config.name,
                build_link(config),
                queue_size=config.queue_size,
                retries=config.retries,
            )
            for config in settings.buses
        }
        gateway = settings.gateway
        routes = {
            route.unit_id: Route(
                self.buses[route.bus],
                route.unit_id if route.target_unit_id is None else route.target_unit_id,
            )
            for route in settings.routes
        }
        default = None if gateway.default_bus is None else self.buses[gateway.default_bus]
        self.router = Router(routes, default_bus=default)
        self.local = LocalServer(
            gateway.identity,
            health=self.health,
            now=lambda: dt.datetime.now().astimezone(),
            allow_set_clock=gateway.allow_set_clock,
        )
        self.listeners = [
            Listener(
                config,
                router=self.router,
                local=self.local,
                request_ttl_s=gateway.request_ttl_ms / 1000,
            )
            for config in settings.listeners
            if config.enable
        ]

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
        )

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


async def run(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    on_started: Callable[[Gateway], None] | None = None,
    on_initial_password: Callable[[str], None] | None = None,
) -> None:
    """Run the gateway and the web pages until SIGINT/SIGTERM (or ``stop`` is set).

    ``on_started`` is called once every listener is accepting connections.
    ``on_initial_password`` gets the admin's initial password at the very first start: the
    console shows it once (it is never logged).
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    gateway = Gateway(settings)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    web = None
    try:
        await gateway.start()
        if settings.web.enable:
            from panelhub.webservice import start_web  # noqa: PLC0415 - the web stack on demand

            web = await start_web(
                settings, gateway, on_initial_password=on_initial_password or _print_password
            )
        if on_started is not None:
            on_started(gateway)
        await stop.wait()
        logger.info("stopping")
    finally:
        if web is not None:
            await web.aclose()
        await gateway.aclose()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _print_password(password: str) -> None:
    # The console, not the log: the log is kept and shipped; this is shown once.
    print(f"Initial password of the web user 'admin': {password}  (change it at first login)")
