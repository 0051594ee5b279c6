"""What the energy pages ask of the store: each device's consumption over periods and buckets.

A device's consumption is read from one counter series, its *meter*: the active energy
imported where the template has it, else the first counter whose unit converts to the
commodity's base unit (Wh for electricity and heat, m3 for the others). Values come out in
that base unit (a kWh counter's totals times 1000), so devices with different templates add.

Totals over a period come from rollups (:func:`periods.cover`: day rows where whole UTC days
fit, hours and 5 minutes at the ends); buckets of a trend from hour or 5-minute rollups
summed per bucket, so a local day is summed from its own 23, 24 or 25 hours.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from panelhub.energy.aggregation import (
    Commodity,
    Consumer,
    Grouping,
    Ranking,
    Share,
    counts_in_aggregates,
    rank,
)
from panelhub.energy.periods import Span, cover, ready_until
from panelhub.storage.series import Quality, Resolution, Rollup, SeriesInfo, SeriesKind
from panelhub.storage.timeseries import TimeSeriesStore

#: The unit consumption is added up in, per commodity (meters and bills count Wh and m3).
BASE_UNITS: Final = {Commodity.ELECTRICITY: "Wh", Commodity.HEAT: "Wh"}
DEFAULT_BASE_UNIT: Final = "m3"
#: Counters preferred as a device's consumption, in order (the templates' common keys): an
#: import counter is what a consumer uses; a total also counts what it gave back.
PREFERRED_KEYS: Final = ("active_energy_import", "active_energy_total")


class UnitLike(Protocol):
    """A unit as ``devices.units.UNITS`` gives it (passed in: energy may not import devices)."""

    @property
    def base(self) -> str: ...

    @property
    def factor(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Meter:
    """The counter series a device's consumption is read from, and its factor to base unit."""

    consumer: Consumer
    series_id: int
    factor: float


@dataclass(frozen=True, slots=True)
class Figure:
    """A device's or group's consumption over a period and the previous one, in base unit."""

    name: str
    now: float
    before: float
    quality: Quality  # of ``now``

    @property
    def change_pct(self) -> float | None:
        return 100 * (self.now - self.before) / self.before if self.before else None


@dataclass(frozen=True, slots=True)
class Grouped:
    """A ranking of groups (usages or zones) with each group's previous figure and flags."""

    ranking: Ranking
    #: Per group name: the previous period's consumption.
    before: Mapping[str, float]
    #: Per group name: the union of its devices' quality flags.
    quality: Mapping[str, Quality]

    def previous(self, share: Share) -> float:
        """The previous period's figure of a top share or of the "others" share."""
        if share is not self.ranking.others:
            return self.before.get(share.name, 0.0)
        top = math.fsum(self.before.get(item.name, 0.0) for item in self.ranking.top)
        return self.ranking.previous_total - top

    def flags(self, share: Share) -> Quality:
        if share is not self.ranking.others:
            return self.quality.get(share.name, Quality.GOOD)
        top = {item.name for item in self.ranking.top}
        flags = Quality.GOOD
        for name, quality in self.quality.items():
            if name not in top:
                flags |= quality
        return flags


@dataclass(frozen=True, slots=True)
class Overview:
    """The home page's figures: rankings by usage and zone, the mains apart."""

    unit: str
    devices: tuple[Figure, ...]
    mains: tuple[Figure, ...]
    by_usage: Grouped
    by_zone: Grouped


def base_unit(commodity: Commodity) -> str:
    return BASE_UNITS.get(commodity, DEFAULT_BASE_UNIT)


def pick_meters(
    consumers: Iterable[Consumer],
    series: Sequence[SeriesInfo],
    *,
    commodity: Commodity,
    units: Mapping[str, UnitLike],
) -> list[Meter]:
    """The meter of each consumer of ``commodity`` that has one, in the consumers' order."""
    wanted = base_unit(commodity)
    by_device: dict[str, list[SeriesInfo]] = {}
    for info in series:
        unit = units.get(info.unit)
        if info.kind is SeriesKind.COUNTER and unit is not None and unit.base == wanted:
            by_device.setdefault(info.device, []).append(info)
    meters = []
    for consumer in consumers:
        candidates = by_device.get(consumer.name)
        if consumer.commodity != commodity or not candidates:
            continue
        rank_of = {key: index for index, key in enumerate(PREFERRED_KEYS)}
        best = min(candidates, key=lambda s: (rank_of.get(s.key, len(rank_of)), s.series_id))
        meters.append(Meter(consumer, best.series_id, units[best.unit].factor))
    return meters


def merge_totals(parts: Sequence[tuple[float, Quality]]) -> tuple[float, Quality]:
    """One total from the totals of consecutive pieces (as ``store.totals`` gives them).

    A piece without data makes the whole a GAP, unless no piece had data (NO_DATA, 0).
    """
    if not parts:
        return 0.0, Quality.GOOD
    quality = Quality.GOOD
    for _, flags in parts:
        quality |= flags
    if all(Quality.NO_DATA in flags for _, flags in parts):
        return 0.0, quality
    if Quality.NO_DATA in quality:
        quality = (quality & ~Quality.NO_DATA) | Quality.GAP
    return math.fsum(total for total, _ in parts), quality


