"""New settings put in force while SCADA clients stay connected, and saved to the file.

A pymodbus client stays connected through each change: what it sees is what a SCADA polling
the panel sees when an integrator saves the Modbus settings page.
"""

from __future__ import annotations

import socket
import stat
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from panelhub.config.models import Settings
from panelhub.config.store import load_settings, parse_settings
from panelhub.errors import SettingsApplyError, SettingsConflictError
from panelhub.service import Gateway, ServiceController
from tests.gateway.test_server import assert_closed
from tests.harness import connect
from tests.peers import device_values, pymodbus_tcp_server
from tests.rawdevice import raw_request, read_pdu

pytestmark = pytest.mark.interop


def base_settings(device_port: int, tmp_path: Path, **listener: Any) -> dict[str, Any]:
    return {
        "data_dir": str(tmp_path),
        "listeners": [{"name": "scada", "port": 0, **listener}],
        "buses": [{"kind": "tcp", "name": "meters", "host": "127.0.0.1", "port": device_port}],
        "routes": [{"unit_id": 10, "bus": "meters", "target_unit_id": 1}],
    }


def changed(settings: Settings, **sections: Any) -> Settings:
    return parse_settings(settings.model_dump(mode="python") | sections)


@pytest.fixture
async def device_port() -> AsyncIterator[int]:
    async with pymodbus_tcp_server([1, 2]) as port:
        yield port


@pytest.fixture
async def service(
    device_port: int, tmp_path: Path
) -> AsyncIterator[tuple[Gateway, ServiceController]]:
    gateway = Gateway(parse_settings(base_settings(device_port, tmp_path)))
    await gateway.start()
    restarts: list[bool] = []
    control = ServiceController(
        gateway, config_path=tmp_path / "panelhub.toml", on_restart=lambda: restarts.append(True)
    )
    try:
        yield gateway, control
    finally:
        await gateway.aclose()


@pytest.fixture
async def client(service: tuple[Gateway, ServiceController]) -> AsyncIterator[AsyncModbusTcpClient]:
    gateway, _ = service
    modbus = AsyncModbusTcpClient(
        "127.0.0.1", port=gateway.listeners[0].address[1], timeout=2, retries=0
    )
    await modbus.connect()
    try:
        yield modbus
    finally:
        modbus.close()


def listener_with(gateway: Gateway, **fields: Any) -> list[dict[str, Any]]:
    current = gateway.settings.listeners[0].model_dump(mode="python")
    # Keep the socket the test is connected to: same address, same backlog.
    port = gateway.listeners[0].address[1]
    return [current | {"port": port} | fields]


async def test_a_new_route_answers_on_the_same_connection(service, client):
    gateway, control = service
    before = await client.read_holding_registers(0, count=3, device_id=20)
    assert before.exception_code == 0x0A  # no route yet: gateway path unavailable
    new_routes = [
        *gateway.settings.model_dump()["routes"],
        {"unit_id": 20, "bus": "meters", "target_unit_id": 2},
    ]
    assert await control.apply_settings(changed(gateway.settings, routes=new_routes)) == ()
    after = await client.read_holding_registers(0, count=3, device_id=20)
    assert after.registers == device_values(2)[:3]
    assert (
        await client.read_holding_registers(0, count=1, device_id=10)
    ).registers == device_values(1)[:1]


async def test_read_only_takes_effect_on_open_connections(service, client):
    gateway, control = service
    assert not (await client.write_register(5, 77, device_id=10)).isError()
    listeners = listener_with(gateway, is_read_only=True)
    await control.apply_settings(changed(gateway.settings, listeners=listeners))
    refused = await client.write_register(5, 78, device_id=10)
    assert refused.exception_code == 0x01
    assert (await client.read_holding_registers(5, count=1, device_id=10)).registers == [77]


async def test_a_client_removed_from_the_allow_list_is_cut_off(service):
    gateway, control = service
    port = gateway.listeners[0].address[1]
    async with connect(port) as (reader, writer):
        _, _, pdu = await raw_request(reader, writer, 1, 10, read_pdu(0, 1))
        assert pdu[0] == 3
        listeners = listener_with(gateway, allow_clients=["192.0.2.0/24"])
        await control.apply_settings(changed(gateway.settings, listeners=listeners))
        assert gateway.listeners[0].address[1] == port  # same socket: no rebind
        await assert_closed(reader)
    async with connect(port) as (reader, _):
        await assert_closed(reader)


async def test_a_moved_listener_serves_on_its_new_port_only(service, client):
    gateway, control = service
    old_port = gateway.listeners[0].address[1]
    with socket.create_server(("127.0.0.1", 0)) as probe:
        free_port = probe.getsockname()[1]
    listeners = [gateway.settings.listeners[0].model_dump(mode="python") | {"port": free_port}]
    await control.apply_settings(changed(gateway.settings, listeners=listeners))
    new_port = gateway.listeners[0].address[1]
    assert new_port == free_port != old_port
    moved = AsyncModbusTcpClient("127.0.0.1", port=new_port, timeout=2, retries=0)
    await moved.connect()
    assert (
        await moved.read_holding_registers(0, count=2, device_id=10)
    ).registers == device_values(1)[:2]
    moved.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", old_port), timeout=1).close()


