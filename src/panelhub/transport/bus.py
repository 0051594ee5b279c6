"""The Bus: the one owner of a downstream link and the queue of transactions in front of it.

Theory of operation:
- The gateway and (later) the datalogger never touch a socket or serial port. They ``submit``
  transactions; the Bus starts each on its link when the link has room (one at a time, or up
  to ``capacity`` for TCP devices that allow overlapping requests), and the link reports the
  result through the callback it was attached with.
- Gateway transactions go first. After ``GATEWAY_BURST`` of them in a row while polls wait,
  one poll goes, so a busy SCADA cannot starve the logger, nor the logger a SCADA.
- Each transaction has a deadline (the upstream time-to-live). One that is past it when its
  turn comes, or when its answer arrives, completes with ``RequestExpiredError``: it is never
  answered late.
- Completion is a plain callback, not a Future: on the gateway's hot path a request goes from
  the upstream socket to the link and back without a task switch (measured in bench/gateway).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, Protocol

from panelhub.errors import (
    BusBusyError,
    ModbusError,
    RequestExpiredError,
    ResponseTimeoutError,
    TransportError,
)

logger = logging.getLogger(__name__)

#: Gateway transactions served in a row before a waiting poll gets its turn.
GATEWAY_BURST: Final = 8
#: Failures in a row after which the bus reports itself unavailable (health "degraded").
UNAVAILABLE_AFTER_FAILURES: Final = 3

Result = bytes | ModbusError
Callback = Callable[[Result], None]


class Priority(IntEnum):
    GATEWAY = 0
    POLL = 1


class Transaction:
    """One request on its way to a downstream device.

    ``pdu`` of the response (empty for a broadcast) or the error reaches ``on_done`` exactly
    once.
    """

    __slots__ = ("attempts", "deadline", "on_done", "pdu", "priority", "unit_id")

    def __init__(
        self,
        unit_id: int,
        pdu: bytes,
        on_done: Callback,
        *,
        deadline: float = float("inf"),
        priority: Priority = Priority.GATEWAY,
    ) -> None:
        self.unit_id = unit_id
        self.pdu = pdu
        self.on_done = on_done
        self.deadline = deadline
        self.priority = priority
        self.attempts = 0


class Link(Protocol):
    """What a Bus drives: a TCP connection to a device, or a serial line.

    Contract: ``begin`` never raises; it reports every outcome, success or error, through the
    callback given to ``attach``, exactly once per transaction, never from inside ``begin``
    itself (so the Bus's bookkeeping is done before any callback runs).
    """

    @property
    def peer(self) -> str: ...
    @property
    def capacity(self) -> int: ...

    def attach(self, on_result: Callable[[Transaction, Result], None]) -> None: ...
    def begin(self, transaction: Transaction) -> None: ...
    async def aclose(self) -> None: ...


@dataclass(slots=True)
class DeviceState:
    """What one address on the bus did lately: the home page's "answering or not"."""

    answered: int = 0
    failed: int = 0
    #: Whether the last transaction got an answer (a Modbus exception is an answer).
    is_answering: bool = False
    #: Wall-clock time of the last answer; 0 when there was none.
    last_answer_at: float = 0.0


@dataclass(slots=True)
class BusStatistics:
    submitted: int = 0
    answered: int = 0
    timeouts: int = 0
    errors: int = 0
    expired: int = 0
    busy: int = 0
    retries: int = 0


class Bus:
    """Serialises transactions onto one link; see the module docstring."""

    def __init__(self, name: str, link: Link, *, queue_size: int, retries: int = 0) -> None:
        self.name = name
        self.link = link
        self.stats = BusStatistics()
        #: By address on the bus; at most 248 entries (unit IDs are one byte, 0 is broadcast).
        self.devices: dict[int, DeviceState] = {}
        self._queue_size = queue_size
        self._retries = retries
        self._queues: tuple[deque[Transaction], deque[Transaction]] = (deque(), deque())
        self._in_flight = 0
        self._burst = 0
        self._failures_in_row = 0
        self._is_closed = False
        self._loop = asyncio.get_running_loop()
        self._capacity = link.capacity  # read once: it is on every transaction's path
        link.attach(self._on_result)

    @property
    def queued(self) -> int:
        return len(self._queues[0]) + len(self._queues[1])

    @property
    def is_idle(self) -> bool:
        return not self._in_flight and not self.queued

    @property
    def is_available(self) -> bool:
        """False once the last few transactions all failed; true again after one success."""
        return self._failures_in_row < UNAVAILABLE_AFTER_FAILURES

    def submit(self, transaction: Transaction) -> None:
        """Queue ``transaction``, or start it at once if the link has room.

        Raises:
            BusBusyError: the queue is full (the gateway answers exception 0x06).
            TransportError: the bus is closed.

        """
        if self._is_closed:
            raise TransportError(f"bus {self.name} is closed", peer=self.name)
        self.stats.submitted += 1
        if self._in_flight < self._capacity and not self.queued:
            # Straight onto the link: a transaction just submitted cannot have expired yet.
            self._in_flight += 1
            transaction.attempts += 1
            self.link.begin(transaction)
            return
        if self.queued >= self._queue_size:
            self.stats.busy += 1
            raise BusBusyError(
                f"bus {self.name} has {self.queued} requests waiting", peer=self.name
            )
        self._queues[transaction.priority].append(transaction)

    async def execute(
        self,
        unit_id: int,
        pdu: bytes,
        *,
        priority: Priority = Priority.POLL,
        timeout_s: float | None = None,
    ) -> bytes:
        """Run one transaction and return the response PDU (empty for a broadcast).

        Raises:
            BusBusyError, TransportError: as ``submit`` and the link report them.
            RequestExpiredError: ``timeout_s`` passed before the transaction could finish.

        """
        future: asyncio.Future[Result] = self._loop.create_future()

        def done(result: Result) -> None:
            if not future.done():
                future.set_result(result)

        deadline = float("inf") if timeout_s is None else self._loop.time() + timeout_s
        self.submit(Transaction(unit_id, pdu, done, deadline=deadline, priority=priority))
        result = await future
        if isinstance(result, ModbusError):
            raise result
        return result

    async def aclose(self) -> None:
        # Closed first: what the link fails while closing must not be retried on it.
        self._is_closed = True
        for queue in self._queues:
            while queue:
                queue.popleft().on_done(
                    TransportError(f"bus {self.name} is shutting down", peer=self.name)
                )
        await self.link.aclose()

    def _start(self, transaction: Transaction) -> None:
        if self._loop.time() > transaction.deadline:
            self.stats.expired += 1
            transaction.on_done(RequestExpiredError("request expired in the queue", peer=self.name))
            return
        self._in_flight += 1
        transaction.attempts += 1
        self.link.begin(transaction)

    def _on_result(self, transaction: Transaction, result: Result) -> None:
        self._in_flight -= 1
        if isinstance(result, TransportError) and self._should_retry(transaction):
            self.stats.retries += 1
            self._queues[Priority.GATEWAY].appendleft(transaction)
            self._pump()
            return
        # Answer first, then start the next: measured both ways in bench/gateway, with no
        # difference beyond the noise on TCP or RTU; this way no answer waits for a send.
        self._complete(transaction, result)
        self._pump()

    def _should_retry(self, transaction: Transaction) -> bool:
        return (
            not self._is_closed
            and transaction.attempts <= self._retries
            and self._loop.time() < transaction.deadline
        )

    def _complete(self, transaction: Transaction, result: Result) -> None:
        device = self.devices.get(transaction.unit_id)
        if device is None and transaction.unit_id:
            device = self.devices[transaction.unit_id] = DeviceState()
        if device is not None:
            if isinstance(result, TransportError):
                device.failed += 1
                device.is_answering = False
            else:
                device.answered += 1
                device.is_answering = True
                device.last_answer_at = time.time()
        if isinstance(result, TransportError):
            self._failures_in_row += 1
            if isinstance(result, ResponseTimeoutError):
                self.stats.timeouts += 1
            else:
                self.stats.errors += 1
            if self._failures_in_row == UNAVAILABLE_AFTER_FAILURES:
                logger.warning(
                    "bus %s: %s is not responding: %s", self.name, self.link.peer, result
                )
        else:
            if self._failures_in_row >= UNAVAILABLE_AFTER_FAILURES:
                logger.info("bus %s: %s is responding again", self.name, self.link.peer)
            self._failures_in_row = 0
            self.stats.answered += 1
        if self._loop.time() > transaction.deadline:
            self.stats.expired += 1
            result = RequestExpiredError("answer came after the time-to-live", peer=self.name)
        transaction.on_done(result)

    def _pump(self) -> None:
        gateway, polls = self._queues
        while (gateway or polls) and self._in_flight < self._capacity:
            if gateway and not (polls and self._burst >= GATEWAY_BURST):
                self._burst += 1
                self._start(gateway.popleft())
            else:
                self._burst = 0
                self._start(polls.popleft())
