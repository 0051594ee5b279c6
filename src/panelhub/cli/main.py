"""``panelhub`` command: run, check-config, sim, demo and the admin commands (cli/*.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any, TypeVar

from panelhub import __version__
from panelhub.config.store import load_settings
from panelhub.errors import ConfigError, PanelHubError
from panelhub.logconfig import configure_logging

T = TypeVar("T")


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    INVALID_CONFIG = 3
    AUDIT_BROKEN = 4
    #: The launcher's "start me again" (``launcher.RESTART_EXIT_CODE``): a new slot to run.
    RESTART_FOR_UPDATE = 75
    INTERRUPTED = 130


def _run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop where installed: it halves the gateway's per-request cost."""
    try:
        import uvloop  # noqa: PLC0415 - optional, and only the CLI chooses the loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(main)
    return uvloop.run(main)


def _print_problems(error: ConfigError) -> None:
    print(f"error: {error}", file=sys.stderr)
    for problem in error.problems:
        print(f"  {problem}", file=sys.stderr)


def cmd_check_config(args: argparse.Namespace) -> ExitCode:
    try:
        settings = load_settings(args.file)
    except ConfigError as exc:
        _print_problems(exc)
        return ExitCode.INVALID_CONFIG
    print(
        f"{args.file}: valid ({len(settings.listeners)} listener(s), "
        f"{len(settings.buses)} bus(es), {len(settings.routes)} route(s))"
    )
    return ExitCode.OK


def cmd_run(args: argparse.Namespace) -> ExitCode:
    from panelhub import service  # noqa: PLC0415 - keep check-config free of the runtime

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        _print_problems(exc)
        print("refusing to start with an invalid configuration", file=sys.stderr)
        return ExitCode.INVALID_CONFIG
    if args.factory_config is not None:
        try:  # a factory reset asked for from the pages must not find it broken
            load_settings(args.factory_config)
        except ConfigError as exc:
            _print_problems(exc)
            print("refusing to start with an invalid factory configuration", file=sys.stderr)
            return ExitCode.INVALID_CONFIG
    configure_logging(settings.log_level)
    try:
        is_update = _run_loop(
            service.run(settings, config_path=args.config, factory_config=args.factory_config)
        )
    except OSError as exc:  # a listener cannot bind: address in use, no permission for 502
        print(f"error: cannot start: {exc}", file=sys.stderr)
        return ExitCode.FAILURE
    return ExitCode.RESTART_FOR_UPDATE if is_update else ExitCode.OK


def cmd_sim(args: argparse.Namespace) -> ExitCode:
    from panelhub import sim  # noqa: PLC0415 - pymodbus is loaded only for the simulator

    configure_logging(args.log_level)
    spec = sim.default_demo_spec(base_port=args.base_port, enable_line_timing=args.line_timing)
    _run_loop(sim.serve_forever(spec))
    return ExitCode.OK


def cmd_demo(args: argparse.Namespace) -> ExitCode:
    from panelhub import demo  # noqa: PLC0415 - pymodbus is loaded only for the demo

    configure_logging(args.log_level)
    _run_loop(
        demo.run_demo(
            modbus_port=args.modbus_port,
            data_dir=args.data_dir,
            sim_base_port=args.sim_base_port,
            web_port=args.web_port,
        )
    )
    return ExitCode.OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="panelhub", description="PanelHub panel server")
    parser.add_argument("--version", action="version", version=f"panelhub {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the panel server with a configuration file")
    run.add_argument("--config", type=Path, required=True, metavar="FILE")
    run.add_argument("--factory-config", type=Path, metavar="FILE",
                     help="what a factory reset brings back (default: built-in)")  # fmt: skip
    run.set_defaults(handler=cmd_run)
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=cmd_check_config)
    sim = commands.add_parser("sim", help="serve simulated meters (TCP on loopback, RTU on a pty)")
    sim.add_argument("--base-port", type=int, default=15020, help="first TCP port (0: any free)")
    sim.add_argument("--line-timing", action="store_true", help="keep real baud-rate timing")
    sim.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    sim.set_defaults(handler=cmd_sim)
    demo = commands.add_parser("demo", help="simulated meters and the gateway, ready to poll")
    demo.add_argument("--modbus-port", type=int, default=5020, help="gateway port (default 5020)")
    demo.add_argument("--web-port", type=int, default=8443, help="web pages port (default 8443)")
    demo.add_argument("--data-dir", type=Path, default=Path("var"), help="default ./var")
    demo.add_argument("--sim-base-port", type=int, default=15020, help="first simulator port")
    demo.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING"])
    demo.set_defaults(handler=cmd_demo)
    from panelhub.cli import audit, backup, firmware, launch, user  # noqa: PLC0415 - ExitCode

    audit.register(commands)
    backup.register(commands)
    firmware.register(commands)
    launch.register(commands)
    user.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except PanelHubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FAILURE
