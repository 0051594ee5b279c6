#!/usr/bin/env python3
"""Web benchmark: the pages and the API under a Modbus load, and a login flood, in one run.

One PanelHub process (``panelhub run``: gateway + HTTPS pages, uvloop), simulated meters
from ``panelhub.sim`` in another, and the loads in others, all on loopback:

1. ``modbus alone``: a paced Modbus load (``--rate``, default 1,000 tx/s) through the
   gateway to the simulated meters.
2. ``modbus + web``: the same, while ``--users`` logged-in users browse every page and the
   API with a think time (``--think-ms``), each from its own address.
3. ``modbus + web, no think``: the same users with no think time (the pages' capacity).
4. ``modbus + logins``: a legitimate user logs in from 127.0.0.1 every second.
5. ``modbus + logins + flood``: the same, while 127.0.0.2 POSTs wrong logins as fast as it
   can.

Each phase lasts ``--duration`` seconds. Results go to ``bench/results/web.md``; see
bench/README.md. Example::

    .venv/bin/python bench/web/run.py --duration 15
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from children import LOOPBACK, Child, StartError, free_port, host_busy_s
from report import write_report
from web_load import client, log_in

from panelhub.security.certs import CERT_FILE
from panelhub.web.access import Access, GuardedRoute
from panelhub.web.app import routes

HERE: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = HERE.parent.parent
RESULTS_PATH: Final = REPO_ROOT / "bench" / "results" / "web.md"
BIN_DIR: Final = Path(sys.executable).parent
WARMUP_S: Final = 3.0
RAMP_S: Final = 1.0  # between phases: the next load starts, nothing is counted yet
READY_TIMEOUT_S: Final = 60.0
FLOOD_SOURCE: Final = "127.0.0.2"
FIRST_USER_SOURCE: Final = "127.0.0.10"
VICTIM: Final = "bench-victim"
PASSWORD_LINE: Final = "Initial password of the web user 'admin': "  # noqa: S105 - a prefix
QUIET_SAMPLE_S: Final = 2.0
#: The browsing users and the flood share a core with the meters and the Modbus load; a
#: little lower priority keeps them from delaying those two, which stand for machines of
#: their own, so that what slows Modbus is the panel and not the benchmark's own core.
WEB_CLIENTS: Final = frozenset({"users", "flood"})
WEB_CLIENT_NICE_STEP: Final = 5
QUIET_PERCENT: Final = 15.0  # of one core: the host counts as quiet below this


@dataclass(frozen=True)
class Options:
    duration_s: float
    rate: float
    connections: int
    users: int
    think_ms: float
    flood_concurrency: int
    flood_user: str
    devices: int
    pin: bool
    nice: int
    wait_quiet_s: float
    repeat: int
    output: Path
    workdir: Path


@dataclass(frozen=True)
class Accounts:
    admin: str  # admin's password, changed from the initial one
    users: list[tuple[str, str, str]]  # name, one-time password, password after first login


def new_password() -> str:
    """Passes the default ("guide") policy: 8-50 characters of three classes, not common."""
    return f"Bn-{secrets.token_urlsafe(12)}-7"


async def make_accounts(base_url: str, ca: str, initial: str, count: int) -> Accounts:
    """``admin`` changes its initial password, then makes the accounts over the users API.

    One account holds at most 16 sessions: each browsing user gets an account of its own
    (admin role: every page opens to it), with a one-time password to change at first login.
    """
    admin = new_password()
    async with client(base_url, ca, LOOPBACK) as http:
        await log_in(http, "admin", initial, admin)
        session = await http.get("/api/session")
        headers = {"X-CSRF-Token": session.json()["csrf_token"]}
        users = []
        wanted = [(f"bench-{index + 1:02}", "admin") for index in range(count)]
        for name, role in [*wanted, (VICTIM, "viewer")]:
            answer = await http.post("/api/users", json={"name": name, "role": role},
                                     headers=headers)  # fmt: skip
            if answer.status_code != 201:
                raise StartError(f"creating {name}: {answer.status_code} {answer.text[:200]}")
            if name != VICTIM:
                users.append((name, answer.json()["password"], new_password()))
    return Accounts(admin, users)


def browsed_paths() -> list[str]:
    """Every GET page and API of the route table that needs a login and takes no parameter."""
    return [
        route.path
        for route in routes()
        if isinstance(route, GuardedRoute)
        and route.access is not Access.PUBLIC
        and "GET" in (route.methods or ())
        and "{" not in route.path
    ]


def config_toml(opts: Options, *, data_dir: Path, modbus_port: int, web_port: int,
                device_ports: list[int]) -> str:  # fmt: skip
    lines = [
        f'data_dir = "{data_dir}"', 'log_level = "WARNING"', "",
        "[web]", f'host = "{LOOPBACK}"', f"port = {web_port}", "",
        "[[listeners]]", 'name = "bench"', f'host = "{LOOPBACK}"', f"port = {modbus_port}",
    ]  # fmt: skip
    for index, port in enumerate(device_ports):
        lines += ["", "[[buses]]", 'kind = "tcp"', f'name = "meter-{index + 1}"']
        lines += [f'host = "{LOOPBACK}"', f"port = {port}"]
    for index in range(len(device_ports)):
        lines += ["", "[[routes]]", f"unit_id = {index + 1}", f'bus = "meter-{index + 1}"']
        lines += ["target_unit_id = 1"]
    del opts
    return "\n".join(lines) + "\n"


class Bench:
    """The processes of one run, and what they report."""

    def __init__(self, opts: Options, stack: contextlib.ExitStack) -> None:
        self.opts = opts
        self.stack = stack
        ordered = sorted(os.sched_getaffinity(0))
        two = opts.pin and len(ordered) >= 2
        # The panel alone on one core; the meters and every load on the other.
        self.service_cpus = frozenset(ordered[1:2]) if two else None
        self.load_cpus = frozenset(ordered[:1]) if two else None

    def child(self, name: str, argv: list[str], *, cpus: frozenset[int] | None,
              env: dict[str, str] | None = None) -> Child:  # fmt: skip
        child = Child(name, argv, self.opts.workdir / f"{name}.log", env=env)
        self.stack.callback(child.stop)
        child.start(cpus, lower_by=WEB_CLIENT_NICE_STEP if name in WEB_CLIENTS else 0)
        return child

    def script(self, name: str, *args: str) -> list[str]:
        return [sys.executable, str(HERE / name), *args]


@dataclass(frozen=True)
class System:
    """The system under test, running."""

    panel: Child
    sim: Child
    modbus_port: int
    base_url: str
    ca: str  # the panel's self-signed certificate, which the clients pin
    accounts: Accounts


def start_system(bench: Bench) -> System:
    """Meters, accounts, then the panel with its Modbus listener and pages ready."""
    opts = bench.opts
    sim = bench.child("sim", bench.script("sim_devices.py", "--servers", str(opts.devices)),
                      cpus=bench.load_cpus)  # fmt: skip
    device_ports = json.loads(sim.read_line(READY_TIMEOUT_S))["ports"]
    data_dir = opts.workdir / "data"
    modbus_port, web_port = free_port(), free_port()
    config = opts.workdir / "panelhub.toml"
    config.write_text(config_toml(opts, data_dir=data_dir, modbus_port=modbus_port,
                                  web_port=web_port, device_ports=device_ports))  # fmt: skip
    # Unbuffered: `panelhub run` prints the initial password on stdout at the first start.
    argv = [str(BIN_DIR / "panelhub"), "run", "--config", str(config)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    panel = bench.child("panelhub", argv, cpus=bench.service_cpus, env=env)
    line = panel.read_line(READY_TIMEOUT_S)
    if not line.startswith(PASSWORD_LINE):
        raise StartError(f"panelhub printed {line[:60]!r}, not the initial password")
    initial = line.removeprefix(PASSWORD_LINE).split()[0]
    panel.wait_port(modbus_port, READY_TIMEOUT_S)
    panel.wait_port(web_port, READY_TIMEOUT_S)
    base_url = f"https://{LOOPBACK}:{web_port}"
    ca = str(data_dir / "tls" / CERT_FILE)
    accounts = asyncio.run(make_accounts(base_url, ca, initial, opts.users))
    return System(panel, sim, modbus_port, base_url, ca, accounts)


def timeline(opts: Options, t0: float) -> dict[str, list[float]]:
    """The measured window of each phase, in time.monotonic() seconds."""
    windows: dict[str, list[float]] = {}
    begin = t0 + WARMUP_S
    for name in PHASES:
        windows[name] = [begin, begin + opts.duration_s]
        begin += opts.duration_s + RAMP_S
    return windows


#: The flood's first second: the address's burst is spent, the argon2 verifies run.
BURST: Final = "flood, its first second"
BURST_S: Final = 1.0
PHASES: Final = (
    "modbus alone",
    "modbus + web",
    "modbus + web, no think",
    "modbus + logins",
    "modbus + logins + flood",
)


def host_load(seconds: float = QUIET_SAMPLE_S) -> float:
    """CPU the host used over ``seconds`` while this benchmark runs nothing, in % of a core."""
    before = host_busy_s()
    time.sleep(seconds)
    return 100 * (host_busy_s() - before) / seconds


def wait_quiet(limit_s: float) -> float:
    """Wait up to ``limit_s`` for the host to be quiet; return the last load seen."""
    deadline = time.monotonic() + limit_s
    load = host_load()
    while load > QUIET_PERCENT and time.monotonic() < deadline:
        print(f"host busy ({load:.0f} % of a core used by others); waiting", flush=True)
        load = host_load()
    return load


def run(opts: Options) -> dict[str, Any]:
    quiet_before = wait_quiet(opts.wait_quiet_s)
    with contextlib.ExitStack() as stack:
        bench = Bench(opts, stack)
        system = start_system(bench)
        accounts = system.accounts
        paths = browsed_paths()
        common = ["--base-url", system.base_url, "--ca", system.ca]
        loads = {
            "modbus": bench.child("modbus", bench.script(
                "modbus_paced.py", "--port", str(system.modbus_port), "--rate", str(opts.rate),
                "--connections", str(opts.connections), "--units", str(opts.devices),
            ), cpus=bench.load_cpus),
            "users": bench.child("users", bench.script(
                "web_load.py", "users", *common, "--paths", ",".join(paths),
                "--first-source", FIRST_USER_SOURCE, "--accounts", json.dumps(accounts.users),
            ), cpus=bench.load_cpus),
            "login": bench.child("login", bench.script(
                "web_load.py", "login", *common, "--source", LOOPBACK, "--user", "admin",
                "--password", accounts.admin,
            ), cpus=bench.load_cpus),
            "flood": bench.child("flood", bench.script(
                "web_load.py", "flood", *common, "--source", FLOOD_SOURCE,
                "--user", opts.flood_user, "--concurrency", str(opts.flood_concurrency),
            ), cpus=bench.load_cpus),
        }  # fmt: skip
        for name, load in loads.items():
            if load.read_line(READY_TIMEOUT_S) != "ready":
                raise StartError(f"{name} did not say ready")
        t0 = time.monotonic() + 0.5
        windows = timeline(opts, t0)
        web, stress = windows["modbus + web"], windows["modbus + web, no think"]
        logins, flood = windows["modbus + logins"], windows["modbus + logins + flood"]
        end = flood[1]
        plans = {
            "modbus": {"start": t0, "end": end, "windows": {
                **windows, BURST: [flood[0], flood[0] + BURST_S]}},
            "users": {"windows": {"think": web, "no think": stress},
                      "active": [[web[0] - RAMP_S, web[1], opts.think_ms],
                                 [stress[0] - RAMP_S, stress[1], 0]]},
            "login": {"windows": {"no flood": logins, "flood": flood},
                      "active": [[logins[0], logins[1], 0], [flood[0], flood[1], 0]]},
            "flood": {"start": flood[0], "end": flood[1]},
        }  # fmt: skip
        for name, plan in plans.items():
            loads[name].send_line(json.dumps(plan))
        cpu = cpu_use({"panelhub": system.panel, "sim": system.sim, **loads}, windows)
        results = {name: json.loads(load.read_line(READY_TIMEOUT_S + opts.duration_s))
                   for name, load in loads.items()}  # fmt: skip
        system.panel.check_alive()
    placement = {
        "panelhub": None if bench.service_cpus is None else sorted(bench.service_cpus),
        "loads": None if bench.load_cpus is None else sorted(bench.load_cpus),
    }
    return {**results, "cpu": cpu, "paths": paths, "placement": placement,
            "quiet_before": round(quiet_before, 1)}  # fmt: skip


def cpu_use(children: dict[str, Child], windows: dict[str, list[float]]) -> dict[str, Any]:
    """Each process's CPU use over each window, in % of one core."""
    usage: dict[str, Any] = {}
    for name, (begin, end) in windows.items():
        time.sleep(max(0.0, begin - time.monotonic()))
        host_before = host_busy_s()
        before = {child: process.cpu_s() for child, process in children.items()}
        time.sleep(max(0.0, end - time.monotonic()))
        usage[name] = {
            child: round(100 * (process.cpu_s() - before[child]) / (end - begin), 1)
            for child, process in children.items()
        }
        host = 100 * (host_busy_s() - host_before) / (end - begin)
        # Everything else on the host: the harness itself, and anyone else's work.
        usage[name]["other"] = round(host - sum(usage[name].values()), 1)
    return usage


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--rate", type=float, default=1000.0, help="Modbus tx/s")
    parser.add_argument("--connections", type=int, default=8, help="Modbus connections")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--think-ms", type=float, default=500.0,
                        help="mean think time of a browsing user (uniform 0..2x)")  # fmt: skip
    parser.add_argument("--flood-concurrency", type=int, default=4)
    parser.add_argument("--flood-user", default=VICTIM, help="the name the flood tries")
    parser.add_argument("--devices", type=int, default=4, help="simulated meters")
    parser.add_argument("--no-pin", action="store_true", help="leave CPUs to the scheduler")
    parser.add_argument(
        "--nice", type=int, default=0, help="niceness of the run and its children (< 0: root)"
    )
    parser.add_argument("--wait-quiet-s", type=float, default=0.0,
                        help="wait up to this long for other work on the host to stop")  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds; the one least disturbed is detailed"
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument("--keep-logs", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="panelhub-web-bench-"))
    if not args.keep_logs:
        import atexit  # noqa: PLC0415 - only needed when logs are not kept

        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    return Options(
        args.duration, args.rate, args.connections, args.users, args.think_ms,
        args.flood_concurrency, args.flood_user, args.devices, not args.no_pin,
        args.nice, args.wait_quiet_s, max(1, args.repeat), args.output,
        workdir,
    )  # fmt: skip


def main(argv: list[str]) -> None:
    opts = parse_args(argv)
    if opts.nice:
        os.nice(opts.nice)  # before any child: they inherit it
    print(f"work directory (logs, configs): {opts.workdir}", flush=True)
    started = time.monotonic()
    rounds = []
    for number in range(1, opts.repeat + 1):
        workdir = opts.workdir / f"round-{number}"
        workdir.mkdir()
        rounds.append(run(dataclasses.replace(opts, workdir=workdir)))
        print(f"round {number} of {opts.repeat}: {json.dumps(rounds[-1])}", flush=True)
    write_report(opts, rounds, command=" ".join([display_python(), *sys.argv]),
                 wall_s=time.monotonic() - started)  # fmt: skip
    print(f"wrote {opts.output}")


def display_python() -> str:
    try:
        return str(Path(sys.executable).relative_to(Path.cwd()))
    except ValueError:
        return sys.executable


if __name__ == "__main__":
    main(sys.argv[1:])
