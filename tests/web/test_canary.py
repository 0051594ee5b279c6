"""No secret ever reaches a log, the audit log, its exports or a file: canaries typed everywhere.

Each secret a person types (or the panel hands out) is a unique value; after every flow that
takes one, the test looks for each value in the captured log output of every logger at
DEBUG, the audit log's CSV and JSON exports, and the raw bytes of every file in the data
directory (database, WAL, keys, markers). A password is in the database only as its argon2id
hash, which does not contain it. Plain SHA-256 prefixes are looked for too: that is what a
guessable "label" of a typed name would be.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from panelhub.web.access import CSRF_HEADER, SESSION_COOKIE
from tests.web.conftest import ORIGIN, Web

LOGIN_COOKIE = "__Host-panelhub-login"


def canary(what: str) -> str:
    """A value found nowhere else, valid as a password under the guide's policy."""
    return f"Cnry{what}{secrets.token_hex(6)}Q7"


def traces(value: str) -> list[bytes]:
    """The forms in which ``value`` would give itself away."""
    text = value.encode()
    return [text, value.encode("utf-16-le"), hashlib.sha256(text).hexdigest()[:12].encode()]


def data_files(data_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(data_dir)): p.read_bytes() for p in data_dir.rglob("*") if p.is_file()
    }


def csrf_token_of(web: Web, session_id: str) -> str:
    session = web.context.sessions.get(session_id)
    assert session is not None
    return session.csrf_token


def post_password(web: Web, *, current: str, new: str, confirm: str, token: str | None = None):
    own_token = csrf_token_of(web, web.client.cookies[SESSION_COOKIE])
    return web.client.post(
        "/password",
        data={"current": current, "new": new, "confirm": confirm,
              "csrf_token": own_token if token is None else token},
        headers={"origin": ORIGIN},
        follow_redirects=False,
    )  # fmt: skip


def panelhub(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "panelhub", *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def typed_at_login(web: Web, seen: dict[str, str]) -> None:
    """A wrong password, a password typed into the user-name field, a forged form token."""
    for name, password, what in (
        ("admin", canary("WrongLogin"), "wrong login password"),
        (canary("NameField"), canary("LoginPw"), "password typed as the user name"),
    ):
        seen[what] = password
        if name != "admin":
            seen[what + " (name)"] = name
        assert web.login(name, password)[0].status_code == 401
    login_token = web.client.cookies.get(LOGIN_COOKIE)
    assert login_token
    seen["login form token"] = login_token
    seen["forged login form token"] = canary("LoginToken")
    refused = web.client.post(
        "/login",
        data={"username": "admin", "password": web.initial_password,
              "csrf_token": seen["forged login form token"]},
        headers={"origin": ORIGIN}, follow_redirects=False,
    )  # fmt: skip
    assert refused.status_code == 403
    # A forged session cookie: the login page, never content.
    seen["forged session id"] = canary("Session")
    stranger = web.new_client()
    stranger.cookies.set(SESSION_COOKIE, seen["forged session id"])
    assert stranger.get("/", follow_redirects=False).status_code == 303
    assert stranger.get("/api/status").status_code == 401


def typed_at_the_forced_change(web: Web, seen: dict[str, str]) -> str:
    """Wrong current password, a confirmation that differs, a forged token, then the change."""
    assert web.login("admin", web.initial_password)[0].status_code == 303
    seen["session id"] = web.client.cookies[SESSION_COOKIE]
    seen["session form token"] = csrf_token_of(web, seen["session id"])
    new = seen["new password"] = canary("NewPw")
    current = seen["wrong current password"] = canary("Current")
    assert post_password(web, current=current, new=new, confirm=new).status_code == 400
    initial = web.initial_password
    confirm = seen["confirmation"] = canary("Confirm")
    assert post_password(web, current=initial, new=new, confirm=confirm).status_code == 400
    token = seen["forged form token"] = canary("Csrf")
    forged = post_password(web, current=initial, new=new, confirm=new, token=token)
    assert forged.status_code == 403
    assert post_password(web, current=initial, new=new, confirm=new).status_code == 303
    seen["session id after the change"] = web.client.cookies[SESSION_COOKIE]
    return new


def handed_out_by_the_api(web: Web, seen: dict[str, str], password: str) -> TestClient:
    """A forged API token changes nothing; passwords the panel makes are shown once only."""
    client = web.new_client()
    assert web.login("admin", password, client)[0].status_code == 303
    forged = seen["forged API token"] = canary("Header")
    denied = client.post("/api/users", json={"name": "eve", "role": "viewer"},
                         headers={"origin": ORIGIN, CSRF_HEADER: forged})  # fmt: skip
    assert denied.status_code == 403
    token = csrf_token_of(web, client.cookies[SESSION_COOKIE])
    headers = {"origin": ORIGIN, CSRF_HEADER: token}
    created = client.post("/api/users", json={"name": "bob", "role": "viewer"}, headers=headers)
    assert created.status_code == 201
    seen["created user's password"] = created.json()["password"]
    reset = client.post("/api/users/bob/password/reset", headers=headers)
    assert reset.status_code == 200
    seen["reset user's password"] = reset.json()["password"]
    return client


def typed_at_the_console(web: Web, seen: dict[str, str]) -> None:
    """Names that are passwords given to the recovery commands, and the password printed."""
    for command in ("unlock", "reset-password"):
        typed = seen[f"name typed to user {command}"] = canary(command.replace("-", ""))
        assert panelhub(web.data_dir, "user", command, typed).returncode != 0
    console = panelhub(web.data_dir, "user", "reset-password", "bob")
    assert console.returncode == 0, console.stderr
    printed = seen["password printed on the console"] = console.stdout.strip().splitlines()[-1]
    assert printed not in console.stderr


def test_no_secret_reaches_logs_audit_exports_or_files(web: Web, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    seen: dict[str, str] = {"initial password": web.initial_password}
    typed_at_login(web, seen)
    new_password = typed_at_the_forced_change(web, seen)
    admin = handed_out_by_the_api(web, seen, new_password)
    typed_at_the_console(web, seen)
    pages = [admin.get(path) for path in ("/logs", "/logs/export.csv", "/logs/export.json",
                                          "/api/audit")]  # fmt: skip
    assert [page.status_code for page in pages] == [200] * len(pages)
    assert all(b"login.failed" in page.content for page in pages[1:])

    exports = "".join(web.audit.export_csv()) + "".join(web.audit.export_json())
    for event in ("login.failed", "password.changed", "account.created"):
        assert event in exports  # the exports are of a log that saw all this
    places = {"log output": caplog.text.encode(), "audit exports": exports.encode(),
              "logs page and downloads": b"".join(page.content for page in pages)}  # fmt: skip
    places |= {f"file {name}": content for name, content in data_files(web.data_dir).items()}
    assert "file state.sqlite" in places
    leaks = [
        f"{what} in {place}"
        for what, value in seen.items()
        for place, content in places.items()
        if any(trace in content for trace in traces(value))
    ]
    assert leaks == []
