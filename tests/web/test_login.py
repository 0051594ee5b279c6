"""Logging in: the initial password, the forced change, lockout, rate limits, CSRF, headers."""

from __future__ import annotations

import re

import anyio

from panelhub.security.audit import AuditEvent, AuditFilter
from panelhub.web.access import SESSION_COOKIE
from tests.web.conftest import ORIGIN

NEW_PASSWORD = "Switchboard-Room7"  # noqa: S105 - a test password


def change_password(web, current: str, new: str, confirm: str | None = None, client=None):
    client = client or web.client
    session = web.context.sessions.get(client.cookies[SESSION_COOKIE])
    return client.post(
        "/password",
        data={"current": current, "new": new, "confirm": new if confirm is None else confirm,
              "csrf_token": session.csrf_token},
        headers={"origin": ORIGIN},
        follow_redirects=False,
    )  # fmt: skip


def test_login_page_shows_the_banner_and_sets_no_session(web):
    response = web.client.get("/login")
    assert response.status_code == 200
    assert "Authorised personnel only." in response.text
    assert SESSION_COOKIE not in web.client.cookies


def test_initial_password_forces_a_change_before_anything_else(web):
    response, _ = web.login("admin", web.initial_password)
    assert response.status_code == 303
    assert response.headers["location"] == "/password"
    assert web.client.get("/", follow_redirects=False).headers["location"] == "/password"
    api = web.client.get("/api/status")
    assert (api.status_code, api.json()) == (403, {"error": "password_change_required"})
    weak = change_password(web, web.initial_password, "password1")
    assert weak.status_code == 400
    assert "among the most common" in weak.text or "at least three" in weak.text
    old_id = web.client.cookies[SESSION_COOKIE]
    done = change_password(web, web.initial_password, NEW_PASSWORD)
    assert (done.status_code, done.headers["location"]) == (303, "/")
    assert web.client.cookies[SESSION_COOKIE] != old_id  # a fresh session id
    assert web.context.sessions.get(old_id) is None
    assert web.client.get("/").status_code == 200
    assert web.client.get("/api/status").json()["health"] == "nominal"
    # The initial password never works again, the new one does.
    other = web.new_client()
    assert web.login("admin", web.initial_password, other)[0].status_code == 401
    assert web.login("admin", NEW_PASSWORD, other)[0].headers["location"] == "/"
    assert not (web.data_dir / "initial-admin-password").exists()


def test_password_change_ends_the_users_other_sessions(web):
    web.login("admin", web.initial_password)
    change_password(web, web.initial_password, NEW_PASSWORD)
    laptop = web.new_client()
    web.login("admin", NEW_PASSWORD, laptop)
    assert laptop.get("/", follow_redirects=False).status_code == 200
    change_password(web, NEW_PASSWORD, "Another-Panel42")
    assert laptop.get("/", follow_redirects=False).status_code == 303


