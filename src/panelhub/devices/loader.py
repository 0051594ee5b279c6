"""Template text -> :class:`DeviceTemplate`, checking every rule of ``docs/device-templates.md``.

Every problem names its line (``eastron-sdm630.toml:57: ...``), so the author of a custom model
finds it at once; all problems of a file are reported together.
"""

from __future__ import annotations

import math
import re
import struct
import tomllib
from typing import Final

from panelhub.config.models import Commodity
from panelhub.devices.fields import Problems, Table
from panelhub.devices.quantities import QUANTITIES
from panelhub.devices.template import (
    MAX_ADDRESS,
    MAX_REGISTERS_PER_READ,
    Alarm,
    DeviceTemplate,
    Function,
    Identification,
    Limits,
    Measurement,
    Probe,
)
from panelhub.devices.tomllines import ROOT, LineIndex, Section
from panelhub.devices.units import UNITS
from panelhub.errors import TemplateError
from panelhub.modbus.datatypes import DataType, WordOrder
from panelhub.storage.series import SeriesKind

MAX_TEMPLATE_BYTES: Final = 256 * 1024  # the largest published maps (PM5000) are ~60 KiB
MAX_MEASUREMENTS: Final = 1000  # ~8x the largest real map; bounds planning and page sizes
MAX_GAP: Final = MAX_REGISTERS_PER_READ - 1  # a gap wider than one read joins nothing
ID_PATTERN: Final = r"[a-z0-9][a-z0-9-]{1,39}"
KEY_PATTERN: Final = r"[a-z][a-z0-9_]{0,39}"
REGISTER_FUNCTIONS: Final = (Function.HOLDING_REGISTERS, Function.INPUT_REGISTERS)
BITS_PER_REGISTER: Final = 16
_TOML_LINE: Final = re.compile(r"\(at line (\d+), column \d+\)")

_TOP_KEYS: Final = frozenset(
    {"id", "vendor", "model", "description", "source", "commodity", "defaults", "limits",
     "identification", "measurements", "alarms"}
)  # fmt: skip
_DEFAULT_KEYS: Final = frozenset({"function", "type", "word_order"})
_LIMIT_KEYS: Final = frozenset({"max_registers_per_request", "max_gap"})
_IDENT_KEYS: Final = frozenset({"product_code", "vendor_name", "probe"})
_PROBE_KEYS: Final = frozenset({"function", "address", "type", "word_order", "equals"})
_MEASUREMENT_KEYS: Final = frozenset(
    {"key", "name", "unit", "address", "function", "type", "word_order", "scale", "kind",
     "invalid"}
)  # fmt: skip
_ALARM_KEYS: Final = frozenset({"key", "name", "function", "address", "bit"})


def _fits(value: float, data_type: DataType) -> bool:
    """Whether a raw marker can ever be decoded from ``data_type``."""
    if data_type.is_float:
        if data_type is DataType.FLOAT64 or not math.isfinite(value):
            return True
        try:
            return bool(struct.unpack(">f", struct.pack(">f", value))[0] == value)
        except OverflowError:
            return False
    low, high = data_type.int_range
    is_whole = isinstance(value, int) or value.is_integer()  # float() of a huge int overflows
    return is_whole and low <= value <= high


class _Defaults:
    """The ``[defaults]`` table, never None inside.

    A bad value is reported once and the built-in default used instead, so the measurements
    relying on it are not reported again.
    """

    def __init__(self, table: Table) -> None:
        function = table.choice("function", Function, Function.HOLDING_REGISTERS)
        if function is not None and not function.is_register:
            table.fail("function", "measurements are read with function 3 or 4")
            function = None
        self.function = function or Function.HOLDING_REGISTERS
        self.data_type = table.choice("type", DataType, DataType.UINT16) or DataType.UINT16
        self.word_order = table.choice("word_order", WordOrder, WordOrder.BIG) or WordOrder.BIG


def _register_function(table: Table, default: Function) -> Function | None:
    function = table.choice("function", Function, default)
    if function is not None and not function.is_register:
        table.fail("function", f"function {int(function)} reads bits: use 3 or 4")
        return None
    return function


def _markers(table: Table, key: str, data_type: DataType | None) -> tuple[float, ...] | None:
    values = table.numbers(key)
    if values is None or data_type is None:
        return () if values is None else None
    bad = [value for value in values if not _fits(value, data_type)]
    if bad:
        table.fail(key, f"{key} value(s) {bad} do not fit {data_type}")
        return None
    return tuple(values)


def _scale(table: Table) -> float | None:
    scale = table.number("scale")
    if scale is None:
        return 1.0
    if scale == 0 or not math.isfinite(scale):
        table.fail("scale", f"scale must be a finite number other than 0, not {scale}")
        return None
    return scale


