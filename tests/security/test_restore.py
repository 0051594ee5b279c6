"""Restore: a backup brings the whole state back, or nothing, even across a crash."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from panelhub.config.store import load_settings
from panelhub.devices.catalog import custom_model_id
from panelhub.errors import BackupError
from panelhub.security import certs, restore
from panelhub.security.accounts import AccountStore, Role
from tests.security.devicestate import HASHER, DeviceState, provision, snapshot


def take(state: DeviceState) -> bytes:
    return restore.take(state.data_dir, load_settings(state.config))


def change_everything(state: DeviceState) -> None:
    """What happens to a device between its backup and the day it is restored."""
    store = AccountStore.open(state.data_dir, HASHER).store
    asyncio.run(store.create("intruder", Role.ADMIN, "Hj3#kLm9-Pqr2!w"))
    store.close()
    shutil.rmtree(state.data_dir / "tls")
    certs.ensure_certificate(
        state.data_dir / "tls", host_names=["other.test"], addresses=["127.0.0.9"]
    )
    shutil.rmtree(state.data_dir / "models")
    for path in (state.data_dir / "trust").glob("*.pem"):
        path.unlink()
    (state.data_dir / "audit-key").unlink()
    (state.data_dir / "audit-key").write_bytes(bytes(32))
    state.config.write_text(state.config.read_text().replace("Europe/Paris", "UTC"))


def apply(state: DeviceState, contents: bytes) -> None:
    snapshot_ = restore.parse(contents, model_id_of=custom_model_id)
    restore.apply(
        snapshot_, state.data_dir, config_path=state.config, settings=load_settings(state.config)
    )


def test_a_restore_brings_back_accounts_keys_certificate_models_trust_and_settings(
    tmp_path: Path,
) -> None:
    state = provision(tmp_path)
    before = snapshot(state)
    contents = take(state)
    change_everything(state)
    assert snapshot(state) != before

    apply(state, contents)

    assert snapshot(state) == before
    assert load_settings(state.config).timezone == "Europe/Paris"
    assert not (state.data_dir / restore.COMMIT).exists()
    assert (state.data_dir / "tls" / certs.KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_a_backup_restored_on_another_device_keeps_that_device_data_directory(
    tmp_path: Path,
) -> None:
    source = provision(tmp_path / "a")
    target = provision(tmp_path / "b")
    apply(target, take(source))
    restored = snapshot(target)
    assert restored["accounts"] == snapshot(source)["accounts"]
    assert restored["files"] == snapshot(source)["files"]
    assert load_settings(target.config).data_dir == target.data_dir
    assert not (target.data_dir / "initial-admin-password").exists()


def test_a_crash_after_the_commit_point_is_finished_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = provision(tmp_path)
    before = snapshot(state)
    contents = take(state)
    change_everything(state)

    def crash(data_dir: Path) -> None:
        raise SystemExit("power cut")

    monkeypatch.setattr(restore, "finish", crash)
    with pytest.raises(SystemExit):
        apply(state, contents)
    monkeypatch.undo()
    assert (state.data_dir / restore.COMMIT).is_dir()

    restore.recover(state.data_dir)

    assert snapshot(state) == before
    assert not (state.data_dir / restore.COMMIT).exists()


def test_a_crash_before_the_commit_point_leaves_the_state_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = provision(tmp_path)
    contents = take(state)
    change_everything(state)
    changed = snapshot(state)
    real_rename = Path.rename

    def crash_at_commit(self: Path, target: Path) -> Path:
        if Path(target).name == restore.COMMIT:
            raise SystemExit("power cut")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", crash_at_commit)
    with pytest.raises(SystemExit):
        apply(state, contents)
    monkeypatch.undo()

    restore.recover(state.data_dir)

    assert snapshot(state) == changed
    assert not (state.data_dir / restore.STAGING).exists()


def _rewrite(contents: bytes, change: dict[str, bytes | None]) -> bytes:
    members = {}
    with tarfile.open(fileobj=io.BytesIO(contents)) as archive:
        for info in archive:
            file = archive.extractfile(info)
            assert file is not None
            members[info.name] = file.read()
    for name, data in change.items():
        if data is None:
            members.pop(name)
        else:
            members[name] = data
    return restore.tar_members(members)


def _accounts_without_admin(contents: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(contents)) as archive:
        file = archive.extractfile("accounts.json")
        assert file is not None
        accounts = json.loads(file.read())
    return json.dumps([a for a in accounts if a["role"] != "admin"]).encode()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"../evil": b"x"}, "unexpected entry"),
        ({"tls/authorized_keys": b"x"}, "unexpected entry"),
        ({"accounts.json": None}, "accounts.json is missing"),
        ({"config.toml": b"[web]\nport = 'eighty'\n"}, "settings do not validate"),
        (
            {"tls/key.pem": b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
            "damaged contents",
        ),
        ({"models/canary-model.toml": b'id = "other"\n'}, "damaged contents"),
        ({"trust/x.pem": b"not a key"}, "damaged contents"),
        ({"audit-key": b"short"}, "audit key"),
    ],
)
def test_damaged_contents_are_refused_and_nothing_changes(
    tmp_path: Path, change: dict[str, bytes | None], words: str
) -> None:
    state = provision(tmp_path)
    contents = _rewrite(take(state), change)
    change_everything(state)
    changed = snapshot(state)
    with pytest.raises(BackupError, match=words):
        apply(state, contents)
    assert snapshot(state) == changed


def test_a_backup_without_an_admin_who_can_log_in_is_refused(tmp_path: Path) -> None:
    state = provision(tmp_path)
    contents = take(state)
    contents = _rewrite(contents, {"accounts.json": _accounts_without_admin(contents)})
    with pytest.raises(BackupError, match="no enabled admin"):
        apply(state, contents)


@pytest.mark.parametrize(
    "change",
    [
        lambda accounts: [*accounts, {**accounts[0], "name": accounts[0]["name"].upper()}],
        lambda accounts: [{**accounts[0], "created_at": None}, *accounts[1:]],
        lambda accounts: [{**accounts[0], "is_enabled": {}}, *accounts[1:]],
    ],
)
def test_accounts_the_table_would_refuse_are_refused_before_anything_changes(
    tmp_path: Path, change
) -> None:
    """The accounts go in last: one the database refuses there would leave a half restore."""
    state = provision(tmp_path)
    contents = take(state)
    with tarfile.open(fileobj=io.BytesIO(contents)) as archive:
        file = archive.extractfile("accounts.json")
        assert file is not None
        accounts = json.loads(file.read())
    contents = _rewrite(contents, {"accounts.json": json.dumps(change(accounts)).encode()})
    change_everything(state)
    changed = snapshot(state)
    with pytest.raises(BackupError, match=r"twice|wrong type"):
        apply(state, contents)
    assert snapshot(state) == changed
    assert not (state.data_dir / restore.COMMIT).exists()
