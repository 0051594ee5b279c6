"""Register encodings: ASCII strings and the IEC 60870-5 four-word date and time."""

from __future__ import annotations

import calendar
import dataclasses
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.client.mixin import ModbusClientMixin

from panelhub.errors import LocalProtocolError, RemoteProtocolError
from panelhub.modbus.datatypes import (
    DataType,
    IECDateTime,
    WordOrder,
    decode_number,
    decode_string,
    encode_number,
    encode_string,
)

# (text, register count, registers), worked out by hand from the ASCII table.
STRINGS = [
    ("PH", 1, (0x5048,)),
    ("P", 1, (0x5000,)),
    ("", 2, (0x0000, 0x0000)),
    ("PanelHub", 4, (0x5061, 0x6E65, 0x6C48, 0x7562)),
    ("PanelHub", 5, (0x5061, 0x6E65, 0x6C48, 0x7562, 0x0000)),
    ("iEM3155", 4, (0x6945, 0x4D33, 0x3135, 0x3500)),
]


@pytest.mark.parametrize(("text", "count", "registers"), STRINGS)
def test_encode_string(text, count, registers):
    assert encode_string(text, count) == registers


@pytest.mark.parametrize(("text", "count", "registers"), STRINGS)
def test_decode_string(text, count, registers):
    assert decode_string(registers) == text
    assert decode_string(list(registers)) == text


def test_encode_string_too_long():
    with pytest.raises(LocalProtocolError, match="does not fit 1 registers"):
        encode_string("abc", 1)


def test_encode_string_replaces_non_ascii():
    assert encode_string("é1", 1) == (0x3F31,)  # '?' '1'


@pytest.mark.parametrize(
    ("registers", "text"),
    [
        ((0x4142, 0x0043), "AB"),  # the first NUL ends the string
        ((0x2041, 0x4220, 0x2000), "AB"),  # padding spaces are trimmed
        ((0x41C3, 0xA900), "A\ufffd\ufffd"),  # non-ASCII bytes decode leniently
        ((), ""),
    ],
)
def test_decode_string_lenient(registers, text):
    assert decode_string(registers) == text


printable = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)


@settings(max_examples=150, deadline=None)
@given(printable, st.integers(0, 10))
def test_string_round_trip(text, extra):
    count = (len(text) + 1) // 2 + extra
    registers = encode_string(text, count)
    assert len(registers) == count
    assert all(0 <= value <= 0xFFFF for value in registers)
    assert decode_string(registers) == text


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 0xFFFF), max_size=20))
def test_decode_string_any_registers(registers):
    text = decode_string(registers)
    assert "\0" not in text
    assert len(text) <= 2 * len(registers)


# --- IECDateTime ---------------------------------------------------------------------------------

# 2024-02-29 13:45:30.250, laid out as the module docstring says.
LEAP_DAY = IECDateTime(year=2024, month=2, day=29, hour=13, minute=45, millisecond=30_250)
LEAP_DAY_WORDS = (24, 0x021D, 0x0D2D, 30_250)


def test_datetime_encode_golden():
    assert LEAP_DAY.encode() == LEAP_DAY_WORDS


def test_datetime_decode_golden():
    assert IECDateTime.decode(LEAP_DAY_WORDS) == LEAP_DAY
    assert IECDateTime.decode(list(LEAP_DAY_WORDS)) == LEAP_DAY


def test_datetime_decode_ignores_flag_bits():
    # Reserved year bits, day-of-week (bits 5-7), summer time (bit 15), invalid (bit 7).
    words = (0xFF00 | 24, 0xF000 | 0x0200 | (4 << 5) | 29, 0x8000 | 0x0D00 | 0x80 | 45, 30_250)
    assert IECDateTime.decode(words) == LEAP_DAY


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"year": 1999}, "year"),
        ({"year": 2128}, "year"),
        ({"month": 0}, "month"),
        ({"month": 13}, "month"),
        ({"day": 0}, "day"),
        ({"day": 32}, "day"),
        ({"day": 30}, "day"),  # 30 February
        ({"year": 2023, "day": 29}, "day"),  # not a leap year
        ({"month": 4, "day": 31}, "day"),
        ({"hour": -1}, "hour"),
        ({"hour": 24}, "hour"),
        ({"minute": 60}, "minute"),
        ({"millisecond": 60_000}, "millisecond"),
        ({"millisecond": -1}, "millisecond"),
        ({"year": 0, "month": 0, "day": 40}, "year, month, day"),
        ({"year": 0, "day": 29}, "year"),  # no calendar lookup for an impossible year
    ],
)
def test_datetime_field_ranges(fields, bad):
    values = dataclasses.asdict(LEAP_DAY) | fields
    with pytest.raises(LocalProtocolError, match=f"out of range: {bad}$"):
        IECDateTime(**values)


