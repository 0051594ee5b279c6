"""Our framing and PDUs against pymodbus 3.16's framers and PDU classes, an independent codec."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.pdu.mei_message import ReadDeviceInformationRequest, ReadDeviceInformationResponse
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadHoldingRegistersResponse,
    ReadInputRegistersRequest,
    ReadInputRegistersResponse,
    WriteMultipleRegistersRequest,
    WriteMultipleRegistersResponse,
    WriteSingleRegisterRequest,
)

from panelhub.errors import ModbusExceptionError
from panelhub.modbus import mbap, rtu
from panelhub.modbus import pdu as pdus
from panelhub.modbus.constants import FunctionCode
from panelhub.modbus.decoder import MBAPDecoder, RTUResponseDecoder
from panelhub.modbus.mbap import TCPFrame

pytestmark = pytest.mark.interop

FC = FunctionCode
INTEROP = settings(max_examples=100, deadline=None)


def _wire_pdu(message: Any) -> bytes:
    """The PDU pymodbus puts on the wire for ``message``: function code, then its payload."""
    return bytes(message.function_code.to_bytes(1, "big") + message.encode())


def _server_framer(framer_class: Any) -> Any:
    return framer_class(DecodePDU(True))


def _client_framer(framer_class: Any) -> Any:
    return framer_class(DecodePDU(False))


# --- CRC -----------------------------------------------------------------------------------------


@INTEROP
@given(st.binary(max_size=256))
def test_crc_equals_pymodbus(data):
    # pymodbus returns the CRC with its bytes swapped, ready to write big-endian.
    assert FramerRTU.compute_CRC(data).to_bytes(2, "big") == rtu.crc16(data).to_bytes(2, "little")


# --- Modbus TCP ----------------------------------------------------------------------------------


@INTEROP
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFF), st.binary(min_size=1, max_size=253))
def test_pymodbus_socket_framer_reads_our_frames(transaction_id, unit_id, pdu):
    wire = mbap.encode_frame(transaction_id, unit_id, pdu)
    assert _server_framer(FramerSocket).decode(wire) == (len(wire), unit_id, transaction_id, pdu)


@INTEROP
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFF), st.binary(min_size=1, max_size=253))
def test_we_read_pymodbus_socket_frames(transaction_id, unit_id, pdu):
    wire = _server_framer(FramerSocket).encode(pdu, unit_id, transaction_id)
    assert MBAPDecoder().feed(wire) == [TCPFrame(transaction_id, unit_id, pdu)]


def _pymodbus_messages() -> list[Any]:
    return [
        ReadHoldingRegistersRequest(address=0x6B, count=3, dev_id=0x11, transaction_id=1),
        ReadInputRegistersRequest(address=8, count=1, dev_id=1, transaction_id=2),
        WriteSingleRegisterRequest(address=1, registers=[3], dev_id=1, transaction_id=3),
        WriteMultipleRegistersRequest(
            address=1, registers=[0x000A, 0x0102], dev_id=0xF7, transaction_id=0xFFFF
        ),
        ReadDeviceInformationRequest(read_code=1, object_id=0, dev_id=1, transaction_id=4),
    ]


@pytest.mark.parametrize("message", _pymodbus_messages(), ids=lambda m: type(m).__name__)
def test_pymodbus_requests_decode_with_ours(message):
    wire = _client_framer(FramerSocket).buildFrame(message)
    [frame] = MBAPDecoder().feed(wire)
    assert (frame.transaction_id, frame.unit_id) == (message.transaction_id, message.dev_id)
    assert frame.pdu == _wire_pdu(message)
    request = pdus.decode_request(frame.pdu)
    assert request.encode() == frame.pdu
    assert pdus.decode_request(frame.pdu) == _ours_for(message)


def _ours_for(message) -> pdus.Request:
    """The request object of ours that says what ``message`` says."""
    if isinstance(message, ReadHoldingRegistersRequest):
        return pdus.ReadRequest(FC(message.function_code), message.address, message.count)
    if isinstance(message, WriteSingleRegisterRequest):
        return pdus.WriteSingleRegisterRequest(message.address, message.registers[0])
    if isinstance(message, WriteMultipleRegistersRequest):
        return pdus.WriteMultipleRegistersRequest(message.address, tuple(message.registers))
    assert isinstance(message, ReadDeviceInformationRequest)
    return pdus.ReadDeviceIdentificationRequest(message.read_code, message.object_id)


requests_strategy = st.one_of(
    st.builds(
        pdus.ReadRequest,
        st.sampled_from([FC.READ_HOLDING_REGISTERS, FC.READ_INPUT_REGISTERS]),
        st.integers(0, 0xFFFF - 125),
        st.integers(1, 125),
    ),
    st.builds(pdus.WriteSingleRegisterRequest, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    st.builds(
        pdus.WriteMultipleRegistersRequest,
        st.integers(0, 0xFFFF - 123),
        st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=123).map(tuple),
    ),
    st.builds(pdus.ReadDeviceIdentificationRequest, st.integers(1, 4), st.integers(0, 255)),
)


def _fields(message) -> tuple[object, ...]:
    """What a pymodbus request says, in our terms."""
    if isinstance(message, ReadDeviceInformationRequest):
        return (message.function_code, message.read_code, message.object_id)
    return (message.function_code, message.address, tuple(message.registers) or message.count)


def _our_fields(request: pdus.Request) -> tuple[object, ...]:
    if isinstance(request, pdus.ReadRequest):
        return (request.function_code, request.address, request.count)
    if isinstance(request, pdus.WriteSingleRegisterRequest):
        return (6, request.address, (request.value,))
    if isinstance(request, pdus.WriteMultipleRegistersRequest):
        return (16, request.address, request.values)
    return (43, request.read_code, request.object_id)


@INTEROP
@given(requests_strategy, st.integers(0, 0xFFFF), st.integers(1, 247))
def test_pymodbus_decodes_our_requests_over_tcp(request_, transaction_id, unit_id):
    wire = mbap.encode_frame(transaction_id, unit_id, request_.encode())
    used, message = _server_framer(FramerSocket).handleFrame(wire, 0, 0)
    assert used == len(wire)
    assert message is not None
    assert (message.transaction_id, message.dev_id) == (transaction_id, unit_id)
    assert _fields(message) == _our_fields(request_)


@INTEROP
@given(requests_strategy, st.integers(1, 247))
def test_pymodbus_decodes_our_requests_over_rtu(request_, unit_id):
    wire = rtu.encode_frame(unit_id, request_.encode())
    assert rtu.request_frame_length(wire) == len(wire)
    used, message = _server_framer(FramerRTU).handleFrame(wire, 0, 0)
    assert used == len(wire)
    assert message is not None
    assert message.dev_id == unit_id
    assert _fields(message) == _our_fields(request_)


# --- responses -----------------------------------------------------------------------------------


@INTEROP
@given(
    st.sampled_from([ReadHoldingRegistersResponse, ReadInputRegistersResponse]),
    st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=125),
    st.integers(1, 247),
)
def test_we_decode_pymodbus_register_responses(response_class, values, unit_id):
    message = response_class(registers=values, dev_id=unit_id)
    frame = _client_framer(FramerRTU).buildFrame(message)
    assert rtu.response_frame_length(frame) == len(frame)
    pdu = RTUResponseDecoder(unit_id, message.function_code).feed(frame)
    assert isinstance(pdu, bytes)
    assert pdu == _wire_pdu(message)
    decoded = pdus.decode_read_registers_response(
        pdu, unit_id=unit_id, function_code=message.function_code
    )
    assert decoded == tuple(values)


@INTEROP
@given(
    st.sampled_from([3, 4]),
    st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=125),
    st.integers(1, 247),
)
def test_pymodbus_decodes_our_register_responses(function_code, values, unit_id):
    frame = rtu.encode_frame(
        unit_id, pdus.encode_read_registers_response(function_code, tuple(values))
    )
    used, message = _client_framer(FramerRTU).handleFrame(frame, unit_id, 0)
    assert used == len(frame)
    assert message is not None
    assert (message.function_code, message.dev_id) == (function_code, unit_id)
    assert message.registers == values


def test_we_decode_pymodbus_write_multiple_response():
    message = WriteMultipleRegistersResponse(address=1, count=2, dev_id=0x11)
    frame = _client_framer(FramerRTU).buildFrame(message)
    assert rtu.response_frame_length(frame) == len(frame) == 8
    assert RTUResponseDecoder(0x11, 16).feed(frame) == bytes.fromhex("10 0001 0002")


@pytest.mark.parametrize(("function_code", "exception_code"), [(3, 2), (4, 1), (16, 3), (43, 11)])
def test_pymodbus_exception_responses(function_code, exception_code):
    message = ExceptionResponse(function_code, exception_code, device_id=9)
    frame = _client_framer(FramerRTU).buildFrame(message)
    assert rtu.response_frame_length(frame) == len(frame) == 5
    pdu = RTUResponseDecoder(9, function_code).feed(frame)
    assert pdu == pdus.exception_pdu(function_code, exception_code)
    assert isinstance(pdu, bytes)
    with pytest.raises(ModbusExceptionError) as info:
        pdus.check_response(pdu, unit_id=9, function_code=function_code)
    assert info.value.exception_code == exception_code
    # And the other way round: pymodbus reads our exception response.
    ours = mbap.encode_frame(5, 9, pdus.exception_pdu(function_code, exception_code))
    _, decoded = _client_framer(FramerSocket).handleFrame(ours, 0, 0)
    assert isinstance(decoded, ExceptionResponse)
    assert decoded.function_code == function_code | 0x80
    assert decoded.exception_code == exception_code


DEVICE_OBJECTS = [
    {0: b"Company identification", 1: b"Product code XX", 2: b"V2.11"},
    {0: b"PanelHub project"},
    {i: bytes([0x41 + i]) * (i + 1) for i in range(7)},
    {0x80: bytes(200)},
]


@pytest.mark.parametrize("information", DEVICE_OBJECTS, ids=lambda info: f"{len(info)} objects")
def test_device_identification_response_both_ways(information):
    message = ReadDeviceInformationResponse(read_code=1, information=information, dev_id=0x11)
    frame = _client_framer(FramerRTU).buildFrame(message)
    # pymodbus's frame: our length walk and our decoder agree with it.
    assert rtu.response_frame_length(frame) == len(frame)
    # (pymodbus's encode() counts objects into the instance: encode it once, take the frame's.)
    assert RTUResponseDecoder(0x11, 0x2B).feed(frame) == frame[1:-2]
    # Our frame: pymodbus reads back the same objects.
    ours = rtu.encode_frame(
        0x11, pdus.encode_device_identification_response(1, list(information.items()))
    )
    assert ours == frame  # both write conformity 0x83, nothing more follows
    _, decoded = _client_framer(FramerRTU).handleFrame(ours, 0x11, 0)
    assert isinstance(decoded, ReadDeviceInformationResponse)
    assert decoded.information == information
