"""Child processes of the web benchmark: start, talk to over stdin/stdout, measure, stop.

Every child is a ``Child`` stopped through a ``contextlib.ExitStack`` in the caller, so
nothing outlives a run even when a step fails; each child also bounds its own run time.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

LOOPBACK: Final = "127.0.0.1"
READY_POLL_S: Final = 0.05
STOP_GRACE_S: Final = 3.0  # SIGTERM, then SIGKILL after this long
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")


class StartError(RuntimeError):
    """A child exited, said something unexpected, or did not become ready in time."""


def free_port() -> int:
    """Ask the kernel for an unused loopback port (a small race, fine on a quiet host)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def tail(path: Path, *, lines: int = 15) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def pin_process(pid: int, cpus: frozenset[int]) -> None:
    """Every thread of ``pid`` to ``cpus``; threads started later inherit it."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(task.name), cpus)


def host_busy_s() -> float:
    """CPU time every process on the host has used since boot (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields)
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


@dataclass
class Child:
    """One child process: stdin and stdout are pipes (text lines), stderr goes to a file."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen[str] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, cpus: frozenset[int] | None, *, lower_by: int = 0) -> None:
        """Start it on ``cpus`` (None: any), ``lower_by`` nice steps below this process."""
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            text=True, env=self.env,
        )  # fmt: skip
        if cpus is not None:
            pin_process(self.process.pid, cpus)
        if lower_by:
            # The main thread, before it starts any other: later threads inherit its niceness.
            now = os.getpriority(os.PRIO_PROCESS, self.process.pid)
            os.setpriority(os.PRIO_PROCESS, self.process.pid, now + lower_by)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def check_alive(self) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise StartError(f"{self.name} exited with {code}:\n{tail(self.log_path)}")

    def read_line(self, timeout_s: float) -> str:
        """The next line the child prints, waiting at most ``timeout_s``."""
        assert self.process is not None
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                raise StartError(f"{self.name}: nothing printed in {timeout_s} s")
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(STOP_GRACE_S)
            self.check_alive()
        return line.strip()

    def send_line(self, text: str) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def wait_port(self, port: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                socket.create_connection((LOOPBACK, port), timeout=READY_POLL_S).close()
            except OSError:
                time.sleep(READY_POLL_S)
            else:
                return
        raise StartError(f"{self.name} did not listen on port {port}:\n{tail(self.log_path)}")

    def cpu_s(self) -> float:
        """User + system CPU time so far, from /proc (threads included)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime: proc(5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_GRACE_S)
        if self._log is not None:
            self._log.close()
            self._log = None
