#!/usr/bin/env python3
"""A bare-bones Modbus TCP forwarder: the reference floor for what Python can do here.

Many client connections share one link to the device (a TCP connection, or a serial
line speaking RTU); requests go through it one at a time, in arrival order, and each
response goes back to the client whose request is at the head of the queue. No
validation, no timeouts, no unit mapping, no t3.5 silence: it shows how fast a Python
gateway can be before it does any of a gateway's work.

Example::

    python bench/gateway/bare_forwarder.py --port 15503 --device-port 15020
    python bench/gateway/bare_forwarder.py --port 15503 --serial /dev/pts/3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import struct
from collections import deque
from typing import Final, Protocol, cast

from fast_device import crc16, open_line

MBAP_HEADER_SIZE: Final = 6
READ_SIZE: Final = 4096
DEFAULT_LIFETIME_S: Final = 1800.0  # a leaked forwarder still exits on its own


def split_frames(buffer: bytearray) -> list[bytes]:
    """Pop every complete MBAP frame off the front of ``buffer``."""
    frames = []
    while len(buffer) >= MBAP_HEADER_SIZE:
        end = MBAP_HEADER_SIZE + ((buffer[4] << 8) | buffer[5])
        if len(buffer) < end:
            break
        frames.append(bytes(buffer[:end]))
        del buffer[:end]
    return frames


class DeviceLink(asyncio.Protocol):
    """The single connection to the device, with one request outstanding at most."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._queue: deque[tuple[bytes, asyncio.Transport]] = deque()
        self._transport: asyncio.Transport | None = None
        self._is_busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)

    def submit(self, frame: bytes, client: asyncio.Transport) -> None:
        self._queue.append((frame, client))
        if not self._is_busy:
            self._send_head()

    def _send_head(self) -> None:
        self._is_busy = bool(self._queue)
        if self._is_busy and self._transport is not None:
            self._transport.write(self._queue[0][0])

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        for frame in split_frames(self._buffer):
            _, client = self._queue.popleft()
            if not client.is_closing():
                client.write(frame)
            self._send_head()


class SerialDeviceLink:
    """An RTU line with one request outstanding; a response ends when its length is reached."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._queue: deque[tuple[bytes, asyncio.Transport]] = deque()
        self._is_busy = False
        asyncio.get_running_loop().add_reader(fd, self._on_readable)

    def submit(self, frame: bytes, client: asyncio.Transport) -> None:
        self._queue.append((frame, client))
        if not self._is_busy:
            self._send_head()

    def _send_head(self) -> None:
        self._is_busy = bool(self._queue)
        if self._is_busy:
            body = self._queue[0][0][MBAP_HEADER_SIZE:]
            os.write(self._fd, body + struct.pack("<H", crc16(body)))

    def _on_readable(self) -> None:
        buffer = self._buffer
        buffer += os.read(self._fd, READ_SIZE)
        if len(buffer) < 3:
            return
        # unit, fc, exception code | byte count ... and 2 bytes of CRC (FC 3 only).
        size = 5 if buffer[1] & 0x80 else 5 + buffer[2]
        if len(buffer) < size or not self._queue:
            return
        body = bytes(buffer[: size - 2])
        buffer.clear()
        frame, client = self._queue.popleft()
        if not client.is_closing():
            client.write(frame[:4] + struct.pack(">H", len(body)) + body)
        self._send_head()


class Submitter(Protocol):
    def submit(self, frame: bytes, client: asyncio.Transport) -> None: ...


class ClientLink(asyncio.Protocol):
    def __init__(self, device: Submitter) -> None:
        self._device = device
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        assert self._transport is not None
        for frame in split_frames(self._buffer):
            self._device.submit(frame, self._transport)


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    device: Submitter
    if args.serial is not None:
        device = SerialDeviceLink(open_line(args.serial))
    else:
        _, device = await loop.create_connection(DeviceLink, args.device_host, args.device_port)
    server = await loop.create_server(lambda: ClientLink(device), args.host, args.port)
    async with server:
        await asyncio.sleep(args.lifetime_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device-host", default="127.0.0.1")
    link = parser.add_mutually_exclusive_group(required=True)
    link.add_argument("--device-port", type=int, help="device speaking Modbus TCP")
    link.add_argument("--serial", help="serial line with the device speaking RTU")
    parser.add_argument("--lifetime-s", type=float, default=DEFAULT_LIFETIME_S)
    args = parser.parse_args()
    try:
        import uvloop  # noqa: PLC0415 - optional accelerator
    except ImportError:
        asyncio.run(serve(args))
    else:
        uvloop.run(serve(args))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
