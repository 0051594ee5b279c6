"""A wall clock the code under test reads and the test moves, instead of waiting."""

from __future__ import annotations

import asyncio


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SteppedClock:
    """Wall time that moves only when the test says; sleepers wake when it passes them."""

    def __init__(self, now: float) -> None:
        self.now = now
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self.sleeping = asyncio.Event()

    def time(self) -> float:
        return self.now

    async def sleep_until(self, wall_s: float) -> None:
        if wall_s <= self.now:
            return
        future = asyncio.get_running_loop().create_future()
        self._sleepers.append((wall_s, future))
        self.sleeping.set()
        await future

    def wake(self) -> None:
        for at, future in list(self._sleepers):
            if at <= self.now and not future.done():
                future.set_result(None)
        self._sleepers = [(at, f) for at, f in self._sleepers if not f.done()]
        if not self._sleepers:
            self.sleeping.clear()

    async def sleeper_at(self, wall_s: float) -> None:
        """Return once something sleeps until ``wall_s`` (the poller, waiting for its slot)."""
        for _ in range(1_000):  # bounded: 10 s
            if any(at == wall_s for at, _future in self._sleepers):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"nothing sleeps until {wall_s}")
