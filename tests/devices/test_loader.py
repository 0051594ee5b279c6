"""The template loader: every rule of the format refused with its message and its line."""

from __future__ import annotations

import math
import os
import re

import pytest

from panelhub.config.models import Commodity
from panelhub.devices.loader import MAX_MEASUREMENTS, parse_template
from panelhub.devices.template import Function
from panelhub.errors import RemoteProtocolError, TemplateError
from panelhub.modbus.datatypes import DataType, WordOrder
from panelhub.storage.series import SeriesKind

# A valid template; cases below replace one part of it. "# HERE" marks the line a problem
# must be reported on.
HEAD = """\
id = "acme-m1"
vendor = "Acme"
model = "M1"
commodity = "electricity"

[defaults]
function = 4
type = "float32"

[limits]
max_registers_per_request = 10
max_gap = 2

[identification]
product_code = "^M1"
"""

VOLTAGE = """
[[measurements]]
key = "voltage_l1_n"
unit = "V"
address = 0
"""

ENERGY = """
[[measurements]]
key = "active_energy_import"
unit = "kWh"
address = 0x10
type = "uint32"
word_order = "little"
scale = 0.01
invalid = [0xFFFFFFFF]
"""

VALID = HEAD + VOLTAGE + ENERGY


def problems_of(text: str) -> tuple[str, ...]:
    with pytest.raises(TemplateError) as info:
        parse_template(text, source="acme-m1.toml")
    return info.value.problems


def expected_line(text: str) -> int:
    (line,) = [n for n, row in enumerate(text.splitlines(), start=1) if "# HERE" in row]
    return line


def test_valid_template():
    template = parse_template(VALID, source="acme-m1.toml")
    assert template.id == "acme-m1"
    assert template.commodity is Commodity.ELECTRICITY
    assert template.limits.max_registers_per_request == 10
    assert template.limits.max_gap == 2
    assert template.identification.product_code is not None
    assert template.identification.product_code.search("M1-XYZ")
    voltage, energy = template.measurements
    assert voltage.name == "Voltage L1-N"  # from the catalogue
    assert voltage.function is Function.INPUT_REGISTERS  # from [defaults]
    assert voltage.data_type is DataType.FLOAT32
    assert voltage.word_order is WordOrder.BIG
    assert voltage.kind is SeriesKind.INSTANT
    assert energy.kind is SeriesKind.COUNTER
    assert energy.register_count == 2
    assert energy.word_order is WordOrder.LITTLE


def test_measurement_decodes_scales_and_converts():
    energy = parse_template(VALID, source="x").measurement("active_energy_import")
    # 123456 raw, little word order (low word first), 0.01 kWh per count.
    assert energy.decode([0xE240, 0x0001]) == pytest.approx(1234.56)
    assert energy.to_si(1234.56) == pytest.approx(1_234_560.0)
    assert energy.si_unit == "Wh"
    assert math.isnan(energy.decode([0xFFFF, 0xFFFF]))  # the invalid marker


def test_float_nan_is_invalid():
    voltage = parse_template(VALID, source="x").measurement("voltage_l1_n")
    assert math.isnan(voltage.decode([0x7FC0, 0x0000]))
    assert voltage.decode([0x4366, 0x8000]) == 230.5


def test_measurement_lookup_of_unknown_key():
    with pytest.raises(KeyError):
        parse_template(VALID, source="x").measurement("nope")


