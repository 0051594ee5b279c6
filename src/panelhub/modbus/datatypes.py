"""Values <-> 16-bit registers: strings and the IEC 60870-5 four-word date and time.

A string is two ASCII characters per register, first character in the high byte, padded with
NUL: "PH" -> 0x5048. Date and time, IEC 60870-5-4 "DATETIME" as the reference device lays it::

    word 1  bits 0-6   year - 2000
    word 2  bits 8-11  month, bits 0-4 day
    word 3  bits 8-12  hour, bits 0-5 minute
    word 4             milliseconds 0-59999 (seconds x 1000 + ms)
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass

from panelhub.errors import LocalProtocolError, RemoteProtocolError


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
