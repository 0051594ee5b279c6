"""The unit table and the quantity catalogue agree with each other and with the format."""

from __future__ import annotations

import pytest

from panelhub.devices.quantities import QUANTITIES
from panelhub.devices.units import UNITS
from panelhub.storage.series import SeriesKind


def test_every_quantity_is_in_a_base_unit():
    for quantity in QUANTITIES.values():
        assert UNITS[quantity.unit].base == quantity.unit, quantity


@pytest.mark.parametrize(
    ("symbol", "base", "factor"),
    [("kWh", "Wh", 1e3), ("mA", "A", 1e-3), ("l/h", "m3/h", 1e-3), ("h", "s", 3600.0),
     ("bar", "Pa", 1e5), ("", "", 1.0), ("°C", "°C", 1.0), ("Mvarh", "varh", 1e6)],
)  # fmt: skip
def test_unit_factors(symbol, base, factor):
    assert (UNITS[symbol].base, UNITS[symbol].factor) == (base, factor)


def test_counters_and_states():
    counters = {q.key for q in QUANTITIES.values() if q.kind is SeriesKind.COUNTER}
    assert counters == {
        "active_energy_import", "active_energy_export", "active_energy_total",
        "reactive_energy_import", "reactive_energy_export", "reactive_energy_total",
        "apparent_energy", "operating_time", "operation_count",
    }  # fmt: skip
    assert [q.key for q in QUANTITIES.values() if q.kind is SeriesKind.STATE] == ["status"]
    assert QUANTITIES["thd_current_l2"].name == "THD current L2"
    assert len(QUANTITIES) == 49  # as listed in docs/device-templates.md
