"""A real PanelHub HTTPS server and Debian's Chromium, driven by Playwright, for browser tests.

The server is the product's own app and server (``create_app``, ``WebServer``, the TLS context
and a certificate generated as at first start) on its own event loop in a thread, so the tests
use Playwright's sync API. The settings pages change a real ``Gateway`` through the service's
own ``ServiceController``, which saves to a configuration file in the test's directory. The
accounts, sessions, rate limit and audit log read a ``Clock`` the test moves: the lockout
durations are the real ones, the test does not wait for them.

Playwright cannot download its own browser here: it drives the ``chromium`` package
(``scripts/setup`` installs it). A missing browser fails the tests; it never skips them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from panelhub.config.models import Settings, TCPBusConfig
from panelhub.datalogservice import DataloggerService
from panelhub.security.accounts import AccountStore
from panelhub.security.audit import AuditLog
from panelhub.security.certs import ensure_certificate
from panelhub.security.lockout import AddressRateLimiter
from panelhub.security.passwords import PasswordHasher
from panelhub.security.sessions import SessionStore
from panelhub.service import Gateway, ServiceController, build_bus
from panelhub.transport.tls import server_context
from panelhub.web.app import create_app
from panelhub.web.certificate import ServedCertificate
from panelhub.web.context import BusStatus, GatewayStatus, ListenerStatus, WebContext
from panelhub.web.server import WebServer
from tests.clock import Clock

T = TypeVar("T")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: Longest wait for anything the browser does (ms): generous for a loaded CI machine.
BROWSER_TIMEOUT_MS = 15_000
CERTIFICATE_NAMES: dict[str, Any] = {"host_names": ["localhost"], "addresses": ["127.0.0.1"]}


class StaticGateway:
    """A fixed gateway state for the status pages; the settings pages change a real one."""

    def status(self) -> GatewayStatus:
        return GatewayStatus(
            health="nominal",
            listeners=[ListenerStatus("scada", "127.0.0.1:5020", 2, False)],
            buses=[BusStatus("rs485-1", "/dev/ttyS1", True, 10, 9, 0, 1, 0)],
        )


class LoopThread:
    """An event loop in a thread of its own: the servers' loop, apart from Playwright's."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="e2e-servers")
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@dataclass
class Panel:
    """One running PanelHub web server, as a browser reaches it."""

    url: str
    clock: Clock
    context: WebContext
    audit: AuditLog
    initial_password: str
    loops: LoopThread
    #: The real gateway behind ``context.control``; its listeners are the ones pages add.
    gateway: Gateway
    #: The configuration file the settings pages save to.
    config_path: Path
    #: One entry each time the service was asked to restart (and would have).
    restarts: list[bool]

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop (the accounts and audit log live there)."""
        return self.loops.run(coroutine)

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds


@dataclass
class Console:
    """Every console message of a browser context's pages, to look for CSP reports."""

    messages: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._add)

    def _add(self, message: ConsoleMessage) -> None:
        self.messages.append(f"{message.type}: {message.text}")

    def csp_violations(self) -> list[str]:
        return [text for text in self.messages if "Content Security Policy" in text]


@pytest.fixture(scope="module")
def loops() -> Iterator[LoopThread]:
    loop_thread = LoopThread()
    yield loop_thread
    loop_thread.close()


def tls_context(tls_dir: Path) -> tuple[ssl.SSLContext, ServedCertificate]:
    """A certificate made as at a first start, and the server context presenting it."""
    certificate = ensure_certificate(tls_dir, **CERTIFICATE_NAMES)
    tls = server_context(certificate.cert_path, certificate.key_path)
    return tls, ServedCertificate(tls_dir, **CERTIFICATE_NAMES, tls=tls)


@pytest.fixture(scope="module")
def site_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """The other sites' own certificate."""
    tls, _ = tls_context(tmp_path_factory.mktemp("site-tls"))
    return tls


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium; module scope: the sync API marks its loop as running while alive."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Chromium is not installed: run scripts/setup (Debian package chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def serve(loops: LoopThread, app: ASGIApp, host: str, tls: ssl.SSLContext) -> WebServer:
    server = WebServer(app, host=host, port=0, tls=tls)
    loops.run(server.start())
    return server


