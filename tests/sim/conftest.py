"""Fixtures: the simulator on loopback and pymodbus clients that talk to it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.framer import FramerType

from panelhub.sim import Meter, MeterKind, RtuLine, serve_rtu, serve_tcp

CLIENT_TIMEOUT_S = 1.0
# Linux 6.18 refuses PARENB on a pty slave, so clients open the client path 8N1 (see RtuLine).
CLIENT_PARITY = "N"

DEMO_UNITS = {
    1: Meter(MeterKind.THREE_PHASE, seed=1, label="Main incomer"),
    2: Meter(MeterKind.SINGLE_PHASE, seed=2),
    3: Meter(MeterKind.BREAKER, seed=3, label="Feeder Q1"),
    255: Meter(MeterKind.SINGLE_PHASE, seed=4),
}


@pytest.fixture
def no_leaks():
    """Fail if a test leaves descriptors or threads behind."""
    fds_before = set(Path("/proc/self/fd").iterdir())
    threads_before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) - threads_before == set()
    assert set(Path("/proc/self/fd").iterdir()) - fds_before == set()


@pytest.fixture
async def tcp_endpoint():
    async with serve_tcp(DEMO_UNITS) as endpoint:
        yield endpoint


@pytest.fixture
async def tcp_client(tcp_endpoint):
    client = AsyncModbusTcpClient(
        tcp_endpoint.host, port=tcp_endpoint.port, timeout=CLIENT_TIMEOUT_S, retries=0
    )
    assert await client.connect()
    yield client
    client.close()


@pytest.fixture
async def rtu_endpoint():
    async with serve_rtu({k: v for k, v in DEMO_UNITS.items() if k < 248}, line=RtuLine()) as ep:
        yield ep


@pytest.fixture
async def rtu_client(rtu_endpoint):
    client = AsyncModbusSerialClient(
        rtu_endpoint.client_path,
        framer=FramerType.RTU,
        baudrate=rtu_endpoint.line.baud_rate,
        parity=CLIENT_PARITY,
        timeout=CLIENT_TIMEOUT_S,
        retries=0,
    )
    assert await client.connect()
    yield client
    client.close()
