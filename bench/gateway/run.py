#!/usr/bin/env python3
"""Gateway benchmark: the same closed-loop load against the device directly and through gateways.

Three scenarios, all on loopback, in one go:

``tcp``       TCP clients -> {direct, PanelHub, modbus-proxy, bare forwarder} -> fast TCP device.
``rtu``       TCP clients -> {PanelHub, pymodbus forwarder} -> pty pair -> fast RTU device,
              against an RTU client on the pty directly (no baud timing).
``rtu-paced`` the same at 19,200 baud 8E1 with the device keeping real line timing.

The load is ``../shared/tools/modbus_load.py`` (relative to the repository root), run
with this interpreter. Results go to ``bench/results/gateway.md``; see bench/README.md.

Example::

    .venv/bin/python bench/gateway/run.py --duration-s 5 --warmup-s 1
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from processes import (
    LOOPBACK,
    Placement,
    PtyPair,
    Service,
    StartError,
    free_port,
    pin_process,
    placement_for,
    start_pty_pair,
)
from report import DIRECT_RTU, DIRECT_RTU_T35, HUB_NO_GAP, HUB_T35, T35_PACED_US, Row, write_report

HERE: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = HERE.parent.parent
LOAD_TOOL: Final = REPO_ROOT.parent / "shared" / "tools" / "modbus_load.py"
RESULTS_PATH: Final = REPO_ROOT / "bench" / "results" / "gateway.md"
BIN_DIR: Final = Path(sys.executable).parent
UNIT_ID: Final = 1
# All 64 load connections come from 127.0.0.1; PanelHub's default of 16 per client address
# would refuse 48 of them (and modbus_load does not count a connection closed right away).
LISTENER_MAX_CONNECTIONS: Final = 128
LOAD_SLACK_S: Final = 30.0  # modbus_load's own hard deadline is warmup + duration + 2 timeouts + 5


@dataclass(frozen=True)
class Options:
    duration_s: float
    warmup_s: float
    timeout_s: float
    tcp_clients: tuple[int, ...]
    rtu_clients: tuple[int, ...]
    scenarios: tuple[str, ...]
    repeat: int
    output: Path
    workdir: Path
    placement: Placement | None  # TCP scenario
    rtu_placement: Placement | None  # RTU scenarios: see ``placements``

    def cpus(self, role: Literal["client", "target", "helper"]) -> frozenset[int] | None:
        return None if self.placement is None else getattr(self.placement, role)


@dataclass(frozen=True)
class Line:
    """How the serial line is configured for one RTU scenario."""

    baud_rate: int
    parity: str
    is_paced: bool


@dataclass(frozen=True)
class Endpoint:
    """Where the load goes, and which process's CPU time to report."""

    port: int | None = None
    serial: str | None = None
    baud_rate: int | None = None
    gap_ms: float = 0.0  # the direct RTU client's silence after each response
    service: Service | None = None


Starter = Callable[[Options, Any, contextlib.ExitStack], Endpoint]