CASES = {
    "unknown top-level key": (
        'colour = "red"  # HERE\n' + HEAD + VOLTAGE,
        "unknown key 'colour' in the top level",
    ),
    "unknown key in a measurement": (
        HEAD + VOLTAGE + ENERGY + "adress = 3  # HERE\n",
        "unknown key 'adress' in [[measurements]]",
    ),
    "unknown key in limits": (
        HEAD.replace("max_gap = 2", "max_gaps = 2  # HERE") + VOLTAGE,
        "unknown key 'max_gaps' in [limits]",
    ),
    "unknown key in defaults": (
        HEAD.replace('type = "float32"', 'type = "float32"\nscale = 2  # HERE') + VOLTAGE,
        "unknown key 'scale' in [defaults]",
    ),
    "unknown key in identification": (
        HEAD.replace('product_code = "^M1"', 'serial = "1"  # HERE') + VOLTAGE,
        "unknown key 'serial' in [identification]",
    ),
    "unknown key in a probe": (
        HEAD + "\n[[identification.probe]]\nfunction = 3\naddress = 2\nequals = [1]\n"
        "mask = 3  # HERE\n" + VOLTAGE,
        "unknown key 'mask' in [[identification.probe]]",
    ),
    "unknown key in an alarm": (
        HEAD + VOLTAGE + '\n[[alarms]]\nkey = "al"\nfunction = 1\naddress = 4\nlevel = 2  # HERE\n',
        "unknown key 'level' in [[alarms]]",
    ),
    "probe without function": (
        HEAD + "\n[[identification.probe]]  # HERE\naddress = 2\nequals = [1]\n" + VOLTAGE,
        "[[identification.probe]] needs 'function'",
    ),
    "missing id": (
        HEAD.replace('id = "acme-m1"', "# HERE") + VOLTAGE,
        "the top level needs 'id'",
    ),
    "missing unit": (
        HEAD + '\n[[measurements]]  # HERE\nkey = "frequency"\naddress = 0\n',
        "[[measurements]] needs 'unit'",
    ),
    "missing address": (
        HEAD + VOLTAGE + '\n[[measurements]]  # HERE\nkey = "frequency"\nunit = "Hz"\n',
        "[[measurements]] needs 'address'",
    ),
    "no measurements": (HEAD.replace('id = "acme-m1"', 'id = "acme-m1"  # HERE'), None),
    "bad id": (
        HEAD.replace('id = "acme-m1"', 'id = "Acme M1"  # HERE') + VOLTAGE,
        "id 'Acme M1' must match",
    ),
    "bad key": (
        HEAD + VOLTAGE + ENERGY.replace('"active_energy_import"', '"Energy"  # HERE'),
        "key 'Energy' must match",
    ),
    "duplicate key": (
        HEAD
        + VOLTAGE
        + VOLTAGE.replace('"voltage_l1_n"', '"voltage_l1_n"  # HERE').replace(
            "address = 0", "address = 8"
        ),
        "duplicate key 'voltage_l1_n'",
    ),
    "alarm key clashes with a measurement": (
        HEAD + VOLTAGE + '\n[[alarms]]\nkey = "voltage_l1_n"  # HERE\nfunction = 1\naddress = 0\n',
        "duplicate key 'voltage_l1_n'",
    ),
    "unknown type": (
        HEAD + VOLTAGE + ENERGY.replace('type = "uint32"', 'type = "uint24"  # HERE'),
        "unknown type 'uint24'",
    ),
    "unknown word order": (
        HEAD + VOLTAGE + ENERGY.replace('"little"', '"middle"  # HERE'),
        "unknown word_order 'middle'",
    ),
    "unknown function": (
        HEAD + VOLTAGE + ENERGY + "function = 7  # HERE\n",
        "unknown function 7",
    ),
    "bit function for a measurement": (
        HEAD + VOLTAGE + ENERGY + "function = 2  # HERE\n",
        "function 2 reads bits",
    ),
    "unknown unit": (
        HEAD + VOLTAGE.replace('unit = "V"', 'unit = "volts"  # HERE'),
        "unknown unit 'volts'",
    ),
    "unknown kind": (
        HEAD + VOLTAGE + 'kind = "gauge"  # HERE\n',
        "unknown kind 'gauge'",
    ),
    "unknown commodity": (
        HEAD.replace('"electricity"', '"plasma"  # HERE') + VOLTAGE,
        "unknown commodity 'plasma'",
    ),
    "overlap": (
        HEAD + ENERGY + VOLTAGE.replace("address = 0", "address = 0x11  # HERE"),
        "registers overlap with 'active_energy_import' (function 4)",
    ),
    "alarm bit in a non-state register": (
        HEAD + VOLTAGE + '\n[[alarms]]\nkey = "al"\nfunction = 4\naddress = 1  # HERE\nbit = 3\n',
        "alarm bit in register 1 of 'voltage_l1_n'",
    ),
    "beyond 65535": (
        HEAD + VOLTAGE.replace("address = 0", "address = 0xFFFF  # HERE"),
        "ends past register 65535",
    ),
    "address out of range": (
        HEAD + VOLTAGE.replace("address = 0", "address = 70000  # HERE"),
        "address 70000 is outside 0..65535",
    ),
    "scale zero": (HEAD + VOLTAGE + "scale = 0  # HERE\n", "scale must be a finite number"),
    "scale infinite": (HEAD + VOLTAGE + "scale = inf  # HERE\n", "scale must be a finite number"),
    "scale not a number": (HEAD + VOLTAGE + 'scale = "0.1"  # HERE\n', "scale must be a number"),
    "invalid marker too big": (
        HEAD + VOLTAGE + ENERGY.replace("[0xFFFFFFFF]", "[0x1FFFFFFFF]  # HERE"),
        "do not fit uint32",
    ),
    "invalid marker not an integer": (
        HEAD + VOLTAGE + ENERGY.replace("[0xFFFFFFFF]", "[1.5]  # HERE"),
        "do not fit uint32",
    ),
    "invalid marker not exact in float32": (
        HEAD + VOLTAGE + "invalid = [0.1]  # HERE\n",
        "do not fit float32",
    ),
    "invalid marker beyond float32": (
        HEAD + VOLTAGE + "invalid = [1e300]  # HERE\n",
        "do not fit float32",
    ),
    "max registers per request too big": (
        HEAD.replace("max_registers_per_request = 10", "max_registers_per_request = 126  # HERE")
        + VOLTAGE,
        "max_registers_per_request 126 is outside 1..125",
    ),
    "max registers per request zero": (
        HEAD.replace("max_registers_per_request = 10", "max_registers_per_request = 0  # HERE")
        + VOLTAGE,
        "max_registers_per_request 0 is outside 1..125",
    ),
    "measurement longer than a request": (
        HEAD.replace("max_registers_per_request = 10", "max_registers_per_request = 2")
        + VOLTAGE
        + '\n[[measurements]]\nkey = "x"\nunit = ""\naddress = 8\ntype = "int64"  # HERE\n',
        "x needs 4 registers, more than max_registers_per_request (2)",
    ),
    "probe without equals": (
        HEAD + "\n[[identification.probe]]  # HERE\nfunction = 3\naddress = 0xFC02\n" + VOLTAGE,
        "a probe needs 'equals'",
    ),
    "probe with empty equals": (
        HEAD
        + "\n[[identification.probe]]  # HERE\nfunction = 3\naddress = 2\nequals = []\n"
        + VOLTAGE,
        "a probe needs 'equals'",
    ),
    "probe value does not fit": (
        HEAD
        + "\n[[identification.probe]]\nfunction = 3\naddress = 2\nequals = [-1]  # HERE\n"
        + VOLTAGE,
        "do not fit uint16",
    ),
    "bad regex": (
        HEAD.replace('"^M1"', '"^M1("  # HERE') + VOLTAGE,
        "product_code '^M1(' is not a valid regular expression",
    ),
    "register alarm without bit": (
        HEAD + VOLTAGE + '\n[[alarms]]  # HERE\nkey = "al"\nfunction = 3\naddress = 40\n',
        "needs 'bit' (0..15)",
    ),
    "coil alarm with bit": (
        HEAD + VOLTAGE + '\n[[alarms]]\nkey = "al"\nfunction = 1\naddress = 40\nbit = 2  # HERE\n',
        "a coil or discrete input (function 1) has no bit",
    ),
    "bit out of range": (
        HEAD + VOLTAGE + '\n[[alarms]]\nkey = "al"\nfunction = 3\naddress = 40\nbit = 16  # HERE\n',
        "bit 16 is outside 0..15",
    ),
    "string where a number belongs": (
        HEAD + VOLTAGE.replace("address = 0", 'address = "0"  # HERE'),
        "address must be an integer",
    ),
    "a table where a string belongs": (
        HEAD.replace('vendor = "Acme"', "vendor = 3  # HERE") + VOLTAGE,
        "vendor must be a string",
    ),
    "invalid TOML": (HEAD + VOLTAGE + "unit = = 3  # HERE\n", "Invalid value"),
    "TOML duplicate key": (HEAD + VOLTAGE + 'unit = "A"  # HERE\n', "Cannot overwrite"),
}


