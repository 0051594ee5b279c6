"""Incremental decoders: bytes arrive in arbitrary pieces, whole frames come out.

Rules:
- A decoder never holds more than one incomplete frame: whatever ``feed`` does not return as
  frames is a prefix of one ADU, so the buffer stays below ``MAX_TCP_ADU_SIZE`` (MBAP) or
  ``RTU_HUNT_WINDOW`` (RTU), whatever a peer sends.
- Bad input raises ``RemoteProtocolError``; after that the decoder must not be fed again (the
  caller closes the connection, or, on a serial line, calls ``reset`` and resynchronises).
"""

from __future__ import annotations

from typing import Final

from panelhub.errors import RemoteProtocolError
from panelhub.modbus import mbap, rtu
from panelhub.modbus.constants import (
    EXCEPTION_FLAG,
    MAX_RTU_ADU_SIZE,
    MAX_TCP_ADU_SIZE,
    MBAP_HEADER_SIZE,
    MIN_MBAP_LENGTH,
)
from panelhub.modbus.sentinels import NEED_DATA, FrameEndsAtSilence, NeedData

#: An RTU client hunting for its response through line noise looks at most this many bytes:
#: two whole frames, enough to skip one garbage frame, small enough to bound memory.
RTU_HUNT_WINDOW: Final = 2 * MAX_RTU_ADU_SIZE


def _candidate_length(buffer: bytearray) -> int | NeedData | FrameEndsAtSilence:
    """The length of the frame that may start ``buffer``.

    Raises:
        RemoteProtocolError: no valid frame can start here: its length would exceed the RTU
            ADU limit (a byte count or FIFO count read from line noise).

    """
    length = rtu.response_frame_length(buffer)
    if isinstance(length, int) and length > MAX_RTU_ADU_SIZE:
        raise RemoteProtocolError(f"RTU frame of {length} bytes is over {MAX_RTU_ADU_SIZE}")
    return length


