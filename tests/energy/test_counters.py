"""Consumption from cumulative counters: never negative, never a spike, and nothing lost."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panelhub.energy.counters import (
    Consumption,
    CounterSpec,
    MeterReplacement,
    bucket_consumption,
    counter_steps,
    rollover_for,
)
from panelhub.storage.series import Quality, Sample

Q = Quality
T0 = 1_800_000_000 - 1_800_000_000 % 3600  # an hour boundary
PERIOD_S = 300


def readings(*values: float | None, period_s: int = PERIOD_S) -> list[Sample]:
    """One sample every period from T0; None is a sample that could not be read."""
    return [
        Sample.invalid(T0 + i * period_s) if value is None else Sample(T0 + i * period_s, value)
        for i, value in enumerate(values)
    ]


def five_minute_buckets(count: int) -> list[int]:
    return [T0 + i * PERIOD_S for i in range(count + 1)]


def consumption(
    samples: list[Sample], buckets: list[int] | None = None, **spec: Any
) -> list[tuple[float, Quality]]:
    boundaries = buckets or five_minute_buckets(len(samples))
    result = bucket_consumption(samples, boundaries, spec=CounterSpec(**spec), period_s=PERIOD_S)
    return [(round(c.consumption, 9), c.quality) for c in result]


def test_worked_example_of_the_module_docstring():
    samples = readings(9990, 9995, None, 5, 1, 900, 905)
    assert consumption(samples, rollover_at=10_000, max_rate_per_s=1) == [
        (5, Q.GOOD),
        (5, Q.GAP | Q.ESTIMATED | Q.ROLLOVER),
        (5, Q.GAP | Q.ESTIMATED | Q.ROLLOVER),
        (1, Q.RESET),
        (0, Q.IMPLAUSIBLE),
        (5, Q.GOOD),
        (0, Q.NO_DATA),
    ]


def test_steady_counter_gives_its_differences():
    assert consumption(readings(100, 110, 125, 125)) == [
        (10, Q.GOOD),
        (15, Q.GOOD),
        (0, Q.GOOD),
        (0, Q.NO_DATA),
    ]


def test_hour_bucket_sums_its_readings_and_flags_the_hour_after_the_last():
    samples = readings(*range(0, 130, 10))  # 10:00 .. 11:00 every 5 minutes
    hours = [T0, T0 + 3600, T0 + 7200]
    assert consumption(samples, hours) == [(120, Q.GOOD), (0, Q.NO_DATA)]


def test_a_bucket_half_covered_is_flagged_gap():
    samples = [Sample(T0 + 150, 10), Sample(T0 + 450, 40)]
    assert consumption(samples, [T0, T0 + 300, T0 + 600]) == [(15, Q.GAP), (15, Q.GAP)]


def test_a_gap_is_spread_pro_rata_and_flagged_estimated():
    samples = readings(0, None, None, 30, 40)
    assert consumption(samples) == [
        (10, Q.GAP | Q.ESTIMATED),
        (10, Q.GAP | Q.ESTIMATED),
        (10, Q.GAP | Q.ESTIMATED),
        (10, Q.GOOD),
        (0, Q.NO_DATA),
    ]


def test_a_late_poll_is_not_a_gap():
    samples = [Sample(T0, 0), Sample(T0 + 440, 44), Sample(T0 + 600, 60)]
    assert [q for _, q in consumption(samples, [T0, T0 + 300, T0 + 600])] == [Q.GOOD, Q.GOOD]


def test_reset_to_zero_counts_what_was_counted_since():
    assert consumption(readings(1000, 1010, 4, 9))[:3] == [
        (10, Q.GOOD),
        (4, Q.RESET),
        (5, Q.GOOD),
    ]


def test_a_counter_jittering_backwards_counts_zero_not_its_whole_reading():
    assert consumption(readings(1000.5, 1000.4, 1000.6))[:2] == [(0, Q.RESET), (0.2, Q.GOOD)]


def test_reset_reading_over_the_rate_limit_is_left_out():
    assert consumption(readings(5000, 1000, 1001), max_rate_per_s=1)[:2] == [
        (0, Q.RESET | Q.IMPLAUSIBLE),
        (1, Q.GOOD),
    ]


def test_uint32_rollover_is_added_back():
    top = 2**32
    assert consumption(readings(top - 10, 5, 15), rollover_at=top)[:2] == [
        (15, Q.ROLLOVER),
        (10, Q.GOOD),
    ]


def test_a_drop_from_mid_range_is_a_reset_not_a_rollover():
    top = 2**32
    assert consumption(readings(top // 2, 5), rollover_at=top)[0] == (5, Q.RESET)


def test_a_wrap_faster_than_the_meter_can_count_is_a_reset():
    result = consumption(readings(9_990, 500), rollover_at=10_000, max_rate_per_s=1)
    assert result[0] == (0, Q.RESET | Q.IMPLAUSIBLE)


def test_a_lone_glitch_is_set_aside_and_the_counter_goes_on():
    samples = readings(100, 1e9, 106, 110)
    assert consumption(samples, max_rate_per_s=1) == [
        (3, Q.IMPLAUSIBLE | Q.ESTIMATED),
        (3, Q.IMPLAUSIBLE | Q.ESTIMATED),
        (4, Q.GOOD),
        (0, Q.NO_DATA),
    ]


def test_a_preset_counter_goes_on_from_its_new_value():
    samples = readings(100, 50_000, 50_010, 50_020)
    assert consumption(samples, max_rate_per_s=1)[:3] == [
        (0, Q.IMPLAUSIBLE),
        (10, Q.GOOD),
        (10, Q.GOOD),
    ]


def test_two_glitches_in_a_row_are_each_left_out():
    samples = readings(100, 1e9, 5e8, 110)
    result = consumption(samples, max_rate_per_s=1)
    assert all(value <= 300 for value, _ in result)
    assert result[0] == (0, Q.IMPLAUSIBLE)


def test_meter_replacement_joins_old_and_new_readings():
    swap = MeterReplacement(T0 + 400, old_final=1004, new_initial=10)
    samples = readings(990, 1000, 13, 20)
    assert consumption(samples, replacements=(swap,))[:3] == [
        (10, Q.GOOD),
        (7, Q.REPLACED),  # 4 on the old meter, 3 on the new
        (7, Q.GOOD),
    ]


def test_meter_replacement_without_old_final_takes_the_last_reading_logged():
    swap = MeterReplacement(T0 + 300, old_final=None)  # at the second reading: the new meter's
    assert consumption(readings(990, 2, 5), replacements=(swap,))[:2] == [
        (2, Q.REPLACED),
        (3, Q.GOOD),
    ]


def test_two_replacements_within_one_step_and_readings_below_the_new_initial():
    swaps = (
        MeterReplacement(T0 + 100, old_final=995, new_initial=0),
        MeterReplacement(T0 + 200, old_final=7, new_initial=50),
    )
    # 5 on the first meter, 7 on the second, the third reads below its initial value: 0.
    assert consumption(readings(990, 40), replacements=swaps)[0] == (12, Q.REPLACED)


def test_replacement_outside_the_readings_changes_nothing():
    swap = MeterReplacement(T0 - 10, old_final=5)
    assert consumption(readings(0, 10), replacements=(swap,))[0] == (10, Q.GOOD)


def test_not_a_number_is_not_a_reading():
    samples = [Sample(T0, 0), Sample(T0 + 300, math.nan), Sample(T0 + 600, 20)]
    assert consumption(samples, [T0, T0 + 600]) == [(20, Q.GAP | Q.ESTIMATED)]


@pytest.mark.parametrize("samples", [[], readings(5), readings(None, None)])
def test_fewer_than_two_readings_have_no_data(samples):
    assert consumption(samples, five_minute_buckets(2)) == [(0, Q.NO_DATA), (0, Q.NO_DATA)]


def test_buckets_before_the_first_reading_have_no_data():
    samples = [Sample(T0 + 600, 0), Sample(T0 + 900, 10)]
    assert consumption(samples, five_minute_buckets(4)) == [
        (0, Q.NO_DATA),
        (0, Q.NO_DATA),
        (10, Q.GOOD),
        (0, Q.NO_DATA),
    ]


def test_the_result_names_each_bucket():
    result = bucket_consumption(readings(0, 1), [T0, T0 + 300], spec=CounterSpec(), period_s=300)
    assert result == [Consumption(T0, T0 + 300, 1.0, Q.GOOD)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: consumption(readings(0, 1), [T0, T0]), "strictly increasing"),
        (lambda: consumption([Sample(T0, 1), Sample(T0, 2)]), "time order"),
        (lambda: counter_steps([], spec=CounterSpec(), period_s=0), "period_s 0"),
        (lambda: CounterSpec(rollover_at=0), "rollover_at 0"),
        (lambda: CounterSpec(max_rate_per_s=-1), "max_rate_per_s -1"),
        (
            lambda: CounterSpec(replacements=(MeterReplacement(2, 0), MeterReplacement(1, 0))),
            "time order",
        ),
    ],
)
def test_bad_inputs_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("data_type", "scale", "rollover_at"),
    [
        ("uint32", 1, 2**32),
        ("uint16", 10, 655_360),
        ("int64", -0.001, 2**64 / 1000),
        ("float32", 1, None),
        ("float64", 1000, None),
    ],
)
def test_rollover_from_the_register_type_and_scale(data_type, scale, rollover_at):
    assert rollover_for(data_type, scale=scale) == rollover_at


def test_a_signed_register_wrapping_from_top_to_bottom_is_a_rollover():
    top = rollover_for("int32", scale=1)
    assert top is not None
    assert consumption(readings(2**31 - 2, -(2**31) + 1), rollover_at=top)[0] == (3, Q.ROLLOVER)


@pytest.mark.parametrize(("data_type", "scale", "message"), [("int8", 1, "not a register"),
                                                              ("uint32", 0, "scale")])  # fmt: skip
def test_rollover_for_refuses_unknown_types_and_zero_scale(data_type, scale, message):
    with pytest.raises(ValueError, match=message):
        rollover_for(data_type, scale=scale)


# --- properties -------------------------------------------------------------------------------

ROLLOVER_AT = 100_000
MAX_RATE_PER_S = 1.0

# A true counter: steps of 60..180 s, each adding at most what the rate allows; some readings lost.
true_steps = st.lists(
    st.tuples(st.integers(1, 3), st.integers(0, 60), st.booleans()),
    min_size=1,
    max_size=40,
)


def _read(start_value: int, steps: list[tuple[int, int, bool]]) -> tuple[list[Sample], float]:
    """Samples of a wrapping counter, and the true consumption from first to last valid one."""
    samples, ts, value, counted = [Sample(T0, start_value)], T0, start_value, 0
    total = 0
    for minutes, added, is_read in steps:
        ts, value, counted = ts + 60 * minutes, value + added, counted + added
        if is_read:
            samples.append(Sample(ts, value % ROLLOVER_AT))
            total = counted
        else:
            samples.append(Sample.invalid(ts))
    return samples, total


def _bounds(samples: list[Sample], cuts: list[int]) -> list[int]:
    first, last = samples[0].ts, samples[-1].ts
    inside = sorted({first + cut % (last - first + 1) for cut in cuts})
    return sorted({first - 60, *inside, last + 60})


@settings(max_examples=200, deadline=None)
@given(
    start=st.integers(0, ROLLOVER_AT - 1),
    steps=true_steps,
    cuts=st.lists(st.integers(0, 10**6), max_size=20),
)
def test_buckets_add_up_to_the_true_consumption_whatever_the_bucketing(start, steps, cuts):
    samples, total = _read(start, steps)
    spec = CounterSpec(rollover_at=ROLLOVER_AT, max_rate_per_s=MAX_RATE_PER_S)
    result = bucket_consumption(samples, _bounds(samples, cuts), spec=spec, period_s=60)
    assert math.isclose(sum(c.consumption for c in result), total, abs_tol=1e-6)
    assert all(not c.quality & (Q.RESET | Q.IMPLAUSIBLE) for c in result)


garbage = st.lists(
    st.one_of(st.none(), st.floats(-10, 2_000), st.integers(0, 1_000)), min_size=0, max_size=40
)


@settings(max_examples=300, deadline=None)
@given(
    values=garbage,
    cuts=st.lists(st.integers(0, 10**6), max_size=20),
    rollover_at=st.sampled_from([None, 1_000.0]),
    max_rate_per_s=st.sampled_from([None, 0.5, 3.0]),
)
def test_any_readings_give_no_negative_bar_and_no_spike(values, cuts, rollover_at, max_rate_per_s):
    samples = readings(*values, period_s=60) or [Sample(T0, 0)]
    spec = CounterSpec(rollover_at=rollover_at, max_rate_per_s=max_rate_per_s)
    fine_bounds = _bounds(samples, cuts)
    fine = bucket_consumption(samples, fine_bounds, spec=spec, period_s=60)
    coarse = bucket_consumption(
        samples, sorted({*fine_bounds[::3], fine_bounds[-1]}), spec=spec, period_s=60
    )
    for bucket in fine:
        assert bucket.consumption >= 0
        if max_rate_per_s is not None:
            limit = max_rate_per_s * (bucket.end - bucket.start)
            assert bucket.consumption <= limit + 1e-6
    fine_total = sum(c.consumption for c in fine)
    assert math.isclose(fine_total, sum(c.consumption for c in coarse), rel_tol=1e-9, abs_tol=1e-6)
    steps = counter_steps(samples, spec=spec, period_s=60)
    assert math.isclose(fine_total, sum(s.increase for s in steps), rel_tol=1e-9, abs_tol=1e-6)
