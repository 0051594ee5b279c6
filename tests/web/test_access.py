"""Every route in the application's own table: who gets what, without or with a bad session."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.routing import Mount

from panelhub.web.access import SESSION_COOKIE, Access, GuardedRoute
from panelhub.web.app import routes
from panelhub.web.middleware import MAX_BODY_BYTES
from tests.web.conftest import ORIGIN
from tests.web.test_login import NEW_PASSWORD, change_password

PROTECTED = [
    (route, method)
    for route in routes()
    if isinstance(route, GuardedRoute) and route.access is not Access.PUBLIC
    for method in sorted(route.methods or ())
    if method != "HEAD"
]


def test_every_route_is_guarded_or_static():
    for route in routes():
        assert isinstance(route, GuardedRoute) or (
            isinstance(route, Mount) and route.path == "/static"
        ), route


def test_public_routes_are_only_login_and_health():
    public = {(r.path, m) for r in routes() if isinstance(r, GuardedRoute)
              and r.access is Access.PUBLIC for m in r.methods or ()}  # fmt: skip
    assert public <= {("/login", "GET"), ("/login", "HEAD"), ("/login", "POST"),
                      ("/api/login", "POST"), ("/healthz", "GET"),
                      ("/healthz", "HEAD")}  # fmt: skip


def concrete_path(template: str) -> str:
    """A path the route matches: its parameters filled in with values of their type."""
    return re.sub(r"\{(\w+)(?::(\w+))?\}", lambda m: "1" if m.group(2) == "int" else "x", template)


def _expect_refused(response, route: GuardedRoute, method: str) -> None:
    if route.is_api:
        assert response.status_code == 401, (route.path, method, response.status_code)
        assert response.json() == {"error": "not_authenticated"}
    else:
        assert response.status_code == 303, (route.path, method, response.status_code)
        assert response.headers["location"].startswith("/login")
        assert response.content == b""


@pytest.mark.parametrize(("route", "method"), PROTECTED, ids=lambda x: getattr(x, "path", x))
@pytest.mark.parametrize("cookie", ["none", "forged", "expired", "logged-out"])
def test_protected_routes_refuse_without_a_live_session(web, route, method, cookie):
    client = web.client
    if cookie == "forged":
        client.cookies.set(SESSION_COOKIE, "A" * 43)
    elif cookie in ("expired", "logged-out"):
        response, _ = web.login("admin", web.initial_password)
        assert response.status_code == 303
        if cookie == "expired":
            web.clock.now += web.context.sessions.idle_timeout_s + 1
        else:
            # The browser may keep a copy of the old cookie (or someone stole it): after the
            # logout it must not work.
            old_id = client.cookies[SESSION_COOKIE]
            session = web.context.sessions.get(old_id)
            client.post("/logout", data={"csrf_token": session.csrf_token},
                        headers={"origin": ORIGIN}, follow_redirects=False)  # fmt: skip
            client.cookies.set(SESSION_COOKIE, old_id)
    response = client.request(
        method, concrete_path(route.path), follow_redirects=False, headers={"origin": ORIGIN}
    )
    _expect_refused(response, route, method)


def test_bookmarked_page_leads_to_login_and_back(web):
    response = web.client.get("/password", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fpassword"


FORM = {"origin": ORIGIN, "content-type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize("path", ["/login", "/password", "/api/settings/modbus", "/nowhere"])
def test_a_body_announced_over_the_limit_is_refused_unread(web, path):
    response = web.client.post(path, content=b"a=" + b"x" * MAX_BODY_BYTES, headers=FORM)
    assert response.status_code == 413
    assert response.headers["content-security-policy"]


def chunks() -> Iterator[bytes]:
    """A body sent without Content-Length, twice the limit."""
    for _ in range(8):
        yield b"x" * (MAX_BODY_BYTES // 4)


def test_a_body_found_over_the_limit_while_read_is_refused(web):
    assert web.client.post("/login", content=chunks(), headers=FORM).status_code == 413
    web.login("admin", web.initial_password)
    change_password(web, web.initial_password, NEW_PASSWORD)
    session = web.context.sessions.get(web.client.cookies[SESSION_COOKIE])
    assert session is not None
    headers = {"origin": ORIGIN, "content-type": "application/json",
               "x-csrf-token": session.csrf_token}  # fmt: skip
    refused = web.client.put("/api/settings/modbus", content=chunks(), headers=headers)
    assert refused.status_code == 413


def test_a_body_under_the_limit_still_logs_in(web):
    response, _ = web.login("admin", web.initial_password)
    assert response.status_code == 303
