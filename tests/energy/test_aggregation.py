"""Aggregates by usage and zone, and the home page's top consumers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from panelhub.config import models
from panelhub.energy.aggregation import (
    NOT_AGGREGATED,
    Commodity,
    Consumer,
    Grouping,
    Ranking,
    Share,
    Usage,
    aggregate,
    counts_in_aggregates,
    rank,
)

ELEC = Commodity.ELECTRICITY
DEVICES = [
    Consumer("incomer", Usage.MAIN, "", ELEC),
    Consumer("floor1", Usage.SUB_MAIN, "floor 1", ELEC),
    Consumer("heat1", Usage.HEATING, "floor 1", ELEC),
    Consumer("heat2", Usage.HEATING, "floor 2", ELEC),
    Consumer("light1", Usage.LIGHTING, "floor 1", ELEC),
    Consumer("boiler", Usage.HEATING, "floor 1", Commodity.GAS),
    Consumer("pump", Usage.PUMPS, "", ELEC),
]
CONSUMPTION = {
    "incomer": (100.0, 100.0),
    "floor1": (60.0, 60.0),
    "heat1": (30.0, 20.0),
    "heat2": (10.0, math.nan),
    "light1": (20.0, 5.0),
    "boiler": (7.0, 7.0),
    "pump": (1.0, 2.0),
}


def test_the_enumerations_are_the_configurations():
    assert Usage is models.Usage
    assert Commodity is models.Commodity
    assert [u.value for u in Usage][:3] == ["main", "sub-main", "heating"]
    assert len(Usage) == 20


def test_by_usage_leaves_out_mains_sub_mains_and_other_commodities():
    assert aggregate(DEVICES, CONSUMPTION, by=Grouping.USAGE, commodity=ELEC) == {
        "heating": (40.0, 20.0),
        "lighting": (20.0, 5.0),
        "pumps": (1.0, 2.0),
    }


def test_by_zone_groups_devices_without_a_zone_together():
    assert aggregate(DEVICES, CONSUMPTION, by=Grouping.ZONE, commodity=ELEC) == {
        "": (1.0, 2.0),
        "floor 1": (50.0, 25.0),
        "floor 2": (10.0, 0.0),
    }


def test_gas_devices_aggregate_on_their_own():
    assert aggregate(DEVICES, CONSUMPTION, by=Grouping.USAGE, commodity=Commodity.GAS) == {
        "heating": (7.0, 7.0)
    }


def test_devices_without_consumption_add_nothing():
    assert aggregate(DEVICES, {}, by=Grouping.USAGE, commodity=ELEC) == {}
    assert aggregate(DEVICES, {"pump": ()}, by=Grouping.USAGE, commodity=ELEC) == {"pumps": ()}


def test_series_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match=r"different lengths \[1, 2\]"):
        aggregate(DEVICES, {"heat1": (1.0,), "pump": (1.0, 2.0)}, by=Grouping.USAGE,
                  commodity=ELEC)  # fmt: skip


def test_only_mains_and_sub_mains_are_left_out():
    assert {u for u in Usage if not counts_in_aggregates(Consumer("x", u, "", ELEC))} == {
        Usage.MAIN,
        Usage.SUB_MAIN,
    }
    assert frozenset({Usage.MAIN, Usage.SUB_MAIN}) == NOT_AGGREGATED


def test_worked_example_of_the_module_docstring():
    current = {"heating": 60.0, "lighting": 30.0, "cooking": 10.0, "pumps": 0.0}
    previous = {"heating": 40.0, "lighting": 30.0, "pumps": 0.0}
    ranking = rank(current, previous, top=2)
    assert ranking.top == (Share("heating", 60.0, 60.0, 50.0), Share("lighting", 30.0, 30.0, 0.0))
    assert ranking.others == Share("others", 10.0, 10.0, None)
    assert (ranking.total, ranking.previous_total) == (100.0, 70.0)
    assert ranking.change_pct == pytest.approx(300 / 7)


def test_a_group_gone_since_the_previous_period_shows_a_fall_to_zero():
    ranking = rank({"heating": 5.0}, {"heating": 5.0, "cooling": 5.0})
    assert ranking.top == (Share("heating", 5.0, 100.0, 0.0), Share("cooling", 0.0, 0.0, -100.0))
    assert ranking.others is None
    assert ranking.change_pct == -50.0


def test_ties_are_ranked_by_name_and_nan_counts_as_zero():
    ranking = rank({"b": 1.0, "a": 1.0, "c": math.nan}, {}, top=1)
    assert ranking.top == (Share("a", 1.0, 50.0, None),)
    assert ranking.others == Share("others", 1.0, 50.0, None)
    assert ranking.change_pct is None


def test_nothing_consumed_gives_an_empty_ranking():
    assert rank({"a": 0.0}, {}) == Ranking((), None, 0.0, 0.0, None)


def test_top_must_be_positive():
    with pytest.raises(ValueError, match="top 0"):
        rank({}, {}, top=0)


amounts = st.dictionaries(st.sampled_from("abcdefghij"), st.floats(0, 1e6), max_size=10)


@given(current=amounts, previous=amounts, top=st.integers(1, 12))
def test_shares_add_up_to_the_total(current, previous, top):
    ranking = rank(current, previous, top=top)
    slices = [*ranking.top, *([ranking.others] if ranking.others else [])]
    assert len(ranking.top) <= top
    assert math.isclose(sum(s.consumption for s in slices), ranking.total, abs_tol=1e-6)
    assert math.isclose(ranking.total, sum(current.values()), abs_tol=1e-6)
    if ranking.total:
        assert math.isclose(sum(s.share_pct for s in slices), 100.0, abs_tol=1e-6)
    assert [s.consumption for s in ranking.top] == sorted(
        (s.consumption for s in ranking.top), reverse=True
    )
    ranked = {s.name for s in ranking.top}
    beyond = [value for name, value in current.items() if name not in ranked]
    assert all(s.consumption >= value for s in ranking.top for value in beyond)
