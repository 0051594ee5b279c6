"""The whole simulator from a spec: the demo layout, describe(), serve_forever and shutdown."""

from __future__ import annotations

import asyncio

import pytest
from pymodbus.client import AsyncModbusTcpClient

from panelhub.errors import ConfigError
from panelhub.sim import (
    DEMO_BASE_PORT,
    MeterKind,
    SimulatorSpec,
    default_demo_spec,
    run_simulator,
    serve_forever,
)
from tests.sim.checks import check_breaker, check_single_phase, check_three_phase

pytestmark = pytest.mark.interop


def test_default_demo_spec_layout():
    spec = default_demo_spec()
    assert [s.port for s in spec.tcp_servers] == [
        DEMO_BASE_PORT,
        DEMO_BASE_PORT + 1,
        DEMO_BASE_PORT + 2,
    ]
    assert {m.kind for m in spec.tcp_servers[2].meters.values()} == set(MeterKind)
    (line,) = spec.rtu_lines
    assert sorted(line.meters) == [1, 2, 3]
    assert {m.kind for m in line.meters.values()} == set(MeterKind)
    assert line.line.settings == "19200 8E1"
    assert spec.host == "127.0.0.1"


def test_spec_refuses_non_loopback_unless_allowed():
    with pytest.raises(ConfigError):
        SimulatorSpec(host="192.0.2.1")
    assert SimulatorSpec(host="192.0.2.1", allow_non_loopback=True).allow_non_loopback


async def test_demo_runs_and_describes_itself(no_leaks):
    async with run_simulator(default_demo_spec(base_port=0)) as sim:
        lines = sim.describe()
        assert len(lines) == 8
        assert any("Modbus RTU" in line and sim.rtu[0].client_path in line for line in lines)
        three_phase, single_phase, mixed = sim.tcp
        checks = [(three_phase, 1, check_three_phase), (single_phase, 1, check_single_phase)]
        checks += [
            (mixed, 1, check_breaker),
            (mixed, 2, check_three_phase),
            (mixed, 3, check_single_phase),
        ]
        for endpoint, unit_id, check in checks:
            client = AsyncModbusTcpClient(endpoint.host, port=endpoint.port, timeout=1, retries=0)
            await client.connect()
            try:
                await check(client, unit_id)
            finally:
                client.close()


async def test_serve_forever_stops_when_cancelled(no_leaks, caplog):
    caplog.set_level("INFO", logger="panelhub.sim")
    task = asyncio.create_task(serve_forever(default_demo_spec(base_port=0)))
    for _ in range(100):
        if any(
            "Modbus RTU" in r.getMessage() and "unit 3" in r.getMessage() for r in caplog.records
        ):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert any("unit 3: breaker" in r.getMessage() for r in caplog.records)  # the RTU line
