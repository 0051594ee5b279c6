"""The rows of a device's raw CSV: its series' samples merged into one row per logging slot.

The store is read twice, from a worker thread (``SyncTimeSeriesStore``): once to count the
rows (the header states the count before any row), once to stream them. The range ends
``SETTLED_S`` before now, so polls landing meanwhile do not change it between the two reads;
if retention deletes samples in between, ``csvraw`` stops the file with an error rather than
write a header that lies.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from typing import Final

from panelhub.energy.periods import Span
from panelhub.export.csvraw import RawRow
from panelhub.storage.series import SeriesInfo
from panelhub.storage.timeseries import SyncTimeSeriesStore

#: A sample is in the store this long after its slot (a late poll, a sealed hour):
#: ``storage.samples.SEAL_DELAY_S``.
SETTLED_S: Final = 600


def settled(span: Span, now_s: float) -> tuple[int, int]:
    """The part of ``span`` whose samples are all stored by now (may be empty)."""
    return span.start, max(span.start, min(span.end, int(now_s) - SETTLED_S))


def count_rows(
    store: SyncTimeSeriesStore, series: Sequence[SeriesInfo], start: int, end: int
) -> int:
    count = 0
    last: int | None = None
    for ts, _column, _value in _merged(store, series, start, end):
        if ts != last:
            count += 1
            last = ts
    return count


def rows(
    store: SyncTimeSeriesStore, series: Sequence[SeriesInfo], start: int, end: int
) -> Iterator[RawRow]:
    """One row per slot in time order; a value missing or invalid at that slot is None."""
    width = len(series)
    values: list[float | None] = [None] * width
    current: int | None = None
    for ts, column, value in _merged(store, series, start, end):
        if ts != current:
            if current is not None:
                yield RawRow(current, values)
            current, values = ts, [None] * width
        values[column] = value
    if current is not None:
        yield RawRow(current, values)


def _merged(
    store: SyncTimeSeriesStore, series: Sequence[SeriesInfo], start: int, end: int
) -> Iterator[tuple[int, int, float | None]]:
    def stream(column: int, info: SeriesInfo) -> Iterator[tuple[int, int, float | None]]:
        for sample in store.read_raw(info.series_id, start, end):
            yield sample.ts, column, sample.value if sample.is_valid else None

    return heapq.merge(*(stream(column, info) for column, info in enumerate(series)))
