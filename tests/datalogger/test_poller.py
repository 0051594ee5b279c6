"""The poller against simulated meters on a real Bus: what is stored is what was served.

The poller and the simulator share one stepped clock: each slot, the test moves the clock,
refreshes the meters to that instant, and lets the poller read; so the SI values a meter held
at the slot are exactly what the stored samples must say.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from panelhub.config.models import DeviceConfig, TCPBusConfig
from panelhub.datalogger import poller as poller_module
from panelhub.datalogger.health import Availability
from panelhub.datalogger.plans import build_plan, logged_measurements
from panelhub.datalogger.poller import Batch, DevicePlan, Poller, next_slot
from panelhub.devices.catalog import builtin_templates
from panelhub.devices.template import DeviceTemplate
from panelhub.errors import DatalogStoreError, DeviceError
from panelhub.service import build_bus
from panelhub.sim import Meter, TcpEndpoint, serve_tcp
from panelhub.transport.bus import Bus
from tests.clock import SteppedClock

START_S = 1_800_000_000  # a slot start for every period
PERIOD_S = 60


class Recorder:
    """The store's place: keeps each batch, and says when one arrived."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.arrived = asyncio.Event()
        self.fail_next = False

    async def __call__(self, batch: Batch) -> None:
        self.arrived.set()
        if self.fail_next:
            self.fail_next = False
            raise DatalogStoreError("database or disk is full", path="datalog.sqlite")
        self.batches.append(list(batch))


def device(name: str, model: str, unit_id: int, **extra: object) -> DeviceConfig:
    return DeviceConfig.model_validate(
        {"name": name, "model": model, "bus": "meters", "unit_id": unit_id, "period_min": 1} | extra
    )


def series_ids(devices: list[DeviceConfig]) -> dict[tuple[str, str], int]:
    templates = builtin_templates()
    ids: dict[tuple[str, str], int] = {}
    for config in devices:
        for logged in logged_measurements(config, templates[config.model]):
            ids[config.name, logged.measurement.key] = len(ids) + 1
    return ids


class Rig:
    def __init__(
        self, endpoint: TcpEndpoint, bus: Bus, devices: list[DeviceConfig], clock: SteppedClock
    ):
        self.endpoint = endpoint
        self.bus = bus
        self.clock = clock
        self.ids = series_ids(devices)
        templates = builtin_templates()
        self.templates: dict[str, DeviceTemplate] = {d.name: templates[d.model] for d in devices}
        self.units = {d.name: d.unit_id for d in devices}
        self.recorder = Recorder()
        self.poller = Poller(
            [build_plan(d, templates[d.model], self.ids) for d in devices],
            bus_for={"meters": bus}.get,
            store=self.recorder,
            clock=clock,
        )

    async def step(self, slot: float) -> Batch:
        """Move to ``slot``, let the poller poll it, and return what it stored."""
        await asyncio.wait_for(self.clock.sleeping.wait(), timeout=10)
        self.clock.now = slot
        for meter in self.endpoint.meters.values():
            meter.refresh(slot)
        self.recorder.arrived.clear()
        self.clock.wake()
        await asyncio.wait_for(self.recorder.arrived.wait(), timeout=10)
        return self.recorder.batches[-1] if self.recorder.batches else []

    def served(self, name: str, key: str) -> float:
        """What the simulated meter held for ``key``, in the template's unit."""
        measurement = self.templates[name].measurement(key)
        si = self.endpoint.meters[self.units[name]].values[key]
        return si / measurement.to_si(1.0)


@asynccontextmanager
async def rig(
    meters: dict[int, Meter], devices: list[DeviceConfig], *, queue_size: int = 64
) -> AsyncIterator[Rig]:
    clock = SteppedClock(START_S - 1)
    async with serve_tcp(meters, clock=clock.time) as endpoint:
        config = TCPBusConfig(
            kind="tcp",
            name="meters",
            host="127.0.0.1",
            port=endpoint.port,
            response_timeout_s=0.2,
            queue_size=queue_size,
        )
        bus = build_bus(config)
        the_rig = Rig(endpoint, bus, devices, clock)
        task = asyncio.create_task(the_rig.poller.run())
        try:
            yield the_rig
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await bus.aclose()


