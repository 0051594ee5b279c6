"""Signal shapes for the simulated meters: a compressed daily load profile and smooth noise.

Everything here is a pure function of ``(seed, t_s)``. Nothing reads the clock, so one seed and
one time always give the same value, which is what makes the simulator testable.

Theory of operation: noise is *value noise*. A 64-bit hash of ``(seed, channel, k)`` gives a
pseudo-random value at each integer lattice point ``k = floor(t_s / period_s)``, and the value
between two lattice points is a smoothstep blend of the two. The result is continuous in time,
bounded to [-1, 1] and needs no random-generator state.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import Final

MASK64: Final = (1 << 64) - 1  # the hash works on unsigned 64-bit integers

# SplitMix64 finaliser constants (Steele, Lea, Flood: "Fast splittable pseudorandom number
# generators", OOPSLA 2014): a cheap hash with full avalanche, good enough for noise.
_GOLDEN_GAMMA: Final = 0x9E3779B97F4A7C15
_MIX_1: Final = 0xBF58476D1CE4E5B9
_MIX_2: Final = 0x94D049BB133111EB

# Peaks of the daily profile, as a fraction of the day: a morning start-up around 08:30 and an
# evening peak around 19:00, as in a typical mixed office/residential feeder.
MORNING_PEAK_AT: Final = 0.355
EVENING_PEAK_AT: Final = 0.79
BASE_LOAD: Final = 0.22  # night-time base load: fridges, servers, standby loads
MIN_LOAD: Final = 0.05  # never quite zero: a switchboard always feeds something
MAX_LOAD: Final = 1.0  # the rated power of the meter's feeder


class Channel(IntEnum):
    """Independent noise streams; each quantity draws from its own so they do not correlate."""

    LOAD_SLOW = 1
    LOAD_FAST = 2
    DAY_OFFSET = 3
    VOLTAGE = 10  # + phase index 0..2
    FREQUENCY = 20
    POWER_FACTOR = 21
    PHASE_SHARE = 30  # + phase index 0..2
    THD_VOLTAGE = 40  # + phase index 0..2
    THD_CURRENT = 50  # + phase index 0..2
    TEMPERATURE = 60


def mix64(value: int) -> int:
    """Hash one integer to 64 well-mixed bits (SplitMix64 finaliser)."""
    z = (value + _GOLDEN_GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * _MIX_1) & MASK64
    z = ((z ^ (z >> 27)) * _MIX_2) & MASK64
    return z ^ (z >> 31)


def lattice_value(seed: int, channel: int, k: int) -> float:
    """Return a pseudo-random value in [-1, 1) for one lattice point."""
    h = mix64(mix64(mix64(seed & MASK64) ^ channel) ^ (k & MASK64))
    return h / float(1 << 63) - 1.0


def smooth_noise(seed: int, channel: int, t_s: float, *, period_s: float) -> float:
    """Return continuous noise in [-1, 1] that changes over about ``period_s`` seconds."""
    x = t_s / period_s
    k = math.floor(x)
    f = x - k
    weight = f * f * (3.0 - 2.0 * f)  # smoothstep: no kinks at the lattice points
    a = lattice_value(seed, channel, k)
    b = lattice_value(seed, channel, k + 1)
    return a + (b - a) * weight


def _circular_bump(day_phase: float, centre: float, width: float) -> float:
    """Gaussian bump on the day circle, so a peak near midnight wraps around."""
    d = abs(day_phase - centre)
    d = min(d, 1.0 - d)
    return math.exp(-0.5 * (d / width) ** 2)


def load_fraction(t_s: float, *, seed: int, day_length_s: float) -> float:
    """Return the load as a fraction of rated power at ``t_s``, in [MIN_LOAD, MAX_LOAD].

    One simulated day lasts ``day_length_s`` real seconds. Each seed starts at its own time of
    day, so several meters in a demo do not peak together.
    """
    day_offset = (lattice_value(seed, Channel.DAY_OFFSET, 0) + 1.0) / 2.0
    day_phase = (t_s / day_length_s + day_offset) % 1.0
    shape = (
        BASE_LOAD
        + 0.40 * _circular_bump(day_phase, MORNING_PEAK_AT, 0.06)
        + 0.25 * _circular_bump(day_phase, 0.55, 0.12)  # working hours plateau
        + 0.55 * _circular_bump(day_phase, EVENING_PEAK_AT, 0.05)
    )
    noise = 0.08 * smooth_noise(seed, Channel.LOAD_SLOW, t_s, period_s=7.0)
    noise += 0.03 * smooth_noise(seed, Channel.LOAD_FAST, t_s, period_s=1.3)
    return min(MAX_LOAD, max(MIN_LOAD, shape * (1.0 + noise)))
