"""Discovery against simulated meters: who is at each address, and which template fits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from panelhub.config.models import TCPBusConfig
from panelhub.devices.catalog import builtin_templates
from panelhub.devices.discovery import ScanProgress, ScanState, identify, scan
from panelhub.errors import DiscoveryCancelledError
from panelhub.service import build_bus
from panelhub.sim import Meter, serve_tcp
from panelhub.transport.bus import Bus

pytestmark = pytest.mark.interop

TIMEOUT_S = 0.2

METERS = {
    1: Meter(template="eastron-sdm630", seed=1),  # identified by a probe register
    3: Meter(template="schneider-pm5560", seed=2),  # by its FC 43 product code
    4: Meter(template="carlogavazzi-em24", seed=3),  # a probe inside a measurement's registers
    6: Meter(template="panelhub-sim-cb3", seed=4),
}


@asynccontextmanager
async def meters_bus(meters: dict[int, Meter]) -> AsyncIterator[Bus]:
    async with serve_tcp(meters) as endpoint:
        bus = build_bus(
            TCPBusConfig(
                kind="tcp",
                name="line",
                host="127.0.0.1",
                port=endpoint.port,
                response_timeout_s=TIMEOUT_S,
            )
        )
        try:
            yield bus
        finally:
            await bus.aclose()


async def test_scan_finds_each_meter_with_its_template():
    templates = list(builtin_templates().values())
    async with meters_bus(METERS) as bus:
        progress = ScanProgress(total=7)
        found = await scan(bus, range(1, 8), templates, progress=progress, timeout_s=TIMEOUT_S)
    assert {d.unit_id: d.model for d in found} == {
        1: "eastron-sdm630",
        3: "schneider-pm5560",
        4: "carlogavazzi-em24",
        6: "panelhub-sim-cb3",
    }
    assert (progress.done, progress.state) == (7, ScanState.FINISHED)
    pm5560 = next(d for d in found if d.unit_id == 3)
    assert pm5560.product_code.startswith("METSEPM5560")
    assert pm5560.vendor_name


async def test_every_builtin_template_is_recognised_on_its_own():
    templates = builtin_templates()
    meters = {n: Meter(template=t, seed=n) for n, t in enumerate(sorted(templates), start=1)}
    async with meters_bus(meters) as bus:
        for unit_id, meter in meters.items():
            found = await identify(bus, unit_id, list(templates.values()), timeout_s=TIMEOUT_S)
            assert found is not None
            assert found.model == meter.template, unit_id


async def test_a_device_no_template_fits_is_listed_without_a_model():
    only_schneider = [builtin_templates()["schneider-pm5560"]]
    async with meters_bus({2: Meter(template="eastron-sdm120", seed=1)}) as bus:
        found = await identify(bus, 2, only_schneider, timeout_s=TIMEOUT_S)
        nobody = await identify(bus, 9, only_schneider, timeout_s=TIMEOUT_S)
    assert found is not None
    assert (found.unit_id, found.model) == (2, None)
    assert nobody is None


async def test_cancel_stops_the_scan_and_keeps_what_was_found():
    templates = list(builtin_templates().values())
    async with meters_bus(METERS) as bus:
        progress = ScanProgress(total=247)
        task = asyncio.create_task(
            scan(bus, range(1, 248), templates, progress=progress, timeout_s=TIMEOUT_S)
        )
        for _ in range(1_000):  # bounded: at most 10 s
            if progress.done >= 7:
                break
            await asyncio.sleep(0.01)
        progress.cancel()
        with pytest.raises(DiscoveryCancelledError, match="cancelled at address"):
            await task
    assert progress.state is ScanState.CANCELLED
    assert 7 <= progress.done < 20
    assert [d.unit_id for d in progress.found] == [1, 3, 4, 6]
