"""The certificate the HTTPS server presents, and the one place the pages change it.

An owner's certificate goes in use without a restart: OpenSSL copies the certificate and key
of an ``ssl.SSLContext`` into each new connection, so loading the new files into the very
context the server was started with changes what every later handshake presents, while
connections already open keep theirs.

Before the live context is touched, the new files are loaded into a scratch context: if the
TLS layer refused them half-way, the live context could be left with a certificate and a key
that do not belong together, and no browser could connect any more.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from panelhub.errors import CertificateError
from panelhub.security.certpolicy import CertificateProblem
from panelhub.security.certs import (
    CertificateInfo,
    install_certificate,
    read_certificate_info,
    revert_to_self_signed,
)
from panelhub.transport.tls import server_context

logger = logging.getLogger(__name__)


class ServedCertificate:
    """The files in ``tls_dir`` and, when a server runs, the TLS context presenting them."""

    def __init__(
        self,
        tls_dir: Path,
        *,
        host_names: Sequence[str],
        addresses: Sequence[str],
        tls: ssl.SSLContext | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        """Describe what is served.

        Args:
            tls_dir: the certificate directory (``certs`` says what it holds).
            host_names: names a self-signed certificate is made for (``revert``).
            addresses: listening addresses, likewise.
            tls: the running server's context; ``None`` when nothing serves the files.
            now: the clock for validity checks; tests pass a fixed one.

        """
        self.tls_dir = tls_dir
        self.host_names = tuple(host_names)
        self.addresses = tuple(addresses)
        self.tls = tls
        self._now = now
        # Two admins at once: one change and its reload finish before the next starts.
        self._lock = asyncio.Lock()

    async def info(self) -> CertificateInfo:
        """The certificate in use.

        Raises:
            CertificateError: the files are missing or do not belong together.

        """
        return await asyncio.to_thread(read_certificate_info, self.tls_dir)

    async def install(self, cert_pem: bytes, key_pem: bytes) -> CertificateInfo:
        """Check and install the owner's chain and key, then serve them on new connections.

        Raises:
            CertificateError: the upload breaks a rule (nothing changed), or the TLS layer
                cannot load the installed files (``unusable``: the old certificate is still
                served; revert or install another).
            OSError: the directory cannot be written.

        """
        async with self._lock:
            info = await asyncio.to_thread(
                install_certificate, self.tls_dir, cert_pem, key_pem, now=self._now
            )
            self._reload(info)
            return info

    async def revert(self) -> CertificateInfo:
        """Go back to a fresh self-signed certificate and serve it on new connections.

        Raises:
            CertificateError: a configured name cannot be put in a certificate.
            OSError: the directory cannot be written.

        """
        async with self._lock:
            info = await asyncio.to_thread(
                revert_to_self_signed,
                self.tls_dir,
                host_names=self.host_names,
                addresses=self.addresses,
                now=self._now,
            )
            self._reload(info)
            return info

    def _reload(self, info: CertificateInfo) -> None:
        if self.tls is None:
            return
        try:
            server_context(info.cert_path, info.key_path)  # the live context stays intact
        except CertificateError as exc:
            logger.error("the HTTPS server cannot present %s: %s", info.cert_path, exc)  # noqa: TRY400 - the reason is the message
            raise CertificateError(
                "the files were written but the TLS layer cannot load them; the previous "
                "certificate is presented until the next start: install another one or go "
                f"back to a self-signed certificate ({exc})",
                reason=CertificateProblem.UNUSABLE,
                path=info.cert_path,
            ) from exc
        self.tls.load_cert_chain(info.cert_path, info.key_path)
        logger.info("the HTTPS server now presents %s", info.sha256_fingerprint)
