"""Downstream link faults, seen from an upstream client: what breaks, and that it heals."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from panelhub.errors import TransportError
from panelhub.transport.bus import Bus, Transaction
from panelhub.transport.serial import LineSettings, SerialLink
from panelhub.transport.tcp import LinkState, TCPLink
from tests.harness import connect, running_gateway
from tests.peers import socat_pty_pair
from tests.rawdevice import raw_request, read_pdu
from tests.rawrtu import RawRTUServer, frame

GOOD = b"\x03\x02\x03\xe8"


async def test_device_sending_garbage_is_reconnected(raw_device, tcp_bus):
    original = raw_device.answer
    raw_device.answer = lambda pdu: b""  # an MBAP length of 1: invalid
    async with (
        running_gateway(buses=[tcp_bus(raw_device)], routes=[{"unit_id": 1, "bus": "dev"}]) as (
            _,
            port,
        ),
        connect(port) as (r, w),
    ):
        assert (await raw_request(r, w, 1, 1, read_pdu(0, 1)))[2] == b"\x83\x0b"
        raw_device.answer = original
        assert (await raw_request(r, w, 2, 1, read_pdu(0, 1)))[2] == GOOD
    assert raw_device.connections == 2


async def test_device_closing_mid_request_fails_fast_then_reconnects(raw_device, tcp_bus):
    def hang_up(pdu: bytes) -> bytes:
        for connection in list(raw_device.open):
            connection.transport.close()
        return b"\x03\x02\x00\x00"

    original = raw_device.answer
    raw_device.answer = hang_up
    bus = tcp_bus(raw_device, response_timeout_s=5.0)
    async with (
        running_gateway(buses=[bus], routes=[{"unit_id": 1, "bus": "dev"}]) as (_, port),
        connect(port) as (r, w),
    ):
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert (await raw_request(r, w, 1, 1, read_pdu(0, 1)))[2] == b"\x83\x0b"
        assert loop.time() - started < 1.0  # not the 5 s response timeout
        raw_device.answer = original
        assert (await raw_request(r, w, 2, 1, read_pdu(0, 1)))[2] == GOOD


async def test_repeated_timeouts_reset_the_connection(raw_device, tcp_bus):
    bus = tcp_bus(raw_device, response_timeout_s=0.1)
    async with (
        running_gateway(buses=[bus], routes=[{"unit_id": 1, "bus": "dev"}]) as (_, port),
        connect(port) as (r, w),
    ):
        raw_device.silent = True
        for tid in range(3):
            assert (await raw_request(r, w, tid, 1, read_pdu(0, 1)))[2] == b"\x83\x0b"
        raw_device.silent = False
        assert (await raw_request(r, w, 9, 1, read_pdu(0, 1)))[2] == GOOD
    assert raw_device.connections == 2  # a fresh session after three timeouts in a row


def rtu_bus(path: Path, **extra: Any) -> dict[str, Any]:
    return {"kind": "rtu", "name": "line", "device": str(path), "parity": "N",
            "frame_gap_s": 0.0, "response_timeout_s": 0.3, **extra}  # fmt: skip


@contextlib.asynccontextmanager
async def gateway_on_rtu_line(
    tmp_path: Path, respond: Callable[[bytes], bytes], **bus_extra: Any
) -> AsyncIterator[tuple[RawRTUServer, asyncio.StreamReader, asyncio.StreamWriter]]:
    """A scripted RTU server on a pty line, the gateway in front of it, and one client."""
    async with socat_pty_pair(tmp_path) as pair:
        server = RawRTUServer(pair.device, respond)
        try:
            bus = rtu_bus(pair.client, **bus_extra)
            async with (
                running_gateway(buses=[bus], gateway={"default_bus": "line"}) as (_, port),
                connect(port) as (reader, writer),
            ):
                yield server, reader, writer
        finally:
            server.close()


@pytest.mark.parametrize(
    ("noise", "expected"),
    [
        (b"", GOOD),
        (b"\xff\x00\x13", GOOD),  # line noise before the answer
        (frame(b"\x01\x03\x02\x00\x07")[:-1] + b"\x00", b"\x83\x0b"),  # bad CRC, nothing else
    ],
    ids=["clean", "noise first", "bad crc"],
)
async def test_rtu_resynchronises_after_noise_and_rejects_bad_crc(
    tmp_path: Path, noise: bytes, expected: bytes
):
    def respond(request: bytes) -> bytes:
        if noise and noise[0] == 0x01:
            return noise  # a corrupted answer only
        return noise + frame(b"\x01\x03\x02\x03\xe8")

    async with gateway_on_rtu_line(tmp_path, respond) as (server, r, w):
        assert (await raw_request(r, w, 1, 1, read_pdu(0, 1)))[2] == expected
        # and the line works for the next request whatever happened
        server.respond = lambda request: frame(b"\x01\x03\x02\x00\x2a")
        assert (await raw_request(r, w, 2, 1, read_pdu(0, 1)))[2] == b"\x03\x02\x00\x2a"
    assert server.requests[0] == frame(b"\x01\x03\x00\x00\x00\x01")


async def test_rtu_response_of_uncountable_length_ends_at_silence(tmp_path):
    # Diagnostics "return query data" (§6.8 sub-function 0) echoes data of any length.
    query = struct.pack(">BH", 8, 0) + b"hello, line!"
    echo = gateway_on_rtu_line(
        tmp_path, lambda request: request, frame_gap_s=None, baud_rate=115200
    )
    async with echo as (_, r, w):  # an echo is the answer
        assert (await raw_request(r, w, 1, 1, query))[2] == query


async def test_missing_serial_port_answers_0x0b_and_opens_when_it_appears(tmp_path):
    missing = tmp_path / "client"
    async with (
        running_gateway(buses=[rtu_bus(missing)], gateway={"default_bus": "line"}) as (_, port),
        connect(port) as (r, w),
    ):
        assert (await raw_request(r, w, 1, 1, read_pdu(0, 1)))[2] == b"\x83\x0b"
        async with socat_pty_pair(tmp_path) as pair:
            server = RawRTUServer(pair.device, lambda request: frame(b"\x01\x03\x02\x03\xe8"))
            try:
                async with asyncio.timeout(10):
                    while True:  # bounded: the port is retried after its back-off
                        pdu = (await raw_request(r, w, 2, 1, read_pdu(0, 1)))[2]
                        if pdu == GOOD:
                            break
                        await asyncio.sleep(0.1)
            finally:
                server.close()


async def test_request_queued_behind_the_third_timeout_goes_to_the_fresh_connection(
    raw_device, tcp_bus
):
    bus = tcp_bus(raw_device, response_timeout_s=0.1)
    async with (
        running_gateway(buses=[bus], routes=[{"unit_id": 1, "bus": "dev"}]) as (_, port),
        connect(port) as (r, w),
    ):
        raw_device.silent = True
        for tid in range(2):
            assert (await raw_request(r, w, tid, 1, read_pdu(0, 1)))[2] == b"\x83\x0b"
        # The third request times out and resets the session; the fourth waits behind it.
        for tid in (2, 3):
            w.write(struct.pack(">HHHB", tid, 0, 6, 1) + read_pdu(0, 1))
        async with asyncio.timeout(2):
            while len(raw_device.requests) < 3:  # noqa: ASYNC110 - bounded, a test probe
                await asyncio.sleep(0.01)
        raw_device.silent = False
        answers = {}
        for _ in range(2):
            header = await r.readexactly(7)
            tid, _, length, _ = struct.unpack(">HHHB", header)
            answers[tid] = await r.readexactly(length - 1)
    assert answers == {2: b"\x83\x0b", 3: GOOD}  # not a 0x0B from the connection being dropped
    assert raw_device.connections == 2


async def _gaps_between_requests(
    tmp_path: Path,
    requests: list[tuple[int, bytes]],
    respond: Callable[[bytes], bytes],
    **bus_extra: Any,
) -> list[float]:
    """Send ``requests`` (unit, pdu) one after the other; the silences the device saw."""
    loop = asyncio.get_running_loop()
    seen: list[float] = []

    def record(request: bytes) -> bytes:
        seen.append(loop.time())
        answer: bytes = respond(request)
        return answer

    async with gateway_on_rtu_line(tmp_path, record, **bus_extra) as (_, r, w):
        for tid, (unit, pdu) in enumerate(requests):
            if unit == 0:  # a broadcast: no answer comes
                w.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, 0) + pdu)
                await asyncio.sleep(0.05)  # the next request comes after the noise
            else:
                assert (await raw_request(r, w, tid, unit, pdu))[2] == GOOD
    return [later - earlier for earlier, later in itertools.pairwise(seen)]


async def test_rtu_broadcast_turnaround_survives_line_noise(tmp_path):
    # An RS-485 adapter that echoes what it sends, or any noise after a broadcast, must not cut
    # short the turnaround delay the servers need to act on the broadcast (§2.4.1).
    def respond(request: bytes) -> bytes:
        return b"\x00\xff" if request[0] == 0 else frame(b"\x01\x03\x02\x03\xe8")

    write = struct.pack(">BHH", 6, 0, 1)
    requests = [(0, write), (1, read_pdu(0, 1))]
    gaps = await _gaps_between_requests(tmp_path, requests, respond, turnaround_delay_s=0.3)
    assert gaps[0] >= 0.3


async def test_rtu_inter_frame_delay_is_kept_between_transactions(tmp_path):
    gaps = await _gaps_between_requests(
        tmp_path,
        [(1, read_pdu(0, 1))] * 3,
        lambda request: frame(b"\x01\x03\x02\x03\xe8"),
        inter_frame_delay_s=0.2,
    )
    assert min(gaps) >= 0.2


async def test_closed_rtu_bus_sends_nothing_more_and_keeps_its_port_closed(tmp_path):
    # With retries, the transaction failed by the close must not be retried on the line.
    async with socat_pty_pair(tmp_path) as pair:
        server = RawRTUServer(pair.device, lambda request: b"")  # a silent device
        try:
            link = SerialLink(
                LineSettings(str(pair.client), 19200, parity="N", response_timeout_s=0.1)
            )
            bus = Bus("line", link, queue_size=4, retries=2)
            results: list[object] = []
            bus.submit(Transaction(1, read_pdu(0, 1), results.append))
            async with asyncio.timeout(2):
                while not server.requests:  # noqa: ASYNC110 - bounded, a test probe
                    await asyncio.sleep(0.01)
            await bus.aclose()
            await asyncio.sleep(0.4)  # past every response timeout and retry
            assert len(server.requests) == 1
            assert len(results) == 1
            assert isinstance(results[0], TransportError)
            with pytest.raises(TransportError):  # and nothing new is taken
                bus.submit(Transaction(1, read_pdu(0, 1), results.append))
            assert link._port is None
        finally:
            server.close()


async def test_unresolvable_host_name_answers_0x0b_every_time(tcp_bus, raw_device):
    # A DNS label over 63 characters fails in the IDNA codec (UnicodeError), not in the resolver.
    bus = tcp_bus(raw_device, host="x" * 64 + ".invalid")
    async with (
        running_gateway(buses=[bus], routes=[{"unit_id": 1, "bus": "dev"}]) as (_, port),
        connect(port) as (r, w),
        asyncio.timeout(2),
    ):
        for tid in range(2):
            assert (await raw_request(r, w, tid, 1, read_pdu(0, 1)))[2] == b"\x83\x0b"


async def test_connection_completing_after_close_is_not_used():
    class Transport:
        closed = False

        def close(self) -> None:
            self.closed = True

    link = TCPLink(host="127.0.0.1", port=9, connect_timeout_s=1, response_timeout_s=1)
    await link.aclose()
    late = Transport()
    link.connection_made(late)  # type: ignore[arg-type]  # only close() is used
    assert late.closed
    assert link.state is LinkState.CLOSED


async def test_rtu_late_answer_to_another_read_is_not_taken(tmp_path: Path):
    late = frame(b"\x01\x03\x02\x00\x07")  # answers a 1-register read that timed out
    ours = frame(b"\x01\x03\x04\x00\x01\x00\x02")
    async with gateway_on_rtu_line(tmp_path, lambda request: late + ours) as (_, r, w):
        assert (await raw_request(r, w, 1, 1, read_pdu(0, 2)))[2] == ours[1:-2]
