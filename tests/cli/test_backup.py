"""``panelhub backup`` and ``panelhub factory-reset`` as a technician runs them at the console."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

from panelhub.security import certs, reset
from panelhub.security.accounts import AccountStore, Role
from panelhub.services.permanent import RadioService, disable_permanently, permanent_dir
from tests.security.devicestate import HASHER, DeviceState, provision, snapshot

PASSWORD = "Backup#2026"  # noqa: S105 - a test password


def panelhub(*args: str, cwd: Path, stdin: str = "") -> tuple[int, str, str]:
    """Sync on purpose: the set-up (``provision``) runs its own event loop."""
    done = subprocess.run([sys.executable, "-m", "panelhub", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def audit_events(state: DeviceState) -> list[tuple[str, str]]:
    with sqlite3.connect(state.data_dir / "state.sqlite") as connection:
        return connection.execute("SELECT event, outcome FROM audit_record ORDER BY id").fetchall()


def create(state: DeviceState, tmp_path: Path, name: str = "panel.backup") -> Path:
    code, out, err = panelhub("backup", "create", "-o", name, "--config", str(state.config),
                                    cwd=tmp_path, stdin=PASSWORD + "\n")  # fmt: skip
    assert code == 0, err
    assert "encrypted" in out
    return tmp_path / name


def test_a_backup_holds_no_secret_in_clear_and_restores_the_same_state(tmp_path: Path):
    state = provision(tmp_path)
    before = snapshot(state)
    backup_file = create(state, tmp_path)
    assert backup_file.stat().st_mode & 0o777 == 0o600
    data = backup_file.read_bytes()
    for canary in state.canaries():
        assert canary not in data
    assert ("backup.created", "success") in audit_events(state)

    store = AccountStore.open(state.data_dir, HASHER).store
    asyncio.run(store.create("intruder", Role.ADMIN, "Hj3#kLm9-Pqr2!w"))
    store.close()
    code, out, err = panelhub("backup", "restore", str(backup_file),
                                    "--config", str(state.config),
                                    cwd=tmp_path, stdin=PASSWORD + "\n")  # fmt: skip
    assert code == 0, err
    assert "restored the backup" in out
    assert "every user logs in again" in err
    assert snapshot(state) == before
    assert audit_events(state)[-1] == ("restore.ok", "success")


def test_a_wrong_password_or_a_flipped_byte_is_refused_and_nothing_changes(tmp_path: Path):
    state = provision(tmp_path)
    backup_file = create(state, tmp_path)
    flipped = bytearray(backup_file.read_bytes())
    flipped[len(flipped) - 40] ^= 0x10
    (tmp_path / "flipped.backup").write_bytes(bytes(flipped))
    before = snapshot(state)
    for file, password in ((backup_file, "Backup#2027"), (tmp_path / "flipped.backup", PASSWORD)):
        code, _, err = panelhub("backup", "restore", str(file), "--config", str(state.config),
                                      cwd=tmp_path, stdin=password + "\n")  # fmt: skip
        assert code == 1
        assert "wrong password or damaged file" in err
        assert snapshot(state) == before
    assert audit_events(state)[-2:] == [("restore.refused", "failure")] * 2


def test_a_backup_password_outside_the_guide_rule_makes_no_file(tmp_path: Path):
    state = provision(tmp_path)
    code, _, err = panelhub("backup", "create", "-o", "b", "--config", str(state.config),
                                  cwd=tmp_path, stdin="password\n")  # fmt: skip
    assert code == 1
    assert "upper-case" in err
    assert not (tmp_path / "b").exists()


def test_a_random_file_is_not_restored(tmp_path: Path):
    state = provision(tmp_path)
    (tmp_path / "random.bin").write_bytes(bytes(range(256)) * 4)
    code, _, err = panelhub("backup", "restore", "random.bin", "--config", str(state.config),
                                  cwd=tmp_path, stdin=PASSWORD + "\n")  # fmt: skip
    assert code == 1
    assert "not a PanelHub backup" in err


def files_under(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


def test_factory_reset_leaves_no_canary_and_the_next_start_is_a_first_start(tmp_path: Path):
    state = provision(tmp_path)
    canaries = state.canaries()
    old_fingerprint = certs.read_certificate_info(state.data_dir / "tls").sha256_fingerprint
    disable_permanently(permanent_dir(state.data_dir), RadioService.WIFI)

    code, _, _ = panelhub("factory-reset", "--config", str(state.config), cwd=tmp_path,
                                stdin="no\n")  # fmt: skip
    assert code == 1  # not confirmed: nothing erased
    assert snapshot(state)["files"]

    code, out, err = panelhub("factory-reset", "--config", str(state.config), cwd=tmp_path,
                                    stdin="ERASE\n")  # fmt: skip
    assert code == 0, err
    assert "files erased" in out
    assert "wifi" in out
    assert files_under(state.data_dir) == []
    for path in [*files_under(tmp_path)]:
        if path.is_relative_to(permanent_dir(state.data_dir)):
            continue
        content = path.read_bytes()
        for canary in canaries:
            assert canary not in content, (path, canary)
    assert "Europe/Paris" not in state.config.read_text()

    provisioning = AccountStore.open(state.data_dir, HASHER)  # what the next start does
    assert provisioning.initial_password not in (None, state.initial_password)
    provisioning.store.close()
    info = certs.ensure_certificate(state.data_dir / "tls", host_names=["panel.test"],
                                    addresses=["127.0.0.1"])  # fmt: skip
    assert info.sha256_fingerprint != old_fingerprint
    assert (permanent_dir(state.data_dir) / "wifi").exists()


def test_a_factory_reset_cut_short_is_finished_at_the_next_start(tmp_path: Path):
    """A power cut after a few files were zeroed: the marker makes the next start finish it."""
    state = provision(tmp_path)
    canaries = state.canaries()
    done = subprocess.run(
        [sys.executable, "-c", CUT_SHORT, str(state.data_dir), str(state.config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 9, done.stderr
    assert (state.data_dir / reset.MARKER_FILE).exists()
    assert "Europe/Paris" not in state.config.read_text()  # the settings went first: readable

    reset.recover(state.data_dir, config_path=state.config)  # what the next start does

    assert files_under(state.data_dir) == []
    for path in files_under(tmp_path):
        for canary in canaries:
            assert canary not in path.read_bytes(), (path, canary)


#: A factory reset whose process dies (os._exit: no clean-up) after zeroing two files.
CUT_SHORT = """
import os, sys
from pathlib import Path
from panelhub.security import reset
wipe, count = reset._wipe, [0]
def dying_wipe(path):
    wipe(path)
    count[0] += 1
    if count[0] == 2:
        os._exit(9)
reset._wipe = dying_wipe
reset.factory_reset(Path(sys.argv[1]), config_path=Path(sys.argv[2]))
"""
