from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from panelhub.config.models import Settings
from panelhub.service import Gateway
from tests.rawdevice import RawDeviceServer


@contextlib.asynccontextmanager
async def running_gateway(**settings: Any) -> AsyncIterator[tuple[Gateway, int]]:
    settings.setdefault("listeners", [{"name": "up", "port": 0}])
    gateway = Gateway(Settings.model_validate(settings))
    await gateway.start()
    try:
        yield gateway, gateway.listeners[0].address[1]
    finally:
        await gateway.aclose()


@pytest.fixture
async def raw_device() -> AsyncIterator[RawDeviceServer]:
    device = await RawDeviceServer().start()
    yield device
    await device.stop()


@pytest.fixture
def tcp_bus() -> Callable[[RawDeviceServer], dict[str, Any]]:
    def make(device: RawDeviceServer, **extra: Any) -> dict[str, Any]:
        return {"kind": "tcp", "name": "dev", "host": "127.0.0.1", "port": device.port,
                "response_timeout_s": 0.3, **extra}  # fmt: skip

    return make


@contextlib.asynccontextmanager
async def connect(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
