"""The users page and API as an admin uses them, and as everyone else is refused them."""

from __future__ import annotations

import datetime as dt
import html
import json
import re

import httpx
import pytest
from starlette.testclient import TestClient

from panelhub.security.audit import AuditEvent, AuditFilter, AuditRecord
from panelhub.web.access import SESSION_COOKIE
from tests.web.conftest import ORIGIN, Web

ADMIN_PASSWORD = "Switchboard-Room7"  # noqa: S105 - a test password
USER_PASSWORD = "Meter-Cabinet-42"  # noqa: S105 - a test password
PASSWORD_SHOWN = re.compile(r'<code class="password" id="password">([^<]+)</code>')


def token(web: Web, client: TestClient) -> str:
    session = web.context.sessions.get(client.cookies[SESSION_COOKIE])
    assert session is not None
    return session.csrf_token


def form(web: Web, client: TestClient, path: str, **fields: str):
    return client.post(path, data={"csrf_token": token(web, client), **fields},
                       headers={"origin": ORIGIN}, follow_redirects=False)  # fmt: skip


def call(web: Web, client: TestClient, method: str, path: str, body: object = None):
    return client.request(method, path, content=None if body is None else json.dumps(body),
                          headers={"x-csrf-token": token(web, client), "origin": ORIGIN,
                                   "content-type": "application/json"})  # fmt: skip


def first_login(web: Web, name: str, password: str, new: str, address: str) -> TestClient:
    """Log in with a given password and change it, as a new user does the first time."""
    client = web.new_client(address)
    response, _ = web.login(name, password, client)
    assert response.headers["location"] == "/password"
    changed = form(web, client, "/password", current=password, new=new, confirm=new)
    assert (changed.status_code, changed.headers["location"]) == (303, "/")
    return client


@pytest.fixture
def admin(web: Web) -> TestClient:
    """The admin's browser, past the forced change of the initial password."""
    response, _ = web.login("admin", web.initial_password)
    assert response.status_code == 303
    form(web, web.client, "/password", current=web.initial_password, new=ADMIN_PASSWORD,
         confirm=ADMIN_PASSWORD)  # fmt: skip
    assert web.client.get("/", follow_redirects=False).status_code == 200
    return web.client


def add_user(web: Web, admin: TestClient, name: str, role: str, address: str) -> TestClient:
    created = call(web, admin, "POST", "/api/users", {"name": name, "role": role})
    assert created.status_code == 201, created.text
    return first_login(web, name, created.json()["password"], USER_PASSWORD, address)


def shown_password(page: str) -> str:
    """The one-time password as the admin reads it on the page (unescaped from the HTML)."""
    match = PASSWORD_SHOWN.search(page)
    assert match is not None
    return html.unescape(match.group(1))


def user_row(page: str, name: str) -> str:
    match = re.search(rf'<tr data-user="{re.escape(name)}">(.*?)</tr>', page, re.S)
    assert match is not None, name
    return match.group(1)


def record_texts(record: AuditRecord) -> list[str]:
    """Every text of an audit record, as stored (no quoting that could hide a secret)."""
    details = [str(part) for item in record.details.items() for part in item]
    return [record.event, record.user, record.source, record.interface, *details]


async def audit_records(web: Web, event: AuditEvent):
    return await web.audit.query(AuditFilter(event=event))


def test_admin_sees_every_account_and_the_nav_link(web, admin):
    page = admin.get("/users")
    assert page.status_code == 200
    assert '<a href="/users">Users</a>' in page.text
    assert "(you)" in user_row(page.text, "admin")
    support = user_row(page.text, "support")
    assert "disabled" in support
    listed = admin.get("/api/users").json()["users"]
    assert [(u["name"], u["role"], u["enabled"], u["live_sessions"]) for u in listed] == [
        ("admin", "admin", True, 1),
        ("support", "admin", False, 0),
    ]
    assert not any("hash" in key for key in listed[0])


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_get_403_on_every_users_route(web, admin, role):
    client = add_user(web, admin, "pat", role, "10.0.0.2")
    home = client.get("/")
    assert home.status_code == 200
    assert 'href="/users"' not in home.text
    assert client.get("/users").status_code == 403
    for path in ("/users", "/users/role", "/users/enabled", "/users/unlock",
                 "/users/reset-password", "/users/end-sessions"):  # fmt: skip
        refused = form(web, client, path, name="admin", role="viewer", enabled="no")
        assert refused.status_code == 403, path
    assert client.get("/api/users").status_code == 403
    assert client.get("/api/users/admin").status_code == 403
    assert call(web, client, "POST", "/api/users", {"name": "mallory"}).status_code == 403
    assert call(web, client, "PATCH", "/api/users/pat", {"role": "admin"}).status_code == 403
    for action in ("unlock", "password/reset", "sessions/end"):
        assert call(web, client, "POST", f"/api/users/admin/{action}").status_code == 403
    names = [user["name"] for user in admin.get("/api/users").json()["users"]]
    assert names == ["admin", "pat", "support"]  # nothing changed
    assert client.get("/api/session").json()["role"] == role  # still not an admin


