"""Protocol data units: the requests and responses PanelHub builds or answers itself.

The gateway forwards PDUs untouched; this module serves the gateway's own server on unit 255,
the datalogger and the tests. Read holding registers, address 0x006B, count 3 (§6.3)::

    03 00 6B 00 03           request
    03 06 02 2B 00 00 00 64  response: byte count 6, registers 0x022B 0x0000 0x0064
    83 02                    exception response: illegal data address
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from panelhub.errors import (
    IllegalRequestError,
    LocalProtocolError,
    ModbusExceptionError,
    RemoteProtocolError,
)
from panelhub.modbus.constants import (
    EXCEPTION_FLAG,
    MAX_PDU_SIZE,
    MAX_READ_BITS,
    MAX_READ_REGISTERS,
    MAX_WRITE_REGISTERS,
    MEI_READ_DEVICE_IDENTIFICATION,
    ExceptionCode,
    FunctionCode,
)

_ADDRESS_COUNT: Final = struct.Struct(">BHH")
_READ_LIMITS: Final = {
    FunctionCode.READ_COILS: MAX_READ_BITS,
    FunctionCode.READ_DISCRETE_INPUTS: MAX_READ_BITS,
    FunctionCode.READ_HOLDING_REGISTERS: MAX_READ_REGISTERS,
    FunctionCode.READ_INPUT_REGISTERS: MAX_READ_REGISTERS,
}


def _check_address(address: int, count: int) -> None:
    if not 0 <= address <= 0xFFFF or address + count > 0x10000:
        raise LocalProtocolError(f"address {address} + count {count} is outside 0..65535")


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """Functions 1-4: read ``count`` bits or registers from ``address``."""

    function_code: FunctionCode
    address: int
    count: int

    def __post_init__(self) -> None:
        limit = _READ_LIMITS.get(self.function_code)
        if limit is None:
            raise LocalProtocolError(f"function {self.function_code} is not a read")
        if not 1 <= self.count <= limit:
            raise LocalProtocolError(f"count {self.count}: must be 1 to {limit}")
        _check_address(self.address, self.count)

    def encode(self) -> bytes:
        return _ADDRESS_COUNT.pack(self.function_code, self.address, self.count)


@dataclass(frozen=True, slots=True)
class WriteSingleRegisterRequest:
    """Function 6."""

    address: int
    value: int

    def __post_init__(self) -> None:
        _check_address(self.address, 1)
        if not 0 <= self.value <= 0xFFFF:
            raise LocalProtocolError(f"register value {self.value} is outside 0..65535")

    def encode(self) -> bytes:
        return _ADDRESS_COUNT.pack(FunctionCode.WRITE_SINGLE_REGISTER, self.address, self.value)


@dataclass(frozen=True, slots=True)
class WriteMultipleRegistersRequest:
    """Function 16."""

    address: int
    values: tuple[int, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.values) <= MAX_WRITE_REGISTERS:
            raise LocalProtocolError(f"{len(self.values)} registers: must be 1 to 123")
        _check_address(self.address, len(self.values))
        if any(not 0 <= value <= 0xFFFF for value in self.values):
            raise LocalProtocolError("register values must be 0..65535")

    def encode(self) -> bytes:
        count = len(self.values)
        head = struct.pack(">BHHB", FunctionCode.WRITE_MULTIPLE_REGISTERS, self.address, count,
                           2 * count)  # fmt: skip
        return head + struct.pack(f">{count}H", *self.values)


@dataclass(frozen=True, slots=True)
class ReadDeviceIdentificationRequest:
    """Function 43, MEI type 14 (§6.21): read code 1 basic, 2 regular, 3 extended, 4 one object."""

    read_code: int = 1
    object_id: int = 0

    def __post_init__(self) -> None:
        if self.read_code not in (1, 2, 3, 4):
            raise LocalProtocolError(f"read device ID code {self.read_code}: must be 1 to 4")
        if not 0 <= self.object_id <= 0xFF:
            raise LocalProtocolError(f"object ID {self.object_id} is outside 0..255")

    def encode(self) -> bytes:
        return bytes((FunctionCode.ENCAPSULATED_INTERFACE, MEI_READ_DEVICE_IDENTIFICATION,
                      self.read_code, self.object_id))  # fmt: skip


Request = (
    ReadRequest
    | WriteSingleRegisterRequest
    | WriteMultipleRegistersRequest
    | ReadDeviceIdentificationRequest
)


def check_frame_parts(unit_id: int, pdu: bytes) -> None:
    """Refuse what no frame can carry: a unit ID over one byte, a PDU outside 1..253 bytes.

    Raises:
        LocalProtocolError: with the offending value.
    """
    if not 0 <= unit_id <= 0xFF:
        raise LocalProtocolError(f"unit ID {unit_id} is outside 0..255")
    if not 0 < len(pdu) <= MAX_PDU_SIZE:
        raise LocalProtocolError(f"PDU of {len(pdu)} bytes: must be 1 to {MAX_PDU_SIZE}")


def expected_byte_count(request: bytes) -> int | None:
    """The byte count a normal response to ``request`` must carry, for the reads; else None.

    Reads 1-4 and 23 answer with a byte count fixed by the request (§6.1-§6.4, §6.17), which
    lets an RTU client tell its answer from a late answer to an earlier, different read.
    """
    if len(request) < 5:
        return None
    count = (request[3] << 8) | request[4]
    if request[0] in (FunctionCode.READ_COILS, FunctionCode.READ_DISCRETE_INPUTS):
        return (count + 7) // 8
    if request[0] in (
        FunctionCode.READ_HOLDING_REGISTERS,
        FunctionCode.READ_INPUT_REGISTERS,
        FunctionCode.READ_WRITE_MULTIPLE_REGISTERS,
    ):
        return 2 * count
    return None


def exception_pdu(function_code: int, exception_code: int) -> bytes:
    """The exception response to ``function_code`` (§7)."""
    return bytes(((function_code | EXCEPTION_FLAG) & 0xFF, exception_code))


def _illegal(message: str, code: ExceptionCode) -> IllegalRequestError:
    return IllegalRequestError(message, exception_code=code)


def decode_request(pdu: bytes) -> Request:
    """Parse a request this package can serve (functions 3, 4, 6, 16 and 43/14).

    Raises:
        IllegalRequestError: with exception code 01 for another function, 03 for a malformed
            or out-of-range request (§7, and the server state diagrams of §6).

    """
    if not pdu:
        raise _illegal("empty PDU", ExceptionCode.ILLEGAL_DATA_VALUE)
    function_code = pdu[0]
    try:
        return _decode_known(function_code, pdu)
    except (LocalProtocolError, struct.error) as exc:
        raise _illegal(f"malformed request: {exc}", ExceptionCode.ILLEGAL_DATA_VALUE) from exc


def _check_range(address: int, count: int, limit: int) -> None:
    """The server checks of §6.3, §6.4 and §6.12: the count first (03), then the range (02)."""
    if not 1 <= count <= limit:
        raise LocalProtocolError(f"count {count}: must be 1 to {limit}")
    if address + count > 0x10000:
        raise _illegal(
            f"address {address} + count {count} is past 65535", ExceptionCode.ILLEGAL_DATA_ADDRESS
        )


def _decode_known(function_code: int, pdu: bytes) -> Request:
    if function_code in (FunctionCode.READ_HOLDING_REGISTERS, FunctionCode.READ_INPUT_REGISTERS):
        _, address, count = _ADDRESS_COUNT.unpack(pdu)
        _check_range(address, count, MAX_READ_REGISTERS)
        return ReadRequest(FunctionCode(function_code), address, count)
    if function_code == FunctionCode.WRITE_SINGLE_REGISTER:
        _, address, value = _ADDRESS_COUNT.unpack(pdu)
        return WriteSingleRegisterRequest(address, value)
    if function_code == FunctionCode.WRITE_MULTIPLE_REGISTERS:
        _, address, count, byte_count = struct.unpack_from(">BHHB", pdu)
        if byte_count != 2 * count or len(pdu) != 6 + byte_count:
            raise LocalProtocolError("byte count does not match the register count")
        _check_range(address, count, MAX_WRITE_REGISTERS)
        return WriteMultipleRegistersRequest(address, struct.unpack_from(f">{count}H", pdu, 6))
    is_device_identification = len(pdu) > 1 and pdu[1] == MEI_READ_DEVICE_IDENTIFICATION
    if function_code == FunctionCode.ENCAPSULATED_INTERFACE and is_device_identification:
        if len(pdu) != 4:
            raise LocalProtocolError(f"read device identification request of {len(pdu)} bytes")
        return ReadDeviceIdentificationRequest(pdu[2], pdu[3])
    raise _illegal(f"function {function_code} is not served here", ExceptionCode.ILLEGAL_FUNCTION)


def encode_read_registers_response(function_code: int, values: tuple[int, ...]) -> bytes:
    """A function 3, 4 or 23 response carrying ``values``.

    Raises:
        LocalProtocolError: not 1 to 125 values, or a value outside 0..65535.

    """
    if not 1 <= len(values) <= MAX_READ_REGISTERS:
        raise LocalProtocolError(f"{len(values)} registers: must be 1 to {MAX_READ_REGISTERS}")
    if any(not 0 <= value <= 0xFFFF for value in values):
        raise LocalProtocolError("register values must be 0..65535")
    return struct.pack(f">BB{len(values)}H", function_code, 2 * len(values), *values)


def check_response(pdu: bytes, *, unit_id: int, function_code: int) -> bytes:
    """Return ``pdu`` if it answers ``function_code``; raise what an exception response says.

    Raises:
        ModbusExceptionError: the server answered with an exception.
        RemoteProtocolError: the response is empty or for another function.

    """
    if not pdu:
        raise RemoteProtocolError("empty response PDU")
    if pdu[0] == (function_code | EXCEPTION_FLAG) and len(pdu) == 2:
        raise ModbusExceptionError(
            unit_id=unit_id, function_code=function_code, exception_code=pdu[1]
        )
    if pdu[0] != function_code:
        raise RemoteProtocolError(f"response to function {pdu[0]}, expected {function_code}")
    return pdu


def decode_read_registers_response(
    pdu: bytes, *, unit_id: int, function_code: int
) -> tuple[int, ...]:
    """Register values from a function 3, 4 or 23 response.

    Raises:
        ModbusExceptionError: the server answered with an exception.
        RemoteProtocolError: the byte count is odd, does not match the PDU length, or counts
            no registers or more than 125.

    """
    check_response(pdu, unit_id=unit_id, function_code=function_code)
    if len(pdu) < 2 or pdu[1] % 2 or len(pdu) != 2 + pdu[1]:
        raise RemoteProtocolError("register response byte count does not match its length")
    # §6.3: byte count 2 x N with 1 <= N <= 125; no request asks for zero registers.
    if not 1 <= pdu[1] // 2 <= MAX_READ_REGISTERS:
        raise RemoteProtocolError(f"register response byte count {pdu[1]}: must be 2 to 250")
    return struct.unpack_from(f">{pdu[1] // 2}H", pdu, 2)


def encode_device_identification_response(
    read_code: int, objects: list[tuple[int, bytes]], *, conformity: int = 0x83
) -> bytes:
    """A 43/14 response holding ``objects`` (id, value), all in one PDU (no "more follows")."""
    body = bytearray((FunctionCode.ENCAPSULATED_INTERFACE, MEI_READ_DEVICE_IDENTIFICATION,
                      read_code, conformity, 0, 0, len(objects)))  # fmt: skip
    for object_id, value in objects:
        if not 0 <= object_id <= 0xFF:
            raise LocalProtocolError(f"object ID {object_id} is outside 0..255")
        if len(body) + 2 + len(value) > MAX_PDU_SIZE:
            raise LocalProtocolError("device identification objects do not fit one PDU")
        body += bytes((object_id, len(value))) + value
    return bytes(body)


@dataclass(frozen=True, slots=True)
class DeviceIdentification:
    """A decoded 43/14 response: the objects of this PDU, and where the next one starts.

    A device sends "more follows" (0xFF) with ``next_object_id`` when the objects do not fit
    one PDU; the client asks again from there (§6.21).
    """

    read_code: int
    conformity: int
    objects: dict[int, bytes]
    more_follows: bool
    next_object_id: int


def decode_device_identification_response(pdu: bytes, *, unit_id: int) -> DeviceIdentification:
    """Objects of a function 43 / MEI 14 response, checked against their declared lengths.

    Raises:
        ModbusExceptionError: the server answered with an exception (many meters answer 01).
        RemoteProtocolError: wrong MEI type, a length that runs past the PDU, or bytes left over.

    """
    check_response(pdu, unit_id=unit_id, function_code=FunctionCode.ENCAPSULATED_INTERFACE)
    if len(pdu) < 7 or pdu[1] != MEI_READ_DEVICE_IDENTIFICATION:
        raise RemoteProtocolError("not a read device identification response")
    read_code, conformity, more, next_id, count = pdu[2:7]
    objects: dict[int, bytes] = {}
    at = 7
    for _ in range(count):
        if at + 2 > len(pdu) or at + 2 + pdu[at + 1] > len(pdu):
            raise RemoteProtocolError("device identification object runs past the response")
        objects[pdu[at]] = pdu[at + 2 : at + 2 + pdu[at + 1]]
        at += 2 + pdu[at + 1]
    if at != len(pdu):
        raise RemoteProtocolError("device identification response has bytes after its objects")
    return DeviceIdentification(read_code, conformity, objects, more == 0xFF, next_id)


def decode_read_bits_response(
    pdu: bytes, *, unit_id: int, function_code: int, count: int
) -> tuple[bool, ...]:
    """The first ``count`` bits of a function 1 or 2 response, lowest address first (§6.1).

    Raises:
        ModbusExceptionError: the server answered with an exception.
        RemoteProtocolError: the byte count does not match the PDU or ``count`` bits.

    """
    check_response(pdu, unit_id=unit_id, function_code=function_code)
    if len(pdu) < 2 or len(pdu) != 2 + pdu[1] or pdu[1] != (count + 7) // 8:
        raise RemoteProtocolError("bit response byte count does not match its length")
    return tuple(bool(pdu[2 + i // 8] >> (i % 8) & 1) for i in range(count))
