"""Unknown login names are labelled with a key of this installation, kept in its data directory."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from panelhub.errors import StateStoreError
from panelhub.security.audit import AuditEvent, AuditLog, Outcome
from panelhub.security.auditkey import KEY_BYTES, KEY_FILE
from panelhub.storage.db import Database

TYPED = "Tr0ub4dor&3-typed-as-the-name"


def label_in(data_dir: Path, typed: str = TYPED) -> str:
    """The label a fresh start of the installation in ``data_dir`` gives ``typed``."""
    data_dir.mkdir(exist_ok=True)
    db = Database.open(data_dir / "state.sqlite")
    try:
        return AuditLog(db).label_unknown_user(typed)
    finally:
        db.close()


def test_the_same_name_gets_the_same_label_on_one_installation_across_restarts(tmp_path):
    first = label_in(tmp_path)
    assert label_in(tmp_path) == first
    assert label_in(tmp_path, TYPED + "x") != first
    assert first.startswith("unknown#")


def test_two_installations_label_the_same_name_differently(tmp_path):
    assert label_in(tmp_path / "a") != label_in(tmp_path / "b")


def test_the_label_is_not_a_plain_hash_of_the_name(tmp_path):
    # A plain SHA-256 prefix can be brute-forced from an export; the keyed one cannot.
    plain = hashlib.sha256(TYPED.encode()).hexdigest()[:12]
    assert plain not in label_in(tmp_path)


def test_the_key_is_made_at_first_use_and_only_the_owner_can_read_it(tmp_path):
    db = Database.open(tmp_path / "state.sqlite")
    log = AuditLog(db)
    log.record_sync(AuditEvent.PROCESS_START, outcome=Outcome.SUCCESS, user=None, source="",
                    interface="service")  # fmt: skip
    assert not (tmp_path / KEY_FILE).exists()  # not for an installation that never needed it
    log.label_unknown_user(TYPED)
    db.close()
    key = tmp_path / KEY_FILE
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(key.read_bytes()) == KEY_BYTES
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("content", [b"", b"short", bytes(KEY_BYTES + 1)], ids=len)
def test_a_damaged_key_fails_and_is_never_replaced(tmp_path, content):
    (tmp_path / KEY_FILE).write_bytes(content)
    with pytest.raises(StateStoreError, match="damaged"):
        label_in(tmp_path)
    assert (tmp_path / KEY_FILE).read_bytes() == content


def test_a_name_typed_at_login_never_reaches_the_files(tmp_path):
    db = Database.open(tmp_path / "state.sqlite")
    log = AuditLog(db)
    log.record_sync(AuditEvent.LOGIN_FAILED, outcome=Outcome.FAILURE,
                    user=log.label_unknown_user(TYPED), source="192.0.2.7",
                    interface="web")  # fmt: skip
    exported = "".join(log.export_csv()) + "".join(log.export_json())
    db.close()
    assert TYPED not in exported
    for path in tmp_path.iterdir():
        assert TYPED.encode() not in path.read_bytes(), path.name
