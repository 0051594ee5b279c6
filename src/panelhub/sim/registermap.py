"""Register-map vocabulary of the simulated meters: tables, typed points and word encodings.

Pure: a :class:`Point` turns a physical value into the 16-bit words a device would hold, in
big-endian word order (most significant word first, the Modbus convention most meters follow).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Final

ASCII_FILL: Final = " "  # labels are space-padded, as meter names are on most devices


class Table(StrEnum):
    """The four Modbus data tables (Modbus Application Protocol v1.1b3 §4.3)."""

    COILS = "coils"
    DISCRETE_INPUTS = "discrete inputs"
    HOLDING_REGISTERS = "holding registers"
    INPUT_REGISTERS = "input registers"


class Encoding(Enum):
    """How one value is laid out in registers: (struct format, word count)."""

    UINT16 = ("H", 1)
    INT16 = ("h", 1)
    UINT32 = ("I", 2)
    INT32 = ("i", 2)
    UINT64 = ("Q", 4)
    INT64 = ("q", 4)
    FLOAT32 = ("f", 2)

    @property
    def word_count(self) -> int:
        return self.value[1]

    def encode(self, value: float) -> list[int]:
        """Return the words for ``value``; integers saturate instead of wrapping."""
        fmt, words = self.value
        if self is Encoding.FLOAT32:
            raw = struct.pack(">f", value)
        else:
            bits = 16 * words
            low, high = (
                (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
                if fmt.islower()
                else (0, (1 << bits) - 1)
            )
            if isinstance(value, int):  # exact: a float would round 64-bit counters
                rounded = value
            else:
                rounded = 0 if math.isnan(value) else math.floor(value + 0.5)
            integer = min(high, max(low, rounded))
            raw = struct.pack(f">{fmt}", integer)
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]

    def decode(self, words: list[int]) -> float:
        """Inverse of :meth:`encode`, used by the tests and by :func:`describe` tools."""
        raw = b"".join(w.to_bytes(2, "big") for w in words)
        value: float = struct.unpack(f">{self.value[0]}", raw)[0]  # an int stays exact
        return value


@dataclass(frozen=True, slots=True)
class Point:
    """One measured quantity: ``register value = physical value / scale``.

    ``address`` is the 0-based protocol address; the 1-based ``register_number`` is only for the
    documentation, as in device manuals.
    """

    quantity: str
    address: int
    encoding: Encoding
    unit: str
    scale: float = 1.0
    description: str = ""

    @property
    def register_number(self) -> int:
        return self.address + 1

    @property
    def word_count(self) -> int:
        return self.encoding.word_count

    def encode(self, value: float) -> list[int]:
        return self.encoding.encode(value / self.scale)

    def decode(self, words: list[int]) -> float:
        return self.encoding.decode(words) * self.scale


@dataclass(frozen=True, slots=True)
class BitPoint:
    quantity: str
    address: int
    description: str
    is_writable: bool = False


@dataclass(frozen=True, slots=True)
class ConfigBlock:
    """The writable holding registers every simulated meter has, at a kind-specific address.

    Layout from ``address``: demand interval (uint16, minutes, 1..60), alarm mask (uint16,
    bit field; any value), then the label: ``label_words`` registers of space-padded ASCII.
    """

    address: int
    label_words: int = 8

    @property
    def demand_interval_address(self) -> int:
        return self.address

    @property
    def alarm_mask_address(self) -> int:
        return self.address + 1

    @property
    def label_address(self) -> int:
        return self.address + 2

    @property
    def word_count(self) -> int:
        return 2 + self.label_words


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """Everything a client can reach on one kind of meter.

    ``ranges`` are the readable (start, count) ranges of ``table``; registers inside a range
    that no point covers are reserved and read as zero. Anything outside a range, and outside
    the config block, answers exception 0x02 (Illegal Data Address).
    """

    table: Table
    points: tuple[Point, ...]
    ranges: tuple[tuple[int, int], ...]
    config: ConfigBlock
    coils: tuple[BitPoint, ...] = ()
    discrete_inputs: tuple[BitPoint, ...] = ()

    def point(self, quantity: str) -> Point:
        for point in self.points:
            if point.quantity == quantity:
                return point
        raise KeyError(quantity)


def encode_ascii(text: str, word_count: int) -> list[int]:
    """Encode ``text`` as space-padded ASCII, two characters per register, high byte first."""
    raw = text.encode("ascii", errors="replace")[: 2 * word_count].ljust(
        2 * word_count, ASCII_FILL.encode()
    )
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def decode_ascii(words: list[int]) -> str:
    return (
        b"".join(w.to_bytes(2, "big") for w in words)
        .decode("ascii", errors="replace")
        .rstrip(ASCII_FILL)
    )
