"""The simulator serving device templates, read back by pymodbus's client and decoded.

Every built-in template is served (so real meters' templates are covered once merged) under a
frozen clock, so the values the simulator holds are the values on the wire.
"""

from __future__ import annotations

import fnmatch

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient, ModbusBaseClient
from pymodbus.constants import DeviceInformation
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu.mei_message import ReadDeviceInformationResponse

from panelhub.devices.catalog import builtin_templates
from panelhub.devices.loader import parse_template
from panelhub.devices.template import DeviceTemplate, Function, Measurement
from panelhub.devices.units import UNITS
from panelhub.errors import ConfigError
from panelhub.sim import Meter, MeterKind, SimulatedMeter, serve_rtu, serve_tcp
from panelhub.sim.registermap import Table
from panelhub.sim.templated import TemplateMeter, _literal_prefix, template_identity
from panelhub.storage.series import SeriesKind

pytestmark = pytest.mark.interop

FROZEN_S = 50_000.0  # model time; the clock never moves, so refreshes change nothing
CLIENT_TIMEOUT_S = 1.0
ENERGY_KEYS = {"active_energy_import", "active_energy_total", "reactive_energy_import",
               "reactive_energy_total", "apparent_energy"}  # fmt: skip

# Plausible SI ranges for the simulated installation, by key (a prefix ends with "*").
PLAUSIBLE = {
    "voltage_l?_n": (200.0, 250.0),
    "voltage_ln_avg": (200.0, 250.0),
    "voltage_l?_l?": (350.0, 430.0),
    "voltage_ll_avg": (350.0, 430.0),
    "frequency": (49.0, 51.0),
    "power_factor*": (0.8, 1.0),
    "current*": (0.0, 200.0),
    "active_power*": (0.0, 100_000.0),
    "reactive_power*": (0.0, 100_000.0),
    "apparent_power*": (0.0, 120_000.0),
    "thd_*": (0.0, 30.0),
    "temperature": (0.0, 80.0),
}


def plausible_range(key: str) -> tuple[float, float] | None:
    for pattern, bounds in PLAUSIBLE.items():
        if fnmatch.fnmatchcase(key, pattern):
            return bounds
    return None


def tolerance(m: Measurement, si_value: float) -> float:
    """What the register type can carry: half a count for integers, float rounding otherwise."""
    if m.data_type.is_float:
        return abs(si_value) * (1e-6 if m.data_type.value == "float32" else 1e-12) + 1e-9
    return 0.5 * abs(m.scale) * UNITS[m.unit].factor * (1 + 1e-9)


async def read_measurement(client: ModbusBaseClient, unit_id: int, m: Measurement) -> float:
    read = (
        client.read_holding_registers
        if m.function is Function.HOLDING_REGISTERS
        else client.read_input_registers
    )
    response = await read(m.address, count=m.register_count, device_id=unit_id)
    assert not response.isError(), (m.key, response)
    return m.to_si(m.decode(response.registers))


async def connect(endpoint) -> AsyncModbusTcpClient:
    client = AsyncModbusTcpClient(
        endpoint.host, port=endpoint.port, timeout=CLIENT_TIMEOUT_S, retries=0
    )
    assert await client.connect()
    return client


@pytest.mark.parametrize("template", builtin_templates().values(), ids=builtin_templates().keys())
async def test_every_builtin_template_served_and_decoded(template: DeviceTemplate):
    async with serve_tcp({7: Meter(template=template.id, seed=3)}, clock=lambda: FROZEN_S) as ep:
        device = ep.meters[7]
        client = await connect(ep)
        try:
            for m in template.measurements:
                served = device.values[m.key]
                value = await read_measurement(client, 7, m)
                assert abs(value - served) <= tolerance(m, served), (m.key, value, served)
                bounds = plausible_range(m.key)
                if bounds is not None:
                    assert bounds[0] <= value <= bounds[1], (m.key, value)
                if m.kind is SeriesKind.COUNTER:
                    assert value >= 0, m.key
                if m.key in ENERGY_KEYS:
                    assert value > 0, m.key
        finally:
            client.close()


