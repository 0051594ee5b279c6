#!/usr/bin/env python3
"""Web load for the benchmark: browsing users, a legitimate user logging in, a login flood.

``users``  N users, each on its own keep-alive HTTPS connection from its own loopback
           address (127.0.0.<first+i>), log in (changing the initial password when asked),
           then, in each active window, GET the given paths in turn with a random think time
           (uniform in [0, 2 * think-ms]) between a response and the next request.
``login``  A user who, every ``--every-s`` seconds, opens a new connection from
           ``--source``, GETs the login form and POSTs the right password.
``flood``  ``--concurrency`` connections from ``--source`` POST a wrong password as fast
           as they can, for at most ``--max-attempts`` attempts.

Protocol with the harness (``run.py``): print ``ready`` after any set-up, read one JSON
line ``{"start": t, "end": t, "windows": {...}, "active": [[from, to, think_ms], ...]}`` in
``time.monotonic()`` seconds, run, print one JSON line. Latency: from the call to the full
body read, client side (time.perf_counter). Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import random
import re
import ssl
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import uvloop
from stats import in_window, summary_ms

TOKEN_PATTERN: Final = re.compile(r'name="csrf_token" value="([^"]+)"')
LOCKED_TEXT: Final = "is locked until"
REQUEST_TIMEOUT_S: Final = 10.0


class LoginFailedError(RuntimeError):
    """A set-up login or password change did not go as a user's would."""


def client(base_url: str, ca: str, source: str) -> httpx.AsyncClient:
    """An HTTP/1.1 client with keep-alive, from ``source``, trusting only the panel's cert."""
    context = ssl.create_default_context(cafile=ca)
    transport = httpx.AsyncHTTPTransport(
        verify=context, local_address=source, http1=True, http2=False
    )
    return httpx.AsyncClient(
        base_url=base_url, transport=transport, timeout=REQUEST_TIMEOUT_S,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )  # fmt: skip


def form_token(html: str) -> str:
    match = TOKEN_PATTERN.search(html)
    if match is None:
        raise LoginFailedError("no csrf_token in the page")
    return match.group(1)


async def post_login(http: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    page = await http.get("/login")
    data = {"username": user, "password": password, "csrf_token": form_token(page.text)}
    return await http.post("/login", data={**data, "next": "/"})


async def log_in(http: httpx.AsyncClient, user: str, password: str, new_password: str) -> None:
    """Log in; when the password must be changed first, change it to ``new_password``."""
    answer = await post_login(http, user, password)
    if answer.status_code != 303:
        raise LoginFailedError(f"{user}: login answered {answer.status_code}")
    if answer.headers["location"] == "/password":
        page = await http.get("/password")
        form = {"current": password, "new": new_password, "confirm": new_password}
        changed = await http.post("/password", data={**form, "csrf_token": form_token(page.text)})
        if changed.status_code != 303:
            raise LoginFailedError(f"{user}: password change answered {changed.status_code}")


# --- users ------------------------------------------------------------------------


@dataclass
class Samples:
    at: list[float] = field(default_factory=list)
    latency_s: list[float] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    status: list[int] = field(default_factory=list)

    def add(self, at: float, latency_s: float, path: str, status: int) -> None:
        self.at.append(at)
        self.latency_s.append(latency_s)
        self.path.append(path)
        self.status.append(status)

    def window(self, window: list[float]) -> list[int]:
        return [i for i, t in enumerate(self.at) if in_window(t, window)]


async def browse(
    http: httpx.AsyncClient, paths: list[str], active: list[list[float]], samples: Samples,
    rng: random.Random,
) -> None:  # fmt: skip
    turn = rng.randrange(len(paths))
    for begin, end, think_ms in active:
        delay = begin - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay + rng.uniform(0, think_ms / 1000))  # users do not start
        while time.monotonic() < end:  # in lockstep
            path = paths[turn % len(paths)]
            turn += 1
            at = time.monotonic()
            started = time.perf_counter()
            try:
                response = await http.get(path)
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            samples.add(at, time.perf_counter() - started, path, status)
            if think_ms:
                await asyncio.sleep(rng.uniform(0, 2 * think_ms / 1000))


