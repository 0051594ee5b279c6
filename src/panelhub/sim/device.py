"""One simulated meter under one unit ID, bound to a pymodbus ``SimDevice``.

Theory of operation: :meth:`SimulatedMeter.refresh` (called periodically by the server) moves
the pure model forward and encodes every measured point into a register *image*. pymodbus calls
the device's ``action`` hook on every access, before it slices the response out of its own
register list; the hook copies the image into that list, applies the side effects of writes
(breaker commands) and refuses what the real device would refuse. The writable config block is
never in the image, so what a client writes there is what it reads back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from pymodbus.constants import ExcCodes
from pymodbus.pdu.device import ModbusDeviceIdentification
from pymodbus.simulator import DataType, SimData, SimDevice

from panelhub.devices.template import DeviceTemplate
from panelhub.errors import ConfigError
from panelhub.sim.kinds import PROFILES, Identity, MeterKind
from panelhub.sim.model import BreakerSwitch, MeterModel, Rating, Reading
from panelhub.sim.physics import lattice_value
from panelhub.sim.registermap import BitPoint, Table, encode_ascii

DEFAULT_DAY_LENGTH_S: Final = 600.0  # one simulated day every 10 minutes: a demo shows both peaks
DEMAND_INTERVAL_MIN: Final = 1  # minutes; IEC 61557-12 demand periods are 1..60 min
DEMAND_INTERVAL_MAX: Final = 60
DEFAULT_DEMAND_INTERVAL_MIN: Final = 15  # the usual billing demand period
BITS_PER_WORD: Final = 16  # pymodbus packs coils and discrete inputs 16 to a register

# Modbus Application Protocol v1.1b3 §6: which data table each function code reaches.
FUNCTION_TABLES: Final[Mapping[int, Table]] = {
    1: Table.COILS,
    5: Table.COILS,
    15: Table.COILS,
    2: Table.DISCRETE_INPUTS,
    3: Table.HOLDING_REGISTERS,
    6: Table.HOLDING_REGISTERS,
    16: Table.HOLDING_REGISTERS,
    22: Table.HOLDING_REGISTERS,
    23: Table.HOLDING_REGISTERS,
    4: Table.INPUT_REGISTERS,
}


@dataclass(frozen=True, slots=True)
class Meter:
    """What to simulate: a kind or a device template, a seed (same seed, same values), a label.

    ``template`` is a built-in template id (``"eastron-sdm630"``) or a template object (a custom
    model); exactly one of ``kind`` and ``template`` is given.
    """

    kind: MeterKind | None = None
    seed: int = 1
    label: str = ""
    day_length_s: float = DEFAULT_DAY_LENGTH_S
    template: DeviceTemplate | str | None = None

    def __post_init__(self) -> None:
        if (self.kind is None) == (self.template is None):
            raise ConfigError("a simulated meter names either a kind or a template, not both")

    @property
    def name(self) -> str:
        """The kind or the template id, for logs and listings."""
        if isinstance(self.template, DeviceTemplate):
            return self.template.id
        return str(self.kind or self.template)


class SimulatedDevice(ABC):
    """The runtime of one :class:`Meter`: model, breaker switch, register image, SimDevice.

    What the tests of a poller need is here whatever the map: the SI values the image was built
    from (:attr:`values`), counter resets, meter swaps and a device that stops answering.
    """

    def __init__(
        self, unit_id: int, meter: Meter, *, now_s: float, rating: Rating, identity: Identity
    ) -> None:
        self.unit_id = unit_id
        self.meter = meter
        self.rating = rating
        self.identity = identity
        spread = (lattice_value(meter.seed, 0, 0) + 1.0) / 2.0  # each seed its own counter history
        self.model = MeterModel(
            phase_count=rating.phase_count,
            rated_power_w=rating.rated_power_w,
            seed=meter.seed,
            day_length_s=meter.day_length_s,
            initial_energy_wh=rating.initial_energy_wh * (1.0 + spread),
        )
        self.switch = BreakerSwitch()
        self.is_answering = True
        self.values: Mapping[str, float] = {}
        self._words: dict[Table, dict[int, int]] = {}
        self._bits: dict[Table, dict[int, bool]] = {}
        self._now_s = now_s
        self.reading: Reading = self.refresh(now_s)

    @property
    def label(self) -> str:
        return self.meter.label or f"{self.meter.name} unit {self.unit_id}"

    def refresh(self, now_s: float) -> Reading:
        """Advance the model to ``now_s`` (never backwards) and rebuild the register image."""
        self._now_s = max(self._now_s, now_s)
        self.reading = self.model.advance(self._now_s, is_energised=self.switch.is_closed)
        self.values = self._quantities(self.reading)
        self._rebuild(self.values)
        return self.reading

    def reset_counters(self) -> None:
        """Clear the energy counters to 0, as a meter's reset command or a firmware fault does."""
        self.model.restart_counters(0.0)
        self.refresh(self._now_s)

    def replace_meter(self, *, initial_energy_wh: float = 0.0) -> None:
        """Swap in a new meter: the counters jump to the new meter's (small) reading."""
        self.model.restart_counters(initial_energy_wh)
        self.refresh(self._now_s)

    def set_answering(self, *, is_answering: bool) -> None:
        """Stop answering every request (unplugged, powered off), or answer again."""
        self.is_answering = is_answering

    @abstractmethod
    def _quantities(self, reading: Reading) -> Mapping[str, float]:
        """The values the image holds, by the map's quantity names."""

    @abstractmethod
    def _rebuild(self, values: Mapping[str, float]) -> None:
        """Encode ``values`` into the register image the action hook copies from."""

    @abstractmethod
    def sim_device(self) -> SimDevice:
        """The pymodbus device serving the image under :attr:`unit_id`."""

    def identification(self) -> ModbusDeviceIdentification:
        ident = self.identity
        # pymodbus leaves this constructor unannotated.
        return ModbusDeviceIdentification(  # type: ignore[no-untyped-call]
            info_name={
                "VendorName": ident.vendor_name,
                "ProductCode": ident.product_code,
                "MajorMinorRevision": ident.revision,
                "ProductName": ident.product_name,
                "ModelName": ident.model_name,
                "UserApplicationName": self.label,
            }
        )

    async def _action(  # signature fixed by pymodbus SimAction
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        # pymodbus has already checked the range against the table.
        table = FUNCTION_TABLES.get(function_code)
        if table is None or not self._has_table(table):
            return ExcCodes.ILLEGAL_FUNCTION
        if set_values is not None and (refusal := self._write(table, address, set_values)):
            return refusal
        self._copy_image(table, start_address, registers)
        self._overlay(table, start_address, registers, (address, count))
        return None

    def _overlay(
        self, table: Table, start_address: int, registers: list[int], read: tuple[int, int]
    ) -> None:
        """Change what one particular read returns (address, count); the image stands otherwise."""
        del table, start_address, registers, read

    def _write(self, table: Table, address: int, values: list[int] | list[bool]) -> ExcCodes | None:
        """Apply a write pymodbus has let through (tables not ``readonly``); None accepts it."""
        del table, address, values
        return ExcCodes.ILLEGAL_ADDRESS

    @abstractmethod
    def _has_table(self, table: Table) -> bool:
        """Whether the device has ``table`` at all (else: exception 01, Illegal Function)."""

    def _copy_image(self, table: Table, start_address: int, registers: list[int]) -> None:
        if table in (Table.COILS, Table.DISCRETE_INPUTS):
            for bit_address, is_set in self._bits.get(table, {}).items():
                index = bit_address // BITS_PER_WORD - start_address
                mask = 1 << (bit_address % BITS_PER_WORD)
                registers[index] = registers[index] | mask if is_set else registers[index] & ~mask
            return
        for word_address, word in self._words.get(table, {}).items():
            registers[word_address - start_address] = word


class SimulatedMeter(SimulatedDevice):
    """A meter of one of the built-in kinds, with its writable config block and commands."""

    def __init__(self, unit_id: int, meter: Meter, *, now_s: float) -> None:
        if meter.kind is None:
            raise ConfigError("SimulatedMeter serves a kind; use simulate() for a template")
        self.profile = PROFILES[meter.kind]
        super().__init__(
            unit_id, meter, now_s=now_s, rating=self.profile.rating, identity=self.profile.identity
        )

    def _quantities(self, reading: Reading) -> Mapping[str, float]:
        return self.profile.quantities(reading, self.switch)

    def _rebuild(self, values: Mapping[str, float]) -> None:
        regmap = self.profile.register_map
        words: dict[int, int] = {}
        for point in regmap.points:
            for offset, word in enumerate(point.encode(values[point.quantity])):
                words[point.address + offset] = word
        self._words = {regmap.table: words}
        self._bits = {
            Table.COILS: {b.address: values[b.quantity] > 0 for b in regmap.coils},
            Table.DISCRETE_INPUTS: {
                b.address: values[b.quantity] > 0 for b in regmap.discrete_inputs
            },
        }

    def sim_device(self) -> SimDevice:
        """Build the pymodbus device: four separate tables, as real meters have."""
        regmap = self.profile.register_map
        config = regmap.config
        measured = [
            SimData(start, values=[0] * count, datatype=DataType.REGISTERS, readonly=True)
            for start, count in regmap.ranges
        ]
        config_words = [
            DEFAULT_DEMAND_INTERVAL_MIN,
            0,
            *encode_ascii(self.label, config.label_words),
        ]
        holding = [SimData(config.address, values=config_words, datatype=DataType.REGISTERS)]
        # pymodbus needs at least one entry per table; a table the kind lacks gets a
        # placeholder that the action hook answers with Illegal Function.
        placeholder = [SimData(0, values=[0], datatype=DataType.REGISTERS, readonly=True)]
        if regmap.table is Table.HOLDING_REGISTERS:
            holding, inputs = holding + measured, placeholder
        else:
            inputs = measured
        return SimDevice(
            id=self.unit_id,
            simdata=(
                self._bit_table(Table.COILS),
                self._bit_table(Table.DISCRETE_INPUTS),
                holding,
                inputs,
            ),
            action=self._action,
        )

    def _bit_table(self, table: Table) -> list[SimData]:
        return bit_table(b.address for b in self._bit_points(table))

    def _bit_points(self, table: Table) -> tuple[BitPoint, ...]:
        regmap = self.profile.register_map
        return regmap.coils if table is Table.COILS else regmap.discrete_inputs

    def _has_table(self, table: Table) -> bool:
        if table is Table.HOLDING_REGISTERS:
            return True  # every kind has the config block
        if table is Table.INPUT_REGISTERS:
            return self.profile.register_map.table is Table.INPUT_REGISTERS
        return bool(self._bit_points(table))

    def _write(self, table: Table, address: int, values: list[int] | list[bool]) -> ExcCodes | None:
        if table is Table.HOLDING_REGISTERS:
            index = self.profile.register_map.config.demand_interval_address - address
            if (
                0 <= index < len(values)
                and not DEMAND_INTERVAL_MIN <= int(values[index]) <= DEMAND_INTERVAL_MAX
            ):
                return ExcCodes.ILLEGAL_VALUE
            return None
        writable = {b.address: b.quantity for b in self.profile.register_map.coils if b.is_writable}
        commands = [(writable.get(address + i), bool(v)) for i, v in enumerate(values)]
        if any(quantity is None for quantity, _ in commands):
            return ExcCodes.ILLEGAL_ADDRESS
        for quantity, value in commands:
            if quantity == "is_closed" and value:
                self.switch.close()
            elif quantity == "is_closed":
                self.switch.open()
            elif value:  # "trip_test"
                self.switch.trip()
        self.refresh(self._now_s)
        return None


def bit_table(addresses: Iterable[int]) -> list[SimData]:
    """A pymodbus bit table from address 0 holding ``addresses``, padded to whole registers."""
    count = max([address + 1 for address in addresses] + [1])
    padded = -(-count // BITS_PER_WORD) * BITS_PER_WORD
    return [SimData(0, values=[False] * padded, datatype=DataType.BITS)]
