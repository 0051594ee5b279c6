"""Values <-> 16-bit registers: numbers, strings and the IEC 60870-5 four-word date and time.

A number of 32 or 64 bits spans 2 or 4 registers; bytes within a register are always big-endian
(Modbus Application Protocol v1.1b3 §4.2), and ``WordOrder`` says which register comes first.
uint32 70000 = 0x00011170 is ``(0x0001, 0x1170)`` in "big" word order (ABCD) and
``(0x1170, 0x0001)`` in "little" (CDAB), the two orders meters use.

A string is two ASCII characters per register, first character in the high byte, padded with
NUL: "PH" -> 0x5048. Date and time, IEC 60870-5-4 "DATETIME" as the reference device lays it::

    word 1  bits 0-6   year - 2000
    word 2  bits 8-11  month, bits 0-4 day
    word 3  bits 8-12  hour, bits 0-5 minute
    word 4             milliseconds 0-59999 (seconds x 1000 + ms)
"""

from __future__ import annotations

import calendar
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from panelhub.errors import LocalProtocolError, RemoteProtocolError

REGISTER_BITS: Final = 16  # Modbus Application Protocol v1.1b3 §4.2: registers are 16 bits


class DataType(StrEnum):
    """The numeric types device templates name; each maps to one ``struct`` format."""

    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"

    @property
    def register_count(self) -> int:
        return _FORMATS[self][1]

    @property
    def is_float(self) -> bool:
        return self in (DataType.FLOAT32, DataType.FLOAT64)

    @property
    def int_range(self) -> tuple[int, int]:
        """Smallest and largest integer the type holds (floats: ValueError)."""
        if self.is_float:
            raise ValueError(f"{self} is not an integer type")
        bits = REGISTER_BITS * self.register_count
        if self.value.startswith("u"):
            return 0, (1 << bits) - 1
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


# struct format (big-endian) and register count of each type.
_FORMATS: Final[dict[DataType, tuple[str, int]]] = {
    DataType.INT16: (">h", 1),
    DataType.UINT16: (">H", 1),
    DataType.INT32: (">i", 2),
    DataType.UINT32: (">I", 2),
    DataType.INT64: (">q", 4),
    DataType.UINT64: (">Q", 4),
    DataType.FLOAT32: (">f", 2),
    DataType.FLOAT64: (">d", 4),
}


class WordOrder(StrEnum):
    """Which register of a multi-register value comes first."""

    BIG = "big"  # most significant register first (ABCD)
    LITTLE = "little"  # least significant register first (CDAB)


def _ordered(words: tuple[int, ...], word_order: WordOrder) -> tuple[int, ...]:
    return words if word_order is WordOrder.BIG else words[::-1]


def decode_number(
    registers: Sequence[int], data_type: DataType, word_order: WordOrder
) -> int | float:
    """Integers come back exact (a 64-bit counter never goes through a float).

    Raises:
        RemoteProtocolError: the register count does not fit the type, or a register is not
            16 bits.
    """
    fmt, count = _FORMATS[data_type]
    if len(registers) != count:
        raise RemoteProtocolError(f"{data_type} needs {count} registers, got {len(registers)}")
    if any(not 0 <= word <= 0xFFFF for word in registers):
        raise RemoteProtocolError(f"register values must be 0..65535, got {list(registers)}")
    raw = b"".join(word.to_bytes(2, "big") for word in _ordered(tuple(registers), word_order))
    value: int | float = struct.unpack(fmt, raw)[0]
    return value


def _to_integer(value: float, data_type: DataType) -> int:
    if isinstance(value, int):
        integer = value
    elif not math.isfinite(value):
        raise LocalProtocolError(f"{value} cannot be encoded as {data_type}")
    else:
        # Half away from zero, as a meter's display rounds: 2.5 -> 3, -2.5 -> -3.
        integer = math.floor(abs(value) + 0.5) * (1 if value >= 0 else -1)
    low, high = data_type.int_range
    if not low <= integer <= high:
        raise LocalProtocolError(f"{value} is outside {data_type} ({low}..{high})")
    return integer


def encode_number(value: float, data_type: DataType, word_order: WordOrder) -> tuple[int, ...]:
    """Return the registers of ``value``: the inverse of :func:`decode_number`.

    A float given for an integer type is rounded half away from zero (2.5 -> 3, -2.5 -> -3);
    NaN and infinities are only encodable as float32/float64.

    Raises:
        LocalProtocolError: the value is out of the type's range, or NaN/infinite for an
            integer type.
    """
    fmt, _count = _FORMATS[data_type]
    if data_type.is_float:
        try:
            raw = struct.pack(fmt, value)
        except OverflowError as exc:  # finite but beyond float32
            raise LocalProtocolError(f"{value} is outside {data_type}") from exc
    else:
        raw = struct.pack(fmt, _to_integer(value, data_type))
    words = tuple(int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2))
    return _ordered(words, word_order)


def encode_string(text: str, count: int) -> tuple[int, ...]:
    """``text`` in ``count`` registers, NUL padded; non-ASCII characters become '?'."""
    raw = text.encode("ascii", errors="replace")
    if len(raw) > 2 * count:
        raise LocalProtocolError(f"{text!r} does not fit {count} registers")
    raw = raw.ljust(2 * count, b"\0")
    return tuple((raw[i] << 8) | raw[i + 1] for i in range(0, len(raw), 2))


def decode_string(registers: tuple[int, ...] | list[int]) -> str:
    """Decode leniently: devices put non-ASCII bytes in identity strings (reference-device.md)."""
    raw = b"".join(value.to_bytes(2, "big") for value in registers)
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace").strip()


@dataclass(frozen=True, slots=True)
class IECDateTime:
    """A wall-clock time with millisecond resolution, years 2000-2127."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    millisecond: int

    def __post_init__(self) -> None:
        is_year_valid = 2000 <= self.year <= 2127
        is_month_valid = 1 <= self.month <= 12
        # A device's clock can hold 31 February; a later datetime() would fail far from here.
        last_day = 31
        if is_year_valid and is_month_valid:
            last_day = calendar.monthrange(self.year, self.month)[1]
        checks = {
            "year": is_year_valid,
            "month": is_month_valid,
            "day": 1 <= self.day <= last_day,
            "hour": 0 <= self.hour <= 23,
            "minute": 0 <= self.minute <= 59,
            "millisecond": 0 <= self.millisecond <= 59_999,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise LocalProtocolError(f"date/time field out of range: {', '.join(bad)}")

    def encode(self) -> tuple[int, int, int, int]:
        return (
            self.year - 2000,
            (self.month << 8) | self.day,
            (self.hour << 8) | self.minute,
            self.millisecond,
        )

    @classmethod
    def decode(cls, words: tuple[int, ...] | list[int]) -> IECDateTime:
        """Raises RemoteProtocolError for a wrong word count or impossible fields."""
        if len(words) != 4:
            raise RemoteProtocolError(f"date/time needs 4 registers, got {len(words)}")
        try:
            return cls(
                year=2000 + (words[0] & 0x7F),
                month=(words[1] >> 8) & 0x0F,
                day=words[1] & 0x1F,
                hour=(words[2] >> 8) & 0x1F,
                minute=words[2] & 0x3F,
                millisecond=words[3],
            )
        except LocalProtocolError as exc:
            raise RemoteProtocolError(str(exc)) from exc
