"""Unit 255: the gateway's own identity, health and clock."""

import datetime as dt

import pytest

from panelhub.config.models import IdentityConfig
from panelhub.gateway.local import Health, LocalServer
from panelhub.modbus.constants import FunctionCode
from panelhub.modbus.datatypes import IECDateTime, decode_string
from panelhub.modbus.pdu import (
    ReadDeviceIdentificationRequest,
    ReadRequest,
    WriteMultipleRegistersRequest,
    decode_read_registers_response,
)

NOW = dt.datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=dt.UTC)


def server(**kwargs) -> LocalServer:
    identity = IdentityConfig(serial_number="PH2611000042", vendor_name="Acme")
    return LocalServer(identity, health=lambda: Health.DEGRADED, now=lambda: NOW, **kwargs)


def read(local: LocalServer, address: int, count: int) -> tuple[int, ...]:
    pdu = local.handle(ReadRequest(FunctionCode.READ_HOLDING_REGISTERS, address, count).encode())
    return decode_read_registers_response(pdu, unit_id=255, function_code=3)


def test_identity_strings_health_and_clock():
    local = server()
    assert decode_string(read(local, 100, 6)) == "PH2611000042"
    assert decode_string(read(local, 159, 16)) == "Acme"
    assert read(local, 158, 1) == (Health.DEGRADED,)
    clock = IECDateTime.decode(read(local, 115, 4))
    assert (clock.year, clock.month, clock.day, clock.hour, clock.minute) == (2026, 3, 4, 5, 6)
    assert clock.millisecond == 7890


def test_unknown_address_and_function_give_exceptions():
    local = server()
    assert (
        local.handle(ReadRequest(FunctionCode.READ_HOLDING_REGISTERS, 2000, 2).encode())
        == b"\x83\x02"
    )
    assert local.handle(b"\x01\x00\x00\x00\x01") == b"\x81\x01"


def test_clock_is_read_only_unless_allowed():
    words = IECDateTime(2027, 1, 2, 3, 4, 5000).encode()
    request = WriteMultipleRegistersRequest(115, words).encode()
    assert server().handle(request) == b"\x90\x02"
    local = server(allow_set_clock=True)
    assert local.handle(request) == request[:5]
    assert IECDateTime.decode(read(local, 115, 4)) == IECDateTime(2027, 1, 2, 3, 4, 5000)


def test_invalid_date_is_refused():
    local = server(allow_set_clock=True)
    bad = WriteMultipleRegistersRequest(115, (27, (13 << 8) | 1, 0, 0)).encode()
    assert local.handle(bad) == b"\x90\x03"


@pytest.mark.parametrize(
    ("code", "ids"), [(1, [0, 1, 2]), (2, [0, 1, 2, 3, 4, 5, 6]), (3, [0, 1, 2, 3, 4, 5, 6, 0x80])]
)
def test_device_identification_levels(code, ids):
    pdu = server().handle(ReadDeviceIdentificationRequest(code, 0).encode())
    assert pdu[:4] == bytes([0x2B, 0x0E, code, 0x83])
    count = pdu[6]
    found, position = [], 7
    for _ in range(count):
        found.append(pdu[position])
        position += 2 + pdu[position + 1]
    assert found == ids
    assert position == len(pdu)


def test_device_identification_single_object():
    pdu = server().handle(ReadDeviceIdentificationRequest(4, 0x80).encode())
    assert pdu.endswith(b"\x80\x0cPH2611000042")
    assert server().handle(ReadDeviceIdentificationRequest(4, 0x42).encode()) == b"\xab\x02"
