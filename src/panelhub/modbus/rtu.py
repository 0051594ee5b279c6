"""Modbus RTU framing: CRC-16 and the length of a frame from its first bytes.

An RTU frame is the server address, the PDU and a CRC-16 sent low byte first (Modbus over
Serial Line v1.02 §2.5.1). Reading 3 holding registers from address 0x006B of server 0x11
(the Application Protocol v1.1b3 §6.3 example)::

    11 03 00 6B 00 03 76 87              request:  address, function, start, count, CRC 0x8776
    11 03 06 02 2B 00 00 00 64 C8 BA     response: address, function, byte count, 3 registers, CRC

RTU has no length field, so a receiver must know how long a frame is from its function code
(the tables below) or, for function codes it does not know, wait for the 3.5-character silence
that ends every frame. That timing belongs to ``transport/serial.py``; this module only counts.
"""

from __future__ import annotations

from typing import Final

from panelhub.errors import RemoteProtocolError
from panelhub.modbus.constants import (
    EXCEPTION_FLAG,
    MEI_READ_DEVICE_IDENTIFICATION,
    FunctionCode,
)
from panelhub.modbus.pdu import check_frame_parts
from panelhub.modbus.sentinels import FRAME_ENDS_AT_SILENCE, NEED_DATA, FrameEndsAtSilence, NeedData


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


#: CRC-16/MODBUS: polynomial 0xA001 (reflected 0x8005), initial value 0xFFFF (§6.2.2).
_CRC_TABLE: Final = _crc_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """Return the Modbus CRC-16 of ``data`` (sent low byte first on the line)."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def encode_frame(unit_id: int, pdu: bytes) -> bytes:
    """Build an RTU frame: address, PDU, CRC.

    Raises:
        LocalProtocolError: ``unit_id`` is not one byte or the PDU is not 1 to 253 bytes.

    """
    check_frame_parts(unit_id, pdu)
    body = bytes((unit_id,)) + pdu
    crc = crc16(body)
    return body + bytes((crc & 0xFF, crc >> 8))


def check_frame(frame: bytes | bytearray) -> tuple[int, bytes]:
    """Verify a whole RTU frame's CRC and return its address and PDU.

    Raises:
        RemoteProtocolError: the frame is too short or its CRC does not match.

    """
    if len(frame) < 4:
        raise RemoteProtocolError(f"RTU frame of {len(frame)} bytes is shorter than 4")
    expected = crc16(memoryview(frame)[:-2])
    received = frame[-2] | (frame[-1] << 8)
    if expected != received:
        raise RemoteProtocolError(f"RTU CRC mismatch: got 0x{received:04X}, want 0x{expected:04X}")
    return frame[0], bytes(frame[1:-2])


# Fixed lengths of whole frames (address .. CRC) per function code.
_FIXED_REQUEST: Final = {1: 8, 2: 8, 3: 8, 4: 8, 5: 8, 6: 8, 7: 4, 11: 4, 12: 4, 17: 4,
                         22: 10, 24: 6}  # fmt: skip
# Diagnostics (8) is absent on purpose: "return query data" echoes any length, so its end is
# found by silence.
_FIXED_RESPONSE: Final = {5: 8, 6: 8, 7: 5, 11: 8, 15: 8, 16: 8, 22: 10}  # fmt: skip
# Function codes whose frame carries a byte count at this offset (request side), followed by
# that many bytes and the CRC.
_REQUEST_BYTE_COUNT_AT: Final = {15: 6, 16: 6, 23: 10, 20: 2, 21: 2}
_RESPONSE_BYTE_COUNT_AT: Final = {1: 2, 2: 2, 3: 2, 4: 2, 12: 2, 17: 2, 20: 2, 21: 2, 23: 2}


def request_frame_length(buffer: bytes | bytearray) -> int | NeedData | FrameEndsAtSilence:
    """Length of the RTU request frame at the start of ``buffer``, as a server sees it."""
    if len(buffer) < 2:
        return NEED_DATA
    function_code = buffer[1]
    fixed = _FIXED_REQUEST.get(function_code)
    if fixed is not None:
        return fixed
    if function_code == FunctionCode.ENCAPSULATED_INTERFACE:
        return _device_identification_request_length(buffer)
    return _counted_length(buffer, _REQUEST_BYTE_COUNT_AT.get(function_code))


def response_frame_length(  # noqa: PLR0911 - one return per framing rule reads best
    buffer: bytes | bytearray,
) -> int | NeedData | FrameEndsAtSilence:
    """Length of the RTU response frame at the start of ``buffer``, as a client sees it."""
    if len(buffer) < 2:
        return NEED_DATA
    function_code = buffer[1]
    if function_code & EXCEPTION_FLAG:
        return 5  # address, function | 0x80, exception code, CRC (§7)
    if function_code == FunctionCode.ENCAPSULATED_INTERFACE:
        return _device_identification_length(buffer)
    if function_code == FunctionCode.READ_FIFO_QUEUE:
        if len(buffer) < 4:
            return NEED_DATA
        return 4 + ((buffer[2] << 8) | buffer[3]) + 2
    fixed = _FIXED_RESPONSE.get(function_code)
    if fixed is not None:
        return fixed
    return _counted_length(buffer, _RESPONSE_BYTE_COUNT_AT.get(function_code))


def _counted_length(
    buffer: bytes | bytearray, offset: int | None
) -> int | NeedData | FrameEndsAtSilence:
    """Frames whose byte count sits at ``offset``: the count, that many bytes, and the CRC."""
    if offset is None:
        return FRAME_ENDS_AT_SILENCE
    if len(buffer) <= offset:
        return NEED_DATA
    return offset + 1 + buffer[offset] + 2


def _device_identification_request_length(
    buffer: bytes | bytearray,
) -> int | NeedData | FrameEndsAtSilence:
    """43/14 read device identification: address, 2B, 0E, code, object id, CRC (§6.21)."""
    if len(buffer) < 3:
        return NEED_DATA
    if buffer[2] != MEI_READ_DEVICE_IDENTIFICATION:
        return FRAME_ENDS_AT_SILENCE  # another MEI type (CANopen 13): no length to count
    return 7


def _device_identification_length(buffer: bytes | bytearray) -> int | NeedData | FrameEndsAtSilence:
    """Walk a 43/14 response's object list (§6.21): it has no overall byte count."""
    if len(buffer) < 3:
        return NEED_DATA
    if buffer[2] != MEI_READ_DEVICE_IDENTIFICATION:
        return FRAME_ENDS_AT_SILENCE  # another MEI type (CANopen 13): no length to count
    header = 8  # address, 2B, 0E, read code, conformity, more follows, next object, count
    if len(buffer) < header:
        return NEED_DATA
    position = header
    for _ in range(buffer[7]):
        if len(buffer) < position + 2:
            return NEED_DATA
        position += 2 + buffer[position + 1]
        if position > 254:
            raise RemoteProtocolError("device identification response longer than 256 bytes")
    return position + 2
