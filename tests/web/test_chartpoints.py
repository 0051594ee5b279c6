"""Line points: gaps end a run, and thinning keeps each pixel column's lowest and highest sample."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from panelhub.storage.series import Sample
from panelhub.web.chartpoints import MAX_COLUMNS, runs

START = 1_800_000_000


def test_an_invalid_sample_splits_the_line_and_nothing_spans_it() -> None:
    samples = [Sample(START + 60 * index, 230.0) for index in range(10)]
    samples[4] = Sample.invalid(START + 240)

    kept = runs(samples, start=START, end=START + 540)

    assert [[point.ts for point in run] for run in kept] == [
        [START + 60 * index for index in range(4)],
        [START + 60 * index for index in range(5, 10)],
    ]


def test_a_step_longer_than_max_gap_splits_the_line() -> None:
    samples = [Sample(START, 1.0), Sample(START + 60, 2.0), Sample(START + 600, 3.0)]

    assert len(runs(samples, start=START, end=START + 600, max_gap_s=120)) == 2
    assert len(runs(samples, start=START, end=START + 600)) == 1


def test_a_not_finite_value_is_a_gap_too() -> None:
    samples = [Sample(START, 1.0), Sample(START + 60, math.inf), Sample(START + 120, 3.0)]

    assert len(runs(samples, start=START, end=START + 120)) == 2


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3000))
def test_thinning_keeps_each_columns_min_and_max(values: list[float]) -> None:
    samples = [Sample(START + 60 * index, value) for index, value in enumerate(values)]
    end = START + 60 * len(values)
    columns = 100

    kept = runs(samples, start=START, end=end, columns=columns)

    (run,) = kept
    assert len(run) <= 2 * columns
    assert [point.ts for point in run] == sorted(point.ts for point in run)
    by_column: dict[int, list[float]] = {}
    for sample in samples:
        by_column.setdefault((sample.ts - START) * columns // (end - START), []).append(
            sample.value
        )
    kept_values: dict[int, list[float]] = {
        (point.ts - START) * columns // (end - START): [] for point in run
    }
    for point in run:
        kept_values[(point.ts - START) * columns // (end - START)].append(point.value)
    for column, column_values in by_column.items():
        assert min(column_values) in kept_values[column]
        assert max(column_values) in kept_values[column]


def test_a_month_of_minutes_thins_to_at_most_1000_points() -> None:
    samples = [Sample(START + 60 * index, math.sin(index / 50)) for index in range(43_200)]

    (run,) = runs(samples, start=START, end=START + 43_200 * 60)

    assert len(run) <= 2 * MAX_COLUMNS == 1000
    assert min(point.value for point in run) == min(sample.value for sample in samples)


def test_many_tiny_gaps_stay_bounded() -> None:
    samples = [
        Sample.invalid(START + index) if index % 2 else Sample(START + index, float(index))
        for index in range(100_000)
    ]

    kept = runs(samples, start=START, end=START + 100_000)

    assert sum(len(run) for run in kept) <= 4 * MAX_COLUMNS
