"""Real clients (pymodbus, mbpoll) through the gateway see what they see from the device itself.

The devices are pymodbus servers: over TCP on loopback, and over RTU on a socat pty pair.
"""

from __future__ import annotations

import asyncio
import shutil
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from tests.harness import connect, running_gateway
from tests.peers import (
    device_values,
    line_turns,
    pymodbus_rtu_server,
    pymodbus_tcp_server,
    socat_pty_pair,
)
from tests.rawdevice import raw_request, read_pdu

pytestmark = pytest.mark.interop

Client = AsyncModbusTcpClient | AsyncModbusSerialClient


def normalise(response: Any) -> tuple[object, ...]:
    """What a user of the response sees, without the transaction ID."""
    return (
        type(response).__name__,
        response.function_code,
        getattr(response, "exception_code", None),
        tuple(getattr(response, "registers", ()) or ()),
        tuple(getattr(response, "bits", ()) or ()),
        tuple(sorted((getattr(response, "information", None) or {}).items())),
    )


OPERATIONS: list[tuple[str, Callable[[Client, int], Awaitable[Any]]]] = [
    ("read coils", lambda c, u: c.read_coils(0, count=20, device_id=u)),
    ("read discrete inputs", lambda c, u: c.read_discrete_inputs(3, count=11, device_id=u)),
    ("read holding", lambda c, u: c.read_holding_registers(0, count=10, device_id=u)),
    ("read input", lambda c, u: c.read_input_registers(5, count=125, device_id=u)),
    ("write register", lambda c, u: c.write_register(3, 4242, device_id=u)),
    ("read back", lambda c, u: c.read_holding_registers(3, count=1, device_id=u)),
    ("write registers", lambda c, u: c.write_registers(10, [1, 2, 65535], device_id=u)),
    ("write coil", lambda c, u: c.write_coil(2, True, device_id=u)),
    ("write coils", lambda c, u: c.write_coils(4, [True, False, True], device_id=u)),
    ("read coils back", lambda c, u: c.read_coils(0, count=8, device_id=u)),
    ("mask write", lambda c, u: c.mask_write_register(
        address=12, and_mask=0x00F2, or_mask=0x0025, device_id=u)),
    ("read/write", lambda c, u: c.readwrite_registers(
        read_address=0, read_count=5, write_address=20, values=[9, 8], device_id=u)),
    ("read past the end", lambda c, u: c.read_holding_registers(190, count=20, device_id=u)),
    ("device identification", lambda c, u: c.read_device_information(device_id=u)),
]  # fmt: skip


async def run_operations(client: Client, unit_id: int) -> list[tuple[object, ...]]:
    results = []
    for _, operation in OPERATIONS:
        results.append(normalise(await operation(client, unit_id)))
    return results


async def test_tcp_device_through_gateway_matches_direct():
    # A fresh device for each run: the operations write, and both runs must start alike.
    async with pymodbus_tcp_server([1, 2]) as device_port:
        direct = AsyncModbusTcpClient("127.0.0.1", port=device_port, timeout=2)
        await direct.connect()
        expected = await run_operations(direct, 1)
        direct.close()
    async with pymodbus_tcp_server([1, 2]) as device_port:
        bus = {"kind": "tcp", "name": "dev", "host": "127.0.0.1", "port": device_port}
        routes = [{"unit_id": 101, "bus": "dev", "target_unit_id": 1}]
        async with running_gateway(buses=[bus], routes=routes) as (_, port):
            through = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2)
            await through.connect()
            seen = await run_operations(through, 101)
            through.close()
    for (name, _), want, got in zip(OPERATIONS, expected, seen, strict=True):
        assert got == want, name
    assert expected[2][3] == tuple(device_values(1)[:10])  # the comparison is of real data


def rtu_bus(path: Path, **extra: Any) -> dict[str, Any]:
    return {"kind": "rtu", "name": "line", "device": str(path), "baud_rate": 19200,
            "parity": "N", "response_timeout_s": 0.5, **extra}  # fmt: skip


async def test_rtu_device_through_gateway_matches_direct(tmp_path):
    async with socat_pty_pair(tmp_path) as pair:
        async with pymodbus_rtu_server(pair.device, [1, 2, 3]):
            direct = AsyncModbusSerialClient(
                str(pair.client), baudrate=19200, parity="N", timeout=1
            )
            await direct.connect()
            expected = await run_operations(direct, 2)
            direct.close()
        async with (
            pymodbus_rtu_server(pair.device, [1, 2, 3]),
            running_gateway(buses=[rtu_bus(pair.client)], gateway={"default_bus": "line"}) as (
                _,
                port,
            ),
        ):
            through = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2)
            await through.connect()
            seen = await run_operations(through, 2)
            through.close()
    for (name, _), want, got in zip(OPERATIONS, expected, seen, strict=True):
        assert got == want, name
    assert expected[2][3] == tuple(device_values(2)[:10])


