"""What the home page shows of the gateway: each device answering or not, from real traffic."""

from __future__ import annotations

import socket

import pytest
from pymodbus.client import AsyncModbusTcpClient

from tests.harness import running_gateway
from tests.peers import pymodbus_tcp_server

pytestmark = pytest.mark.interop


async def test_devices_answering_silent_and_not_asked_yet():
    async with pymodbus_tcp_server([1]) as device_port:
        with socket.create_server(("127.0.0.1", 0)) as closed:
            dead_port = closed.getsockname()[1]  # nothing listens there once closed
        buses = [
            {"kind": "tcp", "name": "meters", "host": "127.0.0.1", "port": device_port},
            {"kind": "tcp", "name": "dead", "host": "127.0.0.1", "port": dead_port,
             "connect_timeout_s": 0.5},
        ]  # fmt: skip
        routes = [
            {"unit_id": 10, "bus": "meters", "target_unit_id": 1},
            {"unit_id": 11, "bus": "dead", "target_unit_id": 2},
            {"unit_id": 12, "bus": "meters", "target_unit_id": 3},  # never asked
        ]
        async with running_gateway(buses=buses, routes=routes) as (gateway, port):
            client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
            await client.connect()
            assert not (await client.read_holding_registers(0, count=2, device_id=10)).isError()
            assert (await client.read_holding_registers(0, count=2, device_id=11)).isError()
            assert not (await client.read_holding_registers(5, count=1, device_id=10)).isError()
            client.close()
            devices = {device.address: device for device in gateway.status().devices}
    assert devices[1].state == "answering"
    assert (devices[1].unit_ids, devices[1].answered, devices[1].failed) == ([10], 2, 0)
    assert devices[1].last_answer_age_s is not None
    assert devices[2].state == "not answering"
    assert (devices[2].answered, devices[2].failed, devices[2].last_answer_age_s) == (0, 1, None)
    assert devices[3].state == "not asked yet"
    assert devices[3].unit_ids == [12]