def _unit(table: Table) -> str | None:
    unit = table.text("unit", is_required=True)
    if unit is not None and unit not in UNITS:
        table.fail("unit", f"unknown unit {unit!r}: see the unit list of the template format")
        return None
    return unit


def _measurement(table: Table, defaults: _Defaults) -> Measurement | None:
    key = table.text("key", is_required=True, pattern=KEY_PATTERN)
    quantity = QUANTITIES.get(key or "")
    unit = _unit(table)
    name = table.text("name") or (quantity.name if quantity else key)
    function = _register_function(table, defaults.function)
    address = table.integer("address", 0, MAX_ADDRESS, is_required=True)
    data_type = table.choice("type", DataType, defaults.data_type)
    word_order = table.choice("word_order", WordOrder, defaults.word_order)
    kind = table.choice("kind", SeriesKind, quantity.kind if quantity else SeriesKind.INSTANT)
    scale = _scale(table)
    invalid = _markers(table, "invalid", data_type)
    if (
        key is None
        or name is None
        or unit is None
        or function is None
        or address is None
        or data_type is None
        or word_order is None
        or kind is None
        or scale is None
        or invalid is None
    ):
        return None
    return Measurement(
        key, name, unit, function, address, data_type, word_order, scale, kind, invalid
    )


def _alarm(table: Table) -> Alarm | None:
    key = table.text("key", is_required=True, pattern=KEY_PATTERN)
    name = table.text("name") or key
    function = table.choice("function", Function, None)
    address = table.integer("address", 0, MAX_ADDRESS, is_required=True)
    bit = table.integer("bit", 0, BITS_PER_REGISTER - 1)
    if function is not None and function.is_register and bit is None and "bit" not in table.data:
        table.fail(None, f"an alarm read with function {int(function)} needs 'bit' (0..15)")
        return None
    if function is not None and not function.is_register and "bit" in table.data:
        table.fail("bit", f"a coil or discrete input (function {int(function)}) has no bit")
        return None
    if key is None or name is None or function is None or address is None:
        return None
    if function.is_register and bit is None:
        return None
    return Alarm(key, name, function, address, bit)


def _probe(table: Table) -> Probe | None:
    function = (
        _register_function(table, Function.HOLDING_REGISTERS) if "function" in table.data else None
    )
    if "function" not in table.data:
        table.fail(None, "[[identification.probe]] needs 'function'")
    address = table.integer("address", 0, MAX_ADDRESS, is_required=True)
    data_type = table.choice("type", DataType, DataType.UINT16)
    word_order = table.choice("word_order", WordOrder, WordOrder.BIG)
    if "equals" not in table.data or table.data["equals"] == []:
        table.fail(None, "a probe needs 'equals': the raw value(s) the model answers")
        return None
    equals = _markers(table, "equals", data_type)
    if function is None or address is None or data_type is None or word_order is None:
        return None
    if not equals:
        return None
    return Probe(function, address, data_type, word_order, equals)


def _identification(table: Table) -> Identification:
    probes = [
        _probe(Table(table.problems, ("identification.probe", n), data, allowed=_PROBE_KEYS))
        for n, data in enumerate(table.tables("probe"))
    ]
    return Identification(
        product_code=table.regex("product_code"),
        vendor_name=table.regex("vendor_name"),
        probes=tuple(probe for probe in probes if probe is not None),
    )


def _limits(table: Table) -> Limits:
    most = table.integer("max_registers_per_request", 1, MAX_REGISTERS_PER_READ)
    gap = table.integer("max_gap", 0, MAX_GAP)
    return Limits(
        max_registers_per_request=MAX_REGISTERS_PER_READ if most is None else most,
        max_gap=0 if gap is None else gap,
    )


def _check_ranges(items: list[tuple[Table, Measurement]], limits: Limits) -> None:
    for table, m in items:
        if m.end - 1 > MAX_ADDRESS:
            table.fail(
                "address", f"{m.key} ends past register 65535 ({m.address} + {m.register_count})"
            )
        if m.register_count > limits.max_registers_per_request:
            table.fail(
                "type",
                f"{m.key} needs {m.register_count} registers, more than "
                f"max_registers_per_request ({limits.max_registers_per_request})",
            )
    # Sorted by address, each measurement is checked against the one reaching furthest so far,
    # which catches a float64 covering two later uint16s as well as neighbours.
    ordered = sorted(enumerate(items), key=lambda item: (item[1][1].function, item[1][1].address))
    furthest: tuple[int, Table, Measurement] | None = None
    for index, (table, m) in ordered:
        if furthest is not None and furthest[2].function == m.function:
            f_index, f_table, f = furthest
            if m.address < f.end:
                later, other = (table, f) if index > f_index else (f_table, m)
                later.fail(
                    "address", f"registers overlap with {other.key!r} (function {int(m.function)})"
                )
            if f.end >= m.end:
                continue
        furthest = (index, table, m)