async def mbpoll(*args: str) -> list[str]:
    """Run Debian's mbpoll once; return its data lines ("[1]: 	1000")."""
    executable = shutil.which("mbpoll")
    assert executable, "mbpoll is installed by scripts/setup"
    process = await asyncio.create_subprocess_exec(
        executable, "-1", "-0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.startswith("[") or "failed" in line.lower() or "Written" in line
    ]
    assert lines, text
    return lines


async def test_mbpoll_through_gateway_matches_direct_tcp_and_rtu(tmp_path):
    async with pymodbus_tcp_server([1]) as device_port, socat_pty_pair(tmp_path) as pair:
        tcp_reads = ("-m", "tcp", "-a", "1", "-r", "0", "-c", "10", "-t", "4:hex")
        direct_tcp = await mbpoll(*tcp_reads, "-p", str(device_port), "127.0.0.1")
        direct_write = await mbpoll(
            "-m",
            "tcp",
            "-a",
            "1",
            "-r",
            "40",
            "-t",
            "4",
            "-p",
            str(device_port),
            "127.0.0.1",
            "17",
            "18",
        )
        async with pymodbus_rtu_server(pair.device, [5]):
            rtu_reads = (
                "-m",
                "rtu",
                "-a",
                "5",
                "-b",
                "19200",
                "-P",
                "even",
                "-r",
                "0",
                "-c",
                "10",
                "-t",
                "3",
            )
            direct_rtu = await mbpoll(*rtu_reads, str(pair.client))
            buses = [
                rtu_bus(pair.client),
                {"kind": "tcp", "name": "dev", "host": "127.0.0.1", "port": device_port},
            ]
            routes = [{"unit_id": 100, "bus": "dev", "target_unit_id": 1}]
            async with running_gateway(
                buses=buses, routes=routes, gateway={"default_bus": "line"}
            ) as (_, port):
                via = ("-p", str(port), "127.0.0.1")
                tcp_through = await mbpoll("-m", "tcp", "-a", "100", *tcp_reads[4:], *via)
                write_through = await mbpoll(
                    "-m", "tcp", "-a", "100", "-r", "40", "-t", "4", *via, "17", "18"
                )
                rtu_through = await mbpoll(
                    "-m", "tcp", "-a", "5", "-r", "0", "-c", "10", "-t", "3", *via
                )
    assert tcp_through == direct_tcp
    assert write_through == direct_write
    assert rtu_through == direct_rtu
    assert len(direct_rtu) == 10
    assert direct_rtu[0].endswith(str(device_values(5)[0] ^ 0x5555))


async def test_64_clients_share_one_rtu_line_without_cross_talk(tmp_path):
    clients, rounds = 64, 5
    trace = tmp_path / "line.trace"
    async with (
        socat_pty_pair(tmp_path, trace=trace) as pair,
        pymodbus_rtu_server(pair.device, [1, 2, 3]),
    ):
        gateway_config = {"default_bus": "line", "request_ttl_ms": 30_000}
        listener = {
            "name": "up",
            "port": 0,
            "max_connections": 128,
            "max_connections_per_client": 128,
        }
        async with running_gateway(
            listeners=[listener],
            buses=[rtu_bus(pair.client, frame_gap_s=0.0, response_timeout_s=1.0)],
            gateway=gateway_config,
        ) as (_, port):

            async def client(number: int) -> int:
                unit_id = 1 + number % 3
                async with connect(port) as (reader, writer):
                    for round_ in range(rounds):
                        address = (number * 3 + round_) % 150
                        tid = number * 100 + round_
                        answer_tid, answer_unit, pdu = await raw_request(
                            reader, writer, tid, unit_id, read_pdu(address, 2)
                        )
                        assert (answer_tid, answer_unit) == (tid, unit_id)
                        values = device_values(unit_id)[address : address + 2]
                        assert pdu == struct.pack(">BB2H", 3, 4, *values), (number, round_)
                return number

            async with asyncio.timeout(60):
                done = await asyncio.gather(*(client(n) for n in range(clients)))
    assert sorted(done) == list(range(clients))  # every client finished: none starved
    turns = line_turns(trace)
    # One transaction at a time: each request is followed by its response before the next.
    assert turns == ["client", "device"] * (clients * rounds)


async def test_rtu_device_silent_then_back(tmp_path):
    async with (
        socat_pty_pair(tmp_path) as pair,
        running_gateway(
            buses=[rtu_bus(pair.client, response_timeout_s=0.3)],
            gateway={"default_bus": "line"},
        ) as (gateway, port),
        connect(port) as (r, w),
    ):
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert (await raw_request(r, w, 1, 1, read_pdu(0, 1)))[2] == b"\x83\x0b"
        assert loop.time() - started < 1.0
        async with pymodbus_rtu_server(pair.device, [1]):
            tid, _, pdu = await raw_request(r, w, 2, 1, read_pdu(0, 1))
            assert (tid, pdu) == (2, struct.pack(">BBH", 3, 2, device_values(1)[0]))
        assert gateway.buses["line"].is_available


async def test_rtu_broadcast_reaches_every_device_without_answer(tmp_path):
    async with (
        socat_pty_pair(tmp_path) as pair,
        pymodbus_rtu_server(pair.device, [1, 2], broadcast_enable=True),
        running_gateway(
            buses=[rtu_bus(pair.client, turnaround_delay_s=0.05)],
            gateway={"default_bus": "line"},
        ) as (_, port),
        connect(port) as (r, w),
    ):
        w.write(struct.pack(">HHHB", 1, 0, 6, 0) + struct.pack(">BHH", 6, 7, 0xABCD))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await r.readexactly(7)
        for unit_id in (1, 2):
            _, _, pdu = await raw_request(r, w, 10 + unit_id, unit_id, read_pdu(7, 1))
            assert pdu == b"\x03\x02\xab\xcd"
