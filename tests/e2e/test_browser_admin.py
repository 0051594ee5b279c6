"""Commissioning a panel in a real browser: Modbus settings, user accounts, maintenance.

Chromium (through Playwright) does what an integrator does after first start, with clicks,
form fills and the navigation links: add a Modbus listener and check with a Modbus client
that it serves at once and refuses writes, try a wrong value, add and delete a route; make
an operator account and hand its one-time password to a second browser; check the HTTPS
certificate's fingerprint against the one the connection presents; restart the service.
Each test checks what the page says and what changed behind it (the gateway, the saved
configuration file, the accounts), and that no page broke the Content-Security-Policy.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import struct
import time
import urllib.parse
from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

from panelhub.config.store import load_settings
from panelhub.security.audit import AuditEvent, AuditFilter
from tests.e2e.conftest import Console, Panel
from tests.e2e.test_browser_auth import first_login, log_in, path_of

OPERATOR_PASSWORD = "Operator#2026x"  # noqa: S105 - the operator's own, chosen at first login
#: Unit 255 is the gateway itself; holding register 159 (0-based) is its health.
GATEWAY_UNIT = 255
HEALTH_REGISTER = 159
READ_HOLDING = 0x03
WRITE_SINGLE = 0x06
ILLEGAL_FUNCTION = 0x01
#: Longest wait for the service to act on a restart asked for (it waits half a second).
RESTART_WAIT_S = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def modbus(port: int, function: int, data: bytes) -> bytes:
    """One Modbus TCP transaction with the gateway (unit 255); the answer's PDU."""
    pdu = bytes([GATEWAY_UNIT, function]) + data
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(struct.pack(">HHH", 1, 0, len(pdu)) + pdu)
        header = _read(client, 7)
        transaction, protocol, length = struct.unpack(">HHH", header[:6])
        assert (transaction, protocol, header[6]) == (1, 0, GATEWAY_UNIT)
        return _read(client, length - 1)


