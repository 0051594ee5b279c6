"""The poller: reads every device at its logging slots through the gateway's buses.

Theory of operation:
- Time is cut into slots: a 5-minute measurement is read once per 5-minute slot, at the
  slot's start (10:00:00, 10:05:00 ...), and its sample carries the slot time, so the
  measurements of a device line up in trends and CSV rows.
- Every read goes through the device's Bus at ``Priority.POLL``: gateway (SCADA) traffic on
  the same line goes first, and the Bus still lets a poll through after a burst, so neither
  starves the other. The poller never opens a connection itself (ARCHITECTURE.md).
- A device that does not answer gets invalid samples for the slot (NaN, not skipped), and
  its :class:`~panelhub.datalogger.health.DeviceHealth` logs the change once. Its first
  timeout ends its reads for the slot: a dead meter costs one timeout, not one per read.
- The clock is injected (:class:`PollClock`): tests move time instead of waiting, and a
  wall-clock jump (NTP, an operator setting the time) is seen within ``MAX_SLEEP_S``.
- At most ``DEVICES_IN_QUEUE_PER_BUS`` devices of a bus are read at once: enough to keep the
  link busy (one request on it, the next waiting), while the rest of the bus queue is left to
  SCADA. Reading every device of a slot at once filled the queue (64) on a line of 190 meters:
  the devices past the 64th were refused and logged as silent, and SCADA got "busy" answers.
- One slot's samples from every device go to the store in one batch (one transaction). If the
  store fails (a full disk), the samples wait in memory, bounded, and go with the next batch.
- Live values: the latest value of every measurement, from logging polls and from the faster
  live polls a watched device gets (the monitoring page watches what it shows).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from panelhub.datalogger.health import DeviceHealth
from panelhub.datalogger.planner import ReadRequest, split_response
from panelhub.errors import ModbusError, PanelHubError, TransportError
from panelhub.modbus import pdu as pdus
from panelhub.modbus.constants import FunctionCode
from panelhub.storage.series import Sample
from panelhub.transport.bus import Bus, Priority

logger = logging.getLogger(__name__)

#: Longest single sleep: a wall-clock change is noticed at most this late.
MAX_SLEEP_S: Final = 5.0
#: A poll must end well before its next slot; and no device gets more than this per read.
MAX_READ_TIMEOUT_S: Final = 30.0
#: Samples kept in memory while the store fails (a full disk): 20 minutes at 5,000 a minute,
#: about 4 MB. Beyond it the oldest are dropped and counted as lost.
MAX_UNSTORED_SAMPLES: Final = 100_000
#: Devices of one bus read at the same time (each reads its requests one after the other).
DEVICES_IN_QUEUE_PER_BUS: Final = 4
#: How long a watch (the monitoring page open) keeps a device's live polls going.
WATCH_TIMEOUT_S: Final = 60.0

Decode = Callable[[tuple[int, ...]], float]
Batch = list[tuple[int, Sample]]


class PollClock(Protocol):
    def time(self) -> float: ...
    async def sleep_until(self, wall_s: float) -> None: ...


class SystemClock:
    """The real clock: UTC wall time, slept on in short steps (see ``MAX_SLEEP_S``)."""

    def time(self) -> float:
        return time.time()

    async def sleep_until(self, wall_s: float) -> None:
        remaining = wall_s - time.time()
        while remaining > 0:  # re-read each time: the wall clock may have jumped
            await asyncio.sleep(min(remaining, MAX_SLEEP_S))
            remaining = wall_s - time.time()


@dataclass(frozen=True, slots=True)
class PolledMeasurement:
    key: str
    #: The store's series for this measurement; None when it is read only for live values.
    series_id: int | None
    decode: Decode


@dataclass(frozen=True, slots=True)
class PollGroup:
    """The reads of one device that share one period."""

    period_s: int
    requests: tuple[ReadRequest, ...]
    measurements: dict[str, PolledMeasurement]
    is_live: bool = False


@dataclass(slots=True)
class DevicePlan:
    name: str
    bus: str
    unit_id: int
    groups: tuple[PollGroup, ...]
    health: DeviceHealth = field(init=False)

    def __post_init__(self) -> None:
        self.health = DeviceHealth(self.name)


@dataclass(frozen=True, slots=True)
class LiveValue:
    ts: float
    value: float
    is_valid: bool


def next_slot(now_s: float, period_s: int) -> int:
    """The first slot start of ``period_s`` strictly after ``now_s``."""
    return (math.floor(now_s) // period_s + 1) * period_s


class Poller:
    """Polls ``plans`` until cancelled; see the module docstring."""

    def __init__(
        self,
        plans: Sequence[DevicePlan],
        *,
        bus_for: Callable[[str], Bus | None],
        store: Callable[[Batch], Awaitable[None]],
        clock: PollClock,
    ) -> None:
        self.plans = tuple(plans)
        self._bus_for = bus_for
        self._store = store
        self._clock = clock
        self.live: dict[tuple[str, str], LiveValue] = {}
        self._watched_until: dict[str, float] = {}
        self._watch_started = asyncio.Event()
        self._fresh_watches: set[str] = set()
        self._unstored: Batch = []
        self._bus_turns: dict[str, asyncio.Semaphore] = {}
        self._is_store_failing = False
        self.samples_stored = 0
        self.samples_lost = 0

    def watch(self, device: str) -> None:
        """Keep ``device``'s live polls going for ``WATCH_TIMEOUT_S`` from now."""
        was_watched = self._watched_until.get(device, 0.0) > self._clock.time()
        self._watched_until[device] = self._clock.time() + WATCH_TIMEOUT_S
        if not was_watched:
            self._fresh_watches.add(device)
            self._watch_started.set()  # the loop may be asleep until a distant logging slot

    async def run(self) -> None:
        due = self._initial_slots()
        while due:
            wanted = [at for key, at in due.items() if self._is_wanted(key, at)]
            if not await self._sleep(min(wanted, default=None)):
                self._read_fresh_watches_now(due)
                continue
            now = self._clock.time()
            if now < min(due.values()):  # the wall clock went back: plan again from now
                due = self._initial_slots()
                continue
            ready = [key for key, at in due.items() if at <= now]
            await self._poll_slot(ready, due)
            for plan_index, group_index in ready:
                period = self.plans[plan_index].groups[group_index].period_s
                due[plan_index, group_index] = next_slot(now, period)

    def _read_fresh_watches_now(self, due: dict[tuple[int, int], int]) -> None:
        """A watch began: its device's live reads start at once, not at the next slot."""
        now = int(self._clock.time())
        for (plan_index, group_index), _at in list(due.items()):
            plan = self.plans[plan_index]
            if plan.groups[group_index].is_live and plan.name in self._fresh_watches:
                due[plan_index, group_index] = now
        self._fresh_watches.clear()

    def _is_wanted(self, key: tuple[int, int], at: int) -> bool:
        """Logging slots always; a live slot only while its device is watched then."""
        plan = self.plans[key[0]]
        return not plan.groups[key[1]].is_live or self._watched_until.get(plan.name, 0.0) >= at

    async def _sleep(self, until: float | None) -> bool:
        """Sleep until ``until`` (None: until a watch); False when a watch began first."""
        self._watch_started.clear()
        watch = asyncio.ensure_future(self._watch_started.wait())
        waiters: set[asyncio.Future[Any]] = {watch}
        if until is not None:
            waiters.add(asyncio.ensure_future(self._clock.sleep_until(until)))
        try:
            done, _pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return watch not in done

    def _initial_slots(self) -> dict[tuple[int, int], int]:
        now = self._clock.time()
        return {
            (p, g): next_slot(now, group.period_s)
            for p, plan in enumerate(self.plans)
            for g, group in enumerate(plan.groups)
        }

    async def _poll_slot(
        self, ready: list[tuple[int, int]], due: dict[tuple[int, int], int]
    ) -> None:
        batch: Batch = []
        now = self._clock.time()
        async with asyncio.TaskGroup() as tasks:
            for plan_index, group_index in ready:
                plan = self.plans[plan_index]
                group = plan.groups[group_index]
                if group.is_live and self._watched_until.get(plan.name, 0.0) < now:
                    continue
                # The wall clock jumped forward (or the loop was held up) past later slots:
                # the reading is of now, so it carries the latest slot, not the missed one.
                slot = max(
                    due[plan_index, group_index], int(now) // group.period_s * group.period_s
                )
                tasks.create_task(self._poll_group(plan, group, slot, batch))
        await self._keep(batch)

    async def _keep(self, batch: Batch) -> None:
        """Store ``batch`` with what earlier slots could not store; keep what fails, bounded."""
        pending = self._unstored + batch
        if not pending:
            return
        try:
            await self._store(pending)
        except PanelHubError as exc:  # the store's own errors (DatalogStoreError): a full disk
            overflow = max(0, len(pending) - MAX_UNSTORED_SAMPLES)
            self.samples_lost += overflow
            self._unstored = pending[overflow:]  # the oldest go first
            if not self._is_store_failing:
                logger.error(  # noqa: TRY400 - the reason is the message; a trace adds nothing
                    "cannot store samples (%s); keeping up to %d until it can",
                    exc,
                    MAX_UNSTORED_SAMPLES,
                )
            self._is_store_failing = True
        else:
            if self._is_store_failing:
                logger.info("storing samples again; %d kept meanwhile stored", len(self._unstored))
            self._is_store_failing = False
            self._unstored = []
            self.samples_stored += len(pending)

    async def _poll_group(
        self, plan: DevicePlan, group: PollGroup, slot: int, batch: Batch
    ) -> None:
        turns = self._bus_turns.get(plan.bus)
        if turns is None:
            turns = self._bus_turns[plan.bus] = asyncio.Semaphore(DEVICES_IN_QUEUE_PER_BUS)
        async with turns:
            values, error = await self._read_group(plan, group)
        now = self._clock.time()
        if error and not values:
            plan.health.record_failure(now, error)
        else:
            plan.health.record_answer(now)
        for key, measurement in group.measurements.items():
            raw = values.get(key)
            value = math.nan if raw is None else measurement.decode(raw)
            is_valid = not math.isnan(value)
            self.live[plan.name, key] = LiveValue(now, value, is_valid)
            if measurement.series_id is not None:
                batch.append((measurement.series_id, Sample(slot, value, is_valid)))

    async def _read_group(
        self, plan: DevicePlan, group: PollGroup
    ) -> tuple[dict[str, tuple[int, ...]], str]:
        """The registers of each measurement read, and the last error ("" if none)."""
        values: dict[str, tuple[int, ...]] = {}
        error = ""
        for request in group.requests:
            try:
                registers = await self._read(
                    plan, request, timeout_s=min(group.period_s, MAX_READ_TIMEOUT_S)
                )
            except TransportError as exc:
                # Silent or unreachable: the group's other reads would only wait as long each
                # and hold up the line for the devices that do answer.
                error = str(exc)
                break
            except ModbusError as exc:
                error = str(exc)
                continue
            values.update(split_response(request, registers))
        return values, error

    async def _read(
        self, plan: DevicePlan, request: ReadRequest, *, timeout_s: float
    ) -> tuple[int, ...]:
        bus = self._bus_for(plan.bus)
        if bus is None:
            raise ModbusError(f"bus {plan.bus} is not configured")
        code = FunctionCode(request.function)
        wire = pdus.ReadRequest(code, request.address, request.count).encode()
        response = await bus.execute(
            plan.unit_id, wire, priority=Priority.POLL, timeout_s=timeout_s
        )
        if code in (FunctionCode.READ_COILS, FunctionCode.READ_DISCRETE_INPUTS):
            bits = pdus.decode_read_bits_response(
                response, unit_id=plan.unit_id, function_code=code, count=request.count
            )
            return tuple(int(bit) for bit in bits)
        return pdus.decode_read_registers_response(
            response, unit_id=plan.unit_id, function_code=code
        )
