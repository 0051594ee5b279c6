"""Upstream Modbus TCP listeners: where SCADA connects. Errors become exception responses here.

Theory of operation:
- A connection is admitted if its address is on the listener's allow-list and the connection
  limits (total, per client) leave room; otherwise it is closed at once and the refusal logged.
- Refusals go to the ``RefusalSink`` the service gives (the audit log), or to the
  ``panelhub.audit`` logger when there is none (the gateway alone), at most once per client
  and reason per ``REFUSAL_LOG_INTERVAL_S`` with a count of those left out, and one by one
  for at most ``MAX_TRACKED_REFUSALS`` clients and reasons at once.
- Each complete frame is checked against the listener's policy (function codes, unit IDs,
  read-only), then answered by the gateway itself (unit 255) or routed to a Bus. Exception 01
  for a refused request, 0x0A for no route, 0x06 for a full queue, 0x0B when the device fails;
  a request that outlives its time-to-live gets no answer at all (a SCADA has given up by then).
- A malformed frame, a partial frame left incomplete for ``frame_timeout_s`` (a client sending
  one byte a second) or ``idle_timeout_s`` without traffic close that connection only.
- Answers keep the client's transaction ID and unit ID; each answer is written as soon as it
  is known, so a client that pipelines requests may get them back out of order, as MBAP allows.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Final, Protocol, cast

from panelhub.config.models import LOCAL_UNIT_ID, ListenerConfig
from panelhub.errors import (
    BusBusyError,
    ModbusError,
    ProtocolError,
    RequestExpiredError,
    TransportError,
)
from panelhub.gateway.local import LocalServer
from panelhub.gateway.policy import Policy
from panelhub.gateway.routing import Router
from panelhub.modbus import mbap
from panelhub.modbus.constants import WRITE_FUNCTION_CODES, ExceptionCode
from panelhub.modbus.decoder import MBAPDecoder
from panelhub.modbus.pdu import exception_pdu
from panelhub.transport.bus import Bus, Priority, Result, Transaction

logger = logging.getLogger(__name__)
audit = logging.getLogger("panelhub.audit")

#: Requests one connection may have waiting at once. A client that pipelines more gets 0x06,
#: so it cannot fill a bus queue that other clients share.
MAX_PENDING_PER_CONNECTION: Final = 32
#: How long a client may take to finish a frame it started. Longer is a stalled or hostile
#: client holding a connection slot (slowloris); real clients send a frame in one segment.
FRAME_TIMEOUT_S: Final = 2.0
#: A refused client is logged at most once in this time: a SCADA retrying every second
#: must not flood the log, and an operator still sees that it keeps trying.
REFUSAL_LOG_INTERVAL_S: Final = 60.0
#: Client-and-reason pairs tracked at once. Refusals from many addresses (an IPv6 /64 holds
#: 2**64) must neither grow memory nor flood the audit log until its oldest records roll
#: off: beyond this many, refusals are counted together as from ``MANY_CLIENTS``.
MAX_TRACKED_REFUSALS: Final = 64
MANY_CLIENTS: Final = "*"
MANY_CLIENTS_REASON: Final = "refused from more clients than are reported one by one"


class RefusalSink(Protocol):
    """Where a listener reports a refused connection or request (the service: the audit log).

    Called on the event loop: it must return at once and never raise.
    """

    def __call__(
        self, *, client: str, listener: str, what: str, reason: str, suppressed: int
    ) -> None:
        """``suppressed``: refusals of this client for this reason not reported since the last."""


def exception_code_for(error: ModbusError) -> int | None:
    """The exception an upstream client gets for ``error``; None means no answer at all."""
    if isinstance(error, RequestExpiredError):
        return None
    if isinstance(error, BusBusyError):
        return ExceptionCode.SERVER_DEVICE_BUSY
    if isinstance(error, TransportError):
        return ExceptionCode.GATEWAY_TARGET_FAILED_TO_RESPOND
    return ExceptionCode.SERVER_DEVICE_FAILURE


class Listener:
    """One upstream Modbus TCP server and the connections it admitted."""

    def __init__(
        self,
        config: ListenerConfig,
        *,
        router: Router[Bus],
        local: LocalServer,
        request_ttl_s: float,
        on_refusal: RefusalSink | None = None,
    ) -> None:
        self.config = config
        self.on_refusal = on_refusal
        self.router = router
        self.local = local
        self.request_ttl_s = request_ttl_s
        self.policy = Policy(config)
        self.connections: set[UpstreamConnection] = set()
        self._per_client: Counter[str] = Counter()
        self._refusals: dict[tuple[str, str], tuple[float, int]] = {}
        self._server: asyncio.Server | None = None
        self.is_stopping = False

    @property
    def address(self) -> tuple[str, int]:
        """Where the listener is bound (the real port when configured with port 0)."""
        assert self._server is not None  # noqa: S101 - only asked after start
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: UpstreamConnection(self), self.config.host, self.config.port,
            reuse_address=True, backlog=self.config.max_connections,
        )  # fmt: skip
        logger.info("listener %s on %s:%d", self.config.name, *self.address)

    def stop_accepting(self) -> None:
        """First step of shutdown: refuse new connections and new requests.

        Connections stay open, so answers to requests under way still reach their clients.
        """
        self.is_stopping = True
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.stop_reading()

    async def aclose(self) -> None:
        self.stop_accepting()
        for connection in list(self.connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()

    def admit(self, connection: UpstreamConnection) -> str | None:
        """Register ``connection``; return why it is refused, or None when admitted."""
        client = connection.client
        if not self.policy.allows_client(client):
            return "not on the allow-list"
        if len(self.connections) >= self.config.max_connections:
            return f"listener at its limit of {self.config.max_connections} connections"
        if self._per_client[client] >= self.config.max_connections_per_client:
            return f"client at its limit of {self.config.max_connections_per_client} connections"
        self.connections.add(connection)
        self._per_client[client] += 1
        return None

    def log_refusal(self, client: str, what: str, reason: str) -> None:
        """Audit a refused connection or request, once per client and reason per interval."""
        now = asyncio.get_running_loop().time()
        if (client, reason) not in self._refusals and not self._make_room(now):
            client, reason = MANY_CLIENTS, MANY_CLIENTS_REASON
        logged_at, suppressed = self._refusals.get((client, reason), (-REFUSAL_LOG_INTERVAL_S, 0))
        if now - logged_at < REFUSAL_LOG_INTERVAL_S:
            self._refusals[(client, reason)] = (logged_at, suppressed + 1)
            return
        self._refusals[(client, reason)] = (now, 0)
        if self.on_refusal is not None:
            # The audit log writes its own ``panelhub.audit`` line once the record is stored.
            self.on_refusal(client=client, listener=self.config.name, what=what, reason=reason,
                            suppressed=suppressed)  # fmt: skip
            return
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        audit.warning("listener %s refused %s from %s: %s%s",
                      self.config.name, what, client, reason, more)  # fmt: skip

    def _make_room(self, now: float) -> bool:
        """Whether one more pair can be tracked, forgetting those reported an interval ago."""
        if len(self._refusals) < MAX_TRACKED_REFUSALS:
            return True
        for key, (logged_at, _) in list(self._refusals.items()):
            if now - logged_at >= REFUSAL_LOG_INTERVAL_S:
                del self._refusals[key]
        return len(self._refusals) < MAX_TRACKED_REFUSALS

    def reconfigure(self, config: ListenerConfig) -> None:
        """Take new access rules on the same socket; clients no longer allowed are cut off.

        Removing a client from the allow-list is a security decision: it must not wait for
        that client to disconnect by itself.
        """
        self.config = config
        self.policy = Policy(config)
        for connection in list(self.connections):
            if not self.policy.allows_client(connection.client):
                self.release(connection)
                connection.close()

    def release(self, connection: UpstreamConnection) -> None:
        if connection in self.connections:
            self.connections.discard(connection)
            self._per_client[connection.client] -= 1
            if not self._per_client[connection.client]:
                del self._per_client[connection.client]


class UpstreamConnection(asyncio.Protocol):
    """One client connection: frames in, answers out."""

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._decoder = MBAPDecoder()
        self._pending = 0
        self._last_activity = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._frame_timer: asyncio.TimerHandle | None = None
        self.client = "?"

    # -- asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.client = str(peer[0]) if peer else "?"
        refusal = self._listener.admit(self)
        if refusal is not None:
            self._listener.log_refusal(self.client, "a connection", refusal)
            cast("asyncio.Transport", transport).abort()
            return
        self._transport = cast("asyncio.Transport", transport)  # uvloop's is no subclass
        self._last_activity = self._loop.time()
        self._idle_timer = self._loop.call_later(
            self._listener.config.idle_timeout_s, self._check_idle
        )
        logger.debug("client %s connected to %s", self.client, self._listener.config.name)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        for timer in (self._idle_timer, self._frame_timer):
            if timer is not None:
                timer.cancel()
        self._listener.release(self)

    def data_received(self, data: bytes) -> None:
        if self._transport is None:
            return
        self._last_activity = self._loop.time()
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as exc:
            logger.warning("closing connection from %s: %s", self.client, exc)
            self.close()
            return
        for frame in frames:
            self._handle(frame)
        if self._frame_timer is not None or self._decoder.buffered:
            self._watch_partial_frame()

    def pause_writing(self) -> None:
        # The client does not read its answers: stop reading its requests until it does.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._listener.is_stopping:
            self._transport.resume_reading()

    def stop_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # -- requests

    def _handle(self, frame: mbap.TCPFrame) -> None:
        listener = self._listener
        unit_id = frame.unit_id
        function_code = frame.pdu[0]
        refusal = listener.policy.check_request(unit_id, function_code)
        if refusal is not None:
            self._listener.log_refusal(self.client, "a request", refusal.reason)
            self._answer(frame, exception_pdu(function_code, ExceptionCode.ILLEGAL_FUNCTION))
            return
        if function_code in WRITE_FUNCTION_CODES:
            audit.info("client %s: function %d to unit %d", self.client, function_code, unit_id)
        if unit_id == LOCAL_UNIT_ID:
            self._answer(
                frame,
                listener.local.handle(frame.pdu, client=self.client, listener=listener.config.name),
            )
            return
        route = listener.router.resolve(unit_id)
        if route is None:
            self._answer(
                frame, exception_pdu(function_code, ExceptionCode.GATEWAY_PATH_UNAVAILABLE)
            )
            return
        if self._pending >= MAX_PENDING_PER_CONNECTION:
            self._answer(frame, exception_pdu(function_code, ExceptionCode.SERVER_DEVICE_BUSY))
            return
        transaction = Transaction(
            route.unit_id,
            frame.pdu,
            lambda result: self._on_result(frame, result),
            deadline=self._last_activity + listener.request_ttl_s,  # received just now
            priority=Priority.GATEWAY,
        )
        self._pending += 1
        try:
            route.bus.submit(transaction)
        except BusBusyError as exc:
            self._on_result(frame, exc)

    def _on_result(self, frame: mbap.TCPFrame, result: Result) -> None:
        self._pending -= 1
        if isinstance(result, ModbusError):
            code = exception_code_for(result)
            if code is None:
                return
            result = exception_pdu(frame.pdu[0], code)
        elif not result:
            return  # a broadcast: servers do not answer it, and neither do we
        self._answer(frame, result)

    def _answer(self, frame: mbap.TCPFrame, pdu: bytes) -> None:
        if self._transport is not None:
            # Every PDU answered came out of a decoder or was built here: already bounded.
            self._transport.write(mbap.pack_frame(frame.transaction_id, frame.unit_id, pdu))

    # -- timers

    def _watch_partial_frame(self) -> None:
        if self._decoder.buffered and self._frame_timer is None:
            self._frame_timer = self._loop.call_later(FRAME_TIMEOUT_S, self._on_frame_timeout)
        elif not self._decoder.buffered and self._frame_timer is not None:
            self._frame_timer.cancel()
            self._frame_timer = None

    def _on_frame_timeout(self) -> None:
        logger.warning("closing connection from %s: frame incomplete after %g s",
                       self.client, FRAME_TIMEOUT_S)  # fmt: skip
        self.close()

    def _check_idle(self) -> None:
        idle_timeout_s = self._listener.config.idle_timeout_s
        remaining = self._last_activity + idle_timeout_s - self._loop.time()
        if remaining <= 0 and not self._pending:
            logger.info("closing connection from %s: idle for %g s", self.client, idle_timeout_s)
            self.close()
        else:
            self._idle_timer = self._loop.call_later(max(remaining, 1.0), self._check_idle)
