from __future__ import annotations

from collections.abc import AsyncIterator, Callable
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
