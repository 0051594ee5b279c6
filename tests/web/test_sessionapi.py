"""A program logs in, changes its password and logs out through the JSON API, as a browser does."""

from __future__ import annotations

import anyio

from panelhub.security.audit import AuditEvent, AuditFilter
from panelhub.web.access import SESSION_COOKIE
from tests.web.conftest import ORIGIN, Web

NEW_PASSWORD = "Terminal-Block-63"  # noqa: S105 - a test password


def api_login(web: Web, user: str, password: str, **headers: str):
    return web.client.post("/api/login", json={"user": user, "password": password},
                           headers=headers)  # fmt: skip


def test_first_login_change_and_logout_through_the_api(web):
    answer = api_login(web, "admin", web.initial_password)
    assert answer.status_code == 200
    first = answer.json()
    assert first["must_change_password"] is True
    assert web.client.cookies[SESSION_COOKIE]
    assert web.client.get("/api/status").json() == {"error": "password_change_required"}
    weak = web.client.post("/api/password", json={"current": web.initial_password, "new": "abc"},
                           headers={"x-csrf-token": first["csrf_token"]})  # fmt: skip
    assert weak.status_code == 400
    assert weak.json()["error"] == "weak_password"
    assert weak.json()["problems"]
    changed = web.client.post(
        "/api/password",
        json={"current": web.initial_password, "new": NEW_PASSWORD},
        headers={"x-csrf-token": first["csrf_token"]},
    )
    assert changed.status_code == 200
    token = changed.json()["csrf_token"]
    assert token != first["csrf_token"]  # a new session, with its own token
    assert web.client.get("/api/status").status_code == 200
    out = web.client.post("/api/logout", headers={"x-csrf-token": token})
    assert out.status_code == 204
    assert web.client.get("/api/status").status_code == 401
    assert api_login(web, "admin", web.initial_password).status_code == 401
    assert api_login(web, "admin", NEW_PASSWORD).status_code == 200


def test_api_login_counts_towards_the_lockout_and_is_audited(web):
    answers = [api_login(web, "admin", "wrong").json()["error"] for _ in range(10)]
    assert answers == ["bad_credentials"] * 9 + ["locked"]
    locked = api_login(web, "admin", web.initial_password)
    assert locked.status_code == 401
    assert locked.json()["error"] == "locked"
    assert locked.json()["locked_until"]
    failed = anyio.run(web.audit.query, AuditFilter(event=AuditEvent.LOGIN_FAILED))
    refused = anyio.run(web.audit.query, AuditFilter(event=AuditEvent.LOGIN_LOCKED))
    assert (len(failed), len(refused)) == (9, 2)
    assert {record.interface for record in [*failed, *refused]} == {"api"}


def test_api_login_is_rate_limited_per_address(web):
    statuses = [api_login(web, "nobody", "x").status_code for _ in range(40)]
    assert 429 in statuses
    limited = api_login(web, "nobody", "x")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1


def test_api_login_from_another_origin_or_as_a_form_is_refused(web):
    assert (
        api_login(web, "admin", web.initial_password, origin="https://evil.example").status_code
        == 403
    )
    form = web.client.post("/api/login", data={"user": "admin", "password": web.initial_password})
    assert form.status_code == 415
    assert SESSION_COOKIE not in web.client.cookies
    wrong_shape = web.client.post("/api/login", json={"user": "admin"})
    assert wrong_shape.status_code == 400


def test_logout_and_password_change_need_the_token(web):
    token = api_login(web, "admin", web.initial_password).json()["csrf_token"]
    assert web.client.post("/api/logout").status_code == 403
    assert (
        web.client.post(
            "/api/logout", headers={"origin": ORIGIN, "x-csrf-token": token}
        ).status_code
        == 204
    )


def test_json_nested_too_deeply_is_a_bad_request_not_a_crash(web):
    deep = b"[" * 100_000
    answer = web.client.post("/api/login", content=deep,
                             headers={"content-type": "application/json"})  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_json"
