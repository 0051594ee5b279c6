"""``panelhub user unlock|reset-password NAME``: the local recovery commands.

They stand in for the physical reset button (SECURITY.md, "Login protection"): whoever can
run them on the panel server's console is trusted to get an account back. They work while
the service runs: the state database is SQLite in WAL mode with a busy timeout, and every
change is one immediate transaction, so the service and the console never see half of one.

``reset-password`` is also the way back when the account store is missing or damaged (the
web pages then answer 503 and name this command): the damaged file is moved aside, a new
store is made with ``NAME`` as an enabled admin, and no earlier password works any more.

The new password is printed once on stdout, never logged and never written to the audit
log; it must be changed at the first login.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import Final

from panelhub.cli.main import ExitCode
from panelhub.config.models import Settings
from panelhub.config.store import load_settings
from panelhub.errors import AccountError, StateStoreError
from panelhub.security.accounts import (
    ADMIN_NAME,
    PROVISIONED_MARKER,
    STATE_FILE,
    AccountStore,
    forget_initial_password,
)
from panelhub.security.audit import AuditEvent, AuditLog, DetailValue, Outcome
from panelhub.security.passwords import PasswordHasher, PasswordPolicy, generate_password
from panelhub.storage.db import Database

#: The interface the audit log names for these commands.
INTERFACE: Final = "console"
#: The acting user when the OS cannot name the one at the console.
CONSOLE_USER: Final = "console"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = commands.add_parser("user", help="recover an account on the local console")
    actions = user.add_subparsers(dest="user_command", required=True)
    unlock = actions.add_parser("unlock", help="end an account's login lock")
    reset = actions.add_parser(
        "reset-password",
        help="give an account a new random password (and recover a damaged account store)",
    )
    for action, handler in ((unlock, cmd_unlock), (reset, cmd_reset_password)):
        action.add_argument("name", help="the account's user name")
        add_location_arguments(action)
        action.set_defaults(handler=handler)


def add_location_arguments(action: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--config``: which installation a console command works on."""
    action.add_argument("--data-dir", type=Path, metavar="DIR",
                        help="the data directory (default: from --config, else "
                             f"{Settings().data_dir})")  # fmt: skip
    action.add_argument("--config", type=Path, metavar="FILE",
                        help="the configuration file the service runs with")  # fmt: skip


def settings_from_args(args: argparse.Namespace) -> Settings:
    settings = Settings() if args.config is None else load_settings(args.config)
    if args.data_dir is not None:
        settings = settings.model_copy(update={"data_dir": args.data_dir})
    return settings


def _keep_owner(data_dir: Path) -> None:
    """Give files made by root at the console to the service's user: the directory's owner.

    The packaged service runs as its own (dynamic) user; a store that ``sudo panelhub user
    reset-password`` created as root would be unreadable to it, and logins would stay off.
    """
    if os.geteuid() != 0:
        return
    owner = data_dir.stat()
    for path in data_dir.iterdir():
        if not (path.name.startswith(STATE_FILE) or path.name == PROVISIONED_MARKER):
            continue
        found = path.lstat()
        if (found.st_uid, found.st_gid) != (owner.st_uid, owner.st_gid):
            os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)


def console_user() -> str:
    try:
        return getpass.getuser() or CONSOLE_USER
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (a bare container)
        return CONSOLE_USER


def _audit(db: Database, event: AuditEvent, name: str, **details: DetailValue) -> None:
    AuditLog(db).record_sync(event, outcome=Outcome.SUCCESS, user=console_user(), source="",
                             interface=INTERFACE, details={"target": name, **details})  # fmt: skip


def cmd_unlock(args: argparse.Namespace) -> ExitCode:
    data_dir = settings_from_args(args).data_dir
    try:
        db = Database.open(data_dir / STATE_FILE, create=False)
    except StateStoreError as exc:
        raise StateStoreError(
            f"{exc}; `panelhub user reset-password NAME` recovers the account store",
            path=exc.path,
        ) from exc
    store = AccountStore(db, PasswordHasher())
    try:
        store.unlock_sync(args.name)
        _audit(db, AuditEvent.ACCOUNT_UNLOCKED, args.name)
    finally:
        store.close()
        _keep_owner(data_dir)
    print(f"{args.name}: unlocked; the next login with the right password gets in")
    return ExitCode.OK


def cmd_reset_password(args: argparse.Namespace) -> ExitCode:
    settings = settings_from_args(args)
    data_dir = settings.data_dir
    policy = PasswordPolicy(settings.web.password_policy)
    if not (data_dir / STATE_FILE).exists() and not (data_dir / PROVISIONED_MARKER).exists():
        # Never provisioned: most likely the wrong directory. Recovering here would make a
        # store the service does not use.
        raise StateStoreError(
            f"{data_dir} holds no PanelHub accounts; give --data-dir or --config", path=data_dir
        )
    hasher = PasswordHasher()
    store: AccountStore | None = None
    problem = ""
    try:
        store = AccountStore(Database.open(data_dir / STATE_FILE, create=False), hasher,
                             policy=policy)  # fmt: skip
    except StateStoreError as exc:
        problem = str(exc)
    if store is not None and not asyncio.run(store.list()):
        # Opens, but holds no account (emptied, or its rows lost): the service refuses it
        # as damaged, and only a recovery gets anyone back in.
        store.close()
        store, problem = None, "it holds no account"
    if store is None:
        print(f"the account store cannot be used ({problem});\nmoving it aside and making a "
              f"new one with {args.name!r} as an admin", file=sys.stderr)  # fmt: skip
        store, password = AccountStore.recover(data_dir, hasher, name=args.name, policy=policy)
        is_recovered = True
    else:
        try:
            password = asyncio.run(_reset(store, args.name))
        except BaseException:
            store.close()
            raise
        is_recovered = False
    try:
        _audit(store.db, AuditEvent.PASSWORD_CHANGED, args.name, reset=True,
               recovered=is_recovered)  # fmt: skip
    finally:
        store.close()
        _keep_owner(data_dir)
    if args.name == ADMIN_NAME:
        forget_initial_password(data_dir)  # it no longer holds a working password
    print(f"New password for {args.name!r}, shown once; it must be changed at the first login:")
    print(password)
    if is_recovered:
        print("restart the PanelHub service so that its web pages use the new account store",
              file=sys.stderr)  # fmt: skip
    return ExitCode.OK


async def _reset(store: AccountStore, name: str) -> str:
    account = await store.get(name)
    if account is None:
        raise AccountError(f"no account named {name!r}")
    password = generate_password(user_name=name)
    await store.set_password(account.id, password, must_change=True)
    return password
