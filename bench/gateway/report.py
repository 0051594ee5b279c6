"""Turns benchmark rows into ``bench/results/gateway.md``: tables, figures against targets, host.

The targets come from the benchmark issue; they are named constants here so that a
changed target shows up in review.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

MIN_RATIO_VS_MODBUS_PROXY: Final = 2.0  # at 8 and 64 clients
MAX_ADDED_P50_US: Final = 120.0  # over the direct p50, at 1 client
MIN_RTU_SHARE_OF_DIRECT: Final = 0.80  # PanelHub tx/s over the direct RTU client's
MAX_GATEWAY_SHARE_OF_LINE: Final = 0.05  # at 19,200 baud with real line timing
PACED_BAUD: Final = 19_200
PACED_BITS_PER_CHAR: Final = 11  # 8E1: start + 8 data + parity + stop
REQUEST_BYTES: Final = 8  # unit, fc, address, count, crc
RESPONSE_BYTES: Final = 25  # unit, fc, byte count, 10 registers, crc
PACKAGES: Final = ("pymodbus", "modbus-proxy", "uvloop", "pyserial", "panelhub")
LOG_LINES_SHOWN: Final = 12
T35_PACED_US: Final = 3.5 * PACED_BITS_PER_CHAR / PACED_BAUD * 1e6  # §2.5.1.1

DIRECT_RTU: Final = "direct RTU client"
DIRECT_RTU_T35: Final = "direct RTU client, t3.5 gap"
HUB_NO_GAP: Final = "PanelHub, frame_gap_s = 0"
HUB_T35: Final = "PanelHub, default t3.5 gap"


@dataclass(frozen=True)
class Row:
    """One load run (``load`` is modbus_load's JSON) or one target that could not start."""

    scenario: str
    target: str
    clients: int
    load: dict[str, Any] | None
    cpu_percent: float | None
    note: str = ""
    log_lines: int | None = None  # lines the target wrote to stderr during the run
    tx_per_s_range: tuple[float, float] | None = None  # lowest and highest of repeated runs
    p50_us_range: tuple[float, float] | None = None


def find(rows: list[Row], scenario: str, target: str, clients: int) -> dict[str, Any] | None:
    for row in rows:
        if (row.scenario, row.target, row.clients) == (scenario, target, clients):
            return row.load
    return None


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(rows: list[Row], scenario: str) -> list[str]:
    lines = [
        "| target | clients | tx/s (range) | p50 µs (range) | p99 µs "
        "| errors / timeouts / conn. failures | target process CPU % | CPU µs/tx "
        "| target log lines |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        if row.scenario != scenario:
            continue
        if row.load is None:
            lines.append(
                f"| {row.target} | {row.clients} | not measured: {row.note[:200]} | | | | | | |"
            )
            continue
        load = row.load
        cpu_per_tx = None
        if row.cpu_percent is not None and load["tx_per_s"]:
            cpu_per_tx = row.cpu_percent * 1e4 / load["tx_per_s"]
        lines.append(
            f"| {row.target} | {row.clients} | {fmt(load['tx_per_s'])}{spread(row.tx_per_s_range)} "
            f"| {fmt(load['p50_us'])}{spread(row.p50_us_range)} "
            f"| {fmt(load['p99_us'])} | {load['errors']} / {load['timeouts']} / "
            f"{load['conn_failures']} | {fmt(row.cpu_percent)} | {fmt(cpu_per_tx)} "
            f"| {fmt(row.log_lines)} |"
        )
    return lines


def spread(bounds: tuple[float, float] | None) -> str:
    if bounds is None:
        return ""
    return f" ({fmt(bounds[0])}-{fmt(bounds[1])})"


def verdict(value: float | None, *, limit: float, is_minimum: bool) -> str:
    if value is None:
        return "not measured"
    is_met = value >= limit if is_minimum else value <= limit
    return "**met**" if is_met else "**NOT met**"


def tcp_figures(rows: list[Row]) -> list[str]:
    lines = []
    for clients in (8, 64):
        hub = find(rows, "tcp", "PanelHub", clients)
        proxy = find(rows, "tcp", "modbus-proxy", clients)
        bare = find(rows, "tcp", "bare forwarder", clients)
        ratio = hub["tx_per_s"] / proxy["tx_per_s"] if hub and proxy else None
        bare_ratio = bare["tx_per_s"] / proxy["tx_per_s"] if bare and proxy else None
        lines.append(
            f"| PanelHub / modbus-proxy tx/s at {clients} clients | {fmt(ratio, 2)} "
            f"(bare forwarder: {fmt(bare_ratio, 2)}) | ≥ {MIN_RATIO_VS_MODBUS_PROXY} "
            f"| {verdict(ratio, limit=MIN_RATIO_VS_MODBUS_PROXY, is_minimum=True)} |"
        )
    direct = find(rows, "tcp", "direct", 1)

    def added(target: str) -> float | None:
        load = find(rows, "tcp", target, 1)
        return load["p50_us"] - direct["p50_us"] if load and direct else None

    hub_added = added("PanelHub")
    lines.append(
        f"| p50 added over direct at 1 client, µs | {fmt(hub_added)} (modbus-proxy: "
        f"{fmt(added('modbus-proxy'))}, bare forwarder: {fmt(added('bare forwarder'))}) "
        f"| ≤ {MAX_ADDED_P50_US:.0f} "
        f"| {verdict(hub_added, limit=MAX_ADDED_P50_US, is_minimum=False)} |"
    )
    return lines


def rtu_figures(rows: list[Row]) -> list[str]:
    direct = find(rows, "rtu", DIRECT_RTU, 1)

    def share(target: str, clients: int) -> float | None:
        load = find(rows, "rtu", target, clients)
        return load["tx_per_s"] / direct["tx_per_s"] if load and direct else None

    def percent(target: str, clients: int) -> str:
        value = share(target, clients)
        return fmt(pct(value), 1) + " %"

    lines = []
    for clients in (1, 8):
        hub = share(HUB_NO_GAP, clients)
        others = f"pymodbus forwarder: {percent('pymodbus forwarder', clients)}; bare "
        others += f"forwarder: {percent('bare forwarder', clients)}"
        if clients == 1:
            others += f"; {HUB_T35}: {percent(HUB_T35, 1)}"
        lines.append(
            f"| {HUB_NO_GAP} tx/s / direct RTU client tx/s (pty, no baud timing), {clients} "
            f"TCP client{'s' if clients > 1 else ''} | {percent(HUB_NO_GAP, clients)} "
            f"({others}) | ≥ {MIN_RTU_SHARE_OF_DIRECT:.0%} "
            f"| {verdict(hub, limit=MIN_RTU_SHARE_OF_DIRECT, is_minimum=True)} |"
        )
    return lines


def cycle_us(load: dict[str, Any] | None) -> float | None:
    """Mean time from one request to the next of a closed-loop client: 1 / throughput."""
    return 1e6 / load["tx_per_s"] if load and load["tx_per_s"] else None


def paced_figures(rows: list[Row]) -> list[str]:
    line_us = (REQUEST_BYTES + RESPONSE_BYTES) * PACED_BITS_PER_CHAR / PACED_BAUD * 1e6
    lines = []
    for target, reference in (
        (HUB_T35, DIRECT_RTU_T35),
        (HUB_NO_GAP, DIRECT_RTU),
        ("pymodbus forwarder", DIRECT_RTU),
        ("bare forwarder", DIRECT_RTU),
    ):
        gateway_us = cycle_us(find(rows, "rtu-paced", target, 1))
        direct_us = cycle_us(find(rows, "rtu-paced", reference, 1))
        own_us = gateway_us - direct_us if gateway_us and direct_us else None
        share = own_us / line_us if own_us is not None else None
        raw = (gateway_us - line_us) / line_us if gateway_us else None
        lines.append(
            f"| {target}: own time per transaction at 19,200 baud = (cycle "
            f"{fmt(gateway_us)} µs - {reference} {fmt(direct_us)} µs) / line time "
            f"{fmt(line_us)} µs | {fmt(pct(share), 2)} % (whole cycle beyond the line time: "
            f"{fmt(pct(raw), 2)} %) | < {MAX_GATEWAY_SHARE_OF_LINE:.0%} "
            f"| {verdict(share, limit=MAX_GATEWAY_SHARE_OF_LINE, is_minimum=False)} |"
        )
    return lines


def pct(fraction: float | None) -> float | None:
    return None if fraction is None else 100 * fraction


def command_output(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return ""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return done.stdout.strip()


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def package_versions() -> str:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} not installed")
    return ", ".join(versions)


def mbusd_status() -> str:
    if shutil.which("mbusd"):
        return "installed but not wired into this harness"
    policy = command_output(["apt-cache", "policy", "mbusd"])
    return (
        "not available here (not installed; `apt-cache policy mbusd` finds no package)"
        if "Candidate" not in policy
        else "packaged but not installed"
    )


def host_section(command: str, relay: str, placement: str) -> list[str]:
    socat_version = command_output(["socat", "-V"]).splitlines()
    return [
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}",
        f"- Machine: `{command_output(['uname', '-a'])}`",
        f"- CPU: {cpu_model()}, nproc = {os.cpu_count()}",
        f"- Python {platform.python_version()}; {package_versions()}",
        f"- pty relay: {relay}"
        + (f" ({socat_version[1].strip()})" if len(socat_version) > 1 else ""),
        f"- mbusd: {mbusd_status()}",
        f"- CPU placement: {placement}",
        f"- Command: `{command}`",
    ]


def log_section(workdir: Path) -> list[str]:
    lines = []
    for path in sorted(workdir.glob("panelhub-*.log")):
        text = path.read_text(errors="replace").splitlines()
        lines.append(f"- `{path.name}`: {len(text)} lines on stderr")
        lines += [f"    {line}" for line in text[:LOG_LINES_SHOWN]]
    return lines or ["- PanelHub was not started (no log)."]


SETUP_NOTES: Final = """\
Every process runs on this one host over loopback and shares its cores: the load client
(`../shared/tools/modbus_load.py`, closed loop, one request outstanding per connection),
the gateway, the device and, for RTU, the pty relay. The device is
`bench/gateway/fast_device.py`: it answers "read 10 holding registers" (FC 3) from an
in-memory array with cached responses. Each gateway holds one link to the device and one
transaction at a time on it (PanelHub: `max_in_flight = 1`). The bare forwarder
(`bench/gateway/bare_forwarder.py`) is the floor for a Python gateway that validates
nothing. PanelHub's listener gets `max_connections = max_connections_per_client = 128`:
all 64 load connections come from 127.0.0.1, its default of 16 per client address would
refuse 48 of them, and modbus_load does not count a connection that is closed at once.
"target process CPU %" is the CPU time of the target process (the device for the direct
rows) during the run, warmup included, over its wall time; "CPU µs/tx" divides that by the
measured throughput. "target log lines" counts what the target wrote to stderr in the run
(modbus-proxy logs every connection at INFO). With `--repeat` R the whole set runs R
times in rounds; each row is the run with the median throughput, and the ranges over the
rounds are shown in brackets."""

RTU_NOTES: Final = """\
The gateways (TCP in, RTU out) and the direct RTU client reach the RTU device through a pty
pair, which has no baud timing. A serial line has one client, so the direct RTU client runs
with n = 1; the gateways run with 1 TCP client (each transaction then also pays the TCP
round trip to the gateway) and with 8 TCP clients queueing on the one line. PanelHub runs
twice: with `frame_gap_s = 0` (what its configuration reference prescribes for a pty, where
no line exists) and with its default t3.5 silence between frames (1.75 ms above 19,200
baud). The pymodbus forwarder opens the pty with parity N: on this kernel pyserial's second
`tcsetattr()` with PARENB fails with EINVAL on a pty, and pymodbus reconfigures the port
after opening it; a pty carries no parity bit anyway.

CPU placement here keeps the device end of the line (device and socat) on its own core in
every row, and puts whatever drives the line on the other: the direct RTU client, or the
gateway with its TCP load client. A gateway takes the direct client's place on the line, so
this compares the two masters with the same device end behind them. (With the gateway on
the device end's core instead, as in the TCP scenario, it competes with the device and
socat for that core, and the bare forwarder itself reaches only 74-77 % of the direct
client; bench/README.md has the `--placement` options to see it.)"""

PACED_NOTES: Final = f"""\
The device keeps real 19,200 baud 8E1 timing (11 bits per character): it releases each
response when the 8 request bytes and 25 response bytes would have finished crossing the
line, 18,906 µs after the request arrived. Each row's cycle is one closed-loop transaction:
1 / its throughput. A gateway's own time per transaction is its cycle minus the cycle of a
direct RTU client that keeps the same silence between frames, which removes the line time
and the pty, relay and timer overhead common to both. The spec requires t3.5 of silence
between frames on a real line ({T35_PACED_US:,.0f} µs at 19,200 baud, 10.6 % of the line
time), and PanelHub keeps it by default; so its default is compared with the direct client
keeping t3.5 after each response (`modbus_load --gap-ms {T35_PACED_US / 1000:.3f}`), and the
gateways that keep no silence with the direct client keeping none. A cycle comes from the
count of transactions in the run: at about 50 tx/s, one transaction more or less in a 5 s
run moves a figure by about 0.5 % of the line time (`--duration-s` narrows it)."""


def write_report(
    path: Path, rows: list[Row], *, command: str, workdir: Path, relay: str, placement: str
) -> None:
    lines = ["# Gateway benchmark", "", *host_section(command, relay, placement), ""]
    lines += [SETUP_NOTES, ""]
    lines += ["## TCP clients -> TCP device", "", *table(rows, "tcp"), ""]
    lines += ["## TCP clients -> RTU device over a pty pair, no baud timing", "", RTU_NOTES, ""]
    lines += [*table(rows, "rtu"), "", f"mbusd: {mbusd_status()}.", ""]
    lines += ["## TCP -> RTU at 19,200 baud with real line timing", "", PACED_NOTES, ""]
    lines += [*table(rows, "rtu-paced"), ""]
    lines += [
        "## Against the targets",
        "",
        "| figure | measured | target | verdict |",
        "|---|---|---|---|",
    ]
    lines += [*tcp_figures(rows), *rtu_figures(rows), *paced_figures(rows), ""]
    lines += ["## PanelHub stderr", "", *log_section(workdir), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
