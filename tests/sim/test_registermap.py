"""Register maps and word encodings."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from panelhub.sim.kinds import PROFILES, MeterKind
from panelhub.sim.model import BreakerSwitch
from panelhub.sim.registermap import Encoding, Point, decode_ascii, encode_ascii
from tests.sim.test_model import make_model


@pytest.mark.parametrize(
    ("encoding", "value", "words"),
    [
        (Encoding.FLOAT32, 230.0, [0x4366, 0x0000]),
        (Encoding.UINT16, 65535, [0xFFFF]),
        (Encoding.UINT16, 70000, [0xFFFF]),  # saturates
        (Encoding.INT16, -1, [0xFFFF]),
        (Encoding.INT32, -2, [0xFFFF, 0xFFFE]),
        (Encoding.UINT32, 0x12345678, [0x1234, 0x5678]),
        (Encoding.INT64, 12_000_000, [0, 0, 0x00B7, 0x1B00]),
        (Encoding.UINT64, -5, [0, 0, 0, 0]),  # saturates at zero
    ],
)
def test_encoding_golden_words(encoding, value, words):
    assert encoding.encode(value) == words


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_int64_round_trips(value):
    assert Encoding.INT64.decode(Encoding.INT64.encode(value)) == value


def test_scaled_point_round_trips_to_resolution():
    point = Point("current", 0, Encoding.UINT16, "A", 0.1)
    assert point.encode(12.34) == [123]
    assert math.isclose(point.decode([123]), 12.3)
    assert point.register_number == 1


def test_ascii_labels_are_space_padded_and_truncated():
    assert encode_ascii("AB", 2) == [0x4142, 0x2020]
    assert decode_ascii(encode_ascii("Main incomer", 8)) == "Main incomer"
    assert decode_ascii(encode_ascii("x" * 40, 8)) == "x" * 16


@pytest.mark.parametrize("kind", list(MeterKind))
def test_points_lie_in_ranges_and_never_overlap(kind):
    regmap = PROFILES[kind].register_map
    used: set[int] = set()
    for point in regmap.points:
        span = set(range(point.address, point.address + point.word_count))
        assert not span & used, point
        used |= span
        assert any(
            start <= point.address and point.address + point.word_count <= start + count
            for start, count in regmap.ranges
        )
    for _start, count in regmap.ranges:
        assert count <= 125  # one FC3/FC4 read can fetch a whole range
    if regmap.table.value == "holding registers":
        config = set(range(regmap.config.address, regmap.config.address + regmap.config.word_count))
        assert not config & set().union(*(range(s, s + c) for s, c in regmap.ranges))


@pytest.mark.parametrize("kind", list(MeterKind))
def test_every_point_and_bit_has_a_value(kind):
    profile = PROFILES[kind]
    values = profile.quantities(make_model(kind).advance(1.0), BreakerSwitch())
    for point in profile.register_map.points:
        assert point.quantity in values
    for bit in profile.register_map.coils + profile.register_map.discrete_inputs:
        assert bit.quantity in values
