"""Simulated meters on one RTU line over the pty pair, read with pymodbus's serial client."""

from __future__ import annotations

import time

import pytest
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType

from panelhub.errors import ConfigError
from panelhub.sim import Meter, MeterKind, RtuLine, serve_rtu
from tests.sim.checks import (
    check_breaker,
    check_identification,
    check_single_phase,
    check_three_phase,
    check_write_read_back,
)
from tests.sim.conftest import CLIENT_PARITY

pytestmark = pytest.mark.interop


async def test_reads_each_kind_on_one_line(rtu_client):
    await check_three_phase(rtu_client, 1)
    await check_single_phase(rtu_client, 2)
    await check_breaker(rtu_client, 3)


async def test_identification(rtu_client):
    await check_identification(rtu_client, 3, b"PH-SIM-CB3")


async def test_write_read_back(rtu_client):
    await check_write_read_back(rtu_client, 2, 0)


async def test_absent_unit_stays_silent_and_the_line_recovers(rtu_endpoint):
    client = AsyncModbusSerialClient(
        rtu_endpoint.client_path,
        framer=FramerType.RTU,
        parity=CLIENT_PARITY,
        timeout=0.2,
        retries=0,
    )
    await client.connect()
    try:
        with pytest.raises(ModbusIOException):
            await client.read_holding_registers(0, count=1, device_id=42)
        await check_breaker(client, 3)
    finally:
        client.close()


async def test_real_line_timing(no_leaks):
    line = RtuLine(baud_rate=19200, parity="E", stop_bits=1, enable_line_timing=True)
    async with serve_rtu({1: Meter(MeterKind.BREAKER)}, line=line) as endpoint:
        client = AsyncModbusSerialClient(
            endpoint.client_path, framer=FramerType.RTU, parity=CLIENT_PARITY, timeout=1, retries=0
        )
        await client.connect()
        try:
            started = time.monotonic()
            r = await client.read_holding_registers(0, count=22, device_id=1)
            elapsed_s = time.monotonic() - started
        finally:
            client.close()
    assert not r.isError()
    # 8-byte request + 49-byte response, 11 bits each at 19200 baud: 32.7 ms on the wire.
    assert elapsed_s >= (8 + 49) * 11 / 19200


async def test_serial_unit_ids_stop_at_247():
    with pytest.raises(ConfigError):
        async with serve_rtu({248: Meter(MeterKind.BREAKER)}):
            pass


async def test_stops_cleanly(no_leaks):
    async with serve_rtu({1: Meter(MeterKind.SINGLE_PHASE)}, update_interval_s=0.01) as endpoint:
        client = AsyncModbusSerialClient(
            endpoint.client_path, framer=FramerType.RTU, parity=CLIENT_PARITY, timeout=1, retries=0
        )
        await client.connect()
        await check_single_phase(client, 1)
        client.close()
