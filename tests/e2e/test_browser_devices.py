"""Commissioning a meter in a real browser: add it on the Devices page, watch it on Monitoring.

The meter is a simulated Eastron SDM630 on loopback, served on the panel's own loop; the
panel's real datalogger polls it through the bus the page creates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AsyncExitStack

import pytest
from playwright.sync_api import Page, expect

from panelhub.sim import Meter, TcpEndpoint, serve_tcp
from tests.e2e.conftest import Panel
from tests.e2e.test_browser_auth import first_login


@pytest.fixture
def meter(panel: Panel) -> Iterator[TcpEndpoint]:
    stack = AsyncExitStack()
    meters = {7: Meter(template="eastron-sdm630", seed=5)}
    yield panel.run(stack.enter_async_context(serve_tcp(meters)))
    panel.run(stack.aclose())


def test_a_meter_added_in_the_page_shows_live_values_that_refresh(
    page: Page, panel: Panel, meter: TcpEndpoint
):
    first_login(page, panel)
    page.goto("/devices")
    page.click("#add summary")
    page.fill("#add-name", "Workshop")
    page.select_option("#add-model", "eastron-sdm630")
    page.select_option("#add-usage", "machine")
    page.check("input[name=connection][value=tcp]")
    page.fill("#add-host", "127.0.0.1")
    page.fill("#add-port", str(meter.port))
    page.fill("#add-unit_id", "7")
    with page.expect_navigation():
        page.click("#add-device button[type=submit]")
    expect(page.locator("#saved")).to_be_visible()
    expect(page.locator('tr[data-device="Workshop"] td.name')).to_have_text("Workshop")

    page.goto("/monitoring")
    section = page.locator('section[data-device="Workshop"]')
    voltage = section.locator('tr[data-key="voltage_l1_n"] [data-field="value"]')
    read_at = section.locator('tr[data-key="voltage_l1_n"] [data-field="read_at"]')
    # The page's watch starts live reads at once; the script fills them in without a reload.
    expect(voltage).to_have_text(re.compile(r"^2[0-4]\d(\.\d+)?$"), timeout=10_000)
    expect(section.locator('[data-field="state"]')).to_have_text("answering")
    first = read_at.text_content()
    expect(read_at).not_to_have_text(first or "", timeout=20_000)  # refreshed in place
    assert page.url.endswith("/monitoring")
