"""A minimal Modbus TCP server for fault tests: answers FC 3 from memory, can fall silent.

Written from the spec, independent of PanelHub's codec, so it checks the gateway from outside.
The interop tests use pymodbus; this one exists because it can be told to misbehave.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any


class RawDevice(asyncio.Protocol):
    def __init__(self, owner: RawDeviceServer) -> None:
        self.owner = owner
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport):
        self.transport = transport
        self.owner.connections += 1
        self.owner.open.add(self)

    def connection_lost(self, exc):
        self.owner.open.discard(self)

    def data_received(self, data):
        self.buffer += data
        while len(self.buffer) >= 7:
            tid, _, length, unit = struct.unpack(">HHHB", self.buffer[:7])
            if len(self.buffer) < 6 + length:
                return
            pdu, self.buffer = self.buffer[7 : 6 + length], self.buffer[6 + length :]
            self.owner.requests.append((unit, pdu))
            if self.owner.silent:
                continue
            answer = self.owner.answer(pdu)
            frame = struct.pack(">HHHB", tid, 0, len(answer) + 1, unit) + answer
            self.owner.outstanding += 1
            self.owner.most_outstanding = max(self.owner.most_outstanding, self.owner.outstanding)
            if self.owner.delay_s:
                asyncio.get_running_loop().call_later(self.owner.delay_s, self.send, frame)
            else:
                self.send(frame)

    def send(self, frame: bytes) -> None:
        self.owner.outstanding -= 1
        if not self.transport.is_closing():
            self.transport.write(frame)


class RawDeviceServer:
    def __init__(self, registers: list[int] | None = None) -> None:
        self.registers = registers if registers is not None else list(range(1000, 1100))
        self.silent = False
        self.delay_s = 0.0
        self.connections = 0
        self.outstanding = 0  # requests received and not yet answered
        self.most_outstanding = 0
        self.requests: list[tuple[int, bytes]] = []
        self.open: set[RawDevice] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    def answer(self, pdu: bytes) -> bytes:
        if pdu[0] != 3:
            return bytes([pdu[0] | 0x80, 1])
        address, count = struct.unpack(">HH", pdu[1:5])
        values = self.registers[address : address + count]
        if len(values) != count:
            return b"\x83\x02"
        return struct.pack(f">BB{count}H", 3, 2 * count, *values)

    async def start(self, port: int = 0) -> RawDeviceServer:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: RawDevice(self), "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for connection in list(self.open):
            connection.transport.abort()
        await self.server.wait_closed()


async def raw_request(reader, writer, tid: int, unit: int, pdu: bytes) -> tuple[int, int, bytes]:
    """Send one MBAP request and read one answer: (transaction id, unit id, pdu)."""
    writer.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)
    await writer.drain()
    header = await reader.readexactly(7)
    answer_tid, protocol, length, answer_unit = struct.unpack(">HHHB", header)
    assert protocol == 0
    return answer_tid, answer_unit, await reader.readexactly(length - 1)


def read_pdu(address: int, count: int) -> bytes:
    return struct.pack(">BHH", 3, address, count)