async def period_totals(
    store: TimeSeriesStore, series_ids: Sequence[int], span: Span, *, now_s: float
) -> dict[int, tuple[float, Quality]]:
    """Consumption per series over ``span`` (in the series' unit), from the coarsest rollups."""
    if not series_ids:
        return {}
    parts: dict[int, list[tuple[float, Quality]]] = {series_id: [] for series_id in series_ids}
    for piece in cover(span, now_s):
        found = await store.totals(series_ids, piece.resolution, piece.start, piece.end)
        for series_id, total in found.items():
            parts[series_id].append(total)
    return {series_id: merge_totals(found) for series_id, found in parts.items()}


async def overview(
    store: TimeSeriesStore,
    meters: Sequence[Meter],
    span: Span,
    *,
    previous: Span | None = None,
    now_s: float,
) -> Overview:
    """The figures of ``span`` against ``previous`` (default: the span of equal length before).

    The home page passes the same number of local days before, which differs from the span's
    length in seconds across a summer-time change.
    """
    ids = [meter.series_id for meter in meters]
    now = await period_totals(store, ids, span, now_s=now_s)
    before = await period_totals(store, ids, previous or span.before(), now_s=now_s)
    figures = [
        Figure(
            meter.consumer.name,
            now[meter.series_id][0] * meter.factor,
            before[meter.series_id][0] * meter.factor,
            now[meter.series_id][1],
        )
        for meter in meters
    ]
    consumers = {meter.consumer.name: meter.consumer for meter in meters}
    counted = [f for f in figures if counts_in_aggregates(consumers[f.name])]
    mains = tuple(f for f in figures if not counts_in_aggregates(consumers[f.name]))
    by_usage = _grouped(counted, consumers, Grouping.USAGE)
    by_zone = _grouped(counted, consumers, Grouping.ZONE)
    unit = base_unit(meters[0].consumer.commodity) if meters else "Wh"
    return Overview(unit, tuple(figures), mains, by_usage, by_zone)


def _grouped(figures: Sequence[Figure], consumers: Mapping[str, Consumer], by: Grouping) -> Grouped:
    sums_now: dict[str, float] = {}
    sums_before: dict[str, float] = {}
    quality: dict[str, Quality] = {}
    for figure in figures:
        consumer = consumers[figure.name]
        name = consumer.usage.value if by is Grouping.USAGE else consumer.zone
        sums_now[name] = sums_now.get(name, 0.0) + figure.now
        sums_before[name] = sums_before.get(name, 0.0) + figure.before
        quality[name] = quality.get(name, Quality.GOOD) | figure.quality
    return Grouped(rank(sums_now, sums_before), sums_before, quality)


def sum_buckets(
    rollups: Sequence[Rollup], bounds: Sequence[int], *, resolution: Resolution, ready_s: int
) -> list[tuple[float, Quality]]:
    """Consumption per bucket ``[bounds[i], bounds[i+1])`` from finer rollups in time order.

    A bucket missing some of its rollups (before ``ready_s``) is a GAP; one with none that has
    a total is NaN with NO_DATA; a bucket wholly after ``ready_s`` is NaN and not flagged
    (nothing could be there yet).
    """
    length = int(resolution)
    out: list[tuple[float, Quality]] = []
    index = 0
    for start, end in itertools.pairwise(bounds):
        while index < len(rollups) and rollups[index].start < start:
            index += 1
        inside: list[Rollup] = []
        while index < len(rollups) and rollups[index].start < end:
            inside.append(rollups[index])
            index += 1
        expected = max(0, -(-(min(end, ready_s) - start) // length))
        out.append(_bucket_total(inside, expected))
    return out


def _bucket_total(inside: Sequence[Rollup], expected: int) -> tuple[float, Quality]:
    if expected == 0 and not inside:
        return math.nan, Quality.GOOD
    quality = Quality.GOOD
    for rollup in inside:
        quality |= rollup.quality
    if len(inside) < expected:
        quality |= Quality.GAP
    totals = [rollup.total for rollup in inside if not math.isnan(rollup.total)]
    if not totals:
        return math.nan, quality | Quality.NO_DATA
    if Quality.NO_DATA in quality:
        quality = (quality & ~Quality.NO_DATA) | Quality.GAP
    return math.fsum(totals), quality


async def bucket_series(
    store: TimeSeriesStore,
    series_id: int,
    bounds: Sequence[int],
    *,
    resolution: Resolution,
    now_s: float,
) -> list[tuple[float, Quality]]:
    """Consumption of one series per bucket (in the series' unit), read at ``resolution``."""
    rollups = await store.read_rollups(series_id, resolution, bounds[0], bounds[-1])
    ready = ready_until(resolution, now_s)
    return sum_buckets(rollups, bounds, resolution=resolution, ready_s=ready)