@pytest.mark.parametrize(("text", "message"), CASES.values(), ids=CASES.keys())
def test_each_rule_names_its_line(text, message):
    problems = problems_of(text)
    assert len(problems) == 1, problems
    line = expected_line(text)
    if message is None:
        message = "at least one [[measurements]]"
        line = 1
    assert problems[0].startswith(f"acme-m1.toml:{line}: "), problems
    assert message in problems[0], problems


def test_all_problems_reported_at_once():
    text = HEAD.replace('"acme-m1"', '"X"') + VOLTAGE.replace('"V"', '"volt"') + "scale = 0\n"
    problems = problems_of(text)
    assert [p.split(":")[1] for p in problems] == ["1", "19", "21"]


def test_line_of_the_nth_measurement_with_the_same_key_names():
    text = (
        HEAD
        + VOLTAGE
        + ENERGY
        + ENERGY.replace('"active_energy_import"', '"active_energy_export"').replace(
            "address = 0x10", "address = 0x11  # HERE"
        )
    )
    (problem,) = problems_of(text)
    assert problem.startswith(f"acme-m1.toml:{expected_line(text)}: ")


def test_too_many_measurements():
    rows = "".join(
        f'\n[[measurements]]\nkey = "m{n}"\nunit = ""\naddress = {n}\ntype = "uint16"\n'
        for n in range(MAX_MEASUREMENTS + 1)
    )
    (problem,) = problems_of(HEAD + rows)
    assert f"at most {MAX_MEASUREMENTS}" in problem


