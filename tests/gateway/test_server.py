"""The upstream listener against real TCP clients and a device that can misbehave."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct

import pytest

from panelhub.config.models import Settings
from panelhub.service import Gateway
from tests.harness import connect, running_gateway
from tests.rawdevice import raw_request, read_pdu


async def assert_closed(reader: asyncio.StreamReader, within_s: float = 3.0) -> None:
    async with asyncio.timeout(within_s):
        with contextlib.suppress(ConnectionResetError):
            assert await reader.read(100) == b""


async def test_answer_keeps_transaction_and_unit_id(raw_device, tcp_bus):
    async with (
        running_gateway(
            buses=[tcp_bus(raw_device)], routes=[{"unit_id": 17, "bus": "dev", "target_unit_id": 1}]
        ) as (_, port),
        connect(port) as (r, w),
    ):
        tid, unit, pdu = await raw_request(r, w, 0xBEEF, 17, read_pdu(2, 3))
    assert (tid, unit) == (0xBEEF, 17)
    assert pdu == struct.pack(">BB3H", 3, 6, 1002, 1003, 1004)
    assert raw_device.requests == [(1, read_pdu(2, 3))]  # the device saw its own unit ID


async def test_unknown_unit_gets_gateway_path_unavailable(raw_device, tcp_bus):
    async with (
        running_gateway(buses=[tcp_bus(raw_device)], routes=[{"unit_id": 1, "bus": "dev"}]) as (
            _,
            port,
        ),
        connect(port) as (r, w),
    ):
        _, _, pdu = await raw_request(r, w, 1, 42, read_pdu(0, 1))
    assert pdu == b"\x83\x0a"


async def test_silent_device_gives_0x0b_within_timeout_then_recovers(raw_device, tcp_bus):
    async with (
        running_gateway(buses=[tcp_bus(raw_device)], routes=[{"unit_id": 1, "bus": "dev"}]) as (
            _,
            port,
        ),
        connect(port) as (r, w),
    ):
        raw_device.silent = True
        loop = asyncio.get_running_loop()
        started = loop.time()
        _, _, pdu = await raw_request(r, w, 1, 1, read_pdu(0, 1))
        elapsed = loop.time() - started
        assert pdu == b"\x83\x0b"
        assert 0.25 <= elapsed < 1.0  # the configured 0.3 s, not the client's patience
        raw_device.silent = False
        _, _, pdu = await raw_request(r, w, 2, 1, read_pdu(0, 1))
        assert pdu == b"\x03\x02\x03\xe8"


async def test_device_down_gives_0x0b_and_reconnects_when_back(raw_device, tcp_bus):
    port_of_device = raw_device.port
    async with (
        running_gateway(buses=[tcp_bus(raw_device)], routes=[{"unit_id": 1, "bus": "dev"}]) as (
            _,
            port,
        ),
        connect(port) as (r, w),
    ):
        assert (await raw_request(r, w, 1, 1, read_pdu(0, 1)))[2] == b"\x03\x02\x03\xe8"
        await raw_device.stop()
        _, _, pdu = await raw_request(r, w, 2, 1, read_pdu(0, 1))
        assert pdu == b"\x83\x0b"
        await raw_device.start(port_of_device)
        async with asyncio.timeout(10):
            while True:  # bounded by the timeout: the link retries after its back-off
                _, _, pdu = await raw_request(r, w, 3, 1, read_pdu(0, 1))
                if pdu != b"\x83\x0b":
                    break
                await asyncio.sleep(0.1)
        assert pdu == b"\x03\x02\x03\xe8"


MALFORMED = {
    "protocol id 1": struct.pack(">HHHB", 1, 1, 6, 1) + read_pdu(0, 1),
    "length 0": struct.pack(">HHH", 1, 0, 0) + b"\x01",
    "length 255": struct.pack(">HHHB", 1, 0, 255, 1) + bytes(254),
    "random bytes": bytes.fromhex("ffee00deadbeef0102030405060708"),
}


@pytest.mark.parametrize("frame", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_frame_closes_only_that_connection(raw_device, tcp_bus, frame):
    async with (
        running_gateway(buses=[tcp_bus(raw_device)], routes=[{"unit_id": 1, "bus": "dev"}]) as (
            _,
            port,
        ),
        connect(port) as (good_r, good_w),
        connect(port) as (bad_r, bad_w),
    ):
        bad_w.write(frame)
        await assert_closed(bad_r)
        _, _, pdu = await raw_request(good_r, good_w, 7, 1, read_pdu(0, 1))
        assert pdu == b"\x03\x02\x03\xe8"


async def test_fuzzed_bytes_never_break_the_listener(raw_device, tcp_bus):
    async with running_gateway(
        buses=[tcp_bus(raw_device)], routes=[{"unit_id": 1, "bus": "dev"}]
    ) as (_, port):
        for _ in range(20):
            async with connect(port) as (r, w):
                w.write(os.urandom(300))
                await assert_closed(r)
        async with connect(port) as (r, w):
            assert (await raw_request(r, w, 1, 1, read_pdu(0, 1)))[2] == b"\x03\x02\x03\xe8"


async def test_truncated_frame_and_slow_client_are_closed(raw_device, tcp_bus):
    async with (
        running_gateway(buses=[tcp_bus(raw_device)], routes=[{"unit_id": 1, "bus": "dev"}]) as (
            _,
            port,
        ),
        connect(port) as (good_r, good_w),
        connect(port) as (slow_r, slow_w),
    ):
        frame = struct.pack(">HHHB", 1, 0, 6, 1) + read_pdu(0, 1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for byte in frame[:5]:  # one byte a ~second-ish, never a whole frame
            slow_w.write(bytes([byte]))
            await asyncio.sleep(0.5)
            # the honest client is served meanwhile
            assert (await raw_request(good_r, good_w, 1, 1, read_pdu(0, 1)))[2][:1] == b"\x03"
            if slow_w.is_closing() or slow_r.at_eof():
                break
        await assert_closed(slow_r, within_s=3.0)
        assert loop.time() - started < 5.0


async def test_allow_list_refuses_other_clients(raw_device, tcp_bus):
    listener = {"name": "up", "port": 0, "allow_clients": ["192.0.2.0/24"]}
    async with (
        running_gateway(
            listeners=[listener], buses=[tcp_bus(raw_device)], routes=[{"unit_id": 1, "bus": "dev"}]
        ) as (_, port),
        connect(port) as (r, _),
    ):
        await assert_closed(r)
    assert raw_device.connections == 0


async def test_connection_limits(raw_device, tcp_bus):
    listener = {"name": "up", "port": 0, "max_connections": 3, "max_connections_per_client": 2}
    async with running_gateway(
        listeners=[listener], buses=[tcp_bus(raw_device)], routes=[{"unit_id": 1, "bus": "dev"}]
    ) as (gateway, port):
        async with connect(port) as (r1, w1), connect(port) as (r2, w2), connect(port) as (r3, _):
            await assert_closed(r3)
            for r, w in ((r1, w1), (r2, w2)):
                assert (await raw_request(r, w, 1, 1, read_pdu(0, 1)))[2][:1] == b"\x03"
        await asyncio.sleep(0.1)
        assert not gateway.listeners[0].connections  # released when clients leave
        async with connect(port) as (r, w):
            assert (await raw_request(r, w, 1, 1, read_pdu(0, 1)))[2][:1] == b"\x03"


async def test_read_only_listener_and_function_code_list(raw_device, tcp_bus, caplog):
    listener = {
        "name": "up",
        "port": 0,
        "is_read_only": True,
        "allow_function_codes": [3, 4, 6, 16],
    }
    async with (
        running_gateway(
            listeners=[listener], buses=[tcp_bus(raw_device)], routes=[{"unit_id": 1, "bus": "dev"}]
        ) as (_, port),
        connect(port) as (r, w),
    ):
        assert (await raw_request(r, w, 1, 1, struct.pack(">BHH", 6, 0, 5)))[2] == b"\x86\x01"
        assert (await raw_request(r, w, 2, 1, struct.pack(">BHH", 6, 0, 5)))[2] == b"\x86\x01"
        assert (await raw_request(r, w, 3, 1, struct.pack(">BHH", 1, 0, 5)))[2] == b"\x81\x01"
        assert (await raw_request(r, w, 4, 1, read_pdu(0, 1)))[2][:1] == b"\x03"
    assert raw_device.requests == [(1, read_pdu(0, 1))]  # refused requests never reach it
    refusals = [
        r for r in caplog.records if r.name == "panelhub.audit" and "refused" in r.getMessage()
    ]
    assert len(refusals) == 2  # one line per reason, not per request


async def test_unit_allow_list(raw_device, tcp_bus):
    listener = {"name": "up", "port": 0, "allow_unit_ids": [1]}
    async with (
        running_gateway(
            listeners=[listener], buses=[tcp_bus(raw_device)], gateway={"default_bus": "dev"}
        ) as (_, port),
        connect(port) as (r, w),
    ):
        assert (await raw_request(r, w, 1, 2, read_pdu(0, 1)))[2] == b"\x83\x01"
        assert (await raw_request(r, w, 2, 1, read_pdu(0, 1)))[2][:1] == b"\x03"


async def test_expired_request_is_never_answered(raw_device, tcp_bus):
    raw_device.delay_s = 1.3
    bus = tcp_bus(raw_device, response_timeout_s=3.0)
    async with (
        running_gateway(
            buses=[bus], routes=[{"unit_id": 1, "bus": "dev"}], gateway={"request_ttl_ms": 1000}
        ) as (_, port),
        connect(port) as (r, w),
    ):
        w.write(struct.pack(">HHHB", 1, 0, 6, 1) + read_pdu(0, 1))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2.0):
                await r.readexactly(7)
        raw_device.delay_s = 0
        tid, _, pdu = await raw_request(r, w, 2, 1, read_pdu(0, 1))
        assert (tid, pdu) == (2, b"\x03\x02\x03\xe8")  # and no stale answer to request 1


async def test_full_queue_answers_busy(raw_device, tcp_bus):
    raw_device.delay_s = 0.2
    async with (
        running_gateway(
            buses=[tcp_bus(raw_device, queue_size=1)], routes=[{"unit_id": 1, "bus": "dev"}]
        ) as (_, port),
        connect(port) as (r, w),
    ):
        for tid in range(1, 5):  # pipelined: one in flight, one queued, two refused
            w.write(struct.pack(">HHHB", tid, 0, 6, 1) + read_pdu(0, 1))
        answers = {}
        for _ in range(4):
            header = await r.readexactly(7)
            tid, _, length, _ = struct.unpack(">HHHB", header)
            answers[tid] = await r.readexactly(length - 1)
    assert sorted(answers.values()).count(b"\x83\x06") == 2
    assert answers[1] == b"\x03\x02\x03\xe8"


async def test_idle_connection_is_closed(raw_device, tcp_bus):
    listener = {"name": "up", "port": 0, "idle_timeout_s": 0.3}
    async with (
        running_gateway(listeners=[listener], buses=[tcp_bus(raw_device)]) as (_, port),
        connect(port) as (r, _),
    ):
        await assert_closed(r, within_s=2.5)


async def test_unit_255_is_the_gateway(raw_device, tcp_bus):
    async with (
        running_gateway(
            buses=[tcp_bus(raw_device)], gateway={"identity": {"serial_number": "PH0000000001"}}
        ) as (_, port),
        connect(port) as (r, w),
    ):
        _, unit, pdu = await raw_request(r, w, 9, 255, read_pdu(100, 6))
    assert unit == 255
    assert pdu[2:14] == b"PH0000000001"
    assert raw_device.requests == []


async def test_one_request_at_a_time_per_device_unless_configured(raw_device, tcp_bus):
    raw_device.delay_s = 0.1
    routes = [{"unit_id": 1, "bus": "dev"}]

    async def four_clients(port: int) -> float:
        async def one(tid: int) -> bytes:
            async with connect(port) as (r, w):
                return (await raw_request(r, w, tid, 1, read_pdu(0, 1)))[2]

        loop = asyncio.get_running_loop()
        started = loop.time()
        answers = await asyncio.gather(*(one(tid) for tid in range(4)))
        assert answers == [b"\x03\x02\x03\xe8"] * 4
        return loop.time() - started

    async with running_gateway(buses=[tcp_bus(raw_device)], routes=routes) as (_, port):
        serial_s = await four_clients(port)
    assert raw_device.most_outstanding == 1
    assert serial_s >= 0.4
    raw_device.most_outstanding = 0
    bus = tcp_bus(raw_device, max_in_flight=4)
    async with running_gateway(buses=[bus], routes=routes) as (_, port):
        overlapped_s = await four_clients(port)
    assert raw_device.most_outstanding == 4
    assert overlapped_s < 0.3


async def test_disabled_listener_does_not_listen(raw_device, tcp_bus):
    listeners = [{"name": "on", "port": 0}, {"name": "off", "port": 0, "enable": False}]
    async with running_gateway(listeners=listeners, buses=[tcp_bus(raw_device)]) as (gateway, _):
        assert [listener.config.name for listener in gateway.listeners] == ["on"]


async def test_shutdown_answers_requests_under_way_before_closing_connections(raw_device, tcp_bus):
    raw_device.delay_s = 0.3
    settings = {
        "listeners": [{"name": "up", "port": 0}],
        "buses": [tcp_bus(raw_device, response_timeout_s=1.0)],
        "routes": [{"unit_id": 1, "bus": "dev"}],
    }
    gateway = Gateway(Settings.model_validate(settings))
    await gateway.start()
    port = gateway.listeners[0].address[1]
    closing = None
    try:
        async with connect(port) as (r, w):
            w.write(struct.pack(">HHHB", 7, 0, 6, 1) + read_pdu(0, 1))
            async with asyncio.timeout(2):
                while not raw_device.requests:  # noqa: ASYNC110 - bounded, a test probe
                    await asyncio.sleep(0.01)
            closing = asyncio.ensure_future(gateway.aclose())
            async with asyncio.timeout(2):
                header = await r.readexactly(7)
                pdu = await r.readexactly(struct.unpack(">HHHB", header)[2] - 1)
            assert (struct.unpack(">H", header[:2])[0], pdu) == (7, b"\x03\x02\x03\xe8")
            with pytest.raises(ConnectionRefusedError):  # no new connections are accepted
                await asyncio.open_connection("127.0.0.1", port)
            await assert_closed(r)  # then the connection is closed
    finally:
        await (closing if closing is not None else gateway.aclose())