DEVICES = [
    device("Main incomer", "eastron-sdm630", 1),
    device("Sockets", "panelhub-sim-em1", 2),
    device("Feeder Q1", "abb-b23", 3),
]
METERS = {
    1: Meter(template="eastron-sdm630", seed=1),
    2: Meter(template="panelhub-sim-em1", seed=2),
    3: Meter(template="abb-b23", seed=3),
}


def state_of(plan: DevicePlan) -> Availability:
    return plan.health.state


def by_series(batch: Batch) -> dict[int, tuple[int, float, bool]]:
    return {sid: (s.ts, s.value, s.is_valid) for sid, s in batch}


def close(stored: float, served: float, *, scale: float = 0.0) -> bool:
    """Equal as far as the register can carry: float32 rounding, or half an integer count."""
    return math.isclose(stored, served, rel_tol=1e-6, abs_tol=max(1e-6, 0.5 * scale * (1 + 1e-9)))


def resolution(template: DeviceTemplate, key: str) -> float:
    measurement = template.measurement(key)
    return 0.0 if measurement.data_type.is_float else abs(measurement.scale)


async def test_every_stored_sample_is_what_the_meter_served_at_its_slot():
    async with rig(METERS, DEVICES) as r:
        for slot in (START_S, START_S + PERIOD_S, START_S + 2 * PERIOD_S):
            stored = by_series(await r.step(slot))
            assert len(stored) == len(r.ids)
            for (name, key), sid in r.ids.items():
                ts, value, is_valid = stored[sid]
                assert (ts, is_valid) == (slot, True), (name, key)
                served = r.served(name, key)
                scale = resolution(r.templates[name], key)
                assert close(value, served, scale=scale), (name, key, value, served)


async def test_a_clock_jump_forward_labels_the_reading_with_the_slot_it_was_read_in():
    async with rig(METERS, DEVICES) as r:
        await r.step(START_S)
        jumped = START_S + 3 * 3600 + 10 * PERIOD_S + 17  # NTP put the clock 3 h 10 min on
        stored = by_series(await r.step(jumped))
        assert {ts for ts, _, _ in stored.values()} == {jumped - 17}
        stored = by_series(await r.step(jumped - 17 + PERIOD_S))  # and on from there
        assert {ts for ts, _, _ in stored.values()} == {jumped - 17 + PERIOD_S}


async def test_a_line_of_more_devices_than_its_queue_holds_is_read_whole_and_leaves_room():
    """80 meters behind a bus whose queue holds 16: every one answers, none is refused."""
    meters = {unit: Meter(template="panelhub-sim-em1", seed=unit) for unit in range(1, 81)}
    devices = [device(f"EM {unit}", "panelhub-sim-em1", unit) for unit in meters]
    async with rig(meters, devices, queue_size=16) as r:
        stored = by_series(await r.step(START_S))
        assert len(stored) == len(r.ids)
        assert all(is_valid for _, _, is_valid in stored.values())
        assert r.bus.stats.busy == 0
        assert all(state_of(plan) is Availability.ANSWERING for plan in r.poller.plans)


async def test_merged_reads_use_few_requests():
    async with rig(METERS, DEVICES) as r:
        await r.step(START_S)
        requests = sum(len(g.requests) for p in r.poller.plans for g in p.groups if not g.is_live)
        measurements = len(r.ids)
        assert r.bus.stats.answered == requests
        assert requests <= measurements // 4  # merged: several values per read, not one


