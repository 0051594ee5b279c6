"""The electrical model of one simulated meter: voltages, currents, powers and energy counters.

Pure and clock-free: the caller passes the time in seconds. Voltages, frequency and power
factor come from :mod:`panelhub.sim.physics` noise; energy is the integral of power over the
time between two calls to :meth:`MeterModel.advance`, so it only ever grows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from panelhub.sim.physics import Channel, load_fraction, smooth_noise

NOMINAL_VOLTAGE_LN_V: Final = 230.0  # IEC 60038 low-voltage nominal (230/400 V)
VOLTAGE_NOISE: Final = 0.012  # ±1.2 % slow wander: real LV networks sit well inside EN 50160
VOLTAGE_DROP_AT_FULL_LOAD: Final = 0.007  # -0.7 % at rated load; total stays within ±2 %
NOMINAL_FREQUENCY_HZ: Final = 50.0
FREQUENCY_NOISE_HZ: Final = 0.045  # keeps within ±0.05 Hz, a normal day on a large grid
GRID_SEED: Final = 0  # frequency is grid-wide: every simulated meter sees the same one
POWER_FACTOR_MIN: Final = 0.85  # plausible uncompensated mixed load
POWER_FACTOR_MAX: Final = 0.99  # plausible well-compensated load
PHASE_IMBALANCE: Final = 0.12  # ±12 % between phases, typical of single-phase loads on 3 phases


@dataclass(frozen=True, slots=True)
class Rating:
    """What a simulated device is sized for."""

    phase_count: int  # 1 or 3
    rated_power_w: float  # the feeder's full load
    rated_current_a: float  # the protective device's rating (overload alarm at 90 %)
    initial_energy_wh: float  # typical counter value of a meter some years into service


@dataclass(frozen=True, slots=True)
class PhaseValues:
    voltage_v: float  # line-to-neutral
    current_a: float
    active_power_w: float
    reactive_power_var: float

    @property
    def apparent_power_va(self) -> float:
        return math.hypot(self.active_power_w, self.reactive_power_var)


@dataclass(frozen=True, slots=True)
class Reading:
    """Everything a meter measures at one instant; totals are derived so they stay consistent."""

    phases: tuple[PhaseValues, ...]
    frequency_hz: float
    active_energy_wh: float
    reactive_energy_varh: float

    @property
    def active_power_w(self) -> float:
        return sum(p.active_power_w for p in self.phases)

    @property
    def reactive_power_var(self) -> float:
        return sum(p.reactive_power_var for p in self.phases)

    @property
    def apparent_power_va(self) -> float:
        # Arithmetic sum of phase apparent powers, as most panel meters report "VA total".
        return sum(p.apparent_power_va for p in self.phases)

    @property
    def power_factor(self) -> float:
        """P / S; 1.0 when nothing flows (a de-energised feeder has no phase shift to report)."""
        s = self.apparent_power_va
        return self.active_power_w / s if s > 0.0 else 1.0

    @property
    def current_avg_a(self) -> float:
        return sum(p.current_a for p in self.phases) / len(self.phases)

    @property
    def voltage_ln_avg_v(self) -> float:
        return sum(p.voltage_v for p in self.phases) / len(self.phases)

    @property
    def voltages_ll_v(self) -> tuple[float, ...]:
        """Line-to-line voltages V12, V23, V31 from phasors 120° apart.

        ``|Va∠0 - Vb∠-120°|² = Va² + Vb² + Va·Vb``; empty for a single-phase meter.
        """
        if len(self.phases) != 3:
            return ()
        v = [p.voltage_v for p in self.phases]
        return tuple(
            math.sqrt(v[i] ** 2 + v[j] ** 2 + v[i] * v[j]) for i, j in ((0, 1), (1, 2), (2, 0))
        )

    @property
    def neutral_current_a(self) -> float:
        """Phasor sum of the phase currents (equal phase angles assumed)."""
        if len(self.phases) != 3:
            return self.phases[0].current_a
        a, b, c = (p.current_a for p in self.phases)
        return math.sqrt(max(0.0, a * a + b * b + c * c - a * b - b * c - c * a))


class MeterModel:
    """One meter's electrical state over time.

    Rules:
      * :meth:`advance` integrates energy over ``now_s - last_s`` at the power of ``now_s``;
        a clock that goes backwards adds nothing, so counters are monotonic whatever the caller.
      * When ``is_energised`` is false (an open breaker), all currents and powers are zero and
        the counters stand still; voltages stay, as a meter upstream of the contacts sees them.
    """

    def __init__(
        self,
        *,
        phase_count: int,
        rated_power_w: float,
        seed: int,
        day_length_s: float,
        initial_energy_wh: float,
    ) -> None:
        if phase_count not in (1, 3):
            raise ValueError(f"phase_count must be 1 or 3, not {phase_count}")
        self.phase_count = phase_count
        self.rated_power_w = rated_power_w
        self.seed = seed
        self.day_length_s = day_length_s
        self._active_energy_wh = initial_energy_wh
        # Reactive energy starts at a third of active: PF ~0.95 over the meter's past life.
        self._reactive_energy_varh = initial_energy_wh / 3.0
        self._last_s: float | None = None

    def voltage_v(self, phase: int, t_s: float, load: float) -> float:
        wander = smooth_noise(self.seed, Channel.VOLTAGE + phase, t_s, period_s=11.0)
        wander = 0.7 * wander + 0.3 * smooth_noise(GRID_SEED, Channel.VOLTAGE, t_s, period_s=29.0)
        return NOMINAL_VOLTAGE_LN_V * (
            1.0 + VOLTAGE_NOISE * wander - VOLTAGE_DROP_AT_FULL_LOAD * load
        )

    def power_factor(self, t_s: float, load: float) -> float:
        # Lightly loaded feeders are dominated by magnetising current: lower PF at low load.
        pf = (
            0.875
            + 0.09 * load
            + 0.02 * smooth_noise(self.seed, Channel.POWER_FACTOR, t_s, period_s=13.0)
        )
        return min(POWER_FACTOR_MAX, max(POWER_FACTOR_MIN, pf))

    def phase_values(self, t_s: float, *, is_energised: bool) -> tuple[PhaseValues, ...]:
        load = (
            load_fraction(t_s, seed=self.seed, day_length_s=self.day_length_s)
            if is_energised
            else 0.0
        )
        pf = self.power_factor(t_s, load)
        tan_phi = math.tan(math.acos(pf))
        phases = []
        for phase in range(self.phase_count):
            share = 1.0 + PHASE_IMBALANCE * smooth_noise(
                self.seed, Channel.PHASE_SHARE + phase, t_s, period_s=17.0
            )
            p_w = (
                load
                * self.rated_power_w
                / self.phase_count
                * (share if self.phase_count == 3 else 1.0)
            )
            v = self.voltage_v(phase, t_s, load)
            phases.append(PhaseValues(v, p_w / (v * pf), p_w, p_w * tan_phi))
        return tuple(phases)

    def frequency_hz(self, t_s: float) -> float:
        return NOMINAL_FREQUENCY_HZ + FREQUENCY_NOISE_HZ * smooth_noise(
            GRID_SEED, Channel.FREQUENCY, t_s, period_s=9.0
        )

    def restart_counters(self, energy_wh: float) -> None:
        """Set the energy counters as a cleared or newly fitted meter shows them.

        Reactive energy restarts at a third of active energy, as at construction. From here
        the counters grow again with the power, so the only step is this one.
        """
        self._active_energy_wh = energy_wh
        self._reactive_energy_varh = energy_wh / 3.0

    def advance(self, now_s: float, *, is_energised: bool = True) -> Reading:
        """Move the model to ``now_s`` and return what the meter measures there."""
        phases = self.phase_values(now_s, is_energised=is_energised)
        if self._last_s is not None and now_s > self._last_s:
            hours = (now_s - self._last_s) / 3600.0
            self._active_energy_wh += max(0.0, sum(p.active_power_w for p in phases)) * hours
            self._reactive_energy_varh += (
                max(0.0, sum(p.reactive_power_var for p in phases)) * hours
            )
        if self._last_s is None or now_s > self._last_s:
            self._last_s = now_s
        return Reading(
            phases, self.frequency_hz(now_s), self._active_energy_wh, self._reactive_energy_varh
        )


class BreakerSwitch:
    """Position of a simulated circuit breaker: closed, opened on command, or tripped.

    A trip opens the contacts and latches ``is_tripped`` until the next close command, which is
    how a remote-controlled breaker behaves after its trip unit fires (reset, then re-close).
    """

    def __init__(self) -> None:
        self.is_closed = True
        self.is_tripped = False
        self.operation_count = 0

    def close(self) -> None:
        if not self.is_closed:
            self.operation_count += 1
        self.is_closed = True
        self.is_tripped = False

    def open(self) -> None:
        if self.is_closed:
            self.operation_count += 1
        self.is_closed = False

    def trip(self) -> None:
        self.open()
        self.is_tripped = True
