"""The ``panelhub`` command as a user runs it: a real process, real files, real signals."""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import sys
from pathlib import Path

import httpx

from tests.harness import connect
from tests.rawdevice import raw_request, read_pdu

VALID = """
data_dir = "{data_dir}"
[web]
port = {web_port}
[gateway]
default_bus = "line"
[[listeners]]
name = "up"
port = {port}
[[buses]]
kind = "rtu"
name = "line"
device = "/dev/null-not-a-port"
"""

INVALID = """
log_level = "LOUD"
[gateway]
request_ttl_ms = 10
[[buses]]
kind = "rtu"
name = "line"
device = "/dev/ttyS0"
baud_rate = 1234
surprise = true
[[listeners]]
name = "up"
port = 70000
"""


async def panelhub(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "panelhub", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_check_config_lists_every_problem_with_its_location(tmp_path: Path):
    config = tmp_path / "bad.toml"
    config.write_text(INVALID)
    code, _, err = await panelhub("check-config", str(config))
    assert code == 3
    for location in ("log_level", "gateway.request_ttl_ms", "buses[0].baud_rate",
                     "buses[0].surprise", "listeners[0].port"):  # fmt: skip
        assert f"  {location}: " in err, err


async def test_check_config_accepts_the_packaged_example():
    example = Path(__file__).parents[2] / "packaging" / "panelhub.toml"
    code, out, _ = await panelhub("check-config", str(example))
    assert code == 0
    assert "valid" in out


async def test_check_config_reports_unreadable_and_non_toml_files(tmp_path: Path):
    code, _, err = await panelhub("check-config", str(tmp_path / "missing.toml"))
    assert code == 3
    assert "cannot read" in err
    broken = tmp_path / "broken.toml"
    broken.write_text("[gateway\n")
    code, _, err = await panelhub("check-config", str(broken))
    assert code == 3
    assert "not valid TOML" in err


async def test_run_refuses_an_invalid_configuration(tmp_path: Path):
    config = tmp_path / "bad.toml"
    config.write_text(INVALID)
    code, _, err = await panelhub("run", "--config", str(config))
    assert code == 3
    assert "refusing to start" in err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_run_serves_and_stops_cleanly_on_sigterm(tmp_path: Path):
    port, web_port = free_port(), free_port()
    config = tmp_path / "panelhub.toml"
    config.write_text(VALID.format(port=port, data_dir=tmp_path / "data", web_port=web_port))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "panelhub", "run", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(10):
            while True:  # bounded by the timeout: wait for the listener to come up
                try:
                    async with connect(port) as (reader, writer):
                        _, _, identity = await raw_request(reader, writer, 1, 255, read_pdu(10, 4))
                        # the serial port cannot be opened: the device gets 0x0B, not a hang
                        _, _, failed = await raw_request(reader, writer, 2, 1, read_pdu(0, 1))
                    break
                except OSError:
                    await asyncio.sleep(0.1)
        assert identity[2:10] == b"PanelHub"
        assert failed == b"\x83\x0b"
        # The web pages answer over HTTPS, with the certificate made for this installation.
        context = ssl.create_default_context(cafile=tmp_path / "data" / "tls" / "cert.pem")
        async with httpx.AsyncClient(verify=context) as client, asyncio.timeout(10):
            while True:  # the pages start after the gateway: wait for them too
                try:
                    login = await client.get(f"https://127.0.0.1:{web_port}/login")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
        assert login.status_code == 200
        assert "Log in" in login.text
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "cannot open serial port" in err.decode()
    # The initial password: on the console once, in a 0600 file, never in the log.
    password = (tmp_path / "data" / "initial-admin-password").read_text().strip()
    assert f"'admin': {password}" in out.decode()
    assert password not in err.decode()
    assert ((tmp_path / "data" / "initial-admin-password").stat().st_mode & 0o777) == 0o600


async def test_check_config_reports_a_file_that_is_not_text(tmp_path: Path):
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'log_level = "\xff\xfe"\n')
    code, _, err = await panelhub("check-config", str(binary))
    assert code == 3, err
    assert "Traceback" not in err


async def test_run_on_a_port_in_use_says_so_without_a_traceback(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = tmp_path / "panelhub.toml"
        config.write_text(VALID.format(port=taken.getsockname()[1], data_dir=tmp_path / "data",
                                       web_port=free_port()))  # fmt: skip
        code, _, err = await panelhub("run", "--config", str(config))
    assert code == 1, err
    assert "Traceback" not in err
    assert "address already in use" in err.lower()
