"""The trends page and API: bars of consumption, lines of values, groups, compare mode."""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import pytest

from panelhub.storage.series import Resolution, Rollup
from tests.web.conftest import Web
from tests.web.energydata import FLAGGED_HOUR, fill_energy, logged_in, raw_samples

YESTERDAY = "from=2027-01-14&to=2027-01-14"


def values(body: dict[str, Any], label: str) -> list[float | None]:
    [series] = [item for item in body["series"] if item["label"] == label]
    return [point["value"] for point in series["points"]]


def test_energy_of_devices_is_drawn_as_hourly_bars_with_tooltips(web: Web):
    fill_energy(web)
    client = logged_in(web, "viewer")
    query = f"?device=Boiler&device=Lights&key=active_energy_import&{YESTERDAY}"
    body = client.get(f"/api/trends{query}").json()
    assert (body["kind"], body["unit"], body["bucket"]) == ("bars", "kWh", "hour")
    assert values(body, "Boiler") == [pytest.approx(3.0)] * 24  # a kWh meter
    assert values(body, "Lights") == [pytest.approx(1.0)] * 24  # a Wh meter, same unit shown
    [lights] = [item for item in body["series"] if item["label"] == "Lights"]
    flagged = [point["ts"] for point in lights["points"] if point["quality"]]
    assert flagged == [FLAGGED_HOUR]
    page = client.get(f"/trends{query}")
    assert page.status_code == 200
    svg = page.text[page.text.index("<svg") :]
    assert len(re.findall(r"<rect [^>]*><title>", svg)) == 48
    assert "<title>2027-01-14 00:00, Boiler, 3.00 kWh</title>" in svg
    assert "flagged: gap" in svg


def test_local_days_as_bars_and_compare_mode(web: Web):
    fill_energy(web)
    query = "?device=Boiler&from=2027-01-14&to=2027-01-14&bucket=day&compare=previous"
    body = logged_in(web).get(f"/api/trends{query}").json()
    assert [item["label"] for item in body["series"]] == ["Boiler", "Boiler (previous)"]
    assert values(body, "Boiler") == [pytest.approx(72.0)]
    assert values(body, "Boiler (previous)") == [pytest.approx(48.0)]


def test_consumption_by_usage_leaves_the_main_out(web: Web):
    fill_energy(web)
    client = logged_in(web)
    body = client.get("/api/trends?view=usage&from=2027-01-13&to=2027-01-14&bucket=day").json()
    assert [item["label"] for item in body["series"]] == ["heating", "lighting"]
    assert values(body, "heating") == [pytest.approx(48.0), pytest.approx(72.0)]
    assert values(body, "lighting") == [pytest.approx(24.0), pytest.approx(24.0)]
    zones = client.get("/api/trends?view=zone&" + YESTERDAY + "&bucket=day").json()
    assert [item["label"] for item in zones["series"]] == ["Basement", "Office"]


def test_a_continuous_quantity_is_drawn_as_lines_of_raw_samples(web: Web):
    fill_energy(web)
    start = FLAGGED_HOUR
    raw_samples(web, "Lights", "voltage_l1_n", [(start + 60 * i, 230.0 + i) for i in range(5)])
    client = logged_in(web)
    query = f"?device=Lights&key=voltage_l1_n&{YESTERDAY}"
    body = client.get(f"/api/trends{query}").json()
    assert (body["kind"], body["unit"], body["bucket"]) == ("lines", "V", "raw")
    assert values(body, "Lights") == [230.0, 231.0, 232.0, 233.0, 234.0]
    page = client.get(f"/trends{query}").text
    assert "<polyline" in page
    assert "Lights, 234.0 V" in page


@pytest.mark.parametrize(
    "query",
    ["device=Nobody", "key=Bad-Key", "from=yesterday", "view=galaxy", "compare=always",
     "bucket=5min&from=2027-01-10&to=2027-01-14", "from=2027-01-14&to=2027-01-10",
     "device=Boiler&key=voltage_l1_n&device=Lights&key=x"],
)  # fmt: skip
def test_a_bad_parameter_is_a_400_with_the_reason(web: Web, query: str):
    fill_energy(web)
    client = logged_in(web)
    page = client.get(f"/trends?{query}")
    if "key=x" in query:  # a key nobody logs is no error: nothing to draw
        assert page.status_code == 200
        assert 'id="no-data"' in page.text
        return
    assert page.status_code == 400, query
    assert 'id="error"' in page.text
    assert client.get(f"/api/trends?{query}").status_code == 400


def test_trends_need_a_session(web: Web):
    assert web.new_client().get("/trends", follow_redirects=False).status_code == 303
    assert web.new_client().get("/api/trends").status_code == 401


def test_beyond_two_days_lines_are_drawn_from_five_minute_means(web: Web):
    fill_energy(web)

    async def fill() -> None:
        store = web.datalog.store
        [info] = [s for s in await store.series_for("Lights") if s.key == "voltage_l1_n"]
        rollups = [
            Rollup(info.series_id, Resolution.FIVE_MINUTES, FLAGGED_HOUR + 300 * i, 5,
                   229.0, 232.0, 230.0 + i, math.nan)
            for i in range(3)
        ]  # fmt: skip
        await store.write_rollups(rollups)

    asyncio.run(fill())
    query = "?device=Lights&key=voltage_l1_n&from=2027-01-12&to=2027-01-14"
    body = logged_in(web).get(f"/api/trends{query}").json()
    assert (body["kind"], body["bucket"]) == ("lines", "5min")
    assert values(body, "Lights") == [230.0, 231.0, 232.0]
