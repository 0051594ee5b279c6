"""The chunk codec: one UTC day of one series as a small, self-checking blob (pure, no I/O).

A year of 500 one-minute series is 263 million samples; at the 16 bytes a row would take
(plus SQLite's overhead) it fills a small panel's flash. Sealed days are therefore stored as
chunks, which keep every value bit-exact while exploiting what meter data looks like:

* values that are decimal-quantised (``k * 10**-d``: scaled-integer registers, Wh counters)
  are stored as the integers ``k``; values that are exactly float32 (float registers) as their
  32-bit patterns; anything else as the 64-bit pattern;
* those integers are delta-coded (zigzag, so a small step down stays small), split into byte
  planes (all high bytes together, where the deltas leave zeros) and compressed with zlib.

Timestamps on the series' grid (the poll slots) cost one presence bit per slot; a sample off
the grid (a period change, a clock step) switches the chunk to exact offsets, so nothing is
ever refused or moved. A validity bit per sample keeps invalid samples (the CSV error flag).

Blob layout (little-endian)::

    version u8 | start i64 | step_s u32 | count u32 | flags u8 | zlib(body) | crc32 u32

The CRC covers everything before it: a damaged chunk raises ``DatalogStoreError`` instead of
decoding to plausible but wrong values. Rollup chunks (5-minute and hour buckets of one day)
use the same framing and column coders.
"""

from __future__ import annotations

import itertools
import math
import struct
import sys
import zlib
from array import array
from collections.abc import Iterable, Sequence
from typing import Final

from panelhub.errors import DatalogStoreError
from panelhub.storage.series import Quality, Resolution, Rollup, Sample

#: A chunk holds one UTC day: days align across every period (1 s to 1 h all divide it), so
#: a period change never makes two chunks overlap.
CHUNK_SPAN_S: Final = 86_400
#: Bumped whenever the layout changes; older versions stay decodable.
CHUNK_VERSION: Final = 1
#: zlib level: 6 is zlib's own default; 9 gains < 1 % on meter data for twice the time.
ZLIB_LEVEL: Final = 6
#: Largest ``d`` tried for decimal-quantised values: meters publish at most 6 decimals.
MAX_DECIMALS: Final = 6

_HEADER: Final = struct.Struct("<BqIIB")
_CRC: Final = struct.Struct("<I")
_FLAG_IRREGULAR: Final = 1
_MODE_DECIMAL: Final = 1
_MODE_FLOAT32: Final = 2
_MODE_FLOAT64: Final = 3
_MASK64: Final = (1 << 64) - 1
_POW10: Final = tuple(float(10**d) for d in range(MAX_DECIMALS + 1))
#: Decimal integers are kept in 64-bit words; 2**62 leaves room for their deltas' sign.
_DECIMAL_LIMIT: Final = 2.0**62
_BIG_ENDIAN: Final = sys.byteorder == "big"


def chunk_start(ts: int) -> int:
    """Start of the chunk (UTC day) that holds ``ts``."""
    return ts - ts % CHUNK_SPAN_S


# --- samples ---------------------------------------------------------------------------------


