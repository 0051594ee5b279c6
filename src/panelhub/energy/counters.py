"""Consumption per interval from a cumulative counter: never a negative bar, never a spike.

Pure: readings and bucket boundaries in, one :class:`Consumption` per bucket out, each with the
:class:`~panelhub.storage.series.Quality` flags that say how far to trust it.

Rules, applied to each *step*: two consecutive valid readings ``v0`` at ``t0`` and ``v1`` at
``t1`` (invalid samples are skipped; they are what makes gaps). ``limit`` is
``max_rate_per_s * (t1 - t0)``, infinite when the spec gives no rate.

1. REPLACED: a configured replacement at ``t0 < ts <= t1`` (a reading taken at ``ts`` is the
   new meter's). The step's increase is ``(old_final - v0) + (v1 - new_initial)``, each part at
   least 0; ``old_final`` None means the old meter's last logged reading, ``v0``.
2. ``v1 >= v0``: the increase is ``v1 - v0``.
3. ROLLOVER: ``v1 < v0`` and the wrapped increase ``v1 + rollover_at - v0`` is at most
   ``ROLLOVER_WINDOW`` of the range and at most ``limit``: the wrap is added back.
4. RESET: any other decrease. Counting restarted from 0, so ``v1`` is what was counted since,
   but only when the counter clearly restarted, i.e. ``v1`` is no more than the drop
   ``v0 - v1``; otherwise (a meter whose float reading jitters backwards, a counter preset to
   another value) the step counts 0. Either way the new reading is the new reference.
5. IMPLAUSIBLE: whatever the rule above, an increase over ``limit`` (no load could produce it:
   a glitch, a preset) counts 0 and the reading is set aside. If the next reading follows on
   from the one before it (rules 1-3, within the limit over both steps), the set-aside reading
   was a glitch: what was counted across it is spread pro rata over both steps, flagged
   IMPLAUSIBLE and ESTIMATED. Otherwise the counter really jumped (a preset): the next step
   starts from the jumped value, so the jump is left out once instead of showing as a spike.
6. GAP and ESTIMATED: a step longer than ``GAP_FACTOR`` times the series period has lost at
   least one reading. Its increase is spread pro rata over time (straight-line interpolation
   of the counter) across the buckets it spans, each flagged GAP and ESTIMATED. Spreading
   keeps the total right and the bars flat, where putting it all in the first bucket after
   the gap would be a spike and leaving it out would lose energy that was really used.

Buckets: the corrected counter ``C`` (the sum of step increases, 0 at the first reading) is
defined from the first to the last valid reading, linear between readings. A bucket
``[start, end)`` gets ``C(end) - C(start)``, each boundary clamped into that range, and the OR
of the flags of every step whose span meets the bucket's inside. A bucket that reaches before
the first or past the last reading is flagged GAP (only part of it is counted); one that holds
none of that range gets 0 and NO_DATA. Since ``C`` never decreases, no bucket is negative;
since no step exceeds its limit, no bucket exceeds ``max_rate_per_s`` times its length; and the
buckets add up to ``C(last)`` however they are cut.

Worked example: 5-minute period and buckets, ``rollover_at`` 10 000, ``max_rate_per_s`` 1::

    10:00 9990   10:05 9995   10:10 invalid   10:15 5   10:20 1   10:25 900   10:30 905

    10:00-10:05   5  GOOD
    10:05-10:10   5  GAP ESTIMATED ROLLOVER   10 wrapped over a 10-minute step, spread
    10:10-10:15   5  GAP ESTIMATED ROLLOVER
    10:15-10:20   1  RESET                    5 -> 1: restarted, 1 counted since
    10:20-10:25   0  IMPLAUSIBLE              +899 in 300 s is over 1 a second
    10:25-10:30   5  GOOD
    10:30-10:35   0  NO_DATA                  after the last reading
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from panelhub.storage.series import Quality, Sample

#: A step longer than this many series periods has lost at least one reading (the brief's
#: choice: 1.5 leaves room for a late poll without calling it a gap).
GAP_FACTOR: Final = 1.5
#: A decrease is only taken for a wrap when the wrapped increase is at most this share of the
#: counter's range: a meter near its top reading going to near zero. Wider, a reset from
#: high up would be read as a wrap and show as a spike.
ROLLOVER_WINDOW: Final = 0.1


#: How many values an integer register holds, by the template's type name: a counter in it
#: wraps after that many steps (a signed one from its largest to its smallest value).
_INTEGER_RANGES: Final = {
    "int16": 2**16, "uint16": 2**16, "int32": 2**32, "uint32": 2**32,
    "int64": 2**64, "uint64": 2**64,
}  # fmt: skip


def rollover_for(data_type: str, *, scale: float) -> float | None:
    """``CounterSpec.rollover_at`` for a counter register: its range times ``scale``.

    ``scale`` takes a raw register value to the unit the samples are stored in (a uint32 of
    10 Wh steps stored in Wh: 10). Float registers do not wrap: None.

    Raises:
        ValueError: an unknown type name, or a scale of 0.
    """
    if data_type in ("float32", "float64"):
        return None
    if data_type not in _INTEGER_RANGES:
        raise ValueError(f"{data_type!r} is not a register type")
    if not scale:
        raise ValueError("a counter's scale cannot be 0")
    return _INTEGER_RANGES[data_type] * abs(scale)


@dataclass(frozen=True, slots=True)
class MeterReplacement:
    """A meter swapped at ``ts`` (UTC seconds); readings from ``ts`` on are the new meter's."""

    ts: int
    old_final: float | None  # the old meter's last reading; None: the last one logged
    new_initial: float = 0.0  # the new meter's reading when it was put in


