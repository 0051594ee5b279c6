from __future__ import annotations

import math

from panelhub.energy.aggregation import rank
from panelhub.energy.queries import Grouped, merge_totals, sum_buckets
from panelhub.storage.series import Quality, Resolution, Rollup


def hour(start: int, total: float, quality: Quality = Quality.GOOD) -> Rollup:
    return Rollup(1, Resolution.HOUR, start, 12, 0.0, 0.0, 0.0, total, quality)


def test_a_group_that_dropped_to_zero_keeps_its_previous_figure():
    ranking = rank({"heating": 0.0, "lighting": 10.0, "pumps": 5.0},
                   {"heating": 20.0, "lighting": 10.0, "pumps": 1.0}, top=2)  # fmt: skip
    grouped = Grouped(ranking, {"heating": 20.0, "lighting": 10.0, "pumps": 1.0},
                      {"pumps": Quality.GAP})  # fmt: skip
    assert [(s.name, s.change_pct) for s in ranking.top] == [("lighting", 0.0), ("pumps", 400.0)]
    assert ranking.others is not None
    assert ranking.others.change_pct == -100.0
    assert grouped.previous(ranking.others) == 20.0
    assert grouped.flags(ranking.top[1]) == Quality.GAP
    assert grouped.flags(ranking.others) == Quality.GOOD


def test_pieces_without_data_make_the_whole_a_gap_unless_none_had_any():
    assert merge_totals([(5.0, Quality.GOOD), (0.0, Quality.NO_DATA | Quality.GAP)]) == (
        5.0,
        Quality.GAP,
    )
    assert merge_totals([(0.0, Quality.NO_DATA), (0.0, Quality.NO_DATA)]) == (0.0, Quality.NO_DATA)
    assert merge_totals([]) == (0.0, Quality.GOOD)


def test_buckets_sum_their_hours_and_flag_missing_ones():
    rollups = [hour(0, 1.0), hour(3_600, 2.0, Quality.RESET), hour(3 * 3_600, 4.0)]
    found = sum_buckets(rollups, [0, 7_200, 14_400, 21_600], resolution=Resolution.HOUR,
                        ready_s=18_000)  # fmt: skip
    assert found[0] == (3.0, Quality.RESET)
    assert found[1] == (4.0, Quality.GAP)  # 02:00 missing
    value, quality = found[2]  # 04:00 rolled up but missing, 05:00 not yet due
    assert math.isnan(value)
    assert quality == Quality.GAP | Quality.NO_DATA


def test_a_bucket_not_due_yet_is_empty_and_not_flagged():
    [(value, quality)] = sum_buckets([], [0, 3_600], resolution=Resolution.HOUR, ready_s=0)
    assert math.isnan(value)
    assert quality == Quality.GOOD
