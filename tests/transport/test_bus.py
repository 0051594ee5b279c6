"""The Bus against a scripted link: ordering, priorities, bounds, time-to-live, retries."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from panelhub.errors import (
    BusBusyError,
    ModbusError,
    RequestExpiredError,
    ResponseTimeoutError,
    TransportError,
)
from panelhub.transport.bus import GATEWAY_BURST, Bus, Priority, Result, Transaction


class ScriptedLink:
    """A link that answers when the test says so; records what it was asked, in order."""

    peer = "scripted"

    def __init__(self, capacity: int = 1) -> None:
        self.capacity = capacity
        self.started: list[Transaction] = []
        self.active: list[Transaction] = []
        self.closed = False
        self._on_result: Callable[[Transaction, Result], None] | None = None

    def attach(self, on_result: Callable[[Transaction, Result], None]) -> None:
        self._on_result = on_result

    def begin(self, transaction: Transaction) -> None:
        self.started.append(transaction)
        self.active.append(transaction)

    def answer(self, result: Result | None = None) -> None:
        transaction = self.active.pop(0)
        assert self._on_result is not None
        self._on_result(
            transaction, b"\x03\x02" + transaction.pdu[:2] if result is None else result
        )

    async def aclose(self) -> None:
        self.closed = True


def make(results: list[object], pdu: bytes = b"\x03\x00\x00\x00\x01", **kwargs) -> Transaction:
    return Transaction(1, pdu, results.append, **kwargs)


async def test_one_transaction_at_a_time_in_arrival_order():
    link = ScriptedLink()
    bus = Bus("b", link, queue_size=10)
    results: list[object] = []
    for i in range(3):
        bus.submit(make(results, bytes([3, i, 0, 0, 1])))
    assert len(link.started) == 1
    link.answer()
    assert len(link.started) == 2
    link.answer()
    link.answer()
    assert [t.pdu[1] for t in link.started] == [0, 1, 2]
    assert len(results) == 3
    assert bus.is_idle


async def test_capacity_allows_several_in_flight():
    link = ScriptedLink(capacity=3)
    bus = Bus("b", link, queue_size=10)
    results: list[object] = []
    for _ in range(5):
        bus.submit(make(results))
    assert len(link.active) == 3
    assert bus.queued == 2


async def test_full_queue_raises_busy():
    link = ScriptedLink()
    bus = Bus("b", link, queue_size=2)
    results: list[object] = []
    bus.submit(make(results))  # in flight
    bus.submit(make(results))
    bus.submit(make(results))
    with pytest.raises(BusBusyError):
        bus.submit(make(results))
    assert bus.stats.busy == 1


async def test_gateway_first_but_polls_not_starved():
    link = ScriptedLink()
    bus = Bus("b", link, queue_size=100)
    order: list[str] = []

    def note(name: str) -> Callable[[Result], None]:
        return lambda result: order.append(name)

    bus.submit(Transaction(1, b"\x03", note("first")))
    for i in range(3):
        bus.submit(Transaction(1, b"\x03", note(f"p{i}"), priority=Priority.POLL))
    for i in range(2 * GATEWAY_BURST):
        bus.submit(Transaction(1, b"\x03", note(f"g{i}")))
    while link.active:
        link.answer()
    assert order[1 : GATEWAY_BURST + 1] == [f"g{i}" for i in range(GATEWAY_BURST)]
    assert order[GATEWAY_BURST + 1] == "p0"  # a poll after a full gateway burst
    assert set(order) >= {"p0", "p1", "p2"}


async def test_expired_request_is_never_started():
    link = ScriptedLink()
    bus = Bus("b", link, queue_size=10)
    loop = asyncio.get_running_loop()
    first: list[object] = []
    late: list[object] = []
    bus.submit(make(first))
    bus.submit(make(late, deadline=loop.time() + 0.01))
    await asyncio.sleep(0.02)
    link.answer()
    assert len(link.started) == 1
    assert isinstance(first[0], bytes)
    assert isinstance(late[0], RequestExpiredError)
    assert bus.stats.expired == 1


async def test_late_answer_becomes_expired():
    link = ScriptedLink()
    bus = Bus("b", link, queue_size=10)
    results: list[object] = []
    bus.submit(make(results, deadline=asyncio.get_running_loop().time() + 0.01))
    await asyncio.sleep(0.02)
    link.answer()
    assert isinstance(results[0], RequestExpiredError)


async def test_retries_transport_errors_then_reports():
    link = ScriptedLink()
    bus = Bus("b", link, queue_size=10, retries=2)
    results: list[object] = []
    bus.submit(make(results))
    for _ in range(3):
        link.answer(ResponseTimeoutError("silent", peer="x"))
    assert len(link.started) == 3
    assert isinstance(results[0], ResponseTimeoutError)
    assert bus.stats.retries == 2
    assert bus.stats.timeouts == 1


async def test_modbus_exception_is_not_retried():
    link = ScriptedLink()
    bus = Bus("b", link, queue_size=10, retries=2)
    results: list[object] = []
    bus.submit(make(results))
    link.answer(b"\x83\x02")
    assert results == [b"\x83\x02"]
    assert len(link.started) == 1


async def test_availability_follows_failures_and_recovery(caplog):
    link = ScriptedLink()
    bus = Bus("b", link, queue_size=10)
    results: list[object] = []
    for _ in range(3):
        bus.submit(make(results))
        link.answer(ResponseTimeoutError("silent", peer="x"))
    assert not bus.is_available
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1  # a state change is logged once, not every failure
    bus.submit(make(results))
    link.answer()
    assert bus.is_available


async def test_execute_returns_pdu_or_raises():
    link = ScriptedLink()
    bus = Bus("b", link, queue_size=10)
    task = asyncio.create_task(bus.execute(1, b"\x03\x00\x00\x00\x01"))
    await asyncio.sleep(0)
    link.answer(b"\x03\x02\x00\x07")
    assert await task == b"\x03\x02\x00\x07"
    task = asyncio.create_task(bus.execute(1, b"\x03\x00\x00\x00\x01"))
    await asyncio.sleep(0)
    link.answer(TransportError("gone", peer="x"))
    with pytest.raises(ModbusError):
        await task


async def test_close_fails_queued_and_closes_link():
    link = ScriptedLink()
    bus = Bus("b", link, queue_size=10)
    results: list[object] = []
    bus.submit(make(results))
    bus.submit(make(results))
    await bus.aclose()
    assert link.closed
    assert isinstance(results[0], TransportError)