def test_datetime_extremes_accepted():
    assert IECDateTime(2000, 1, 1, 0, 0, 0).encode() == (0, 0x0101, 0, 0)
    assert IECDateTime(2127, 12, 31, 23, 59, 59_999).encode() == (127, 0x0C1F, 0x173B, 59_999)


@pytest.mark.parametrize("words", [(), (1, 2, 3), (1, 2, 3, 4, 5)])
def test_datetime_decode_needs_four_words(words):
    with pytest.raises(RemoteProtocolError, match="4 registers"):
        IECDateTime.decode(words)


@pytest.mark.parametrize(
    "words",
    [(24, 0x0000, 0, 0), (24, 0x021E, 0, 0), (24, 0x0101, 0x1800, 0), (24, 0x0101, 0, 60_000)],
)
def test_datetime_decode_impossible_fields(words):
    with pytest.raises(RemoteProtocolError, match="out of range"):
        IECDateTime.decode(words)


datetimes = st.builds(
    lambda year, month, day, hour, minute, ms: IECDateTime(
        year, month, min(day, calendar.monthrange(year, month)[1]), hour, minute, ms
    ),
    st.integers(2000, 2127),
    st.integers(1, 12),
    st.integers(1, 31),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59_999),
)


@settings(max_examples=200, deadline=None)
@given(datetimes)
def test_datetime_round_trip(stamp):
    words = stamp.encode()
    assert all(0 <= word <= 0xFFFF for word in words)
    assert IECDateTime.decode(words) == stamp


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4))
def test_datetime_decode_any_words(words):
    try:
        stamp = IECDateTime.decode(words)
    except RemoteProtocolError:
        return
    assert IECDateTime.decode(stamp.encode()) == stamp


def test_datetime_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LEAP_DAY.year = 2025  # type: ignore[misc]  # the point: assignment is refused


# --- numbers ---------------------------------------------------------------------------------

NUMBERS = [
    # (value, type, big word order registers), worked out by hand.
    (-2, DataType.INT16, (0xFFFE,)),
    (65535, DataType.UINT16, (0xFFFF,)),
    (70000, DataType.UINT32, (0x0001, 0x1170)),
    (-1, DataType.INT32, (0xFFFF, 0xFFFF)),
    (0x0102030405060708, DataType.UINT64, (0x0102, 0x0304, 0x0506, 0x0708)),
    (-(1 << 63), DataType.INT64, (0x8000, 0, 0, 0)),
    (230.5, DataType.FLOAT32, (0x4366, 0x8000)),
    (1.0, DataType.FLOAT64, (0x3FF0, 0, 0, 0)),
]


@pytest.mark.parametrize(("value", "data_type", "registers"), NUMBERS)
def test_number_golden(value, data_type, registers):
    assert encode_number(value, data_type, WordOrder.BIG) == registers
    assert encode_number(value, data_type, WordOrder.LITTLE) == registers[::-1]
    assert decode_number(registers, data_type, WordOrder.BIG) == value
    assert decode_number(list(registers[::-1]), data_type, WordOrder.LITTLE) == value


def test_register_counts():
    assert {t: t.register_count for t in DataType} == {
        DataType.INT16: 1,
        DataType.UINT16: 1,
        DataType.INT32: 2,
        DataType.UINT32: 2,
        DataType.INT64: 4,
        DataType.UINT64: 4,
        DataType.FLOAT32: 2,
        DataType.FLOAT64: 4,
    }


def test_int_range_of_float_type_refused():
    with pytest.raises(ValueError, match="not an integer type"):
        _ = DataType.FLOAT32.int_range


def test_int64_counter_stays_exact():
    big = (1 << 62) + 1  # not representable in a float64
    words = encode_number(big, DataType.UINT64, WordOrder.BIG)
    decoded = decode_number(words, DataType.UINT64, WordOrder.BIG)
    assert decoded == big
    assert isinstance(decoded, int)


@pytest.mark.parametrize(
    ("value", "expected"), [(2.5, 3), (-2.5, -3), (2.4999, 2), (-0.4, 0), (7.0, 7)]
)
def test_floats_to_ints_round_half_away_from_zero(value, expected):
    words = encode_number(value, DataType.INT32, WordOrder.BIG)
    assert decode_number(words, DataType.INT32, WordOrder.BIG) == expected