def test_large_text_refused_before_parsing():
    text = VALID + "# padding\n" * (300 * 1024 // 10)
    problems = problems_of(text)
    assert problems == ("acme-m1.toml:1: a template may be at most 256 KiB",)


def test_random_bytes_refused_clearly():
    text = os.urandom(4096).decode("latin-1")
    (problem,) = problems_of(text)
    assert re.match(r"acme-m1\.toml:\d+: ", problem)


def test_measurements_not_tables():
    problems = problems_of("measurements = 3\n" + HEAD)
    assert "acme-m1.toml:1: measurements must be written as [[measurements]] tables" in problems


def test_defaults_function_must_read_registers():
    text = HEAD.replace("function = 4", "function = 1  # HERE") + VOLTAGE
    problems = problems_of(text)
    assert (
        problems[0]
        == f"acme-m1.toml:{expected_line(text)}: measurements are read with function 3 or 4"
    )


def test_overlap_found_past_the_neighbour():
    # "c" overlaps the float64 "a" although its sorted neighbour "b" ends before it.
    text = (
        HEAD
        + '\n[[measurements]]\nkey = "a"\nunit = ""\naddress = 0\ntype = "float64"\n'
        + '\n[[measurements]]\nkey = "b"\nunit = ""\naddress = 1\ntype = "uint16"\n'
        + '\n[[measurements]]\nkey = "c"\nunit = ""\naddress = 3\ntype = "uint16"\n'
    )
    assert problems_of(text) == (
        "acme-m1.toml:26: registers overlap with 'a' (function 4)",
        "acme-m1.toml:32: registers overlap with 'a' (function 4)",
    )


def test_overlap_reported_on_the_later_line_whatever_the_address_order():
    text = (
        HEAD
        + VOLTAGE.replace("address = 0", "address = 0x11")
        + ENERGY.replace("address = 0x10", "address = 0x10  # HERE")
    )
    (problem,) = problems_of(text)
    assert problem == (
        f"acme-m1.toml:{expected_line(text)}: registers overlap with 'voltage_l1_n' (function 4)"
    )


def test_alarm_bit_may_share_a_state_register():
    text = (
        HEAD
        + '\n[[measurements]]\nkey = "status"\nunit = ""\naddress = 0\ntype = "uint16"\n'
        + '\n[[alarms]]\nkey = "trip"\nfunction = 4\naddress = 0\nbit = 1\n'
    )
    template = parse_template(text, source="x")
    assert template.measurement("status").kind is SeriesKind.STATE
    assert template.alarms[0].bit == 1
    assert template.alarms[0].name == "trip"


def test_decode_with_the_wrong_register_count():
    voltage = parse_template(VALID, source="x").measurement("voltage_l1_n")
    with pytest.raises(RemoteProtocolError, match="float32 needs 2 registers, got 1"):
        voltage.decode([0x4366])


def test_probe_matches_raw_values():
    text = HEAD + "\n[[identification.probe]]\nfunction = 4\naddress = 2\nequals = [7, 9]\n"
    (probe,) = parse_template(text + VOLTAGE, source="x").identification.probes
    assert probe.function is Function.INPUT_REGISTERS
    assert probe.matches([9])
    assert not probe.matches([8])


def test_bad_default_reported_once():
    text = HEAD.replace('type = "float32"', 'type = "real"  # HERE') + VOLTAGE + ENERGY
    assert problems_of(text) == (
        f"acme-m1.toml:{expected_line(text)}: unknown type 'real': use one of int16, uint16, "
        "int32, uint32, int64, uint64, float32, float64",
    )


def test_huge_integer_marker_refused():
    text = HEAD + VOLTAGE + ENERGY.replace("[0xFFFFFFFF]", "[" + "9" * 400 + "]  # HERE")
    (problem,) = problems_of(text)
    assert problem.startswith(f"acme-m1.toml:{expected_line(text)}: invalid value(s)")