@pytest.mark.parametrize("template", builtin_templates().values(), ids=builtin_templates().keys())
async def test_every_builtin_template_identifies_itself(template: DeviceTemplate):
    async with serve_tcp({1: Meter(template=template.id)}, clock=lambda: FROZEN_S) as ep:
        client = await connect(ep)
        try:
            r = await client.read_device_information(read_code=DeviceInformation.BASIC, device_id=1)
            assert isinstance(r, ReadDeviceInformationResponse), r
            vendor, product = r.information[0].decode(), r.information[1].decode()
            ident = template.identification
            if ident.vendor_name:
                assert ident.vendor_name.search(vendor), vendor
            if ident.product_code:
                assert ident.product_code.search(product), product
            for probe in ident.probes:
                read = (
                    client.read_holding_registers
                    if probe.function is Function.HOLDING_REGISTERS
                    else client.read_input_registers
                )
                response = await read(
                    probe.address, count=probe.data_type.register_count, device_id=1
                )
                assert probe.matches(response.registers)
        finally:
            client.close()


@pytest.mark.parametrize("template", builtin_templates().values(), ids=builtin_templates().keys())
async def test_every_builtin_template_refuses_unmapped_registers(template: DeviceTemplate):
    m = max(template.measurements, key=lambda item: item.end)
    outside = m.end + template.limits.max_gap + 1
    if outside > 0xFFFF:
        pytest.skip("the map reaches the top of the address space")
    async with serve_tcp({1: Meter(template=template.id)}, clock=lambda: FROZEN_S) as ep:
        client = await connect(ep)
        try:
            read = (
                client.read_holding_registers
                if m.function is Function.HOLDING_REGISTERS
                else client.read_input_registers
            )
            response = await read(outside, count=1, device_id=1)
            assert response.exception_code == 0x02
        finally:
            client.close()


SIM_KINDS = {
    "panelhub-sim-pm3": MeterKind.THREE_PHASE,
    "panelhub-sim-em1": MeterKind.SINGLE_PHASE,
    "panelhub-sim-cb3": MeterKind.BREAKER,
}


@pytest.mark.parametrize(("template_id", "kind"), SIM_KINDS.items())
async def test_sim_templates_decode_the_kinds_as_served(template_id, kind):
    """The simulator's own templates read the hand-written kinds right, register by register."""
    template = builtin_templates()[template_id]
    async with serve_tcp({1: Meter(kind, seed=5)}, clock=lambda: FROZEN_S) as ep:
        device = ep.meters[1]
        assert isinstance(device, SimulatedMeter)
        points = {p.address: p for p in device.profile.register_map.points}
        assert sorted(points) == sorted(m.address for m in template.measurements)
        client = await connect(ep)
        try:
            for m in template.measurements:
                point = points[m.address]
                assert point.word_count == m.register_count, m.key
                served = device.values[point.quantity]
                value = await read_measurement(client, 1, m)
                assert abs(value - served) <= tolerance(m, served) + 1e-9, (m.key, value, served)
        finally:
            client.close()


async def test_gaps_up_to_max_gap_read_zero_and_beyond_refused():
    template = builtin_templates()["panelhub-sim-pm3"]
    assert template.limits.max_gap == 24
    async with serve_tcp({1: Meter(template=template.id)}, clock=lambda: FROZEN_S) as ep:
        client = await connect(ep)
        try:
            # 3085..3108: the 24-register hole between power factor and frequency.
            r = await client.read_holding_registers(3083, count=28, device_id=1)
            assert not r.isError(), r
            assert r.registers[2:26] == [0] * 24
            # 3111..3202: 92 registers, more than max_gap: not answered.
            r = await client.read_holding_registers(3109, count=3, device_id=1)
            assert r.exception_code == 0x02
            r = await client.read_input_registers(0, count=1, device_id=1)
            assert r.exception_code == 0x01  # no input registers on this device
            r = await client.write_register(2999, 1, device_id=1)
            assert r.exception_code == 0x02  # measurements are read-only
        finally:
            client.close()


