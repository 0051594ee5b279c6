"""The home page: consumption by usage and zone from the real store, mains apart, flags shown."""

from __future__ import annotations

import re

import pytest

from tests.web.conftest import Web
from tests.web.energydata import fill_energy, logged_in


def cells(page: str, table: str) -> list[list[str]]:
    """The text of each body row of ``table`` (tags stripped)."""
    body = re.search(rf'<table id="{table}">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert body is not None, table
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in rows
    ]


def test_yesterday_against_the_day_before_by_usage_and_zone_with_the_mains_apart(web: Web):
    fill_energy(web)
    client = logged_in(web, "viewer")
    page = client.get("/")
    assert page.status_code == 200, page.text
    assert "2027-01-14 compared with 2027-01-13" in page.text
    assert cells(page.text, "usage") == [
        ["heating", "75.0 %", "72.00", "48.00", "▲ +50.0 %", ""],
        ["lighting", "25.0 %", "24.00", "24.00", "= 0.0 %", "⚠ gap"],
    ]
    assert [row[:5] for row in cells(page.text, "zone")] == [
        ["Basement", "75.0 %", "72.00", "48.00", "▲ +50.0 %"],
        ["Office", "25.0 %", "24.00", "24.00", "= 0.0 %"],
    ]
    assert cells(page.text, "mains") == [["Incomer", "96.00", "72.00", "▲ +33.3 %", ""]]
    assert page.text.count("<svg") == 2  # the two donuts
    assert "heating: 75.0 %" in page.text  # the donut's legend
    assert "96.00 kWh" in page.text  # the total in the donut's centre


def test_the_api_gives_the_same_figures_in_watt_hours(web: Web):
    fill_energy(web)
    body = logged_in(web).get("/api/overview").json()
    assert body["unit"] == "Wh"
    assert body["period"] == {"from": "2027-01-14", "to": "2027-01-14"}
    assert body["by_usage"]["total"] == pytest.approx(96_000)
    assert body["by_usage"]["top"][0] == {
        "name": "heating", "consumption": pytest.approx(72_000), "share_pct": pytest.approx(75),
        "change_pct": pytest.approx(50), "quality": [], "previous": pytest.approx(48_000),
    }  # fmt: skip
    assert body["mains"][0]["consumption"] == pytest.approx(96_000)


def test_a_custom_range_across_day_rows_adds_up_the_same(web: Web):
    fill_energy(web)
    body = logged_in(web).get("/api/overview?period=custom&from=2027-01-13&to=2027-01-14").json()
    devices = {item["name"]: item["consumption"] for item in body["devices"]}
    assert devices == {"Boiler": pytest.approx(120_000), "Lights": pytest.approx(48_000),
                       "Incomer": pytest.approx(168_000)}  # fmt: skip
    assert [item["quality"] for item in body["devices"]] == [[], ["gap"], []]
    # The two days before hold 23 hours of data (from 12 January 00:00 UTC), at 500 Wh each.
    assert body["previous"] == {"from": "2027-01-11", "to": "2027-01-12"}
    assert body["devices"][0]["previous"] == pytest.approx(23 * 500)


@pytest.mark.parametrize(
    "query",
    ["commodity=plasma", "period=fortnight", "period=custom&from=2027-13-01",
     "period=custom&from=2027-01-14&to=2027-01-01", "period=custom&from=" + "9" * 80],
)  # fmt: skip
def test_a_bad_parameter_is_a_400_with_the_reason(web: Web, query: str):
    client = logged_in(web)
    page = client.get(f"/?{query}")
    assert page.status_code == 400
    assert 'id="error"' in page.text
    api = client.get(f"/api/overview?{query}")
    assert (api.status_code, api.json()["error"]) == (400, "invalid_query")


def test_no_meter_of_the_commodity_says_so(web: Web):
    fill_energy(web)
    page = logged_in(web).get("/?commodity=water")
    assert page.status_code == 200
    assert 'id="no-meters"' in page.text


def test_the_overview_needs_a_session(web: Web):
    assert web.new_client().get("/", follow_redirects=False).headers["location"] == "/login"
    assert web.new_client().get("/api/overview").status_code == 401
