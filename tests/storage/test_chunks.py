"""The chunk codec: every sample comes back bit-exact, and a damaged blob is refused."""

from __future__ import annotations

import math
import random
import struct
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panelhub.errors import DatalogStoreError
from panelhub.storage.chunks import (
    CHUNK_SPAN_S,
    decode_rollups,
    decode_samples,
    encode_rollups,
    encode_samples,
)
from panelhub.storage.series import Quality, Resolution, Rollup, Sample

DAY = 20_000 * CHUNK_SPAN_S


def bits(value: float) -> int:
    return int.from_bytes(struct.pack("<d", value), "little")


def same(a: list[Sample], b: list[Sample]) -> bool:
    return [(s.ts, s.is_valid, bits(s.value) if s.is_valid else 0) for s in a] == [
        (s.ts, s.is_valid, bits(s.value) if s.is_valid else 0) for s in b
    ]


def f32(value: float) -> float:
    return array("f", [value])[0]


any_float = st.floats(allow_nan=True, allow_infinity=True)
values = st.one_of(
    any_float,
    st.integers(-(10**9), 10**9).map(lambda k: k / 10),  # scaled-integer registers
    st.floats(width=32, allow_nan=False),  # float32 registers
    st.integers(0, 2**52).map(float),  # Wh counters
)


@st.composite
def day_samples(draw: st.DrawFn) -> tuple[int, list[Sample]]:
    period_s = draw(st.sampled_from([1, 60, 300, 900, 3600, 7]))  # 7 s: not a divisor
    grid = st.integers(0, CHUNK_SPAN_S // period_s - 1).map(lambda slot: slot * period_s)
    anywhere = st.integers(0, CHUNK_SPAN_S - 1)
    offsets = draw(
        st.sets(st.one_of(grid, anywhere) if draw(st.booleans()) else grid, max_size=300)
    )
    samples = [
        Sample(DAY + offset, draw(values))
        if draw(st.integers(0, 9))
        else Sample.invalid(DAY + offset)
        for offset in sorted(offsets)
    ]
    return period_s, samples


@settings(max_examples=300, deadline=None)
@given(day_samples())
def test_samples_round_trip_bit_exact(case):
    period_s, samples = case
    assert same(decode_samples(encode_samples(DAY, period_s, samples)), samples)


@settings(max_examples=100, deadline=None)
@given(st.lists(values, min_size=1, max_size=50))
def test_one_kind_of_value_per_chunk_round_trips(column):
    samples = [Sample(DAY + 60 * i, value) for i, value in enumerate(column)]
    assert same(decode_samples(encode_samples(DAY, 60, samples)), samples)


def test_nan_payload_negative_zero_and_infinities_are_kept():
    payload_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF0_0000_0000_0ABC))[0]
    samples = [
        Sample(DAY, payload_nan),
        Sample(DAY + 60, -0.0),
        Sample(DAY + 120, math.inf),
        Sample(DAY + 180, -math.inf),
        Sample.invalid(DAY + 240),
    ]
    assert same(decode_samples(encode_samples(DAY, 60, samples)), samples)


def test_a_day_of_meter_values_is_small():
    rng = random.Random(1)
    volts_f32 = [Sample(DAY + 60 * i, f32(230 + rng.gauss(0, 0.3))) for i in range(1440)]
    volts_scaled = [Sample(DAY + 60 * i, round(230 + rng.gauss(0, 0.3), 1)) for i in range(1440)]
    counter_wh = [Sample(DAY + 60 * i, float(10**7 + 40 * i)) for i in range(1440)]
    # A double is 8 bytes; float32 noise has ~17 random bits, a 0.1 V value ~4.
    assert len(encode_samples(DAY, 60, volts_f32)) < 2.6 * 1440
    assert len(encode_samples(DAY, 60, volts_scaled)) < 1.0 * 1440
    assert len(encode_samples(DAY, 60, counter_wh)) < 0.1 * 1440


def test_samples_off_the_grid_are_stored_exactly():
    samples = [Sample(DAY + 60, 1.0), Sample(DAY + 61, 2.0), Sample(DAY + 86_399, 3.0)]
    assert same(decode_samples(encode_samples(DAY, 60, samples)), samples)


@pytest.mark.parametrize(
    ("start", "timestamps"),
    [
        pytest.param(DAY + 1, [DAY + 60], id="start-not-a-day"),
        pytest.param(DAY, [DAY + CHUNK_SPAN_S], id="after-the-day"),
        pytest.param(DAY, [DAY - 60], id="before-the-day"),
        pytest.param(DAY, [DAY + 120, DAY + 60], id="out-of-order"),
        pytest.param(DAY, [DAY + 60, DAY + 60], id="repeated"),
    ],
)
def test_samples_that_do_not_belong_are_refused(start, timestamps):
    with pytest.raises(ValueError, match=r"day|increasing"):
        encode_samples(start, 60, [Sample(ts, 1.0) for ts in timestamps])


def chunk() -> bytes:
    return encode_samples(DAY, 60, [Sample(DAY + 60 * i, 230.0 + i / 10) for i in range(100)])


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_damaged_byte_is_refused(data):
    blob = bytearray(chunk())
    index = data.draw(st.integers(0, len(blob) - 1))
    blob[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(DatalogStoreError, match="damaged chunk"):
        decode_samples(bytes(blob))


@pytest.mark.parametrize("size", [0, 5, 20, -1])
def test_truncated_blob_is_refused(size):
    with pytest.raises(DatalogStoreError):
        decode_samples(chunk()[:size])


rollups_column = st.floats(allow_nan=True, allow_infinity=False, width=32)


@settings(max_examples=100, deadline=None)
@given(
    resolution=st.sampled_from([Resolution.FIVE_MINUTES, Resolution.HOUR]),
    slots=st.sets(st.integers(0, 287), max_size=40),
    data=st.data(),
)
def test_rollups_round_trip(resolution, slots, data):
    slots = {slot for slot in slots if slot * 300 < CHUNK_SPAN_S and slot < 86_400 // resolution}
    rollups = [
        Rollup(
            7,
            resolution,
            DAY + slot * int(resolution),
            data.draw(st.integers(0, 60)),
            data.draw(rollups_column),
            data.draw(rollups_column),
            data.draw(rollups_column),
            data.draw(any_float),
            Quality(data.draw(st.integers(0, 127))),
        )
        for slot in sorted(slots)
    ]
    decoded = decode_rollups(encode_rollups(DAY, rollups, as_float32=True), 7)

    def key(r: Rollup) -> tuple[int, ...]:
        return (
            r.start,
            r.count,
            r.quality,
            *(bits(v) for v in (r.minimum, r.maximum, r.mean, r.total)),
        )

    assert [key(r) for r in decoded] == [key(r) for r in rollups]


def test_rollup_float32_keeps_seven_digits_and_exact_totals():
    rollup = Rollup(
        1, Resolution.FIVE_MINUTES, DAY, 5, 229.123456789, 231.0, 230.0512345, 1234.56789012345
    )
    (back,) = decode_rollups(encode_rollups(DAY, [rollup], as_float32=True), 1)
    assert back.minimum == pytest.approx(229.123456789, rel=1e-7)
    assert back.total == 1234.56789012345


def test_rollups_of_scaled_registers_stay_exact():
    rollup = Rollup(1, Resolution.HOUR, DAY, 60, 229.9, 231.3, 230.45, 12.5)
    (back,) = decode_rollups(encode_rollups(DAY, [rollup], as_float32=True), 1)
    assert back == rollup
