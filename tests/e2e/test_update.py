"""Signed updates on a real (non-editable) install: a temporary virtual environment holds the
wheel of this tree as the base install, a bundle of it is signed, installed into a slot and
run by the launcher; a changed byte in the slot stops everything but the page that says why,
and a new slot that cannot start gives way to the previous code."""

from __future__ import annotations

import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from panelhub.security import firmware, integrity, slots
from tests.e2e.conftest import BROWSER_TIMEOUT_MS
from tests.e2e.test_browser_reset import NEW_PASSWORD, PASSWORD_LINE, first_login

#: Bounded waits: the service starts in a few seconds here, more on a busy CI machine.
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def base_python(tmp_path_factory: pytest.TempPathFactory, panelhub_wheel: Path) -> Path:
    """A virtual environment with the wheel installed (not editable); its dependencies come from
    the test environment through a path file, since a device has no network to fetch them."""
    root = tmp_path_factory.mktemp("device")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         "--target", purelib, str(panelhub_wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return python


class Device:
    def __init__(self, root: Path, python: Path) -> None:
        self.root = root
        self.python = python
        self.data_dir = root / "var"
        self.slots = root / "slots"
        self.web_port = free_port()
        self.modbus_port = free_port()
        self.config = root / "panelhub.toml"
        self.config.write_text(
            f'data_dir = "{self.data_dir}"\n\n[web]\nhost = "127.0.0.1"\nport = {self.web_port}\n\n'
            f'[[listeners]]\nname = "scada"\nhost = "127.0.0.1"\nport = {self.modbus_port}\n'
            'allow_clients = ["127.0.0.0/8"]\n'
        )
        self.log = root / "launcher.log"

    def panelhub(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.python), "-m", "panelhub", *args], cwd=self.root,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    def launch(self) -> subprocess.Popen[bytes]:
        return self.start("launch", "--slots", str(self.slots), "--data-dir", str(self.data_dir),
                          "--health-timeout-s", str(START_TIMEOUT_S),
                          "--", "run", "--config", str(self.config))  # fmt: skip

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:  # the child keeps its own copy of the descriptor
            return subprocess.Popen([str(self.python), "-m", "panelhub", *args], cwd=self.root,
                                    stdout=log, stderr=subprocess.STDOUT)  # fmt: skip

    def wait_log(self, text: str, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if text in self.log.read_text(errors="replace"):
                return
            assert process.poll() is None, self.log.read_text()
            time.sleep(0.2)
        pytest.fail(f"{text!r} not in the log:\n{self.log.read_text()}")

    def https_get(self, path: str) -> tuple[int, str]:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the panel's own self-signed certificate
        with socket.create_connection(("127.0.0.1", self.web_port), timeout=10) as raw, \
                context.wrap_socket(raw) as tls:  # fmt: skip
            tls.sendall(
                f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n".encode()
            )
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        return int(head.split()[1]), body.decode("utf-8", "replace")

    def wait_https(self, path: str) -> int:
        """The status of ``path`` once the pages answer (they open after the Modbus listeners)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                return self.https_get(path)[0]
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def modbus_accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.modbus_port), timeout=2).close()
        except OSError:
            return False
        return True

    def audit_events(self) -> list[str]:
        with sqlite3.connect(self.data_dir / "state.sqlite") as connection:
            return [row[0] for row in connection.execute("SELECT event FROM audit_record")]


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


@pytest.fixture
def device(tmp_path: Path, base_python: Path, panelhub_wheel: Path) -> Device:
    device = Device(tmp_path, base_python)
    for args in (
        ("firmware", "keygen", str(tmp_path / "release.key")),
        ("firmware", "sign", "--wheel", str(panelhub_wheel), "--key", str(tmp_path / "release.key"),
         "-o", str(tmp_path / "update.phb")),
        ("firmware", "trust", "add", str(tmp_path / "release.key.pub"),
         "--data-dir", str(device.data_dir)),
        ("firmware", "install", str(tmp_path / "update.phb"), "--slots", str(device.slots),
         "--data-dir", str(device.data_dir)),
    ):  # fmt: skip
        done = device.panelhub(*args)
        assert done.returncode == 0, done.stderr
    return device


def test_the_base_install_alone_serves_nothing(tmp_path: Path, base_python: Path) -> None:
    device = Device(tmp_path, base_python)
    process = device.start("run", "--config", str(device.config))
    try:
        device.wait_log("no signed manifest", process)
        assert not device.modbus_accepts()
    finally:
        stop(process)


def test_a_signed_update_runs_and_a_changed_byte_leaves_only_the_reason(device: Device) -> None:
    process = device.launch()
    try:
        device.wait_log("came up healthy", process)
        slot = slots.target_of(device.slots, slots.CURRENT)
        assert slot is not None
        assert device.https_get("/healthz")[0] == 200
        assert device.modbus_accepts()
        assert "code check: slot-" in device.log.read_text()
    finally:
        stop(process)

    target = slot / slots.SITE_DIR / "panelhub" / "gateway" / "routing.py"
    original = target.read_bytes()
    target.write_bytes(original[:100] + bytes([original[100] ^ 0x01]) + original[101:])
    process = device.launch()
    try:
        device.wait_log("does not match its signed manifest", process)
        status, body = device.https_get("/login")
        assert status == 503
        assert "panelhub/gateway/routing.py: changed" in body
        assert not device.modbus_accepts()
        assert "integrity.failed" in device.audit_events()
    finally:
        stop(process)

    target.write_bytes(original)  # the file restored: the same slot runs again
    process = device.launch()
    try:
        assert device.wait_https("/healthz") == 200
        assert device.modbus_accepts()
    finally:
        stop(process)


def test_a_new_slot_that_cannot_start_gives_way_to_the_previous_code(
    device: Device, panelhub_wheel: Path
) -> None:
    process = device.launch()
    try:
        device.wait_log("came up healthy", process)
    finally:
        stop(process)
    good = slots.target_of(device.slots, slots.CURRENT)
    broken = device.root / "broken-tree"
    subprocess.run(
        [sys.executable, "-m", "zipfile", "-e", str(panelhub_wheel), str(broken)], check=True
    )
    service = broken / "panelhub" / "service.py"
    code = service.read_text()
    start = "        restore.recover(settings.data_dir)"
    assert start in code
    service.write_text(code.replace(start, "        raise SystemExit(3)", 1))
    for args in (
        ("firmware", "sign", "--tree", str(broken), "--key", str(device.root / "release.key"),
         "-o", str(device.root / "broken.phb")),
        ("firmware", "install", str(device.root / "broken.phb"), "--slots", str(device.slots),
         "--data-dir", str(device.data_dir)),
    ):  # fmt: skip
        done = device.panelhub(*args)
        assert done.returncode == 0, done.stderr
    process = device.launch()
    try:
        device.wait_log("did not come up healthy", process)
        assert device.wait_https("/healthz") == 200
        assert slots.target_of(device.slots, slots.CURRENT) == good
        failed = slots.target_of(device.slots, slots.FAILED)
        assert failed is not None
        assert failed != good
        assert slots.target_of(device.slots, slots.TRIAL) is None
    finally:
        stop(process)


def test_an_install_killed_at_any_moment_leaves_the_old_code_or_the_whole_new_one(
    device: Device, panelhub_wheel: Path
) -> None:
    """SIGKILL at spread-out moments of ``firmware install``: the trial link, if any, names a
    complete slot that passes the start-up check; else current is untouched."""
    slots.promote_trial(device.slots)  # the fixture's install is now the running code
    current = slots.target_of(device.slots, slots.CURRENT)
    anchors = [a.key for a in firmware.trust_anchors(device.data_dir)]
    broken = device.root / "tree"
    subprocess.run(
        [sys.executable, "-m", "zipfile", "-e", str(panelhub_wheel), str(broken)], check=True
    )
    outcomes = set()
    for attempt in range(8):
        (broken / "panelhub" / "attempt.py").write_text(
            f"ATTEMPT = {attempt}\n"
        )  # a new slot each time
        done = device.panelhub("firmware", "sign", "--tree", str(broken),
                               "--key", str(device.root / "release.key"),
                               "-o", str(device.root / "n.phb"))  # fmt: skip
        assert done.returncode == 0, done.stderr
        process = subprocess.Popen(
            [str(device.python), "-m", "panelhub", "firmware", "install",
             str(device.root / "n.phb"), "--slots", str(device.slots),
             "--data-dir", str(device.data_dir)],
            cwd=device.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.15 * attempt)
        process.kill()
        process.wait()
        trial = slots.target_of(device.slots, slots.TRIAL)
        if trial is not None:
            integrity.check_slot(trial, anchors)  # whole, or it would not be linked
            (device.slots / slots.TRIAL).unlink()
        outcomes.add(trial is not None)
        assert slots.target_of(device.slots, slots.CURRENT) == current
    assert outcomes == {False, True}  # the kills fell both before and after the switch


def test_an_update_uploaded_in_the_page_runs_after_the_restart_the_page_asks_for(
    device: Device, panelhub_wheel: Path, browser: Browser
) -> None:
    tree = device.root / "tree"
    subprocess.run(
        [sys.executable, "-m", "zipfile", "-e", str(panelhub_wheel), str(tree)], check=True
    )
    (tree / "panelhub" / "release_note.py").write_text('NOTE = "the second build"\n')
    done = device.panelhub("firmware", "sign", "--tree", str(tree),
                           "--key", str(device.root / "release.key"),
                           "-o", str(device.root / "v2.phb"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    process = device.launch()
    context = browser.new_context(
        ignore_https_errors=True, base_url=f"https://127.0.0.1:{device.web_port}"
    )
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    try:
        device.wait_log("came up healthy", process)
        first = slots.target_of(device.slots, slots.CURRENT)
        device.wait_https("/healthz")
        (password,) = PASSWORD_LINE.findall(device.log.read_text())
        page = context.new_page()
        first_login(page, password)
        page.goto("/maintenance")
        page.set_input_files("#bundle-file", str(device.root / "v2.phb"))
        with page.expect_navigation():
            page.click("#upload-bundle")
        expect(page.locator("#notice")).to_contain_text("is installed in slot-")
        trial = slots.target_of(device.slots, slots.TRIAL)
        assert trial is not None
        assert trial != first
        expect(page.locator("#pending-update")).to_have_text(trial.name)
        with page.expect_navigation():
            page.click("#restart-update")

        deadline = time.monotonic() + START_TIMEOUT_S
        while slots.target_of(device.slots, slots.CURRENT) != trial:
            assert time.monotonic() < deadline, device.log.read_text()
            assert process.poll() is None, device.log.read_text()
            time.sleep(0.2)
        assert "exiting to run the newly installed software" in device.log.read_text()
        assert slots.target_of(device.slots, slots.PREVIOUS) == first
        assert device.wait_https("/healthz") == 200
        page.goto("/login")
        page.fill("#username", "admin")
        page.fill("#password", NEW_PASSWORD)  # the accounts outlive the update
        with page.expect_navigation():
            page.press("#password", "Enter")
        assert page.url.endswith("/")
    finally:
        context.close()
        stop(process)
