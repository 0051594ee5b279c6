"""The one owner of an SQLite database file: one connection, one worker thread, migrations.

Why a thread: SQLite calls block, and with ``synchronous=FULL`` every committed audit record
waits for an fsync. The event loop that calls ``run`` also carries the Modbus gateway, so
the database work goes to a single worker thread, which also serialises every access (no
two transactions of ours ever race for the write lock).

Why ``user_version``: each migration script in ``storage/migrations/`` runs once, in name
order, in its own transaction; the number applied is kept in the database header.

Files: the database and its ``-wal``/``-shm`` companions are created 0600, since they hold
password hashes and the audit log (state) or the user's measurements (datalog).

Two kinds of file share this owner, told apart by a ``Schema``: ``STATE`` (accounts, audit;
``synchronous=FULL``, every commit survives a power cut) and ``DATALOG`` (time series, with its
own migrations in ``migrations/datalog/``; ``synchronous=NORMAL``: a power cut may lose the last
commits, which are samples the poller re-reads or counts as a gap, and never damages the file).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final, TypeVar

from panelhub.errors import DatalogStoreError, StateStoreError

T = TypeVar("T")

#: How long a statement waits for a lock held by another process (the console commands).
BUSY_TIMEOUT_MS: Final = 5_000


@dataclass(frozen=True, slots=True)
class Schema:
    """What kind of database a file is: its migrations, durability and error class."""

    #: Folder of the migration scripts, relative to the ``panelhub.storage`` package.
    migrations: str
    #: ``FULL`` waits for an fsync at every commit; ``NORMAL`` only at checkpoints.
    synchronous: str
    error: type[StateStoreError] | type[DatalogStoreError]
    #: Page size of a new file (SQLite cannot change it once the file is in WAL mode).
    page_size: int = 4096


#: Accounts and the audit log: nothing committed may be lost, so every commit is synced.
STATE: Final = Schema("migrations", "FULL", StateStoreError)
#: Time series: samples are re-pollable and written in batches; a power cut loses at most the
#: last batches (WAL keeps the file consistent), and syncing each batch would cost an fsync
#: per poll round on flash storage.
#: 64 KiB pages: a chunk is 1 to 4 KiB, and a page keeps on average half a chunk empty: 4 KiB
#: pages lost ~25 %, 16 KiB ~11 % (measured with bench/datalog/store.py).
DATALOG: Final = Schema("migrations/datalog", "NORMAL", DatalogStoreError, page_size=65_536)


def migration_scripts(schema: Schema = STATE) -> list[tuple[str, str]]:
    """(name, SQL) of every migration shipped in the package, in the order they apply."""
    folder = resources.files("panelhub.storage").joinpath(*schema.migrations.split("/"))
    scripts = [(entry.name, entry.read_text()) for entry in folder.iterdir() if entry.is_file()]
    return sorted(item for item in scripts if item[0].endswith(".sql"))


class Database:
    """One SQLite file, opened by ``open`` and used through ``run`` (async) or ``run_sync``."""

    def __init__(
        self,
        path: Path,
        connection: sqlite3.Connection,
        executor: ThreadPoolExecutor,
        *,
        schema: Schema = STATE,
    ) -> None:
        self.path = path
        self.schema = schema
        self._connection = connection
        self._executor = executor

    @classmethod
    def open(cls, path: Path, *, create: bool = True, schema: Schema = STATE) -> Database:
        """Open (and with ``create``, create) the database and bring its schema up to date.

        Raises:
            StateStoreError: (``DatalogStoreError`` for ``DATALOG``) the file is missing (and
                ``create`` is false), not a database, damaged, or newer than this version of
                PanelHub understands.

        """
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{path.name}")
        try:
            connection = executor.submit(_connect, path, create, schema).result()
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(path, connection, executor, schema=schema)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the worker thread; ``fn`` owns its transaction."""
        future = self._executor.submit(fn, self._connection)
        return await asyncio.wrap_future(future)

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``run`` for code without an event loop: the console commands."""
        return self._executor.submit(fn, self._connection).result()

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Queue ``fn(connection)`` on the worker thread and return at once.

        For writers that must not wait, even without an event loop (the audit log's
        ``emit`` from a synchronous callback). The executor holds the future until it is
        done, and ``close`` waits for every queued call.

        Raises:
            RuntimeError: the database is closed.

        """
        return self._executor.submit(fn, self._connection)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # already shut down
            self._executor.submit(self._connection.close).result()
        self._executor.shutdown(wait=True)


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection, *, immediate: bool = True) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception.

    Immediate: the write lock is taken at the start, so a read-then-write (a failure count,
    the last audit record's hash) cannot interleave with another process's writer.
    """
    connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        connection.rollback()
        raise
    connection.commit()


def _connect(path: Path, create: bool, schema: Schema) -> sqlite3.Connection:
    if not path.exists():
        if not create:
            raise schema.error(f"{path} does not exist", path=path)
        _create_private_file(path)
    try:
        # Autocommit off at the driver level: transactions are explicit (``transaction``).
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:  # pragma: no cover - a path that exists but cannot be opened
        raise schema.error(f"cannot open {path}: {exc}", path=path) from exc
    try:
        _configure(connection, path, schema)
        _migrate(connection, path, schema)
    except BaseException:
        connection.close()
        raise
    return connection


def _create_private_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def _configure(connection: sqlite3.Connection, path: Path, schema: Schema) -> None:
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if connection.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise schema.error(f"{path} is damaged (integrity check failed)", path=path)
        connection.execute(f"PRAGMA page_size = {schema.page_size}")  # no effect once written
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {schema.synchronous}")
        connection.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        raise schema.error(f"{path} is not a usable database: {exc}", path=path) from exc
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            companion.chmod(0o600)


def _migrate(connection: sqlite3.Connection, path: Path, schema: Schema) -> None:
    scripts = migration_scripts(schema)
    applied = connection.execute("PRAGMA user_version").fetchone()[0]
    if applied > len(scripts):
        raise schema.error(
            f"{path} was written by a newer PanelHub (schema {applied}, this one knows "
            f"{len(scripts)})",
            path=path,
        )
    for number, (name, sql) in enumerate(scripts[applied:], start=applied + 1):
        try:
            connection.executescript(
                f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;"
            )
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                connection.rollback()
            raise schema.error(f"{path}: migration {name} failed: {exc}", path=path) from exc
