"""A process that changes the admin's password, for the tests that kill it with SIGKILL.

    python -m tests.security.password_changer DATA_DIR WHERE CURRENT NEW [NEW ...]

WHERE is where the process kills itself:
- ``before-commit``: the new hash is written in the open transaction, COMMIT about to run
  (SQLite's statement trace shows the COMMIT before it executes);
- ``after-commit``: the change has returned, the initial password file not yet deleted (the
  point between the two steps of the page that changes a password);
- ``loop``: never; it changes the password to each NEW in turn, round and round, printing
  ``changing I`` before and ``changed I`` after each change, until the test kills it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sqlite3
import sys
from pathlib import Path

from panelhub.security.accounts import AccountStore, forget_initial_password
from panelhub.security.passwords import PasswordHasher


def fast_hasher() -> PasswordHasher:
    return PasswordHasher(memory_cost_kib=1024, time_cost=1)


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def kill_before_commit(connection: sqlite3.Connection) -> None:
    """On the database thread: die when the COMMIT of a password change is about to run."""
    armed = False

    def trace(statement: str) -> None:
        nonlocal armed
        if statement.startswith("UPDATE account SET password_hash"):
            armed = True
        elif armed and statement.strip().upper() == "COMMIT":
            print("about to commit", flush=True)
            die()

    connection.set_trace_callback(trace)


async def change(data_dir: Path, where: str, current: str, new: list[str]) -> None:
    provisioning = AccountStore.open(data_dir, fast_hasher())
    if provisioning.initial_password is not None:
        sys.exit("the store was not provisioned yet: nothing to change")
    store = provisioning.store
    admin = await store.get("admin")
    assert admin is not None
    if where == "before-commit":
        store.db.run_sync(kill_before_commit)
    if where != "loop":
        await store.change_password(admin.id, current, new[0])
        print("committed", flush=True)
        if where == "after-commit":
            die()
        forget_initial_password(data_dir)
        return
    for index, password in enumerate(itertools.cycle(new)):
        print(f"changing {index}", flush=True)
        await store.change_password(admin.id, current, password)
        print(f"changed {index}", flush=True)
        current = password


if __name__ == "__main__":
    data_dir, where, current, *new = sys.argv[1:]
    asyncio.run(change(Path(data_dir), where, current, new))
