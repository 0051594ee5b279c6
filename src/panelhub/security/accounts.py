"""User accounts: roles, password hashes, login with lockout, first-start provisioning.

Theory of operation:
- The accounts live in ``state.sqlite`` (``storage.db.Database``): one row per account with its
  argon2id hash and its login-protection state, so a lock survives restarts and is updated in
  the same transaction as the failure that causes it.
- Hashing is CPU work of tens of milliseconds: it runs in a worker thread, never on the event
  loop (which also carries the Modbus gateway) and never on the database thread.
- First start: when the data directory has never been provisioned, the store is created with
  an ``admin`` account whose random initial password must be changed at first login, and a
  disabled ``support`` account without a password. A ``provisioned`` marker file records that
  this happened.
- Fail closed: once provisioned, a missing, truncated, emptied or corrupt store is an error
  (``StateStoreError``), never a reason to provision again; no initial or old password can
  work until the console recovery command (``recover``) creates a fresh store. A store that
  holds accounts is never replaced by a first start, even if the marker is gone.
- A changed password is checkpointed into the main file before the change returns: SQLite
  replays its write-ahead log only while the log is intact, so a log deleted or damaged
  later would otherwise bring the old password back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Final, Literal

from panelhub.errors import AccountError, StateStoreError
from panelhub.security.lockout import LockoutPolicy, is_locked, register_failure
from panelhub.security.passwords import (
    PasswordHasher,
    PasswordPolicy,
    check_password,
    generate_password,
)
from panelhub.storage.db import Database, transaction

STATE_FILE: Final = "state.sqlite"
PROVISIONED_MARKER: Final = "provisioned"
#: Where the initial admin password is also written (0600) in case the console print is lost;
#: deleted once the password has been changed.
INITIAL_PASSWORD_FILE: Final = "initial-admin-password"  # noqa: S105 - a file name
ADMIN_NAME: Final = "admin"
SUPPORT_NAME: Final = "support"
#: Longest user name accepted; names are shown in pages and written to the audit log.
MAX_NAME_LENGTH: Final = 32


class Role(StrEnum):
    ADMIN = "admin"  # everything
    OPERATOR = "operator"  # acknowledge alarms, export data
    VIEWER = "viewer"  # read only


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    role: Role
    is_enabled: bool
    must_change_password: bool
    has_password: bool
    failed_logins: int
    locked_until: float
    created_at: str
    password_changed_at: str | None


class LoginOutcome(Enum):
    OK = "ok"
    BAD_CREDENTIALS = "bad credentials"  # unknown name, wrong password, disabled account
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class LoginResult:
    outcome: LoginOutcome
    account: Account | None = None
    #: Unix time the lock ends (LOCKED), or 0.
    locked_until: float = 0.0
    #: The name was known: the caller audits the name, not a hash of what was typed.
    is_known_name: bool = False


@dataclass(frozen=True, slots=True)
class Provisioning:
    """What opening the store did: on a first start, the initial admin password."""

    store: AccountStore
    initial_password: str | None


_COLUMNS: Final = (
    "id, name, role, is_enabled, must_change_password, password_hash IS NOT NULL, "
    "failed_logins, locked_until, created_at, password_changed_at"
)


def _account(row: tuple[object, ...]) -> Account:
    ident, name, role, enabled, must_change, has_password, failures, until, created, changed = row
    return Account(
        id=int(str(ident)),
        name=str(name),
        role=Role(str(role)),
        is_enabled=bool(enabled),
        must_change_password=bool(must_change),
        has_password=bool(has_password),
        failed_logins=int(str(failures)),
        locked_until=float(str(until)),
        created_at=str(created),
        password_changed_at=None if changed is None else str(changed),
    )


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def check_name(name: str) -> str:
    """A user name as stored: 1-32 printable characters, no surrounding spaces.

    Raises:
        AccountError: the name is empty, too long, or holds control characters.

    """
    if not name or name != name.strip():
        raise AccountError("a user name cannot be empty or start or end with a space")
    if len(name) > MAX_NAME_LENGTH:
        raise AccountError(f"a user name has at most {MAX_NAME_LENGTH} characters")
    if not name.isprintable():
        raise AccountError("a user name cannot hold control characters")
    return name


class AccountStore:
    """The accounts in one state database; every method is one transaction."""

    def __init__(
        self,
        db: Database,
        hasher: PasswordHasher,
        *,
        policy: PasswordPolicy = PasswordPolicy.GUIDE,
        lockout: LockoutPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.policy = policy
        self._hasher = hasher
        self._lockout = lockout or LockoutPolicy()
        self._clock = clock

    # -- opening

    @classmethod
    def open(
        cls,
        data_dir: Path,
        hasher: PasswordHasher,
        *,
        policy: PasswordPolicy = PasswordPolicy.GUIDE,
        lockout: LockoutPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Provisioning:
        """Open the store in ``data_dir``, provisioning it on the very first start.

        Raises:
            StateStoreError: the directory was provisioned but the store is missing or
                damaged (fail closed: use ``recover`` from the console).

        """
        path = data_dir / STATE_FILE
        marker = data_dir / PROVISIONED_MARKER
        if marker.exists():
            db = Database.open(path, create=False)
            _require_accounts(db, "has lost its accounts")  # an emptied (0-byte) file
            return Provisioning(cls(db, hasher, policy=policy, lockout=lockout, clock=clock), None)
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.exists():
            _refuse_accounts_without_marker(path)
        _remove_database(path)  # a half-made store from a first start that crashed
        db = Database.open(path)
        store = cls(db, hasher, policy=policy, lockout=lockout, clock=clock)
        password = store._provision_sync(data_dir)
        return Provisioning(store, password)

    @classmethod
    def recover(
        cls,
        data_dir: Path,
        hasher: PasswordHasher,
        *,
        name: str = ADMIN_NAME,
        policy: PasswordPolicy = PasswordPolicy.GUIDE,
    ) -> tuple[AccountStore, str]:
        """Console recovery: make ``name`` an enabled admin with a new random password.

        A damaged or missing store is moved aside (kept for analysis) and a new one created.
        The password must be changed at the next login. Returns the store and the password.
        """
        path = data_dir / STATE_FILE
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            db = Database.open(path, create=False)
        except StateStoreError:
            if path.exists():
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
                path.rename(path.with_name(f"{path.name}.damaged-{stamp}"))
            _remove_database(path)
            db = Database.open(path)
        store = cls(db, hasher, policy=policy)
        password = generate_password()
        hashed = hasher.hash(password)

        def write(connection: sqlite3.Connection) -> None:
            with transaction(connection):
                row = connection.execute(
                    "SELECT id FROM account WHERE name = ?", (name,)
                ).fetchone()
                if row is None:
                    _insert_admin(connection, check_name(name), hashed, _now_iso())
                else:
                    connection.execute(
                        "UPDATE account SET role = 'admin', password_hash = ?, is_enabled = 1, "
                        "must_change_password = 1, failed_logins = 0, locked_until = 0 "
                        "WHERE id = ?",
                        (hashed, row[0]),
                    )

        db.run_sync(write)
        _write_marker(data_dir)
        return store, password

    def _provision_sync(self, data_dir: Path) -> str:
        password = generate_password()
        hashed = self._hasher.hash(password)
        now = _now_iso()

        def write(connection: sqlite3.Connection) -> None:
            with transaction(connection):
                _insert_admin(connection, ADMIN_NAME, hashed, now)
                connection.execute(
                    "INSERT INTO account (name, role, password_hash, is_enabled, "
                    "must_change_password, created_at) VALUES (?, 'admin', NULL, 0, 1, ?)",
                    (SUPPORT_NAME, now),
                )

        self.db.run_sync(write)
        _write_private(data_dir / INITIAL_PASSWORD_FILE, password + "\n")
        # Last: until the marker exists, a crash above leaves a directory that provisions
        # again from scratch (the half-made store is replaced), never one that fails open.
        _write_marker(data_dir)
        return password

    def close(self) -> None:
        self.db.close()

    # -- reading

    async def get(self, name: str) -> Account | None:
        return await self.db.run(lambda connection: _select_by_name(connection, name))

    async def get_by_id(self, account_id: int) -> Account | None:
        return await self.db.run(lambda connection: _select_by_id(connection, account_id))

    async def list(self) -> list[Account]:
        def read(connection: sqlite3.Connection) -> list[Account]:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM account ORDER BY name"  # noqa: S608 - constant columns
            ).fetchall()
            return [_account(row) for row in rows]

        return await self.db.run(read)

    # -- logging in

    async def authenticate(self, name: str, password: str) -> LoginResult:
        """Check a login; count a failure (and lock) or reset the count on success.

        Unknown names, disabled accounts and accounts without a password cost the same
        hashing time as a real check, so timing does not tell which names exist.
        """
        record = await self.db.run(lambda connection: _select_hash(connection, "name", name))
        now = self._clock()
        if record is not None and is_locked(record[1].locked_until, now):
            return LoginResult(
                LoginOutcome.LOCKED, record[1], record[1].locked_until, is_known_name=True
            )
        stored = record[0] if record is not None else None
        is_match = await asyncio.to_thread(self._verify, stored, password)
        if record is None:
            return LoginResult(LoginOutcome.BAD_CREDENTIALS)
        account = record[1]
        if is_match and account.is_enabled:
            await self.db.run(lambda connection: _reset_failures(connection, account.id))
            if stored is not None and self._hasher.needs_rehash(stored):
                await self._store_hash(account.id, password, must_change=None)
            return LoginResult(LoginOutcome.OK, account, is_known_name=True)
        updated = await self.db.run(lambda connection: self._count_failure(connection, account.id))
        if updated is not None and is_locked(updated.locked_until, now):
            return LoginResult(
                LoginOutcome.LOCKED, updated, updated.locked_until, is_known_name=True
            )
        return LoginResult(LoginOutcome.BAD_CREDENTIALS, updated, is_known_name=True)

    def _verify(self, stored: str | None, password: str) -> bool:
        if stored is None:
            self._hasher.dummy_verify(password)
            return False
        return self._hasher.verify(stored, password)

    def _count_failure(self, connection: sqlite3.Connection, account_id: int) -> Account | None:
        now = self._clock()
        with transaction(connection):
            row = connection.execute(
                "SELECT failed_logins, locked_until FROM account WHERE id = ?", (account_id,)
            ).fetchone()
            if row is None:
                return None
            if not is_locked(row[1], now):
                # Read and written in one immediate transaction: concurrent failures all count.
                failures, locked_until = register_failure(row[0], now, self._lockout)
                connection.execute(
                    "UPDATE account SET failed_logins = ?, locked_until = ? WHERE id = ?",
                    (failures, locked_until or row[1], account_id),
                )
        return _select_by_id(connection, account_id)

    # -- changing

    async def change_password(self, account_id: int, current: str, new: str) -> None:
        """The user changes their own password, proving the current one.

        Raises:
            AccountError: the current password is wrong, or the account is gone.
            WeakPasswordError: the new password breaks the policy.

        """
        record = await self.db.run(lambda connection: _select_hash(connection, "id", account_id))
        if record is None:
            raise AccountError("the account no longer exists")
        stored, account = record
        if not await asyncio.to_thread(self._verify, stored, current):
            raise AccountError("the current password is wrong")
        if new == current:
            raise AccountError("the new password must differ from the current one")
        check_password(new, user_name=account.name, policy=self.policy)
        await self._store_hash(account_id, new, must_change=False)

    async def set_password(self, account_id: int, new: str, *, must_change: bool) -> None:
        """An admin (or the console) sets a password, checked against the policy."""
        account = await self.get_by_id(account_id)
        if account is None:
            raise AccountError("the account no longer exists")
        check_password(new, user_name=account.name, policy=self.policy)
        await self._store_hash(account_id, new, must_change=must_change)

    async def _store_hash(
        self, account_id: int, password: str, *, must_change: bool | None
    ) -> None:
        hashed = await asyncio.to_thread(self._hasher.hash, password)

        def write(connection: sqlite3.Connection) -> None:
            with transaction(connection):
                if must_change is None:  # a rehash at login: nothing else changes
                    connection.execute(
                        "UPDATE account SET password_hash = ? WHERE id = ?", (hashed, account_id)
                    )
                    return
                connection.execute(
                    "UPDATE account SET password_hash = ?, must_change_password = ?, "
                    "password_changed_at = ?, failed_logins = 0, locked_until = 0 WHERE id = ?",
                    (hashed, int(must_change), _now_iso(), account_id),
                )
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        await self.db.run(write)

    async def create(self, name: str, role: Role, password: str) -> Account:
        """A new enabled account whose password must be changed at first login.

        Raises:
            AccountError: the name is invalid or taken.
            WeakPasswordError: the password breaks the policy.

        """
        check_name(name)
        check_password(password, user_name=name, policy=self.policy)
        hashed = await asyncio.to_thread(self._hasher.hash, password)

        def write(connection: sqlite3.Connection) -> Account:
            with transaction(connection):
                try:
                    connection.execute(
                        "INSERT INTO account (name, role, password_hash, created_at) "
                        "VALUES (?, ?, ?, ?)",
                        (name, role.value, hashed, _now_iso()),
                    )
                except sqlite3.IntegrityError as exc:
                    raise AccountError(f"an account named {name!r} exists already") from exc
            account = _select_by_name(connection, name)
            assert account is not None  # noqa: S101 - inserted just above
            return account

        return await self.db.run(write)

    async def update(
        self, account_id: int, *, role: Role | None = None, is_enabled: bool | None = None
    ) -> Account:
        """Change an account's role or enabled state; the last enabled admin stays one.

        Raises:
            AccountError: the account is gone, or the change would leave no enabled admin.

        """

        def write(connection: sqlite3.Connection) -> Account:
            with transaction(connection):
                account = _select_by_id(connection, account_id)
                if account is None:
                    raise AccountError("the account no longer exists")
                new_role = account.role if role is None else role
                enabled = account.is_enabled if is_enabled is None else is_enabled
                if enabled and not account.has_password:
                    raise AccountError("set a password for this account before enabling it")
                is_admin_now = account.role is Role.ADMIN and account.is_enabled
                if is_admin_now and (new_role is not Role.ADMIN or not enabled):
                    others = connection.execute(
                        "SELECT COUNT(*) FROM account WHERE role = 'admin' AND is_enabled = 1 "
                        "AND id != ?",
                        (account_id,),
                    ).fetchone()[0]
                    if not others:
                        raise AccountError("at least one enabled admin account must remain")
                connection.execute(
                    "UPDATE account SET role = ?, is_enabled = ? WHERE id = ?",
                    (new_role.value, int(enabled), account_id),
                )
            updated = _select_by_id(connection, account_id)
            assert updated is not None  # noqa: S101 - updated just above
            return updated

        return await self.db.run(write)

    def unlock_sync(self, name: str) -> Account:
        """Console: clear an account's lock and failure count.

        Raises:
            AccountError: no such account.

        """

        def write(connection: sqlite3.Connection) -> Account:
            with transaction(connection):
                cursor = connection.execute(
                    "UPDATE account SET failed_logins = 0, locked_until = 0 WHERE name = ?",
                    (name,),
                )
                if not cursor.rowcount:
                    raise AccountError(f"no account named {name!r}")
            account = _select_by_name(connection, name)
            assert account is not None  # noqa: S101 - updated just above
            return account

        return self.db.run_sync(write)


def _select_by_name(connection: sqlite3.Connection, name: str) -> Account | None:
    record = _select_hash(connection, "name", name)
    return None if record is None else record[1]


def _select_by_id(connection: sqlite3.Connection, account_id: int) -> Account | None:
    record = _select_hash(connection, "id", account_id)
    return None if record is None else record[1]


def _select_hash(
    connection: sqlite3.Connection, key: Literal["id", "name"], value: int | str
) -> tuple[str | None, Account] | None:
    """An account and its stored hash, by id or by name (``key`` is one of two constants)."""
    row = connection.execute(
        f"SELECT password_hash, {_COLUMNS} FROM account WHERE {key} = ?",  # noqa: S608
        (value,),
    ).fetchone()
    return None if row is None else (row[0], _account(row[1:]))


def _insert_admin(connection: sqlite3.Connection, name: str, hashed: str, now: str) -> None:
    """An enabled admin whose password must be changed at first login (the column defaults)."""
    connection.execute(
        "INSERT INTO account (name, role, password_hash, created_at) VALUES (?, 'admin', ?, ?)",
        (name, hashed, now),
    )


def _count_accounts(connection: sqlite3.Connection) -> int:
    return int(connection.execute("SELECT count(*) FROM account").fetchone()[0])


def _require_accounts(db: Database, problem: str) -> None:
    """Close ``db`` and fail when it holds no account: nobody could log in, silently."""
    if not db.run_sync(_count_accounts):
        db.close()
        raise StateStoreError(f"{db.path} {problem}", path=db.path)


def _refuse_accounts_without_marker(path: Path) -> None:
    """A store in use whose marker is gone is damaged: a first start would erase it."""
    try:
        db = Database.open(path, create=False)
    except StateStoreError:
        return  # unreadable without a marker: a first start that crashed, made again
    try:
        count = db.run_sync(_count_accounts)
    finally:
        db.close()
    if count:
        raise StateStoreError(
            f"{path} holds accounts but the {PROVISIONED_MARKER!r} marker is missing", path=path
        )


def _reset_failures(connection: sqlite3.Connection, account_id: int) -> None:
    with transaction(connection):
        connection.execute(
            "UPDATE account SET failed_logins = 0, locked_until = 0 WHERE id = ?", (account_id,)
        )


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _write_marker(data_dir: Path) -> None:
    marker = data_dir / PROVISIONED_MARKER
    if not marker.exists():
        _write_private(marker, _now_iso() + "\n")


def _remove_database(path: Path) -> None:
    for name in (path.name, path.name + "-wal", path.name + "-shm"):
        path.with_name(name).unlink(missing_ok=True)


def forget_initial_password(data_dir: Path) -> None:
    """Delete the initial password file once the admin has chosen a password."""
    (data_dir / INITIAL_PASSWORD_FILE).unlink(missing_ok=True)