async def test_a_silent_device_gets_invalid_samples_and_one_log_line_each_way(caplog):
    caplog.set_level(logging.INFO, logger="panelhub.datalogger")
    async with rig(METERS, DEVICES) as r:
        await r.step(START_S)
        r.endpoint.meters[1].set_answering(is_answering=False)
        for n in (1, 2, 3):
            stored = by_series(await r.step(START_S + n * PERIOD_S))
            for (name, _key), sid in r.ids.items():
                assert stored[sid][2] is (name != "Main incomer")
                if name == "Main incomer":
                    assert math.isnan(stored[sid][1])
        plan = r.poller.plans[0]
        assert plan.health.failed_polls == 3
        assert r.bus.devices[1].failed == 3  # one timeout a slot, not one per planned read
        assert state_of(plan) is Availability.NOT_ANSWERING
        assert plan.health.since_s == START_S + PERIOD_S
        r.endpoint.meters[1].set_answering(is_answering=True)
        stored = by_series(await r.step(START_S + 4 * PERIOD_S))
        assert all(valid for _ts, _value, valid in stored.values())
        assert state_of(plan) is Availability.ANSWERING
    lines = [rec.getMessage() for rec in caplog.records if "Main incomer" in rec.getMessage()]
    assert len(lines) == 2, lines
    assert "stopped answering" in lines[0]
    assert "answers again after 180 s" in lines[1]


async def test_samples_wait_while_the_store_fails_and_are_stored_after(caplog):
    caplog.set_level(logging.INFO, logger="panelhub.datalogger")
    async with rig(METERS, DEVICES) as r:
        r.recorder.fail_next = True
        await r.step(START_S)
        assert (r.poller.samples_stored, r.poller.samples_lost) == (0, 0)
        stored = await r.step(START_S + PERIOD_S)
        assert len(stored) == 2 * len(r.ids)  # the failed slot's samples, then this one's
        assert {s.ts for _sid, s in stored} == {START_S, START_S + PERIOD_S}
        assert r.poller.samples_stored == 2 * len(r.ids)
    messages = [rec.getMessage() for rec in caplog.records if rec.name.endswith("poller")]
    assert any("cannot store samples (" in m for m in messages)
    assert any("storing samples again" in m for m in messages)


async def test_samples_beyond_the_bound_are_counted_lost(monkeypatch):
    monkeypatch.setattr(poller_module, "MAX_UNSTORED_SAMPLES", 10)
    async with rig(METERS, DEVICES) as r:
        r.recorder.fail_next = True
        await r.step(START_S)
        assert r.poller.samples_lost == len(r.ids) - 10
        stored = await r.step(START_S + PERIOD_S)
        assert len(stored) == 10 + len(r.ids)


async def test_live_values_are_read_only_while_watched():
    devices = [device("Main incomer", "eastron-sdm630", 1, period_min=5, live_period_s=10)]
    async with rig({1: METERS[1]}, devices) as r:
        r.poller.watch("Main incomer")
        await r.step(START_S + 10)
        live = r.poller.live["Main incomer", "voltage_l1_n"]
        assert live.is_valid
        assert close(live.value, r.served("Main incomer", "voltage_l1_n"))
        answered = r.bus.stats.answered
        r.clock.now = START_S + 10 + 61  # the watch has lapsed
        await r.step(START_S + 300)  # the 5-minute logging slot still polls
        assert r.bus.stats.answered > answered
        assert r.recorder.batches  # logged


def test_disabled_measurements_are_not_logged_and_others_keep_their_period():
    config = device(
        "Main incomer",
        "eastron-sdm630",
        1,
        period_min=10,
        measurements=[
            {"key": "frequency", "enable": False},
            {"key": "active_energy_import", "period_min": 1},
        ],
    )
    logged = {
        m.measurement.key: m.period_s
        for m in logged_measurements(config, builtin_templates()["eastron-sdm630"])
    }
    assert "frequency" not in logged
    assert logged["active_energy_import"] == 60
    assert logged["voltage_l1_n"] == 600


def test_a_key_the_template_lacks_is_refused_by_name():
    config = device("Main incomer", "eastron-sdm630", 1, measurements=[{"key": "flux_capacitor"}])
    with pytest.raises(DeviceError, match="has no measurement 'flux_capacitor'"):
        logged_measurements(config, builtin_templates()["eastron-sdm630"])


@pytest.mark.parametrize(
    ("now", "period", "expected"),
    [
        (START_S - 0.5, 60, START_S),
        (START_S, 60, START_S + 60),
        (START_S + 59.9, 300, START_S + 300),
    ],
)
def test_next_slot(now, period, expected):
    assert next_slot(now, period) == expected
