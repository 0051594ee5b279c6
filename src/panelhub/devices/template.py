"""A device template in memory: what a model measures, where, and how to recognise it.

Built only by :mod:`panelhub.devices.loader`, which checks every rule of the format
(``docs/device-templates.md``); these records therefore trust their fields.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from panelhub.config.models import Commodity
from panelhub.devices.units import UNITS
from panelhub.modbus.datatypes import DataType, WordOrder, decode_number
from panelhub.storage.series import SeriesKind

MAX_ADDRESS: Final = 0xFFFF  # Modbus Application Protocol v1.1b3 §4.4: 16-bit addresses
MAX_REGISTERS_PER_READ: Final = 125  # v1.1b3 §6.3/§6.4: quantity of registers 1..125


class Function(IntEnum):
    """The read functions a template names, by Modbus function code."""

    COILS = 1
    DISCRETE_INPUTS = 2
    HOLDING_REGISTERS = 3
    INPUT_REGISTERS = 4

    @property
    def is_register(self) -> bool:
        return self >= Function.HOLDING_REGISTERS


@dataclass(frozen=True, slots=True)
class Measurement:
    """One value of the device: ``value in unit = raw * scale``."""

    key: str
    name: str
    unit: str
    function: Function
    address: int
    data_type: DataType
    word_order: WordOrder
    scale: float
    kind: SeriesKind
    invalid: tuple[float, ...] = ()  # raw values meaning "not available"

    @property
    def register_count(self) -> int:
        return self.data_type.register_count

    @property
    def end(self) -> int:
        """The address after the measurement's last register."""
        return self.address + self.register_count

    def decode(self, registers: Sequence[int]) -> float:
        """The value in ``unit``; NaN for an invalid marker or a NaN float.

        Raises:
            RemoteProtocolError: the register count does not fit the data type.
        """
        raw = decode_number(registers, self.data_type, self.word_order)
        if raw in self.invalid or (isinstance(raw, float) and math.isnan(raw)):
            return math.nan
        return raw * self.scale

    def to_si(self, value: float) -> float:
        """``value`` in ``unit`` converted to the unit's base (kWh -> Wh, kV -> V)."""
        return value * UNITS[self.unit].factor

    @property
    def si_unit(self) -> str:
        return UNITS[self.unit].base


@dataclass(frozen=True, slots=True)
class Alarm:
    """A device alarm: one bit of a register, or a coil / discrete input."""

    key: str
    name: str
    function: Function
    address: int
    bit: int | None = None  # 0..15 for registers; None for coils and discrete inputs


@dataclass(frozen=True, slots=True)
class Probe:
    """Registers read during discovery: the model matches if the raw value is in ``equals``."""

    function: Function
    address: int
    data_type: DataType
    word_order: WordOrder
    equals: tuple[float, ...]

    def matches(self, registers: Sequence[int]) -> bool:
        return decode_number(registers, self.data_type, self.word_order) in self.equals


@dataclass(frozen=True, slots=True)
class Identification:
    """How discovery recognises the model: any one of the three ways is enough.

    All probes of ``probes`` must match for the probe way to count.
    """

    product_code: re.Pattern[str] | None = None
    vendor_name: re.Pattern[str] | None = None
    probes: tuple[Probe, ...] = ()


@dataclass(frozen=True, slots=True)
class Limits:
    max_registers_per_request: int = MAX_REGISTERS_PER_READ
    max_gap: int = 0  # registers a read may span between two measurements


@dataclass(frozen=True, slots=True)
class DeviceTemplate:
    id: str
    vendor: str
    model: str
    description: str
    source: str
    commodity: Commodity
    limits: Limits
    identification: Identification
    measurements: tuple[Measurement, ...]
    alarms: tuple[Alarm, ...] = ()

    def measurement(self, key: str) -> Measurement:
        """Raises KeyError for a key the template does not have."""
        for measurement in self.measurements:
            if measurement.key == key:
                return measurement
        raise KeyError(key)
