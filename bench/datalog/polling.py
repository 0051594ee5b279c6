#!/usr/bin/env python3
"""Datalogger polling cost: PanelHub's CPU while it logs 5,000 samples a minute with SCADA busy.

Runs, on loopback: simulated Eastron SDM630 meters (44 measurements each) in a separate
process, ``panelhub run`` as a real process with those meters as devices logged every
minute, and a paced SCADA load (read 10 input registers of one meter through the gateway).
Two runs, the same SCADA load in both: polling on, and no devices at all (the peer). For
each it reads PanelHub's CPU time from /proc over a measured window and, with polling on,
counts the samples stored in that window from datalog.sqlite.

    .venv/bin/python bench/datalog/polling.py              # ~13 minutes
    .venv/bin/python bench/datalog/polling.py --quick      # ~2 minutes, a shorter window

Writes bench/results/datalog-polling.md. 5,000 samples a minute is the issue's figure for
50,000 measurements at a 10-minute period; logging 5,000 measurements every minute is the
same rate, and lets one window see every slot.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[2]
PYTHON: Final = sys.executable
MEASUREMENTS_PER_METER: Final = 44  # src/panelhub/devices/templates/eastron-sdm630.toml
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
SCADA_UNIT: Final = 100
#: A reply later than this is lost: the gateway drops requests past their time-to-live (6 s).
REPLY_TIMEOUT_S: Final = 8.0
COMMAND: Final = ".venv/bin/python bench/datalog/polling.py"

SIM_CODE: Final = """
import asyncio, json, sys
from contextlib import AsyncExitStack
from panelhub.sim import Meter, serve_tcp
async def main(servers, units, max_s):
    async with AsyncExitStack() as stack:
        ports = []
        for s in range(servers):
            meters = {u: Meter(template="eastron-sdm630", seed=s * 1000 + u)
                      for u in range(1, units + 1)}
            ports.append((await stack.enter_async_context(serve_tcp(meters))).port)
        print(json.dumps({"ports": ports}), flush=True)
        await asyncio.sleep(max_s)
asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(
    data_dir: Path,
    ports: list[int],
    units: int,
    modbus_port: int,
    *,
    devices: bool,
    period_min: int,
) -> str:
    lines = [f'data_dir = "{data_dir}"', "[web]", "enable = false", "[[listeners]]",
             'name = "scada"', f"port = {modbus_port}"]  # fmt: skip
    for index, port in enumerate(ports):
        lines += ["[[buses]]", 'kind = "tcp"', f'name = "m{index}"', 'host = "127.0.0.1"',
                  f"port = {port}", "response_timeout_s = 2.0"]  # fmt: skip
    lines += ["[[routes]]", f"unit_id = {SCADA_UNIT}", 'bus = "m0"', "target_unit_id = 1"]
    if devices:
        for index in range(len(ports)):
            for unit in range(1, units + 1):
                lines += ["[[devices]]", f'name = "m{index}-{unit}"', 'model = "eastron-sdm630"',
                          f'bus = "m{index}"', f"unit_id = {unit}",
                          f"period_min = {period_min}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


async def scada_load(port: int, rate: float, until: float, timeouts: list[float]) -> list[float]:
    """Paced reads through the gateway; latencies in ms, and the send times of those lost."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies: list[float] = []
    next_at = time.monotonic()
    transaction = 0
    while time.monotonic() < until:
        transaction = (transaction + 1) & 0xFFFF
        request = struct.pack(">HHHBBHH", transaction, 0, 6, SCADA_UNIT, 4, 0, 10)
        sent = time.perf_counter()
        writer.write(request)
        try:
            async with asyncio.timeout(REPLY_TIMEOUT_S):
                header = await reader.readexactly(7)
                await reader.readexactly(struct.unpack(">H", header[4:6])[0] - 1)
        except TimeoutError:  # dropped by the gateway (time-to-live): counted, not waited for
            timeouts.append(sent)
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        else:
            latencies.append((time.perf_counter() - sent) * 1000)
        next_at += 1 / rate
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    writer.close()
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def wait_port(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


def one_run(args: argparse.Namespace, ports: list[int], *, devices: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "var"
        modbus_port = free_port()
        cfg = Path(tmp) / "panelhub.toml"
        cfg.write_text(
            config(data_dir, ports, args.units, modbus_port, devices=devices,
                   period_min=args.period_min)
        )  # fmt: skip
        panel = subprocess.Popen(
            [PYTHON, "-m", "panelhub", "run", "--config", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        try:
            wait_port(modbus_port, 30)
            if args.cpu is not None:
                os.sched_setaffinity(panel.pid, {args.cpu})
            time.sleep(args.warmup_s)
            start_wall, start_cpu = time.time(), cpu_s(panel.pid)
            window_s = args.window_s if devices else args.peer_window_s or args.window_s
            timeouts: list[float] = []
            until = time.monotonic() + window_s
            latencies = asyncio.run(scada_load(modbus_port, args.rate, until, timeouts))
            end_wall, end_cpu = time.time(), cpu_s(panel.pid)
            stored = invalid = 0
            if devices:
                time.sleep(2)  # the last slot's batch
                db = sqlite3.connect(data_dir / "datalog.sqlite")
                stored, invalid = db.execute(
                    "SELECT COUNT(*), COUNT(*) - COUNT(bits) FROM raw_row WHERE ts >= ? AND ts < ?",
                    (int(start_wall), int(end_wall)),
                ).fetchone()
                db.close()
        finally:
            panel.terminate()
            _, err = panel.communicate(timeout=30)
        minutes = (end_wall - start_wall) / 60
        return {
            "cpu_core": (end_cpu - start_cpu) / (end_wall - start_wall),
            "samples_per_min": stored / minutes,
            "invalid": invalid,
            "p50": percentile(latencies, 0.5),
            "p99": percentile(latencies, 0.99),
            "requests": len(latencies),
            "timeouts": len(timeouts),
            "stderr_tail": err.decode(errors="replace")[-500:],
            "stderr": err.decode(errors="replace"),
        }


def report(args: argparse.Namespace, on: dict[str, Any], off: dict[str, Any]) -> str:
    devices = args.servers * args.units
    cpu_model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor())  # fmt: skip
    return "\n".join(
        [
            "# Datalogger polling benchmark",
            "",
            f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
            f"- machine: {os.cpu_count()} CPUs, {cpu_model}, Python {platform.python_version()}",
            f"- command: `{' '.join([COMMAND, *sys.argv[1:]])}`",
            f"- load: {devices} simulated SDM630 meters ({devices * MEASUREMENTS_PER_METER:,} "
            f"measurements) logged every {args.period_min} min, on {args.servers} TCP servers in "
            "another process; "
            f"SCADA reads through the gateway at {args.rate:.0f} requests/s; PanelHub pinned to "
            f"CPU {args.cpu}; window {args.window_s:.0f} s after {args.warmup_s:.0f} s of warm-up",
            "",
            "| figure | polling on | no devices (peer) | target |",
            "| --- | --- | --- | --- |",
            f"| PanelHub CPU, fraction of one core | {on['cpu_core']:.3f} | {off['cpu_core']:.3f} "
            "| polling <= 0.25 |",
            f"| samples stored per minute | {on['samples_per_min']:,.0f} | - | 5,000 (reference "
            "device: 500) |",
            f"| samples invalid (not answered) in the window | {on['invalid']} | - | 0 |",
            f"| SCADA p50 / p99 (ms) | {on['p50']:.2f} / {on['p99']:.2f} | {off['p50']:.2f} / "
            f"{off['p99']:.2f} | |",
            f"| SCADA requests answered | {on['requests']:,} | {off['requests']:,} | |",
            f"| SCADA requests unanswered after {REPLY_TIMEOUT_S:.0f} s | {on['timeouts']:,} | "
            f"{off['timeouts']:,} | 0 |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--units", type=int, default=57)  # 2 x 57 x 44 = 5,016 a minute
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--warmup-s", type=float, default=65.0)
    parser.add_argument("--window-s", type=float, default=300.0)  # one rollup pass in it
    parser.add_argument("--period-min", type=int, default=1, help="the devices' logging period")
    parser.add_argument("--peer-window-s", type=float, default=None, help="default: --window-s")
    parser.add_argument("--cpu", type=int, default=1 if (os.cpu_count() or 1) > 1 else None)
    parser.add_argument("--quick", action="store_true", help="a 60 s window")
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/datalog-polling.md")
    parser.add_argument("--log", type=Path, help="write PanelHub's whole log (polling on) here")
    args = parser.parse_args()
    if args.quick:
        args.window_s, args.warmup_s = 60.0, 30.0
    max_s = 4 * (args.warmup_s + args.window_s) + 600
    sim = subprocess.Popen(
        [PYTHON, "-c", SIM_CODE, str(args.servers), str(args.units), str(max_s)],
        stdout=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        ports = json.loads(sim.stdout.readline())["ports"]
        if args.cpu is not None:
            os.sched_setaffinity(sim.pid, {0})
            os.sched_setaffinity(0, {0})
        on = one_run(args, ports, devices=True)
        off = one_run(args, ports, devices=False)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    text = report(args, on, off)
    args.output.write_text(text)
    print(text)
    print("panelhub stderr (polling on):", on["stderr_tail"], file=sys.stderr)
    if args.log is not None:
        args.log.write_text(on["stderr"])


if __name__ == "__main__":
    main()
