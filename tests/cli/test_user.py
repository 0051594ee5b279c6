"""``panelhub user unlock|reset-password`` as the owner runs them on the panel's console.

A real process on a real data directory, while this test holds the same state database open
the way the running service does.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import re
import signal
import sqlite3
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from panelhub.errors import StateStoreError
from panelhub.security.accounts import AccountStore, LoginOutcome, Role
from panelhub.security.audit import AuditEvent, AuditFilter, AuditLog
from panelhub.security.passwords import PasswordHasher
from tests.cli.test_cli import free_port

KNOWN_PASSWORD = "Switchboard-Room7"  # noqa: S105 - a test password
#: Quick hashes for the accounts this test makes; the command hashes with the product's own.
FAST = PasswordHasher(memory_cost_kib=1024, time_cost=1)


async def panelhub(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "panelhub", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AccountStore]:
    """A provisioned data directory, its store open as the running service holds it."""
    provisioning = AccountStore.open(tmp_path, FAST)
    yield provisioning.store
    provisioning.store.close()


def password_printed(out: str) -> str:
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert "must be changed" in lines[0]
    return lines[1]


async def console_records(store: AccountStore, event: AuditEvent):
    records = await AuditLog(store.db).query(AuditFilter(event=event))
    return [r for r in records if r.interface == "console"]


async def test_unlock_lets_the_right_password_in_after_ten_failures(store, tmp_path):
    account = await store.create("olga", Role.OPERATOR, KNOWN_PASSWORD)
    for _ in range(10):
        await store.authenticate("olga", "wrong guess")
    locked = await store.authenticate("olga", KNOWN_PASSWORD)
    assert locked.outcome is LoginOutcome.LOCKED
    code, out, err = await panelhub("user", "unlock", "olga", "--data-dir", str(tmp_path))
    assert (code, err) == (0, "")
    assert "olga: unlocked" in out
    result = await store.authenticate("olga", KNOWN_PASSWORD)
    assert result.outcome is LoginOutcome.OK
    assert result.account is not None
    assert result.account.id == account.id
    [record] = await console_records(store, AuditEvent.ACCOUNT_UNLOCKED)
    assert (record.user, record.outcome) == (getpass.getuser(), "success")
    assert record.details == {"target": "olga"}
    code, out, _ = await panelhub("audit", "verify", "--data-dir", str(tmp_path))
    assert (code, out.startswith("audit log OK")) == (0, True)


async def test_reset_password_prints_one_that_works_once_changed(store, tmp_path):
    await store.create("olga", Role.VIEWER, KNOWN_PASSWORD)
    code, out, err = await panelhub("user", "reset-password", "olga", "--data-dir", str(tmp_path))
    assert code == 0, err
    password = password_printed(out)
    assert password not in err
    assert (
        await store.authenticate("olga", KNOWN_PASSWORD)
    ).outcome is LoginOutcome.BAD_CREDENTIALS
    result = await store.authenticate("olga", password)
    assert result.outcome is LoginOutcome.OK
    assert result.account is not None
    assert result.account.must_change_password
    assert result.account.role is Role.VIEWER  # a reset is not a promotion
    [record] = await console_records(store, AuditEvent.PASSWORD_CHANGED)
    assert record.user == getpass.getuser()
    assert record.details == {"target": "olga", "reset": True, "recovered": False}
    for stored in await AuditLog(store.db).query():
        assert password not in "\n".join([stored.user, *map(str, stored.details.values())])


async def test_reset_password_of_the_admin_forgets_the_initial_password_file(store, tmp_path):
    assert (tmp_path / "initial-admin-password").exists()
    code, out, _ = await panelhub("user", "reset-password", "admin", "--data-dir", str(tmp_path))
    assert code == 0
    assert not (tmp_path / "initial-admin-password").exists()
    new = password_printed(out)
    assert (await store.authenticate("admin", new)).outcome is LoginOutcome.OK


async def test_the_data_directory_comes_from_the_configuration_file(store, tmp_path):
    await store.create("olga", Role.VIEWER, KNOWN_PASSWORD)
    config = tmp_path / "panelhub.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n')
    code, out, err = await panelhub("user", "reset-password", "olga", "--config", str(config))
    assert code == 0, err
    assert (await store.authenticate("olga", password_printed(out))).outcome is LoginOutcome.OK


async def test_unknown_user_is_a_clear_error_and_changes_nothing(store, tmp_path):
    before = await AuditLog(store.db).query()
    for command in ("unlock", "reset-password"):
        code, out, err = await panelhub("user", command, "nobody", "--data-dir", str(tmp_path))
        assert (code, out) == (1, "")
        assert "no account named 'nobody'" in err
    assert await AuditLog(store.db).query() == before


async def test_reset_password_refuses_a_directory_that_was_never_set_up(tmp_path):
    empty = tmp_path / "not-the-data-dir"
    empty.mkdir()
    code, out, err = await panelhub("user", "reset-password", "admin", "--data-dir", str(empty))
    assert (code, out) == (1, "")
    assert "holds no PanelHub accounts" in err
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize("damage", ["deleted", "truncated", "corrupted", "emptied", "no accounts"])
async def test_reset_password_recovers_a_damaged_store_and_no_old_password_works(tmp_path, damage):
    provisioning = AccountStore.open(tmp_path, FAST)
    initial = provisioning.initial_password
    assert initial is not None
    store = provisioning.store
    admin = await store.get("admin")
    assert admin is not None
    await store.set_password(admin.id, KNOWN_PASSWORD, must_change=False)
    store.close()
    state = tmp_path / "state.sqlite"
    if damage == "deleted":
        state.unlink()
    elif damage == "truncated":
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    elif damage == "emptied":
        state.write_bytes(b"")
    elif damage == "no accounts":
        with contextlib.closing(sqlite3.connect(state)) as connection, connection:
            connection.execute("DELETE FROM account")
    else:
        state.write_bytes(b"\x00garbage" * 4096)
    with pytest.raises(StateStoreError):  # fail closed until the console recovers it
        AccountStore.open(tmp_path, FAST)
    code, out, err = await panelhub("user", "reset-password", "admin", "--data-dir", str(tmp_path))
    assert code == 0, err
    assert "moving it aside" in err
    password = password_printed(out)
    kept = list(tmp_path.glob("state.sqlite.damaged-*"))
    assert len(kept) == (1 if damage in ("truncated", "corrupted") else 0)
    recovered = AccountStore.open(tmp_path, FAST).store
    try:
        for old in (KNOWN_PASSWORD, initial):
            outcome = (await recovered.authenticate("admin", old)).outcome
            assert outcome is LoginOutcome.BAD_CREDENTIALS
        result = await recovered.authenticate("admin", password)
        assert result.outcome is LoginOutcome.OK
        assert result.account is not None
        assert result.account.must_change_password
        assert result.account.role is Role.ADMIN
        [record] = await console_records(recovered, AuditEvent.PASSWORD_CHANGED)
        assert record.details == {"target": "admin", "reset": True, "recovered": True}
    finally:
        recovered.close()
    code, out, _ = await panelhub("audit", "verify", "--data-dir", str(tmp_path))
    assert (code, out) == (0, "audit log OK: 1 records\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another user")
async def test_a_store_recovered_by_root_belongs_to_the_services_user(tmp_path):
    AccountStore.open(tmp_path, FAST).store.close()
    service_user = 65534  # nobody: stands in for the service's dynamic user
    for path in (tmp_path, *tmp_path.iterdir()):
        os.chown(path, service_user, service_user)
    (tmp_path / "state.sqlite").unlink()
    code, _, err = await panelhub("user", "reset-password", "admin", "--data-dir", str(tmp_path))
    assert code == 0, err
    owners = {path.name: path.stat().st_uid for path in tmp_path.iterdir()}
    assert owners["state.sqlite"] == service_user
    assert set(owners.values()) == {service_user}


SERVICE_CONFIG = """
data_dir = "{data_dir}"
[web]
port = {web_port}
"""


async def web_login(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    client.cookies.clear()  # each attempt as a browser without a session
    form = await client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert match is not None, (form.status_code, form.text)
    return await client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": match.group(1), "next": "/"},
        headers={"origin": str(client.base_url).rstrip("/")},
    )


async def pages_up(cafile: Path, web_port: int) -> ssl.SSLContext:
    """Wait until the service made its certificate and serves the pages; its TLS context."""
    async with asyncio.timeout(10):
        while True:  # bounded by the timeout
            try:
                tls = ssl.create_default_context(cafile=cafile)
                async with httpx.AsyncClient(verify=tls) as probe:
                    await probe.get(f"https://127.0.0.1:{web_port}/healthz")
            except (FileNotFoundError, ssl.SSLError, httpx.ConnectError):
                await asyncio.sleep(0.1)
            else:
                return tls


async def test_console_commands_work_while_the_service_runs(tmp_path):
    web_port = free_port()
    config = tmp_path / "panelhub.toml"
    config.write_text(SERVICE_CONFIG.format(data_dir=tmp_path / "data", web_port=web_port))
    service = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "panelhub", "run", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        tls = await pages_up(tmp_path / "data" / "tls" / "cert.pem", web_port)
        client = httpx.AsyncClient(base_url=f"https://127.0.0.1:{web_port}", verify=tls)
        async with client:
            initial = (tmp_path / "data" / "initial-admin-password").read_text().strip()
            for _ in range(10):
                await web_login(client, "admin", "wrong guess")
            locked = await web_login(client, "admin", initial)
            assert "locked until" in locked.text
            code, _, err = await panelhub("user", "unlock", "admin", "--config", str(config))
            assert code == 0, err
            unlocked = await web_login(client, "admin", initial)
            assert (unlocked.status_code, unlocked.headers["location"]) == (303, "/password")
            code, out, err = await panelhub("user", "reset-password", "admin", "--config",
                                            str(config))  # fmt: skip
            assert code == 0, err
            new = password_printed(out)
            assert (await web_login(client, "admin", initial)).status_code == 401
            again = await web_login(client, "admin", new)
            assert (again.status_code, again.headers["location"]) == (303, "/password")
    finally:
        service.send_signal(signal.SIGTERM)
        _, service_err = await service.communicate()
    assert service.returncode == 0, service_err.decode()
    assert new not in service_err.decode()
    code, out, _ = await panelhub("audit", "verify", "--data-dir", str(tmp_path / "data"))
    assert code == 0, out
