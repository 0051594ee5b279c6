#!/usr/bin/env python3
"""Paced Modbus TCP load: a fixed rate of "read 10 holding registers" through the gateway.

Open loop with one request outstanding per connection: connection c of N sends its k-th
request at ``start + (k + c / N) * N / rate``, or as soon as its previous answer is in when
it is behind (a send more than ``LATE_S`` after its slot counts as late). Latency runs from
handing the request to the kernel to having parsed the whole answer (time.perf_counter).

Protocol with the harness (``run.py``): print ``ready`` once every connection is open, read
one JSON line ``{"start": t, "end": t, "windows": {name: [from, to]}}`` in
``time.monotonic()`` seconds (one clock for every process on the host), run, and print one
JSON line with a summary per window. Loopback only; bounded by ``end`` and ``--max-s``.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Final

import uvloop
from stats import in_window, summary_ms

REGISTER_ADDRESS: Final = 3027  # three-phase meter: V L1-N, L2-N, L3-N ... (holding registers)
REGISTER_COUNT: Final = 10
FUNCTION_CODE: Final = 3
LATE_S: Final = 0.005
RESPONSE_BYTES: Final = 9 + 2 * REGISTER_COUNT  # MBAP (7) + fc + byte count + data


@dataclass
class Record:
    sent_at: list[float] = field(default_factory=list)  # monotonic
    latency_s: list[float] = field(default_factory=list)
    late_at: list[float] = field(default_factory=list)
    errors_at: list[float] = field(default_factory=list)
    timeouts_at: list[float] = field(default_factory=list)


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connection(
    index: int, stream: Stream, args: argparse.Namespace, start: float, end: float, record: Record
) -> None:
    reader, writer = stream
    unit = 1 + index % args.units
    interval = args.connections / args.rate
    slot = start + index / args.connections * interval
    transaction_id = 0
    try:
        while slot < end:
            delay = slot - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            if now >= end:
                break
            if now - slot > LATE_S:
                record.late_at.append(now)
            transaction_id = (transaction_id + 1) & 0xFFFF
            request = struct.pack(
                ">HHHBBHH", transaction_id, 0, 6, unit, FUNCTION_CODE, REGISTER_ADDRESS,
                REGISTER_COUNT,
            )  # fmt: skip
            sent = time.perf_counter()
            writer.write(request)
            try:
                answer = await asyncio.wait_for(
                    reader.readexactly(RESPONSE_BYTES), timeout=args.timeout_s
                )
            except TimeoutError:
                record.timeouts_at.append(now)
                return  # the stream is out of step now; this connection stops
            except asyncio.IncompleteReadError:
                record.errors_at.append(now)
                return
            latency = time.perf_counter() - sent
            tid, _, _, _, fc, count = struct.unpack(">HHHBBB", answer[:9])
            if tid != transaction_id or fc != FUNCTION_CODE or count != 2 * REGISTER_COUNT:
                record.errors_at.append(now)
                return
            record.sent_at.append(now)
            record.latency_s.append(latency)
            slot += interval
    finally:
        writer.close()


def summarise(record: Record, windows: dict[str, list[float]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, window in windows.items():
        latencies = [
            lat for t, lat in zip(record.sent_at, record.latency_s, strict=True)
            if in_window(t, window)
        ]  # fmt: skip
        summary = summary_ms(latencies)
        summary["tx_per_s"] = round(len(latencies) / (window[1] - window[0]), 1)
        for key, times in (
            ("late", record.late_at),
            ("errors", record.errors_at),
            ("timeouts", record.timeouts_at),
        ):
            summary[key] = sum(1 for t in times if in_window(t, window))
        result[name] = summary
    return result


async def main_async(args: argparse.Namespace) -> None:
    record = Record()
    # Every connection is open before saying ready: the rate starts on time.
    streams = [await asyncio.open_connection(args.host, args.port) for _ in range(args.connections)]
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    plan = json.loads(line)
    start, end = float(plan["start"]), min(float(plan["end"]), time.monotonic() + args.max_s)
    tasks = [
        asyncio.create_task(connection(index, stream, args, start, end, record))
        for index, stream in enumerate(streams)
    ]
    await asyncio.gather(*tasks)
    print(json.dumps({"windows": summarise(record, plan["windows"])}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=1000.0, help="transactions per second")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--units", type=int, default=4, help="unit IDs 1..N, one per device")
    parser.add_argument("--timeout-s", type=float, default=2.0)
    parser.add_argument("--max-s", type=float, default=600.0)
    args = parser.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error("loopback only")
    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
