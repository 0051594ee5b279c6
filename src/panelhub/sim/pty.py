"""A linked pair of pseudo-terminals: a null-modem cable in software, like ``socat pty pty``.

Two ptys are opened with :func:`os.openpty`; a relay thread copies bytes between the two master
ends, so whatever is written to one slave path can be read from the other. The simulated
device server opens :attr:`LinkedPtyPair.device_path`, the client (the gateway) opens
:attr:`LinkedPtyPair.client_path`, and neither needs socat at run time.

Rules:
  * Both slave ends are put in raw mode and stay open in this process for the pair's whole life:
    a client may close and reopen its path without the other side seeing a hang-up.
  * With a :class:`LineTiming`, each direction delivers bytes no faster than the line would:
    one character every ``bits_per_character / baud_rate`` seconds, back to back, as on a real
    RS-485 line. The gap between two frames is whatever the writer left, so RTU inter-frame
    silence (t3.5) survives the relay.
  * A direction whose reader stops reading keeps at most ``MAX_PENDING_BYTES`` in memory and then
    stops reading its source, so the writer sees the ordinary tty back-pressure.
  * :meth:`LinkedPtyPair.close` stops and joins the thread, then closes every descriptor.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import tty
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal, Self

logger = logging.getLogger(__name__)

DATA_BITS: Final = (
    8  # Modbus RTU characters are always 8 data bits (Modbus over serial line §2.5.1)
)
START_BITS: Final = 1
READ_CHUNK: Final = 4096  # the Linux pty buffer is 4 KiB; one read drains it
MAX_PENDING_BYTES: Final = 65536  # bounded: a stalled reader must not grow our memory
JOIN_TIMEOUT_S: Final = 2.0  # the relay wakes on the stop pipe at once; this only guards a bug

Parity = Literal["N", "E", "O"]


def bits_per_character(*, parity: Parity, stop_bits: int) -> int:
    """Bits on the wire per byte: 10 for 8N1, 11 for 8E1, 8O1 and 8N2."""
    return START_BITS + DATA_BITS + (0 if parity == "N" else 1) + stop_bits


@dataclass(frozen=True, slots=True)
class LineTiming:
    baud_rate: int
    bits_per_character: int = 11  # 8E1, the Modbus over serial line default (§2.5.1)

    def __post_init__(self) -> None:
        if self.baud_rate <= 0:
            raise ValueError(f"baud_rate must be positive, not {self.baud_rate}")

    @property
    def character_time_s(self) -> float:
        return self.bits_per_character / self.baud_rate


class _Direction:
    """Bytes read from one master, waiting for their delivery time on the other."""

    def __init__(self, source: int, sink: int, timing: LineTiming | None) -> None:
        self.source = source
        self.sink = sink
        self.timing = timing
        self.pending = bytearray()
        self.due_s: deque[float] = deque()  # delivery time of each pending byte, ascending
        self.line_free_s = 0.0
        self.is_blocked = False

    @property
    def wants_input(self) -> bool:
        return len(self.pending) < MAX_PENDING_BYTES

    def receive(self, now_s: float) -> None:
        try:
            data = os.read(self.source, min(READ_CHUNK, MAX_PENDING_BYTES - len(self.pending)))
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # EIO: no slave end open; cannot happen while we hold ours
            logger.debug("pty read failed: %s", exc)
            return
        self.pending += data
        if self.timing is None:
            self.due_s.extend([now_s] * len(data))
            return
        char_s = self.timing.character_time_s
        start_s = max(now_s, self.line_free_s)
        self.due_s.extend(start_s + (i + 1) * char_s for i in range(len(data)))
        self.line_free_s = start_s + len(data) * char_s

    def deliver(self, now_s: float) -> None:
        count = 0
        while count < len(self.due_s) and self.due_s[count] <= now_s:
            count += 1
        if not count:
            return
        try:
            written = os.write(self.sink, self.pending[:count])
        except BlockingIOError:
            written = 0
        except OSError as exc:
            logger.debug("pty write failed, dropping %d bytes: %s", count, exc)
            written = count
        self.is_blocked = written < count
        del self.pending[:written]
        for _ in range(written):
            self.due_s.popleft()

    def next_due_s(self) -> float | None:
        return self.due_s[0] if self.due_s and not self.is_blocked else None


class LinkedPtyPair:
    """Two pty slave paths joined back to back by a relay thread.

    Use as a context manager, or call :meth:`open` and :meth:`close`.
    """

    def __init__(self, *, timing: LineTiming | None = None) -> None:
        self.timing = timing
        self._fds: list[int] = []
        self._paths: tuple[str, str] | None = None
        self._thread: threading.Thread | None = None
        self._stop_read = self._stop_write = -1
        self._is_stopping = False

    @property
    def device_path(self) -> str:
        """The path the simulated device server opens."""
        return self._require_paths()[0]

    @property
    def client_path(self) -> str:
        """The path the client (the gateway, a test) opens."""
        return self._require_paths()[1]

    def _require_paths(self) -> tuple[str, str]:
        if self._paths is None:
            raise RuntimeError("the pty pair is not open")
        return self._paths

    def open(self) -> None:
        if self._paths is not None:
            raise RuntimeError("the pty pair is already open")
        try:
            master_a, slave_a = self._open_raw_pty()
            master_b, slave_b = self._open_raw_pty()
            self._stop_read, self._stop_write = os.pipe()
            self._fds.extend((self._stop_read, self._stop_write))
        except OSError:
            self._close_fds()
            raise
        self._paths = (os.ttyname(slave_a), os.ttyname(slave_b))
        directions = (
            _Direction(master_a, master_b, self.timing),
            _Direction(master_b, master_a, self.timing),
        )
        self._is_stopping = False
        self._thread = threading.Thread(
            target=self._relay, args=(directions,), name="panelhub-sim-pty-relay", daemon=True
        )
        self._thread.start()
        logger.debug("pty pair %s <-> %s open", *self._paths)

    def _open_raw_pty(self) -> tuple[int, int]:
        master, slave = os.openpty()
        self._fds.extend((master, slave))
        tty.setraw(slave)
        os.set_blocking(master, False)
        return master, slave

    def close(self) -> None:
        if self._thread is not None:
            self._is_stopping = True
            os.write(self._stop_write, b"\0")
            self._thread.join(JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                logger.error("pty relay thread did not stop within %.1f s", JOIN_TIMEOUT_S)
            self._thread = None
        self._close_fds()
        self._paths = None

    def _close_fds(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _relay(self, directions: tuple[_Direction, _Direction]) -> None:
        while not self._is_stopping:
            now_s = time.monotonic()
            for direction in directions:
                direction.deliver(now_s)
            readers = [d.source for d in directions if d.wants_input] + [self._stop_read]
            writers = [d.sink for d in directions if d.is_blocked]
            deadlines = [due for d in directions if (due := d.next_due_s()) is not None]
            timeout_s = max(0.0, min(deadlines) - now_s) if deadlines else None
            readable, writable, _ = select.select(readers, writers, [], timeout_s)
            now_s = time.monotonic()
            for direction in directions:
                if direction.sink in writable:
                    direction.is_blocked = False
                if direction.source in readable:
                    direction.receive(now_s)
