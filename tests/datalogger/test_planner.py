"""The read planner: few requests, every measurement read whole, within the device's limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panelhub.datalogger.planner import (
    ItemSlice,
    ReadItem,
    ReadRequest,
    plan_reads,
    split_response,
)

# An Eastron-like map: 30 float32 input registers between 0 and 0x50, with holes of 2 to 6.
EASTRON_ADDRESSES = [*range(0, 0x24, 2), 0x2A, 0x2E, 0x30, 0x34, 0x38, 0x3C, 0x3E, 0x42, 0x46,
                     0x48, 0x4A, 0x50]  # fmt: skip


def eastron_items() -> list[ReadItem]:
    return [ReadItem(f"m{address:02x}", 4, address, 2) for address in EASTRON_ADDRESSES]


def test_eastron_like_thirty_floats_with_max_80_take_two_requests():
    assert len(eastron_items()) == 30
    plan = plan_reads(eastron_items(), max_registers_per_request=80, max_gap=6)
    assert [(r.function, r.address, r.count) for r in plan] == [(4, 0, 0x4C), (4, 0x50, 2)]
    assert plan[0].items[-1] == ItemSlice("m4a", 0x4A, 2)
    assert plan[1].items == (ItemSlice("m50", 0, 2),)


def test_eastron_like_with_a_smaller_gap_splits_at_the_hole():
    plan = plan_reads(eastron_items(), max_registers_per_request=80, max_gap=3)
    assert [(r.address, r.count) for r in plan] == [(0, 0x24), (0x2A, 0x4C - 0x2A), (0x50, 2)]


def test_eastron_like_with_no_gap_allowed_reads_each_run():
    plan = plan_reads(eastron_items(), max_registers_per_request=125, max_gap=0)
    assert len(plan) == 9
    assert sum(r.count for r in plan) == 60


def test_a_gap_longer_than_allowed_starts_a_new_request():
    items = [ReadItem("a", 3, 100, 2), ReadItem("b", 3, 102, 2), ReadItem("c", 3, 106, 2)]
    assert [(r.address, r.count) for r in plan_reads(items, max_gap=1)] == [(100, 4), (106, 2)]
    assert [(r.address, r.count) for r in plan_reads(items, max_gap=2)] == [(100, 8)]


def test_worked_example_of_the_module_docstring():
    items = [
        ReadItem("e", 4, 0, 1),
        ReadItem("d", 3, 108, 4),
        ReadItem("c", 3, 106, 2),
        ReadItem("b", 3, 102, 2),
        ReadItem("a", 3, 100, 2),
    ]
    plan = plan_reads(items, max_registers_per_request=10, max_gap=2)
    assert plan == [
        ReadRequest(3, 100, 8, (ItemSlice("a", 0, 2), ItemSlice("b", 2, 2), ItemSlice("c", 6, 2))),
        ReadRequest(3, 108, 4, (ItemSlice("d", 0, 4),)),
        ReadRequest(4, 0, 1, (ItemSlice("e", 0, 1),)),
    ]


def test_functions_are_never_merged_even_at_the_same_address():
    plan = plan_reads([ReadItem("h", 3, 0, 1), ReadItem("i", 4, 0, 1)], max_gap=10)
    assert [(r.function, r.address) for r in plan] == [(3, 0), (4, 0)]


def test_overlapping_items_share_registers_and_each_gets_its_slice():
    status = ReadItem("status", 3, 10, 1)
    block = ReadItem("block", 3, 8, 4)
    plan = plan_reads([status, block])
    assert plan == [ReadRequest(3, 8, 4, (ItemSlice("block", 0, 4), ItemSlice("status", 2, 1)))]
    assert split_response(plan[0], [1, 2, 3, 4]) == {"block": (1, 2, 3, 4), "status": (3,)}


def test_bits_use_the_bit_limit():
    items = [ReadItem("alarm_a", 1, 0, 1), ReadItem("alarm_b", 1, 1500, 1)]
    plan = plan_reads(items, max_registers_per_request=10, max_gap=1500)
    assert [(r.function, r.address, r.count) for r in plan] == [(1, 0, 1501)]
    assert split_response(plan[0], [1] + [0] * 1499 + [1]) == {"alarm_a": (1,), "alarm_b": (1,)}
    two = plan_reads(items, max_bits_per_request=1000, max_gap=1500)
    assert [(r.address, r.count) for r in two] == [(0, 1), (1500, 1)]


def test_no_items_no_requests():
    assert plan_reads([]) == []


def test_split_response_refuses_an_answer_of_the_wrong_length():
    request = plan_reads([ReadItem("a", 3, 0, 2)])[0]
    with pytest.raises(ValueError, match="holds 1 values, the request asked for 2"):
        split_response(request, [7])


@pytest.mark.parametrize(
    ("items", "limits", "message"),
    [
        ([ReadItem("a", 3, 0, 1), ReadItem("a", 4, 0, 1)], {}, "a: named twice"),
        ([ReadItem("big", 3, 0, 20)], {"max_registers_per_request": 10}, "big: 20 addresses"),
        ([ReadItem("bits", 2, 0, 20)], {"max_bits_per_request": 10}, "never split"),
        ([], {"max_registers_per_request": 126}, "outside 1..125"),
        ([], {"max_registers_per_request": 0}, "outside 1..125"),
        ([], {"max_bits_per_request": 2001}, "outside 1..2000"),
        ([], {"max_gap": -1}, "negative"),
    ],
)
def test_bad_inputs_are_refused(items, limits, message):
    with pytest.raises(ValueError, match=message):
        plan_reads(items, **limits)


@pytest.mark.parametrize(
    ("function", "address", "count", "message"),
    [
        (6, 0, 1, "function 6 is not a read"),
        (3, 0, 0, "outside 0..65535"),
        (3, -1, 2, "outside 0..65535"),
        (3, 65535, 2, "outside 0..65535"),
    ],
)
def test_bad_items_are_refused(function, address, count, message):
    with pytest.raises(ValueError, match=message):
        ReadItem("x", function, address, count)


def test_last_register_of_the_address_space_is_readable():
    assert plan_reads([ReadItem("top", 3, 65535, 1)]) == [
        ReadRequest(3, 65535, 1, (ItemSlice("top", 0, 1),))
    ]


# --- properties -------------------------------------------------------------------------------

item_lists = st.lists(
    st.tuples(st.sampled_from([1, 3, 4]), st.integers(0, 60), st.integers(1, 8)),
    max_size=12,
).map(lambda raw: [ReadItem(f"k{i}", f, a, c) for i, (f, a, c) in enumerate(raw)])
limits = st.fixed_dictionaries(
    {"max_registers_per_request": st.integers(8, 20), "max_gap": st.integers(0, 6)}
)


def _valid(group: list[ReadItem], *, limit: int, max_gap: int) -> bool:
    if len({item.function for item in group}) != 1:
        return False
    ordered = sorted(group, key=lambda item: item.address)
    reached = ordered[0].address
    for item in ordered:
        if item.address - reached > max_gap:
            return False
        reached = max(reached, item.end)
    return reached - ordered[0].address <= limit


def _fewest_requests(items: list[ReadItem], *, limit: int, max_gap: int) -> int:
    """Brute force: every partition of the items, the smallest whose groups are all valid."""
    best = len(items) + 1

    def place(index: int, groups: list[list[ReadItem]]) -> None:
        nonlocal best
        if len(groups) >= best:
            return
        if index == len(items):
            if all(_valid(group, limit=limit, max_gap=max_gap) for group in groups):
                best = len(groups)
            return
        item = items[index]
        for group in groups:
            group.append(item)
            place(index + 1, groups)
            group.pop()
        groups.append([item])
        place(index + 1, groups)
        groups.pop()

    place(0, [])
    return best


@settings(max_examples=300, deadline=None)
@given(items=item_lists, limits=limits)
def test_plan_reads_every_item_once_within_the_limits(items, limits):
    plan = plan_reads(items, max_registers_per_request=limits["max_registers_per_request"],
                      max_bits_per_request=limits["max_registers_per_request"],
                      max_gap=limits["max_gap"])  # fmt: skip
    by_key = {item.key: item for item in items}
    covered = [piece.key for request in plan for piece in request.items]
    assert sorted(covered) == sorted(by_key)
    for request in plan:
        assert 1 <= request.count <= limits["max_registers_per_request"]
        named: set[int] = set()
        for piece in request.items:
            item = by_key[piece.key]
            assert item.function == request.function
            assert request.address + piece.offset == item.address
            assert piece.count == item.count
            assert piece.offset >= 0
            assert piece.offset + piece.count <= request.count
            named.update(range(item.address, item.end))
        assert min(named) == request.address
        assert max(named) == request.address + request.count - 1
        unnamed_run = 0
        for address in range(request.address, request.address + request.count):
            unnamed_run = 0 if address in named else unnamed_run + 1
            assert unnamed_run <= limits["max_gap"]
    assert plan == sorted(plan, key=lambda r: (r.function, r.address))
    values = list(range(1000, 1000 + max((r.count for r in plan), default=0)))
    for request in plan:
        answer = split_response(request, values[: request.count])
        for key, words in answer.items():
            assert len(words) == by_key[key].count
            assert words[0] == 1000 + by_key[key].address - request.address


@settings(max_examples=200, deadline=None)
@given(items=item_lists.map(lambda items: items[:7]), limits=limits)
def test_plan_is_as_short_as_the_best_partition(items, limits):
    limit, max_gap = limits["max_registers_per_request"], limits["max_gap"]
    plan = plan_reads(items, max_registers_per_request=limit, max_bits_per_request=limit,
                      max_gap=max_gap)  # fmt: skip
    assert len(plan) == _fewest_requests(items, limit=limit, max_gap=max_gap)


@given(items=item_lists, limits=limits)
def test_plan_does_not_depend_on_the_order_items_come_in(items, limits):
    assert plan_reads(items, **limits) == plan_reads(list(reversed(items)), **limits)