def test_changes_need_the_csrf_token_and_the_same_origin(web, admin):
    without = admin.post("/users", data={"name": "eve", "role": "admin"},
                         headers={"origin": ORIGIN}, follow_redirects=False)  # fmt: skip
    assert without.status_code == 403
    elsewhere = admin.post("/users", data={"name": "eve", "role": "admin",
                                           "csrf_token": token(web, admin)},
                           headers={"origin": "https://evil.example"})  # fmt: skip
    assert elsewhere.status_code == 403
    api = admin.post("/api/users", json={"name": "eve", "role": "admin"})
    assert (api.status_code, api.json()) == (403, {"error": "csrf"})
    forged = admin.post("/api/users", json={"name": "eve"}, headers={"x-csrf-token": "forged"})
    assert forged.status_code == 403
    assert admin.get("/api/users/eve").status_code == 404


def test_created_user_gets_a_one_time_password_that_must_be_changed(web, admin):
    created = form(web, admin, "/users", name="olivia", role="operator")
    assert created.status_code == 200
    assert "Account &#39;olivia&#39; created." in created.text
    password = shown_password(created.text)
    assert html.escape(password) not in admin.get("/users").text  # shown once only
    row = user_row(admin.get("/users").text, "olivia")
    assert '<option value="operator" selected>' in row
    client = web.new_client("10.0.0.3")
    response, _ = web.login("olivia", password, client)
    assert response.headers["location"] == "/password"
    assert client.get("/api/status").json() == {"error": "password_change_required"}
    first_login(web, "olivia", password, USER_PASSWORD, "10.0.0.4")
    other = web.new_client("10.0.0.5")
    assert web.login("olivia", password, other)[0].status_code == 401
    assert web.login("olivia", USER_PASSWORD, other)[0].headers["location"] == "/"
    assert other.get("/api/session").json()["role"] == "operator"


def test_api_create_answers_201_with_the_password_once(web, admin):
    created = call(web, admin, "POST", "/api/users", {"name": "vic"})
    assert created.status_code == 201
    body = created.json()
    assert body["user"]["role"] == "viewer"  # the least power unless asked
    assert body["user"]["must_change_password"] is True
    assert len(body["password"]) >= 16
    shown = admin.get("/api/users/vic").json()
    assert "password" not in shown
    assert shown["user"]["name"] == "vic"


async def test_sole_admin_cannot_disable_or_demote_themselves(web, admin):
    disabled = form(web, admin, "/users/enabled", name="admin", enabled="no")
    assert disabled.status_code == 409
    assert "last enabled admin" in disabled.text
    demoted = call(web, admin, "PATCH", "/api/users/admin", {"role": "operator"})
    assert demoted.status_code == 409
    assert demoted.json()["error"] == "last_admin"
    assert "last enabled admin" in demoted.json()["message"]
    assert admin.get("/users").status_code == 200  # still an admin, still logged in
    records = await audit_records(web, AuditEvent.ACCOUNT_CHANGED)
    assert [(r.outcome, r.details["reason"]) for r in records] == [("failure", "last_admin")] * 2


async def test_an_admin_cannot_lock_themselves_out_while_another_admin_exists(web, admin):
    boss = add_user(web, admin, "boss", "admin", "10.0.0.6")
    mine = call(web, admin, "PATCH", "/api/users/admin", {"enabled": False})
    assert (mine.status_code, mine.json()["error"]) == (409, "own_account")
    demote = form(web, admin, "/users/role", name="admin", role="viewer")
    assert demote.status_code == 409
    assert "your own account" in demote.text
    # Another admin may, and the last one left is then protected.
    assert call(web, boss, "PATCH", "/api/users/admin", {"role": "viewer"}).status_code == 200
    assert admin.get("/users").status_code == 403
    refused = call(web, boss, "PATCH", "/api/users/boss", {"enabled": False})
    assert refused.json()["error"] == "last_admin"
    records = await audit_records(web, AuditEvent.ACCOUNT_CHANGED)
    outcomes = [(r.user, r.outcome, r.details.get("target"), r.details.get("reason"))
                for r in reversed(records)]  # fmt: skip
    assert outcomes == [
        ("admin", "failure", "admin", "own_account"),
        ("admin", "failure", "admin", "own_account"),
        ("boss", "success", "admin", None),
        ("boss", "failure", "boss", "last_admin"),
    ]