MIXED = """\
id = "acme-mixed"
vendor = "Acme Meters"
model = "AM-3"
source = "test"

[identification]
product_code = "^AM-3\\\\b"
vendor_name = "(?i)^acme"
[[identification.probe]]
function = 3
address = 0x100
type = "uint32"
equals = [70000, 70001]

[[measurements]]
key = "voltage_l1_n"
unit = "kV"
function = 4
address = 10
type = "float64"
word_order = "little"

[[measurements]]
key = "active_energy_import"
unit = "kWh"
function = 3
address = 10
type = "uint32"
word_order = "little"
scale = 0.01

[[measurements]]
key = "current_l2"
unit = "mA"
function = 4
address = 14
type = "int32"

[[measurements]]
key = "made_up"
unit = ""
function = 3
address = 12

[[measurements]]
key = "status"
unit = ""
function = 3
address = 13

[[alarms]]
key = "tripped"
function = 1
address = 3

[[alarms]]
key = "overload"
function = 3
address = 13
bit = 2
"""


async def test_custom_template_mixing_tables_types_and_word_orders():
    template = parse_template(MIXED, source="acme-mixed.toml")
    async with serve_tcp({2: Meter(template=template, seed=9)}, clock=lambda: FROZEN_S) as ep:
        device = ep.meters[2]
        client = await connect(ep)
        try:
            for m in template.measurements:
                served = device.values[m.key]
                value = await read_measurement(client, 2, m)
                assert abs(value - served) <= tolerance(m, served), m.key
            assert device.values["made_up"] == 0.0  # outside the catalogue: 0
            assert 200 < device.values["voltage_l1_n"] < 250  # SI volts, served as kV
            r = await client.read_holding_registers(0x100, count=2, device_id=2)
            assert r.registers == [0x0001, 0x1170]  # 70000, the first accepted value
            r = await client.read_device_information(read_code=1, device_id=2)
            assert isinstance(r, ReadDeviceInformationResponse)
            assert r.information[0] == b"Acme Meters"
            assert r.information[1] == b"AM-3"
            device.switch.trip()
            device.refresh(FROZEN_S)
            bits = await client.read_coils(0, count=4, device_id=2)
            assert bits.bits[:4] == [False, False, False, True]
            status = await client.read_holding_registers(13, count=1, device_id=2)
            assert status.registers[0] & 0b011 == 0b010  # open and tripped
            r = await client.read_discrete_inputs(0, count=1, device_id=2)
            assert r.exception_code == 0x01
        finally:
            client.close()


async def test_counter_reset_meter_swap_and_silence():
    template = builtin_templates()["panelhub-sim-em1"]
    energy = template.measurement("active_energy_import")
    now = [FROZEN_S]
    async with serve_tcp(
        {1: Meter(template=template.id, seed=2)}, clock=lambda: now[0], update_interval_s=0.01
    ) as ep:
        device = ep.meters[1]
        client = await connect(ep)
        try:
            before = await read_measurement(client, 1, energy)
            assert before > 800_000  # Wh: a meter some years into service
            device.reset_counters()
            assert await read_measurement(client, 1, energy) == 0.0
            device.refresh(FROZEN_S + 3600.0)  # an hour at ~1-4 kW
            grown = await read_measurement(client, 1, energy)
            assert 100 < grown < 4000
            device.replace_meter(initial_energy_wh=25_000.0)
            assert await read_measurement(client, 1, energy) == pytest.approx(25_000.0, abs=5)
            device.set_answering(is_answering=False)
            with pytest.raises(ModbusIOException):  # a timeout, not an exception response
                await client.read_input_registers(0x48, count=2, device_id=1)
            device.set_answering(is_answering=True)
            client.close()
            client = await connect(ep)  # pymodbus drops the link after a timeout
            assert await read_measurement(client, 1, energy) == pytest.approx(25_000.0, abs=5)
        finally:
            client.close()


