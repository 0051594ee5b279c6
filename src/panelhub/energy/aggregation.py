"""Consumption added up by usage or zone, and the top consumers of a period against the last.

Pure: per-device consumption in, per-group figures out, for the trend pages' aggregated views
and the home page's consumption overview (reference-device.md §1.5).

Rules:

- Only devices of the commodity asked for are added: watt-hours and cubic metres do not add.
- Devices whose usage is MAIN (main / incomer) or SUB_MAIN (sub-main / head of group) are left
  out: they measure again what the devices below them measure, and would count it twice.
  The reference device also leaves out "Total", which PanelHub's usage list does not have.
- A NaN consumption (a bucket nothing could be derived for) adds nothing; the bucket's quality
  flags, kept by the caller, say why.
- Zones are free text; devices with no zone are grouped under the empty string.

Worked example of :func:`rank` (``top`` 2)::

    group      yesterday  day before      share   change
    heating        60          40          60 %    +50 %
    lighting       30          30          30 %      0 %
    others         10           0          10 %     None   (cooking 10 and pumps 0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

# One enumeration for the configuration and the energy code; re-exported from here.
from panelhub.config.models import Commodity, Usage

__all__ = [
    "NOT_AGGREGATED",
    "Commodity",
    "Consumer",
    "Grouping",
    "Ranking",
    "Share",
    "Usage",
    "aggregate",
    "counts_in_aggregates",
    "rank",
]

#: Usages that measure other devices again (reference-device.md §1.5: "Main/Incomer" and
#: "Sub/Head of group" are excluded from aggregates to avoid double counting).
NOT_AGGREGATED: Final = frozenset({Usage.MAIN, Usage.SUB_MAIN})


class Grouping(StrEnum):
    USAGE = "usage"
    ZONE = "zone"


@dataclass(frozen=True, slots=True)
class Consumer:
    """A device as the aggregates see it: its name and what it measures for."""

    name: str
    usage: Usage
    zone: str
    commodity: Commodity


@dataclass(frozen=True, slots=True)
class Share:
    """One slice of the overview: a group's consumption over a period and against the last."""

    name: str  # the usage value or the zone; "others" for the remainder
    consumption: float
    share_pct: float  # of the period's total; 0 when the total is 0
    change_pct: float | None  # against the previous period; None when that was 0


@dataclass(frozen=True, slots=True)
class Ranking:
    top: tuple[Share, ...]  # largest first; ties by name
    others: Share | None  # the groups beyond the top ones, None when there are none
    total: float
    previous_total: float
    change_pct: float | None


def counts_in_aggregates(consumer: Consumer) -> bool:
    return consumer.usage not in NOT_AGGREGATED


def aggregate(
    consumers: Iterable[Consumer],
    consumption: Mapping[str, Sequence[float]],
    *,
    by: Grouping,
    commodity: Commodity,
) -> dict[str, tuple[float, ...]]:
    """Per group (usage value or zone, sorted), the sum of its devices' consumption per bucket.

    ``consumption`` maps device names to one value per bucket; devices missing from it add
    nothing.

    Raises:
        ValueError: the devices' series are not all of one length.
    """
    lengths = {len(values) for values in consumption.values()}
    if len(lengths) > 1:
        raise ValueError(f"consumption series of different lengths {sorted(lengths)}")
    width = lengths.pop() if lengths else 0
    sums: dict[str, list[float]] = {}
    for consumer in consumers:
        values = consumption.get(consumer.name)
        if values is None or consumer.commodity != commodity:
            continue
        if not counts_in_aggregates(consumer):
            continue
        group = consumer.usage.value if by is Grouping.USAGE else consumer.zone
        row = sums.setdefault(group, [0.0] * width)
        for index, value in enumerate(values):
            if not math.isnan(value):
                row[index] += value
    return {group: tuple(sums[group]) for group in sorted(sums)}


def rank(current: Mapping[str, float], previous: Mapping[str, float], *, top: int = 5) -> Ranking:
    """The ``top`` largest groups of a period, with their share and change, and the rest.

    A group found in only one period counts 0 in the other (as does a NaN); groups at 0 in both
    are left out.

    Raises:
        ValueError: ``top`` is less than 1.
    """
    if top < 1:
        raise ValueError(f"top {top} must be 1 or more")
    current, previous = _known(current), _known(previous)
    names = {name for name in (*current, *previous) if current.get(name) or previous.get(name)}
    ordered = sorted(names, key=lambda name: (-current.get(name, 0.0), name))
    total = math.fsum(current.get(name, 0.0) for name in names)
    previous_total = math.fsum(previous.get(name, 0.0) for name in names)

    def share(name: str, groups: Sequence[str]) -> Share:
        now = math.fsum(current.get(group, 0.0) for group in groups)
        before = math.fsum(previous.get(group, 0.0) for group in groups)
        return Share(name, now, 100 * now / total if total else 0.0, _change_pct(now, before))

    rest = ordered[top:]
    return Ranking(
        top=tuple(share(name, [name]) for name in ordered[:top]),
        others=share("others", rest) if rest else None,
        total=total,
        previous_total=previous_total,
        change_pct=_change_pct(total, previous_total),
    )


def _change_pct(now: float, before: float) -> float | None:
    return 100 * (now - before) / before if before else None


def _known(values: Mapping[str, float]) -> dict[str, float]:
    return {name: value for name, value in values.items() if not math.isnan(value)}
