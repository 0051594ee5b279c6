#!/usr/bin/env python3
"""Simulated meters for the web benchmark: N Modbus TCP servers from ``panelhub.sim``.

Each server holds one three-phase meter at unit 1 and listens on a free loopback port.
Prints one JSON line ``{"ports": [...]}`` once every server listens, then serves until
SIGTERM, or ``--max-s`` seconds at the latest (a benchmark never leaves a process behind).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

import uvloop

from panelhub.sim import Meter, SimulatorSpec, TcpServerSpec, run_simulator
from panelhub.sim.kinds import MeterKind


async def serve(count: int, max_s: float) -> None:
    spec = SimulatorSpec(
        tcp_servers=tuple(
            TcpServerSpec({1: Meter(MeterKind.THREE_PHASE, seed=index + 1)})
            for index in range(count)
        )
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with run_simulator(spec) as handle:
        print(json.dumps({"ports": [endpoint.port for endpoint in handle.tcp]}), flush=True)
        try:
            async with asyncio.timeout(max_s):
                await stop.wait()
        except TimeoutError:
            print("sim_devices: --max-s reached, stopping", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--max-s", type=float, default=1800.0)
    args = parser.parse_args()
    uvloop.run(serve(args.servers, args.max_s))


if __name__ == "__main__":
    main()
