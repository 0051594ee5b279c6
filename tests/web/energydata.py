"""Known consumption in the real store, for the energy pages' tests.

Three electricity meters in Paris time: a boiler (heating, basement, a kWh meter), the lights
(lighting, office, a Wh meter) and the incomer (main, a Wh meter). The web fixture's clock
stands at 2027-01-15 09:00 Paris, so "yesterday" is 14 January and "the day before" 13
January. Per hour of those local days:

    device     usage     zone      13 Jan   14 Jan
    Boiler     heating   Basement  2 kWh    3 kWh     72 kWh yesterday, +50 %
    Lights     lighting  Office    1 kWh    1 kWh     24 kWh, 0 %, one hour flagged GAP
    Incomer    main      -         3 kWh    4 kWh     96 kWh, left out of the donuts

Hour rollups cover 12-14 January UTC (and day rows of those UTC days, their sums) so every
read path (hours at a local day's ends, day rows inside) gives the same figures.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from starlette.testclient import TestClient

from panelhub.config.models import DataloggerConfig, DeviceConfig, Settings, TCPBusConfig, Usage
from panelhub.security.accounts import Role
from panelhub.storage.series import Quality, Resolution, Rollup, Sample
from panelhub.storage.timeseries import TimeSeriesStore
from panelhub.web.access import SESSION_COOKIE
from tests.web.conftest import ORIGIN, Web

PARIS = ZoneInfo("Europe/Paris")
YESTERDAY = date(2027, 1, 14)
DAY_BEFORE = date(2027, 1, 13)
#: Wh per hour on each local day, by device.
PER_HOUR_WH = {
    "Boiler": {DAY_BEFORE: 2_000.0, YESTERDAY: 3_000.0},
    "Lights": {DAY_BEFORE: 1_000.0, YESTERDAY: 1_000.0},
    "Incomer": {DAY_BEFORE: 3_000.0, YESTERDAY: 4_000.0},
}
#: The series unit of each device's meter (the templates': em1 counts kWh, cb3 and pm3 Wh).
FACTOR = {"Boiler": 1e-3, "Lights": 1.0, "Incomer": 1.0}
#: One hour of the lights' yesterday, flagged: the page marks their figures.
FLAGGED_HOUR = int(datetime.combine(YESTERDAY, time(12), tzinfo=PARIS).timestamp())
FIRST_HOUR = int(datetime(2027, 1, 12, tzinfo=ZoneInfo("UTC")).timestamp())
HOURS = 3 * 24


def energy_settings(base: Settings) -> Settings:
    devices = (
        DeviceConfig(name="Boiler", model="panelhub-sim-em1", bus="meters", unit_id=1,
                     usage=Usage.HEATING, zone="Basement"),
        DeviceConfig(name="Lights", model="panelhub-sim-cb3", bus="meters", unit_id=2,
                     usage=Usage.LIGHTING, zone="Office"),
        DeviceConfig(name="Incomer", model="panelhub-sim-pm3", bus="meters", unit_id=3,
                     usage=Usage.MAIN),
    )  # fmt: skip
    return base.model_copy(
        update={
            "buses": (TCPBusConfig(kind="tcp", name="meters", host="127.0.0.1", port=1),),
            "devices": devices,
            "timezone": "Europe/Paris",
            # Nothing is polled: the tests put the data in the store themselves.
            "datalogger": DataloggerConfig(enable=False),
        }
    )


def fill_energy(web: Web) -> dict[str, int]:
    """Apply the settings and store the known consumption; returns each meter's series id."""

    async def fill() -> dict[str, int]:
        await web.context.control.apply_settings(energy_settings(web.context.control.settings))
        return await store_energy(web.datalog.store)

    return asyncio.run(fill())


async def store_energy(store: TimeSeriesStore) -> dict[str, int]:
    """Write the known rollups of the meters' series (registered by the datalogger)."""
    ids = {
        info.device: info.series_id
        for info in await store.series()
        if info.key == "active_energy_import"
    }
    rollups: list[Rollup] = []
    for device, series_id in ids.items():
        rollups += _rollups(device, series_id)
    await store.write_rollups(rollups)
    return ids


def _rollups(device: str, series_id: int) -> list[Rollup]:
    hours = []
    for index in range(HOURS):
        start = FIRST_HOUR + index * 3_600
        day = datetime.fromtimestamp(start, PARIS).date()
        wh = PER_HOUR_WH[device].get(day, 500.0)
        flagged = device == "Lights" and start == FLAGGED_HOUR
        quality = Quality.GAP if flagged else Quality.GOOD
        hours.append(_bucket(series_id, Resolution.HOUR, start, wh * FACTOR[device], quality))
    days = []
    for index in range(3):
        inside = hours[index * 24 : (index + 1) * 24]
        quality = Quality.GOOD
        for hour in inside:
            quality |= hour.quality
        total = sum(hour.total for hour in inside)
        days.append(_bucket(series_id, Resolution.DAY, inside[0].start, total, quality))
    return hours + days


def _bucket(
    series_id: int, resolution: Resolution, start: int, total: float, quality: Quality
) -> Rollup:
    return Rollup(series_id, resolution, start, 12, 0.0, 0.0, 0.0, total, quality)


def raw_samples(web: Web, device: str, key: str, points: list[tuple[int, float]]) -> int:
    """Store raw samples of one measurement; returns its series id."""

    async def fill() -> int:
        store = web.datalog.store
        [info] = [s for s in await store.series_for(device) if s.key == key]
        await store.append([(info.series_id, Sample(ts, value)) for ts, value in points])
        return info.series_id

    return asyncio.run(fill())


NEW_PASSWORD = "Busbar-Torque-91"  # noqa: S105 - a test password
FIRST_PASSWORD = "Panel-Meter-Start-4"  # noqa: S105 - a test password


def logged_in(web: Web, role: str = "admin") -> TestClient:
    """A client with a session of ``role`` (its first password changed), on its own loop."""
    client = web.new_client()
    if role == "admin":
        name, password = "admin", web.initial_password
    else:
        name, password = f"{role}1", FIRST_PASSWORD
        asyncio.run(web.context.accounts.create(name, Role(role), password))
    response, _ = web.login(name, password, client)
    assert response.headers["location"] == "/password"
    session = web.context.sessions.get(client.cookies[SESSION_COOKIE])
    assert session is not None
    changed = client.post(
        "/password",
        data={"current": password, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD,
              "csrf_token": session.csrf_token},
        headers={"origin": ORIGIN},
        follow_redirects=False,
    )  # fmt: skip
    assert changed.status_code == 303, changed.text
    return client
