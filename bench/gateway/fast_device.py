#!/usr/bin/env python3
"""A Modbus server that answers "read holding registers" from memory, doing as little as it can.

It stands in for the field device in the gateway benchmark, so that the time measured
belongs to the gateway and not to the device. Two modes:

``tcp``  asyncio Protocol (uvloop when installed). Each connection's requests are answered
         in arrival order, one at a time, straight from ``data_received``. Any unit id.
``rtu``  a blocking loop on a serial path (one end of a pty pair). Optionally paced to a baud
         rate: the response is released only when the request and response bytes would have
         finished crossing a real line (``--baud`` with ``--pace``).

Only function code 0x03 is served; anything else gets exception 0x01 (Illegal Function),
an out-of-range read gets 0x02 (Illegal Data Address). Responses are cached by request
bytes, because the register array never changes during a run.

Example::

    python bench/gateway/fast_device.py tcp --port 15020
    python bench/gateway/fast_device.py rtu --serial /dev/pts/7 --baud 19200 --parity E --pace
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import select
import struct
import sys
import termios
import time
import tty
from typing import Final, cast

REGISTER_COUNT: Final = 10_000  # big enough for any address the benchmark reads
MAX_READ_COUNT: Final = 125  # Modbus Application Protocol v1.1b3 §6.3
MBAP_HEADER_SIZE: Final = 7
MAX_MBAP_LENGTH: Final = 254  # unit id + 253-byte PDU (MBAP spec §3.1.3)
RTU_READ_REQUEST_SIZE: Final = 8  # unit, fc, address(2), count(2), crc(2)
SELECT_TIMEOUT_S: Final = 0.5  # how often the RTU loop checks its deadline
# time.sleep() overshoots by 0.1-0.7 ms on a VM; sleep until this close to the release
# time, then poll the clock. Costs about 3 % of a core at 19,200 baud, keeps error < 10 us.
SPIN_WINDOW_S: Final = 0.001
DEFAULT_LIFETIME_S: Final = 1800.0  # a leaked device still exits on its own
FC_READ_HOLDING: Final = 0x03
EXC_ILLEGAL_FUNCTION: Final = 0x01
EXC_ILLEGAL_ADDRESS: Final = 0x02

REGISTERS: Final = bytes(struct.pack(f">{REGISTER_COUNT}H", *range(REGISTER_COUNT)))


def _build_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC_TABLE: Final = _build_crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS (Modbus over Serial Line v1.02 §6.2.2)."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def answer_pdu(pdu: bytes) -> bytes:
    """Turn a request PDU (function code first) into the response PDU."""
    function_code = pdu[0]
    if function_code != FC_READ_HOLDING or len(pdu) != 5:
        return bytes((function_code | 0x80, EXC_ILLEGAL_FUNCTION))
    address, count = struct.unpack_from(">HH", pdu, 1)
    if not 1 <= count <= MAX_READ_COUNT or address + count > REGISTER_COUNT:
        return bytes((function_code | 0x80, EXC_ILLEGAL_ADDRESS))
    return bytes((function_code, 2 * count)) + REGISTERS[2 * address : 2 * (address + count)]


class TCPDevice(asyncio.Protocol):
    """One client connection; answers each complete MBAP frame immediately."""

    def __init__(self, cache: dict[bytes, bytes]) -> None:
        self._buffer = bytearray()
        self._cache = cache
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance check.
        self._transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= MBAP_HEADER_SIZE:
            length = (buffer[4] << 8) | buffer[5]
            if not 2 <= length <= MAX_MBAP_LENGTH:
                self._abort()
                return
            end = 6 + length
            if len(buffer) < end:
                return
            self._reply(bytes(buffer[:end]))
            del buffer[:end]

    def _reply(self, frame: bytes) -> None:
        body = frame[6:]  # unit id + PDU: the cache key, so any unit id is served
        response = self._cache.get(body)
        if response is None:
            pdu = answer_pdu(body[1:])
            response = struct.pack(">H", len(pdu) + 1) + body[:1] + pdu
            self._cache[body] = response
        assert self._transport is not None
        self._transport.write(frame[:4] + response)

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


async def serve_tcp(host: str, port: int, *, lifetime_s: float) -> None:
    loop = asyncio.get_running_loop()
    cache: dict[bytes, bytes] = {}
    server = await loop.create_server(lambda: TCPDevice(cache), host, port, reuse_address=True)
    async with server:
        await asyncio.sleep(lifetime_s)


def bits_per_char(parity: str, stop_bits: int) -> int:
    """Start bit + 8 data bits + optional parity bit + stop bits."""
    return 1 + 8 + (0 if parity == "N" else 1) + stop_bits


def open_line(path: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    termios.tcflush(fd, termios.TCIOFLUSH)
    return fd


def rtu_response(request: bytes) -> bytes:
    body = request[:1] + answer_pdu(request[1:6])
    return body + struct.pack("<H", crc16(body))


def take_request(buffer: bytearray) -> bytes | None:
    """Pop one CRC-valid 8-byte request off the front, skipping garbage a byte at a time."""
    while len(buffer) >= RTU_READ_REQUEST_SIZE:
        candidate = bytes(buffer[:RTU_READ_REQUEST_SIZE])
        if struct.unpack_from("<H", candidate, 6)[0] == crc16(candidate[:6]):
            del buffer[:RTU_READ_REQUEST_SIZE]
            return candidate
        del buffer[0]
    return None


def wait_until(release_at: float) -> None:
    coarse_s = release_at - time.perf_counter() - SPIN_WINDOW_S
    if coarse_s > 0:
        time.sleep(coarse_s)
    while time.perf_counter() < release_at:
        pass


def serve_rtu(path: str, *, char_time_s: float, lifetime_s: float) -> None:
    """Answer requests on ``path``; ``char_time_s`` > 0 paces to that character time."""
    fd = open_line(path)
    cache: dict[bytes, bytes] = {}
    buffer = bytearray()
    deadline = time.monotonic() + lifetime_s
    while time.monotonic() < deadline:
        readable, _, _ = select.select([fd], [], [], SELECT_TIMEOUT_S)
        if not readable:
            continue
        received_at = time.perf_counter()
        buffer += os.read(fd, 4096)
        while (request := take_request(buffer)) is not None:
            response = cache.get(request)
            if response is None:
                response = cache[request] = rtu_response(request)
            if char_time_s > 0:
                # The bytes crossed the pty at once; a real line would still be busy
                # carrying the request and then the response.
                release_at = received_at + (len(request) + len(response)) * char_time_s
                wait_until(release_at)
            os.write(fd, response)


def install_uvloop() -> str:
    try:
        import uvloop  # noqa: PLC0415 - optional accelerator
    except ImportError:
        return "asyncio"
    uvloop.install()
    return "uvloop"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lifetime-s", type=float, default=DEFAULT_LIFETIME_S)
    modes = parser.add_subparsers(dest="mode", required=True)
    tcp = modes.add_parser("tcp")
    tcp.add_argument("--host", default="127.0.0.1")
    tcp.add_argument("--port", type=int, required=True)
    rtu = modes.add_parser("rtu")
    rtu.add_argument("--serial", required=True)
    rtu.add_argument("--baud", type=int, default=19200)
    rtu.add_argument("--parity", choices=["N", "E", "O"], default="E")
    rtu.add_argument("--stop-bits", type=int, choices=[1, 2], default=1)
    rtu.add_argument("--pace", action="store_true", help="keep real line timing at --baud")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.mode == "tcp":
        install_uvloop()
        asyncio.run(serve_tcp(args.host, args.port, lifetime_s=args.lifetime_s))
        return
    char_time_s = bits_per_char(args.parity, args.stop_bits) / args.baud if args.pace else 0.0
    serve_rtu(args.serial, char_time_s=char_time_s, lifetime_s=args.lifetime_s)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main(sys.argv[1:])