class MBAPDecoder:
    """Splits a Modbus TCP byte stream into ``TCPFrame``s."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[mbap.TCPFrame]:
        """Add received bytes and return every frame now complete, oldest first.

        Raises:
            RemoteProtocolError: a header is invalid (see ``mbap.parse_frame``).

        """
        buffer: bytes | bytearray = self._buffer
        if not buffer and len(data) >= MBAP_HEADER_SIZE:
            # Fast path: exactly one whole, valid frame, what a client sends almost always.
            transaction_id, protocol_id, length, unit_id = mbap.HEADER.unpack_from(data)
            is_valid = protocol_id == mbap.MODBUS_PROTOCOL_ID and length >= MIN_MBAP_LENGTH
            if is_valid and len(data) == MBAP_HEADER_SIZE - 1 + length <= MAX_TCP_ADU_SIZE:
                return [mbap.TCPFrame(transaction_id, unit_id, data[MBAP_HEADER_SIZE:])]
        if buffer:
            self._buffer += data
        else:
            buffer = data  # the common case: parse the received bytes without a copy
        frames: list[mbap.TCPFrame] = []
        offset = 0
        end = len(buffer)
        while offset < end:
            try:
                result = mbap.parse_frame(buffer, offset)
            except RemoteProtocolError:
                # The stream is unusable and will be closed: hold none of what the peer sent.
                self._buffer = bytearray()
                raise
            if result is NEED_DATA:
                break
            frame, offset = result
            frames.append(frame)
        if offset == end:
            if self._buffer:
                self._buffer = bytearray()
            return frames  # the common case: whole frames only, nothing to keep
        self._buffer = bytearray(buffer[offset:])
        if len(self._buffer) >= MAX_TCP_ADU_SIZE:  # pragma: no cover - parse_frame forbids it
            raise RemoteProtocolError("MBAP decoder buffer over its bound")
        return frames


class RTUResponseDecoder:
    """Finds the response to one RTU request in what the line delivers.

    Bytes before a frame whose address and function code match the request and whose CRC is
    right are line noise (an echo, a late answer to an earlier request, garbage after a
    collision): they are skipped, within ``RTU_HUNT_WINDOW``. With ``expected_byte_count``
    (reads: see ``pdu.expected_byte_count``), a valid frame carrying another byte count is a
    late answer to another request, and is skipped too.
    """

    __slots__ = (
        "_buffer",
        "_expected_byte_count",
        "_expected_length",
        "_function_code",
        "_unit_id",
    )

    def __init__(
        self, unit_id: int, function_code: int, *, expected_byte_count: int | None = None
    ) -> None:
        self._unit_id = unit_id
        self._function_code = function_code
        self._expected_byte_count = expected_byte_count
        # address, function code, byte count, the data, CRC; -1: not known in advance.
        self._expected_length = -1 if expected_byte_count is None else expected_byte_count + 5
        self._buffer = bytearray()

    def feed(self, data: bytes) -> bytes | NeedData | FrameEndsAtSilence:
        """Add bytes; return the response PDU once a valid frame is found.

        Returns ``FRAME_ENDS_AT_SILENCE`` when the function code's response length cannot be
        counted: the caller then waits for the line's silence and calls ``finish``.

        Raises:
            RemoteProtocolError: nothing valid within ``RTU_HUNT_WINDOW`` bytes.

        """
        if (
            len(data) == self._expected_length
            and not self._buffer
            and data[0] == self._unit_id
            and data[1] == self._function_code
            and data[2] == self._expected_byte_count
            and rtu.crc16(memoryview(data)[:-2]) == data[-2] | (data[-1] << 8)
        ):
            # Fast path: the whole expected answer in one read, what a quiet line delivers;
            # the hunt below finds the same frame, a few microseconds later (bench/gateway).
            return data[1:-2]
        self._buffer += data
        result: bytes | NeedData | FrameEndsAtSilence = NEED_DATA
        while True:
            start = self._find_start()
            if start < 0:
                self._buffer.clear()
                break
            del self._buffer[:start]
            try:
                length = _candidate_length(self._buffer)
            except RemoteProtocolError:
                del self._buffer[0]  # not a frame after all: hunt on from the next byte
                continue
            if length is NEED_DATA or isinstance(length, FrameEndsAtSilence):
                result = length
                break
            if len(self._buffer) < length:
                break
            try:
                _, pdu = rtu.check_frame(self._buffer[:length])
            except RemoteProtocolError:
                del self._buffer[0]
                continue
            del self._buffer[:length]  # returned or skipped: either way no longer held
            if self._is_other_answer(pdu):
                continue
            return pdu
        # Checked on every path that keeps bytes, FRAME_ENDS_AT_SILENCE included: a peer that
        # never falls silent must not make us buffer without bound.
        if len(self._buffer) > RTU_HUNT_WINDOW:
            raise RemoteProtocolError(f"no valid RTU response within {RTU_HUNT_WINDOW} bytes")
        return result

    def finish(self) -> bytes:
        """The line went silent: the buffer holds one whole frame, or nothing valid.

        Raises:
            RemoteProtocolError: the bytes received are not a valid frame.

        """
        unit_id, pdu = rtu.check_frame(self._buffer)
        if unit_id != self._unit_id or (pdu[0] & ~EXCEPTION_FLAG) != self._function_code:
            raise RemoteProtocolError("RTU response does not match the request")
        return pdu

    def _is_other_answer(self, pdu: bytes) -> bool:
        expected = self._expected_byte_count
        return expected is not None and pdu[0] == self._function_code and pdu[1] != expected

    def _find_start(self) -> int:
        buffer = self._buffer
        wanted = (self._function_code, self._function_code | EXCEPTION_FLAG)
        last = len(buffer) - 1
        index = buffer.find(self._unit_id)
        while index >= 0:
            if index == last or buffer[index + 1] in wanted:
                return index  # a last lone address byte may still start the frame
            index = buffer.find(self._unit_id, index + 1)
        return -1
