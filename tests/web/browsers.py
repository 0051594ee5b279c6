"""Logged-in browsers for the page tests: the admin past the forced change, and other roles."""

from __future__ import annotations

import asyncio
import json

from starlette.testclient import TestClient

from panelhub.security.accounts import Role
from panelhub.web.access import SESSION_COOKIE
from tests.web.conftest import ORIGIN, Web

ADMIN_PASSWORD = "Switchboard-Room7"  # noqa: S105 - a test password
USER_PASSWORD = "Meter-Cabinet-42"  # noqa: S105 - a test password
FIRST_PASSWORD = "Busbar-Trunk-19"  # noqa: S105 - a test password


def token(web: Web, client: TestClient) -> str:
    session = web.context.sessions.get(client.cookies[SESSION_COOKIE])
    assert session is not None
    return session.csrf_token


def form(web: Web, client: TestClient, path: str, files=None, **fields: str):
    return client.post(path, data={"csrf_token": token(web, client), **fields}, files=files,
                       headers={"origin": ORIGIN}, follow_redirects=False)  # fmt: skip


def call(web: Web, client: TestClient, method: str, path: str, body: object = None, **kwargs):
    headers = {"x-csrf-token": token(web, client), "origin": ORIGIN}
    if body is not None:
        headers["content-type"] = "application/json"
        kwargs["content"] = json.dumps(body)
    return client.request(method, path, headers=headers, **kwargs)


def change_first_password(web: Web, client: TestClient, current: str, new: str) -> None:
    changed = form(web, client, "/password", current=current, new=new, confirm=new)
    assert (changed.status_code, changed.headers["location"]) == (303, "/"), changed.text


def admin_browser(web: Web) -> TestClient:
    response, _ = web.login("admin", web.initial_password)
    assert response.status_code == 303
    change_first_password(web, web.client, web.initial_password, ADMIN_PASSWORD)
    return web.client


def browser_of(web: Web, name: str, role: Role, address: str = "127.0.0.2") -> TestClient:
    """A new account of ``role``, logged in from ``address`` with its own password set."""
    asyncio.run(web.context.accounts.create(name, role, FIRST_PASSWORD))
    client = web.new_client(address)
    response, _ = web.login(name, FIRST_PASSWORD, client)
    assert response.status_code == 303
    change_first_password(web, client, FIRST_PASSWORD, USER_PASSWORD)
    return client
