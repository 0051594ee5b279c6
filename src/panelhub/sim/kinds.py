"""The three kinds of simulated meter: their register maps, identities and ratings.

The maps are written for PanelHub in the *style* of public device documentation (a Schneider
PM5xxx-like float map, an Eastron SDM120-like input-register map and a PowerTag-like breaker
with scaled integers); they are not copies of any vendor's map. ``docs/simulator.md`` renders
them as tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from panelhub.sim.model import BreakerSwitch, Rating, Reading
from panelhub.sim.registermap import BitPoint, ConfigBlock, Encoding, Point, RegisterMap, Table

F32: Final = Encoding.FLOAT32
KILO: Final = 1000.0  # registers in kW / kVA / kvar / kWh hold SI values divided by this
OVERLOAD_ALARM_RATIO: Final = 0.9  # a breaker warns at 90 % of its rated current (long-time pickup)

STATUS_CLOSED: Final = 0x0001
STATUS_TRIPPED: Final = 0x0002
STATUS_OVERLOAD: Final = 0x0004


class MeterKind(StrEnum):
    THREE_PHASE = "three-phase"
    SINGLE_PHASE = "single-phase"
    BREAKER = "breaker"


@dataclass(frozen=True, slots=True)
class Identity:
    """Objects of Read Device Identification (Modbus Application Protocol v1.1b3 §6.21)."""

    vendor_name: str
    product_code: str
    revision: str
    product_name: str
    model_name: str


Quantities = Callable[[Reading, BreakerSwitch], Mapping[str, float]]


@dataclass(frozen=True, slots=True)
class KindProfile:
    kind: MeterKind
    register_map: RegisterMap
    identity: Identity
    phase_count: int
    rated_power_w: float
    initial_energy_wh: float  # typical counter value of a meter some years into service
    rated_current_a: float
    quantities: Quantities

    @property
    def rating(self) -> Rating:
        return Rating(
            self.phase_count, self.rated_power_w, self.rated_current_a, self.initial_energy_wh
        )


def _three_phase_quantities(r: Reading, _switch: BreakerSwitch) -> Mapping[str, float]:
    p, v_ll = r.phases, r.voltages_ll_v
    return {
        **{f"current_l{i + 1}": p[i].current_a for i in range(3)},
        "current_n": r.neutral_current_a,
        "current_avg": r.current_avg_a,
        "voltage_l1_l2": v_ll[0],
        "voltage_l2_l3": v_ll[1],
        "voltage_l3_l1": v_ll[2],
        "voltage_ll_avg": sum(v_ll) / 3.0,
        **{f"voltage_l{i + 1}_n": p[i].voltage_v for i in range(3)},
        "voltage_ln_avg": r.voltage_ln_avg_v,
        **{f"active_power_l{i + 1}": p[i].active_power_w for i in range(3)},
        "active_power_total": r.active_power_w,
        "reactive_power_total": r.reactive_power_var,
        "apparent_power_total": r.apparent_power_va,
        "power_factor_total": r.power_factor,
        "frequency": r.frequency_hz,
        "active_energy_import": r.active_energy_wh,
        "reactive_energy_import": r.reactive_energy_varh,
    }


def _three_phase_map() -> RegisterMap:
    def f(quantity: str, address: int, unit: str, scale: float = 1.0) -> Point:
        return Point(quantity, address, F32, unit, scale)

    points = [
        *(f(f"current_l{i + 1}", 2999 + 2 * i, "A") for i in range(3)),
        f("current_n", 3005, "A"),
        f("current_avg", 3009, "A"),
        f("voltage_l1_l2", 3019, "V"),
        f("voltage_l2_l3", 3021, "V"),
        f("voltage_l3_l1", 3023, "V"),
        f("voltage_ll_avg", 3025, "V"),
        *(f(f"voltage_l{i + 1}_n", 3027 + 2 * i, "V") for i in range(3)),
        f("voltage_ln_avg", 3035, "V"),
        *(f(f"active_power_l{i + 1}", 3053 + 2 * i, "kW", KILO) for i in range(3)),
        f("active_power_total", 3059, "kW", KILO),
        f("reactive_power_total", 3067, "kvar", KILO),
        f("apparent_power_total", 3075, "kVA", KILO),
        f("power_factor_total", 3083, ""),
        f("frequency", 3109, "Hz"),
        Point("active_energy_import", 3203, Encoding.INT64, "Wh"),
        Point("reactive_energy_import", 3219, Encoding.INT64, "varh"),
    ]
    return RegisterMap(
        table=Table.HOLDING_REGISTERS,
        points=tuple(points),
        ranges=((2999, 112), (3203, 20)),
        config=ConfigBlock(address=29, label_words=10),
    )


def _single_phase_quantities(r: Reading, _switch: BreakerSwitch) -> Mapping[str, float]:
    phase = r.phases[0]
    return {
        "voltage": phase.voltage_v,
        "current": phase.current_a,
        "active_power": phase.active_power_w,
        "apparent_power": phase.apparent_power_va,
        "reactive_power": phase.reactive_power_var,
        "power_factor": r.power_factor,
        "frequency": r.frequency_hz,
        "import_active_energy": r.active_energy_wh,
        "export_active_energy": 0.0,
        "import_reactive_energy": r.reactive_energy_varh,
        "total_active_energy": r.active_energy_wh,
    }


def _single_phase_map() -> RegisterMap:
    points = (
        Point("voltage", 0x0000, F32, "V"),
        Point("current", 0x0006, F32, "A"),
        Point("active_power", 0x000C, F32, "W"),
        Point("apparent_power", 0x0012, F32, "VA"),
        Point("reactive_power", 0x0018, F32, "var"),
        Point("power_factor", 0x001E, F32, ""),
        Point("frequency", 0x0046, F32, "Hz"),
        Point("import_active_energy", 0x0048, F32, "kWh", KILO),
        Point("export_active_energy", 0x004A, F32, "kWh", KILO),
        Point("import_reactive_energy", 0x004C, F32, "kvarh", KILO),
        Point("total_active_energy", 0x0156, F32, "kWh", KILO),
    )
    return RegisterMap(
        table=Table.INPUT_REGISTERS,
        points=points,
        ranges=((0x0000, 0x0050), (0x0156, 2)),
        config=ConfigBlock(address=0x0000),
    )


BREAKER_RATED_CURRENT_A: Final = 63.0  # a common MCB / PowerTag-equipped outgoing feeder rating


def _breaker_quantities(r: Reading, switch: BreakerSwitch) -> Mapping[str, float]:
    currents = [p.current_a for p in r.phases]
    is_overloaded = max(currents) > OVERLOAD_ALARM_RATIO * BREAKER_RATED_CURRENT_A
    status = (
        (STATUS_CLOSED if switch.is_closed else 0)
        | (STATUS_TRIPPED if switch.is_tripped else 0)
        | (STATUS_OVERLOAD if is_overloaded else 0)
    )
    return {
        **{f"current_l{i + 1}": currents[i] for i in range(3)},
        **{f"voltage_l{i + 1}_n": r.phases[i].voltage_v for i in range(3)},
        "active_power_total": r.active_power_w,
        "reactive_power_total": r.reactive_power_var,
        "apparent_power_total": r.apparent_power_va,
        "power_factor": r.power_factor,
        "frequency": r.frequency_hz,
        "active_energy_import": r.active_energy_wh,
        "status": float(status),
        "operation_count": float(switch.operation_count),
        "rated_current": BREAKER_RATED_CURRENT_A,
        # Bits, read through coils and discrete inputs:
        "is_closed": float(switch.is_closed),
        "is_tripped": float(switch.is_tripped),
        "is_overloaded": float(is_overloaded),
        "trip_test": 0.0,
    }


def _breaker_map() -> RegisterMap:
    u16 = Encoding.UINT16
    points = (
        *(Point(f"current_l{i + 1}", i, u16, "A", 0.1) for i in range(3)),
        *(Point(f"voltage_l{i + 1}_n", 3 + i, u16, "V", 0.1) for i in range(3)),
        Point("active_power_total", 6, Encoding.INT32, "W"),
        Point("reactive_power_total", 8, Encoding.INT32, "var"),
        Point("apparent_power_total", 10, Encoding.UINT32, "VA"),
        Point("power_factor", 12, Encoding.INT16, "", 0.001),
        Point("frequency", 13, u16, "Hz", 0.01),
        Point("active_energy_import", 14, Encoding.UINT64, "Wh"),
        Point("status", 18, u16, "bits", description="bit 0 closed, bit 1 tripped, bit 2 overload"),
        Point("operation_count", 19, Encoding.UINT32, "operations"),
        Point("rated_current", 21, u16, "A"),
    )
    return RegisterMap(
        table=Table.HOLDING_REGISTERS,
        points=points,
        ranges=((0, 22),),
        config=ConfigBlock(address=0x0100),
        coils=(
            BitPoint(
                "is_closed",
                0,
                "position: write 1 to close (and reset a trip), 0 to open",
                is_writable=True,
            ),
            BitPoint(
                "trip_test",
                1,
                "write 1 to trip the breaker (test button); reads 0",
                is_writable=True,
            ),
        ),
        discrete_inputs=(
            BitPoint("is_closed", 0, "contacts closed"),
            BitPoint("is_tripped", 1, "tripped; cleared by the next close"),
            BitPoint("is_overloaded", 2, "a phase current is above 90 % of the rated current"),
        ),
    )


PROFILES: Final[Mapping[MeterKind, KindProfile]] = {
    MeterKind.THREE_PHASE: KindProfile(
        kind=MeterKind.THREE_PHASE,
        register_map=_three_phase_map(),
        identity=Identity(
            "PanelHub", "PH-SIM-PM3", "1.2", "Simulated three-phase power meter", "SIM-PM3"
        ),
        phase_count=3,
        rated_power_w=80_000.0,  # a 125 A feeder at 400 V
        initial_energy_wh=12_000_000.0,
        rated_current_a=125.0,
        quantities=_three_phase_quantities,
    ),
    MeterKind.SINGLE_PHASE: KindProfile(
        kind=MeterKind.SINGLE_PHASE,
        register_map=_single_phase_map(),
        identity=Identity(
            "PanelHub", "PH-SIM-EM1", "2.0", "Simulated single-phase energy meter", "SIM-EM1"
        ),
        phase_count=1,
        rated_power_w=3_680.0,  # 16 A at 230 V: one final circuit
        initial_energy_wh=850_000.0,
        rated_current_a=16.0,
        quantities=_single_phase_quantities,
    ),
    MeterKind.BREAKER: KindProfile(
        kind=MeterKind.BREAKER,
        register_map=_breaker_map(),
        identity=Identity(
            "PanelHub", "PH-SIM-CB3", "0.9", "Simulated breaker with energy sensor", "SIM-CB3"
        ),
        phase_count=3,
        rated_power_w=38_000.0,  # evening peaks reach ~58 A: just above the overload alarm
        initial_energy_wh=3_400_000.0,
        rated_current_a=BREAKER_RATED_CURRENT_A,
        quantities=_breaker_quantities,
    ),
}
