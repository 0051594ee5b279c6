"""A restart asked for on the maintenance page restarts the real ``panelhub run`` process."""

from __future__ import annotations

import asyncio
import re
import signal
import ssl
import sys
from pathlib import Path

import httpx

from tests.cli.test_cli import VALID, free_port
from tests.harness import connect
from tests.rawdevice import raw_request, read_pdu
from tests.web.owner import Owner, presented

NEW_PASSWORD = "Switchboard-Room7"  # noqa: S105 - a test password
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def identity(port: int) -> bytes:
    """The gateway's own device identification, once its listener answers (bounded by caller)."""
    while True:
        try:
            async with connect(port) as (reader, writer):
                _, _, answer = await raw_request(reader, writer, 1, 255, read_pdu(10, 4))
                return answer
        except OSError:
            await asyncio.sleep(0.1)


async def page_once_up(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """``path`` once the web server accepts connections (bounded by the caller)."""
    while True:
        try:
            return await client.get(path)
        except httpx.TransportError:
            await asyncio.sleep(0.1)


async def post_form(client: httpx.AsyncClient, path: str, page: str, **fields: str):
    match = CSRF.search(page)
    assert match is not None, page
    return await client.post(path, data={"csrf_token": match.group(1), **fields},
                             headers={"origin": str(client.base_url).rstrip("/")})  # fmt: skip


async def first_login(client: httpx.AsyncClient, password: str) -> None:
    """The admin's first login with the initial password, and the forced change."""
    async with asyncio.timeout(20):
        login = await page_once_up(client, "/login")
    answer = await post_form(client, "/login", login.text, username="admin", password=password,
                             next="/")  # fmt: skip
    assert answer.headers["location"] == "/password"
    page = await client.get("/password")
    changed = await post_form(client, "/password", page.text, current=password,
                              new=NEW_PASSWORD, confirm=NEW_PASSWORD)  # fmt: skip
    assert changed.headers["location"] == "/"
    assert (await client.get("/api/session")).json()["user"] == "admin"


async def test_restart_from_the_page_brings_the_service_back(tmp_path: Path):
    port, web_port = free_port(), free_port()
    data = tmp_path / "data"
    config = tmp_path / "panelhub.toml"
    config.write_text(VALID.format(port=port, data_dir=data, web_port=web_port))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "panelhub", "run", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(20):
            assert (await identity(port))[2:10] == b"PanelHub"
        trust = ssl.create_default_context(cafile=data / "tls" / "cert.pem")
        base = f"https://127.0.0.1:{web_port}"
        async with httpx.AsyncClient(verify=trust, base_url=base) as client:
            await first_login(client, (data / "initial-admin-password").read_text().strip())
            page = await client.get("/maintenance")
            # The owner's certificate, installed through the API of the running service, is
            # what a new connection is shown at once, and still after the restart.
            owner = Owner(tmp_path)
            trust.load_verify_locations(owner.ca_file)  # this client: either certificate
            token = CSRF.search(page.text)
            assert token is not None
            installed = await client.put(
                "/api/certificate",
                json={"certificate": owner.chain.decode(), "key": owner.key_pem.decode()},
                headers={"x-csrf-token": token.group(1)},
            )
            assert installed.status_code == 200, installed.text
            assert await presented(web_port) == owner.fingerprint
            restarting = await post_form(client, "/maintenance/restart", page.text)
            assert restarting.status_code == 200
            assert "The service is restarting" in restarting.text
            # The service goes away and comes back: a new life has no sessions, and the
            # gateway listener answers again.
            async with asyncio.timeout(20):
                while True:
                    try:
                        if (await client.get("/api/session")).status_code == 401:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                assert (await identity(port))[2:10] == b"PanelHub"
            # The admin logs in again with the password set before the restart.
            login = await client.get("/login")
            again = await post_form(client, "/login", login.text, username="admin",
                                    password=NEW_PASSWORD, next="/")  # fmt: skip
            assert again.headers["location"] == "/"
            assert await presented(web_port) == owner.fingerprint
            certificate = await client.get("/api/certificate")
            assert certificate.json()["is_owner_installed"] is True
            assert certificate.headers["strict-transport-security"] == "max-age=31536000"
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "restarting" in err.decode()
