"""Accounts: first-start provisioning, fail closed on a lost store, recovery, lockout counts."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from panelhub.errors import AccountError, StateStoreError, WeakPasswordError
from panelhub.security.accounts import (
    INITIAL_PASSWORD_FILE,
    STATE_FILE,
    AccountStore,
    LoginOutcome,
    Role,
)
from panelhub.security.passwords import PasswordHasher
from tests.clock import Clock

NEW_PASSWORD = "Switchboard-Room7"  # noqa: S105 - a test password


def hasher() -> PasswordHasher:
    return PasswordHasher(memory_cost_kib=1024, time_cost=1)


def open_store(data_dir: Path, clock: Clock | None = None) -> tuple[AccountStore, str | None]:
    provisioning = AccountStore.open(data_dir, hasher(), clock=clock or Clock())
    return provisioning.store, provisioning.initial_password


async def test_first_start_provisions_admin_and_a_disabled_support_account(tmp_path):
    store, password = open_store(tmp_path)
    try:
        assert password is not None
        file = tmp_path / INITIAL_PASSWORD_FILE
        assert file.read_text().strip() == password
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        accounts = {a.name: a for a in await store.list()}
        assert accounts["admin"].role is Role.ADMIN
        assert accounts["admin"].must_change_password
        assert not accounts["support"].is_enabled
        assert (await store.authenticate("support", "")).outcome is LoginOutcome.BAD_CREDENTIALS
        result = await store.authenticate("admin", password)
        assert result.outcome is LoginOutcome.OK
    finally:
        store.close()
    again, second = open_store(tmp_path)
    again.close()
    assert second is None  # never a second initial password


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage"])
async def test_a_lost_or_damaged_store_fails_closed(tmp_path, damage):
    store, initial = open_store(tmp_path)
    assert initial is not None
    admin = await store.get("admin")
    assert admin is not None
    await store.change_password(admin.id, initial, NEW_PASSWORD)
    store.close()
    path = tmp_path / STATE_FILE
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:2048])
    else:
        path.write_bytes(b"\x00garbage" * 4096)
    with pytest.raises(StateStoreError):
        open_store(tmp_path)
    # Opening again does not provision a new initial password either.
    with pytest.raises(StateStoreError):
        open_store(tmp_path)


async def test_console_recovery_gives_a_new_password_and_the_old_ones_stay_dead(tmp_path):
    store, initial = open_store(tmp_path)
    assert initial is not None
    store.close()
    (tmp_path / STATE_FILE).write_bytes(b"damaged" * 1000)
    recovered, password = AccountStore.recover(tmp_path, hasher())
    try:
        assert password != initial
        assert (await recovered.authenticate("admin", initial)).outcome is not LoginOutcome.OK
        result = await recovered.authenticate("admin", password)
        assert result.outcome is LoginOutcome.OK
        assert result.account is not None
        assert result.account.must_change_password
    finally:
        recovered.close()
    assert list(tmp_path.glob(f"{STATE_FILE}.damaged-*"))  # kept for analysis


async def test_concurrent_failures_all_count(tmp_path):
    store, _ = open_store(tmp_path)
    try:
        results = await asyncio.gather(*(store.authenticate("admin", "wrong") for _ in range(10)))
        admin = await store.get("admin")
        assert admin is not None
        assert admin.failed_logins == 10
        assert [r.outcome for r in results].count(LoginOutcome.LOCKED) == 1
    finally:
        store.close()


async def test_lock_survives_a_restart(tmp_path):
    clock = Clock()
    store, initial = open_store(tmp_path, clock)
    for _ in range(10):
        await store.authenticate("admin", "wrong")
    store.close()
    again, _ = open_store(tmp_path, clock)
    try:
        assert initial is not None
        assert (await again.authenticate("admin", initial)).outcome is LoginOutcome.LOCKED
        again.unlock_sync("admin")
        assert (await again.authenticate("admin", initial)).outcome is LoginOutcome.OK
    finally:
        again.close()


async def test_password_rules_and_the_last_admin(tmp_path):
    store, initial = open_store(tmp_path)
    try:
        admin = await store.get("admin")
        assert admin is not None
        assert initial is not None
        with pytest.raises(AccountError, match="current password is wrong"):
            await store.change_password(admin.id, "wrong", NEW_PASSWORD)
        with pytest.raises(WeakPasswordError):
            await store.change_password(admin.id, initial, "password")
        with pytest.raises(AccountError, match="enabled admin"):
            await store.update(admin.id, role=Role.VIEWER)
        with pytest.raises(AccountError, match="enabled admin"):
            await store.update(admin.id, is_enabled=False)
        viewer = await store.create("operator1", Role.VIEWER, NEW_PASSWORD)
        assert viewer.must_change_password
        with pytest.raises(AccountError, match="exists already"):
            await store.create("OPERATOR1", Role.VIEWER, NEW_PASSWORD)
        with pytest.raises(AccountError):
            await store.create(" spaced", Role.VIEWER, NEW_PASSWORD)
    finally:
        store.close()
