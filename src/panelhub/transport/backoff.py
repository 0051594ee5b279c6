"""Reconnection delays: exponential, capped, with jitter so many links do not retry in step."""

from __future__ import annotations

import random
from typing import Final

#: First delay after a failed connection: short, so a rebooted device is back quickly.
INITIAL_DELAY_S: Final = 0.1
#: Longest delay between attempts: a SCADA polling every few seconds sees a device that came
#: back within this time, and a dead device costs one connection attempt per interval.
MAX_DELAY_S: Final = 5.0
FACTOR: Final = 2.0
#: +/- share of each delay drawn at random.
JITTER: Final = 0.1


class Backoff:
    """Successive delays for one link; ``reset`` after a success."""

    __slots__ = ("_attempts", "_random")

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._attempts = 0
        self._random = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def next_delay_s(self) -> float:
        delay = min(MAX_DELAY_S, INITIAL_DELAY_S * FACTOR**self._attempts)
        self._attempts += 1
        return delay * (1 + self._random.uniform(-JITTER, JITTER))

    def reset(self) -> None:
        self._attempts = 0
