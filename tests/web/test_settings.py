"""The Modbus settings page and API: who may change what, and what a change does.

Each test keeps one ``TestClient`` open (``with``), so the listeners a change starts live on
one event loop for the whole test, as they do in the service.
"""

from __future__ import annotations

import asyncio
import html
import tomllib
from collections.abc import Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from panelhub.config.store import load_settings
from panelhub.security.accounts import Role
from panelhub.security.audit import AuditEvent, AuditFilter
from panelhub.web.access import SESSION_COOKIE
from tests.web.conftest import ORIGIN, Web

NEW_PASSWORD = "Busbar-Torque-91"  # noqa: S105 - a test password
VIEWER_PASSWORD = "Readonly-Panel-7"  # noqa: S105 - a test password


@pytest.fixture
def admin(web: Web) -> Iterator[TestClient]:
    with web.new_client() as client:
        log_in_as_admin(web, client)
        yield client
        client.portal.call(web.gateway.aclose)  # type: ignore[union-attr]


def log_in_as_admin(web: Web, client: TestClient) -> None:
    response, _ = web.login("admin", web.initial_password, client)
    assert response.headers["location"] == "/password"
    changed = client.post(
        "/password",
        data={"current": web.initial_password, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD,
              "csrf_token": csrf(web, client)},
        headers={"origin": ORIGIN},
        follow_redirects=False,
    )  # fmt: skip
    assert changed.status_code == 303


def csrf(web: Web, client: TestClient) -> str:
    session = web.context.sessions.get(client.cookies[SESSION_COOKIE])
    assert session is not None
    return session.csrf_token


def post(web: Web, client: TestClient, path: str, **fields: str):
    return client.post(
        path, data={"csrf_token": csrf(web, client), **fields}, headers={"origin": ORIGIN},
        follow_redirects=False,
    )  # fmt: skip


def put(web: Web, client: TestClient, body: object):
    return client.put(
        "/api/settings/modbus",
        json=body,
        headers={"origin": ORIGIN, "x-csrf-token": csrf(web, client)},
    )


LISTENER = {
    "name": "scada",
    "host": "127.0.0.1",
    "port": "0",
    "enable": "on",
    "allow_clients": "127.0.0.1\n10.1.2.0/24",
    "allow_function_codes": "3, 4, 16",
    "allow_unit_ids": "",
    "max_connections": "8",
    "max_connections_per_client": "2",
    "idle_timeout_s": "120",
}


def test_admin_adds_a_listener_that_serves_at_once_and_is_saved(web, admin):
    response = post(web, admin, "/settings/modbus/listeners", original_name="", **LISTENER)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/settings/modbus?saved=1")
    page = admin.get(response.headers["location"])
    assert "Saved, and in force now." in page.text
    assert "10.1.2.0/24" in page.text
    port = web.gateway.listeners[0].address[1]

    async def modbus_answers() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(bytes.fromhex("0001 0000 0006 ff 03 009f 0001"))  # health, unit 255
        answer = await reader.readexactly(11)
        writer.close()
        return answer

    assert admin.portal.call(modbus_answers)[7] == 3
    saved = load_settings(web.data_dir / "panelhub.toml")
    assert saved.listeners[0].allow_clients == ("127.0.0.1", "10.1.2.0/24")
    assert saved.listeners[0].allow_function_codes == (3, 4, 16)
    records = admin.portal.call(web.audit.query, AuditFilter(event=AuditEvent.CONFIG_CHANGED))
    assert [(r.user, r.outcome, r.details["changed"]) for r in records] == [
        ("admin", "success", "listeners.scada (added)")
    ]


def test_invalid_values_are_listed_and_change_nothing(web, admin):
    bad = LISTENER | {"allow_clients": "10.0.0.300", "port": "70000"}
    response = post(web, admin, "/settings/modbus/listeners", original_name="", **bad)
    assert response.status_code == 400
    assert "Nothing was changed" in response.text
    assert "is not an IP address or network" in response.text
    assert "less than or equal to 65535" in response.text
    assert not (web.data_dir / "panelhub.toml").exists()
    assert web.context.control.settings.listeners == ()


def test_routes_and_time_to_live_from_the_pages(web, admin):
    api = {"buses": [{"kind": "tcp", "name": "meters", "host": "127.0.0.1", "port": 1502}]}
    assert put(web, admin, api).status_code == 200
    assert post(web, admin, "/settings/modbus/routes", unit_id="100", bus="meters",
                target_unit_id="3").status_code == 303  # fmt: skip
    assert post(web, admin, "/settings/modbus/general", request_ttl_ms="2500",
                default_bus="meters").status_code == 303  # fmt: skip
    settings = web.context.control.settings
    assert [(r.unit_id, r.bus, r.target_unit_id) for r in settings.routes] == [(100, "meters", 3)]
    assert settings.gateway.request_ttl_ms == 2500
    assert settings.gateway.default_bus == "meters"
    assert not settings.gateway.allow_set_clock  # an unticked box is "no"
    assert post(web, admin, "/settings/modbus/routes/100/delete").status_code == 303
    assert web.context.control.settings.routes == ()
    assert post(web, admin, "/settings/modbus/routes/100/delete").status_code == 404
    file = tomllib.loads((web.data_dir / "panelhub.toml").read_text())
    assert file["gateway"] == {"request_ttl_ms": 2500, "default_bus": "meters"}


