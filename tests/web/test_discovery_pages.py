"""The discovery pages: scan TCP hosts or a serial line, watch the progress, cancel, add."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from panelhub.sim import Meter, serve_tcp
from tests.web.browsers import form
from tests.web.conftest import Web
from tests.web.test_settings import log_in_as_admin


@pytest.fixture
def admin(web: Web) -> Iterator[TestClient]:
    with web.new_client() as client:  # one loop: the scan runs between requests
        log_in_as_admin(web, client)
        yield client
        assert client.portal is not None
        client.portal.call(web.datalog.aclose)


def wait_finished(client: TestClient, location: str) -> str:
    for _ in range(200):  # bounded: 20 s
        page = client.get(location)
        if 'data-state="running"' not in page.text:
            return str(page.text)
        assert 'http-equiv="refresh"' in page.text  # the page refreshes itself meanwhile
        time.sleep(0.1)
    raise AssertionError("the scan did not finish")


def test_a_host_scan_finds_the_meters_and_links_them_to_the_add_form(web, admin):
    meters = {1: Meter(template="schneider-pm5560", seed=1), 3: Meter(template="abb-b23", seed=2)}
    assert admin.portal is not None
    with admin.portal.wrap_async_context_manager(serve_tcp(meters)) as endpoint:
        started = form(web, admin, "/devices/discover", target="hosts",
                       hosts=f"127.0.0.1:{endpoint.port}", first="1", last="4")  # fmt: skip
        assert started.status_code == 303
        page = wait_finished(admin, started.headers["location"])
    assert "4 of 4 addresses asked: finished" in page
    assert "Schneider Electric PowerLogic PM5560" in page
    assert "ABB B23 / B24" in page
    assert f"host=127.0.0.1&amp;port={endpoint.port}&amp;unit_id=3" in page
    prefilled = admin.get(f"/devices?model=abb-b23&host=127.0.0.1&port={endpoint.port}&unit_id=3")
    assert '<option value="abb-b23" selected>' in prefilled.text
    assert f'value="{endpoint.port}"' in prefilled.text


def test_a_scan_can_be_cancelled(web, admin):
    meters = {1: Meter(template="eastron-sdm630", seed=1)}
    assert admin.portal is not None
    with admin.portal.wrap_async_context_manager(serve_tcp(meters)) as endpoint:
        # Units 2 to 255 are silent: one timeout each, minutes in all, unless cancelled.
        started = form(web, admin, "/devices/discover", target="hosts",
                       hosts=f"127.0.0.1:{endpoint.port}", first="1", last="255")  # fmt: skip
        location = started.headers["location"]
        cancelled = form(web, admin, f"{location}/cancel")
        assert cancelled.status_code == 303
        page = wait_finished(admin, location)
    assert "cancelled" in page
    assert "of 255 addresses asked" in page


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"target": "hosts", "hosts": "", "first": "1", "last": "1"}, "give 1 to 32 hosts"),
        ({"target": "hosts", "hosts": "a b", "first": "9", "last": "2"}, "from 1 to 255"),
        ({"target": "hosts", "hosts": "a", "first": "x", "last": "2"}, "whole numbers"),
        ({"target": "line", "line": "nowhere", "first": "1", "last": "2"}, "no serial line"),
    ],
)
def test_bad_scans_are_refused_with_the_reason(web, admin, fields, problem):
    refused = form(web, admin, "/devices/discover", **fields)
    assert refused.status_code == 400
    assert problem in refused.text
