"""RTU framing: CRC-16 against the specification and a bitwise reference, frame length tables."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panelhub.errors import LocalProtocolError, RemoteProtocolError
from panelhub.modbus import rtu
from panelhub.modbus.sentinels import FRAME_ENDS_AT_SILENCE, NEED_DATA


def reference_crc16(data: bytes) -> int:
    """CRC-16/MODBUS bit by bit, as Modbus over Serial Line v1.02 §6.2.2 describes it.

    Deliberately the slow shift-and-XOR procedure rather than a table, so it shares no code or
    table with ``rtu.crc16``.
    """
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            lsb = crc & 1
            crc >>= 1
            if lsb:
                crc ^= 0xA001
    return crc


# Whole RTU frames with their CRC, written out from the documents.
GOLDEN_FRAMES = [
    # Serial Line v1.02 appendix B (CRC generation example): "02 07" has CRC 0x1241, sent 41 12.
    "02 07 41 12",
    # Read 10 holding registers from address 0 of unit 1: the best-known RTU frame of all.
    "01 03 0000 000A C5 CD",
    # Application Protocol §6.3 request on unit 0x11 (the Simply Modbus example frame).
    "11 03 006B 0003 76 87",
    # Read one holding register / input register of unit 1, write register 1 = 3.
    "01 03 0000 0001 84 0A",
    "01 04 0000 0001 31 CA",
    "01 06 0001 0003 98 0B",
]


@pytest.mark.parametrize("frame_hex", GOLDEN_FRAMES)
def test_golden_frames(frame_hex):
    frame = bytes.fromhex(frame_hex)
    unit_id, pdu = frame[0], frame[1:-2]
    assert rtu.encode_frame(unit_id, pdu) == frame
    assert rtu.check_frame(frame) == (unit_id, pdu)
    assert rtu.crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


@pytest.mark.parametrize("frame_hex", GOLDEN_FRAMES)
def test_golden_frames_against_reference(frame_hex):
    frame = bytes.fromhex(frame_hex)
    assert reference_crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def test_crc_catalogue_check_value():
    # CRC-16/MODBUS in the catalogue of parametrised CRC algorithms: check("123456789") = 0x4B37.
    assert rtu.crc16(b"123456789") == 0x4B37
    assert reference_crc16(b"123456789") == 0x4B37


def test_crc_of_nothing_is_the_initial_value():
    assert rtu.crc16(b"") == 0xFFFF


def test_crc_accepts_bytearray_and_memoryview():
    data = b"\x11\x03\x00\x6b\x00\x03"
    assert rtu.crc16(bytearray(data)) == rtu.crc16(memoryview(data)) == 0x8776


def test_frame_with_its_crc_appended_has_residue_zero():
    # A property of CRC-16/MODBUS: the CRC over data + CRC (low byte first) is 0.
    assert rtu.crc16(bytes.fromhex("01 03 0000 000A C5 CD")) == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_crc_equals_bitwise_reference(data):
    assert rtu.crc16(data) == reference_crc16(data)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 255), st.binary(min_size=1, max_size=253))
def test_encode_check_round_trip(unit_id, pdu):
    frame = rtu.encode_frame(unit_id, pdu)
    assert len(frame) == len(pdu) + 3
    assert rtu.check_frame(frame) == (unit_id, pdu)
    assert rtu.check_frame(bytearray(frame)) == (unit_id, pdu)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=2, max_size=64), st.data())
def test_any_single_byte_error_is_detected(body, data):
    frame = bytearray(rtu.encode_frame(body[0], body[1:]))
    index = data.draw(st.integers(0, len(frame) - 1))
    frame[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(RemoteProtocolError, match="CRC mismatch"):
        rtu.check_frame(frame)


@pytest.mark.parametrize("size", range(4))
def test_check_frame_refuses_short_frames(size):
    with pytest.raises(RemoteProtocolError, match="shorter than 4"):
        rtu.check_frame(bytes.fromhex("02 07 41 12")[:size])


def test_check_frame_mismatch_message():
    with pytest.raises(RemoteProtocolError, match=r"got 0x1240, want 0x1241"):
        rtu.check_frame(bytes.fromhex("02 07 40 12"))


@pytest.mark.parametrize("unit_id", [-1, 256])
def test_encode_refuses_unit_id_outside_one_byte(unit_id):
    with pytest.raises(LocalProtocolError, match="unit ID"):
        rtu.encode_frame(unit_id, b"\x03")


@pytest.mark.parametrize("pdu", [b"", bytes(254)])
def test_encode_refuses_pdu_size(pdu):
    with pytest.raises(LocalProtocolError, match="PDU of"):
        rtu.encode_frame(1, pdu)


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


# request_frame_length: (frame prefix, expected). Lengths count address .. CRC; the frames are
# the Application Protocol v1.1b3 §6 request examples behind address 0x11.
REQUEST_LENGTHS = [
    pytest.param(_h("11 01 0013 0013"), 8, id="01 read coils §6.1"),
    pytest.param(_h("11 02 00C4 0016"), 8, id="02 read discrete inputs §6.2"),
    pytest.param(_h("11 03 006B 0003"), 8, id="03 read holding registers §6.3"),
    pytest.param(_h("11 04 0008 0001"), 8, id="04 read input registers §6.4"),
    pytest.param(_h("11 05 00AC FF00"), 8, id="05 write single coil §6.5"),
    pytest.param(_h("11 06 0001 0003"), 8, id="06 write single register §6.6"),
    pytest.param(_h("11 07"), 4, id="07 read exception status §6.7"),
    pytest.param(_h("11 08 0000 A537"), FRAME_ENDS_AT_SILENCE, id="08 diagnostics §6.8"),
    pytest.param(_h("11 0B"), 4, id="11 get comm event counter §6.9"),
    pytest.param(_h("11 0C"), 4, id="12 get comm event log §6.10"),
    pytest.param(_h("11 0F 0013 000A 02 CD01"), 7 + 2 + 2, id="15 write multiple coils §6.11"),
    pytest.param(_h("11 10 0001 0002 04 000A 0102"), 7 + 4 + 2, id="16 write registers §6.12"),
    pytest.param(_h("11 11"), 4, id="17 report server ID §6.13"),
    pytest.param(_h("11 14 0E 06 0004 0001 0002 06 0003 0009 0002"), 3 + 14 + 2, id="20 §6.14"),
    pytest.param(_h("11 15 0D 06 0004 0007 0003 06AF 04BE 100D"), 3 + 13 + 2, id="21 §6.15"),
    pytest.param(_h("11 16 0004 00F2 0025"), 10, id="22 mask write register §6.16"),
    pytest.param(
        _h("11 17 0003 0006 000E 0003 06 00FF 00FF 00FF"), 11 + 6 + 2, id="23 read/write §6.17"
    ),
    pytest.param(_h("11 18 04DE"), 6, id="24 read FIFO queue §6.18"),
    pytest.param(_h("11 2B 0E 01 00"), 7, id="43/14 read device identification §6.21"),
    pytest.param(_h("11 2B 0D 00"), FRAME_ENDS_AT_SILENCE, id="43/13 CANopen: uncountable"),
    # Need more bytes: nothing, the address alone, the byte count not yet there.
    pytest.param(b"", NEED_DATA, id="empty"),
    pytest.param(_h("11"), NEED_DATA, id="address only"),
    pytest.param(_h("11 2B"), NEED_DATA, id="43 without MEI type"),
    pytest.param(_h("11 0F 0013 000A"), NEED_DATA, id="15 before byte count"),
    pytest.param(_h("11 10 0001 0002"), NEED_DATA, id="16 before byte count"),
    pytest.param(_h("11 17 0003 0006 000E 0003"), NEED_DATA, id="23 before byte count"),
    pytest.param(_h("11 14"), NEED_DATA, id="20 before byte count"),
    pytest.param(_h("11 15"), NEED_DATA, id="21 before byte count"),
    # Unknown, user-defined and exception-flagged function codes: only silence ends them.
    pytest.param(_h("11 00"), FRAME_ENDS_AT_SILENCE, id="function 0"),
    pytest.param(_h("11 09"), FRAME_ENDS_AT_SILENCE, id="function 9"),
    pytest.param(_h("11 41 0000"), FRAME_ENDS_AT_SILENCE, id="user-defined 65"),
    pytest.param(_h("11 64"), FRAME_ENDS_AT_SILENCE, id="user-defined 100"),
    pytest.param(_h("11 83"), FRAME_ENDS_AT_SILENCE, id="0x83 is not a request"),
]


@pytest.mark.parametrize(("prefix", "expected"), REQUEST_LENGTHS)
def test_request_frame_length(prefix, expected):
    assert rtu.request_frame_length(prefix) == expected
    assert rtu.request_frame_length(bytearray(prefix)) == expected


def test_request_length_of_largest_byte_count():
    assert rtu.request_frame_length(_h("01 10 0000 007B F6")) == 7 + 0xF6 + 2


# response_frame_length: the §6 response examples behind address 0x11.
RESPONSE_LENGTHS = [
    pytest.param(_h("11 01 03 CD6B05"), 3 + 3 + 2, id="01 read coils §6.1"),
    pytest.param(_h("11 02 03 ACDB35"), 3 + 3 + 2, id="02 read discrete inputs §6.2"),
    pytest.param(_h("11 03 06 022B00000064"), 3 + 6 + 2, id="03 read holding registers §6.3"),
    pytest.param(_h("11 04 02 000A"), 3 + 2 + 2, id="04 read input registers §6.4"),
    pytest.param(_h("11 05 00AC FF00"), 8, id="05 write single coil §6.5"),
    pytest.param(_h("11 06 0001 0003"), 8, id="06 write single register §6.6"),
    pytest.param(_h("11 07 6D"), 5, id="07 read exception status §6.7"),
    pytest.param(_h("11 08 0000 A537"), FRAME_ENDS_AT_SILENCE, id="08 diagnostics echo §6.8"),
    pytest.param(_h("11 0B FFFF 0108"), 8, id="11 get comm event counter §6.9"),
    pytest.param(_h("11 0C 08 0000 0108 0121 2000"), 3 + 8 + 2, id="12 comm event log §6.10"),
    pytest.param(_h("11 0F 0013 000A"), 8, id="15 write multiple coils §6.11"),
    pytest.param(_h("11 10 0001 0002"), 8, id="16 write multiple registers §6.12"),
    pytest.param(_h("11 11 02 11FF"), 3 + 2 + 2, id="17 report server ID §6.13"),
    pytest.param(_h("11 14 0C 05 06 0DFE 0020 05 06 33CD 0040"), 3 + 12 + 2, id="20 §6.14"),
    pytest.param(_h("11 15 0D 06 0004 0007 0003 06AF 04BE 100D"), 3 + 13 + 2, id="21 §6.15"),
    pytest.param(_h("11 16 0004 00F2 0025"), 10, id="22 mask write register §6.16"),
    pytest.param(_h("11 17 0C 00FE 0ACD 0001 0003 000D 00FF"), 3 + 12 + 2, id="23 §6.17"),
    # §6.18: byte count is two bytes (6) and counts FIFO count + values.
    pytest.param(_h("11 18 0006 0002 01B8 1284"), 4 + 6 + 2, id="24 read FIFO queue §6.18"),
    pytest.param(_h("11 18 0000"), 6, id="24 FIFO empty"),
    # Both bytes of the count matter (noise can claim 0x0102; the decoder refuses such lengths).
    pytest.param(_h("11 18 0102"), 4 + 0x0102 + 2, id="24 FIFO two-byte byte count"),
    pytest.param(_h("11 18 00"), NEED_DATA, id="24 FIFO byte count half there"),
    pytest.param(_h("11 18"), NEED_DATA, id="24 FIFO without byte count"),
    # §7 exception responses are 5 bytes whatever the function.
    pytest.param(_h("11 83"), 5, id="exception 83"),
    pytest.param(_h("11 81 02"), 5, id="exception 81 §7 example"),
    pytest.param(_h("11 AB"), 5, id="exception to 43"),
    pytest.param(_h("11 C1"), 5, id="exception to user-defined 65"),
    pytest.param(_h("11 FF"), 5, id="exception flag on 0x7F"),
    # Byte count not there yet.
    pytest.param(b"", NEED_DATA, id="empty"),
    pytest.param(_h("11"), NEED_DATA, id="address only"),
    pytest.param(_h("11 03"), NEED_DATA, id="03 before byte count"),
    pytest.param(_h("11 01"), NEED_DATA, id="01 before byte count"),
    pytest.param(_h("11 17"), NEED_DATA, id="23 before byte count"),
    # Unknown function codes.
    pytest.param(_h("11 00"), FRAME_ENDS_AT_SILENCE, id="function 0"),
    pytest.param(_h("11 09 00"), FRAME_ENDS_AT_SILENCE, id="function 9"),
    pytest.param(_h("11 41"), FRAME_ENDS_AT_SILENCE, id="user-defined 65"),
]


@pytest.mark.parametrize(("prefix", "expected"), RESPONSE_LENGTHS)
def test_response_frame_length(prefix, expected):
    assert rtu.response_frame_length(prefix) == expected
    assert rtu.response_frame_length(bytearray(prefix)) == expected


def _device_identification(objects: list[tuple[int, bytes]]) -> bytes:
    """Address 1, 2B 0E, read code 01, conformity 01, more follows 00, next 00, the objects."""
    body = bytes((0x01, 0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, len(objects)))
    for object_id, value in objects:
        body += bytes((object_id, len(value))) + value
    return body


# The §6.21 example's three basic objects (with each length equal to its value's length).
SPEC_OBJECTS = [(0x00, b"Company identification"), (0x01, b"Product code XX"), (0x02, b"V2.11")]


@pytest.mark.parametrize(
    "objects",
    [
        pytest.param([], id="no objects"),
        pytest.param([(0, b"")], id="one empty object"),
        pytest.param([(0, b"ACME")], id="one object"),
        pytest.param(SPEC_OBJECTS, id="§6.21 basic objects"),
        pytest.param([(i, bytes([65 + i]) * i) for i in range(7)], id="seven objects"),
        pytest.param([(0x80, bytes(244))], id="one object filling the frame"),
    ],
)
def test_device_identification_response_length(objects):
    body = _device_identification(objects)
    expected = 8 + sum(2 + len(value) for _, value in objects) + 2
    assert len(body) + 2 == expected
    assert rtu.response_frame_length(body) == expected
    assert rtu.response_frame_length(body + b"\x00\x00") == expected


def test_device_identification_spec_example_length():
    # 8 header bytes + (2+22) + (2+15) + (2+5) objects + CRC.
    assert rtu.response_frame_length(_device_identification(SPEC_OBJECTS)) == 58


def test_device_identification_every_prefix_needs_data():
    body = _device_identification(SPEC_OBJECTS)
    # The objects' id and length bytes sit at 8, 32 and 49: the length is known only once the
    # last object's two header bytes (49, 50) are there.
    for size in range(len(body) + 1):
        result = rtu.response_frame_length(body[:size])
        if size < 51:
            assert result is NEED_DATA, size
        else:
            assert result == 58, size


def test_device_identification_other_mei_type_ends_at_silence():
    assert rtu.response_frame_length(_h("01 2B 0D 00 00")) is FRAME_ENDS_AT_SILENCE


def test_device_identification_longer_than_an_adu_refused():
    # The walk stops as soon as the objects overrun the 256-byte ADU, before waiting for them.
    prefix = _device_identification([(0, bytes(255))])[:8] + b"\x00\xff"
    assert rtu.response_frame_length(_h("01 2B 0E 01 01 00 00 02 00 F3")) is NEED_DATA
    with pytest.raises(RemoteProtocolError, match="longer than 256"):
        rtu.response_frame_length(_h("01 2B 0E 01 01 00 00 02 00 F3") + bytes(243) + b"\x01\x01")
    with pytest.raises(RemoteProtocolError, match="longer than 256"):
        rtu.response_frame_length(prefix)
    with pytest.raises(RemoteProtocolError, match="longer than 256"):
        rtu.response_frame_length(_h("01 2B 0E 01 01 00 00 01 00 F6"))  # 8 + 2 + 246 + 2 = 258


def test_largest_device_identification_fits():
    # 8 + 2 + 244 = 254 bytes before the CRC: exactly the 256-byte ADU.
    assert rtu.response_frame_length(_h("01 2B 0E 01 01 00 00 01 00 F4")) == 256
    with pytest.raises(RemoteProtocolError):
        rtu.response_frame_length(_h("01 2B 0E 01 01 00 00 01 00 F5"))
