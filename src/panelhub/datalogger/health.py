"""Whether a device answers its polls, and the one log line when that changes.

A poll that fails is retried by the Bus as configured; what reaches here is the outcome.
The first failed poll marks the device down (its samples of that slot are stored invalid
anyway); the first good one marks it up again. Each change is logged once, whatever the
number of polls in between (CONVENTIONS.md §9: state changes, not repetitions).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

logger = logging.getLogger(__name__)


class Availability(StrEnum):
    UNKNOWN = "unknown"  # not polled yet since start
    ANSWERING = "answering"
    NOT_ANSWERING = "not answering"


@dataclass(slots=True)
class DeviceHealth:
    """One device's polling record, for the monitoring page and the log."""

    device: str
    state: Availability = Availability.UNKNOWN
    #: Wall-clock time of the last change of ``state`` (0: never).
    since_s: float = 0.0
    last_error: str = ""
    polls: int = 0
    failed_polls: int = 0
    #: Wall-clock time of the last poll that got an answer (0: none yet).
    last_answer_s: float = 0.0

    def record_answer(self, at_s: float) -> None:
        self.polls += 1
        self.last_answer_s = at_s
        if self.state is Availability.NOT_ANSWERING:
            logger.info(
                "device %s answers again after %.0f s without answer",
                self.device,
                at_s - self.since_s,
            )
        if self.state is not Availability.ANSWERING:
            self.state, self.since_s = Availability.ANSWERING, at_s
        self.last_error = ""

    def record_failure(self, at_s: float, error: str) -> None:
        self.polls += 1
        self.failed_polls += 1
        self.last_error = error
        if self.state is not Availability.NOT_ANSWERING:
            logger.warning("device %s stopped answering: %s", self.device, error)
            self.state, self.since_s = Availability.NOT_ANSWERING, at_s