def test_a_route_to_a_missing_bus_is_refused(web, admin):
    response = post(web, admin, "/settings/modbus/routes", unit_id="7", bus="nowhere")
    assert response.status_code == 400
    assert "routes[0].bus names 'nowhere', which is not in buses" in html.unescape(response.text)


def test_api_reads_and_replaces_sections(web, admin):
    document = admin.get("/api/settings/modbus").json()
    assert set(document) == {"gateway", "listeners", "buses", "routes"}
    listener = {"name": "api", "port": 0, "allow_clients": ["127.0.0.1/32"], "is_read_only": True}
    answer = put(web, admin, {"listeners": [listener], "gateway": {"request_ttl_ms": 4000}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["settings"]["listeners"][0]["is_read_only"] is True
    assert answer.json()["settings"]["gateway"]["request_ttl_ms"] == 4000
    assert answer.json()["restart_required"] == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"web": {"port": 1}}, 400, "invalid_settings"),
        ({"gateway": {"request_ttl_ms": 10}}, 400, "invalid_settings"),
        ([1, 2], 400, "invalid_settings"),
    ],
)
def test_api_refuses_what_it_cannot_apply(web, admin, body, status, code):
    answer = put(web, admin, body)
    assert answer.status_code == status
    assert answer.json()["error"] == code
    assert answer.json()["problems"]
    assert not (web.data_dir / "panelhub.toml").exists()


def test_api_refuses_a_body_that_is_not_json(web, admin):
    headers = {"origin": ORIGIN, "x-csrf-token": csrf(web, admin)}
    wrong_type = admin.put("/api/settings/modbus", content=b"{}", headers=headers)
    assert wrong_type.status_code == 415
    broken = admin.put("/api/settings/modbus", content=b"{nope",
                       headers=headers | {"content-type": "application/json"})  # fmt: skip
    assert broken.status_code == 400
    huge = admin.put("/api/settings/modbus", content=b" " * 300_000,
                     headers=headers | {"content-type": "application/json"})  # fmt: skip
    assert huge.status_code == 413


def test_a_busy_port_is_reported_and_changes_nothing(web, admin):
    import socket  # noqa: PLC0415

    with socket.create_server(("127.0.0.1", 0)) as blocker:
        busy = blocker.getsockname()[1]
        answer = put(web, admin, {"listeners": [{"name": "busy", "port": busy}]})
    assert answer.status_code == 409
    assert answer.json()["error"] == "cannot_apply"
    assert web.context.control.settings.listeners == ()
    records = admin.portal.call(web.audit.query, AuditFilter(event=AuditEvent.CONFIG_CHANGED))
    assert [r.outcome for r in records] == ["failure"]


def test_viewer_reads_but_cannot_change(web):
    with web.new_client() as client:
        account = client.portal.call(
            web.context.accounts.create, "vera", Role.VIEWER, VIEWER_PASSWORD
        )
        accounts = web.context.accounts
        client.portal.call(
            lambda: accounts.set_password(account.id, VIEWER_PASSWORD, must_change=False)
        )
        response, _ = web.login("vera", VIEWER_PASSWORD, client)
        assert response.status_code == 303
        page = client.get("/settings/modbus")
        assert page.status_code == 200
        assert "<form" not in page.text.split("<main>")[1]  # no edit form for a viewer
        assert client.get("/api/settings/modbus").status_code == 200
        assert (
            post(web, client, "/settings/modbus/general", request_ttl_ms="2000").status_code == 403
        )
        assert put(web, client, {"gateway": {}}).status_code == 403
    assert web.context.control.settings.gateway.request_ttl_ms == 6000


def test_changes_need_the_form_token(web, admin):
    response = admin.post(
        "/settings/modbus/general", data={"request_ttl_ms": "2000"}, headers={"origin": ORIGIN},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 403
    assert web.context.control.settings.gateway.request_ttl_ms == 6000


def test_two_admins_saving_at_once_never_undo_each_other(web, admin):
    """Each change is made from the settings it read: a stale one is refused, not applied."""

    async def race() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=admin.app)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN,
                                     cookies=dict(admin.cookies)) as client:  # fmt: skip
            forms = [
                {"csrf_token": csrf(web, admin), "original_name": ""} | LISTENER | {"name": name}
                for name in ("alpha", "bravo")
            ]
            return list(await asyncio.gather(*(
                client.post("/settings/modbus/listeners", data=form, headers={"origin": ORIGIN})
                for form in forms
            )))  # fmt: skip

    answers = admin.portal.call(race)
    statuses = sorted(answer.status_code for answer in answers)
    saved = [listener.name for listener in load_settings(web.data_dir / "panelhub.toml").listeners]
    running = [listener.config.name for listener in web.gateway.listeners]
    assert saved == running == [item.name for item in web.context.control.settings.listeners]
    if statuses == [303, 303]:
        assert sorted(saved) == ["alpha", "bravo"]
    else:
        assert statuses == [303, 409]
        assert len(saved) == 1
        refused = next(answer for answer in answers if answer.status_code == 409)
        assert "changed meanwhile" in refused.text
    records = admin.portal.call(web.audit.query, AuditFilter(event=AuditEvent.CONFIG_CHANGED))
    assert sorted(str(r.details["changed"]) for r in records if r.outcome == "success") == sorted(
        f"listeners.{name} (added)" for name in saved
    )
