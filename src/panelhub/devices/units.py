"""The units a device template may name, each with its SI (or base) unit and factor.

``value in base unit = value in unit * factor``: 1.5 kWh is 1500 Wh. The base of an energy is
Wh (not J) and of a volume flow m3/h, as meters and bills count them. °C and K keep separate
bases: converting them needs an offset, not a factor, and no meter map mixes the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True, slots=True)
class Unit:
    symbol: str
    base: str  # the unit stored and shown: SI, or Wh/varh/VAh for energies
    factor: float  # value in ``base`` = value in ``symbol`` * factor


_PREFIXED: Final = (
    # (base, ((symbol, factor), ...)); from docs/device-templates.md "Units".
    ("V", (("V", 1.0), ("kV", 1e3))),
    ("A", (("A", 1.0), ("kA", 1e3), ("mA", 1e-3))),
    ("W", (("W", 1.0), ("kW", 1e3), ("MW", 1e6))),
    ("var", (("var", 1.0), ("kvar", 1e3), ("Mvar", 1e6))),
    ("VA", (("VA", 1.0), ("kVA", 1e3), ("MVA", 1e6))),
    ("Wh", (("Wh", 1.0), ("kWh", 1e3), ("MWh", 1e6))),
    ("varh", (("varh", 1.0), ("kvarh", 1e3), ("Mvarh", 1e6))),
    ("VAh", (("VAh", 1.0), ("kVAh", 1e3), ("MVAh", 1e6))),
    ("Hz", (("Hz", 1.0),)),
    ("%", (("%", 1.0),)),
    ("", (("", 1.0),)),  # dimensionless: power factor, counts
    ("°C", (("°C", 1.0),)),
    ("K", (("K", 1.0),)),
    ("m3", (("m3", 1.0), ("l", 1e-3))),
    ("m3/h", (("m3/h", 1.0), ("l/h", 1e-3))),
    ("s", (("s", 1.0), ("h", 3600.0))),
    ("Pa", (("Pa", 1.0), ("kPa", 1e3), ("bar", 1e5))),
    ("lux", (("lux", 1.0),)),
    ("ppm", (("ppm", 1.0),)),
)

#: Every known unit by symbol.
UNITS: Final[Mapping[str, Unit]] = MappingProxyType(
    {
        symbol: Unit(symbol, base, factor)
        for base, symbols in _PREFIXED
        for symbol, factor in symbols
    }
)
