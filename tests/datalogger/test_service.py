"""The datalogger service end to end: simulated meters of every template, on TCP and on an
RTU line, polled through the gateway's buses under a stepped clock, stored, rolled up.

What a user would check: the stored values are what the meters served; a counter reset and a
meter swap give the right consumption, flagged, never negative; a meter that goes silent and
comes back leaves invalid samples and flagged buckets, and its consumption is still whole.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from panelhub.config.models import Settings
from panelhub.datalogservice import DataloggerService
from panelhub.devices.catalog import builtin_templates
from panelhub.service import Gateway, build_bus
from panelhub.sim import Meter, RtuEndpoint, TcpEndpoint, serve_rtu, serve_tcp
from panelhub.sim.device import SimulatedDevice
from panelhub.sim.server import RtuLine
from panelhub.storage.series import Quality, Resolution
from tests.clock import SteppedClock

pytestmark = pytest.mark.interop

START_S = 1_800_000_000  # a 5-minute (and hour) boundary
MINUTE = 60
ENERGY = "active_energy_import"
TEMPLATES = sorted(builtin_templates())
RTU_TEMPLATES = ["panelhub-sim-pm3", "eastron-sdm120", "carlogavazzi-em24"]
#: Device name (20 characters at most) -> its template, one device per template and line.
MODELS = {f"tcp-{n}": t for n, t in enumerate(TEMPLATES, 1)} | {
    f"rtu-{n}": t for n, t in enumerate(RTU_TEMPLATES, 1)
}
RESET_DEVICE = f"tcp-{TEMPLATES.index('panelhub-sim-em1') + 1}"
SWAP_DEVICE = f"tcp-{TEMPLATES.index('schneider-pm5560') + 1}"
SILENT_DEVICE = f"tcp-{TEMPLATES.index('eastron-sdm630') + 1}"
PLAIN_DEVICE = f"tcp-{TEMPLATES.index('abb-b23') + 1}"
SWAP_AT_S = START_S + 7 * MINUTE
SWAP_INITIAL_WH = 100_000.0  # the new meter's counter when it was put in


@dataclass
class Installation:
    datalog: DataloggerService
    clock: SteppedClock
    meters: dict[str, SimulatedDevice]  # device name -> the simulated device serving it
    #: What each device's meter held at each slot: (device, key, slot) -> SI value.
    served: dict[tuple[str, str, int], float] = field(default_factory=dict)

    async def step(self, slot: int) -> None:
        stored = self.datalog.poller.samples_stored
        await self.clock.sleeper_at(slot)
        self.clock.now = slot
        for name, meter in self.meters.items():
            meter.refresh(slot)
            for key, value in meter.values.items():
                self.served[name, key, slot] = value
        self.clock.wake()
        for _ in range(1_000):  # bounded: 10 s
            if self.datalog.poller.samples_stored > stored:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"nothing stored for slot {slot}")

    async def raw(self, device: str, key: str) -> dict[int, tuple[float, bool]]:
        info = next(s for s in await self.datalog.store.series_for(device) if s.key == key)
        # The 16 slots the test drove (with the clock at minute 16, that slot may be polled too).
        samples = await self.datalog.store.read_raw(info.series_id, START_S, START_S + 16 * MINUTE)
        return {s.ts: (s.value, s.is_valid) for s in samples}

    async def five_minutes(self, device: str, key: str = ENERGY):
        info = next(s for s in await self.datalog.store.series_for(device) if s.key == key)
        return await self.datalog.store.read_rollups(
            info.series_id, Resolution.FIVE_MINUTES, START_S, START_S + 15 * MINUTE
        )


def device_config(name: str, template: str, bus: str, unit_id: int) -> dict[str, object]:
    config: dict[str, object] = {
        "name": name,
        "model": template,
        "bus": bus,
        "unit_id": unit_id,
        "period_min": 1,
    }
    if name == SWAP_DEVICE:
        config["replacements"] = [
            {
                "key": ENERGY,
                "at": dt.datetime.fromtimestamp(SWAP_AT_S, dt.UTC).isoformat(),
                "new_initial": SWAP_INITIAL_WH,
            }
        ]
    return config


@asynccontextmanager
async def installation(tmp_path: Path) -> AsyncIterator[Installation]:
    clock = SteppedClock(START_S - 1)
    async with AsyncExitStack() as stack:
        tcp: TcpEndpoint = await stack.enter_async_context(
            serve_tcp(
                {n: Meter(template=t, seed=n) for n, t in enumerate(TEMPLATES, 1)},
                clock=clock.time,
            )
        )
        rtu: RtuEndpoint = await stack.enter_async_context(
            serve_rtu(
                {n: Meter(template=t, seed=10 + n) for n, t in enumerate(RTU_TEMPLATES, 1)},
                line=RtuLine(parity="N"),
                clock=clock.time,
            )
        )
        devices = [
            device_config(name, template, name[:3], int(name[4:]))
            for name, template in MODELS.items()
        ]
        settings = Settings.model_validate(
            {
                "data_dir": tmp_path,
                "buses": [
                    {"kind": "tcp", "name": "tcp", "host": "127.0.0.1", "port": tcp.port,
                     "response_timeout_s": 0.3},
                    {"kind": "rtu", "name": "rtu", "device": rtu.client_path, "parity": "N",
                     "frame_gap_s": 0.0, "response_timeout_s": 0.5},
                ],
                "devices": devices,
            }
        )  # fmt: skip
        gateway = Gateway(settings)
        stack.push_async_callback(gateway.aclose)
        datalog = DataloggerService(
            settings, bus_for=gateway.bus, bus_factory=build_bus, clock=clock
        )
        await datalog.start()
        stack.push_async_callback(datalog.aclose)
        meters = {
            name: (tcp if name.startswith("tcp") else rtu).meters[int(name[4:])] for name in MODELS
        }
        yield Installation(datalog, clock, meters)


async def run_quarter_hour(site: Installation) -> None:
    """16 one-minute slots with a reset, a swap and a silence in them; then the rollups."""
    for minute in range(16):
        slot = START_S + minute * MINUTE
        if minute == 5:
            site.meters[RESET_DEVICE].reset_counters()
        if minute == 7:
            site.meters[SWAP_DEVICE].replace_meter(initial_energy_wh=SWAP_INITIAL_WH)
        site.meters[SILENT_DEVICE].set_answering(is_answering=minute not in (9, 10, 11))
        await site.step(slot)
    site.clock.now = START_S + 16 * MINUTE
    await site.datalog.rollups.run_once(START_S + 15 * MINUTE + 60)


async def test_every_template_on_tcp_and_rtu_stores_what_it_served(tmp_path):
    async with installation(tmp_path) as site:
        await run_quarter_hour(site)
        for name in site.meters:
            template = site.datalog.catalog[MODELS[name]]
            for m in template.measurements:
                stored = await site.raw(name, m.key)
                assert len(stored) == 16, (name, m.key)
                for slot, (value, is_valid) in stored.items():
                    if name == SILENT_DEVICE and 9 <= (slot - START_S) // MINUTE <= 11:
                        assert not is_valid
                        assert math.isnan(value)
                        continue
                    served = site.served[name, m.key, slot] / m.to_si(1.0)
                    resolution = 0.0 if m.data_type.is_float else abs(m.scale)
                    assert is_valid, (name, m.key, slot)
                    assert math.isclose(
                        value, served, rel_tol=1e-6, abs_tol=max(1e-6, 0.51 * resolution)
                    ), (name, m.key, slot, value, served)


async def test_reset_swap_and_silence_give_whole_flagged_consumption(tmp_path):
    async with installation(tmp_path) as site:
        await run_quarter_hour(site)
        at = {minute: START_S + minute * MINUTE for minute in range(16)}

        # A plain meter: the buckets add up to the counter's increase, unflagged.
        plain = await site.raw(PLAIN_DEVICE, ENERGY)
        buckets = await site.five_minutes(PLAIN_DEVICE)
        assert [b.quality for b in buckets] == [Quality.GOOD] * 3
        assert math.isclose(
            sum(b.total for b in buckets), plain[at[15]][0] - plain[at[0]][0], rel_tol=1e-9
        )

        # Reset between minutes 4 and 5: what was counted before it, plus everything after.
        reset = await site.raw(RESET_DEVICE, ENERGY)
        buckets = await site.five_minutes(RESET_DEVICE)
        expected = (reset[at[4]][0] - reset[at[0]][0]) + reset[at[15]][0]
        assert all(b.total >= 0 for b in buckets)
        assert math.isclose(sum(b.total for b in buckets), expected, rel_tol=1e-6, abs_tol=1e-9)
        assert Quality.RESET in buckets[0].quality

        # Meter swapped at minute 7: old meter's part up to the swap, new meter's from its
        # initial reading; no 100 kWh spike.
        swap = await site.raw(SWAP_DEVICE, ENERGY)
        buckets = await site.five_minutes(SWAP_DEVICE)
        expected = (swap[at[6]][0] - swap[at[0]][0]) + (swap[at[15]][0] - SWAP_INITIAL_WH)
        assert math.isclose(sum(b.total for b in buckets), expected, rel_tol=1e-9, abs_tol=1e-6)
        assert Quality.REPLACED in buckets[1].quality
        assert max(b.total for b in buckets) < SWAP_INITIAL_WH / 10

        # Silent for minutes 9-11: invalid samples, flagged buckets, consumption still whole.
        silent = await site.raw(SILENT_DEVICE, ENERGY)
        assert [silent[at[m]][1] for m in (8, 9, 10, 11, 12)] == [True, False, False, False, True]
        buckets = await site.five_minutes(SILENT_DEVICE)
        assert Quality.GAP in buckets[1].quality
        assert Quality.GAP in buckets[2].quality
        assert Quality.ESTIMATED in buckets[2].quality
        assert math.isclose(
            sum(b.total for b in buckets), silent[at[15]][0] - silent[at[0]][0], rel_tol=1e-9
        )


def test_energy_counters_get_a_rate_no_switchboard_exceeds():
    from panelhub.config.models import DeviceConfig  # noqa: PLC0415
    from panelhub.datalogservice import _counter_spec  # noqa: PLC0415

    device = DeviceConfig(name="Main", model="eastron-sdm630", bus="tcp")
    sdm630 = builtin_templates()["eastron-sdm630"]  # energy in kWh
    pm3 = builtin_templates()["panelhub-sim-pm3"]  # energy in Wh, int64
    kwh = _counter_spec(device, sdm630, ENERGY)
    wh = _counter_spec(device, pm3, ENERGY)
    assert kwh.max_rate_per_s is not None
    assert wh.max_rate_per_s is not None
    assert math.isclose(kwh.max_rate_per_s * 3600, 10_000)  # kWh an hour: 10 MW
    assert math.isclose(wh.max_rate_per_s * 3600, 10_000_000)
    assert (kwh.rollover_at, wh.rollover_at) == (None, 2.0**64)  # float32; int64 wraps by 2**64
