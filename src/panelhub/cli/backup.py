"""``panelhub backup create|restore`` and ``panelhub factory-reset``: the console's maintenance.

The backup password is asked on the terminal (twice when making one); when stdin is not a
terminal, its first line is the password, so that scripts can pipe it in without it showing
in the process list. Each action is audited with the console as its interface; a restore or
a reset needs the service restarted (printed), which ends every web session.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from pathlib import Path
from typing import Final

import panelhub
from panelhub.cli.main import ExitCode
from panelhub.cli.user import (
    INTERFACE,
    add_location_arguments,
    console_user,
    settings_from_args,
)
from panelhub.devices.catalog import custom_model_id
from panelhub.errors import BackupError, StateStoreError
from panelhub.security import backup, restore
from panelhub.security.accounts import STATE_FILE
from panelhub.security.audit import AuditEvent, AuditLog, DetailValue, Outcome
from panelhub.security.reset import factory_reset
from panelhub.services.permanent import permanent_dir, permanently_disabled
from panelhub.storage.db import Database

#: What the console user types to confirm a factory reset (the guide asks for a deliberate act).
RESET_CONFIRMATION: Final = "ERASE"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("backup", help="encrypted backup of the configuration and keys")
    actions = parser.add_subparsers(dest="backup_command", required=True)
    create = actions.add_parser("create", help="write an encrypted backup file")
    create.add_argument("--output", "-o", type=Path, required=True, metavar="FILE")
    restore_parser = actions.add_parser("restore", help="replace this device's state with a backup")
    restore_parser.add_argument("file", type=Path, metavar="FILE")
    reset = commands.add_parser("factory-reset", help="erase every file of the data directory")
    reset.add_argument(
        "--yes", action="store_true", help=f"do not ask to type {RESET_CONFIRMATION}"
    )
    reset.add_argument("--factory-config", type=Path, metavar="FILE",
                       help="the configuration to bring back (default: built-in)")  # fmt: skip
    for action, handler in (
        (create, cmd_create),
        (restore_parser, cmd_restore),
        (reset, cmd_reset),
    ):
        add_location_arguments(action)
        action.set_defaults(handler=handler)


def read_password(prompt: str, *, confirm: bool) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass(prompt)
    if confirm and getpass.getpass("again: ") != password:
        raise BackupError("the two passwords differ", reason="passwords differ")
    return password


def audit_console(
    data_dir: Path, event: AuditEvent, outcome: Outcome, **details: DetailValue
) -> None:
    try:
        db = Database.open(data_dir / STATE_FILE, create=False)
    except StateStoreError:
        return  # no state database (an unprovisioned directory): nothing to record into
    try:
        AuditLog(db).record_sync(event, outcome=outcome, user=console_user(), source="",
                                 interface=INTERFACE, details=details)  # fmt: skip
    finally:
        db.close()


def cmd_create(args: argparse.Namespace) -> ExitCode:
    settings = settings_from_args(args)
    password = read_password(
        "backup password (6-32 characters, upper and lower case, a special one): ", confirm=True
    )
    contents = restore.take(settings.data_dir, settings)
    data = backup.seal(
        contents, password, product_version=panelhub.__version__, now=dt.datetime.now(dt.UTC)
    )
    temporary = args.output.with_name(args.output.name + ".part")
    temporary.unlink(missing_ok=True)
    with temporary.open("xb") as file:
        temporary.chmod(0o600)  # encrypted, but still the device's keys: owner only
        file.write(data)
    temporary.replace(args.output)
    audit_console(
        settings.data_dir, AuditEvent.BACKUP_CREATED, Outcome.SUCCESS, file=args.output.name
    )
    print(f"{args.output}: backup of {settings.data_dir}, {len(data)} bytes, encrypted")
    return ExitCode.OK


def cmd_restore(args: argparse.Namespace) -> ExitCode:
    settings = settings_from_args(args)
    try:
        data = _read_limited(args.file)
        password = read_password("backup password: ", confirm=False)
        header, contents = backup.open_backup(data, password)
        snapshot = restore.parse(contents, model_id_of=custom_model_id)
        restore.apply(snapshot, settings.data_dir, config_path=args.config, settings=settings)
    except BackupError as exc:
        audit_console(
            settings.data_dir, AuditEvent.RESTORE_REFUSED, Outcome.FAILURE, reason=exc.reason
        )
        raise
    audit_console(settings.data_dir, AuditEvent.RESTORE_OK, Outcome.SUCCESS, made=header.created,
           version=header.product_version, accounts=len(snapshot.accounts))  # fmt: skip
    print(f"restored the backup made {header.created} by PanelHub {header.product_version}")
    print("restart the PanelHub service: every user logs in again", file=sys.stderr)
    return ExitCode.OK


def _read_limited(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(backup.MAX_BACKUP_BYTES + 1)
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}", reason="unreadable file") from None
    if len(data) > backup.MAX_BACKUP_BYTES:
        raise BackupError(f"{path} is larger than a backup may be", reason=backup.TOO_LARGE)
    return data


def cmd_reset(args: argparse.Namespace) -> ExitCode:
    settings = settings_from_args(args)
    data_dir = settings.data_dir
    if not args.yes:
        print(f"This erases every file of {data_dir}: accounts, keys, certificates, the "
              f"datalog and the audit log. Type {RESET_CONFIRMATION} to go on: ",
              end="", flush=True)  # fmt: skip
        if sys.stdin.readline().strip() != RESET_CONFIRMATION:
            print("nothing erased", file=sys.stderr)
            return ExitCode.FAILURE
    erased = factory_reset(data_dir, config_path=args.config, factory_config=args.factory_config)
    kept = sorted(service.value for service in permanently_disabled(permanent_dir(data_dir)))
    print(f"factory reset: {erased} files erased in {data_dir}")
    if kept:
        print(f"still disabled for good: {', '.join(kept)}")
    print("restart the PanelHub service: its next start is a first start", file=sys.stderr)
    return ExitCode.OK
