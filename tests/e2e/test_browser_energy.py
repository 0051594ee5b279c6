"""The energy pages in a real browser: the home page's top consumers, a trend's bars and tooltips.

The panel gets a real datalogger (not polling: its store is filled with known consumption,
``tests.web.energydata``) and the settings with three meters in Paris time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from panelhub.datalogservice import DataloggerService
from panelhub.service import build_bus
from tests.e2e.conftest import Panel
from tests.e2e.test_browser_auth import first_login
from tests.web.energydata import energy_settings, store_energy


async def _datalogger(panel: Panel) -> DataloggerService:
    settings = energy_settings(panel.context.control.settings)
    await panel.context.control.apply_settings(settings)
    datalog = DataloggerService(
        settings.model_copy(update={"devices": ()}),
        bus_for=panel.gateway.bus,
        bus_factory=build_bus,
    )
    await datalog.apply(settings)  # registers the meters' series; polling is off
    await store_energy(datalog.store)
    return datalog


@pytest.fixture
def energy_panel(panel: Panel) -> Iterator[Panel]:
    original = panel.context.datalog
    datalog = panel.run(_datalogger(panel))
    panel.context.datalog = datalog
    yield panel
    panel.context.datalog = original
    panel.run(datalog.aclose())


def test_home_shows_the_top_consumers_and_a_trend_its_bars(page: Page, energy_panel: Panel):
    first_login(page, energy_panel)
    rows = page.locator("table#usage tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td").nth(0)).to_have_text("heating")
    expect(rows.nth(0).locator("td.share")).to_have_text("75.0 %")
    expect(rows.nth(0).locator("td.change")).to_have_text("▲ +50.0 %")
    expect(rows.nth(1).locator("td").nth(0)).to_have_text("lighting")
    expect(rows.nth(1).locator("td.share")).to_have_text("25.0 %")
    expect(page.locator("table#mains tbody td").first).to_have_text("Incomer")
    expect(page.locator("svg.chart")).to_have_count(2)

    page.goto("/trends")
    page.select_option("#device", ["Boiler"])
    page.fill("#from", "2027-01-14")
    page.fill("#to", "2027-01-14")
    with page.expect_navigation():
        page.click("#trend-form button[type=submit]")
    assert "device=Boiler" in page.url  # a bookmarkable trend
    bars = page.locator("#trend svg rect:has(title)")
    expect(bars).to_have_count(24)
    expect(bars.first.locator("title")).to_have_text("2027-01-14 00:00, Boiler, 3.00 kWh")
    bars.nth(12).hover()  # the browser's tooltip is the bar's <title>
    expect(bars.nth(12).locator("title")).to_have_text("2027-01-14 12:00, Boiler, 3.00 kWh")
