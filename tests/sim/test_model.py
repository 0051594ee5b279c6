"""The pure value model: deterministic per seed, plausible ranges, energy that only grows."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from panelhub.sim.kinds import PROFILES, MeterKind
from panelhub.sim.model import BreakerSwitch, MeterModel
from panelhub.sim.physics import load_fraction, smooth_noise

DAY_S = 600.0


def make_model(kind: MeterKind, seed: int = 7) -> MeterModel:
    profile = PROFILES[kind]
    return MeterModel(
        phase_count=profile.phase_count,
        rated_power_w=profile.rated_power_w,
        seed=seed,
        day_length_s=DAY_S,
        initial_energy_wh=profile.initial_energy_wh,
    )


@given(
    seed=st.integers(min_value=0, max_value=2**64),
    t_s=st.floats(min_value=-1e9, max_value=1e9),
)
def test_noise_is_bounded_and_deterministic(seed, t_s):
    value = smooth_noise(seed, 1, t_s, period_s=3.0)
    assert -1.0 <= value <= 1.0
    assert value == smooth_noise(seed, 1, t_s, period_s=3.0)


def test_noise_is_continuous():
    steps = [smooth_noise(5, 1, i * 0.01, period_s=2.0) for i in range(1000)]
    assert max(abs(a - b) for a, b in itertools.pairwise(steps)) < 0.05


def test_load_follows_a_day_with_peaks_and_troughs():
    loads = [load_fraction(t, seed=3, day_length_s=DAY_S) for t in range(0, int(DAY_S), 2)]
    assert all(0.05 <= x <= 1.0 for x in loads)
    assert max(loads) > 0.6
    assert min(loads) < 0.3


def test_same_seed_same_values_other_seed_other_values():
    a, b, c = (make_model(MeterKind.THREE_PHASE, seed) for seed in (1, 1, 2))
    times = [1000.0 + 0.5 * i for i in range(50)]
    ra = [a.advance(t) for t in times]
    assert ra == [b.advance(t) for t in times]
    assert ra != [c.advance(t) for t in times]


@pytest.mark.parametrize("kind", list(MeterKind))
def test_readings_stay_in_plausible_ranges(kind):
    model = make_model(kind)
    for i in range(2000):
        r = model.advance(i * 1.7)
        for p in r.phases:
            assert 230 * 0.98 <= p.voltage_v <= 230 * 1.02
            assert p.current_a >= 0.0
        assert 49.95 <= r.frequency_hz <= 50.05
        assert 0.85 <= r.power_factor <= 0.99
        assert 0.0 < r.active_power_w <= PROFILES[kind].rated_power_w * 1.2
        assert math.isclose(r.power_factor, r.active_power_w / r.apparent_power_va)
        for v_ll in r.voltages_ll_v:
            assert 400 * 0.97 <= v_ll <= 400 * 1.03


def test_energy_is_monotonic_over_three_simulated_days():
    model = make_model(MeterKind.THREE_PHASE)
    last = model.advance(0.0)
    for i in range(1, 3 * int(DAY_S)):
        r = model.advance(float(i))
        assert r.active_energy_wh >= last.active_energy_wh
        assert r.reactive_energy_varh >= last.reactive_energy_varh
        last = r
    gained_wh = last.active_energy_wh - PROFILES[MeterKind.THREE_PHASE].initial_energy_wh
    # Average load is between MIN_LOAD and MAX_LOAD of the rated power over 1800 s.
    assert 80_000 * 0.05 * 0.5 < gained_wh < 80_000 * 0.5


def test_energy_integrates_power_over_elapsed_time():
    model = make_model(MeterKind.SINGLE_PHASE)
    start = model.advance(100.0)
    end = model.advance(100.0 + 3600.0)
    assert math.isclose(
        end.active_energy_wh - start.active_energy_wh, end.active_power_w, rel_tol=1e-9
    )


def test_a_clock_going_backwards_adds_no_energy():
    model = make_model(MeterKind.SINGLE_PHASE)
    first = model.advance(500.0)
    assert model.advance(400.0).active_energy_wh == first.active_energy_wh
    assert model.advance(500.0).active_energy_wh == first.active_energy_wh


def test_an_open_breaker_carries_nothing_and_counts_nothing():
    model = make_model(MeterKind.BREAKER)
    before = model.advance(10.0)
    after = model.advance(70.0, is_energised=False)
    assert after.active_power_w == 0.0
    assert after.current_avg_a == 0.0
    assert after.active_energy_wh == before.active_energy_wh
    assert after.voltage_ln_avg_v > 220.0


def test_breaker_switch_counts_operations_and_latches_trips():
    switch = BreakerSwitch()
    switch.close()
    assert switch.operation_count == 0
    switch.trip()
    assert (switch.is_closed, switch.is_tripped, switch.operation_count) == (False, True, 1)
    switch.open()
    assert switch.operation_count == 1
    switch.close()
    assert (switch.is_closed, switch.is_tripped, switch.operation_count) == (True, False, 2)
