"""``panelhub audit verify``: check the audit log's hash chain from the console.

It opens the state database next to the running service, which is safe: SQLite's WAL lets
it read a consistent snapshot while the service keeps appending.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from panelhub.cli.main import ExitCode
from panelhub.security.accounts import STATE_FILE
from panelhub.security.audit import AuditLog, ChainIntact
from panelhub.storage.db import Database

#: The state database in the data directory (ARCHITECTURE.md, "Data that lives on disk").


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser("audit", help="check the audit log")
    actions = audit.add_subparsers(dest="audit_command", required=True)
    verify = actions.add_parser("verify", help="name the first edited, deleted or moved record")
    verify.add_argument("--data-dir", type=Path, default=Path("var"), help="default ./var")
    verify.set_defaults(handler=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> ExitCode:
    # create=False: a missing database is an error (StateStoreError), not an empty log.
    db = Database.open(args.data_dir / STATE_FILE, create=False)
    try:
        result = AuditLog(db).verify_sync()
    finally:
        db.close()
    if isinstance(result, ChainIntact):
        print(f"audit log OK: {result.count} records")
        return ExitCode.OK
    print(f"audit log BROKEN at record {result.record_id}: {result.reason}")
    return ExitCode.AUDIT_BROKEN
