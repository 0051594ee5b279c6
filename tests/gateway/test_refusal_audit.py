"""Refusals by a listener's policy land in the audit log, rate-limited, with the answers intact.

A real pymodbus client against the real gateway, its refusals reported to a real audit log
as ``panelhub run`` wires them (``Gateway.audit_refusals`` with the web side's recorder).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from panelhub import service
from panelhub.config.models import Settings
from panelhub.gateway import server
from panelhub.security.audit import (
    AuditEvent,
    AuditFilter,
    AuditLog,
    AuditRecord,
    ChainIntact,
)
from panelhub.storage.db import Database
from panelhub.webservice import refusal_recorder
from tests.cli.test_cli import free_port
from tests.harness import running_gateway

ILLEGAL_FUNCTION = 1


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    db = Database.open(tmp_path / "state.sqlite")
    yield AuditLog(db)
    db.close()


@contextlib.asynccontextmanager
async def client_of(
    audit: AuditLog, *, answer_within_s: float = 2, **listener: Any
) -> AsyncIterator[AsyncModbusTcpClient]:
    """A pymodbus client connected to a gateway whose only listener is ``listener``."""
    async with running_gateway(listeners=[{"name": "scada", "port": 0, **listener}]) as (
        gateway,
        port,
    ):
        gateway.audit_refusals(refusal_recorder(audit))
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=answer_within_s, retries=0)
        await client.connect()
        try:
            yield client
        finally:
            client.close()


async def refusals(audit: AuditLog) -> list[AuditRecord]:
    # The query runs on the database thread after the queued writes: it sees them all.
    records = await audit.query(AuditFilter(event=AuditEvent.MODBUS_REFUSED))
    return list(reversed(records))


async def test_a_write_to_a_read_only_listener_is_answered_and_audited(audit):
    async with client_of(audit, is_read_only=True) as client:
        answer = await client.write_register(0, 5, device_id=1)
    assert answer.isError()
    assert answer.exception_code == ILLEGAL_FUNCTION
    [record] = await refusals(audit)
    assert (record.outcome, record.user) == ("failure", "anonymous")
    assert (record.source, record.interface) == ("127.0.0.1", "modbus:scada")
    assert record.details == {
        "refused": "a request",
        "reason": "function 6 writes and the listener is read-only",
    }


async def test_a_function_code_not_allowed_is_answered_and_audited(audit):
    async with client_of(audit, allow_function_codes=[3]) as client:
        answer = await client.read_coils(0, count=1, device_id=1)
    assert answer.exception_code == ILLEGAL_FUNCTION
    [record] = await refusals(audit)
    assert record.source == "127.0.0.1"
    assert record.details["reason"] == "function 1 is not allowed on this listener"


async def test_a_client_not_on_the_allow_list_is_cut_off_and_audited(audit):
    async with client_of(audit, answer_within_s=0.5, allow_clients=["192.0.2.0/24"]) as client:
        with pytest.raises(ModbusException):
            await client.read_holding_registers(0, count=1, device_id=1)
    [record] = await refusals(audit)
    assert (record.source, record.interface) == ("127.0.0.1", "modbus:scada")
    assert record.details == {"refused": "a connection", "reason": "not on the allow-list"}


async def test_a_burst_of_refusals_is_one_record_then_a_count(audit, monkeypatch):
    async with client_of(audit, is_read_only=True) as client:
        for value in range(100):  # a SCADA retrying its write
            answer = await client.write_register(0, value, device_id=1)
            assert answer.exception_code == ILLEGAL_FUNCTION  # every request still answered
        assert len(await refusals(audit)) == 1
        # The reporting interval has passed: the next refusal says how many went unrecorded.
        monkeypatch.setattr(server, "REFUSAL_LOG_INTERVAL_S", 0.0)
        answer = await client.write_register(0, 100, device_id=1)
        assert answer.exception_code == ILLEGAL_FUNCTION
    first, later = await refusals(audit)
    assert "suppressed" not in first.details
    assert later.details["suppressed"] == 99
    assert isinstance(await audit.verify(), ChainIntact)


async def test_refusals_from_many_addresses_are_counted_together(audit, monkeypatch):
    """A flood from many addresses cannot fill the audit log (and roll its records off)."""
    listener = {"name": "scada", "port": 0, "allow_clients": ["192.0.2.0/24"]}
    addresses = [f"127.0.0.{host}" for host in range(1, server.MAX_TRACKED_REFUSALS + 37)]
    async with running_gateway(listeners=[listener]) as (gateway, port):
        gateway.audit_refusals(refusal_recorder(audit))
        for address in addresses:
            await refused_connection(port, address)
        assert len(await refusals(audit)) == server.MAX_TRACKED_REFUSALS + 1
        # An interval later, addresses are reported one by one again.
        monkeypatch.setattr(server, "REFUSAL_LOG_INTERVAL_S", 0.0)
        await refused_connection(port, "127.0.0.250")
    records = await refusals(audit)
    assert [r.source for r in records[: server.MAX_TRACKED_REFUSALS]] == addresses[
        : server.MAX_TRACKED_REFUSALS
    ]
    many = records[server.MAX_TRACKED_REFUSALS]
    assert (many.source, many.details["reason"]) == (
        server.MANY_CLIENTS,
        server.MANY_CLIENTS_REASON,
    )
    assert records[-1].source == "127.0.0.250"
    assert len(records) == server.MAX_TRACKED_REFUSALS + 2


async def refused_connection(port: int, address: str) -> None:
    """Connect from ``address`` (any of 127/8 is this host) and wait to be cut off."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
    try:
        async with asyncio.timeout(3):
            with contextlib.suppress(ConnectionResetError):
                assert await reader.read(100) == b""
    finally:
        writer.close()


async def test_without_an_audit_log_refusals_go_to_the_audit_logger(caplog):
    async with running_gateway(listeners=[{"name": "scada", "port": 0, "is_read_only": True}]) as (
        _,
        port,
    ):
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        await client.connect()
        answer = await client.write_register(0, 5, device_id=1)
        client.close()
    assert answer.exception_code == ILLEGAL_FUNCTION
    lines = [r.getMessage() for r in caplog.records if r.name == "panelhub.audit"]
    assert any("refused a request from 127.0.0.1" in line for line in lines)


async def test_panelhub_run_records_refusals_in_its_audit_log(tmp_path):
    settings = Settings.model_validate({
        "data_dir": tmp_path,
        "web": {"port": free_port()},
        "listeners": [{"name": "scada", "port": 0, "is_read_only": True}],
    })  # fmt: skip
    stop = asyncio.Event()
    started: asyncio.Future[service.Gateway] = asyncio.get_running_loop().create_future()
    running = asyncio.create_task(
        service.run(settings, stop=stop, on_started=started.set_result,
                    on_initial_password=lambda _password: None)
    )  # fmt: skip
    try:
        gateway = await asyncio.wait_for(started, 20)
        client = AsyncModbusTcpClient("127.0.0.1", port=gateway.listeners[0].address[1])
        await client.connect()
        answer = await client.write_register(0, 5, device_id=1)
        client.close()
        assert answer.exception_code == ILLEGAL_FUNCTION
    finally:
        stop.set()
        await running
    db = Database.open(tmp_path / "state.sqlite", create=False)
    try:
        [record] = await refusals(AuditLog(db))
    finally:
        db.close()
    assert (record.source, record.interface) == ("127.0.0.1", "modbus:scada")