async def test_disabled_users_open_browser_is_logged_out_at_once(web, admin):
    client = add_user(web, admin, "otto", "operator", "10.0.0.7")
    assert client.get("/", follow_redirects=False).status_code == 200
    done = form(web, admin, "/users/enabled", name="otto", enabled="no")
    assert done.status_code == 200
    assert "disabled" in user_row(done.text, "otto")
    gone = client.get("/", follow_redirects=False)
    assert (gone.status_code, gone.headers["location"]) == (303, "/login")
    assert client.get("/api/status").status_code == 401
    assert web.login("otto", USER_PASSWORD, web.new_client("10.0.0.8"))[0].status_code == 401
    assert call(web, admin, "PATCH", "/api/users/otto", {"enabled": True}).status_code == 200
    again = web.new_client("10.0.0.9")
    assert web.login("otto", USER_PASSWORD, again)[0].headers["location"] == "/"
    [record] = [r for r in await audit_records(web, AuditEvent.ACCOUNT_CHANGED)
                if r.details.get("enabled") is False]  # fmt: skip
    assert (record.user, record.source, record.interface) == ("admin", "testclient", "web")
    assert record.details["target"] == "otto"


def test_role_change_applies_to_the_live_session(web, admin):
    client = add_user(web, admin, "vera", "viewer", "10.0.0.10")
    assert client.get("/users").status_code == 403
    promoted = call(web, admin, "PATCH", "/api/users/vera", {"role": "admin"})
    assert promoted.json()["user"]["role"] == "admin"
    assert client.get("/users").status_code == 200  # same session, no new login
    assert client.get("/api/session").json()["role"] == "admin"
    form(web, admin, "/users/role", name="vera", role="viewer")
    assert client.get("/users").status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200  # still logged in


def test_reset_password_ends_sessions_and_the_new_one_must_be_changed(web, admin):
    client = add_user(web, admin, "rita", "operator", "10.0.0.11")
    reset = form(web, admin, "/users/reset-password", name="rita")
    assert reset.status_code == 200
    reset_to = shown_password(reset.text)
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    fresh = web.new_client("10.0.0.12")
    assert web.login("rita", USER_PASSWORD, fresh)[0].status_code == 401
    first_login(web, "rita", reset_to, "Another-Panel42", "10.0.0.13")
    own = form(web, admin, "/users/reset-password", name="admin")
    assert own.status_code == 409
    api = call(web, admin, "POST", "/api/users/rita/password/reset")
    assert api.status_code == 200
    assert api.json()["user"]["must_change_password"] is True
    assert api.json()["password"] != reset_to


def test_unlock_lets_a_locked_user_in_with_the_right_password(web, admin):
    add_user(web, admin, "luke", "viewer", "10.0.0.14")
    attacker = web.new_client("10.0.0.15")
    for _ in range(10):
        web.login("luke", "wrong-guess", attacker)
    row = user_row(admin.get("/users").text, "luke")
    lock_ends = dt.datetime.fromtimestamp(web.clock.now + 10 * 60, dt.UTC)
    assert f'<td class="locked time">{lock_ends:%Y-%m-%d %H:%M}</td>' in row
    listed = admin.get("/api/users/luke").json()["user"]
    assert listed["locked_until"] is not None
    assert listed["failed_logins"] == 10
    user = web.new_client("10.0.0.16")
    assert "locked until" in web.login("luke", USER_PASSWORD, user)[0].text
    done = form(web, admin, "/users/unlock", name="luke")
    assert done.status_code == 200
    assert '<td class="locked time"></td>' in user_row(done.text, "luke")
    assert web.login("luke", USER_PASSWORD, user)[0].headers["location"] == "/"
    assert call(web, admin, "POST", "/api/users/luke/unlock").json()["user"]["failed_logins"] == 0


