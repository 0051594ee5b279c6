"""Child processes of the gateway benchmark: start, wait until ready, measure CPU, stop.

Every process the harness starts is a ``Service``; ``Service.stop`` is idempotent and
is always reached through a ``contextlib.ExitStack`` in the caller, so nothing outlives
a run even when a step fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

LOOPBACK: Final = "127.0.0.1"
READY_TIMEOUT_S: Final = 10.0  # a gateway that needs longer than this to listen is broken
READY_POLL_S: Final = 0.05
STOP_GRACE_S: Final = 3.0  # SIGTERM, then SIGKILL after this long
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")


class StartError(RuntimeError):
    """A child process exited or did not become ready; the message carries its stderr tail."""


def free_port() -> int:
    """Ask the kernel for an unused loopback port (a small race, fine on a quiet bench host)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def tail(path: Path, *, lines: int = 15) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Service:
    """One child process with its stderr in ``log_path``."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, *, stdout: int | None = subprocess.DEVNULL) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.argv, stdout=stdout, stderr=self._log)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def check_alive(self) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise StartError(f"{self.name} exited with {code}:\n{tail(self.log_path)}")

    def wait_port(self, port: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
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

    def pin(self, cpus: frozenset[int] | None) -> None:
        """Restrict every thread of the process to ``cpus`` (None leaves it to the scheduler)."""
        if cpus is not None:
            pin_process(self.pid, cpus)

    def log_line_count(self) -> int:
        if self._log is not None:
            self._log.flush()
        return len(self.log_path.read_bytes().splitlines())

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


def pin_process(pid: int, cpus: frozenset[int]) -> None:
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(task.name), cpus)


@dataclass(frozen=True)
class Placement:
    """Which CPUs each kind of process may use.

    Unpinned, a 2-core VM moved the processes between its cores from run to run and the
    throughput flipped between two modes up to 3x apart; pinned, repeated runs agree.
    """

    client: frozenset[int]
    target: frozenset[int]  # the gateway, or the device when it is measured directly
    helper: frozenset[int]  # the device behind a gateway, the pty relay


def placement_for(cpus: set[int], mode: str) -> Placement | None:
    """``shared``: the load client on one core, everything it measures on another.

    ``ends``: the two ends of a serial line on their own cores: the master end (the load
    client with the gateway, or the direct RTU client) on one, the device end (the device and
    the pty relay) on the other, so the device end has the same core to itself whichever
    master drives the line. ``spread``: the load client, the measured process and the helpers
    each on their own core (the helpers share the client's core on a 2-core host). ``none``:
    no pinning.
    """
    ordered = sorted(cpus)
    if mode == "none" or len(ordered) < 2:
        return None
    client, target = frozenset({ordered[0]}), frozenset({ordered[1]})
    if mode == "shared":
        return Placement(client, target, target)
    if mode == "ends":
        return Placement(client, client, target)
    rest = frozenset(ordered[2:])
    return Placement(client, target, rest or client)


@dataclass(frozen=True)
class PtyPair:
    """Two linked pty ends: the client side ``a`` and the device side ``b``."""

    a: str
    b: str
    relay: str  # "socat" or "python pty_relay.py"


def start_pty_pair(workdir: Path, *, log_path: Path) -> tuple[Service, PtyPair]:
    """Start socat (or the Python relay when socat is missing) and return its two ends."""
    socat = shutil.which("socat")
    if socat is None:
        return _start_python_relay(log_path)
    link_a, link_b = workdir / "pty-a", workdir / "pty-b"
    for link in (link_a, link_b):
        link.unlink(missing_ok=True)
    service = Service(
        "socat",
        [socat, f"pty,raw,echo=0,link={link_a}", f"pty,raw,echo=0,link={link_b}"],
        log_path,
    )
    service.start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not (link_a.exists() and link_b.exists()):
        service.check_alive()
        if time.monotonic() > deadline:
            service.stop()
            raise StartError("socat did not create its pty links")
        time.sleep(READY_POLL_S)
    # Hand out the real /dev/pts paths: a gateway may refuse or mangle symlinks.
    return service, PtyPair(str(link_a.resolve()), str(link_b.resolve()), "socat")


def _start_python_relay(log_path: Path) -> tuple[Service, PtyPair]:
    script = Path(__file__).with_name("pty_relay.py")
    service = Service("pty_relay", [sys.executable, str(script)], log_path)
    service.start(stdout=subprocess.PIPE)
    assert service.process is not None
    assert service.process.stdout is not None
    line = service.process.stdout.readline()
    if not line:
        service.stop()
        raise StartError(f"pty_relay failed:\n{tail(log_path)}")
    ends = json.loads(line)
    return service, PtyPair(ends["a"], ends["b"], "python pty_relay.py")