async def test_a_renamed_listener_with_new_limits_keeps_its_socket_and_clients(service, client):
    gateway, control = service
    listener = gateway.listeners[0]
    port = listener.address[1]
    renamed = listener_with(gateway, name="scada-b", max_connections=4,
                            max_connections_per_client=1)  # fmt: skip
    await control.apply_settings(changed(gateway.settings, listeners=renamed))
    assert gateway.listeners == [listener]
    assert (listener.config.name, listener.config.max_connections) == ("scada-b", 4)
    assert (await client.read_holding_registers(0, count=1, device_id=10)).registers == (
        device_values(1)[:1]
    )
    # The new per-client limit holds for the next connection: this client already has one.
    async with connect(port) as (reader, _):
        await assert_closed(reader)


async def test_a_busy_port_changes_nothing(service, client, tmp_path):
    gateway, control = service
    blocker = socket.create_server(("127.0.0.1", 0))
    busy_port = blocker.getsockname()[1]
    try:
        listeners = [
            *gateway.settings.model_dump()["listeners"],
            {"name": "second", "port": busy_port},
        ]
        with pytest.raises(SettingsApplyError) as caught:
            await control.apply_settings(changed(gateway.settings, listeners=listeners))
    finally:
        blocker.close()
    assert "second" in caught.value.problems[0]
    assert [listener.config.name for listener in gateway.listeners] == ["scada"]
    assert not (tmp_path / "panelhub.toml").exists()
    assert (
        await client.read_holding_registers(0, count=1, device_id=10)
    ).registers == device_values(1)[:1]


async def test_an_unsaveable_file_changes_nothing(device_port, tmp_path):
    gateway = Gateway(parse_settings(base_settings(device_port, tmp_path)))
    await gateway.start()
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    control = ServiceController(
        gateway, config_path=not_a_directory / "panelhub.toml", on_restart=lambda: None
    )
    try:
        listeners = [*gateway.settings.model_dump()["listeners"], {"name": "second", "port": 0}]
        with pytest.raises(SettingsApplyError, match="cannot save"):
            await control.apply_settings(changed(gateway.settings, listeners=listeners))
        assert [listener.config.name for listener in gateway.listeners] == ["scada"]
        assert [listener.name for listener in gateway.settings.listeners] == ["scada"]
    finally:
        await gateway.aclose()


async def test_unchanged_buses_keep_their_connection_changed_ones_are_replaced(
    service, client, device_port
):
    gateway, control = service
    await client.read_holding_registers(0, count=1, device_id=10)
    meters = gateway.buses["meters"]
    spare = {"kind": "tcp", "name": "spare", "host": "127.0.0.1", "port": device_port}
    buses = [*gateway.settings.model_dump()["buses"], spare]
    await control.apply_settings(changed(gateway.settings, buses=buses))
    assert gateway.buses["meters"] is meters
    slower = [
        {
            "kind": "tcp",
            "name": "meters",
            "host": "127.0.0.1",
            "port": device_port,
            "response_timeout_s": 2.5,
        }
    ]
    await control.apply_settings(changed(gateway.settings, buses=slower))
    assert gateway.buses["meters"] is not meters
    assert set(gateway.buses) == {"meters"}
    assert (
        await client.read_holding_registers(1, count=2, device_id=10)
    ).registers == device_values(1)[1:3]


async def test_saved_file_reads_back_the_same_and_keeps_the_previous_one(service, tmp_path):
    gateway, control = service
    path = tmp_path / "panelhub.toml"
    first = changed(gateway.settings, gateway={"request_ttl_ms": 2500})
    await control.apply_settings(first)
    assert load_settings(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert gateway.listeners[0].request_ttl_s == 2.5
    second = changed(first, gateway={"request_ttl_ms": 9000, "default_bus": "meters"})
    restart = await control.apply_settings(second)
    assert restart == ()
    assert load_settings(path) == second
    assert (
        tomllib.loads((tmp_path / "panelhub.toml.previous").read_text())["gateway"][
            "request_ttl_ms"
        ]
        == 2500
    )
    web_change = changed(second, web={"port": 8444})
    assert await control.apply_settings(web_change) == ("web",)


async def test_a_change_made_from_replaced_settings_is_refused(service, tmp_path):
    gateway, control = service
    read_by_first = gateway.settings
    await control.apply_settings(changed(read_by_first, gateway={"request_ttl_ms": 2000}))
    with pytest.raises(SettingsConflictError, match="changed meanwhile"):
        await control.apply_settings(
            changed(read_by_first, gateway={"request_ttl_ms": 3000}), based_on=read_by_first
        )
    assert gateway.settings.gateway.request_ttl_ms == 2000
    assert load_settings(tmp_path / "panelhub.toml").gateway.request_ttl_ms == 2000
