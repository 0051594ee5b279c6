"""A scriptable RTU server on one end of a pty pair, for line faults pymodbus cannot produce.

Each request gets whatever ``respond`` returns: valid frames, noise before them, a bad CRC,
or nothing. Written from the spec (CRC computed bit by bit here), not with PanelHub's codec.
"""

from __future__ import annotations

import asyncio
import os
import termios
import tty
from collections.abc import Callable
from pathlib import Path


def crc(data: bytes) -> bytes:
    value = 0xFFFF
    for byte in data:
        value ^= byte
        for _ in range(8):
            value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
    return bytes((value & 0xFF, value >> 8))


def frame(body: bytes) -> bytes:
    return body + crc(body)


class RawRTUServer:
    """Reads requests (delimited by a short silence) and writes ``respond(request)``."""

    def __init__(self, path: Path, respond: Callable[[bytes], bytes]) -> None:
        self.respond = respond
        self.requests: list[bytes] = []
        self._fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self._fd, termios.TCSANOW)
        self._buffer = b""
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        try:
            self._buffer += os.read(self._fd, 512)
        except BlockingIOError:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(0.005, self._request_complete)

    def _request_complete(self) -> None:
        request, self._buffer = self._buffer, b""
        self.requests.append(request)
        answer = self.respond(request)
        if answer:
            os.write(self._fd, answer)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