@dataclass(frozen=True, slots=True)
class CounterSpec:
    """What is known of a counter beyond its readings.

    ``rollover_at`` is the counter's largest value + 1 in its own unit (a uint32 register of Wh
    with scale 1: ``2**32``); None for a counter that does not wrap (float registers).
    ``max_rate_per_s`` is the most it can grow a second (rated power in W / 3600 for a Wh
    counter); None trusts every increase.
    """

    rollover_at: float | None = None
    max_rate_per_s: float | None = None
    replacements: tuple[MeterReplacement, ...] = ()

    def __post_init__(self) -> None:
        if self.rollover_at is not None and not self.rollover_at > 0:
            raise ValueError(f"rollover_at {self.rollover_at} must be positive")
        if self.max_rate_per_s is not None and not self.max_rate_per_s >= 0:
            raise ValueError(f"max_rate_per_s {self.max_rate_per_s} must be 0 or more")
        times = [replacement.ts for replacement in self.replacements]
        if times != sorted(set(times)):
            raise ValueError("meter replacements must be in time order, one per instant")


@dataclass(frozen=True, slots=True)
class Step:
    """The corrected increase of the counter between two consecutive valid readings."""

    start: int
    end: int
    increase: float
    quality: Quality


@dataclass(frozen=True, slots=True)
class Consumption:
    """What was consumed in ``[start, end)``, in the counter's unit; never negative."""

    start: int
    end: int
    consumption: float
    quality: Quality


def counter_steps(samples: Sequence[Sample], *, spec: CounterSpec, period_s: int) -> list[Step]:
    """The corrected steps between the valid readings (rules 1-6 of the module docstring).

    Raises:
        ValueError: samples out of time order, or a period that is not positive.
    """
    if period_s <= 0:
        raise ValueError(f"period_s {period_s} must be positive")
    readings = _valid_readings(samples)
    steps = _join(readings, spec=spec)
    gap_s = GAP_FACTOR * period_s
    return [
        Step(s.start, s.end, s.increase, s.quality | Quality.GAP | Quality.ESTIMATED)
        if s.end - s.start > gap_s
        else s
        for s in steps
    ]


def bucket_consumption(
    samples: Sequence[Sample],
    boundaries: Sequence[int],
    *,
    spec: CounterSpec,
    period_s: int,
) -> list[Consumption]:
    """One :class:`Consumption` per bucket ``[boundaries[i], boundaries[i + 1])``.

    Raises:
        ValueError: boundaries not strictly increasing, samples out of time order, or a period
            that is not positive.
    """
    if any(b <= a for a, b in itertools.pairwise(boundaries)):
        raise ValueError("bucket boundaries must be strictly increasing")
    return _Counter(counter_steps(samples, spec=spec, period_s=period_s)).buckets(boundaries)


def _valid_readings(samples: Sequence[Sample]) -> list[tuple[int, float]]:
    if any(b.ts <= a.ts for a, b in itertools.pairwise(samples)):
        raise ValueError("samples must be in time order, one per instant")
    return [(s.ts, s.value) for s in samples if s.is_valid and math.isfinite(s.value)]


