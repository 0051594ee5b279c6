"""Serve simulated meters with pymodbus: Modbus TCP on loopback, Modbus RTU over a pty pair.

Each server is an async context manager that owns its pymodbus server, its pty pair (RTU) and
one task refreshing the meters' values; leaving the context stops all three and closes every
descriptor. Only the configured unit IDs answer: a request to another unit gets no reply at
all, like a device that is not on the line (pymodbus itself would answer exception 0x04).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final, cast

from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusBaseServer, ModbusSerialServer, ModbusTcpServer

from panelhub.errors import ConfigError
from panelhub.sim.device import Meter, SimulatedDevice
from panelhub.sim.identification import device_identification_request
from panelhub.sim.pty import LineTiming, LinkedPtyPair, Parity, bits_per_character
from panelhub.sim.templated import simulate

logger = logging.getLogger(__name__)

UPDATE_INTERVAL_S: Final = 0.5  # meters refresh their registers about this often
TCP_UNIT_IDS: Final = range(1, 256)  # 0 is broadcast; 255 is the usual "this TCP device" ID
RTU_UNIT_IDS: Final = range(1, 248)  # Modbus over serial line v1.02 §2.2: 1..247 individual
SHUTDOWN_TICKS: Final = 2  # loop iterations for closed transports to run connection_lost

#: Model time in seconds; only differences matter (time.monotonic by default).
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RtuLine:
    """Serial settings of a simulated RS-485 line.

    ``enable_line_timing`` paces bytes at the baud rate (see :mod:`panelhub.sim.pty`).
    Parity and stop bits set the bits per character of that pacing; the pty itself has no
    parity, and some kernels (Linux 6.18) refuse to set one, so clients may open the client
    path as 8N1.
    """

    baud_rate: int = 19200  # Modbus over serial line §2.5.1: 19200 is the required default
    parity: Parity = "E"
    stop_bits: int = 1
    enable_line_timing: bool = False

    @property
    def settings(self) -> str:
        return f"{self.baud_rate} 8{self.parity}{self.stop_bits}"


@dataclass(frozen=True, slots=True)
class TcpEndpoint:
    host: str
    port: int
    meters: Mapping[int, SimulatedDevice]


@dataclass(frozen=True, slots=True)
class RtuEndpoint:
    client_path: str  # open this one (the gateway, a test client)
    device_path: str  # the simulated devices' end, opened by pymodbus
    line: RtuLine
    meters: Mapping[int, SimulatedDevice]


def check_loopback(host: str, *, allow_non_loopback: bool) -> str:
    """Return the address to bind, refusing non-loopback hosts unless explicitly allowed.

    ``localhost`` becomes ``127.0.0.1``: bound as a name, it would listen on two sockets
    (IPv4 and IPv6) with two different ephemeral ports.
    """
    if host == "localhost":
        return "127.0.0.1"
    if allow_non_loopback:
        return host
    try:
        is_loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        is_loopback = False
    if not is_loopback:
        raise ConfigError(
            f"the simulator only listens on loopback unless allowed explicitly; refused {host!r}"
        )
    return host


def _build_meters(
    meters: Mapping[int, Meter], allowed: range, *, now_s: float
) -> dict[int, SimulatedDevice]:
    if not meters:
        raise ConfigError("a simulated server needs at least one meter")
    for unit_id in meters:
        if unit_id not in allowed:
            raise ConfigError(f"unit ID {unit_id} is outside {allowed.start}..{allowed.stop - 1}")
    return {unit_id: simulate(unit_id, meter, now_s=now_s) for unit_id, meter in meters.items()}


def _answer_only(
    live: Mapping[int, SimulatedDevice],
) -> Callable[[bool, ModbusPDU], ModbusPDU]:
    def trace_pdu(is_sending: bool, pdu: ModbusPDU) -> ModbusPDU | None:
        # pymodbus drops a received request when this hook returns None (transaction.py):
        # units not configured, and units told to stop answering, stay silent.
        if is_sending:
            return pdu
        device = live.get(pdu.dev_id)
        return pdu if device is not None and device.is_answering else None

    # pymodbus types the hook as returning a PDU, yet documents no other way to drop one.
    return cast("Callable[[bool, ModbusPDU], ModbusPDU]", trace_pdu)


@dataclass(frozen=True, slots=True)
class _ServerHooks:
    """What every simulated server adds to pymodbus: per-unit identity, and silence for others."""

    custom_pdu: list[type[ModbusPDU]]
    trace_pdu: Callable[[bool, ModbusPDU], ModbusPDU]

    @classmethod
    def for_meters(cls, live: Mapping[int, SimulatedDevice]) -> _ServerHooks:
        identities = {unit_id: meter.identification() for unit_id, meter in live.items()}
        return cls([device_identification_request(identities)], _answer_only(live))


async def _refresh_forever(
    meters: Iterable[SimulatedDevice], interval_s: float, clock: Clock
) -> None:
    meters = tuple(meters)
    while True:
        await asyncio.sleep(interval_s)
        now_s = clock()
        for meter in meters:
            try:
                meter.refresh(now_s)
            except Exception:  # task root: one broken meter must not freeze the others
                logger.exception("refreshing simulated unit %d failed", meter.unit_id)


@asynccontextmanager
async def _refreshing(
    meters: Iterable[SimulatedDevice], interval_s: float, clock: Clock
) -> AsyncIterator[None]:
    task = asyncio.create_task(
        _refresh_forever(meters, interval_s, clock), name="panelhub-sim-refresh"
    )
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _stop(server: ModbusBaseServer) -> None:
    await server.shutdown()  # type: ignore[no-untyped-call]  # unannotated in pymodbus
    for _ in range(SHUTDOWN_TICKS):
        await asyncio.sleep(0)


async def _start(server: ModbusBaseServer, where: str) -> None:
    try:
        await server.serve_forever(background=True)
    except RuntimeError as exc:  # pymodbus reports every listen failure this way
        await _stop(server)
        raise OSError(f"the simulator cannot listen on {where}") from exc


@asynccontextmanager
async def serve_tcp(
    meters: Mapping[int, Meter],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    allow_non_loopback: bool = False,
    update_interval_s: float = UPDATE_INTERVAL_S,
    clock: Clock = time.monotonic,
) -> AsyncIterator[TcpEndpoint]:
    """Serve ``meters`` (unit ID -> meter) on one Modbus TCP port; port 0 picks a free one.

    ``clock`` gives the model time in seconds; a test passes a fixed or stepped one to know
    exactly what the meters hold.

    Raises:
        ConfigError: a non-loopback ``host`` without ``allow_non_loopback``, or a bad unit ID.
        OSError: the port cannot be bound.
    """
    bind_host = check_loopback(host, allow_non_loopback=allow_non_loopback)
    live = _build_meters(meters, TCP_UNIT_IDS, now_s=clock())
    devices = [meter.sim_device() for meter in live.values()]
    hooks = _ServerHooks.for_meters(live)
    server = ModbusTcpServer(
        devices,
        address=(bind_host, port),
        custom_pdu=hooks.custom_pdu,
        trace_pdu=hooks.trace_pdu,
    )
    await _start(server, f"{bind_host}:{port}")
    try:
        # Duck-typed: uvloop's server is no asyncio.Server subclass.
        sockets = getattr(server.transport, "sockets", None)
        if not sockets:
            raise OSError(f"cannot listen on {bind_host}:{port}")
        bound_port = int(sockets[0].getsockname()[1])
        logger.info("simulated Modbus TCP on %s:%d, units %s", bind_host, bound_port, sorted(live))
        async with _refreshing(live.values(), update_interval_s, clock):
            yield TcpEndpoint(bind_host, bound_port, live)
    finally:
        await _stop(server)


@asynccontextmanager
async def serve_rtu(
    meters: Mapping[int, Meter],
    *,
    line: RtuLine = RtuLine(),  # frozen: a shared default is safe
    update_interval_s: float = UPDATE_INTERVAL_S,
    clock: Clock = time.monotonic,
) -> AsyncIterator[RtuEndpoint]:
    """Serve ``meters`` as devices on one RS-485 line, reachable on the endpoint's client path.

    ``clock``: as for :func:`serve_tcp`.

    Raises:
        ConfigError: a unit ID outside 1..247.
        OSError: the pty pair cannot be created or opened.
    """
    live = _build_meters(meters, RTU_UNIT_IDS, now_s=clock())
    timing = None
    if line.enable_line_timing:
        bits = bits_per_character(parity=line.parity, stop_bits=line.stop_bits)
        timing = LineTiming(line.baud_rate, bits)
    hooks = _ServerHooks.for_meters(live)
    with LinkedPtyPair(timing=timing) as pair:
        server = ModbusSerialServer(
            [meter.sim_device() for meter in live.values()],
            framer=FramerType.RTU,
            port=pair.device_path,
            # A pty carries bytes, not bits: parity and stop bits only matter to the relay's
            # timing. Linux 6.18 even refuses PARENB on a pty slave (tcsetattr: EINVAL), so
            # the device end always opens as 8N1 whatever the simulated line is.
            baudrate=line.baud_rate,
            parity="N",
            stopbits=1,
            custom_pdu=hooks.custom_pdu,
            trace_pdu=hooks.trace_pdu,
        )
        await _start(server, pair.device_path)
        try:
            logger.info(
                "simulated Modbus RTU on %s (%s), units %s",
                pair.client_path,
                line.settings,
                sorted(live),
            )
            async with _refreshing(live.values(), update_interval_s, clock):
                yield RtuEndpoint(pair.client_path, pair.device_path, line, live)
        finally:
            await _stop(server)
