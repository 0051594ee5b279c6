"""PDUs: the Application Protocol v1.1b3 examples, request decoding with its exception codes."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panelhub.errors import (
    IllegalRequestError,
    LocalProtocolError,
    ModbusExceptionError,
    RemoteProtocolError,
)
from panelhub.modbus import pdu as pdus
from panelhub.modbus.constants import ExceptionCode, FunctionCode
from panelhub.modbus.pdu import (
    ReadDeviceIdentificationRequest,
    ReadRequest,
    WriteMultipleRegistersRequest,
    WriteSingleRegisterRequest,
)

FC = FunctionCode
h = bytes.fromhex

# Request examples of §6, written out by hand: (request object, wire PDU).
SPEC_REQUESTS = [
    pytest.param(ReadRequest(FC.READ_COILS, 0x0013, 0x0013), h("01 0013 0013"), id="§6.1"),
    pytest.param(
        ReadRequest(FC.READ_DISCRETE_INPUTS, 0x00C4, 0x0016), h("02 00C4 0016"), id="§6.2"
    ),
    pytest.param(
        ReadRequest(FC.READ_HOLDING_REGISTERS, 0x006B, 0x0003), h("03 006B 0003"), id="§6.3"
    ),
    pytest.param(
        ReadRequest(FC.READ_INPUT_REGISTERS, 0x0008, 0x0001), h("04 0008 0001"), id="§6.4"
    ),
    pytest.param(WriteSingleRegisterRequest(0x0001, 0x0003), h("06 0001 0003"), id="§6.6"),
    pytest.param(
        WriteMultipleRegistersRequest(0x0001, (0x000A, 0x0102)),
        h("10 0001 0002 04 000A 0102"),
        id="§6.12",
    ),
    pytest.param(ReadDeviceIdentificationRequest(1, 0), h("2B 0E 01 00"), id="§6.21"),
]


@pytest.mark.parametrize(("request_", "wire"), SPEC_REQUESTS)
def test_encode_spec_requests(request_, wire):
    assert request_.encode() == wire


@pytest.mark.parametrize(("request_", "wire"), SPEC_REQUESTS)
def test_decode_spec_requests(request_, wire):
    if wire[0] in (1, 2):  # coils and discrete inputs are not served by this package
        with pytest.raises(IllegalRequestError):
            pdus.decode_request(wire)
    else:
        assert pdus.decode_request(wire) == request_


def test_spec_read_holding_registers_response():
    # §6.3: registers 108-110 hold 0x022B (555), 0x0000, 0x0064 (100).
    wire = h("03 06 022B 0000 0064")
    assert pdus.encode_read_registers_response(3, (555, 0, 100)) == wire
    assert pdus.decode_read_registers_response(wire, unit_id=1, function_code=3) == (555, 0, 100)


def test_spec_read_input_registers_response():
    # §6.4: register 9 holds 0x000A.
    wire = h("04 02 000A")
    assert pdus.encode_read_registers_response(4, (10,)) == wire
    assert pdus.decode_read_registers_response(wire, unit_id=1, function_code=4) == (10,)


def test_spec_read_write_multiple_registers_response():
    # §6.17 response: six registers read.
    wire = h("17 0C 00FE 0ACD 0001 0003 000D 00FF")
    values = pdus.decode_read_registers_response(wire, unit_id=1, function_code=0x17)
    assert values == (0x00FE, 0x0ACD, 0x0001, 0x0003, 0x000D, 0x00FF)


@pytest.mark.parametrize(
    ("function_code", "exception_code", "wire"),
    [
        (0x01, ExceptionCode.ILLEGAL_DATA_ADDRESS, h("81 02")),  # §7 example
        (0x03, ExceptionCode.ILLEGAL_DATA_ADDRESS, h("83 02")),  # this module's docstring
        (0x10, ExceptionCode.ILLEGAL_DATA_VALUE, h("90 03")),
        (0x2B, ExceptionCode.GATEWAY_PATH_UNAVAILABLE, h("AB 0A")),
        (0x03, ExceptionCode.GATEWAY_TARGET_FAILED_TO_RESPOND, h("83 0B")),
        (0x83, ExceptionCode.ILLEGAL_FUNCTION, h("83 01")),  # already flagged: stays one byte
    ],
)
def test_exception_pdu(function_code, exception_code, wire):
    assert pdus.exception_pdu(function_code, exception_code) == wire


def test_spec_device_identification_response():
    # §6.21 example structure: basic objects 0, 1, 2, one PDU, nothing more follows.
    objects = [(0x00, b"Company identification"), (0x01, b"Product code XX"), (0x02, b"V2.11")]
    wire = (
        h("2B 0E 01 01 00 00 03")
        + h("00 16")
        + b"Company identification"
        + h("01 0F")
        + b"Product code XX"
        + h("02 05")
        + b"V2.11"
    )
    assert pdus.encode_device_identification_response(1, objects, conformity=0x01) == wire


def test_device_identification_response_default_conformity():
    # 0x83: extended identification, stream and individual access (§6.21).
    assert pdus.encode_device_identification_response(4, [(0x05, b"PH")]) == h(
        "2B 0E 04 83 00 00 01 05 02 5048"
    )


def test_device_identification_response_fills_one_pdu_exactly():
    # 7 header bytes + 2 + 244 = 253, the largest PDU.
    wire = pdus.encode_device_identification_response(1, [(0, bytes(244))])
    assert len(wire) == 253
    with pytest.raises(LocalProtocolError, match="do not fit"):
        pdus.encode_device_identification_response(1, [(0, bytes(245))])
    with pytest.raises(LocalProtocolError, match="do not fit"):
        pdus.encode_device_identification_response(1, [(0, bytes(100))] * 3)
    with pytest.raises(LocalProtocolError, match="do not fit"):
        pdus.encode_device_identification_response(1, [(0, bytes(300))])


@pytest.mark.parametrize("object_id", [-1, 256])
def test_device_identification_response_object_id_is_one_byte(object_id):
    with pytest.raises(LocalProtocolError, match="object ID"):
        pdus.encode_device_identification_response(1, [(object_id, b"x")])


# --- request validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function_code", "address", "count"),
    [
        (FC.READ_COILS, 0, 2000),
        (FC.READ_DISCRETE_INPUTS, 0xFFFF, 1),
        (FC.READ_HOLDING_REGISTERS, 0, 125),
        (FC.READ_INPUT_REGISTERS, 0x10000 - 125, 125),
    ],
)
def test_read_request_limits_accepted(function_code, address, count):
    assert ReadRequest(function_code, address, count).count == count


@pytest.mark.parametrize(
    ("function_code", "address", "count", "message"),
    [
        (FC.READ_COILS, 0, 2001, "count 2001"),
        (FC.READ_COILS, 0, 0, "count 0"),
        (FC.READ_HOLDING_REGISTERS, 0, 126, "count 126"),
        (FC.READ_INPUT_REGISTERS, 0, 0, "count 0"),
        (FC.READ_HOLDING_REGISTERS, 0xFFFF, 2, "outside 0..65535"),
        (FC.READ_HOLDING_REGISTERS, -1, 1, "outside 0..65535"),
        (FC.READ_HOLDING_REGISTERS, 0x10000, 1, "outside 0..65535"),
        (FC.WRITE_SINGLE_REGISTER, 0, 1, "not a read"),
        (FC.READ_FIFO_QUEUE, 0, 1, "not a read"),
    ],
)
def test_read_request_refused(function_code, address, count, message):
    with pytest.raises(LocalProtocolError, match=message):
        ReadRequest(function_code, address, count)


@pytest.mark.parametrize(
    ("address", "value", "is_valid"),
    [
        (0, 0, True),
        (0xFFFF, 0xFFFF, True),
        (-1, 0, False),
        (0x10000, 0, False),
        (0, -1, False),
        (0, 0x10000, False),
    ],
)
def test_write_single_register_limits(address, value, is_valid):
    if is_valid:
        assert WriteSingleRegisterRequest(address, value).encode()[0] == 6
    else:
        with pytest.raises(LocalProtocolError):
            WriteSingleRegisterRequest(address, value)


@pytest.mark.parametrize(
    ("address", "values", "message"),
    [
        (0, (), "0 registers"),
        (0, (0,) * 124, "124 registers"),
        (0xFFFF, (0, 0), "outside 0..65535"),
        (0, (0, 0x10000), "values must be"),
        (0, (-1,), "values must be"),
    ],
)
def test_write_multiple_registers_refused(address, values, message):
    with pytest.raises(LocalProtocolError, match=message):
        WriteMultipleRegistersRequest(address, values)


def test_write_multiple_registers_largest():
    request = WriteMultipleRegistersRequest(0x10000 - 123, tuple(range(123)))
    wire = request.encode()
    assert len(wire) == 6 + 246
    assert wire[5] == 246


@pytest.mark.parametrize(("read_code", "object_id"), [(0, 0), (5, 0), (1, -1), (1, 256)])
def test_device_identification_request_refused(read_code, object_id):
    with pytest.raises(LocalProtocolError):
        ReadDeviceIdentificationRequest(read_code, object_id)


def test_device_identification_request_defaults_to_basic_stream():
    assert ReadDeviceIdentificationRequest().encode() == h("2B 0E 01 00")


def test_pdus_are_frozen():
    request = ReadRequest(FC.READ_HOLDING_REGISTERS, 0, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.count = 2  # type: ignore[misc]  # the point: assignment is refused


# --- decode_request: what a server answers to malformed requests (§7 and the §6 diagrams) -------


@pytest.mark.parametrize(
    ("wire", "exception_code"),
    [
        pytest.param(b"", 3, id="empty"),
        # Functions this package does not serve: 01 illegal function.
        pytest.param(h("01 0000 0001"), 1, id="read coils"),
        pytest.param(h("05 0000 FF00"), 1, id="write coil"),
        pytest.param(h("17 0000 0001 0000 0001 02 0000"), 1, id="read/write registers"),
        pytest.param(h("41"), 1, id="user-defined 65"),
        pytest.param(h("2B"), 1, id="43 without MEI type"),
        pytest.param(h("2B 0D 00 00"), 1, id="43/13 CANopen"),
        pytest.param(h("83 02"), 1, id="an exception response"),
        # Wrong length for the function: 03 illegal data value.
        pytest.param(h("03 0000"), 3, id="03 short"),
        pytest.param(h("03 0000 0001 00"), 3, id="03 long"),
        pytest.param(h("06 0000 00"), 3, id="06 short"),
        pytest.param(h("10 0000 0001"), 3, id="16 without byte count"),
        pytest.param(h("10 0000 0001 02 00"), 3, id="16 data shorter than byte count"),
        pytest.param(h("10 0000 0001 02 0000 00"), 3, id="16 data longer than byte count"),
        pytest.param(h("10 0000 0002 02 0000"), 3, id="16 byte count != 2 x count"),
        pytest.param(h("2B 0E 01"), 3, id="43/14 short"),
        pytest.param(h("2B 0E 01 00 00"), 3, id="43/14 long"),
        # §6.3/§6.4/§6.12 diagrams: count out of range is 03 ...
        pytest.param(h("03 0000 0000"), 3, id="03 count 0"),
        pytest.param(h("04 0000 007E"), 3, id="04 count 126"),
        pytest.param(h("10 0000 0000 00"), 3, id="16 count 0"),
        pytest.param(h("10 0000 007C F8") + bytes(248), 3, id="16 count 124"),
        # ... address + count past 65535 is 02, checked after the count.
        pytest.param(h("03 FFFF 0002"), 2, id="03 range past 65535"),
        pytest.param(h("04 FF84 007D"), 2, id="04 range past 65535"),
        pytest.param(h("10 FFFF 0002 04 0000 0000"), 2, id="16 range past 65535"),
        pytest.param(h("03 FFFF 007E"), 3, id="03 count checked before range"),
        # §6.21: a read device ID code other than 1..4 is 03.
        pytest.param(h("2B 0E 05 00"), 3, id="43/14 read code 5"),
        pytest.param(h("2B 0E 00 00"), 3, id="43/14 read code 0"),
    ],
)
def test_decode_request_refusals(wire, exception_code):
    with pytest.raises(IllegalRequestError) as info:
        pdus.decode_request(wire)
    assert info.value.exception_code == exception_code
    assert isinstance(info.value, RemoteProtocolError)


def test_decode_request_edges_accepted():
    assert pdus.decode_request(h("03 FF83 007D")) == ReadRequest(FC(3), 0xFF83, 125)
    assert pdus.decode_request(h("04 FFFF 0001")) == ReadRequest(FC(4), 0xFFFF, 1)
    assert pdus.decode_request(h("06 FFFF FFFF")) == WriteSingleRegisterRequest(0xFFFF, 0xFFFF)
    assert pdus.decode_request(h("2B 0E 04 FF")) == ReadDeviceIdentificationRequest(4, 0xFF)


def test_decode_request_keeps_function_code_enum():
    request = pdus.decode_request(h("04 0000 0001"))
    assert isinstance(request, ReadRequest)
    assert request.function_code is FC.READ_INPUT_REGISTERS


requests_strategy = st.one_of(
    st.integers(1, 125).flatmap(
        lambda count: st.builds(
            ReadRequest,
            st.sampled_from([FC.READ_HOLDING_REGISTERS, FC.READ_INPUT_REGISTERS]),
            st.integers(0, 0x10000 - count),
            st.just(count),
        )
    ),
    st.builds(WriteSingleRegisterRequest, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=123).flatmap(
        lambda values: st.builds(
            WriteMultipleRegistersRequest,
            st.integers(0, 0x10000 - len(values)),
            st.just(tuple(values)),
        )
    ),
    st.builds(ReadDeviceIdentificationRequest, st.integers(1, 4), st.integers(0, 255)),
)


@settings(max_examples=200, deadline=None)
@given(requests_strategy)
def test_request_round_trip(request_):
    wire = request_.encode()
    assert 1 <= len(wire) <= 253
    assert pdus.decode_request(wire) == request_


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=260))
def test_decode_request_raises_only_illegal_request_errors(wire):
    try:
        request = pdus.decode_request(wire)
    except IllegalRequestError as exc:
        exception_code = exc.exception_code
    else:
        assert request.encode() == wire  # whatever is accepted is canonical
        return
    assert exception_code in (1, 2, 3)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([3, 4, 16]), st.binary(max_size=12))
def test_decode_request_fuzz_served_functions(function_code, body):
    wire = bytes((function_code,)) + body
    try:
        pdus.decode_request(wire)
    except IllegalRequestError as exc:
        exception_code = exc.exception_code
    else:
        return
    assert exception_code in (2, 3)  # these functions are served: never 01


# --- responses -----------------------------------------------------------------------------------


def test_check_response_returns_matching_pdu():
    assert pdus.check_response(h("06 0001 0003"), unit_id=1, function_code=6) == h("06 0001 0003")


def test_check_response_raises_modbus_exception():
    with pytest.raises(ModbusExceptionError) as info:
        pdus.check_response(h("83 02"), unit_id=17, function_code=3)
    assert (info.value.unit_id, info.value.function_code, info.value.exception_code) == (17, 3, 2)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"", "empty"),
        (h("04 02 000A"), "response to function 4, expected 3"),
        (h("83 02 00"), "response to function 131"),  # exception PDUs are exactly 2 bytes
        (h("83"), "response to function 131"),
        (h("84 02"), "response to function 132"),
    ],
)
def test_check_response_refuses(wire, message):
    with pytest.raises(RemoteProtocolError, match=message):
        pdus.check_response(wire, unit_id=1, function_code=3)


@pytest.mark.parametrize(
    "wire",
    [
        h("03"),
        h("03 01 00"),
        h("03 04 0000"),
        h("03 02 0000 00"),
        h("03 00"),
        h("03 FC") + bytes(252),
    ],
)
def test_decode_read_registers_response_refuses_bad_byte_count(wire):
    with pytest.raises(RemoteProtocolError, match="byte count"):
        pdus.decode_read_registers_response(wire, unit_id=1, function_code=3)


def test_decode_read_registers_response_raises_exception():
    with pytest.raises(ModbusExceptionError):
        pdus.decode_read_registers_response(h("84 0B"), unit_id=1, function_code=4)


@pytest.mark.parametrize(
    ("values", "message"),
    [((), "0 registers"), ((0,) * 126, "126 reg"), ((0x10000,), "values"), ((-1,), "values")],
)
def test_encode_read_registers_response_refuses(values, message):
    with pytest.raises(LocalProtocolError, match=message):
        pdus.encode_read_registers_response(3, values)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([3, 4, 23]), st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=125))
def test_read_registers_response_round_trip(function_code, values):
    wire = pdus.encode_read_registers_response(function_code, tuple(values))
    assert wire[:2] == bytes((function_code, 2 * len(values)))
    assert struct.unpack(f">{len(values)}H", wire[2:]) == tuple(values)
    decoded = pdus.decode_read_registers_response(wire, unit_id=1, function_code=function_code)
    assert decoded == tuple(values)


# --- decoding what a device says about itself, and bits ------------------------------------------


def test_decode_spec_device_identification_response():
    objects = [(0x00, b"Company identification"), (0x01, b"Product code XX"), (0x02, b"V2.11")]
    wire = pdus.encode_device_identification_response(1, objects, conformity=0x01)
    decoded = pdus.decode_device_identification_response(wire, unit_id=1)
    assert decoded.objects == dict(objects)
    assert (decoded.read_code, decoded.conformity) == (1, 0x01)
    assert (decoded.more_follows, decoded.next_object_id) == (False, 0)


def test_decode_device_identification_more_follows():
    wire = h("2B 0E 02 82 FF 04 01 03 03") + b"PM1"
    decoded = pdus.decode_device_identification_response(wire, unit_id=7)
    assert decoded.objects == {3: b"PM1"}
    assert (decoded.more_follows, decoded.next_object_id) == (True, 4)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (h("2B 0D 01 01 00 00 00"), "not a read device identification"),
        (h("2B 0E 01 01 00"), "not a read device identification"),
        (h("2B 0E 01 01 00 00 01 00"), "runs past"),
        (h("2B 0E 01 01 00 00 01 00 05 41 42"), "runs past"),
        (h("2B 0E 01 01 00 00 01 00 01 41 42"), "bytes after"),
        (h("03 02 00 01"), "expected 43"),
    ],
)
def test_decode_device_identification_refuses(wire, message):
    with pytest.raises(RemoteProtocolError, match=message):
        pdus.decode_device_identification_response(wire, unit_id=1)


def test_decode_device_identification_exception_from_meters_without_it():
    with pytest.raises(ModbusExceptionError) as caught:
        pdus.decode_device_identification_response(h("AB 01"), unit_id=5)
    assert (caught.value.unit_id, caught.value.exception_code) == (5, 1)


@pytest.mark.parametrize("function_code", [1, 2])
def test_decode_spec_read_bits_response(function_code):
    # §6.1 example: coils 20-38 (19 bits) = CD 6B 05.
    wire = bytes((function_code,)) + h("03 CD 6B 05")
    bits = pdus.decode_read_bits_response(wire, unit_id=1, function_code=function_code, count=19)
    assert bits[:8] == (True, False, True, True, False, False, True, True)  # 0xCD, LSB first
    assert bits[16:] == (True, False, True)
    assert len(bits) == 19


@pytest.mark.parametrize("wire", [h("01"), h("01 02 CD"), h("01 01 CD 6B"), h("01 03 CD 6B 05 00")])
def test_decode_read_bits_response_refuses_bad_byte_count(wire):
    with pytest.raises(RemoteProtocolError, match="byte count"):
        pdus.decode_read_bits_response(wire, unit_id=1, function_code=1, count=19)
