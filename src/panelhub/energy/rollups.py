"""Rollups: one series' samples summed up per 5 minutes, hour and day, kept for years.

Pure: samples in, :class:`~panelhub.storage.series.Rollup` records out; the store writes them.

Rules:

- Buckets start at multiples of their length (UTC), as :class:`Resolution` says; every bucket
  of the range asked for is returned, empty ones included, so a coarser rollup can tell a
  quiet hour from a missing one.
- ``count``, ``minimum``, ``maximum`` and ``mean`` are over the valid samples in the bucket
  (NaN when there are none). The samples of a series sit on its poll slots, multiples of its
  period: a bucket expecting more slots than it has valid samples is flagged GAP, one with no
  valid sample though some were due NO_DATA (and GAP). A 15-minute series has no sample due in
  two 5-minute buckets of three: those are empty but not flagged. A bucket with samples whose
  consumption cannot be told (a lone reading) is flagged GAP rather than NO_DATA.
- ``total`` is the consumption for a COUNTER series (:mod:`~panelhub.energy.counters`, whose
  flags are added), NaN for the others. For the consumption at the first and last boundary
  the counter needs the reading at or before ``start`` and the one at or after ``end``: hand
  in the samples of ``[start - period, end + period]``; the statistics only use
  ``[start, end)``.
- STATE series (status words, enumerations): only the last value of a period means anything,
  so ``mean`` holds the last valid value; ``minimum`` and ``maximum`` are the smallest and
  largest codes seen (an alarm code that came and went still shows in the maximum).

Coarser rollups are built from finer ones (5 min -> hour -> day) without reading the raw
samples again: counts and totals add, minimum of the minimums, maximum of the maximums, mean
weighted by count (STATE: the last child's), flags OR-ed, except that a child's NO_DATA
becomes GAP when the coarse bucket has valid samples. A coarse bucket missing some of its
children is flagged GAP: store the empty buckets too. Built either way, a coarse rollup comes
out the same (the tests check it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from panelhub.energy.counters import CounterSpec, bucket_consumption
from panelhub.storage.series import Quality, Resolution, Rollup, Sample, SeriesInfo, SeriesKind


def build_rollups(
    series: SeriesInfo,
    samples: Sequence[Sample],
    *,
    resolution: Resolution,
    start: int,
    end: int,
    counter: CounterSpec | None = None,
) -> list[Rollup]:
    """Every bucket of ``[start, end)`` at ``resolution``, from samples in time order.

    ``counter`` describes a COUNTER series (None: a counter that does not wrap, trusted
    whatever its rate); it is refused for other kinds.

    Raises:
        ValueError: ``start`` or ``end`` not on a bucket boundary, ``end`` before ``start``,
            samples out of time order, or a counter spec for a series that is not a counter.
    """
    length_s = int(resolution)
    if start % length_s or end % length_s or end < start:
        raise ValueError(f"{start}..{end} is not a whole number of {length_s}-second buckets")
    if counter is not None and series.kind is not SeriesKind.COUNTER:
        raise ValueError(f"{series.device}/{series.key} is not a counter")
    boundaries = list(range(start, end + 1, length_s))
    totals: list[tuple[float, Quality]] = [(math.nan, Quality.GOOD)] * (len(boundaries) - 1)
    if series.kind is SeriesKind.COUNTER and len(boundaries) > 1:
        spec = counter or CounterSpec()
        consumption = bucket_consumption(samples, boundaries, spec=spec, period_s=series.period_s)
        totals = [(c.consumption, c.quality) for c in consumption]
    groups = _by_bucket(samples, start=start, end=end, length_s=length_s)
    return [
        _rollup(series, group, resolution=resolution, start=bucket_start, total=total)
        for bucket_start, group, total in zip(boundaries, groups, totals, strict=False)
    ]


def combine_rollups(
    rollups: Iterable[Rollup], *, resolution: Resolution, kind: SeriesKind
) -> list[Rollup]:
    """Coarser rollups of one series from its finer ones, one per coarse bucket with children.

    Raises:
        ValueError: rollups of several series or resolutions, or not finer than ``resolution``
            and dividing it.
    """
    children = sorted(rollups, key=lambda rollup: rollup.start)
    if not children:
        return []
    fine = children[0].resolution
    if {(r.series_id, r.resolution) for r in children} != {(children[0].series_id, fine)}:
        raise ValueError("rollups to combine must be of one series and one resolution")
    if fine >= resolution or resolution % fine:
        raise ValueError(f"{fine.name} rollups do not combine into {resolution.name}")
    groups: dict[int, list[Rollup]] = {}
    for child in children:
        groups.setdefault(child.start - child.start % resolution, []).append(child)
    expected = resolution // fine
    return [
        _combine(start, group, resolution=resolution, kind=kind, expected=expected)
        for start, group in groups.items()
    ]


def _by_bucket(
    samples: Sequence[Sample], *, start: int, end: int, length_s: int
) -> list[list[float]]:
    """The valid samples' values of each bucket, in time order."""
    values: list[list[float]] = [[] for _ in range(start, end, length_s)]
    for sample in samples:
        if start <= sample.ts < end and sample.is_valid and math.isfinite(sample.value):
            values[(sample.ts - start) // length_s].append(sample.value)
    return values


def _rollup(
    series: SeriesInfo,
    values: Sequence[float],
    *,
    resolution: Resolution,
    start: int,
    total: tuple[float, Quality],
) -> Rollup:
    consumption, quality = total
    due = _slots(start, start + int(resolution), period_s=series.period_s)
    if len(values) < due:
        quality |= Quality.GAP | (Quality.GOOD if values else Quality.NO_DATA)
    if values and quality & Quality.NO_DATA:
        # Samples but no consumption (a lone reading): part of the bucket is missing.
        quality = (quality & ~Quality.NO_DATA) | Quality.GAP
    if not values:
        return Rollup(series.series_id, resolution, start, 0, math.nan, math.nan, math.nan,
                      consumption, quality)  # fmt: skip
    mean = values[-1] if series.kind is SeriesKind.STATE else math.fsum(values) / len(values)
    return Rollup(series.series_id, resolution, start, len(values), min(values), max(values),
                  mean, consumption, quality)  # fmt: skip


def _slots(start: int, end: int, *, period_s: int) -> int:
    """How many multiples of the period (the poll slots) lie in ``[start, end)``."""
    return -(-end // period_s) - -(-start // period_s)


def _combine(
    start: int,
    children: Sequence[Rollup],
    *,
    resolution: Resolution,
    kind: SeriesKind,
    expected: int,
) -> Rollup:
    counted = [child for child in children if child.count]
    count = sum(child.count for child in counted)
    quality = Quality.GOOD
    for child in children:
        quality |= child.quality
    if len(children) < expected:
        quality |= Quality.GAP
    if count and quality & Quality.NO_DATA:
        # A child with nothing in a coarse bucket with something: part of it is missing.
        quality = (quality & ~Quality.NO_DATA) | Quality.GAP
    totals = [child.total for child in children if not math.isnan(child.total)]
    total = math.fsum(totals) if totals else math.nan
    if not counted:
        return Rollup(children[0].series_id, resolution, start, 0, math.nan, math.nan, math.nan,
                      total, quality)  # fmt: skip
    if kind is SeriesKind.STATE:
        mean = counted[-1].mean
    else:
        mean = math.fsum(child.mean * child.count for child in counted) / count
    return Rollup(children[0].series_id, resolution, start, count,
                  min(child.minimum for child in counted), max(child.maximum for child in counted),
                  mean, total, quality)  # fmt: skip
