"""The devices pages: add, edit and delete devices as settings, and watch their live values."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from panelhub.config.models import Settings
from panelhub.security.accounts import Role
from panelhub.sim import Meter, serve_tcp
from tests.web.browsers import admin_browser, browser_of, call, form
from tests.web.conftest import Web
from tests.web.test_settings import log_in_as_admin

SDM630 = {"model": "eastron-sdm630", "usage": "heating", "zone": "Ground floor",
          "commodity": "electricity", "period_min": "10"}  # fmt: skip


@pytest.fixture
def admin(web: Web) -> Iterator[TestClient]:
    with web.new_client() as client:  # one loop: the poller runs between requests
        log_in_as_admin(web, client)
        yield client
        assert client.portal is not None
        client.portal.call(web.datalog.aclose)
        client.portal.call(web.gateway.aclose)


def add_tcp(web: Web, client: TestClient, name: str, port: int, unit_id: int = 1, **extra: str):
    fields = {**SDM630, "name": name, "connection": "tcp", "host": "127.0.0.1",
              "port": str(port), "unit_id": str(unit_id), **extra}  # fmt: skip
    return form(web, client, "/devices/add", **fields)


def settings_of(web: Web) -> Settings:
    return web.context.control.settings


def test_admin_adds_tcp_devices_sharing_one_bus_and_they_are_saved(web, admin):
    added = add_tcp(web, admin, "Heating", 1502, unit_id=3)
    assert added.status_code == 303, added.text[added.text.find("problems") :][:600]
    assert added.headers["location"] == "/devices?saved=1"
    assert add_tcp(web, admin, "Lighting", 1502, unit_id=4).status_code == 303
    devices = settings_of(web).devices
    assert [(d.name, d.unit_id, d.bus, d.period_min) for d in devices] == [
        ("Heating", 3, "Heating", 10),
        ("Lighting", 4, "Heating", 10),
    ]
    assert [b.name for b in settings_of(web).buses] == ["Heating"]  # one gateway, one bus
    saved = tomllib.loads((web.data_dir / "panelhub.toml").read_text())
    assert [d["name"] for d in saved["devices"]] == ["Heating", "Lighting"]
    page = admin.get("/devices")
    assert 'data-device="Heating"' in page.text
    assert "Eastron SDM630-Modbus V2" in page.text


def test_a_serial_device_goes_on_a_configured_line(web, admin):
    data = settings_of(web).model_dump(mode="json")
    data["buses"] = [{"kind": "rtu", "name": "rs485", "device": "/dev/null"}]
    assert admin.portal is not None
    admin.portal.call(web.context.control.apply_settings, Settings.model_validate(data))
    fields = {**SDM630, "name": "Pump", "connection": "serial", "line": "rs485", "unit_id": "12"}
    assert form(web, admin, "/devices/add", **fields).status_code == 303
    (pump,) = settings_of(web).devices
    assert (pump.bus, pump.unit_id) == ("rs485", 12)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": "A name far longer than twenty"}, "at most 20 characters"),
        ({"name": "Heating", "model": "no-such-model"}, "not a known template"),
        ({"name": "Heating", "period_min": "7"}, "period_min"),
        ({"name": "Heating", "host": ""}, "needs its host"),
    ],
)
def test_bad_devices_are_refused_with_the_reason_and_change_nothing(web, admin, fields, problem):
    before = settings_of(web)
    response = add_tcp(web, admin, **{"name": "x", "port": 1502, **fields})
    assert response.status_code == 400
    assert problem in response.text
    assert settings_of(web) == before


def test_edit_and_delete(web, admin):
    add_tcp(web, admin, "Heating", 1502)
    edited = form(web, admin, "/devices/edit", original="Heating", name="Boiler", label="Q4",
                  usage="heating", zone="Roof", commodity="electricity", period_min="1",
                  enable="no")  # fmt: skip
    assert edited.status_code == 303
    (device,) = settings_of(web).devices
    assert (device.name, device.label, device.zone, device.period_min, device.enable) == (
        "Boiler",
        "Q4",
        "Roof",
        1,
        False,
    )
    assert form(web, admin, "/devices/delete", name="Boiler").status_code == 303
    assert settings_of(web).devices == ()
    assert form(web, admin, "/devices/delete", name="Boiler").status_code == 404


def test_viewers_read_devices_but_cannot_change_them(web, admin):
    add_tcp(web, admin, "Heating", 1502)
    viewer = browser_of(web, "reader", Role.VIEWER)
    assert viewer.get("/devices").status_code == 200
    assert "Add a device" not in viewer.get("/devices").text
    assert add_tcp(web, viewer, "Other", 1502).status_code == 403
    assert [d["name"] for d in viewer.get("/api/devices").json()["devices"]] == ["Heating"]


def test_monitoring_shows_live_values_read_from_the_meter(web, admin):
    meters = {1: Meter(template="eastron-sdm630", seed=7)}
    assert admin.portal is not None
    with admin.portal.wrap_async_context_manager(serve_tcp(meters)) as endpoint:
        assert add_tcp(web, admin, "Heating", endpoint.port).status_code == 303
        page = admin.get("/monitoring")
        assert 'data-device="Heating"' in page.text
        assert "/static/monitoring.js" in page.text
        voltage = None
        for _ in range(100):  # the page's watch wakes the poller's live reads: within seconds
            state = call(web, admin, "GET", "/api/monitoring").json()["devices"][0]
            readings = {r["key"]: r for r in state["readings"]}
            voltage = readings["voltage_l1_n"]["value"]
            if voltage is not None:
                break
            time.sleep(0.1)
        assert voltage is not None
        assert 200 < voltage < 250
        assert state["state"] == "answering"
        assert abs(voltage - endpoint.meters[1].values["voltage_l1_n"]) < 5


def test_which_measurements_are_logged_and_how_often(web, admin):
    add_tcp(web, admin, "Heating", 1502)
    page = admin.get("/devices")
    assert 'name="log:frequency"' in page.text
    fields = {f"log:{key}": "on" for key in ("voltage_l1_n", "active_energy_import")}
    saved = form(web, admin, "/devices/measurements", original="Heating",
                 **fields, **{"period:active_energy_import": "1"})  # fmt: skip
    assert saved.status_code == 303
    (device,) = settings_of(web).devices
    overrides = {m.key: (m.enable, m.period_min) for m in device.measurements}
    assert overrides["active_energy_import"] == (True, 1)
    assert overrides["frequency"] == (False, None)
    assert "voltage_l1_n" not in overrides  # logged at the device's period: nothing to say
    logged = web.datalog.devices()[0]
    assert logged.config.measurements == device.measurements
    page = admin.get("/devices")
    assert 'name="log:frequency" aria-label="Log Frequency">' in page.text  # unchecked now
    unknown = form(web, admin, "/devices/measurements", original="Nobody")
    assert unknown.status_code == 404


def test_pages_that_need_the_datalogger_answer_503_without_one(web):
    client = admin_browser(web)
    web.context.datalog = None
    for path in ("/devices", "/monitoring", "/models"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert "datalogger is not running" in response.text