def _read(client: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = client.recv(size - len(data))
        assert chunk, "the gateway closed the connection"
        data += chunk
    return data


def go(page: Page, link: str) -> None:
    """Follow a navigation link, as the user does."""
    with page.expect_navigation():
        page.click(f"nav a[href='{link}']")
    assert path_of(page) == link


def submit(page: Page, button: str) -> None:
    with page.expect_navigation():
        page.click(button)


def fill_new_listener(page: Page, name: str, port: int, clients: str) -> None:
    """Open "Add a listener" and fill it in for this host's loopback address."""
    page.click("summary:text('Add a listener')")
    add = page.locator("form.listener-form:has(input[name=original_name][value=''])")
    add.locator("#l-new-name").fill(name)
    add.locator("#l-new-host").fill("127.0.0.1")
    add.locator("#l-new-port").fill(str(port))
    add.locator("#l-new-clients").fill(clients)
    add.locator("input[name=is_read_only]").check()


def add_read_only_listener(page: Page, panel: Panel) -> int:
    """Add a read-only listener for a SCADA on this host; check it serves; return its port."""
    go(page, "/settings/modbus")
    expect(page.locator("#listeners tbody")).to_contain_text("No listener")
    port = free_port()
    fill_new_listener(page, "scada", port, "127.0.0.1")
    submit(page, "form.listener-form button:text('Add listener')")
    assert path_of(page).startswith("/settings/modbus?saved=1")
    expect(page.locator("#saved")).to_have_text("Saved, and in force now.")
    row = page.locator("#listeners tbody tr")
    expect(row).to_have_count(1)
    cells = ["scada", f"127.0.0.1:{port}", "yes", "127.0.0.1", "read-only"]
    assert row.locator("td").all_inner_texts()[:5] == cells

    # A SCADA on this host reads the gateway's health there; its writes are refused as on a
    # read-only listener (01). A read/write listener would answer 02: not a writable register.
    answer = modbus(port, READ_HOLDING, struct.pack(">HH", HEALTH_REGISTER, 1))
    assert answer[:2] == bytes([READ_HOLDING, 2])
    refused = modbus(port, WRITE_SINGLE, struct.pack(">HH", HEALTH_REGISTER, 1))
    assert refused == bytes([WRITE_SINGLE | 0x80, ILLEGAL_FUNCTION])
    saved = load_settings(panel.config_path)
    [listener] = saved.listeners
    assert (listener.name, listener.host, listener.port) == ("scada", "127.0.0.1", port)
    assert (listener.allow_clients, listener.is_read_only) == (("127.0.0.1",), True)
    return port


def add_a_wrong_client_address(page: Page, panel: Panel) -> None:
    """The problems are listed, and neither the gateway nor the file changes."""
    file_text = panel.config_path.read_bytes()
    fill_new_listener(page, "engineering", free_port(), "10.0.0.300")
    submit(page, "form.listener-form button:text('Add listener')")
    problems = page.locator("#problems")
    expect(problems).to_contain_text("Nothing was changed")
    expect(problems).to_contain_text("10.0.0.300")
    expect(problems).to_contain_text("is not an IP address or network")
    expect(page.locator("#saved")).to_have_count(0)
    expect(page.locator("#listeners tbody tr")).to_have_count(1)
    assert panel.config_path.read_bytes() == file_text
    assert [item.config.name for item in panel.gateway.listeners] == ["scada"]


def add_and_delete_a_route(page: Page, panel: Panel) -> None:
    """Unit 7 goes to address 3 on the PLC bus, then the route is taken away again."""
    go(page, "/settings/modbus")
    page.fill("#route-unit", "7")
    page.select_option("#route-bus", "plc")
    page.fill("#route-target", "3")
    submit(page, "#add-route button[type=submit]")
    expect(page.locator("#saved")).to_have_text("Saved, and in force now.")
    routes = page.locator("#routes tbody tr")
    expect(routes).to_have_count(1)
    assert routes.locator("td").all_inner_texts()[:3] == ["7", "plc", "3"]
    [route] = load_settings(panel.config_path).routes
    assert (route.unit_id, route.bus, route.target_unit_id) == (7, "plc", 3)
    in_force = panel.gateway.router.resolve(7)
    assert in_force is not None
    assert (in_force.bus, in_force.unit_id) == (panel.gateway.buses["plc"], 3)
    submit(page, "form[action='/settings/modbus/routes/7/delete'] button")
    expect(page.locator("#saved")).to_have_text("Saved, and in force now.")
    expect(routes).to_have_text(["No explicit route."])
    assert load_settings(panel.config_path).routes == ()
    assert panel.gateway.router.resolve(7) is None


def test_modbus_settings_from_the_pages_are_in_force_at_once_and_saved(
    page: Page, panel: Panel, console: Console
):
    first_login(page, panel)
    port = add_read_only_listener(page, panel)
    add_a_wrong_client_address(page, panel)
    add_and_delete_a_route(page, panel)
    saved = load_settings(panel.config_path)
    assert saved.listeners == panel.gateway.settings.listeners
    assert [(item.name, item.port) for item in saved.listeners] == [("scada", port)]
    records = panel.run(panel.audit.query(AuditFilter(event=AuditEvent.CONFIG_CHANGED)))
    assert [(r.user, r.outcome) for r in records] == [("admin", "success")] * 3
    assert console.csp_violations() == []


def test_an_operator_gets_a_one_time_password_and_loses_access_when_disabled(
    page: Page, panel: Panel, console: Console, new_context: Callable[[], BrowserContext]
):
    first_login(page, panel)
    go(page, "/users")
    page.fill("#new-name", "olivia")
    page.select_option("#new-role", "operator")
    submit(page, "#create button[type=submit]")
    expect(page.locator("#notice")).to_have_text("Account 'olivia' created.")
    one_time = page.locator("#new-password #password").inner_text().strip()
    assert len(one_time) >= 12

    # The operator, in a browser of their own, must change the password first.
    operator = new_context().new_page()
    log_in(operator, "olivia", one_time)
    assert path_of(operator) == "/password"
    expect(operator.locator("#must-change")).to_be_visible()
    operator.fill("#current", one_time)
    operator.fill("#new", OPERATOR_PASSWORD)
    operator.fill("#confirm", OPERATOR_PASSWORD)
    submit(operator, "form[action='/password'] button[type=submit]")
    assert path_of(operator) == "/"
    expect(operator.locator(".who")).to_have_text("olivia (operator)")
    expect(operator.locator("nav a")).to_have_text(
        ["Home", "Monitoring", "Trends", "Export", "Status", "Devices", "Modbus"]
    )
    for admin_page in ["/users", "/logs", "/maintenance"]:
        answer = operator.goto(admin_page)
        assert answer is not None
        assert answer.status == 403, admin_page
    operator.goto("/")
    go(operator, "/settings/modbus")  # read only for an operator
    expect(operator.locator("form[action^='/settings/modbus']")).to_have_count(0)

    # The admin disables the account: the operator's next page is the login page.
    page.reload()
    olivia = page.locator("tr[data-user=olivia]")
    expect(olivia.locator(".sessions")).to_have_text("1")
    submit(page, "tr[data-user=olivia] form[action='/users/enabled'] button")
    expect(page.locator("#notice")).to_have_text("'olivia' is disabled; their sessions ended.")
    expect(olivia.locator(".state")).to_have_text("disabled")
    operator.reload()
    assert path_of(operator).startswith("/login")
    expect(operator.locator(".who")).to_have_count(0)
    log_in(operator, "olivia", OPERATOR_PASSWORD)
    assert path_of(operator).startswith("/login")
    accounts = {a.name: a for a in panel.run(panel.context.accounts.list())}
    assert (accounts["olivia"].role, accounts["olivia"].is_enabled) == ("operator", False)
    assert console.csp_violations() == []


def served_fingerprint(url: str) -> str:
    """The SHA-256 fingerprint of the certificate a TLS connection to ``url`` is given."""
    address = urllib.parse.urlsplit(url)
    assert address.hostname is not None
    assert address.port is not None
    pem = ssl.get_server_certificate((address.hostname, address.port))
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest().hex(":").upper()


def test_maintenance_shows_the_served_certificate_and_restarts_the_service(
    page: Page, panel: Panel, console: Console
):
    first_login(page, panel)
    go(page, "/maintenance")
    expect(page.locator("#fingerprint")).to_have_text(served_fingerprint(panel.url))
    expect(page.locator("#origin")).to_have_text("generated by this panel (self-signed)")
    expect(page.locator("#certificate-info")).to_contain_text("127.0.0.1")
    submit(page, "#restart")
    assert path_of(page) == "/maintenance/restart"
    expect(page.locator("h1")).to_have_text("Restarting")
    expect(page.locator("#restarting")).to_contain_text("The service is restarting.")
    deadline = time.monotonic() + RESTART_WAIT_S
    while not panel.restarts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert panel.restarts == [True]
    records = panel.run(panel.audit.query(AuditFilter(event=AuditEvent.SERVICE_CHANGED)))
    assert [(r.user, r.details) for r in records] == [("admin", {"action": "restart"})]
    assert console.csp_violations() == []
