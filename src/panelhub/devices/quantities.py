"""The quantity catalogue: the measurement keys PanelHub (and its simulator) know by meaning.

A template should use these keys whenever one fits, so that trends, aggregates and the
simulator treat the same quantity the same way whatever the meter. A single-phase meter uses
the ``l1`` keys. Keys outside the catalogue are allowed in custom models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from panelhub.storage.series import SeriesKind


@dataclass(frozen=True, slots=True)
class Quantity:
    key: str
    name: str  # the default display name of a measurement with this key
    unit: str  # the base unit (panelhub.devices.units) values are stored in
    kind: SeriesKind


_I, _C, _S = SeriesKind.INSTANT, SeriesKind.COUNTER, SeriesKind.STATE
_PHASES: Final = ("L1", "L2", "L3")


def _per_phase(prefix: str, name: str, unit: str) -> list[Quantity]:
    return [Quantity(f"{prefix}_{phase.lower()}", f"{name} {phase}", unit, _I) for phase in _PHASES]


def _catalogue() -> list[Quantity]:
    return [
        *(Quantity(f"voltage_{p.lower()}_n", f"Voltage {p}-N", "V", _I) for p in _PHASES),
        Quantity("voltage_ln_avg", "Voltage L-N average", "V", _I),
        Quantity("voltage_l1_l2", "Voltage L1-L2", "V", _I),
        Quantity("voltage_l2_l3", "Voltage L2-L3", "V", _I),
        Quantity("voltage_l3_l1", "Voltage L3-L1", "V", _I),
        Quantity("voltage_ll_avg", "Voltage L-L average", "V", _I),
        *_per_phase("current", "Current", "A"),
        Quantity("current_n", "Current N", "A", _I),
        Quantity("current_avg", "Current average", "A", _I),
        *_per_phase("active_power", "Active power", "W"),
        Quantity("active_power_total", "Active power total", "W", _I),
        *_per_phase("reactive_power", "Reactive power", "var"),
        Quantity("reactive_power_total", "Reactive power total", "var", _I),
        *_per_phase("apparent_power", "Apparent power", "VA"),
        Quantity("apparent_power_total", "Apparent power total", "VA", _I),
        *_per_phase("power_factor", "Power factor", ""),
        Quantity("power_factor_total", "Power factor total", "", _I),
        Quantity("frequency", "Frequency", "Hz", _I),
        Quantity("active_energy_import", "Active energy import", "Wh", _C),
        Quantity("active_energy_export", "Active energy export", "Wh", _C),
        Quantity("active_energy_total", "Active energy total", "Wh", _C),
        Quantity("reactive_energy_import", "Reactive energy import", "varh", _C),
        Quantity("reactive_energy_export", "Reactive energy export", "varh", _C),
        Quantity("reactive_energy_total", "Reactive energy total", "varh", _C),
        Quantity("apparent_energy", "Apparent energy", "VAh", _C),
        Quantity("active_power_demand", "Active power demand", "W", _I),
        *_per_phase("thd_voltage", "THD voltage", "%"),
        *_per_phase("thd_current", "THD current", "%"),
        Quantity("operating_time", "Operating time", "s", _C),
        Quantity("status", "Status", "", _S),
        Quantity("operation_count", "Operation count", "", _C),
        Quantity("rated_current", "Rated current", "A", _I),
        Quantity("temperature", "Temperature", "°C", _I),
    ]


#: The catalogue by key.
QUANTITIES: Final[Mapping[str, Quantity]] = MappingProxyType({q.key: q for q in _catalogue()})
