"""Register encodings: ASCII strings and the IEC 60870-5 four-word date and time."""

from __future__ import annotations

import calendar
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panelhub.errors import LocalProtocolError, RemoteProtocolError
from panelhub.modbus.datatypes import IECDateTime, decode_string, encode_string

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
