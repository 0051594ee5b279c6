"""Simulated meters over Modbus TCP, read and written with pymodbus's client."""

from __future__ import annotations

import asyncio
import time

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from panelhub.errors import ConfigError
from panelhub.sim import Meter, MeterKind, serve_tcp
from tests.sim.checks import (
    check_breaker,
    check_identification,
    check_single_phase,
    check_three_phase,
    check_write_read_back,
)

pytestmark = pytest.mark.interop


async def test_reads_each_kind(tcp_client):
    await check_three_phase(tcp_client, 1)
    await check_single_phase(tcp_client, 2)
    await check_breaker(tcp_client, 3)


async def test_unit_255_is_an_ordinary_unit(tcp_client):
    await check_single_phase(tcp_client, 255)


@pytest.mark.parametrize(
    ("unit_id", "code"), [(1, b"PH-SIM-PM3"), (2, b"PH-SIM-EM1"), (3, b"PH-SIM-CB3")]
)
async def test_identification_differs_per_unit(tcp_client, unit_id, code):
    await check_identification(tcp_client, unit_id, code)


async def test_identification_carries_the_label(tcp_client):
    r = await tcp_client.read_device_information(read_code=4, object_id=6, device_id=1)
    assert r.information == {6: b"Main incomer"}


@pytest.mark.parametrize(("unit_id", "config_address"), [(1, 29), (2, 0), (3, 0x100)])
async def test_config_block_reads_back_what_was_written(tcp_client, unit_id, config_address):
    await check_write_read_back(tcp_client, unit_id, config_address)


async def test_refusals_match_a_real_device(tcp_client):
    demand_out_of_range = await tcp_client.write_register(29, 0, device_id=1)
    assert demand_out_of_range.exception_code == 0x03
    measured_is_read_only = await tcp_client.write_register(2999, 1, device_id=1)
    assert measured_is_read_only.exception_code == 0x02
    outside_any_range = await tcp_client.read_holding_registers(1000, count=2, device_id=1)
    assert outside_any_range.exception_code == 0x02
    no_input_registers = await tcp_client.read_input_registers(0, count=1, device_id=1)
    assert no_input_registers.exception_code == 0x01
    no_coils = await tcp_client.read_coils(0, count=1, device_id=2)
    assert no_coils.exception_code == 0x01


async def test_values_move(tcp_endpoint, tcp_client):
    first = (await tcp_client.read_holding_registers(3203, count=4, device_id=1)).registers
    meter = tcp_endpoint.meters[1]
    meter.refresh(time.monotonic() + meter.model.day_length_s)  # the meter clock is monotonic
    second = (await tcp_client.read_holding_registers(3203, count=4, device_id=1)).registers
    assert second > first  # the INT64 energy counter grew


async def test_breaker_commands_open_trip_and_close(tcp_client):
    assert not (await tcp_client.write_coil(0, False, device_id=3)).isError()
    r = await tcp_client.read_holding_registers(0, count=22, device_id=3)
    assert r.registers[0:3] == [0, 0, 0]
    assert r.registers[18] & 0x0003 == 0
    await tcp_client.write_coil(0, True, device_id=3)
    await tcp_client.write_coil(1, True, device_id=3)  # trip test
    bits = await tcp_client.read_discrete_inputs(0, count=2, device_id=3)
    assert bits.bits[:2] == [False, True]
    assert (await tcp_client.read_coils(0, count=2, device_id=3)).bits[:2] == [False, False]
    await tcp_client.write_coils(0, [True], device_id=3)
    r = await tcp_client.read_holding_registers(18, count=3, device_id=3)
    assert r.registers == [0x0001, 0, 4]  # closed, four operations
    refused = await tcp_client.write_coil(5, True, device_id=3)
    assert refused.exception_code == 0x02


async def test_unknown_unit_gets_no_answer(tcp_endpoint):
    client = AsyncModbusTcpClient(tcp_endpoint.host, port=tcp_endpoint.port, timeout=0.2, retries=0)
    await client.connect()
    try:
        with pytest.raises(ModbusIOException):
            await client.read_holding_registers(0, count=1, device_id=9)
    finally:
        client.close()


async def test_non_loopback_hosts_are_refused():
    with pytest.raises(ConfigError, match="loopback"):
        async with serve_tcp({1: Meter(MeterKind.BREAKER)}, host="0.0.0.0"):
            pass


async def test_localhost_binds_ipv4_loopback():
    async with serve_tcp({1: Meter(MeterKind.BREAKER)}, host="localhost") as endpoint:
        assert endpoint.host == "127.0.0.1"


async def test_a_taken_port_is_an_os_error(tcp_endpoint):
    with pytest.raises(OSError, match="cannot listen"):
        async with serve_tcp({1: Meter(MeterKind.BREAKER)}, port=tcp_endpoint.port):
            pass


async def test_bad_unit_ids_are_refused():
    with pytest.raises(ConfigError):
        async with serve_tcp({0: Meter(MeterKind.BREAKER)}):
            pass


async def test_stops_cleanly(no_leaks):
    async with serve_tcp({1: Meter(MeterKind.THREE_PHASE)}, update_interval_s=0.01) as endpoint:
        client = AsyncModbusTcpClient(endpoint.host, port=endpoint.port, timeout=1, retries=0)
        await client.connect()
        await check_three_phase(client, 1)
        await asyncio.sleep(0.03)  # a few refresh cycles
        client.close()
