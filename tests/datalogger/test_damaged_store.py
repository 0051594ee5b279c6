"""A damaged time-series file: the gateway still serves Modbus, and the log says what to do."""

from __future__ import annotations

import asyncio

import pytest
from pymodbus.client import AsyncModbusTcpClient

from panelhub import service
from panelhub.config.models import Settings

pytestmark = pytest.mark.interop


async def test_the_gateway_runs_without_a_usable_datalog(tmp_path, caplog):
    (tmp_path / "datalog.sqlite").write_bytes(b"not a database, " * 1024)
    settings = Settings.model_validate(
        {
            "data_dir": tmp_path,
            "web": {"enable": False},
            "listeners": [{"name": "scada", "port": 0}],
        }
    )
    stop = asyncio.Event()
    started: asyncio.Future[service.Gateway] = asyncio.get_running_loop().create_future()
    running = asyncio.create_task(service.run(settings, stop=stop, on_started=started.set_result))
    try:
        gateway = await asyncio.wait_for(started, 20)
        client = AsyncModbusTcpClient("127.0.0.1", port=gateway.listeners[0].address[1], timeout=2)
        await client.connect()
        health = await client.read_holding_registers(158, count=1, device_id=255)
        assert not health.isError()
        client.close()
    finally:
        stop.set()
        await running
    [message] = [
        r.getMessage() for r in caplog.records if "datalogger not running" in r.getMessage()
    ]
    assert "datalog.sqlite" in message
    assert "move the file aside" in message