def test_counters_roll_over_like_a_register():
    # A uint16 Wh counter cannot hold megawatt-hours: it wraps as a real register does.
    text = MIXED.replace("scale = 0.01", "scale = 0.001").replace(
        'type = "uint32"\nword', 'type = "uint16"\nword'
    )
    template = parse_template(text, source="x")
    device = TemplateMeter(1, Meter(template=template), now_s=FROZEN_S)
    served = device.values["active_energy_import"]
    assert served > 65536
    assert device._words[Table.HOLDING_REGISTERS][10] == round(served) % 65536


def test_meter_names_a_kind_or_a_template():
    with pytest.raises(ConfigError, match="either a kind or a template"):
        Meter()
    with pytest.raises(ConfigError, match="either a kind or a template"):
        Meter(MeterKind.BREAKER, template="panelhub-sim-cb3")
    with pytest.raises(ConfigError, match="no built-in template 'nope'"):
        TemplateMeter(1, Meter(template="nope"), now_s=0.0)
    assert Meter(template="panelhub-sim-cb3").name == "panelhub-sim-cb3"
    assert Meter(MeterKind.BREAKER).name == "breaker"


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [("^SDM630", "SDM630"), ("(?i)^eastron", "eastron"), (r"^iEM3\.55", "iEM3.55"),
     ("EM24(DIN)?", "EM24"), ("^B2[34]", "B2"), ("", "")],
)  # fmt: skip
def test_literal_prefix(pattern, prefix):
    assert _literal_prefix(pattern) == prefix


@pytest.mark.parametrize(
    ("product_code", "answer"),
    [
        ('"AM-?3$"', "AM-3"),  # the model name matches
        ('"^XYZ-9"', "XYZ-9"),  # no name matches: the regex's literal start does
        ('"^[0-9]{4}$"', "AM-3"),  # nothing matches: the model name, with a warning
    ],
)
def test_identity_answers_what_the_regex_accepts(product_code, answer, caplog):
    text = MIXED.replace('"^AM-3\\\\b"', product_code)
    identity = template_identity(parse_template(text, source="x"))
    assert identity.product_code == answer
    assert identity.vendor_name == "Acme Meters"
    assert ("no simulated identity matches" in caplog.text) == (
        answer == "AM-3" and "[" in product_code
    )


async def test_template_served_on_an_rtu_line():
    template = builtin_templates()["panelhub-sim-cb3"]
    meters = {4: Meter(template=template.id, seed=8), 5: Meter(MeterKind.SINGLE_PHASE)}
    async with serve_rtu(meters, clock=lambda: FROZEN_S) as ep:
        client = AsyncModbusSerialClient(
            ep.client_path, framer=FramerType.RTU, baudrate=ep.line.baud_rate, parity="N",
            timeout=CLIENT_TIMEOUT_S, retries=0,
        )  # fmt: skip
        assert await client.connect()
        try:
            device = ep.meters[4]
            for m in template.measurements:
                served = device.values[m.key]
                value = await read_measurement(client, 4, m)
                assert abs(value - served) <= tolerance(m, served), m.key
        finally:
            client.close()


async def test_probe_inside_a_measurement_answers_only_its_own_read():
    # As the EM24 documents it: a one-word read of the code register gives the code, while the
    # two-word read of the measurement around it gives the measurement.
    text = MIXED.replace("address = 0x100\ntype = \"uint32\"\nequals = [70000, 70001]",
                         "address = 11\ntype = \"uint16\"\nequals = [72]")  # fmt: skip
    template = parse_template(text, source="x")
    energy = template.measurement("active_energy_import")
    assert (energy.function, energy.address, energy.register_count) == (Function(3), 10, 2)
    async with serve_tcp({1: Meter(template=template)}, clock=lambda: FROZEN_S) as ep:
        client = await connect(ep)
        try:
            r = await client.read_holding_registers(11, count=1, device_id=1)
            assert r.registers == [72]
            served = ep.meters[1].values[energy.key]
            value = await read_measurement(client, 1, energy)
            assert abs(value - served) <= tolerance(energy, served)
            r = await client.read_holding_registers(11, count=1, device_id=1)
            assert r.registers == [72]
        finally:
            client.close()
