from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.rawdevice import RawDeviceServer


@pytest.fixture
async def raw_device() -> AsyncIterator[RawDeviceServer]:
    device = await RawDeviceServer().start()
    yield device
    await device.stop()


@pytest.fixture
def tcp_bus() -> Callable[..., dict[str, Any]]:
    def make(device: RawDeviceServer, **extra: Any) -> dict[str, Any]:
        return {"kind": "tcp", "name": "dev", "host": "127.0.0.1", "port": device.port,
                "response_timeout_s": 0.3, **extra}  # fmt: skip

    return make


@pytest.fixture(scope="session")
def panelhub_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real wheel of this source tree, built once per test run (hatchling, no network)."""
    out = tmp_path_factory.mktemp("wheel")
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(root)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = out.glob("panelhub-*.whl")
    return wheel