def run_load(opts: Options, endpoint: Endpoint, *, clients: int, label: str) -> dict[str, Any]:
    argv = [sys.executable, str(LOAD_TOOL), "-n", str(clients), "--unit", str(UNIT_ID)]
    argv += ["--duration", str(opts.duration_s), "--warmup", str(opts.warmup_s)]
    argv += ["--timeout", str(opts.timeout_s), "--label", label]
    if endpoint.serial is not None:
        argv += ["--mode", "rtu", "--serial", endpoint.serial, "--baud", str(endpoint.baud_rate)]
        argv += ["--gap-ms", str(endpoint.gap_ms)] if endpoint.gap_ms else []
    else:
        argv += ["--mode", "tcp", "--host", LOOPBACK, "--port", str(endpoint.port)]
    limit_s = opts.warmup_s + opts.duration_s + 2 * opts.timeout_s + LOAD_SLACK_S
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as load:
        cpus = opts.cpus("client")
        if cpus is not None:
            pin_process(load.pid, cpus)
        try:
            stdout, stderr = load.communicate(timeout=limit_s)
        finally:
            load.kill()
    if load.returncode != 0:
        raise StartError(f"modbus_load failed ({load.returncode}): {stderr.strip()}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


def measure(opts: Options, endpoint: Endpoint, *, clients: int, scenario: str, target: str) -> Row:
    service = endpoint.service
    if service is None:
        load = run_load(opts, endpoint, clients=clients, label=f"{scenario}/{target}")
        return Row(scenario, target, clients, load, None)
    cpu_before, lines_before = service.cpu_s(), service.log_line_count()
    load = run_load(opts, endpoint, clients=clients, label=f"{scenario}/{target}")
    service.check_alive()
    busy_s = service.cpu_s() - cpu_before
    cpu_percent = 100.0 * busy_s / (opts.warmup_s + opts.duration_s)
    log_lines = service.log_line_count() - lines_before
    return Row(scenario, target, clients, load, cpu_percent, log_lines=log_lines)


def spawn(
    stack: contextlib.ExitStack,
    opts: Options,
    name: str,
    argv: list[str],
    *,
    role: Literal["target", "helper"] = "target",
) -> Service:
    service = Service(name, argv, opts.workdir / f"{name}.log")
    stack.callback(service.stop)
    service.start()
    service.pin(opts.cpus(role))
    return service


def bench_script(name: str) -> str:
    return str(HERE / name)


# --- TCP scenario -------------------------------------------------------------------


def start_tcp_device(stack: contextlib.ExitStack, opts: Options) -> Endpoint:
    port = free_port()
    argv = [sys.executable, bench_script("fast_device.py"), "tcp", "--port", str(port)]
    device = spawn(stack, opts, "device-tcp", argv)
    device.wait_port(port)
    return Endpoint(port=port, service=device)


def start_panelhub(
    opts: Options, stack: contextlib.ExitStack, *, name: str, bus_toml: str
) -> Endpoint:
    port = free_port()
    config = opts.workdir / f"{name}.toml"
    config.write_text(panelhub_config(port, bus_toml))
    service = spawn(stack, opts, name, [str(BIN_DIR / "panelhub"), "run", "--config", str(config)])
    service.wait_port(port)
    return Endpoint(port=port, service=service)


def panelhub_config(port: int, bus_toml: str) -> str:
    return f"""log_level = "WARNING"

[gateway]
request_ttl_ms = 6000

[[listeners]]
name = "bench"
host = "{LOOPBACK}"
port = {port}
max_connections = {LISTENER_MAX_CONNECTIONS}
max_connections_per_client = {LISTENER_MAX_CONNECTIONS}

[[buses]]
{bus_toml}
[[routes]]
unit_id = {UNIT_ID}
bus = "dut"
target_unit_id = {UNIT_ID}
"""


def tcp_direct(opts: Options, device: Endpoint, _stack: contextlib.ExitStack) -> Endpoint:
    assert device.service is not None
    device.service.pin(opts.cpus("target"))  # measured directly, the device is the target
    return device


def tcp_panelhub(opts: Options, device: Endpoint, stack: contextlib.ExitStack) -> Endpoint:
    bus = f"""kind = "tcp"
name = "dut"
host = "{LOOPBACK}"
port = {device.port}
response_timeout_s = 1.0
max_in_flight = 1
"""
    return start_panelhub(opts, stack, name="panelhub-tcp", bus_toml=bus)


def tcp_modbus_proxy(opts: Options, device: Endpoint, stack: contextlib.ExitStack) -> Endpoint:
    port = free_port()
    argv = [str(BIN_DIR / "modbus-proxy"), "-b", f"{LOOPBACK}:{port}"]
    argv += ["--modbus", f"tcp://{LOOPBACK}:{device.port}", "--timeout", "1.0"]
    service = spawn(stack, opts, "modbus-proxy", argv)
    service.wait_port(port)
    return Endpoint(port=port, service=service)


def tcp_bare(opts: Options, device: Endpoint, stack: contextlib.ExitStack) -> Endpoint:
    port = free_port()
    argv = [sys.executable, bench_script("bare_forwarder.py"), "--port", str(port)]
    argv += ["--device-port", str(device.port)]
    service = spawn(stack, opts, "bare-forwarder", argv)
    service.wait_port(port)
    return Endpoint(port=port, service=service)


TCP_TARGETS: Final[tuple[tuple[str, Starter], ...]] = (
    ("direct", tcp_direct),
    ("PanelHub", tcp_panelhub),
    ("modbus-proxy", tcp_modbus_proxy),
    ("bare forwarder", tcp_bare),
)


def run_tcp(opts: Options) -> list[Row]:
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        device = start_tcp_device(stack, opts)
        for name, starter in TCP_TARGETS:
            assert device.service is not None
            device.service.pin(opts.cpus("helper"))
            start = functools.partial(starter, opts, device)
            rows += run_target(opts, "tcp", name, opts.tcp_clients, start)
    return rows


def run_target(
    opts: Options,
    scenario: str,
    name: str,
    clients: Sequence[int],
    start: Callable[[contextlib.ExitStack], Endpoint],
) -> list[Row]:
    """Start one target, run every client count against it, stop it; a failed start is a row."""
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        try:
            endpoint = start(stack)
            for count in clients:
                rows.append(measure(opts, endpoint, clients=count, scenario=scenario, target=name))
                print(f"  {scenario:9} {name:26} n={count:<3} {brief(rows[-1])}", flush=True)
        except (StartError, subprocess.TimeoutExpired) as exc:
            note = str(exc).strip().replace("\n", " | ")
            print(f"  {scenario:9} {name:18} skipped: {note[:300]}", flush=True)
            rows.append(
                Row(scenario, name, clients[min(len(rows), len(clients) - 1)], None, None, note)
            )
    return rows


def median_run(runs: list[Row]) -> Row:
    """The run with the median throughput, carrying the ranges over all runs."""
    loads = sorted(
        ((row, row.load) for row in runs if row.load), key=lambda pair: pair[1]["tx_per_s"]
    )
    if len(loads) < 2:
        return loads[0][0] if loads else runs[0]
    rates = [load["tx_per_s"] for _, load in loads]
    p50s = sorted(load["p50_us"] for _, load in loads)
    return dataclasses.replace(
        loads[(len(loads) - 1) // 2][0],
        tx_per_s_range=(rates[0], rates[-1]),
        p50_us_range=(p50s[0], p50s[-1]),
    )


def aggregate(rows: list[Row]) -> list[Row]:
    """One row per (scenario, target, clients), in first-seen order."""
    groups: dict[tuple[str, str, int], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.scenario, row.target, row.clients), []).append(row)
    return [median_run(runs) for runs in groups.values()]


def brief(row: Row) -> str:
    load = row.load or {}
    return (
        f"{load.get('tx_per_s')} tx/s p50 {load.get('p50_us')} us p99 {load.get('p99_us')} us "
        f"err {load.get('errors')} to {load.get('timeouts')}"
    )


# --- RTU scenarios ------------------------------------------------------------------


def start_rtu_line(stack: contextlib.ExitStack, opts: Options, line: Line) -> PtyPair:
    """A fresh pty pair with the fast RTU device on end ``b`` (the device end's core)."""
    relay, pair = start_pty_pair(opts.workdir, log_path=opts.workdir / "pty.log")
    stack.callback(relay.stop)
    relay.pin(opts.cpus("helper"))
    argv = [sys.executable, bench_script("fast_device.py"), "rtu", "--serial", pair.b]
    argv += ["--baud", str(line.baud_rate), "--parity", line.parity]
    argv += ["--pace"] if line.is_paced else []
    device = spawn(stack, opts, "device-rtu", argv, role="helper")
    time.sleep(0.2)  # the device opens the pty and sets raw mode
    device.check_alive()
    return pair


def rtu_direct(
    opts: Options, line: Line, stack: contextlib.ExitStack, *, gap_ms: float = 0.0
) -> Endpoint:
    pair = start_rtu_line(stack, opts, line)
    return Endpoint(serial=pair.a, baud_rate=line.baud_rate, gap_ms=gap_ms)


def rtu_panelhub(
    opts: Options, line: Line, stack: contextlib.ExitStack, *, frame_gap_s: float | None
) -> Endpoint:
    """PanelHub on the line; ``frame_gap_s`` None keeps its default t3.5 silence."""
    pair = start_rtu_line(stack, opts, line)
    bus = f"""kind = "rtu"
name = "dut"
device = "{pair.a}"
baud_rate = {line.baud_rate}
parity = "{line.parity}"
stop_bits = 1
response_timeout_s = 1.0
"""
    if frame_gap_s is not None:
        bus += f"frame_gap_s = {frame_gap_s}\n"
    return start_panelhub(opts, stack, name="panelhub-rtu", bus_toml=bus)


def rtu_pymodbus(opts: Options, line: Line, stack: contextlib.ExitStack) -> Endpoint:
    pair = start_rtu_line(stack, opts, line)
    port = free_port()
    argv = [sys.executable, bench_script("pymodbus_forwarder.py"), "--port", str(port)]
    # Parity N: on this kernel pyserial's second tcsetattr() with PARENB fails with EINVAL on
    # a pty, and pymodbus reconfigures the port after opening it. A pty carries no parity
    # bit anyway; the device keeps the 8E1 timing whatever the client asks for.
    argv += ["--serial", pair.a, "--baud", str(line.baud_rate), "--parity", "N"]
    service = spawn(stack, opts, "pymodbus-forwarder", argv)
    service.wait_port(port)
    return Endpoint(port=port, service=service)


def rtu_bare(opts: Options, line: Line, stack: contextlib.ExitStack) -> Endpoint:
    pair = start_rtu_line(stack, opts, line)
    port = free_port()
    argv = [sys.executable, bench_script("bare_forwarder.py"), "--port", str(port)]
    service = spawn(stack, opts, "bare-forwarder-rtu", [*argv, "--serial", pair.a])
    service.wait_port(port)
    return Endpoint(port=port, service=service)


# (name, starter, whether it runs with every --rtu-clients count or with one client only,
# whether it runs only with the paced line). A serial line has one client, so the direct
# client always runs with n = 1. With real line timing the direct client also runs keeping
# one t3.5 of silence after each response, as a master on a real line must: that is the
# reference for PanelHub's default, which keeps it too.
RTU_TARGETS: Final[tuple[tuple[str, Starter, bool, bool], ...]] = (
    (DIRECT_RTU, rtu_direct, False, False),
    (DIRECT_RTU_T35, functools.partial(rtu_direct, gap_ms=T35_PACED_US / 1000), False, True),
    (HUB_NO_GAP, functools.partial(rtu_panelhub, frame_gap_s=0.0), True, False),
    (HUB_T35, functools.partial(rtu_panelhub, frame_gap_s=None), False, False),
    ("pymodbus forwarder", rtu_pymodbus, True, False),
    ("bare forwarder", rtu_bare, True, False),
)
LINES: Final = {
    "rtu": Line(baud_rate=115_200, parity="N", is_paced=False),
    "rtu-paced": Line(baud_rate=19_200, parity="E", is_paced=True),
}


def run_rtu(opts: Options, scenario: str) -> list[Row]:
    line = LINES[scenario]
    opts = dataclasses.replace(opts, placement=opts.rtu_placement)
    rows: list[Row] = []
    for name, starter, is_multi_client, is_paced_only in RTU_TARGETS:
        if is_paced_only and not line.is_paced:
            continue
        # At 19,200 baud a queue of clients only measures the line: one client says it all.
        clients = opts.rtu_clients if is_multi_client and not line.is_paced else (1,)
        rows += run_target(opts, scenario, name, clients, functools.partial(starter, opts, line))
    return rows


# --- command line -------------------------------------------------------------------


def parse_counts(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration-s", type=float, default=5.0, help="measured time per run")
    parser.add_argument("--warmup-s", type=float, default=1.0, help="uncounted time per run")
    parser.add_argument("--timeout-s", type=float, default=2.0, help="per-request timeout")
    parser.add_argument("--tcp-clients", type=parse_counts, default=(1, 8, 64))
    parser.add_argument("--rtu-clients", type=parse_counts, default=(1, 8))
    parser.add_argument(
        "--scenarios", type=lambda t: tuple(t.split(",")), default=("tcp", "rtu", "rtu-paced")
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median run is kept")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument(
        "--placement",
        choices=["auto", "shared", "ends", "spread", "none"],
        default="auto",
        help="auto: 'shared' for TCP, 'ends' for RTU (see bench/README.md)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - {"tcp", *LINES}
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}")
    workdir = Path(tempfile.mkdtemp(prefix="panelhub-bench-"))
    cpus = os.sched_getaffinity(0)
    tcp_mode, rtu_mode = ("shared", "ends") if args.placement == "auto" else (args.placement,) * 2
    opts = Options(
        args.duration_s,
        args.warmup_s,
        args.timeout_s,
        args.tcp_clients,
        args.rtu_clients,
        args.scenarios,
        max(1, args.repeat),
        args.output,
        workdir,
        placement_for(cpus, tcp_mode),
        placement_for(cpus, rtu_mode),
    )
    return opts if args.keep_logs else _with_cleanup(opts)


def _with_cleanup(opts: Options) -> Options:
    import atexit  # noqa: PLC0415 - only needed when logs are not kept

    atexit.register(shutil.rmtree, opts.workdir, ignore_errors=True)
    return opts


def main(argv: list[str]) -> None:
    if not LOAD_TOOL.exists():
        raise SystemExit(f"load tool not found: {LOAD_TOOL}")
    opts = parse_args(argv)
    print(f"work directory (logs, configs): {opts.workdir}", flush=True)
    rows: list[Row] = []
    # Rounds, not back-to-back repeats: a slow spell on the host then hits every target.
    for round_number in range(1, opts.repeat + 1):
        print(f"round {round_number} of {opts.repeat}", flush=True)
        for scenario in opts.scenarios:
            rows += run_tcp(opts) if scenario == "tcp" else run_rtu(opts, scenario)
    rows = aggregate(rows)
    command = " ".join([display_python(), *sys.argv])
    write_report(
        opts.output,
        rows,
        command=command,
        workdir=opts.workdir,
        relay="socat" if shutil.which("socat") else "python pty_relay.py",
        placement=f"TCP: {describe(opts.placement)}. RTU: {describe(opts.rtu_placement)}",
    )
    print(f"wrote {opts.output}")


def describe(placement: Placement | None) -> str:
    if placement is None:
        return "not pinned (left to the scheduler)"
    return (
        f"load client on CPU {sorted(placement.client)}; gateway (or the device measured "
        f"directly over TCP) on CPU {sorted(placement.target)}; device behind a gateway, RTU "
        f"device and pty relay on CPU {sorted(placement.helper)}"
    )


def display_python() -> str:
    try:
        return str(Path(sys.executable).relative_to(Path.cwd()))
    except ValueError:
        return sys.executable


if __name__ == "__main__":
    main(sys.argv[1:])
