"""The HTTPS server: uvicorn, driven by the service's event loop and shutdown.

uvicorn's own ``serve`` installs signal handlers and calls ``sys.exit`` when it cannot bind;
PanelHub has one owner of the signals (``service.run``) and reports a busy port as an
``OSError`` like the Modbus listeners do. So the socket is bound here and uvicorn's
``startup`` / ``main_loop`` / ``shutdown`` steps are called directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from typing import Final

import uvicorn
from starlette.types import ASGIApp

logger = logging.getLogger(__name__)

#: Connections served at once; more get 503 instead of exhausting memory (a panel has a
#: handful of users, and the Modbus gateway shares the process).
MAX_CONCURRENT_CONNECTIONS: Final = 256
#: Seconds an idle keep-alive connection is kept.
KEEP_ALIVE_S: Final = 15
#: Largest request head accepted (h11): far above any browser's, far below a memory attack.
MAX_HEADER_BYTES: Final = 32 * 1024
#: Time given to requests under way at shutdown.
SHUTDOWN_GRACE_S: Final = 2.0


class WebServer:
    def __init__(self, app: ASGIApp, *, host: str, port: int, tls: ssl.SSLContext) -> None:
        self.host = host
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            ssl_context_factory=lambda _config, _default: tls,
            lifespan="off",
            log_config=None,  # PanelHub's logging configuration applies
            access_log=False,  # security events go to the audit log
            server_header=False,  # no version banner
            proxy_headers=False,  # no proxy in front: client addresses are the peers'
            http="h11",
            limit_concurrency=MAX_CONCURRENT_CONNECTIONS,
            timeout_keep_alive=KEEP_ALIVE_S,
            timeout_graceful_shutdown=int(SHUTDOWN_GRACE_S),
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        )
        config.load()
        self._server = uvicorn.Server(config)
        self._server.lifespan = config.lifespan_class(config)

    @property
    def port(self) -> int:
        """The bound port (the one chosen by the system when 0 was asked for)."""
        if self._socket is None:
            return self._requested_port
        return int(self._socket.getsockname()[1])

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            OSError: the address cannot be bound (in use, not on this machine, no permission).

        """
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._socket = socket.create_server((self.host, self._requested_port), family=family)
        self._socket.setblocking(False)
        await self._server.startup(sockets=[self._socket])
        self._task = asyncio.get_running_loop().create_task(self._server.main_loop())
        logger.info("web pages on https://%s:%d", self.host, self.port)

    async def aclose(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._server.started and self._socket is not None:
            await self._server.shutdown(sockets=[self._socket])
        if self._socket is not None:
            self._socket.close()
