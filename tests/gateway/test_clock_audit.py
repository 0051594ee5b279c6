"""A SCADA setting the gateway clock (unit 255) leaves an audit record, and new settings keep it."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from pymodbus.client import AsyncModbusTcpClient

from panelhub import service
from panelhub.config.models import Settings
from panelhub.config.store import parse_settings
from panelhub.modbus.datatypes import IECDateTime
from panelhub.security.audit import AuditEvent, AuditFilter, AuditLog
from panelhub.storage.db import Database
from panelhub.webservice import clock_recorder
from tests.cli.test_cli import free_port

pytestmark = pytest.mark.interop

WANTED = dt.datetime(2031, 5, 17, 8, 30, 15, tzinfo=dt.UTC)  # local time on the wire


def clock_words(moment: dt.datetime) -> list[int]:
    stamp = IECDateTime(year=moment.year, month=moment.month, day=moment.day, hour=moment.hour,
                        minute=moment.minute, millisecond=moment.second * 1000)  # fmt: skip
    return list(stamp.encode())


async def test_a_clock_set_over_modbus_is_audited_and_survives_new_settings(tmp_path):
    settings = Settings.model_validate({
        "data_dir": tmp_path,
        "web": {"port": free_port()},
        "gateway": {"allow_set_clock": True},
        "listeners": [{"name": "scada", "port": 0}],
    })  # fmt: skip
    stop = asyncio.Event()
    started: asyncio.Future[service.Gateway] = asyncio.get_running_loop().create_future()
    running = asyncio.create_task(
        service.run(settings, stop=stop, on_started=started.set_result,
                    on_initial_password=lambda _password: None)
    )  # fmt: skip
    try:
        gateway = await asyncio.wait_for(started, 20)
        port = gateway.listeners[0].address[1]
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        await client.connect()
        written = await client.write_registers(115, clock_words(WANTED), device_id=255)
        assert not written.isError()
        offset = gateway.local.clock_offset
        # New identity: the local server is rebuilt, the clock the SCADA set is kept.
        renamed = settings.model_dump(mode="python")
        renamed["gateway"]["identity"] = {"user_application_name": "Panel B"}
        renamed["listeners"][0]["port"] = port
        control = service.ServiceController(gateway, config_path=None, on_restart=lambda: None)
        await control.apply_settings(parse_settings(renamed))
        assert gateway.local.clock_offset == offset
        read = await client.read_holding_registers(115, count=4, device_id=255)
        assert IECDateTime.decode(list(read.registers)).year == WANTED.year
        client.close()
    finally:
        stop.set()
        await running
    db = Database.open(tmp_path / "state.sqlite", create=False)
    try:
        [record] = await AuditLog(db).query(AuditFilter(event=AuditEvent.CLOCK_CHANGED))
    finally:
        db.close()
    assert (record.source, record.interface, record.user) == ("127.0.0.1", "modbus:scada",
                                                              "anonymous")  # fmt: skip
    assert str(record.details["set_to"]).startswith("2031-05-17T08:30:15")


async def test_a_client_writing_the_clock_in_a_loop_is_recorded_once_a_minute(tmp_path):
    db = Database.open(tmp_path / "state.sqlite")
    now = [1000.0]
    audit = AuditLog(db)
    record = clock_recorder(audit, clock=lambda: now[0])
    try:
        for second in range(120):
            now[0] = 1000.0 + second * 0.5  # two writes a second for a minute
            record(client="10.0.0.5", listener="scada", set_to=WANTED, offset=dt.timedelta())
        record(client="10.0.0.6", listener="scada", set_to=WANTED, offset=dt.timedelta())
        now[0] = 1061.0
        record(client="10.0.0.5", listener="scada", set_to=WANTED, offset=dt.timedelta())
        records = list(reversed(await audit.query(AuditFilter(event=AuditEvent.CLOCK_CHANGED))))
    finally:
        db.close()
    assert [(r.source, r.details.get("suppressed")) for r in records] == [
        ("10.0.0.5", None),
        ("10.0.0.6", None),
        ("10.0.0.5", 119),
    ]
