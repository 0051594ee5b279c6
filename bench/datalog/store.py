"""Benchmark of the time-series store: bytes per point, trend and overview latencies.

Writes a synthetic year (``--days``) of 500 one-minute measurements through the store's real
API (append, which seals each finished day into chunks, and write_rollups of rollups built by
``energy.rollups``, as the rollup worker builds them), then measures
the file size after a checkpoint and the latency of the queries the pages make. Stdlib only.

    .venv/bin/python bench/datalog/store.py --days 7        # a quick look, < 1 min
    .venv/bin/python bench/datalog/store.py                 # the full year (see results)

The mix: 100 devices of 5 measurements (voltage, current, power, power factor or
frequency, energy counter); 70 devices with float32 registers (values exactly float32), 30
with scaled-integer registers (0.1 V, 0.01 A, 1 W, 0.001, 0.01 Hz, integer Wh). About 0.5 %
of samples are invalid, and a device is now and then down for 1 to 6 hours (missing samples).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

from panelhub.energy.counters import CounterSpec
from panelhub.energy.rollups import build_rollups, combine_rollups
from panelhub.storage.series import Resolution, Rollup, Sample, SeriesInfo, SeriesKind
from panelhub.storage.timeseries import SyncTimeSeriesStore, open_datalog

DAY = 86_400
PERIOD_S = 60
DEVICES = 100
#: 2025-01-01T00:00:00Z: the synthetic year starts here.
EPOCH = 1_735_689_600
INVALID_RATE = 0.005
OUTAGE_RATE = 1 / 60  # per device and day


def f32(value: float) -> float:
    return array("f", [value])[0]


def load_factor(minute: int) -> float:
    """A daily load curve: night base, a morning rise, a working-day plateau, an evening peak."""
    hour = minute / 60
    day_curve = max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.0
    evening = math.exp(-((hour - 19.5) ** 2) / 2)
    return 0.25 + 0.6 * day_curve + 0.3 * evening


class Device:
    def __init__(self, index: int, rng: random.Random) -> None:
        self.index = index
        self.is_scaled = index % 10 >= 7  # 30 % scaled-integer registers
        self.rated_a = rng.choice((5.0, 16.0, 32.0, 63.0, 125.0))
        self.energy_wh = rng.uniform(1e5, 5e7)
        self.has_pf = index % 2 == 0
        self.rng = rng

    def day(self, minutes: range, outage: range) -> list[list[float | None]]:
        """Five columns of 1,440 values (None: invalid; outage minutes are left out later)."""
        rng = self.rng
        columns: list[list[float | None]] = [[], [], [], [], []]
        for minute in minutes:
            volts = 230 + 2 * math.sin(minute / 229) + rng.gauss(0, 0.3)
            amps = max(0.0, self.rated_a * load_factor(minute) * (1 + rng.gauss(0, 0.03)))
            pf = min(1.0, 0.92 + rng.gauss(0, 0.01))
            watts = volts * amps * pf
            fifth = pf if self.has_pf else 50 + rng.gauss(0, 0.05)
            if minute not in outage:
                self.energy_wh += watts / 60
            row = self.quantise(volts, amps, watts, fifth)
            for column, value in zip(columns, row, strict=True):
                column.append(None if rng.random() < INVALID_RATE else value)
        return columns

    def quantise(self, volts: float, amps: float, watts: float, fifth: float) -> list[float]:
        if self.is_scaled:
            fifth_scale = 1000 if self.has_pf else 100
            return [
                round(volts * 10) / 10,
                round(amps * 100) / 100,
                float(round(watts)),
                round(fifth * fifth_scale) / fifth_scale,
                float(int(self.energy_wh)),
            ]
        return [f32(volts), f32(amps), f32(watts), f32(fifth), f32(self.energy_wh / 1000)]


KEYS = (
    ("voltage", SeriesKind.INSTANT, "V"),
    ("current", SeriesKind.INSTANT, "A"),
    ("power", SeriesKind.INSTANT, "W"),
    ("pf_or_freq", SeriesKind.INSTANT, ""),
    ("energy", SeriesKind.COUNTER, "Wh"),
)


def rollups_of_day(
    series: SeriesInfo, day_start: int, samples: list[Sample], last: list[Sample]
) -> list[Rollup]:
    """The day's 5-minute, hour and day rollups, built as the rollup worker builds them.

    ``last`` holds the previous day's last reading, the start of a counter's first bucket.
    The day's last bucket has no reading at its end yet (the next day is not generated), so
    its consumption stops at 23:59 and it is flagged GAP: one bucket in 288, as a running
    panel's would be if it stopped at midnight.
    """
    counter = CounterSpec() if series.kind is SeriesKind.COUNTER else None
    fine = build_rollups(
        series,
        last + samples,
        resolution=Resolution.FIVE_MINUTES,
        start=day_start,
        end=day_start + DAY,
        counter=counter,
    )
    hours = combine_rollups(fine, resolution=Resolution.HOUR, kind=series.kind)
    days = combine_rollups(hours, resolution=Resolution.DAY, kind=series.kind)
    valid = [sample for sample in samples if sample.is_valid]
    last[:] = valid[-1:] or last
    return fine + hours + days


def write_year(store: SyncTimeSeriesStore, days: int, seed: int) -> tuple[int, float]:
    rng = random.Random(seed)
    devices = [Device(i, rng) for i in range(DEVICES)]
    infos = [
        [
            store.register_series(f"dev{d.index:03}", key, kind=kind, unit=unit, period_s=PERIOD_S)
            for key, kind, unit in KEYS
        ]
        for d in devices
    ]
    last: dict[int, list[Sample]] = {info.series_id: [] for row in infos for info in row}
    points = 0
    started = time.perf_counter()
    for day_index in range(days):
        day_start = EPOCH + day_index * DAY
        batch: list[tuple[int, Sample]] = []
        buckets: list[Rollup] = []
        for device, series_infos in zip(devices, infos, strict=True):
            outage = range(0)
            if rng.random() < OUTAGE_RATE:
                begin = rng.randrange(1440)
                outage = range(begin, begin + rng.randrange(60, 361))
            columns = device.day(range(1440), outage)
            for info, column in zip(series_infos, columns, strict=True):
                sid = info.series_id
                samples = [
                    Sample(day_start + m * PERIOD_S, v)
                    if v is not None
                    else Sample.invalid(day_start + m * PERIOD_S)
                    for m, v in enumerate(column)
                    if m not in outage
                ]
                batch.extend((sid, s) for s in samples)
                buckets.extend(rollups_of_day(info, day_start, samples, last[sid]))
        batch.sort(key=lambda item: (item[1].ts, item[0]))  # poll rounds come in time order
        # Seal the last hour of the day before on its own, as a running panel does at 00:10
        # (one batch mixing both days would interleave their chunks' pages).
        store.seal(day_start)
        store.append(batch)
        store.write_rollups(buckets)
        points += len(batch)
        if day_index % 10 == 9:
            rate = points / (time.perf_counter() - started)
            print(f"day {day_index + 1}/{days}: {points:,} points, {rate:,.0f}/s", flush=True)
    store.seal(EPOCH + days * DAY + DAY)
    store.checkpoint()
    return points, time.perf_counter() - started


def timed(fn, repeat: int) -> tuple[float, float, object]:
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)]
    return statistics.median(times), p99, result


def measure(store: SyncTimeSeriesStore, days: int, repeat: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed + 1)
    end = EPOCH + days * DAY
    window = min(30, days) * DAY
    series = store.series()
    instants = [s.series_id for s in series if s.kind is SeriesKind.INSTANT]
    counters = [s.series_id for s in series if s.kind is SeriesKind.COUNTER][:100]

    def raw_trend():
        return sum(1 for _ in store.read_raw(rng.choice(instants), end - window, end))

    def rollup_trend():
        sid = rng.choice(instants)
        return len(store.read_rollups(sid, Resolution.FIVE_MINUTES, end - window, end))

    month = min(30, max(1, days // 2)) * DAY  # "this month and the previous one"

    def overview():
        this = store.totals(counters, Resolution.DAY, end - month, end)
        previous = store.totals(counters, Resolution.DAY, end - 2 * month, end - month)
        return len(this) + len(previous)

    results: dict[str, object] = {"window_days": window // DAY, "month_days": month // DAY}
    for name, fn in (("raw", raw_trend), ("rollup5", rollup_trend), ("overview", overview)):
        fn()  # warm the page cache, as a running panel has it
        p50, p99, out = timed(fn, repeat)
        results[name] = (p50, p99, out)
    return results


def table_sizes(store: SyncTimeSeriesStore) -> list[tuple[str, int]]:
    try:
        return store.call(
            lambda c: c.execute(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            ).fetchall()
        )
    except Exception:  # noqa: BLE001 - dbstat is optional in SQLite builds
        return []


def machine() -> str:
    cpu = "unknown"
    with Path("/proc/cpuinfo").open() as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs (nproc), {cpu}, Python {platform.python_version()}"


def report(args, points: int, write_s: float, file_bytes: int, sizes, results) -> str:
    command = "bench/datalog/store.py " + " ".join(sys.argv[1:])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    raw, roll, over = results["raw"], results["rollup5"], results["overview"]
    free_bytes = results["free_bytes"]
    lines = [
        "# Datalog storage benchmark",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; commit {commit}",
        f"- machine: {machine()}",
        f"- command: `.venv/bin/python {command}`",
        f"- data: {args.days} days x 500 one-minute series = {points:,} points "
        f"(invalid ~0.5 %, outages left out)",
        f"- write time (append + seal + rollups, one process): {write_s:,.0f} s "
        f"({points / write_s:,.0f} points/s)",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| bytes per point (whole file after checkpoint, incl. rollups and indexes) | "
        f"{file_bytes / points:.2f} ({file_bytes:,} B) | <= 4 |",
        f"| {results['window_days']}-day trend, raw 1 min ({raw[2]:,} samples) p50 / p99 | "
        f"{raw[0]:.1f} / {raw[1]:.1f} ms | < 100 ms |",
        f"| {results['window_days']}-day trend, 5-min rollups ({roll[2]:,} buckets) p50 / p99 | "
        f"{roll[0]:.1f} / {roll[1]:.1f} ms | < 100 ms |",
        f"| overview: day totals of 100 counters, {results['month_days']} days + the "
        f"{results['month_days']} before, p50 / p99 | "
        f"{over[0]:.1f} / {over[1]:.1f} ms | < 300 ms |",
        "",
        f"Latencies over {args.repeat} queries each (random series), page cache warm.",
        f"Free pages left by sealed rows (reused by the next days): {free_bytes:,} B.",
    ]
    if sizes:
        lines += ["", "| table / index | bytes | bytes per point |", "|---|---|---|"]
        lines += [f"| {name} | {size:,} | {size / points:.3f} |" for name, size in sizes]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "panelhub-bench"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).parent.parent / "results" / "datalog-storage.md",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    work = args.work_dir / f"datalog-{os.getpid()}"
    db = open_datalog(work / "datalog.sqlite")
    try:
        store = SyncTimeSeriesStore(db)
        points, write_s = write_year(store, args.days, args.seed)
        file_bytes = store.stats().file_bytes
        print(
            f"{points:,} points in {write_s:,.0f} s; {file_bytes / points:.2f} B/point", flush=True
        )
        results = measure(store, args.days, args.repeat, args.seed)
        results["free_bytes"] = store.call(
            lambda c: (
                c.execute("PRAGMA freelist_count").fetchone()[0]
                * c.execute("PRAGMA page_size").fetchone()[0]
            )
        )
        text = report(args, points, write_s, file_bytes, table_sizes(store), results)
    finally:
        db.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