@pytest.mark.parametrize(
    ("value", "data_type"),
    [
        (65536, DataType.UINT16),
        (-1, DataType.UINT16),
        (-0.6, DataType.UINT32),
        (32767.5, DataType.INT16),
        (1 << 64, DataType.UINT64),
        (math.nan, DataType.INT32),
        (math.inf, DataType.UINT64),
        (1e39, DataType.FLOAT32),
    ],
)
def test_encode_out_of_range(value, data_type):
    with pytest.raises(LocalProtocolError, match=re.escape(str(data_type))):
        encode_number(value, data_type, WordOrder.BIG)


def test_nan_and_infinity_encode_as_floats():
    words = encode_number(math.nan, DataType.FLOAT32, WordOrder.BIG)
    assert math.isnan(decode_number(words, DataType.FLOAT32, WordOrder.BIG))
    words = encode_number(-math.inf, DataType.FLOAT64, WordOrder.LITTLE)
    assert decode_number(words, DataType.FLOAT64, WordOrder.LITTLE) == -math.inf


@pytest.mark.parametrize(
    ("registers", "data_type"),
    [((1,), DataType.INT32), ((1, 2, 3), DataType.FLOAT64), ((), DataType.UINT16)],
)
def test_decode_wrong_register_count(registers, data_type):
    with pytest.raises(RemoteProtocolError, match=f"{data_type} needs"):
        decode_number(registers, data_type, WordOrder.BIG)


def test_decode_refuses_wide_registers():
    with pytest.raises(RemoteProtocolError, match=r"0\.\.65535"):
        decode_number((0x10000,), DataType.UINT16, WordOrder.BIG)


def _int_values(data_type: DataType) -> st.SearchStrategy[int]:
    low, high = data_type.int_range
    return st.integers(low, high)


numbers = st.one_of(
    *(st.tuples(st.just(t), _int_values(t)) for t in DataType if not t.is_float),
    st.tuples(st.just(DataType.FLOAT32), st.floats(width=32, allow_nan=False)),
    st.tuples(st.just(DataType.FLOAT64), st.floats(allow_nan=False)),
)


@settings(max_examples=300, deadline=None)
@given(numbers, st.sampled_from(WordOrder))
def test_number_round_trip(typed_value, word_order):
    data_type, value = typed_value
    words = encode_number(value, data_type, word_order)
    assert len(words) == data_type.register_count
    assert all(0 <= word <= 0xFFFF for word in words)
    decoded = decode_number(words, data_type, word_order)
    assert decoded == value
    assert type(decoded) is type(value)


@settings(max_examples=200, deadline=None)
@given(st.data(), st.sampled_from(DataType), st.sampled_from(WordOrder))
def test_decode_any_registers_then_encode_back(data, data_type, word_order):
    words = tuple(
        data.draw(
            st.lists(
                st.integers(0, 0xFFFF),
                min_size=data_type.register_count,
                max_size=data_type.register_count,
            )
        )
    )
    value = decode_number(words, data_type, word_order)
    if data_type.is_float and math.isnan(value):
        return  # NaN payloads are not preserved bit for bit
    assert encode_number(value, data_type, word_order) == words


# pymodbus, an independent implementation, must agree with us on both word orders.
PYMODBUS_TYPES = {
    DataType.INT16: ModbusClientMixin.DATATYPE.INT16,
    DataType.UINT16: ModbusClientMixin.DATATYPE.UINT16,
    DataType.INT32: ModbusClientMixin.DATATYPE.INT32,
    DataType.UINT32: ModbusClientMixin.DATATYPE.UINT32,
    DataType.INT64: ModbusClientMixin.DATATYPE.INT64,
    DataType.UINT64: ModbusClientMixin.DATATYPE.UINT64,
    DataType.FLOAT32: ModbusClientMixin.DATATYPE.FLOAT32,
    DataType.FLOAT64: ModbusClientMixin.DATATYPE.FLOAT64,
}


@pytest.mark.interop
@pytest.mark.parametrize("word_order", list(WordOrder))
@pytest.mark.parametrize(
    ("value", "data_type"),
    [
        (-12345, DataType.INT16),
        (54321, DataType.UINT16),
        (-123456789, DataType.INT32),
        (3_000_000_000, DataType.UINT32),
        (-(1 << 40) - 7, DataType.INT64),
        (12_345_678_901_234, DataType.UINT64),
        (-49.75, DataType.FLOAT32),
        (12_345_678.901, DataType.FLOAT64),
    ],
)
def test_agrees_with_pymodbus(value, data_type, word_order):
    theirs = PYMODBUS_TYPES[data_type]
    ours = encode_number(value, data_type, word_order)
    assert tuple(ModbusClientMixin.convert_to_registers(value, theirs, word_order.value)) == ours
    assert ModbusClientMixin.convert_from_registers(list(ours), theirs, word_order.value) == (
        decode_number(ours, data_type, word_order)
    )
