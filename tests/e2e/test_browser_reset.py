"""Factory reset from the maintenance page of a real ``panelhub run`` process, in Chromium.

The engineer logs in with the console's initial password, chooses their own, types ERASE on
the maintenance page; the service stops, erases its data directory and starts as at its very
first start: a new initial password on the console, a new certificate, an empty audit log,
and the engineer's password no longer opens anything.
"""

from __future__ import annotations

import hashlib
import re
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import BROWSER_TIMEOUT_MS

NEW_PASSWORD = "Commission#2026"  # noqa: S105 - the engineer's own, chosen at first login
PASSWORD_LINE = re.compile(r"Initial password of the web user 'admin': (\S+)")
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Console:
    """The service's console output, read as it comes."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        self._reader = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._reader.start()

    def passwords(self) -> list[str]:
        return [m.group(1) for line in list(self.lines) if (m := PASSWORD_LINE.search(line))]

    def wait_for_passwords(self, count: int) -> list[str]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(self.passwords()) < count:
            assert time.monotonic() < deadline, "".join(self.lines)
            time.sleep(0.1)
        return self.passwords()


def fingerprint(port: int) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                    context.wrap_socket(raw) as tls:  # fmt: skip
                der = tls.getpeercert(binary_form=True)
                assert der is not None
                return hashlib.sha256(der).hexdigest()
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def log_in(page: Page, password: str) -> None:
    page.goto("/login")
    page.fill("#username", "admin")
    page.fill("#password", password)
    with page.expect_navigation():
        page.press("#password", "Enter")


def first_login(page: Page, initial_password: str) -> None:
    log_in(page, initial_password)
    page.fill("#current", initial_password)
    page.fill("#new", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    with page.expect_navigation():
        page.click("form[action='/password'] button[type=submit]")


def test_factory_reset_from_the_page_makes_the_next_start_a_first_start(
    browser: Browser, tmp_path: Path
):
    data_dir, port = tmp_path / "var", free_port()
    config = tmp_path / "panelhub.toml"
    factory = tmp_path / "factory.toml"  # as the installer left it: the pages' address
    factory.write_text(f'data_dir = "{data_dir}"\n\n[web]\nhost = "127.0.0.1"\nport = {port}\n')
    config.write_text('timezone = "Europe/Paris"\n' + factory.read_text())  # the owner's change
    command = [sys.executable, "-m", "panelhub", "run", "--config", str(config),
               "--factory-config", str(factory)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    console = Console(process)
    try:
        (first_password,) = console.wait_for_passwords(1)
        first_certificate = fingerprint(port)
        context = browser.new_context(
            ignore_https_errors=True, base_url=f"https://127.0.0.1:{port}"
        )
        context.set_default_timeout(BROWSER_TIMEOUT_MS)
        page = context.new_page()
        first_login(page, first_password)
        page.goto("/maintenance")
        page.fill("#reset-confirm", "erase")  # not the word: nothing happens
        with page.expect_navigation():
            page.click("#factory-reset")
        expect(page.locator("#error")).to_contain_text("type ERASE")
        page.fill("#reset-confirm", "ERASE")
        with page.expect_navigation():
            page.click("#factory-reset")
        expect(page.locator("#reason")).to_contain_text("being erased")

        passwords = console.wait_for_passwords(2)
        assert passwords[1] != first_password
        assert fingerprint(port) != first_certificate
        assert "Europe/Paris" not in config.read_text()
        with sqlite3.connect(data_dir / "state.sqlite") as connection:
            events = [row[0] for row in connection.execute("SELECT event FROM audit_record")]
        assert "login.ok" not in events  # the log before the reset is gone with it

        fresh = browser.new_context(ignore_https_errors=True, base_url=f"https://127.0.0.1:{port}")
        fresh.set_default_timeout(BROWSER_TIMEOUT_MS)
        again = fresh.new_page()
        log_in(again, NEW_PASSWORD)
        expect(again.locator("#error")).to_contain_text("Wrong user name or password")
        log_in(again, passwords[1])
        assert again.url.endswith("/password")  # a first start: the password must be changed
        context.close()
        fresh.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()
