"""Turns the web benchmark's results into ``bench/results/web.md``.

The targets come from issue 3 ("Speed"); they are named constants here so that a changed
target shows up in review. Whatever follows ``ANALYSIS_MARKER`` in an existing report is
kept: it is written by hand, from the figures and a profile.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Final

import panelhub

MAX_WEB_P99_MS: Final = 50.0
TARGET_TX_PER_S: Final = 1000.0
PACKAGES: Final = ("panelhub", "uvicorn", "starlette", "httpx", "uvloop", "pymodbus",
                   "argon2-cffi", "jinja2")  # fmt: skip
ANALYSIS_MARKER: Final = "<!-- analysis: written by hand, kept when the report is rewritten -->"
WEB_PHASES: Final = {"think": "modbus + web", "no think": "modbus + web, no think"}


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} x {status}" for status, count in sorted(counts.items())) or "-"


def git(*args: str) -> str:
    source = Path(panelhub.__file__).resolve().parent
    try:
        done = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True,
                              check=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def source_line() -> str:
    source = Path(panelhub.__file__).resolve().parent
    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return f"`{source}` (not a git checkout)"
    dirty = git("status", "--porcelain", "--", str(source))
    state = f", with uncommitted changes in {len(dirty.splitlines())} file(s)" if dirty else ""
    return f"`{source}` at commit {commit}{state}"


def header(opts: Any, results: dict[str, Any], *, command: str, wall_s: float) -> list[str]:
    versions = ", ".join(f"{name} {version(name)}" for name in PACKAGES)
    cpu_model = next((line.split(":", 1)[1].strip()
                      for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "?")  # fmt: skip
    placement = (
        f"PanelHub alone on CPU {results['placement']['panelhub']}; the meters, the loads and "
        f"the harness on CPU {results['placement']['loads']}"
        if results["placement"]["panelhub"] is not None
        else "not pinned (left to the scheduler)"
    )
    return [
        "# Web benchmark",
        "",
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: `{uname()}`",
        f"- CPU: {cpu_model}, nproc = {os.cpu_count()}",
        f"- Python {platform.python_version()}; {versions}",
        f"- PanelHub source: {source_line()}",
        f"- CPU placement: {placement}",
        f"- Niceness of every process of the run: {opts.nice}"
        + (" (raised above the rest of a shared host)" if opts.nice < 0 else ""),
        f"- Host CPU used by other processes just before the run: "
        f"{fmt(results['quiet_before'])} % of one core",
        f"- Command: `{command}` ({wall_s:.0f} s in all)",
        "",
    ]


def uname() -> str:
    try:
        return subprocess.run(["uname", "-a"], capture_output=True, text=True, check=True,
                              timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return " ".join(platform.uname())


def version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def description(opts: Any, results: dict[str, Any]) -> list[str]:
    paths = ", ".join(f"`{path}`" for path in results["paths"])
    return [
        "One PanelHub process (`panelhub run`: the gateway and the HTTPS pages on one uvloop "
        "event loop, configuration and data directory generated in a temporary directory), "
        f"{opts.devices} simulated three-phase meters from `panelhub.sim` (one Modbus TCP "
        "server each, in one process), and the loads, each in its own process, all on "
        "loopback. Every phase lasts "
        f"{opts.duration_s:g} s and follows the previous one after {1:g} s; the Modbus load "
        "runs through all of them, so the phases compare within one run.",
        "",
        f"- Modbus: `bench/web/modbus_paced.py`, {opts.connections} connections paced to "
        f'{opts.rate:,.0f} transactions/s in all ("read 10 holding registers", units 1-'
        f"{opts.devices}, one per meter), one request outstanding per connection; a request "
        "sent more than 5 ms after its slot counts as late. Latency: request written to "
        "answer parsed, in the client.",
        f"- Web users: `bench/web/web_load.py users`, {opts.users} accounts (admin role, so "
        "that every page opens), each with one HTTP/1.1 keep-alive connection (httpx, TLS "
        "pinned to the panel's generated certificate) from its own address (127.0.0.10 "
        "up). Each logs in and changes its initial password first, then GETs, in turn, "
        f"every page and API that needs a login and takes no parameter: {paths}. Think "
        f"time between an answer and the next request: uniform in 0-{2 * opts.think_ms:g} ms "
        '("think"), or none ("no think": the pages\' capacity). Latency: request to body '
        "read, in the client; any status but 200 counts as an error.",
        "- Login: `bench/web/web_load.py login`: `admin` from 127.0.0.1, once a second, "
        'opens a new connection, GETs `/login` and POSTs the right password. "POST" is the '
        'POST alone; "total" adds the TLS handshake and the GET.',
        f"- Flood: `bench/web/web_load.py flood`: {opts.flood_concurrency} keep-alive "
        f"connections from 127.0.0.2 POST a wrong password for `{opts.flood_user}` "
        "as fast as they get answers, each time with the form token of the last answer "
        "(as a browser would), during the last phase. `bench-victim` is a real viewer "
        "account that nothing else uses: the first 10 failures cost an argon2 verify each "
        'and lock it ("401 locked" answers cost no argon2); the address limiter (burst '
        "20, 1/s) answers 429 beyond that.",
        "",
        "`admin` logs in with the initial password `panelhub run` prints at its first "
        "start, changes it, and makes the other accounts over `/api/users` (one-time "
        "passwords, changed by each user at its first login). "
        "The users and the flood run 5 nice steps below the other processes of the run: "
        "they share a core with the meters and the Modbus load, which stand for machines "
        "of their own. "
        'CPU % is each process\'s CPU time over the phase (100 % = one core); "other" is '
        "everything else on the host (the harness, and anyone else's work: this host is "
        "shared, so read the figures with that column; the host total is sampled by the "
        "kernel at each tick while the processes' times are measured by the scheduler, so "
        "it is off by a few % either way).",
        "",
    ]


def verdicts(results: dict[str, Any]) -> list[str]:
    modbus = results["modbus"]["windows"]
    web = results["users"]["windows"]["think"]
    login = results["login"]["windows"]
    flood = results["flood"]
    web_p99 = web["p99_ms"]
    met = web_p99 is not None and web_p99 < MAX_WEB_P99_MS and not errors(web["statuses"])
    alone, with_web = modbus["modbus alone"], modbus["modbus + web"]
    logins, flooded = modbus["modbus + logins"], modbus["modbus + logins + flood"]
    ok_in_flood = login["flood"]["statuses"].get("303", 0)
    tried_in_flood = login["flood"]["post"]["count"]
    return [
        "## Figures against the targets",
        "",
        f"- 20 users browsing while the gateway carries {TARGET_TX_PER_S:,.0f} tx/s: web p99 "
        f"**{fmt(web_p99)} ms** (target < {MAX_WEB_P99_MS:g} ms: "
        f"{'met' if met else 'MISSED'}), errors {errors(web['statuses'])}; Modbus "
        f"{fmt(with_web['tx_per_s'])} tx/s, p99 {fmt(alone['p99_ms'], 2)} ms alone -> "
        f"{fmt(with_web['p99_ms'], 2)} ms with the users.",
        f"- Login flood from 127.0.0.2 ({flood['attempts']:,} attempts in {flood['seconds']} "
        f"s, first 429 at attempt {flood['first_429_attempt']}): Modbus "
        f"{fmt(flooded['tx_per_s'])} tx/s, p99 {fmt(logins['p99_ms'], 2)} ms without the "
        f"flood -> {fmt(flooded['p99_ms'], 2)} ms with it; `admin` from 127.0.0.1 logged in "
        f"{ok_in_flood} of {tried_in_flood} times during the flood, POST p50/max "
        f"{fmt(login['flood']['post']['p50_ms'])} / {fmt(login['flood']['post']['max_ms'])} "
        f"ms (without the flood {fmt(login['no flood']['post']['p50_ms'])} / "
        f"{fmt(login['no flood']['post']['max_ms'])} ms).",
        "",
    ]


def errors(counts: dict[str, int]) -> int:
    return sum(count for status, count in counts.items() if status != "200")


def modbus_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "## Modbus through the gateway, per phase",
        "",
        "| phase | tx/s | p50 ms | p95 ms | p99 ms | max ms | late sends | errors / timeouts |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for phase, row in results["modbus"]["windows"].items():
        lines.append(
            f"| {phase} | {fmt(row['tx_per_s'])} | {fmt(row['p50_ms'], 2)} "
            f"| {fmt(row['p95_ms'], 2)} | {fmt(row['p99_ms'], 2)} | {fmt(row['max_ms'], 2)} "
            f"| {row['late']:,} | {row['errors']} / {row['timeouts']} |"
        )
    return [*lines, ""]


def web_tables(results: dict[str, Any]) -> list[str]:
    lines = [
        "## Web users (while the Modbus load runs)",
        "",
        "| users' think time | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | statuses |",
        "|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    windows = results["users"]["windows"]
    for name, row in windows.items():
        lines.append(
            f"| {name} | {row['count']:,} | {fmt(row['per_s'])} | {fmt(row['p50_ms'])} "
            f"| {fmt(row['p95_ms'])} | {fmt(row['p99_ms'])} | {fmt(row['max_ms'])} "
            f"| {statuses(row['statuses'])} |"
        )
    lines += ["", "Per path (p50 / p99 / max ms):", "",
              "| path | " + " | ".join(windows) + " |",
              "|---|" + "--:|" * len(windows)]  # fmt: skip
    for path in results["paths"]:
        cells = []
        for row in windows.values():
            one = row["paths"].get(path)
            cells.append(
                "-"
                if one is None
                else f"{fmt(one['p50_ms'])} / {fmt(one['p99_ms'])} / {fmt(one['max_ms'])}"
            )
        lines.append(f"| `{path}` | " + " | ".join(cells) + " |")
    return [*lines, ""]


def login_tables(results: dict[str, Any]) -> list[str]:
    lines = [
        "## A legitimate login from 127.0.0.1, without and with the flood",
        "",
        "| phase | logins | answers | POST p50 ms | POST max ms | total p50 ms | total max ms |",
        "|---|--:|---|--:|--:|--:|--:|",
    ]
    for name, row in results["login"]["windows"].items():
        post, total = row["post"], row["total"]
        lines.append(
            f"| {name} | {post['count']} | {statuses(row['statuses'])} | {fmt(post['p50_ms'])} "
            f"| {fmt(post['max_ms'])} | {fmt(total['p50_ms'])} | {fmt(total['max_ms'])} |"
        )
    flood = results["flood"]
    lines += [
        "",
        "## The flood from 127.0.0.2",
        "",
        f"{flood['attempts']:,} attempts in {flood['seconds']} s ({fmt(flood['per_s'])}/s); "
        f"first 429 at attempt {flood['first_429_attempt']}, "
        f"{fmt(flood['first_429_after_s'], 2)} s into the flood.",
        "",
        "| answer | count | p50 ms | p99 ms | max ms |",
        "|---|--:|--:|--:|--:|",
    ]
    for kind, row in sorted(flood["latency"].items()):
        lines.append(
            f"| {kind} | {row['count']:,} | {fmt(row['p50_ms'])} | {fmt(row['p99_ms'])} "
            f"| {fmt(row['max_ms'])} |"
        )
    return [*lines, ""]


def cpu_table(results: dict[str, Any]) -> list[str]:
    phases = results["cpu"]
    processes = list(next(iter(phases.values())))
    lines = [
        "## CPU per process (% of one core)",
        "",
        "| phase | " + " | ".join(processes) + " |",
        "|---|" + "--:|" * len(processes),
    ]
    for phase, row in phases.items():
        lines.append(f"| {phase} | " + " | ".join(fmt(row[name]) for name in processes) + " |")
    return [*lines, ""]


def disturbance(results: dict[str, Any]) -> float:
    """CPU used by others on the host, averaged over the phases (% of one core)."""
    phases = results["cpu"].values()
    return float(sum(phase["other"] for phase in phases)) / len(phases)


def rounds_table(rounds: list[dict[str, Any]], chosen: int) -> list[str]:
    lines = [
        "## Every round",
        "",
        f"{len(rounds)} rounds, each with a fresh PanelHub, meters and data directory. The "
        f"tables above are round {chosen + 1}, the one whose phases had the least CPU used "
        "by others on the host; the web and Modbus p99 of every round are here.",
        "",
        "| round | others' CPU % | web p99 ms (think) | web p99 ms (no think) "
        "| Modbus p99 ms: " + " / ".join(PHASE_SHORT) + " | admin logins in flood |",
        "|--:|--:|--:|--:|--:|--:|",
    ]
    for number, results in enumerate(rounds, start=1):
        modbus = results["modbus"]["windows"]
        users = results["users"]["windows"]
        login = results["login"]["windows"]["flood"]
        p99s = " / ".join(fmt(modbus[phase]["p99_ms"], 1) for phase in list(modbus)[:5])
        ok = login["statuses"].get("303", 0)
        lines.append(
            f"| {number} | {fmt(disturbance(results))} | {fmt(users['think']['p99_ms'])} "
            f"| {fmt(users['no think']['p99_ms'])} | {p99s} | {ok} of {login['post']['count']} |"
        )
    return [*lines, ""]


PHASE_SHORT: Final = ("alone", "web", "web no think", "logins", "flood")


def write_report(opts: Any, rounds: list[dict[str, Any]], *, command: str, wall_s: float) -> None:
    chosen = min(range(len(rounds)), key=lambda index: disturbance(rounds[index]))
    results = rounds[chosen]
    output = Path(opts.output)
    kept = ""
    if output.exists() and ANALYSIS_MARKER in (text := output.read_text()):
        kept = text.split(ANALYSIS_MARKER, 1)[1]
    lines = [
        *header(opts, results, command=command, wall_s=wall_s),
        *description(opts, results),
        *verdicts(results),
        *modbus_table(results),
        *web_tables(results),
        *login_tables(results),
        *cpu_table(results),
        *(rounds_table(rounds, chosen) if len(rounds) > 1 else []),
        ANALYSIS_MARKER,
    ]
    output.write_text("\n".join(lines) + (kept or "\n"))
