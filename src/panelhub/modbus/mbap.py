"""Modbus TCP framing: the MBAP header in front of each PDU.

Reading 10 holding registers from address 0 of unit 1, transaction 0x0001
(Messaging on TCP/IP Implementation Guide v1.0b §3.1.3)::

    00 01  00 00  00 06  01  03 00 00 00 0A
    trans  proto  length unit PDU: function 3, address 0, count 10

``length`` counts the unit ID and the PDU. Protocol ID 0 is Modbus; anything else is refused.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

from panelhub.errors import RemoteProtocolError
from panelhub.modbus.constants import (
    MAX_MBAP_LENGTH,
    MBAP_HEADER_SIZE,
    MIN_MBAP_LENGTH,
)
from panelhub.modbus.pdu import check_frame_parts
from panelhub.modbus.sentinels import NEED_DATA, NeedData

#: Transaction ID, protocol ID, length, unit ID.
HEADER: Final = struct.Struct(">HHHB")
MODBUS_PROTOCOL_ID: Final = 0


class TCPFrame(NamedTuple):
    """One Modbus TCP ADU.

    A NamedTuple rather than a dataclass: one is built per request on the gateway's hot path,
    and a tuple is the cheapest immutable record to build.
    """

    transaction_id: int
    unit_id: int
    pdu: bytes


def encode_frame(transaction_id: int, unit_id: int, pdu: bytes) -> bytes:
    """Build a Modbus TCP ADU; the transaction ID wraps at 16 bits.

    Raises:
        LocalProtocolError: ``unit_id`` is not one byte or the PDU is not 1 to 253 bytes.

    """
    check_frame_parts(unit_id, pdu)
    return pack_frame(transaction_id & 0xFFFF, unit_id, pdu)


def pack_frame(transaction_id: int, unit_id: int, pdu: bytes) -> bytes:
    """``encode_frame`` without its checks, for the gateway's hot path.

    Only for a PDU already bounded (it came out of a decoder, or a PDU class built it) and a
    16-bit transaction ID and 8-bit unit ID; anything else raises ``struct.error``.
    """
    return HEADER.pack(transaction_id, MODBUS_PROTOCOL_ID, len(pdu) + 1, unit_id) + pdu


def parse_frame(buffer: bytes | bytearray, offset: int = 0) -> tuple[TCPFrame, int] | NeedData:
    """Parse the ADU starting at ``offset``; return it and the offset just after it.

    The header is checked as soon as its 7 bytes are there, before the body is waited for,
    so a bad length is refused without buffering anything more.

    Raises:
        RemoteProtocolError: the protocol ID is not 0 or the length is outside 2..254.

    """
    if len(buffer) - offset < MBAP_HEADER_SIZE:
        return NEED_DATA
    transaction_id, protocol_id, length, unit_id = HEADER.unpack_from(buffer, offset)
    if protocol_id != MODBUS_PROTOCOL_ID:
        raise RemoteProtocolError(f"MBAP protocol ID {protocol_id}: only 0 (Modbus) is accepted")
    if not MIN_MBAP_LENGTH <= length <= MAX_MBAP_LENGTH:
        raise RemoteProtocolError(
            f"MBAP length {length}: must be {MIN_MBAP_LENGTH} to {MAX_MBAP_LENGTH}"
        )
    end = offset + MBAP_HEADER_SIZE - 1 + length
    if len(buffer) < end:
        return NEED_DATA
    return TCPFrame(transaction_id, unit_id, bytes(buffer[offset + MBAP_HEADER_SIZE : end])), end