def test_ending_a_users_sessions_logs_out_every_browser_of_theirs(web, admin):
    phone = add_user(web, admin, "sam", "viewer", "10.0.0.17")
    laptop = web.new_client("10.0.0.18")
    web.login("sam", USER_PASSWORD, laptop)
    assert user_row(admin.get("/users").text, "sam").count('<td class="sessions">2</td>') == 1
    ended = call(web, admin, "POST", "/api/users/sam/sessions/end")
    assert (ended.status_code, ended.json()["ended"]) == (200, 2)
    assert ended.json()["user"]["live_sessions"] == 0
    for client in (phone, laptop):
        assert client.get("/api/session").status_code == 401
    # An admin ending their own sessions keeps the one they are using.
    other_admin_browser = web.new_client("10.0.0.19")
    web.login("admin", ADMIN_PASSWORD, other_admin_browser)
    mine = form(web, admin, "/users/end-sessions", name="admin")
    assert "1 session(s) of &#39;admin&#39; ended." in mine.text
    assert other_admin_browser.get("/api/session").status_code == 401
    assert admin.get("/api/session").status_code == 200


def test_api_errors_are_json_with_a_code(web, admin):
    def error(response: httpx.Response) -> tuple[int, str]:
        return response.status_code, response.json()["error"]

    assert error(call(web, admin, "GET", "/api/users/nobody")) == (404, "not_found")
    assert error(call(web, admin, "PATCH", "/api/users/nobody", {"enabled": True})) == (
        404,
        "not_found",
    )
    assert error(call(web, admin, "POST", "/api/users/nobody/unlock")) == (404, "not_found")
    assert error(call(web, admin, "POST", "/api/users", {"name": "admin"})) == (409, "name_taken")
    bad_names = ["", "x" * 33, " padded", 7, "Anonymous", "system", "unknown#1a2b3c4d5e6f"]
    bad_bodies = [{"name": "ok", "role": "root"}, {"name": "ok", "extra": 1}, ["name"]]
    for bad in [*({"name": name} for name in bad_names), *bad_bodies]:
        assert error(call(web, admin, "POST", "/api/users", bad)) == (400, "invalid_request"), bad
    assert error(call(web, admin, "PATCH", "/api/users/admin", {})) == (400, "invalid_request")
    assert error(call(web, admin, "PATCH", "/api/users/admin", {"enabled": "no"}))[0] == 400
    deep = admin.post("/api/users", content=b"[" * 100_000,
                      headers={"x-csrf-token": token(web, admin)})  # fmt: skip
    assert deep.status_code == 400
    not_json = admin.post("/api/users", content=b"{", headers={"x-csrf-token": token(web, admin)})
    assert not_json.json() == {
        "error": "invalid_request",
        "message": "the body must be a JSON object",
    }
    support = call(web, admin, "PATCH", "/api/users/support", {"enabled": True})
    assert support.status_code == 409  # no password yet
    assert "password" in support.json()["message"]


def test_a_name_with_a_slash_is_reachable_through_the_api(web, admin):
    assert call(web, admin, "POST", "/api/users", {"name": "ops/night"}).status_code == 201
    assert admin.get("/api/users/ops%2Fnight").json()["user"]["name"] == "ops/night"
    unlocked = call(web, admin, "POST", "/api/users/ops%2Fnight/unlock")
    assert unlocked.json()["user"]["name"] == "ops/night"


async def test_every_change_is_audited_without_any_password(web, admin):
    created = call(web, admin, "POST", "/api/users", {"name": "audra", "role": "operator"})
    passwords = [created.json()["password"]]
    call(web, admin, "PATCH", "/api/users/audra", {"role": "viewer"})
    call(web, admin, "POST", "/api/users/audra/unlock")
    passwords.append(call(web, admin, "POST", "/api/users/audra/password/reset").json()["password"])
    call(web, admin, "POST", "/api/users/audra/sessions/end")
    reset_page = form(web, admin, "/users/reset-password", name="audra")
    passwords.append(shown_password(reset_page.text))
    records = await web.audit.query()
    mine = [(r.event, r.user, r.source, r.interface, r.details.get("target"))
            for r in reversed(records) if r.details.get("target") == "audra"]  # fmt: skip
    expected_events = ["account.created", "account.changed", "account.unlocked",
                       "password.changed", "session.ended", "password.changed"]  # fmt: skip
    assert [event for event, *_ in mine] == expected_events
    assert {tuple(rest) for _, *rest in mine} == {("admin", "testclient", "web", "audra")}
    everything = "\n".join(text for r in records for text in record_texts(r))
    for secret in [*passwords, ADMIN_PASSWORD, web.initial_password]:
        assert secret not in everything
