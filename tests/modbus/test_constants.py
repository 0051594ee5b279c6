"""Function codes, exception codes and limits against the values printed in the specifications."""

from __future__ import annotations

import pytest

from panelhub.modbus import constants
from panelhub.modbus.constants import ExceptionCode, FunctionCode
from panelhub.modbus.sentinels import FRAME_ENDS_AT_SILENCE, NEED_DATA

# Application Protocol v1.1b3 §5.1 "Public Function Code Definition" (decimal, as printed).
SPEC_FUNCTION_CODES = {
    "READ_COILS": 1,
    "READ_DISCRETE_INPUTS": 2,
    "READ_HOLDING_REGISTERS": 3,
    "READ_INPUT_REGISTERS": 4,
    "WRITE_SINGLE_COIL": 5,
    "WRITE_SINGLE_REGISTER": 6,
    "READ_EXCEPTION_STATUS": 7,
    "DIAGNOSTICS": 8,
    "GET_COMM_EVENT_COUNTER": 11,
    "GET_COMM_EVENT_LOG": 12,
    "WRITE_MULTIPLE_COILS": 15,
    "WRITE_MULTIPLE_REGISTERS": 16,
    "REPORT_SERVER_ID": 17,
    "READ_FILE_RECORD": 20,
    "WRITE_FILE_RECORD": 21,
    "MASK_WRITE_REGISTER": 22,
    "READ_WRITE_MULTIPLE_REGISTERS": 23,
    "READ_FIFO_QUEUE": 24,
    "ENCAPSULATED_INTERFACE": 43,
}

# Application Protocol v1.1b3 §7 "MODBUS Exception Codes".
SPEC_EXCEPTION_CODES = {
    "ILLEGAL_FUNCTION": 0x01,
    "ILLEGAL_DATA_ADDRESS": 0x02,
    "ILLEGAL_DATA_VALUE": 0x03,
    "SERVER_DEVICE_FAILURE": 0x04,
    "ACKNOWLEDGE": 0x05,
    "SERVER_DEVICE_BUSY": 0x06,
    "MEMORY_PARITY_ERROR": 0x08,
    "GATEWAY_PATH_UNAVAILABLE": 0x0A,
    "GATEWAY_TARGET_FAILED_TO_RESPOND": 0x0B,
}


def test_function_codes_match_the_spec_table():
    assert {code.name: code.value for code in FunctionCode} == SPEC_FUNCTION_CODES


def test_exception_codes_match_the_spec_table():
    assert {code.name: code.value for code in ExceptionCode} == SPEC_EXCEPTION_CODES


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MEI_READ_DEVICE_IDENTIFICATION", 0x0E),  # §6.21
        ("EXCEPTION_FLAG", 0x80),  # §7: function code + 0x80
        ("MAX_PDU_SIZE", 253),  # §4.1: 256 - address - CRC
        ("MBAP_HEADER_SIZE", 7),  # TCP guide §3.1.3: 2 + 2 + 2 + 1
        ("MAX_MBAP_LENGTH", 254),  # unit ID + largest PDU
        ("MIN_MBAP_LENGTH", 2),  # unit ID + function code
        ("MAX_TCP_ADU_SIZE", 260),  # §4.1: "TCP MODBUS ADU = 253 bytes + MBAP (7 bytes) = 260"
        ("MAX_RTU_ADU_SIZE", 256),  # Serial Line v1.02 §2.5.1: "256 bytes"
        ("MIN_RTU_ADU_SIZE", 4),
        ("BROADCAST_UNIT_ID", 0),  # Serial Line v1.02 §2.2
        ("MAX_READ_BITS", 2000),  # §6.1, §6.2: 0x07D0
        ("MAX_READ_REGISTERS", 125),  # §6.3, §6.4: 0x007D
        ("MAX_WRITE_BITS", 1968),  # §6.11: 0x07B0
        ("MAX_WRITE_REGISTERS", 123),  # §6.12: 0x007B
        ("MAX_READ_WRITE_WRITE_REGISTERS", 121),  # §6.17: 0x0079
    ],
)
def test_limits_match_the_spec(name, value):
    assert getattr(constants, name) == value


def test_write_function_codes_are_exactly_the_state_changing_ones():
    expected = {5, 6, 8, 15, 16, 21, 22, 23}
    assert set(constants.WRITE_FUNCTION_CODES) == expected
    # Every read-only function stays allowed on a read-only listener.
    for code in (1, 2, 3, 4, 7, 11, 12, 17, 20, 24, 43):
        assert code not in constants.WRITE_FUNCTION_CODES


def test_sentinels_are_distinct_from_every_real_result():
    sentinels: list[object] = [NEED_DATA, FRAME_ENDS_AT_SILENCE]
    assert sentinels[0] is not sentinels[1]
    falsy_results: tuple[object, ...] = (None, False, 0, b"", ())
    for value in falsy_results:
        assert value != NEED_DATA
        assert value != FRAME_ENDS_AT_SILENCE
    assert "NEED_DATA" in repr(NEED_DATA)
    assert "FRAME_ENDS_AT_SILENCE" in repr(FRAME_ENDS_AT_SILENCE)
