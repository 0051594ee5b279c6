"""Running the real gateway in-process, and connecting to it, for the tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from panelhub.config.models import Settings
from panelhub.service import Gateway


@contextlib.asynccontextmanager
async def running_gateway(**settings: Any) -> AsyncIterator[tuple[Gateway, int]]:
    """A gateway built from ``settings`` (one listener on a free port unless given)."""
    settings.setdefault("listeners", [{"name": "up", "port": 0}])
    gateway = Gateway(Settings.model_validate(settings))
    await gateway.start()
    try:
        yield gateway, gateway.listeners[0].address[1]
    finally:
        await gateway.aclose()


@contextlib.asynccontextmanager
async def connect(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
