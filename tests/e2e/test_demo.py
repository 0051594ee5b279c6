"""``panelhub demo`` as a user meets it: start, follow the printed hints, Ctrl-C."""

from __future__ import annotations

import asyncio
import shlex
import signal
import sys
from pathlib import Path

import pytest

from panelhub.config.store import load_settings
from tests.cli.test_cli import free_port

pytestmark = pytest.mark.interop


async def read_summary(stream: asyncio.StreamReader) -> list[str]:
    lines: list[str] = []
    async with asyncio.timeout(20):
        while not lines or "Ctrl-C" not in lines[-1]:
            line = await stream.readline()
            assert line, "demo exited before printing its summary"
            lines.append(line.decode().rstrip())
    return lines


async def run(command: list[str]) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_demo_serves_what_it_prints_and_stops_on_ctrl_c(tmp_path: Path):
    port = free_port()
    data_dir = tmp_path / "var"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "panelhub", "demo", "--modbus-port", str(port),
        "--sim-base-port", "0", "--data-dir", str(data_dir), "--web-port", str(free_port()),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        summary = await read_summary(process.stdout)
        assert f"  gateway (Modbus TCP): 127.0.0.1:{port}" in summary
        hints = [
            line.split("(")[0].strip() for line in summary if line.strip().startswith("mbpoll")
        ]
        assert len(hints) == 3
        power, voltages, health = [await run(shlex.split(hint)) for hint in hints]
        total_kw = float(power.strip().splitlines()[-1].split()[-1])
        assert 0 < total_kw < 1000
        volts = [float(line.split()[-1]) for line in voltages.splitlines() if line.startswith("[")]
        assert len(volts) == 3
        assert all(215 < v < 245 for v in volts)
        assert health.strip().splitlines()[-1].split()[-1] == "0"  # nominal
    finally:
        process.send_signal(signal.SIGINT)
        _, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    config = data_dir / "demo.toml"
    assert config.stat().st_mode & 0o777 == 0o600
    assert data_dir.stat().st_mode & 0o777 == 0o700
    settings = load_settings(config)  # the written configuration is valid and runnable
    assert settings.listeners[0].port == port
    assert [route.unit_id for route in settings.routes] == [100, 101, 102, 103, 104]
    # The datalogger logs every simulated meter, with a usage for the energy pages.
    assert len(settings.devices) == 8
    assert {device.model for device in settings.devices} == {
        "panelhub-sim-pm3",
        "panelhub-sim-em1",
        "panelhub-sim-cb3",
    }
    main = next(device for device in settings.devices if device.name == "Main incomer")
    assert main.usage == "main"
    assert (data_dir / "datalog.sqlite").stat().st_mode & 0o777 == 0o600
