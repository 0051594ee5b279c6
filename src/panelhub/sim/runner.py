"""The whole simulator from one spec: TCP servers and RTU lines, started and stopped together.

``panelhub sim`` calls :func:`serve_forever`; tests and ``panelhub demo`` use
:func:`run_simulator` and read where each device is from the :class:`SimulatorHandle`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Final

from panelhub.sim.device import Meter, SimulatedDevice
from panelhub.sim.kinds import MeterKind
from panelhub.sim.server import (
    UPDATE_INTERVAL_S,
    RtuEndpoint,
    RtuLine,
    TcpEndpoint,
    check_loopback,
    serve_rtu,
    serve_tcp,
)

logger = logging.getLogger(__name__)

DEMO_BASE_PORT: Final = 15020  # unprivileged, and reads as "502, simulated"


@dataclass(frozen=True, slots=True)
class TcpServerSpec:
    meters: Mapping[int, Meter]  # unit ID -> meter
    port: int = 0  # 0: any free port, reported by the handle


@dataclass(frozen=True, slots=True)
class RtuLineSpec:
    meters: Mapping[int, Meter]  # unit ID -> meter, all on one line
    line: RtuLine = field(default_factory=RtuLine)


@dataclass(frozen=True, slots=True)
class SimulatorSpec:
    tcp_servers: tuple[TcpServerSpec, ...] = ()
    rtu_lines: tuple[RtuLineSpec, ...] = ()
    host: str = "127.0.0.1"
    allow_non_loopback: bool = False  # a simulator is never exposed by accident
    update_interval_s: float = UPDATE_INTERVAL_S

    def __post_init__(self) -> None:
        check_loopback(self.host, allow_non_loopback=self.allow_non_loopback)


def default_demo_spec(
    *, base_port: int = DEMO_BASE_PORT, enable_line_timing: bool = False
) -> SimulatorSpec:
    """Return the demo installation: three TCP servers and one RTU line with one meter of each kind.

    With ``base_port=0`` every TCP server takes a free port (what tests want).
    """

    def port(offset: int) -> int:
        return base_port + offset if base_port else 0

    three, single, breaker = MeterKind.THREE_PHASE, MeterKind.SINGLE_PHASE, MeterKind.BREAKER
    return SimulatorSpec(
        tcp_servers=(
            TcpServerSpec({1: Meter(three, seed=1, label="Main incomer")}, port=port(0)),
            TcpServerSpec({1: Meter(single, seed=2, label="Office sockets")}, port=port(1)),
            TcpServerSpec(
                {
                    1: Meter(breaker, seed=3, label="Feeder Q1"),
                    2: Meter(three, seed=4, label="HVAC"),
                    3: Meter(single, seed=5, label="Lighting"),
                },
                port=port(2),
            ),
        ),
        rtu_lines=(
            RtuLineSpec(
                {
                    1: Meter(three, seed=11, label="Workshop"),
                    2: Meter(single, seed=12, label="Kitchen"),
                    3: Meter(breaker, seed=13, label="Feeder Q7"),
                },
                line=RtuLine(
                    baud_rate=19200, parity="E", stop_bits=1, enable_line_timing=enable_line_timing
                ),
            ),
        ),
    )


def _describe_meters(where: str, meters: Mapping[int, SimulatedDevice]) -> list[str]:
    return [
        f"{where} unit {unit_id}: {m.meter.name} ({m.identity.product_code}) {m.label!r}"
        for unit_id, m in sorted(meters.items())
    ]


@dataclass(frozen=True, slots=True)
class SimulatorHandle:
    """Where every simulated device is, valid while :func:`run_simulator` is active."""

    tcp: tuple[TcpEndpoint, ...]
    rtu: tuple[RtuEndpoint, ...]

    def describe(self) -> list[str]:
        """One human-readable line per simulated device."""
        lines: list[str] = []
        for tcp in self.tcp:
            lines += _describe_meters(f"Modbus TCP {tcp.host}:{tcp.port}", tcp.meters)
        for rtu in self.rtu:
            timing = ", real line timing" if rtu.line.enable_line_timing else ""
            lines += _describe_meters(
                f"Modbus RTU {rtu.client_path} ({rtu.line.settings}{timing})", rtu.meters
            )
        return lines


@asynccontextmanager
async def run_simulator(spec: SimulatorSpec) -> AsyncIterator[SimulatorHandle]:
    """Start everything in ``spec``; leaving the block stops it all and closes every descriptor.

    Raises:
        ConfigError: the spec asks for a non-loopback host or an invalid unit ID.
        OSError: a port is taken, or a pty cannot be created.
    """
    async with AsyncExitStack() as stack:
        tcp = [
            await stack.enter_async_context(
                serve_tcp(
                    server.meters,
                    host=spec.host,
                    port=server.port,
                    allow_non_loopback=spec.allow_non_loopback,
                    update_interval_s=spec.update_interval_s,
                )
            )
            for server in spec.tcp_servers
        ]
        rtu = [
            await stack.enter_async_context(
                serve_rtu(line.meters, line=line.line, update_interval_s=spec.update_interval_s)
            )
            for line in spec.rtu_lines
        ]
        yield SimulatorHandle(tuple(tcp), tuple(rtu))


async def serve_forever(spec: SimulatorSpec) -> None:
    """Run the simulator until cancelled (the CLI owns the signal handlers and cancels us)."""
    async with run_simulator(spec) as handle:
        for line in handle.describe():
            logger.info("%s", line)
        await asyncio.Event().wait()
