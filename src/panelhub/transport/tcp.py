"""The downstream link to a Modbus TCP device: connect on demand, reconnect with back-off.

Rules:
- The link connects when the first transaction arrives, not at start-up, so a device that is
  off costs nothing until someone asks for it.
- After a failed connection, transactions fail at once with ``ConnectError`` until the back-off
  delay has passed; then the next transaction tries again. A SCADA gets a fast 0x0B instead of
  waiting for a connect timeout on every poll.
- Each request gets a transaction ID of the link's own; a late answer to a request that timed
  out carries an ID no longer pending and is dropped.
- After ``RESET_AFTER_TIMEOUTS`` timeouts in a row the connection is dropped and made anew:
  a device that lost our session (or a half-open TCP connection) is recovered that way.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable
from typing import Final, cast

from panelhub.errors import (
    ConnectError,
    ConnectionLostError,
    ProtocolError,
    ResponseTimeoutError,
    TransportError,
)
from panelhub.modbus import mbap
from panelhub.modbus.decoder import MBAPDecoder
from panelhub.transport.backoff import Backoff
from panelhub.transport.bus import Result, Transaction

logger = logging.getLogger(__name__)

#: Timeouts in a row that make the link drop and re-open its connection.
RESET_AFTER_TIMEOUTS: Final = 3


def _unattached(transaction: Transaction, result: Result) -> None:
    raise RuntimeError("a link reports results only once a Bus has attached to it")


class LinkState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


class TCPLink(asyncio.Protocol):
    """One TCP connection to one device (or a TCP gateway), owned by a Bus."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        connect_timeout_s: float,
        response_timeout_s: float,
        capacity: int = 1,
    ) -> None:
        self.peer = f"{host}:{port}"
        self.capacity = capacity
        self.state = LinkState.DISCONNECTED
        self._host = host
        self._port = port
        self._connect_timeout_s = connect_timeout_s
        self._response_timeout_s = response_timeout_s
        self._loop = asyncio.get_running_loop()
        self._on_result: Callable[[Transaction, Result], None] = _unattached
        self._transport: asyncio.Transport | None = None
        self._decoder = MBAPDecoder()
        # tid -> (transaction, deadline), in send order: the first entry times out first.
        self._pending: dict[int, tuple[Transaction, float]] = {}
        self._watchdog: asyncio.TimerHandle | None = None
        self._waiting: list[Transaction] = []
        self._next_tid = 0
        self._timeouts_in_row = 0
        self._retry_at = 0.0
        self._backoff = Backoff()
        self._connect_task: asyncio.Task[None] | None = None
        # Connections aborted and forgotten whose connection_lost is still to come: this object
        # is the protocol of every connection it makes, so that late call must not touch the
        # connection (or the connecting) that replaced them.
        self._abandoned = 0

    def attach(self, on_result: Callable[[Transaction, Result], None]) -> None:
        self._on_result = on_result

    def begin(self, transaction: Transaction) -> None:
        if self.state is LinkState.CONNECTED:
            self._send(transaction)
        elif self.state is LinkState.CONNECTING:
            self._waiting.append(transaction)
        elif self.state is LinkState.CLOSED or self._loop.time() < self._retry_at:
            error = ConnectError(f"{self.peer} is unreachable; retrying later", peer=self.peer)
            self._loop.call_soon(self._report, transaction, error)
        else:
            self._waiting.append(transaction)
            self.state = LinkState.CONNECTING
            self._connect_task = self._loop.create_task(self._connect())

    async def aclose(self) -> None:
        self.state = LinkState.CLOSED
        if self._connect_task is not None:
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connect_task
        if self._transport is not None:
            self._transport.close()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._fail_all(ConnectionLostError("link closed", peer=self.peer))

    # -- asyncio.Protocol callbacks

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as exc:
            logger.warning("%s sent an invalid frame, reconnecting: %s", self.peer, exc)
            self._abandon_connection()
            return
        for frame in frames:
            entry = self._pending.pop(frame.transaction_id, None)
            if entry is None:
                continue  # the answer to a request that already timed out
            self._timeouts_in_row = 0
            self._report(entry[0], frame.pdu)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._abandoned:
            self._abandoned -= 1
            return
        self._transport = None
        self._decoder = MBAPDecoder()
        if self.state is not LinkState.CLOSED:
            self.state = LinkState.DISCONNECTED
            logger.info("connection to %s closed", self.peer)
        reason = f"connection to {self.peer} lost" + (f": {exc}" if exc else "")
        self._fail_all(ConnectionLostError(reason, peer=self.peer))

    # -- internals

    async def _connect(self) -> None:
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                await self._loop.create_connection(lambda: self, self._host, self._port)
        # ValueError: a host name the resolver cannot even be asked about (UnicodeError for a
        # DNS label over 63 characters). Left uncaught, it would end this task and leave the
        # link CONNECTING for ever, with every request held until its time-to-live.
        except (OSError, TimeoutError, ValueError) as exc:
            delay = self._backoff.next_delay_s()
            self._retry_at = self._loop.time() + delay
            self.state = LinkState.DISCONNECTED
            logger.warning("cannot connect to %s (%s); next try in %.1f s", self.peer, exc, delay)
            error = ConnectError(f"cannot connect to {self.peer}: {exc}", peer=self.peer)
            waiting, self._waiting = self._waiting, []
            for transaction in waiting:
                self._report(transaction, error)
            return
        self._backoff.reset()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.state is LinkState.CLOSED:
            transport.close()  # the link was closed while this connection was being made
            return
        self._transport = cast("asyncio.Transport", transport)  # uvloop's is no subclass
        self.state = LinkState.CONNECTED
        self._timeouts_in_row = 0
        logger.info("connected to %s", self.peer)
        waiting, self._waiting = self._waiting, []
        for transaction in waiting:
            self._send(transaction)

    def _send(self, transaction: Transaction) -> None:
        assert self._transport is not None  # noqa: S101 - CONNECTED implies a transport
        self._next_tid = tid = (self._next_tid + 1) & 0xFFFF
        deadline = self._loop.time() + self._response_timeout_s
        self._pending[tid] = (transaction, deadline)
        if self._watchdog is None:
            self._watchdog = self._loop.call_at(deadline, self._on_watchdog)
        # A Transaction's PDU was bounded by the decoder or the PDU class that made it, and
        # its unit ID by the configuration: no need for encode_frame's checks.
        self._transport.write(mbap.pack_frame(tid, transaction.unit_id, transaction.pdu))

    def _on_watchdog(self) -> None:
        """Time out what is overdue, then wait for the next deadline.

        One timer per link, not one per request: arming and cancelling a timer for every
        request was a measurable share of the gateway's cost per transaction (bench/gateway).
        """
        self._watchdog = None
        now = self._loop.time()
        overdue = []
        for tid, (_, deadline) in self._pending.items():
            if deadline > now:
                break
            overdue.append(tid)
        for tid in overdue:
            self._time_out(tid)
        if self._pending and self._watchdog is None:
            first_deadline = next(iter(self._pending.values()))[1]
            self._watchdog = self._loop.call_at(first_deadline, self._on_watchdog)

    def _time_out(self, tid: int) -> None:
        entry = self._pending.pop(tid, None)
        if entry is None:
            return
        self._timeouts_in_row += 1
        error = ResponseTimeoutError(
            f"unit {entry[0].unit_id} at {self.peer} did not answer within "
            f"{self._response_timeout_s:g} s",
            peer=self.peer,
        )
        if self._timeouts_in_row >= RESET_AFTER_TIMEOUTS and self._transport is not None:
            logger.info("%s: %d timeouts in a row, reconnecting", self.peer, self._timeouts_in_row)
            self._timeouts_in_row = 0
            # Before reporting: the Bus starts the next transaction from the report, and it
            # must go to a fresh connection, not onto the one being dropped.
            self._abandon_connection()
        self._report(entry[0], error)

    def _abandon_connection(self) -> None:
        """Abort the connection and forget it now: the next transaction connects anew."""
        transport, self._transport = self._transport, None
        if transport is None:
            return
        self._abandoned += 1
        transport.abort()
        self._decoder = MBAPDecoder()
        if self.state is not LinkState.CLOSED:
            self.state = LinkState.DISCONNECTED
        pending, self._pending = self._pending, {}
        error = ConnectionLostError(f"connection to {self.peer} dropped", peer=self.peer)
        for transaction, _ in pending.values():
            self._report(transaction, error)

    def _fail_all(self, error: TransportError) -> None:
        pending, self._pending = self._pending, {}
        waiting, self._waiting = self._waiting, []
        for transaction, _ in pending.values():
            self._report(transaction, error)
        for transaction in waiting:
            self._report(transaction, error)

    def _report(self, transaction: Transaction, result: Result) -> None:
        self._on_result(transaction, result)