def encode_samples(start: int, period_s: int, samples: Sequence[Sample]) -> bytes:
    """Encode the samples of the day starting at ``start`` (ordered, unique timestamps).

    Raises:
        ValueError: ``start`` is not a day start, or a sample is outside the day, out of
            order or repeated: the caller's bug, not the data's.

    """
    offsets = [sample.ts - start for sample in samples]
    _check_offsets(start, offsets)
    is_grid = (
        period_s > 0
        and CHUNK_SPAN_S % period_s == 0
        and all(offset % period_s == 0 for offset in offsets)
    )
    if is_grid:
        times = _pack_bitmap((offset // period_s for offset in offsets), CHUNK_SPAN_S // period_s)
    else:
        times = _pack_ints(offsets)
    validity = _pack_bitmap(
        (i for i, sample in enumerate(samples) if sample.is_valid), len(samples)
    )
    values = _encode_values([sample.value for sample in samples if sample.is_valid])
    flags = 0 if is_grid else _FLAG_IRREGULAR
    return _frame(start, period_s, len(samples), flags, times + validity + values)


def decode_samples(blob: bytes) -> list[Sample]:
    """The samples of a chunk, in time order.

    Raises:
        DatalogStoreError: the blob is damaged or of an unknown version (``path`` is None:
            the store names the file).

    """
    start, period_s, count, flags, body = _unframe(blob)
    reader = _Reader(body)
    if flags & _FLAG_IRREGULAR:
        offsets = reader.ints(count)
    else:
        if period_s == 0 or CHUNK_SPAN_S % period_s:
            raise _damaged(f"period {period_s} s does not divide a day")
        slots = reader.bitmap(CHUNK_SPAN_S // period_s)
        offsets = [slot * period_s for slot in slots]
    valid = set(reader.bitmap(count))
    values = iter(reader.values(len(valid)))
    reader.finish()
    if len(offsets) != count:
        raise _damaged("sample count and timestamps disagree")
    return [
        Sample(start + offset, next(values)) if i in valid else Sample.invalid(start + offset)
        for i, offset in enumerate(offsets)
    ]


# --- rollups ---------------------------------------------------------------------------------


def encode_rollups(start: int, rollups: Sequence[Rollup], *, as_float32: bool) -> bytes:
    """Encode the rollups of one series, one resolution and the day starting at ``start``.

    ``as_float32`` rounds min, max and mean to float32 (7 significant digits) unless they
    are decimal: they draw trends, and 5-minute and hour rollups are kept for years, where
    float32 halves their size. ``total`` (a consumption) is always kept exact.

    Raises:
        ValueError: mixed resolutions, or a bucket outside the day, unaligned or repeated.

    """
    resolution = rollups[0].resolution if rollups else Resolution.FIVE_MINUTES
    if any(rollup.resolution != resolution for rollup in rollups):
        raise ValueError("a rollup chunk holds one resolution")
    offsets = [rollup.start - start for rollup in rollups]
    _check_offsets(start, offsets)
    if any(offset % resolution for offset in offsets):
        raise ValueError(f"a {int(resolution)} s rollup must start on its bucket")
    columns = [
        _pack_bitmap((offset // resolution for offset in offsets), CHUNK_SPAN_S // resolution),
        _pack_ints([rollup.count for rollup in rollups]),
        _pack_ints([int(rollup.quality) for rollup in rollups]),
    ]
    for name in ("minimum", "maximum", "mean"):
        values = [getattr(rollup, name) for rollup in rollups]
        # Decimal values (scaled-integer registers) are smaller kept exact than as float32.
        is_lossy = as_float32 and _decimals(values) is None
        columns.append(_encode_values(_to_float32(values) if is_lossy else values))
    columns.append(_encode_values([rollup.total for rollup in rollups]))
    return _frame(start, int(resolution), len(rollups), 0, b"".join(columns))


def decode_rollups(blob: bytes, series_id: int) -> list[Rollup]:
    """The rollups of a chunk, in time order, attributed to ``series_id``.

    Raises:
        DatalogStoreError: the blob is damaged or of an unknown version.

    """
    start, step_s, count, _flags, body = _unframe(blob)
    try:
        resolution = Resolution(step_s)
    except ValueError:
        raise _damaged(f"unknown resolution {step_s} s") from None
    reader = _Reader(body)
    slots = reader.bitmap(CHUNK_SPAN_S // resolution)
    counts = reader.ints(count)
    qualities = reader.ints(count)
    minimum, maximum, mean, total = (reader.values(count) for _ in range(4))
    reader.finish()
    if len(slots) != count:
        raise _damaged("rollup count and buckets disagree")
    return [
        Rollup(
            series_id,
            resolution,
            start + slot * resolution,
            counts[i],
            minimum[i],
            maximum[i],
            mean[i],
            total[i],
            Quality(qualities[i]),
        )
        for i, slot in enumerate(slots)
    ]


# --- framing ---------------------------------------------------------------------------------


def _check_offsets(start: int, offsets: Sequence[int]) -> None:
    if start % CHUNK_SPAN_S:
        raise ValueError(f"chunk start {start} is not a UTC day start")
    if any(not 0 <= offset < CHUNK_SPAN_S for offset in offsets):
        raise ValueError(f"a timestamp is outside the day starting at {start}")
    if any(b <= a for a, b in itertools.pairwise(offsets)):
        raise ValueError("timestamps must be strictly increasing")


def _frame(start: int, step_s: int, count: int, flags: int, body: bytes) -> bytes:
    head = _HEADER.pack(CHUNK_VERSION, start, step_s, count, flags)
    blob = head + zlib.compress(body, ZLIB_LEVEL)
    return blob + _CRC.pack(zlib.crc32(blob))


def _unframe(blob: bytes) -> tuple[int, int, int, int, bytes]:
    if len(blob) < _HEADER.size + _CRC.size:
        raise _damaged("too short")
    (crc,) = _CRC.unpack_from(blob, len(blob) - _CRC.size)
    if zlib.crc32(blob[: -_CRC.size]) != crc:
        raise _damaged("checksum mismatch")
    version, start, step_s, count, flags = _HEADER.unpack_from(blob)
    if version != CHUNK_VERSION:
        raise _damaged(f"unknown chunk version {version}")
    try:
        body = zlib.decompress(blob[_HEADER.size : -_CRC.size])
    except zlib.error as exc:
        raise _damaged(f"cannot decompress: {exc}") from exc
    return start, step_s, count, flags, body


def _damaged(reason: str) -> DatalogStoreError:
    return DatalogStoreError(f"damaged chunk: {reason}", path=None)


# --- columns ---------------------------------------------------------------------------------


def _encode_values(values: Sequence[float]) -> bytes:
    """Mode byte, decimals byte, then the values as delta-coded integers."""
    decimals = _decimals(values)
    if decimals is not None:
        scale = _POW10[decimals]
        ints = [round(value * scale) & _MASK64 for value in values]
        return bytes((_MODE_DECIMAL, decimals)) + _pack_ints(ints)
    doubles = array("d", values)
    singles = array("f", doubles)
    if array("d", singles).tobytes() == doubles.tobytes():
        return bytes((_MODE_FLOAT32, 0)) + _pack_ints(array("I", singles.tobytes()))
    return bytes((_MODE_FLOAT64, 0)) + _pack_ints(array("Q", doubles.tobytes()))


def _decimals(values: Sequence[float]) -> int | None:
    """The least ``d`` with every value exactly ``round(v * 10**d) / 10**d``, if any.

    -0.0 is not decimal (it would come back as 0.0), nor a value whose integer would not fit
    in 62 bits.
    """
    for decimals, scale in enumerate(_POW10):
        try:
            if all(_is_decimal(value, scale) for value in values):
                return decimals
        except (OverflowError, ValueError):  # inf or NaN: not decimal at any scale
            return None
    return None


def _is_decimal(value: float, scale: float) -> bool:
    scaled = value * scale
    return (
        abs(scaled) < _DECIMAL_LIMIT
        and round(scaled) / scale == value
        and (value != 0.0 or math.copysign(1.0, value) > 0)
    )


def _to_float32(values: Iterable[float]) -> list[float]:
    try:
        return list(array("f", values))
    except OverflowError:  # beyond float32's range: keep the exact value
        return list(values)


def _pack_bitmap(indices: Iterable[int], size: int) -> bytes:
    bits = 0
    for index in indices:
        bits |= 1 << index
    return bits.to_bytes((size + 7) // 8, "little")


def _pack_ints(ints: Iterable[int]) -> bytes:
    """Zigzag deltas of 64-bit integers, byte planes of the little-endian words."""
    previous = 0
    zigzag = array("Q")
    for value in ints:
        delta = (value - previous) & _MASK64
        previous = value
        zigzag.append((delta << 1) & _MASK64 if delta < 1 << 63 else ((-delta & _MASK64) << 1) - 1)
    if _BIG_ENDIAN:  # pragma: no cover - the layout is little-endian everywhere
        zigzag.byteswap()
    raw = zigzag.tobytes()
    return b"".join(raw[plane::8] for plane in range(8))


class _Reader:
    """Reads columns off a decompressed body, refusing to run past its end."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._offset = 0

    def take(self, size: int) -> bytes:
        end = self._offset + size
        if end > len(self._body):
            raise _damaged("body shorter than its columns")
        data = self._body[self._offset : end]
        self._offset = end
        return data

    def finish(self) -> None:
        if self._offset != len(self._body):
            raise _damaged("trailing bytes after the columns")

    def bitmap(self, size: int) -> list[int]:
        bits = int.from_bytes(self.take((size + 7) // 8), "little")
        if bits >> size:
            raise _damaged("bits set beyond the bitmap")
        return [i for i in range(size) if bits >> i & 1]

    def ints(self, count: int) -> list[int]:
        planes = self.take(count * 8)
        raw = bytearray(count * 8)
        for plane in range(8):
            raw[plane::8] = planes[plane * count : (plane + 1) * count]
        zigzag = array("Q", bytes(raw))
        if _BIG_ENDIAN:  # pragma: no cover
            zigzag.byteswap()
        out = []
        previous = 0
        for z in zigzag:
            previous = (previous + ((z >> 1) if not z & 1 else -((z + 1) >> 1))) & _MASK64
            out.append(previous)
        return out

    def values(self, count: int) -> list[float]:
        mode, decimals = self.take(2)
        ints = self.ints(count)
        if mode == _MODE_DECIMAL and decimals <= MAX_DECIMALS:
            scale = _POW10[decimals]
            return [(i - (1 << 64) if i >> 63 else i) / scale for i in ints]
        if mode == _MODE_FLOAT32 and all(i >> 32 == 0 for i in ints):
            return list(array("f", array("I", ints).tobytes()))
        if mode == _MODE_FLOAT64:
            return list(array("d", array("Q", ints).tobytes()))
        raise _damaged(f"unknown value mode {mode}/{decimals}")
