"""The RS-485 serial line as a Modbus RTU client: framing by silence, one transaction at a time.

Theory of operation (Modbus over Serial Line v1.02 §2.5.1.1):
- Frames are separated by at least 3.5 character times of silence (t3.5; a fixed 1.75 ms above
  19,200 baud). Before each request the line must have been quiet that long since the last
  byte sent or received; the link waits out the rest with a timer, never a sleep.
- Input left over from before a request (noise, a late answer) is discarded when the request
  is sent; the response is then hunted for by address, function code and CRC
  (``RTUResponseDecoder``), so the line resynchronises after garbage by itself.
- The response timeout runs from the end of transmission: the time the request takes on the
  wire at the configured baud rate is added to it.
- A broadcast (unit 0) gets no answer; the line then stays quiet for the turnaround delay so
  every server has time to act before the next request (§2.4.1).
- The port is opened with an exclusive lock: nothing else on the host may drive this line.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import termios
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import serial

from panelhub.errors import ConnectError, ConnectionLostError, ProtocolError, ResponseTimeoutError
from panelhub.modbus import rtu
from panelhub.modbus.constants import BROADCAST_UNIT_ID, MAX_RTU_ADU_SIZE
from panelhub.modbus.decoder import RTUResponseDecoder
from panelhub.modbus.pdu import expected_byte_count
from panelhub.modbus.sentinels import NeedData
from panelhub.transport.backoff import Backoff
from panelhub.transport.bus import Result, Transaction

logger = logging.getLogger(__name__)

#: Above 19,200 baud the spec fixes the inter-frame silence instead of scaling it (§2.5.1.1).
FIXED_SILENCE_ABOVE_BAUD: Final = 19_200
FIXED_T35_S: Final = 0.00175
#: Most a read can bring at once: one whole frame and some noise.
READ_SIZE: Final = 4 * MAX_RTU_ADU_SIZE


@functools.lru_cache(maxsize=256)
def _prepare(unit_id: int, pdu: bytes) -> tuple[bytes, int | None]:
    """The request's frame and the byte count its answer must carry (reads), once per request.

    Cached: a SCADA polls the same few requests all day, and the CRC in Python is a few
    microseconds per frame on the line's critical path.
    """
    return rtu.encode_frame(unit_id, pdu), expected_byte_count(pdu)


@dataclass(frozen=True, slots=True)
class LineSettings:
    device: str
    baud_rate: int
    parity: str = "E"
    stop_bits: int = 1
    response_timeout_s: float = 1.0
    turnaround_delay_s: float = 0.1
    inter_frame_delay_s: float = 0.0
    #: None: t3.5 from the baud rate, as the spec says. 0 only where no real line exists
    #: (a pseudo-terminal, a TCP serial server that frames by itself).
    frame_gap_s: float | None = None

    @property
    def character_time_s(self) -> float:
        # start bit, 8 data bits, parity or second stop bit, stop bit (§2.5.1: 11 bits; with
        # no parity and one stop bit, 10).
        bits = 1 + 8 + (0 if self.parity == "N" else 1) + self.stop_bits
        return bits / self.baud_rate

    @property
    def silence_s(self) -> float:
        if self.frame_gap_s is not None:
            return self.frame_gap_s
        if self.baud_rate > FIXED_SILENCE_ABOVE_BAUD:
            return FIXED_T35_S
        return 3.5 * self.character_time_s


class SerialLink:
    """A Modbus RTU client on one serial line, owned by a Bus."""

    capacity: Final = 1  # a serial line carries one transaction at a time (§2.1)

    def __init__(self, settings: LineSettings) -> None:
        self.peer = settings.device
        self.settings = settings
        # Both on every transaction's path; the settings are frozen.
        self._character_time_s = settings.character_time_s
        #: Silence kept between two transactions: t3.5 and the configured extra delay.
        self._gap_s = settings.silence_s + settings.inter_frame_delay_s
        self._loop = asyncio.get_running_loop()
        self._on_result: Callable[[Transaction, Result], None] | None = None
        self._port: serial.Serial | None = None
        self._fd = -1
        self._current: Transaction | None = None
        self._decoder: RTUResponseDecoder | None = None
        self._timer: asyncio.Handle | None = None
        self._quiet_from = 0.0  # when the line will have been silent for one gap
        # A broadcast's turnaround ends here whatever the line brings meanwhile (an adapter's
        # echo, noise): received bytes move ``_quiet_from`` but never before this.
        self._turnaround_until = 0.0
        self._retry_at = 0.0
        self._backoff = Backoff()
        self._is_closed = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._deadline = 0.0  # when the answer under way is overdue
        # Set when a late answer or garbage may be in the input: flushed before the next
        # request (a tcflush on every request would cost a system call each time).
        self._is_input_suspect = True

    def attach(self, on_result: Callable[[Transaction, Result], None]) -> None:
        self._on_result = on_result

    def begin(self, transaction: Transaction) -> None:
        self._current = transaction
        if self._is_closed:
            error = ConnectionLostError("serial line closed", peer=self.peer)
            self._timer = self._loop.call_soon(self._finish, error)
            return
        if self._port is None:
            try:
                self._open()
            except ConnectError as exc:
                self._timer = self._loop.call_soon(self._finish, exc)
                return
        wait_s = self._quiet_from - self._loop.time()
        if wait_s > 0:
            self._timer = self._loop.call_later(wait_s, self._transmit)
        else:
            self._transmit()

    async def aclose(self) -> None:
        self._is_closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._close()
        if self._current is not None:
            self._finish(ConnectionLostError("serial line closed", peer=self.peer))

    # -- internals

    def _open(self) -> None:
        if self._loop.time() < self._retry_at:
            raise ConnectError(f"serial port {self.peer} is unavailable", peer=self.peer)
        settings = self.settings
        try:
            port = serial.Serial(
                settings.device,
                baudrate=settings.baud_rate,
                parity=settings.parity,
                stopbits=settings.stop_bits,
                bytesize=8,
                timeout=0,
                write_timeout=0,
                exclusive=True,
            )
        except (OSError, ValueError, serial.SerialException) as exc:
            self._retry_at = self._loop.time() + self._backoff.next_delay_s()
            logger.warning("cannot open serial port %s: %s", self.peer, exc)
            raise ConnectError(
                f"cannot open serial port {self.peer}: {exc}", peer=self.peer
            ) from exc
        self._backoff.reset()
        self._is_input_suspect = True  # whatever the port held before it was ours
        self._port = port
        self._fd = port.fileno()
        self._loop.add_reader(self._fd, self._on_readable)
        logger.info("serial port %s open at %d baud", self.peer, settings.baud_rate)

    def _close(self) -> None:
        if self._port is not None:
            self._loop.remove_reader(self._fd)
            self._port.close()
            self._port = None
            self._fd = -1

    def _transmit(self) -> None:
        transaction = self._current
        assert transaction is not None  # noqa: S101 - set by begin
        if self._is_input_suspect:
            self._discard_input()
        frame, byte_count = _prepare(transaction.unit_id, transaction.pdu)
        try:
            written = os.write(self._fd, frame)
        except OSError as exc:
            self._line_failed(exc)
            return
        if written != len(frame):
            self._line_failed(OSError("serial output buffer full"))
            return
        on_wire_s = len(frame) * self._character_time_s
        self._quiet_from = self._loop.time() + on_wire_s + self._gap_s
        if transaction.unit_id == BROADCAST_UNIT_ID:
            self._quiet_from += self.settings.turnaround_delay_s
            self._turnaround_until = self._quiet_from
            self._timer = self._loop.call_later(on_wire_s, self._finish, b"")
            return
        self._decoder = RTUResponseDecoder(
            transaction.unit_id,
            transaction.pdu[0],
            expected_byte_count=byte_count,
        )
        self._deadline = self._loop.time() + on_wire_s + self.settings.response_timeout_s
        if self._watchdog is None:
            self._watchdog = self._loop.call_at(self._deadline, self._on_watchdog)

    def _discard_input(self) -> None:
        # A late answer to a request that timed out may still be on its way: drop what the
        # line holds before the next request, so it cannot pass for that request's answer.
        self._is_input_suspect = False
        try:
            termios.tcflush(self._fd, termios.TCIFLUSH)
        except termios.error as exc:
            logger.debug("serial port %s: %s while discarding input", self.peer, exc)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._line_failed(exc)
            return
        # What was received is the line's last activity; on a real half-duplex line nothing
        # arrives while our own request is still being sent, so this supersedes that estimate.
        self._quiet_from = max(self._loop.time() + self._gap_s, self._turnaround_until)
        decoder = self._decoder
        if decoder is None or not data:
            return  # noise between transactions: dropped before the next request
        try:
            result = decoder.feed(data)
        except ProtocolError:
            return  # garbage filled the hunt window: the timeout reports it
        if isinstance(result, bytes):
            self._finish(result)
        elif not isinstance(result, NeedData):
            # The length of this function's response cannot be counted: silence ends it.
            self._cancel_timer()
            self._timer = self._loop.call_later(self.settings.silence_s, self._on_silence)

    def _on_silence(self) -> None:
        assert self._decoder is not None  # noqa: S101 - armed only while a response is awaited
        try:
            self._finish(self._decoder.finish())
        except ProtocolError as exc:
            self._is_input_suspect = True
            self._finish(ConnectionLostError(f"invalid response: {exc}", peer=self.peer))

    def _on_watchdog(self) -> None:
        """Time out the transaction under way if it is overdue, else wait for its deadline.

        One timer for the line, not one per request: arming and cancelling a timer for each
        request was a measurable share of the per-transaction cost (bench/gateway).
        """
        self._watchdog = None
        if self._decoder is None:
            return  # nothing awaits an answer; the next request re-arms
        if self._loop.time() < self._deadline:
            self._watchdog = self._loop.call_at(self._deadline, self._on_watchdog)
            return
        self._on_timeout()

    def _on_timeout(self) -> None:
        transaction = self._current
        assert transaction is not None  # noqa: S101 - called only while a response is awaited
        self._is_input_suspect = True
        self._finish(
            ResponseTimeoutError(
                f"unit {transaction.unit_id} on {self.peer} did not answer within "
                f"{self.settings.response_timeout_s:g} s",
                peer=self.peer,
            )
        )

    def _line_failed(self, exc: OSError) -> None:
        logger.warning("serial port %s failed: %s", self.peer, exc)
        self._close()
        self._finish(ConnectionLostError(f"serial port {self.peer} failed: {exc}", peer=self.peer))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _finish(self, result: Result) -> None:
        self._cancel_timer()
        transaction, self._current, self._decoder = self._current, None, None
        if transaction is not None:
            assert self._on_result is not None  # noqa: S101 - a Bus attaches before any begin
            self._on_result(transaction, result)
