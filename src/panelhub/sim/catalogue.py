"""SI values for every key of the quantity catalogue, from one reading of the meter model.

This is what a simulated device serving a template measures: the template then only decides
where and how each value is laid out. Keys outside the catalogue are served as 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from panelhub.sim.kinds import OVERLOAD_ALARM_RATIO, STATUS_CLOSED, STATUS_OVERLOAD, STATUS_TRIPPED
from panelhub.sim.model import BreakerSwitch, Rating, Reading
from panelhub.sim.physics import Channel, smooth_noise

THD_VOLTAGE_PERCENT: Final = (2.5, 1.0)  # mean, swing: EN 50160 allows 8 %; LV grids sit at 2-4 %
THD_CURRENT_PERCENT: Final = (12.0, 6.0)  # mixed loads with rectifiers: 5-20 % is common
AMBIENT_C: Final = 28.0  # inside a switchboard
TEMPERATURE_RISE_C: Final = 15.0  # at rated power: terminals warm with the square of the load


@dataclass(frozen=True, slots=True)
class Moment:
    """Everything the catalogue values depend on at one instant."""

    reading: Reading
    switch: BreakerSwitch
    rating: Rating
    seed: int
    t_s: float
    operating_time_s: float


def _phase(moment: Moment, index: int) -> int:
    # A single-phase meter has only L1: its L2/L3 keys read as L1 would be wrong, so they are 0.
    return index if index < len(moment.reading.phases) else -1


def _per_phase(moment: Moment, prefix: str, value: Callable[[int], float]) -> dict[str, float]:
    return {f"{prefix}_l{i + 1}": value(i) if _phase(moment, i) >= 0 else 0.0 for i in range(3)}


def _electrical(m: Moment) -> dict[str, float]:
    r = m.reading
    p = r.phases
    v_ll = r.voltages_ll_v or (0.0, 0.0, 0.0)
    return {
        **{
            f"{key}_n": value
            for key, value in _per_phase(m, "voltage", lambda i: p[i].voltage_v).items()
        },
        "voltage_ln_avg": r.voltage_ln_avg_v,
        "voltage_l1_l2": v_ll[0],
        "voltage_l2_l3": v_ll[1],
        "voltage_l3_l1": v_ll[2],
        "voltage_ll_avg": sum(v_ll) / 3.0,
        **_per_phase(m, "current", lambda i: p[i].current_a),
        "current_n": r.neutral_current_a,
        "current_avg": r.current_avg_a,
        **_per_phase(m, "active_power", lambda i: p[i].active_power_w),
        "active_power_total": r.active_power_w,
        **_per_phase(m, "reactive_power", lambda i: p[i].reactive_power_var),
        "reactive_power_total": r.reactive_power_var,
        **_per_phase(m, "apparent_power", lambda i: p[i].apparent_power_va),
        "apparent_power_total": r.apparent_power_va,
        **_per_phase(
            m, "power_factor", lambda i: _power_factor(p[i].active_power_w, p[i].apparent_power_va)
        ),
        "power_factor_total": r.power_factor,
        "frequency": r.frequency_hz,
        # No demand history is kept: the present power stands in for the interval mean.
        "active_power_demand": r.active_power_w,
    }


def _power_factor(active_w: float, apparent_va: float) -> float:
    return active_w / apparent_va if apparent_va > 0.0 else 1.0


def _counters(m: Moment) -> dict[str, float]:
    r = m.reading
    return {
        "active_energy_import": r.active_energy_wh,
        "active_energy_export": 0.0,  # a consumer's meter: nothing flows back
        "active_energy_total": r.active_energy_wh,
        "reactive_energy_import": r.reactive_energy_varh,
        "reactive_energy_export": 0.0,
        "reactive_energy_total": r.reactive_energy_varh,
        # Both parts only grow, so their hypotenuse does too: a monotonic stand-in for VAh.
        "apparent_energy": (r.active_energy_wh**2 + r.reactive_energy_varh**2) ** 0.5,
        "operating_time": m.operating_time_s,
        "operation_count": float(m.switch.operation_count),
    }


def _status(m: Moment) -> dict[str, float]:
    currents = [p.current_a for p in m.reading.phases]
    is_overloaded = max(currents) > OVERLOAD_ALARM_RATIO * m.rating.rated_current_a
    status = (
        (STATUS_CLOSED if m.switch.is_closed else 0)
        | (STATUS_TRIPPED if m.switch.is_tripped else 0)
        | (STATUS_OVERLOAD if is_overloaded else 0)
    )
    return {
        "status": float(status),
        "rated_current": m.rating.rated_current_a,
        # Alarm bits by the alarm keys the simulator knows; any other alarm reads 0.
        "closed": float(m.switch.is_closed),
        "open": float(not m.switch.is_closed),
        "tripped": float(m.switch.is_tripped),
        "overload": float(is_overloaded),
    }


def _harmonics_and_heat(m: Moment) -> dict[str, float]:
    def noise(channel: int, period_s: float) -> float:
        return smooth_noise(m.seed, channel, m.t_s, period_s=period_s)

    v_mean, v_swing = THD_VOLTAGE_PERCENT
    i_mean, i_swing = THD_CURRENT_PERCENT
    load = max(0.0, m.reading.active_power_w) / m.rating.rated_power_w
    return {
        **_per_phase(
            m, "thd_voltage", lambda i: v_mean + v_swing * noise(Channel.THD_VOLTAGE + i, 23.0)
        ),
        **_per_phase(
            m, "thd_current", lambda i: i_mean + i_swing * noise(Channel.THD_CURRENT + i, 19.0)
        ),
        "temperature": AMBIENT_C
        + TEMPERATURE_RISE_C * load * load
        + noise(Channel.TEMPERATURE, 41.0),
    }


def catalogue_values(moment: Moment) -> dict[str, float]:
    """SI value of every catalogue key (plus the known alarm keys) at ``moment``."""
    return {
        **_electrical(moment),
        **_counters(moment),
        **_status(moment),
        **_harmonics_and_heat(moment),
    }
