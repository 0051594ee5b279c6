"""``panelhub launch [--slots DIR] -- run --config FILE``: the supervisor of a device install."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from panelhub.cli.firmware import DEFAULT_SLOTS
from panelhub.cli.main import ExitCode
from panelhub.launcher import HEALTH_TIMEOUT_S, Launcher
from panelhub.logconfig import configure_logging


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    launch = commands.add_parser(
        "launch", help="run the service from its software slot, with fallback after an update"
    )
    launch.add_argument(
        "--slots", type=Path, default=DEFAULT_SLOTS, help=f"default {DEFAULT_SLOTS}"
    )
    launch.add_argument(
        "--cache-dir", type=Path, help="bytecode caches (default: a new temporary directory)"
    )
    launch.add_argument("--health-timeout-s", type=float, default=HEALTH_TIMEOUT_S)
    launch.add_argument(
        "--data-dir", type=Path, help="its trust anchors check a slot before it runs"
    )
    launch.add_argument("service_args", nargs=argparse.REMAINDER, metavar="-- run --config FILE")
    launch.set_defaults(handler=cmd_launch)


def cmd_launch(args: argparse.Namespace) -> ExitCode:
    configure_logging("INFO")
    service_args = [a for a in args.service_args if a != "--"] or ["run"]
    with tempfile.TemporaryDirectory(prefix="panelhub-pycache-") as cache:
        launcher = Launcher(
            args.slots,
            service_args,
            cache_dir=args.cache_dir or Path(cache),
            health_timeout_s=args.health_timeout_s,
            data_dir=args.data_dir,
        )
        code = launcher.run()
    return ExitCode.OK if code == 0 else ExitCode.FAILURE
