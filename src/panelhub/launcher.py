"""``panelhub launch``: run the service from its slot, try a new slot, fall back when it fails.

The launcher is the base install's own code (the factory image); the service it starts runs
the code of a slot (``security/slots.py``). A new slot (``trial``) gets ``health_timeout_s`` to
report that it is up (its integrity check passed and its listeners accept): it then becomes
``current``. If it exits or stays silent, it is stopped, recorded as ``failed``, and the
previous code runs again. The service reports "up" by writing one line to the pipe whose file
descriptor is in ``PANELHUB_READY_FD`` (like systemd's ``sd_notify``, without systemd).

The launcher keeps the service running: an exit with ``RESTART_EXIT_CODE`` (asked for after an
update) starts it again at once, a crash after ``CRASH_BACKOFF_S``. SIGTERM and SIGINT are
passed on to the service, and the launcher ends when it does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Final

from panelhub.errors import IntegrityError
from panelhub.security import firmware, integrity, slots

logger = logging.getLogger(__name__)

READY_ENV: Final = "PANELHUB_READY_FD"
#: The service's exit code for "start me again" (EX_TEMPFAIL, sysexits.h).
RESTART_EXIT_CODE: Final = 75
#: Seconds a new slot has to come up: start-up with a year of datalog takes a few seconds.
HEALTH_TIMEOUT_S: Final = 60.0
#: Pause before starting again a service that crashed, so a crash loop does not spin.
CRASH_BACKOFF_S: Final = 2.0
#: Seconds the service has to stop after SIGTERM before it is killed.
STOP_GRACE_S: Final = 20.0


def notify_ready() -> None:
    """Tell the launcher (if any) that this service is up; once, then the pipe is closed."""
    fd_text = os.environ.pop(READY_ENV, None)
    if not fd_text:
        return
    try:
        fd = int(fd_text)
    except ValueError:
        return
    try:
        os.write(fd, b"ready\n")
    except BrokenPipeError:
        pass  # the launcher waits for this only from a slot on trial
    except OSError:
        logger.warning("could not tell the launcher that the service is up")
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


class Launcher:
    def __init__(
        self,
        slots_dir: Path,
        run_args: Sequence[str],
        *,
        cache_dir: Path,
        health_timeout_s: float = HEALTH_TIMEOUT_S,
        data_dir: Path | None = None,
    ) -> None:
        self.slots_dir = slots_dir
        self.run_args = list(run_args)
        self.cache_dir = cache_dir
        self.health_timeout_s = health_timeout_s
        #: Where the trust anchors are, for the check made before a slot's code runs.
        self.data_dir = data_dir
        self._child: subprocess.Popen[bytes] | None = None
        self._stopping = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        while not self.is_stopping():
            trial = slots.target_of(self.slots_dir, slots.TRIAL)
            slot = trial or slots.target_of(self.slots_dir, slots.CURRENT)
            is_intact = slot is None or self._is_intact(slot)
            if trial is not None and not is_intact:
                slots.reject_trial(self.slots_dir)
                continue
            # A changed current slot: the base install's own code checks it and serves the
            # reason, so that no byte of the changed code runs.
            child, ready_fd = self._start(slot, is_run_from_slot=is_intact)
            try:
                if trial is not None and not self._settle_trial(trial, child, ready_fd):
                    continue
            finally:
                os.close(ready_fd)
            code = child.wait()
            if self.is_stopping():
                return code
            if code != RESTART_EXIT_CODE:
                logger.error("the service exited with code %d: starting it again", code)
                time.sleep(CRASH_BACKOFF_S)
        return 0

    def is_stopping(self) -> bool:
        """Set by SIGTERM or SIGINT, which may arrive at any line of ``run``."""
        return self._stopping

    def _is_intact(self, slot: Path) -> bool:
        """The start-up check, made here first, in the base install's code (read-only)."""
        if self.data_dir is None:
            return True  # no trust anchors known here: the service's own check decides
        anchors = [anchor.key for anchor in firmware.trust_anchors(self.data_dir)]
        try:
            integrity.check_slot(slot, anchors)
        except IntegrityError as exc:
            logger.error("slot %s refused: %s: %s", slot.name, exc, "; ".join(exc.problems))  # noqa: TRY400
            return False
        return True

    def _settle_trial(self, trial: Path, child: subprocess.Popen[bytes], ready_fd: int) -> bool:
        """Keep the trial (True) when it came up, or when we are stopping; else go back."""
        is_ready = self._wait_ready(child, ready_fd)
        if self._stopping:
            return True  # the signal went on to the service; the trial stays a trial
        if is_ready:
            slots.promote_trial(self.slots_dir)
            logger.warning("slot %s came up healthy: it is now current", trial.name)
            return True
        self._stop(child)
        slots.reject_trial(self.slots_dir)
        logger.error(
            "slot %s did not come up healthy within %.0f s: the previous code runs again",
            trial.name,
            self.health_timeout_s,
        )
        return False

    def _start(
        self, slot: Path | None, *, is_run_from_slot: bool = True
    ) -> tuple[subprocess.Popen[bytes], int]:
        read_fd, write_fd = os.pipe()
        os.set_inheritable(write_fd, True)
        environment = dict(os.environ)
        environment[READY_ENV] = str(write_fd)
        # Bytecode caches outside the slot: a cache planted in a slot is never read.
        environment["PYTHONPYCACHEPREFIX"] = str(self.cache_dir)
        if slot is None:
            environment.pop(slots.SLOT_ENV, None)
        else:
            environment[slots.SLOT_ENV] = str(slot)
            if is_run_from_slot:
                environment["PYTHONPATH"] = str(slot / slots.SITE_DIR)
            else:
                environment.pop("PYTHONPATH", None)
        logger.warning("starting the service from %s", slot.name if slot else "the base install")
        command = [sys.executable, "-m", "panelhub", *self.run_args]
        child = subprocess.Popen(command, env=environment, pass_fds=(write_fd,))  # noqa: S603
        os.close(write_fd)
        self._child = child
        return child, read_fd

    def _wait_ready(self, child: subprocess.Popen[bytes], ready_fd: int) -> bool:
        deadline = time.monotonic() + self.health_timeout_s
        while (left := deadline - time.monotonic()) > 0 and not self._stopping:
            readable, _, _ = select.select([ready_fd], [], [], min(left, 0.5))
            if readable:
                return os.read(ready_fd, 64).startswith(b"ready")
            if child.poll() is not None:
                return False
        return False

    def _stop(self, child: subprocess.Popen[bytes]) -> None:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        if self._child is not None and self._child.poll() is None:
            self._child.send_signal(signum)