def test_wrong_password_and_unknown_user_get_the_same_answer(web):
    wrong, _ = web.login("admin", "not-the-password")
    unknown, _ = web.login("nobody", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong user name or password." in wrong.text
    assert "Wrong user name or password." in unknown.text


def test_lockout_follows_the_guide(web):
    for _ in range(9):
        assert "Wrong user name" in web.login("admin", "bad")[0].text
    tenth, _ = web.login("admin", "bad")
    assert "locked until" in tenth.text
    # While locked, even the right password gets the same refusal.
    right, _ = web.login("admin", web.initial_password)
    assert right.status_code == 401
    assert "locked until" in right.text
    web.clock.now += 600
    assert web.login("admin", web.initial_password)[0].status_code == 303  # lock over
    web.client.cookies.clear()
    for _ in range(10):
        web.login("admin", "bad")
    web.clock.now += 600
    for _ in range(4):
        assert "Wrong user name" in web.login("admin", "bad")[0].text
    fifteenth, _ = web.login("admin", "bad")
    until = re.search(r"locked until (\S+ \S+) UTC", fifteenth.text)
    assert until is not None
    web.clock.now += 3_599
    assert "locked until" in web.login("admin", web.initial_password)[0].text
    web.clock.now += 1
    assert web.login("admin", web.initial_password)[0].status_code == 303


def test_a_flood_from_one_address_does_not_stop_another(web):
    statuses = [web.login("nobody", "x")[0].status_code for _ in range(40)]
    assert 429 in statuses
    limited = next(
        r for r in (web.login("nobody", "x")[0] for _ in range(5)) if r.status_code == 429
    )
    assert int(limited.headers["retry-after"]) >= 1
    other = web.new_client("192.0.2.7")
    assert web.login("admin", web.initial_password, other)[0].status_code == 303


def test_login_form_from_another_origin_is_refused(web):
    web.client.get("/login")
    token = web.client.cookies.get("__Host-panelhub-login")
    response = web.client.post(
        "/login",
        data={"username": "admin", "password": web.initial_password, "csrf_token": token},
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in web.client.cookies


def test_login_without_the_form_token_is_refused(web):
    response = web.client.post(
        "/login",
        data={"username": "admin", "password": web.initial_password, "csrf_token": "guess"},
        headers={"origin": ORIGIN},
        follow_redirects=False,
    )
    assert response.status_code == 403


def test_state_change_needs_the_session_csrf_token(web):
    web.login("admin", web.initial_password)
    response = web.client.post(
        "/password",
        data={"current": web.initial_password, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        headers={"origin": ORIGIN},
        follow_redirects=False,
    )
    assert response.status_code == 403
    session = web.context.sessions.get(web.client.cookies[SESSION_COOKIE])
    other_origin = web.client.post(
        "/password",
        data={"current": web.initial_password, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD,
              "csrf_token": session.csrf_token},
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )  # fmt: skip
    assert other_origin.status_code == 403
    assert web.login("admin", web.initial_password, web.new_client())[0].status_code == 303


def test_session_cookie_flags(web):
    response, _ = web.login("admin", web.initial_password)
    cookie = next(v for k, v in response.headers.multi_items()
                  if k == "set-cookie" and v.startswith(SESSION_COOKIE))  # fmt: skip
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags
    assert not any(flag.startswith("domain") for flag in flags)


def test_next_cannot_leave_the_site(web):
    web.client.get("/login")
    token = web.client.cookies.get("__Host-panelhub-login")
    web.login("admin", web.initial_password)
    change_password(web, web.initial_password, NEW_PASSWORD)
    web.client.cookies.clear()
    web.client.get("/login")
    token = web.client.cookies.get("__Host-panelhub-login")
    response = web.client.post(
        "/login",
        data={"username": "admin", "password": NEW_PASSWORD, "csrf_token": token,
              "next": "//evil.example/"},
        headers={"origin": ORIGIN},
        follow_redirects=False,
    )  # fmt: skip
    assert response.headers["location"] == "/"


def test_security_headers_on_every_response(web):
    for path in ("/login", "/healthz", "/static/style.css", "/nowhere", "/"):
        response = web.client.get(path, follow_redirects=False)
        headers = response.headers
        assert headers["content-security-policy"].startswith("default-src 'self'"), path
        assert "'unsafe-inline'" not in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert "server" not in headers
        assert "strict-transport-security" not in headers  # self-signed: no HSTS
    assert web.client.get("/login").headers["cache-control"] == "no-store"


def test_trace_is_refused(web):
    response = web.client.request("TRACE", "/login")
    assert response.status_code == 405
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_damaged_label_key_still_records_the_failed_login(web):
    (web.data_dir / "audit-key").write_bytes(b"short")
    response, _ = web.login("Typed-Password-In-Name!", "whatever")
    assert response.status_code == 401
    assert "Wrong user name or password." in response.text
    [record] = anyio.run(web.audit.query, AuditFilter(event=AuditEvent.LOGIN_FAILED))
    assert record.user == "unknown#?"


def test_pages_carry_no_inline_script_or_style(web):
    web.login("admin", web.initial_password)
    change_password(web, web.initial_password, NEW_PASSWORD)
    for path in ("/", "/status", "/trends", "/export", "/password"):
        html = web.client.get(path).text
        assert "<script>" not in html
        assert "style=" not in html
        assert "<style" not in html
    assert "<script>" not in web.new_client().get("/login").text


def test_status_page_shows_devices_answering_or_not(web):
    web.login("admin", web.initial_password)
    change_password(web, web.initial_password, NEW_PASSWORD)
    page = web.client.get("/status")
    assert "<title>Status · PanelHub</title>" in page.text
    assert page.text.count('<table id="devices">') == 1
    assert '<tr class="device-not-answering"><td>3, 103</td>' in page.text
    assert "12.5 s ago" in page.text
    devices = web.client.get("/api/status").json()["devices"]
    assert devices[0]["state"] == "not answering"
