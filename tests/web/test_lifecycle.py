"""The maintenance page's update, backup, restore and factory reset, as an admin uses them."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from packaging.version import Version

import panelhub
from panelhub.security import backup, firmware, slots
from panelhub.security.accounts import Role
from panelhub.service import ServiceController
from panelhub.web.context import NextStart
from tests.web.browsers import admin_browser, browser_of, form
from tests.web.conftest import Web

PASSWORD = "Backup#2026"  # noqa: S105 - a test password
KEY = Ed25519PrivateKey.generate()


def audit(web: Web, prefix: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(web.data_dir / "state.sqlite") as connection:
        return connection.execute(
            "SELECT event, outcome, details FROM audit_record WHERE event LIKE ? ORDER BY id",
            (prefix + "%",),
        ).fetchall()


def next_start(web: Web) -> NextStart:
    """What the last restart asked of the real ``ServiceController`` behind the pages."""
    control: ServiceController = web.context.control  # type: ignore[assignment]
    return control.next_start


def good_bundle() -> bytes:
    version = panelhub.__version__
    files = {
        "panelhub/__init__.py": b"",
        f"panelhub-{version}.dist-info/METADATA": f"Version: {version}\n".encode(),
    }
    return firmware.sign_files(
        files, KEY, min_version=Version("0"), now=dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    )


def trust(web: Web) -> None:
    pem = KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    firmware.add_trust_anchor(web.data_dir, pem, source="test")


def test_a_random_file_as_firmware_is_refused_as_a_wrong_signature_and_audited(web: Web) -> None:
    client = admin_browser(web)
    page = form(
        web, client, "/maintenance/firmware", files={"bundle": ("update.bin", os.urandom(50_000))}
    )
    assert page.status_code == 400
    assert "Update refused: wrong signature" in page.text
    assert "Nothing was changed" in page.text
    [(event, outcome, details)] = audit(web, "firmware.")
    assert (event, outcome) == ("firmware.rejected", "failure")
    assert "wrong signature" in details
    assert "update.bin" in details


def test_a_good_bundle_outside_a_slot_is_checked_but_not_installed(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(slots.SLOT_ENV, raising=False)
    trust(web)
    client = admin_browser(web)
    page = form(web, client, "/maintenance/firmware", files={"bundle": ("u.phb", good_bundle())})
    assert page.status_code == 400
    assert "not installable here" in page.text
    assert "the bundle is good" in page.text


def test_a_good_bundle_goes_into_a_new_slot_and_the_restart_exits_to_the_launcher(
    web: Web, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slots_dir = tmp_path / "slots"
    (slots_dir / "slot-running").mkdir(parents=True)
    monkeypatch.setenv(slots.SLOT_ENV, str(slots_dir / "slot-running"))
    trust(web)
    client = admin_browser(web)
    page = form(web, client, "/maintenance/firmware", files={"bundle": ("u.phb", good_bundle())})
    assert page.status_code == 200, page.text
    trial = slots.target_of(slots_dir, slots.TRIAL)
    assert trial is not None
    assert (trial / "site" / "panelhub" / "__init__.py").exists()
    assert audit(web, "firmware.")[-1][:2] == ("firmware.accepted", "success")
    shown = client.get("/maintenance")
    assert trial.name in shown.text
    restart = form(web, client, "/maintenance/firmware/restart")
    assert restart.status_code == 200
    assert next_start(web) is NextStart.UPDATE


def test_only_an_admin_may_upload_firmware(web: Web) -> None:
    admin_browser(web)
    operator = browser_of(web, "op", Role.OPERATOR)
    page = form(web, operator, "/maintenance/firmware", files={"bundle": ("u.phb", good_bundle())})
    assert page.status_code == 403
    assert audit(web, "firmware.") == []


def test_a_backup_downloaded_from_the_page_opens_with_its_password(web: Web) -> None:
    client = admin_browser(web)
    response = form(web, client, "/maintenance/backup", password=PASSWORD, password_again=PASSWORD)
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith('attachment; filename="panelhub-')
    header, contents = backup.open_backup(response.content, PASSWORD)
    assert header.product_version == panelhub.__version__
    assert b"accounts.json" in contents
    assert audit(web, "backup.")[0][:2] == ("backup.created", "success")


@pytest.mark.parametrize(
    ("password", "again", "words"),
    [("Backup#2026", "Backup#2027", "differ"), ("backup2026", "backup2026", "upper-case")],
)
def test_a_backup_with_a_bad_password_is_not_made(
    web: Web, password: str, again: str, words: str
) -> None:
    client = admin_browser(web)
    response = form(web, client, "/maintenance/backup", password=password, password_again=again)
    assert response.status_code == 400
    assert words in response.text
    assert audit(web, "backup.") == []


def test_a_restore_from_the_page_brings_back_the_accounts_and_restarts(web: Web) -> None:
    client = admin_browser(web)
    made = form(
        web, client, "/maintenance/backup", password=PASSWORD, password_again=PASSWORD
    ).content
    asyncio.run(web.context.accounts.create("intruder", Role.ADMIN, "Hj3#kLm9-Pqr2!w"))

    wrong = form(
        web, client, "/maintenance/restore", files={"backup": ("b", made)}, password=PASSWORD + "x"
    )
    assert wrong.status_code == 400
    assert "wrong password or damaged file" in wrong.text
    assert asyncio.run(web.context.accounts.get("intruder")) is not None
    assert web.restarts == []

    with client:  # one event loop for the block: the restart is asked for just after
        done = form(web, client, "/maintenance/restore", files={"backup": ("b", made)},
                    password=PASSWORD)  # fmt: skip
        assert done.status_code == 200
        assert "log in again" in done.text
        deadline = time.monotonic() + 10
        while not web.restarts and time.monotonic() < deadline:
            time.sleep(0.05)
    assert web.restarts == [True]
    assert asyncio.run(web.context.accounts.get("intruder")) is None
    assert [row[:2] for row in audit(web, "restore.")] == [
        ("restore.refused", "failure"),
        ("restore.ok", "success"),
    ]


def test_a_factory_reset_needs_the_word_and_then_asks_the_service_for_it(web: Web) -> None:
    client = admin_browser(web)
    refused = form(web, client, "/maintenance/reset", confirm="erase please")
    assert refused.status_code == 400
    assert "type ERASE" in refused.text
    assert next_start(web) is NextStart.RESTART
    accepted = form(web, client, "/maintenance/reset", confirm="ERASE")
    assert accepted.status_code == 200
    assert "being erased" in accepted.text
    assert next_start(web) is NextStart.FACTORY_RESET
    assert audit(web, "factory_reset")[0][:2] == ("factory_reset", "success")