def _increase(
    earlier: tuple[int, float], later: tuple[int, float], *, spec: CounterSpec
) -> tuple[float, Quality]:
    (t0, v0), (t1, v1) = earlier, later
    limit = math.inf if spec.max_rate_per_s is None else spec.max_rate_per_s * (t1 - t0)
    swaps = [r for r in spec.replacements if t0 < r.ts <= t1]
    if swaps:
        increase, quality = _joined(v0, v1, swaps), Quality.REPLACED
    elif v1 >= v0:
        increase, quality = v1 - v0, Quality.GOOD
    elif spec.rollover_at is not None and 0 <= (wrapped := v1 + spec.rollover_at - v0) <= min(
        ROLLOVER_WINDOW * spec.rollover_at, limit
    ):
        increase, quality = wrapped, Quality.ROLLOVER
    else:
        increase = max(v1, 0.0) if v1 <= v0 - v1 else 0.0
        quality = Quality.RESET
    if increase > limit:
        return 0.0, quality | Quality.IMPLAUSIBLE
    return increase, quality


def _join(readings: Sequence[tuple[int, float]], *, spec: CounterSpec) -> list[Step]:
    """Steps between consecutive readings, with a lone implausible reading set aside (rule 5)."""
    steps: list[Step] = []
    if not readings:
        return steps
    reference, aside = readings[0], False  # the last trusted reading; is the previous set aside?
    for earlier, later in itertools.pairwise(readings):
        if aside:
            increase, quality = _increase(reference, later, spec=spec)
            if not quality & (Quality.RESET | Quality.IMPLAUSIBLE):
                # The reading set aside was a glitch: the counter went on from the reference.
                # Spread what it counted since over both steps, as across a gap.
                quality |= Quality.IMPLAUSIBLE | Quality.ESTIMATED
                share = increase * ((earlier[0] - reference[0]) / (later[0] - reference[0]))
                steps[-1] = Step(reference[0], earlier[0], share, quality)
                steps.append(Step(earlier[0], later[0], increase - share, quality))
                reference, aside = later, False
                continue
            # Not a glitch: the counter really jumped, and goes on from the jumped value.
            reference = earlier
        increase, quality = _increase(earlier, later, spec=spec)
        steps.append(Step(earlier[0], later[0], increase, quality))
        aside = bool(quality & Quality.IMPLAUSIBLE)
        reference = earlier if aside else later
    return steps


def _joined(v0: float, v1: float, swaps: Sequence[MeterReplacement]) -> float:
    """The increase across one or more meter swaps: each meter's own part, never negative."""
    increase, reading = 0.0, v0
    for swap in swaps:
        final = reading if swap.old_final is None else swap.old_final
        increase += max(final - reading, 0.0)
        reading = swap.new_initial
    return increase + max(v1 - reading, 0.0)


class _Counter:
    """The corrected counter ``C`` as a piecewise-linear function of time."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self._steps = steps
        self._times = [step.start for step in steps[:1]] + [step.end for step in steps]
        self._levels = [0.0]
        for step in steps:
            self._levels.append(self._levels[-1] + step.increase)

    def buckets(self, boundaries: Sequence[int]) -> list[Consumption]:
        return [self._bucket(a, b) for a, b in itertools.pairwise(boundaries)]

    def _bucket(self, start: int, end: int) -> Consumption:
        if not self._steps or end <= self._times[0] or start >= self._times[-1]:
            return Consumption(start, end, 0.0, Quality.NO_DATA)
        quality = Quality.GOOD
        if start < self._times[0] or end > self._times[-1]:
            quality |= Quality.GAP
        # Steps whose span meets the inside of the bucket: step i spans times[i]..times[i + 1].
        first = max(bisect.bisect_right(self._times, start) - 1, 0)
        last = bisect.bisect_left(self._times, end)
        for step in self._steps[first:last]:
            quality |= step.quality
        return Consumption(start, end, self._level(end) - self._level(start), quality)

    def _level(self, ts: int) -> float:
        index = bisect.bisect_right(self._times, ts) - 1
        if index < 0:
            return self._levels[0]
        if index >= len(self._steps):
            return self._levels[-1]
        step = self._steps[index]
        return self._levels[index] + step.increase * ((ts - step.start) / (step.end - step.start))
