"""A simulated device serving any device template, and :func:`simulate` picking the runtime.

Theory of operation: the meter model gives SI values per catalogue key
(:mod:`panelhub.sim.catalogue`); each measurement of the template turns its value into the
template's unit (the unit factor), then into a raw value (÷ scale), then into registers with the
template's data type and word order, on the table of its function. Registers no measurement,
probe or alarm names answer exception 02, unless they lie in a hole of at most ``max_gap``
registers between named ones: those read 0, which is what ``max_gap`` promises a planner.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from typing import Final

from pymodbus.simulator import DataType as SimDataType
from pymodbus.simulator import SimData, SimDevice

from panelhub.devices.catalog import builtin_templates
from panelhub.devices.template import DeviceTemplate, Function, Measurement
from panelhub.devices.units import UNITS
from panelhub.errors import ConfigError
from panelhub.modbus.datatypes import DataType, encode_number
from panelhub.sim.catalogue import Moment, catalogue_values
from panelhub.sim.device import Meter, SimulatedDevice, SimulatedMeter, bit_table
from panelhub.sim.kinds import PROFILES, Identity, MeterKind
from panelhub.sim.model import Rating, Reading
from panelhub.sim.registermap import Table
from panelhub.storage.series import SeriesKind

logger = logging.getLogger(__name__)

#: The simulator's own templates behave electrically like the kind they describe.
TEMPLATE_KINDS: Final[Mapping[str, MeterKind]] = {
    "panelhub-sim-pm3": MeterKind.THREE_PHASE,
    "panelhub-sim-em1": MeterKind.SINGLE_PHASE,
    "panelhub-sim-cb3": MeterKind.BREAKER,
}
# Any other template: sized like the kinds' meters of the same phase count.
THREE_PHASE_RATING: Final = PROFILES[MeterKind.THREE_PHASE].rating
SINGLE_PHASE_RATING: Final = PROFILES[MeterKind.SINGLE_PHASE].rating
INITIAL_OPERATING_TIME_S: Final = 3 * 365 * 86_400.0  # a meter some years into service
FLOAT32_MAX: Final = 3.4028234663852886e38  # IEEE 754 binary32 largest finite value
TABLES: Final[Mapping[Function, Table]] = {
    Function.COILS: Table.COILS,
    Function.DISCRETE_INPUTS: Table.DISCRETE_INPUTS,
    Function.HOLDING_REGISTERS: Table.HOLDING_REGISTERS,
    Function.INPUT_REGISTERS: Table.INPUT_REGISTERS,
}
_REGEX_META: Final = frozenset(".^$*+?{}[]\\|()")
_LEADING_ANCHORS: Final = re.compile(r"^(?:\(\?[aiLmsux]+\))?\^?")


def resolve_template(template: DeviceTemplate | str) -> DeviceTemplate:
    """Raises ConfigError for an id that is not a built-in template."""
    if isinstance(template, DeviceTemplate):
        return template
    try:
        return builtin_templates()[template]
    except KeyError:
        known = ", ".join(sorted(builtin_templates()))
        raise ConfigError(f"no built-in template {template!r}; known: {known}") from None


def _rating(template: DeviceTemplate) -> Rating:
    if template.id in TEMPLATE_KINDS:
        return PROFILES[TEMPLATE_KINDS[template.id]].rating
    keys = " ".join(m.key for m in template.measurements)
    return THREE_PHASE_RATING if "l2" in keys or "l3" in keys else SINGLE_PHASE_RATING


def _literal_prefix(pattern: str) -> str:
    r"""The plain characters a regex starts with: "^SDM630" -> "SDM630", "^iEM3\.1" -> "iEM3.1"."""
    text = _LEADING_ANCHORS.sub("", pattern)
    chars: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and not text[index + 1].isalnum():
            chars.append(text[index + 1])
            index += 2
            continue
        if char in _REGEX_META:
            break
        chars.append(char)
        index += 1
    return "".join(chars)


def _matching(pattern: re.Pattern[str] | None, candidates: Iterable[str]) -> str:
    """The first candidate ``pattern`` accepts, else the regex's literal start, for FC 43.

    The template's own names come first, so "^SDM630" answers the model name "SDM630-Modbus"
    as the real meter would; without a pattern the first candidate is the answer.
    """
    candidates = [c for c in candidates if c]
    if pattern is None:
        return candidates[0]
    for candidate in [*candidates, _literal_prefix(pattern.pattern)]:
        if candidate and pattern.search(candidate):
            return candidate
    logger.warning("no simulated identity matches %r; discovery will not find it", pattern.pattern)
    return candidates[0]


def template_identity(template: DeviceTemplate) -> Identity:
    """What the simulated device answers to Read Device Identification."""
    if template.id in TEMPLATE_KINDS:
        return PROFILES[TEMPLATE_KINDS[template.id]].identity
    ident = template.identification
    names = (template.model, template.vendor, template.id.upper(), template.id)
    return Identity(
        vendor_name=_matching(ident.vendor_name, (template.vendor, *names)),
        product_code=_matching(ident.product_code, names),
        revision="1.0",
        product_name=template.description or template.model,
        model_name=template.model,
    )


def _raw(measurement: Measurement, si_value: float) -> float:
    """The register value for ``si_value``: counters roll over, other integers saturate."""
    raw = si_value / UNITS[measurement.unit].factor / measurement.scale
    data_type = measurement.data_type
    if data_type.is_float:
        if data_type is DataType.FLOAT32 and math.isfinite(raw):
            return max(-FLOAT32_MAX, min(FLOAT32_MAX, raw))
        return raw
    if not math.isfinite(raw):
        return 0
    integer = int(math.copysign(math.floor(abs(raw) + 0.5), raw))
    low, high = data_type.int_range
    if measurement.kind is SeriesKind.COUNTER:
        return low + (integer - low) % (high - low + 1)  # as a real register wraps
    return max(low, min(high, integer))


def _blocks(spans: Iterable[tuple[int, int]], max_gap: int) -> list[tuple[int, int]]:
    """Readable (start, end) blocks: spans joined across holes of at most ``max_gap``."""
    blocks: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if blocks and start - blocks[-1][1] <= max_gap:
            blocks[-1] = (blocks[-1][0], max(blocks[-1][1], end))
        else:
            blocks.append((start, end))
    return blocks


class TemplateMeter(SimulatedDevice):
    """A device laid out as a template says, with read-only measurement tables."""

    def __init__(self, unit_id: int, meter: Meter, *, now_s: float) -> None:
        if meter.template is None:
            raise ConfigError("TemplateMeter serves a template; use simulate() for a kind")
        self.template = resolve_template(meter.template)
        self._probe_reads: dict[tuple[Table, int, int], tuple[int, ...]] = {}
        self._operating_origin_s = now_s - INITIAL_OPERATING_TIME_S
        super().__init__(
            unit_id,
            meter,
            now_s=now_s,
            rating=_rating(self.template),
            identity=template_identity(self.template),
        )

    def replace_meter(self, *, initial_energy_wh: float = 0.0) -> None:
        self._operating_origin_s = self._now_s  # a new meter starts its hour counter too
        super().replace_meter(initial_energy_wh=initial_energy_wh)

    def _quantities(self, reading: Reading) -> Mapping[str, float]:
        values = catalogue_values(
            Moment(
                reading=reading,
                switch=self.switch,
                rating=self.rating,
                seed=self.meter.seed,
                t_s=self._now_s,
                operating_time_s=self._now_s - self._operating_origin_s,
            )
        )
        return {m.key: values.get(m.key, 0.0) for m in self.template.measurements} | {
            a.key: values.get(a.key, 0.0) for a in self.template.alarms
        }

    def _rebuild(self, values: Mapping[str, float]) -> None:
        words: dict[Table, dict[int, int]] = {}
        for m in self.template.measurements:
            encoded = encode_number(_raw(m, values[m.key]), m.data_type, m.word_order)
            words.setdefault(TABLES[m.function], {}).update(enumerate(encoded, m.address))
        self._add_probes(words)
        self._words, self._bits = words, self._add_alarms(words, values)

    def _add_probes(self, words: dict[Table, dict[int, int]]) -> None:
        for probe in self.template.identification.probes:
            encoded = encode_number(probe.equals[0], probe.data_type, probe.word_order)
            table = TABLES[probe.function]
            span = range(probe.address, probe.address + len(encoded))
            if any(address in words.get(table, {}) for address in span):
                # A code register inside a measurement (EM24: the code's word is also the high
                # word of V L3-L1): the device answers it only to a read of exactly the probe.
                self._probe_reads[(table, probe.address, len(encoded))] = encoded
                continue
            words.setdefault(table, {}).update(enumerate(encoded, probe.address))

    def _add_alarms(
        self, words: dict[Table, dict[int, int]], values: Mapping[str, float]
    ) -> dict[Table, dict[int, bool]]:
        """Set register alarm bits in ``words``; return the coil and discrete-input bits."""
        bits: dict[Table, dict[int, bool]] = {}
        for alarm in self.template.alarms:
            is_set = values[alarm.key] > 0
            table = TABLES[alarm.function]
            if alarm.bit is None:
                bits.setdefault(table, {})[alarm.address] = is_set
                continue
            table_words = words.setdefault(table, {})
            mask = 1 << alarm.bit
            word = table_words.get(alarm.address, 0)
            table_words[alarm.address] = word | mask if is_set else word & ~mask
        return bits

    def _overlay(
        self, table: Table, start_address: int, registers: list[int], read: tuple[int, int]
    ) -> None:
        address, count = read
        words = self._probe_reads.get((table, address, count))
        if words is not None:
            registers[address - start_address : address - start_address + count] = words

    def _spans(self, function: Function) -> list[tuple[int, int]]:
        ident = self.template.identification
        return [
            *((m.address, m.end) for m in self.template.measurements if m.function is function),
            *(
                (p.address, p.address + p.data_type.register_count)
                for p in ident.probes
                if p.function is function
            ),
            *((a.address, a.address + 1) for a in self.template.alarms if a.function is function),
        ]

    def _register_table(self, function: Function) -> list[SimData]:
        blocks = _blocks(self._spans(function), self.template.limits.max_gap)
        if not blocks:
            # pymodbus needs an entry per table; the action hook refuses this one (exception 01).
            blocks = [(0, 1)]
        return [
            SimData(
                start, values=[0] * (end - start), datatype=SimDataType.REGISTERS, readonly=True
            )
            for start, end in blocks
        ]

    def _bits_of(self, function: Function) -> list[SimData]:
        return bit_table(a.address for a in self.template.alarms if a.function is function)

    def _has_table(self, table: Table) -> bool:
        function = next(f for f, t in TABLES.items() if t is table)
        return bool(self._spans(function))

    def sim_device(self) -> SimDevice:
        return SimDevice(
            id=self.unit_id,
            simdata=(
                self._bits_of(Function.COILS),
                self._bits_of(Function.DISCRETE_INPUTS),
                self._register_table(Function.HOLDING_REGISTERS),
                self._register_table(Function.INPUT_REGISTERS),
            ),
            action=self._action,
        )


def simulate(unit_id: int, meter: Meter, *, now_s: float) -> SimulatedDevice:
    """The runtime for ``meter``: a kind's meter or a template's device.

    Raises:
        ConfigError: the meter names a template id that is not built in.
    """
    if meter.template is not None:
        return TemplateMeter(unit_id, meter, now_s=now_s)
    return SimulatedMeter(unit_id, meter, now_s=now_s)
