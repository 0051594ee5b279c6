"""Percentiles and per-window summaries shared by the load processes and the report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1) of already sorted values; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def summary_ms(latencies_s: Sequence[float]) -> dict[str, Any]:
    """Count and p50/p95/p99/max of latencies given in seconds, in milliseconds."""
    ordered = sorted(latencies_s)
    result: dict[str, Any] = {"count": len(ordered)}
    for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)):
        value = percentile(ordered, q)
        result[f"{name}_ms"] = None if value is None else round(value * 1000, 3)
    return result


def in_window(t: float, window: Sequence[float]) -> bool:
    return window[0] <= t < window[1]
