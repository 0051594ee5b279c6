"""The points a line chart draws: samples cut into runs at gaps, thinned to the pixel columns.

Pure. A 30-day trend of a 1-minute measurement is 43,200 samples, far more than the chart
has pixels; each pixel column keeps only its lowest and highest sample (in time order), so
peaks and dips stay visible exactly as in the full series while the SVG stays small.

Rules:

* An invalid sample (``is_valid`` false, or a value that is not finite) ends a run; so does a
  step longer than ``max_gap_s`` between two samples (polls lost without a record). No line
  is ever drawn across a gap.
* Within one pixel column only the first gap splits the run: further gaps in the same
  column are narrower than a pixel and would only add points nobody can see. That bounds the
  output at four points per column, two in the common case.
* Samples outside ``start``..``end`` are left out; samples must come oldest first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from panelhub.storage.series import Sample

#: Pixel columns of a line chart's plot: two kept points each gives the ~1000 points per
#: series that keep a 30-day trend page light (about 100 kB of SVG per series).
MAX_COLUMNS: Final = 500


@dataclass(frozen=True, slots=True)
class Point:
    ts: int
    value: float


@dataclass(slots=True)
class _Column:
    index: int
    low: Point
    high: Point

    def points(self) -> list[Point]:
        if self.low == self.high:
            return [self.low]
        return sorted((self.low, self.high), key=lambda point: point.ts)


@dataclass(slots=True)
class _Runs:
    """Collects runs as samples arrive; ``column`` is the pixel column being filled."""

    runs: list[list[Point]] = field(default_factory=list)
    run: list[Point] = field(default_factory=list)
    column: _Column | None = None
    split_column: int = -1  # the column where the run was last split

    def add(self, point: Point, index: int) -> None:
        column = self.column
        if column is None or column.index != index:
            self.flush()
            self.column = _Column(index, point, point)
        elif point.value < column.low.value:
            column.low = point
        elif point.value > column.high.value:
            column.high = point

    def split(self, index: int) -> None:
        if index == self.split_column:
            return
        self.split_column = index
        self.flush()
        self.end_run()

    def flush(self) -> None:
        if self.column is not None:
            self.run.extend(self.column.points())
            self.column = None

    def end_run(self) -> None:
        if self.run:
            self.runs.append(self.run)
            self.run = []


def runs(
    samples: Iterable[Sample],
    *,
    start: int,
    end: int,
    columns: int = MAX_COLUMNS,
    max_gap_s: int | None = None,
) -> list[list[Point]]:
    """Return the runs to draw, each a list of points oldest first, none across a gap.

    Args:
        samples: the series, oldest first.
        start: UTC seconds at the left edge of the plot.
        end: UTC seconds at the right edge (after ``start``).
        columns: pixel columns to thin to.
        max_gap_s: a longer step between two samples is a gap (None: only invalid samples).
    """
    if end <= start:
        raise ValueError("a chart needs an end after its start")
    span_s = end - start
    collected = _Runs()
    previous_ts: int | None = None
    for sample in samples:
        if not start <= sample.ts <= end:
            continue
        index = min(columns - 1, (sample.ts - start) * columns // span_s)
        if not (sample.is_valid and math.isfinite(sample.value)):
            collected.split(index)
            continue
        if (
            max_gap_s is not None
            and previous_ts is not None
            and sample.ts - previous_ts > max_gap_s
        ):
            collected.split(index)
        previous_ts = sample.ts
        collected.add(Point(sample.ts, sample.value), index)
    collected.flush()
    collected.end_run()
    return collected.runs
