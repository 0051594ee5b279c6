"""Benchmark of the home page's query: the month overview of 100 devices, against the month before.

Writes 100 electricity meters (one counter series each) with hour rollups and day rows for
70 days into a fresh datalog.sqlite through the store's real API, then times
``energy.queries.overview`` (what the home page awaits) for the last four weeks and the
last calendar month, in Europe/Paris (a local day straddles two UTC days: hour rollups at
the ends, day rows between) and in UTC. Stdlib only.

    .venv/bin/python bench/web/overview.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from panelhub.config.models import Commodity, Usage
from panelhub.energy.aggregation import Consumer
from panelhub.energy.periods import local_days
from panelhub.energy.queries import Meter, overview
from panelhub.storage.series import Quality, Resolution, Rollup, SeriesKind
from panelhub.storage.timeseries import TimeSeriesStore, open_datalog

DAYS = 70
DEVICES = 100
FIRST_DAY = date(2026, 1, 1)
USAGES = [u for u in Usage if u not in (Usage.MAIN, Usage.SUB_MAIN)]


def fill(store: TimeSeriesStore) -> list[Meter]:
    sync = store.sync
    meters = []
    start = int(local_days(FIRST_DAY, FIRST_DAY, ZoneInfo("UTC")).start)
    for index in range(DEVICES):
        name = f"meter-{index:03d}"
        info = sync.register_series(
            name, "active_energy_import", kind=SeriesKind.COUNTER, unit="kWh", period_s=300
        )
        usage = Usage.MAIN if index == 0 else USAGES[index % len(USAGES)]
        consumer = Consumer(name, usage, f"zone-{index % 7}", Commodity.ELECTRICITY)
        meters.append(Meter(consumer, info.series_id, 1_000.0))
        hours = [
            Rollup(info.series_id, Resolution.HOUR, start + h * 3_600, 12, 0, 0, 0,
                   1.0 + index / 100, Quality.GOOD)
            for h in range(DAYS * 24)
        ]  # fmt: skip
        days = [
            Rollup(info.series_id, Resolution.DAY, start + d * 86_400, 288, 0, 0, 0,
                   24 * (1.0 + index / 100), Quality.GOOD)
            for d in range(DAYS)
        ]  # fmt: skip
        sync.write_rollups(hours + days)
    sync.checkpoint()
    return meters


async def timed(store: TimeSeriesStore, meters: list[Meter], zone: str, first: date, last: date,
                runs: int) -> list[float]:  # fmt: skip
    tz = ZoneInfo(zone)
    span = local_days(first, last, tz)
    before = local_days(first - (last - first) - timedelta(days=1), first - timedelta(days=1), tz)
    now_s = span.end + 86_400
    latencies = []
    for _ in range(runs):
        began = time.perf_counter()
        found = await overview(store, meters, span, previous=before, now_s=now_s)
        latencies.append((time.perf_counter() - began) * 1_000)
    assert found.by_usage.ranking.total > 0
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = open_datalog(Path(folder) / "datalog.sqlite")
        store = TimeSeriesStore(db)
        began = time.perf_counter()
        meters = fill(store)
        print(f"filled {DEVICES} meters x {DAYS} days in {time.perf_counter() - began:.1f} s")
        cases = [
            ("four weeks, Europe/Paris", "Europe/Paris", date(2026, 2, 13), date(2026, 3, 12)),
            ("February, Europe/Paris", "Europe/Paris", date(2026, 2, 1), date(2026, 2, 28)),
            ("February, UTC", "UTC", date(2026, 2, 1), date(2026, 2, 28)),
            ("one day, Europe/Paris", "Europe/Paris", date(2026, 3, 10), date(2026, 3, 10)),
        ]
        for label, zone, first, last in cases:
            latencies = asyncio.run(timed(store, meters, zone, first, last, args.runs))
            latencies.sort()
            p95 = latencies[int(0.95 * (len(latencies) - 1))]
            print(f"{label:28s} median {statistics.median(latencies):7.1f} ms  p95 {p95:7.1f} ms")
        db.close()


if __name__ == "__main__":
    main()
