"""A damaged account store: the real HTTPS server answers 503 with the way back, and only that.

``start_web`` as ``panelhub run`` calls it, on a store that was in use and then damaged,
beside a running gateway: every page and the API answer 503 with the recovery command and
the usual security headers, nobody can log in (not with the initial password either), no
new initial password is made, and Modbus clients are still served.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import httpx

from panelhub.config.models import Settings
from panelhub.security.accounts import STATE_FILE, AccountStore
from panelhub.security.passwords import PasswordHasher
from panelhub.service import ServiceController
from panelhub.webservice import RECOVERY_MESSAGE, start_web
from tests.harness import connect, running_gateway
from tests.rawdevice import raw_request, read_pdu

REQUESTS = [
    ("GET", "/"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/password"),
    ("GET", "/api/status"),
    ("PUT", "/api/settings/modbus"),
    ("DELETE", "/api/users/admin"),
    ("GET", "/static/style.css"),
    ("HEAD", "/users"),
]


def damaged_store(data_dir: Path) -> tuple[str, bytes]:
    """A provisioned store, then overwritten; returns the initial password and the bytes."""
    provisioning = AccountStore.open(data_dir, PasswordHasher(memory_cost_kib=1024, time_cost=1))
    provisioning.store.close()
    assert provisioning.initial_password is not None
    damage = b"\x00not a database any more" * 512
    (data_dir / STATE_FILE).write_bytes(damage)
    return provisioning.initial_password, damage


async def test_a_damaged_store_serves_only_the_recovery_answer_and_modbus_goes_on(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    data_dir = tmp_path / "data"
    initial, damage = damaged_store(data_dir)
    settings = Settings.model_validate({"data_dir": data_dir, "web": {"port": 0}})
    printed: list[str] = []
    async with running_gateway() as (gateway, modbus_port):
        control = ServiceController(gateway, config_path=None, on_restart=lambda: None)
        runtime = await start_web(settings, gateway, control=control,
                                  on_initial_password=printed.append)  # fmt: skip
        try:
            assert (runtime.store, runtime.audit, runtime.refusals) == (None, None, None)
            tls = ssl.create_default_context(cafile=data_dir / "tls" / "cert.pem")
            base = f"https://127.0.0.1:{runtime.server.port}"
            async with httpx.AsyncClient(base_url=base, verify=tls) as client:
                answers = [await client.request(method, path) for method, path in REQUESTS]
                login = await client.post("/login", data={"username": "admin", "password": initial})
            async with connect(modbus_port) as (reader, writer):
                _, _, identity = await raw_request(reader, writer, 1, 255, read_pdu(10, 4))
        finally:
            await runtime.aclose()
    for (method, path), answer in zip(REQUESTS, [*answers], strict=True):
        where = f"{method} {path}"
        assert answer.status_code == 503, where
        if method != "HEAD":
            assert answer.text == RECOVERY_MESSAGE, where
        assert "set-cookie" not in answer.headers, where
        assert answer.headers["content-security-policy"].startswith("default-src 'self'"), where
        assert answer.headers["x-frame-options"] == "DENY", where
        assert answer.headers["cache-control"] in {"no-store", "no-cache"}, where  # never kept
    assert login.status_code == 503
    assert "set-cookie" not in login.headers
    assert identity[2:10] == b"PanelHub"  # the gateway answered meanwhile
    assert printed == []  # no new initial password
    assert (data_dir / STATE_FILE).read_bytes() == damage  # kept as it was, for recovery
    assert "panelhub user reset-password" in caplog.text
