"""MBAP framing: golden vectors, header checks and the ``NEED_DATA`` boundary."""

from __future__ import annotations

import pytest

from panelhub.errors import LocalProtocolError, RemoteProtocolError
from panelhub.modbus import mbap
from panelhub.modbus.mbap import TCPFrame
from panelhub.modbus.sentinels import NEED_DATA, NeedData


def _parsed(buffer: bytes | bytearray, offset: int = 0) -> tuple[TCPFrame, int]:
    result = mbap.parse_frame(buffer, offset)
    assert not isinstance(result, NeedData)
    return result


# (wire bytes, transaction ID, unit ID, PDU), all written out by hand from the documents.
GOLDEN = [
    # Messaging on TCP/IP Implementation Guide v1.0b §3.1.3 layout: transaction 1, protocol 0,
    # length 6 (unit + 5-byte PDU), unit 1, read 10 holding registers from 0.
    (
        bytes.fromhex("0001 0000 0006 01 03 0000 000A"),
        0x0001,
        0x01,
        bytes.fromhex("03 0000 000A"),
    ),
    # The §6.3 request of the Application Protocol, addressed to unit 0x11 on transaction 1.
    (bytes.fromhex("0001 0000 0006 11 03006B0003"), 1, 0x11, bytes.fromhex("03006B0003")),
    # The §6.3 response: length 9 = unit + 8-byte PDU.
    (
        bytes.fromhex("0001 0000 0009 11 0306022B00000064"),
        1,
        0x11,
        bytes.fromhex("0306022B00000064"),
    ),
    # §7 exception response "83 02", largest transaction ID, unit 0xFF (the gateway itself).
    (bytes.fromhex("FFFF 0000 0003 FF 8302"), 0xFFFF, 0xFF, bytes.fromhex("8302")),
]


@pytest.mark.parametrize(("wire", "transaction_id", "unit_id", "pdu"), GOLDEN)
def test_encode_golden(wire, transaction_id, unit_id, pdu):
    assert mbap.encode_frame(transaction_id, unit_id, pdu) == wire


@pytest.mark.parametrize(("wire", "transaction_id", "unit_id", "pdu"), GOLDEN)
def test_parse_golden(wire, transaction_id, unit_id, pdu):
    assert mbap.parse_frame(wire) == (TCPFrame(transaction_id, unit_id, pdu), len(wire))


def test_parse_at_offset_and_returns_next_offset():
    first, second = GOLDEN[0][0], GOLDEN[3][0]
    stream = first + second
    frame, end = _parsed(stream, len(first))
    assert frame == TCPFrame(0xFFFF, 0xFF, b"\x83\x02")
    assert end == len(stream)


def test_parse_accepts_bytearray_and_returns_bytes_pdu():
    frame, _ = _parsed(bytearray(GOLDEN[0][0]))
    assert type(frame.pdu) is bytes


def test_frame_is_a_named_record():
    frame = TCPFrame(transaction_id=7, unit_id=3, pdu=b"\x03")
    assert (frame.transaction_id, frame.unit_id, frame.pdu) == (7, 3, b"\x03")


@pytest.mark.parametrize("size", range(7))
def test_short_header_needs_data(size):
    assert mbap.parse_frame(GOLDEN[0][0][:size]) is NEED_DATA


@pytest.mark.parametrize("size", range(7, 12))
def test_short_body_needs_data(size):
    assert mbap.parse_frame(GOLDEN[0][0][:size]) is NEED_DATA


def test_bad_header_refused_before_the_body_arrives():
    # Only the 7 header bytes are there: a hostile length is refused at once.
    with pytest.raises(RemoteProtocolError, match="length 65535"):
        mbap.parse_frame(bytes.fromhex("0001 0000 FFFF 01"))


@pytest.mark.parametrize("protocol_id", [1, 0x0100, 0xFFFF])
def test_protocol_id_other_than_modbus_refused(protocol_id):
    header = bytes.fromhex("0001") + protocol_id.to_bytes(2, "big") + bytes.fromhex("0006 01")
    with pytest.raises(RemoteProtocolError, match="protocol ID"):
        mbap.parse_frame(header + bytes(5))


@pytest.mark.parametrize(
    ("length", "is_valid"),
    [(0, False), (1, False), (2, True), (254, True), (255, False), (0x0100, False)],
)
def test_length_field_bounds(length, is_valid):
    header = bytes.fromhex("0001 0000") + length.to_bytes(2, "big") + b"\x01"
    if is_valid:
        assert _parsed(header + bytes(length - 1))[1] == 6 + length
    else:
        with pytest.raises(RemoteProtocolError, match="MBAP length"):
            mbap.parse_frame(header)


def test_encode_wraps_transaction_id_at_16_bits():
    assert mbap.encode_frame(0x1_0002, 1, b"\x07")[:2] == b"\x00\x02"


def test_encode_largest_pdu():
    wire = mbap.encode_frame(1, 1, bytes(253))
    assert len(wire) == 260
    assert wire[4:6] == (254).to_bytes(2, "big")


@pytest.mark.parametrize("pdu", [b"", bytes(254)])
def test_encode_refuses_pdu_size(pdu):
    with pytest.raises(LocalProtocolError, match="PDU of"):
        mbap.encode_frame(1, 1, pdu)


@pytest.mark.parametrize("unit_id", [-1, 256])
def test_encode_refuses_unit_id_outside_one_byte(unit_id):
    with pytest.raises(LocalProtocolError, match="unit ID"):
        mbap.encode_frame(1, unit_id, b"\x03")
