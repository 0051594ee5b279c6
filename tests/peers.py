"""Independent Modbus peers for the interop tests: pymodbus servers and socat pty pairs.

Every server listens on loopback or on a pseudo-terminal; each fixture stops what it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

#: Register layout of every test device: predictable values that differ per unit ID.
REGISTER_COUNT = 200
BIT_COUNT = 64


def device_values(unit_id: int) -> list[int]:
    return [(unit_id * 1000 + address) & 0xFFFF for address in range(REGISTER_COUNT)]


def make_device(unit_id: int) -> SimDevice:
    """Separate coil, discrete-input, holding and input blocks, as most meters have."""
    bits = [bool((unit_id + i) % 3 == 0) for i in range(BIT_COUNT)]
    inputs = [value ^ 0x5555 for value in device_values(unit_id)]
    return SimDevice(
        id=unit_id,
        simdata=(
            [SimData(0, count=BIT_COUNT, values=bits, datatype=DataType.BITS)],
            [SimData(0, count=BIT_COUNT, values=list(reversed(bits)), datatype=DataType.BITS)],
            [
                SimData(
                    0,
                    count=REGISTER_COUNT,
                    values=device_values(unit_id),
                    datatype=DataType.REGISTERS,
                )
            ],
            [SimData(0, count=REGISTER_COUNT, values=inputs, datatype=DataType.REGISTERS)],
        ),
    )


@contextlib.asynccontextmanager
async def pymodbus_tcp_server(unit_ids: Sequence[int]) -> AsyncIterator[int]:
    """A pymodbus TCP server for ``unit_ids`` on a free loopback port; yields the port."""
    server = ModbusTcpServer([make_device(u) for u in unit_ids], address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    try:
        yield server.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]  # a Server
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it untyped


@contextlib.asynccontextmanager
async def pymodbus_rtu_server(
    path: Path, unit_ids: Sequence[int], *, baud_rate: int = 19200, **options: Any
) -> AsyncIterator[ModbusSerialServer]:
    """pymodbus's RTU server on ``path``; ``options`` go to ModbusSerialServer as they are."""
    server = ModbusSerialServer(
        [make_device(u) for u in unit_ids], port=str(path), baudrate=baud_rate, **options
    )
    await server.serve_forever(background=True)
    try:
        yield server
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it untyped


@dataclass(frozen=True)
class PtyPair:
    """Two linked pseudo-terminals: what one end writes, the other reads.

    Linux pseudo-terminals refuse some parity settings (tcsetattr gives EINVAL, seen with even
    parity), so the tests use 8N1 on them; parity only matters on a real UART.
    """

    device: Path  # where the simulated RTU devices listen
    client: Path  # where the gateway (or a direct client) talks


@contextlib.asynccontextmanager
async def socat_pty_pair(directory: Path, *, trace: Path | None = None) -> AsyncIterator[PtyPair]:
    """A socat pty pair; with ``trace``, socat logs every chunk that crosses it there."""
    socat = shutil.which("socat")
    assert socat, "socat is installed by scripts/setup"
    pair = PtyPair(directory / "device", directory / "client")
    options = ["-x"] if trace else []
    log = trace.open("wb") if trace else subprocess.DEVNULL
    process = await asyncio.create_subprocess_exec(
        socat, *options, f"pty,raw,echo=0,link={pair.device}", f"pty,raw,echo=0,link={pair.client}",
        stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    if trace:
        log.close()  # type: ignore[union-attr]  # the child holds its own copy
    try:
        async with asyncio.timeout(5):
            while not (pair.device.exists() and pair.client.exists()):  # noqa: ASYNC110 - files
                await asyncio.sleep(0.01)
        yield pair
    finally:
        process.terminate()
        await process.wait()


def line_turns(trace: Path) -> list[str]:
    """Who spoke on the line, in order, from a socat ``-x`` trace: "client" or "device".

    Consecutive chunks in one direction are one turn (a frame may arrive in pieces).
    """
    turns: list[str] = []
    for line in trace.read_text(errors="replace").splitlines():
        if line.startswith(("> ", "< ")):
            speaker = "device" if line[0] == ">" else "client"
            if not turns or turns[-1] != speaker:
                turns.append(speaker)
    return turns
