"""Changes made to accounts outside the pages (the console, another process) reach live sessions.

The store is changed through ``AccountStore`` directly, the way ``panelhub user
reset-password`` does it from the console, never through the session store.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from starlette.testclient import TestClient

from panelhub.security.accounts import Role
from panelhub.web.sessionsync import SYNC_INTERVAL_S
from tests.web.conftest import ORIGIN, Web
from tests.web.test_login import NEW_PASSWORD, change_password

OTHER_PASSWORD = "Cable-Gland-Seal-8"  # noqa: S105 - a test password
T = TypeVar("T")


def logged_in_admin(web: Web) -> TestClient:
    web.login("admin", web.initial_password)
    assert change_password(web, web.initial_password, NEW_PASSWORD).status_code == 303
    assert web.client.get("/api/session").status_code == 200
    return web.client


def anyio_run(function: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    return anyio.run(functools.partial(function, *args, **kwargs))


def admin_id(web: Web) -> int:
    found = anyio_run(web.context.accounts.get, "admin")
    assert found is not None
    return found.id


def test_a_password_reset_on_the_console_ends_the_open_session(web):
    client = logged_in_admin(web)
    anyio_run(web.context.accounts.set_password, admin_id(web), OTHER_PASSWORD, must_change=True)
    web.clock.now += SYNC_INTERVAL_S
    assert client.get("/api/session").status_code == 401
    page = client.get("/", follow_redirects=False)
    assert page.headers["location"].startswith("/login")


def test_a_disabled_account_loses_its_session_and_a_role_change_applies(web):
    client = logged_in_admin(web)
    operator = anyio_run(web.context.accounts.create, "otto", Role.OPERATOR, OTHER_PASSWORD)
    anyio_run(web.context.accounts.set_password, operator.id, OTHER_PASSWORD, must_change=False)
    otto = web.new_client()
    response, _ = web.login("otto", OTHER_PASSWORD, otto)
    assert response.status_code == 303
    anyio_run(web.context.accounts.update, operator.id, role=Role.VIEWER)
    web.clock.now += SYNC_INTERVAL_S
    assert otto.get("/api/session").json()["role"] == "viewer"
    anyio_run(web.context.accounts.update, operator.id, is_enabled=False)
    web.clock.now += SYNC_INTERVAL_S
    assert otto.get("/api/session").status_code == 401
    assert client.get("/api/session").status_code == 200  # the admin is not touched


def test_ones_own_password_change_keeps_the_new_session(web):
    client = logged_in_admin(web)
    web.clock.now += SYNC_INTERVAL_S * 3
    assert client.get("/api/session").status_code == 200


def test_an_api_client_gets_its_token_from_the_session(web):
    client = logged_in_admin(web)
    token = client.get("/api/session").json()["csrf_token"]
    answer = client.put(
        "/api/settings/modbus",
        json={"gateway": {"request_ttl_ms": 3000}},
        headers={"x-csrf-token": token, "origin": ORIGIN},
    )
    assert answer.status_code == 200
    refused = client.put(
        "/api/settings/modbus",
        json={"gateway": {"request_ttl_ms": 4000}},
        headers={"x-csrf-token": token[:-2] + "xx"},
    )
    assert refused.status_code == 403