def summarise_samples(samples: Samples, windows: dict[str, list[float]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, window in windows.items():
        chosen = samples.window(window)
        summary = summary_ms([samples.latency_s[i] for i in chosen])
        summary["per_s"] = round(len(chosen) / (window[1] - window[0]), 1)
        summary["statuses"] = dict(Counter(str(samples.status[i]) for i in chosen))
        per_path: dict[str, Any] = {}
        for path in sorted({samples.path[i] for i in chosen}):
            per_path[path] = summary_ms([samples.latency_s[i] for i in chosen
                                         if samples.path[i] == path])  # fmt: skip
        summary["paths"] = per_path
        result[name] = summary
    return result


async def run_users(args: argparse.Namespace) -> dict[str, Any]:
    accounts = json.loads(args.accounts)  # [[name, initial password, new password], ...]
    network = ipaddress.ip_address(args.first_source)
    clients = [
        client(args.base_url, args.ca, str(network + index)) for index in range(len(accounts))
    ]
    try:
        for http, (name, initial, new) in zip(clients, accounts, strict=True):
            await log_in(http, name, initial, new)
        plan = await read_plan()
        samples = Samples()
        rng = random.Random(args.seed)
        await asyncio.gather(*(
            browse(http, args.paths.split(","), plan["active"], samples,
                   random.Random(rng.random()))
            for http in clients
        ))  # fmt: skip
        return {"windows": summarise_samples(samples, plan["windows"])}
    finally:
        for http in clients:
            await http.aclose()


# --- a legitimate login -------------------------------------------------------------


async def run_login(args: argparse.Namespace) -> dict[str, Any]:
    plan = await read_plan()
    at: list[float] = []
    total_s: list[float] = []
    post_s: list[float] = []
    statuses: list[int] = []
    for begin, end, _ in plan["active"]:
        slot = begin
        while slot < end:
            await asyncio.sleep(max(0.0, slot - time.monotonic()))
            at.append(time.monotonic())
            started = time.perf_counter()
            async with client(args.base_url, args.ca, args.source) as http:
                page = await http.get("/login")
                data = {"username": args.user, "password": args.password, "next": "/",
                        "csrf_token": form_token(page.text)}  # fmt: skip
                posted = time.perf_counter()
                answer = await http.post("/login", data=data)
                done = time.perf_counter()
            total_s.append(done - started)
            post_s.append(done - posted)
            statuses.append(answer.status_code)
            slot += args.every_s
    windows: dict[str, Any] = {}
    for name, window in plan["windows"].items():
        chosen = [i for i, t in enumerate(at) if in_window(t, window)]
        windows[name] = {
            "total": summary_ms([total_s[i] for i in chosen]),
            "post": summary_ms([post_s[i] for i in chosen]),
            "statuses": dict(Counter(str(statuses[i]) for i in chosen)),
        }
    return {"windows": windows}


# --- the flood ----------------------------------------------------------------------


@dataclass
class Flood:
    attempts: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latency_s: dict[str, list[float]] = field(default_factory=dict)
    first_429: int | None = None
    first_429_at: float | None = None


async def flood_connection(
    http: httpx.AsyncClient, args: argparse.Namespace, end: float, flood: Flood
) -> None:
    page = await http.get("/login")
    token = form_token(page.text)
    while time.monotonic() < end and flood.attempts < args.max_attempts:
        flood.attempts += 1
        data = {"username": args.user, "password": "Wrong-password-1", "next": "/",
                "csrf_token": token}  # fmt: skip
        started = time.perf_counter()
        answer = await http.post("/login", data=data)
        latency = time.perf_counter() - started
        # Each answer is a fresh form with a new token (and cookie): use it, as a browser does.
        with contextlib.suppress(LoginFailedError):
            token = form_token(answer.text)
        kind = str(answer.status_code)
        if answer.status_code == 401 and LOCKED_TEXT in answer.text:
            kind = "401 locked"
        if answer.status_code == 429 and flood.first_429 is None:
            flood.first_429, flood.first_429_at = flood.attempts, time.monotonic()
        flood.statuses[kind] += 1
        flood.latency_s.setdefault(kind, []).append(latency)


async def run_flood(args: argparse.Namespace) -> dict[str, Any]:
    clients = [client(args.base_url, args.ca, args.source) for _ in range(args.concurrency)]
    try:
        plan = await read_plan()
        await asyncio.sleep(max(0.0, plan["start"] - time.monotonic()))
        started = time.monotonic()
        end = min(plan["end"], started + args.max_s)
        flood = Flood()
        await asyncio.gather(*(flood_connection(http, args, end, flood) for http in clients))
        elapsed = time.monotonic() - started
    finally:
        for http in clients:
            await http.aclose()
    return {
        "attempts": flood.attempts,
        "seconds": round(elapsed, 2),
        "per_s": round(flood.attempts / elapsed, 1),
        "statuses": dict(flood.statuses),
        "latency": {kind: summary_ms(values) for kind, values in flood.latency_s.items()},
        "first_429_attempt": flood.first_429,
        "first_429_after_s": None
        if flood.first_429_at is None
        else round(flood.first_429_at - started, 3),
    }


# --- command line -------------------------------------------------------------------


async def read_plan() -> dict[str, Any]:
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    plan: dict[str, Any] = json.loads(line)
    return plan


async def main_async(args: argparse.Namespace) -> None:
    runner = {"users": run_users, "login": run_login, "flood": run_flood}[args.mode]
    result = await runner(args)
    print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("mode", choices=["users", "login", "flood"])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--ca", required=True, help="the panel's certificate (pinned)")
    parser.add_argument("--accounts", default="[]", help="users: JSON [[name, initial, new]]")
    parser.add_argument("--paths", default="/,/api/status,/api/session")
    parser.add_argument("--first-source", default="127.0.0.10")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--source", default="127.0.0.1")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="")
    parser.add_argument("--every-s", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-attempts", type=int, default=200_000)
    parser.add_argument("--max-s", type=float, default=120.0)
    args = parser.parse_args()
    host = httpx.URL(args.base_url).host
    if not ipaddress.ip_address(host).is_loopback:
        parser.error("loopback only")
    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