def _check_alarms(
    alarms: list[tuple[Table, Alarm]], items: list[tuple[Table, Measurement]]
) -> None:
    for table, alarm in alarms:
        if not alarm.function.is_register:
            continue
        for _, m in items:
            is_shared = m.function == alarm.function and m.address <= alarm.address < m.end
            if is_shared and m.kind is not SeriesKind.STATE:
                table.fail(
                    "address",
                    f"alarm bit in register {alarm.address} of {m.key!r}, which is not a "
                    'kind = "state" measurement',
                )


def _check_unique(tables: list[tuple[Table, str]]) -> None:
    seen: set[str] = set()
    for table, key in tables:
        if key in seen:
            table.fail("key", f"duplicate key {key!r}")
        seen.add(key)


def _read_toml(text: str, source: str) -> dict[str, object]:
    if len(text.encode("utf-8", errors="replace")) > MAX_TEMPLATE_BYTES:
        raise TemplateError(
            f"{source} is larger than {MAX_TEMPLATE_BYTES // 1024} KiB",
            problems=(f"{source}:1: a template may be at most {MAX_TEMPLATE_BYTES // 1024} KiB",),
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_LINE.search(str(exc))
        line = match[1] if match else "1"
        message = _TOML_LINE.sub("", str(exc)).strip()
        raise TemplateError(
            f"{source} is not valid TOML", problems=(f"{source}:{line}: {message}",)
        ) from exc


def _measurements(root: Table, defaults: _Defaults) -> list[tuple[Table, Measurement]]:
    raw = root.tables("measurements")
    if not raw:
        root.fail(None, "a template needs at least one [[measurements]] table")
    if len(raw) > MAX_MEASUREMENTS:
        root.fail(None, f"{len(raw)} measurements: a template may have at most {MAX_MEASUREMENTS}")
        return []
    items = []
    for n, data in enumerate(raw):
        table = Table(root.problems, ("measurements", n), data, allowed=_MEASUREMENT_KEYS)
        if (measurement := _measurement(table, defaults)) is not None:
            items.append((table, measurement))
    return items


def _alarms(root: Table) -> list[tuple[Table, Alarm]]:
    items = []
    for n, data in enumerate(root.tables("alarms")):
        table = Table(root.problems, ("alarms", n), data, allowed=_ALARM_KEYS)
        if (alarm := _alarm(table)) is not None:
            items.append((table, alarm))
    return items


def _sub(root: Table, name: str, allowed: frozenset[str]) -> Table:
    section: Section = (name, 0)
    return Table(root.problems, section, root.table(name), allowed=allowed)


def parse_template(text: str, *, source: str) -> DeviceTemplate:
    """Build a template from TOML text; ``source`` names it in problems (a file name).

    Raises:
        TemplateError: anything the format refuses; ``problems`` lists each fault as
            ``source:LINE: message``, in the order of the checks.
    """
    problems = Problems(source, LineIndex(text))
    root = Table(problems, ROOT, _read_toml(text, source), allowed=_TOP_KEYS)
    template_id = root.text("id", is_required=True, pattern=ID_PATTERN)
    vendor = root.text("vendor", is_required=True)
    model = root.text("model", is_required=True)
    commodity = root.choice("commodity", Commodity, Commodity.ELECTRICITY)
    defaults = _Defaults(_sub(root, "defaults", _DEFAULT_KEYS))
    limits = _limits(_sub(root, "limits", _LIMIT_KEYS))
    identification = _identification(_sub(root, "identification", _IDENT_KEYS))
    measurements = _measurements(root, defaults)
    alarms = _alarms(root)
    _check_unique([(t, m.key) for t, m in measurements] + [(t, a.key) for t, a in alarms])
    _check_ranges(measurements, limits)
    _check_alarms(alarms, measurements)
    if problems.items or template_id is None or vendor is None or model is None:
        raise TemplateError(f"{source}: the template is invalid", problems=tuple(problems.items))
    return DeviceTemplate(
        id=template_id,
        vendor=vendor,
        model=model,
        description=root.text("description") or "",
        source=root.text("source") or "",
        commodity=commodity or Commodity.ELECTRICITY,
        limits=limits,
        identification=identification,
        measurements=tuple(m for _, m in measurements),
        alarms=tuple(a for _, a in alarms),
    )
