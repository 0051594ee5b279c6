from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from panelhub.config.models import Settings
from panelhub.datalogservice import DataloggerService
from panelhub.security.accounts import AccountStore
from panelhub.security.audit import AuditLog
from panelhub.security.lockout import AddressRateLimiter
from panelhub.security.passwords import PasswordHasher
from panelhub.security.sessions import SessionStore
from panelhub.service import Gateway, ServiceController, build_bus
from panelhub.web.app import create_app
from panelhub.web.context import (
    BusStatus,
    DeviceStatus,
    GatewayStatus,
    ListenerStatus,
    WebContext,
)
from tests.clock import Clock

ORIGIN = "https://testserver"


class StaticGateway:
    """A fixed gateway state: these tests are about the pages, not the gateway."""

    def status(self) -> GatewayStatus:
        return GatewayStatus(
            health="nominal",
            listeners=[ListenerStatus("scada", "127.0.0.1:5020", 2, False)],
            buses=[BusStatus("rs485-1", "/dev/ttyS1", True, 10, 9, 0, 1, 0)],
            devices=[DeviceStatus("rs485-1", 3, [3, 103], "not answering", 9, 1, 12.5)],
        )


@dataclass
class Web:
    client: TestClient
    context: WebContext
    audit: AuditLog
    clock: Clock
    initial_password: str
    data_dir: Path
    #: Set when a page asked the service to restart.
    restarts: list[bool]
    #: The real gateway behind ``context.control`` (no listener until a test adds one).
    gateway: Gateway
    #: The real datalogger behind ``context.datalog``, not started: its store (in
    #: ``data_dir``) and catalog serve the pages; tests that need polling run the service.
    datalog: DataloggerService

    def login(self, name: str, password: str, client: TestClient | None = None):
        client = client or self.client
        page = client.get("/login")
        token = client.cookies.get("__Host-panelhub-login")
        return client.post(
            "/login",
            data={"username": name, "password": password, "csrf_token": token or "", "next": "/"},
            headers={"origin": ORIGIN},
            follow_redirects=False,
        ), page

    def new_client(self, address: str = "127.0.0.1") -> TestClient:
        return TestClient(create_app(self.context), base_url=ORIGIN, client=(address, 50000))


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    clock = Clock()
    hasher = PasswordHasher(memory_cost_kib=1024, time_cost=1)
    provisioning = AccountStore.open(tmp_path, hasher, clock=clock)
    store = provisioning.store
    audit = AuditLog(store.db)
    restarts: list[bool] = []
    settings = Settings(data_dir=tmp_path)
    gateway = Gateway(settings)
    datalog = DataloggerService(settings, bus_for=gateway.bus, bus_factory=build_bus)
    control = ServiceController(
        gateway,
        config_path=tmp_path / "panelhub.toml",
        on_restart=lambda: restarts.append(True),
        datalog=datalog,
    )
    context = WebContext(
        accounts=store,
        sessions=SessionStore(clock=clock),
        rate_limiter=AddressRateLimiter(),
        gateway=StaticGateway(),
        audit=audit,
        control=control,
        data_dir=tmp_path,
        login_banner="Authorised personnel only.",
        clock=clock,
        datalog=datalog,
    )
    client = TestClient(create_app(context), base_url=ORIGIN)
    assert provisioning.initial_password is not None
    yield Web(
        client,
        context,
        audit,
        clock,
        provisioning.initial_password,
        tmp_path,
        restarts,
        gateway,
        datalog,
    )
    asyncio.run(datalog.aclose())
    store.close()