#: A device the routes can name; nothing listens there, and no test polls it.
PLC_BUS = TCPBusConfig(kind="tcp", name="plc", host="127.0.0.1", port=1)


async def _gateway(settings: Settings) -> Gateway:
    """A gateway made on the servers' loop, where its listeners will run."""
    return Gateway(settings)


async def _datalogger(settings: Settings, gateway: Gateway) -> DataloggerService:
    """The real datalogger, on the servers' loop; it polls what a test configures."""
    datalog = DataloggerService(settings, bus_for=gateway.bus, bus_factory=build_bus)
    await datalog.start()
    return datalog


@pytest.fixture
def panel(loops: LoopThread, tmp_path: Path) -> Iterator[Panel]:
    """PanelHub's pages as ``webservice.start_web`` serves them, with a fast hasher and a clock."""
    tls, certificate = tls_context(tmp_path / "tls")
    clock = Clock()
    hasher = PasswordHasher(memory_cost_kib=1024, time_cost=1)
    provisioning = AccountStore.open(tmp_path, hasher, clock=clock)
    store = provisioning.store
    audit = AuditLog(store.db, clock=lambda: dt.datetime.fromtimestamp(clock.now, dt.UTC))
    restarts: list[bool] = []
    gateway = loops.run(_gateway(Settings(data_dir=tmp_path, buses=[PLC_BUS])))
    config_path = tmp_path / "panelhub.toml"
    datalog = loops.run(_datalogger(gateway.settings, gateway))
    control = ServiceController(
        gateway,
        config_path=config_path,
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
        certificate=certificate,
        datalog=datalog,
    )
    server = serve(loops, create_app(context), "127.0.0.1", tls)
    assert provisioning.initial_password is not None
    try:
        yield Panel(
            f"https://127.0.0.1:{server.port}",
            clock,
            context,
            audit,
            provisioning.initial_password,
            loops,
            gateway,
            config_path,
            restarts,
        )
    finally:
        loops.run(server.aclose())
        loops.run(datalog.aclose())
        loops.run(gateway.aclose())
        store.close()


@dataclass
class Site:
    """A web site on another origin than the panel's, with the pages a test puts on it."""

    url: str
    pages: dict[str, str]


def _site_app(pages: dict[str, str]) -> Starlette:
    async def show(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in pages:
            return PlainTextResponse("Not Found", status_code=404)
        return HTMLResponse(pages[name])

    return Starlette(routes=[Route("/{name}", show)])


@pytest.fixture
def other_site(loops: LoopThread, site_tls: ssl.SSLContext) -> Iterator[Callable[[str], Site]]:
    """``other_site(host)``: a second HTTPS server, on ``host`` and a port of its own."""
    servers: list[WebServer] = []

    def make(host: str) -> Site:
        pages: dict[str, str] = {}
        server = serve(loops, _site_app(pages), host, site_tls)
        servers.append(server)
        return Site(f"https://{host}:{server.port}", pages)

    yield make
    for server in servers:
        loops.run(server.aclose())


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def new_context(
    browser: Browser, panel: Panel, console: Console, other_site: Callable[[str], Site]
) -> Iterator[Callable[[], BrowserContext]]:
    """Fresh browser contexts (each like a private window) on the panel; closed at the end.

    Closed before the servers (``panel`` and ``other_site`` are set up first): a server
    stopping with the browser's keep-alive connections open would wait out its grace time.
    """
    made: list[BrowserContext] = []

    def make() -> BrowserContext:
        context = browser.new_context(ignore_https_errors=True, base_url=panel.url)
        context.set_default_timeout(BROWSER_TIMEOUT_MS)
        context.on("page", console.watch)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def page(new_context: Callable[[], BrowserContext]) -> Page:
    return new_context().new_page()
