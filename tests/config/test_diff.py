"""Names of changed settings, as the audit log records them: items by their key."""

from __future__ import annotations

from panelhub.config.diff import changed_settings
from panelhub.config.models import Settings

BUS = {"kind": "tcp", "name": "meters", "host": "127.0.0.1"}
HEATING = {"name": "Heating", "model": "eastron-sdm630", "bus": "meters", "unit_id": 4}
LIGHTS = {"name": "Lights", "model": "eastron-sdm120", "bus": "meters", "unit_id": 5}


def settings(*devices: dict[str, object]) -> Settings:
    return Settings.model_validate({"buses": [BUS], "devices": list(devices)})


def test_devices_are_named_by_their_name_not_their_place():
    old = settings(HEATING, LIGHTS)
    new = settings({**LIGHTS, "period_min": 15})
    assert changed_settings(old, new) == ["devices.Lights.period_min", "devices.Heating (removed)"]


def test_an_added_device_is_one_change():
    assert changed_settings(settings(HEATING), settings(HEATING, LIGHTS)) == [
        "devices.Lights (added)"
    ]
