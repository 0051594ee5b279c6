"""The owner's side of HTTPS: their CA and server certificate, and what a TLS client is shown."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.certificates import CA, cert_pem, ec_key, key_pem

NAMES = ("panel.example.com", "127.0.0.1")


class Owner:
    """The owner's CA and a fresh, valid server certificate it signed."""

    def __init__(self, tmp_path: Path) -> None:
        self.ca = CA()
        self.key = ec_key()
        now = datetime.now(UTC)
        self.cert = self.ca.issue(self.key, names=NAMES, not_before=now - timedelta(days=1),
                                  not_after=now + timedelta(days=90))  # fmt: skip
        self.fingerprint = self.cert.fingerprint(hashes.SHA256()).hex(":").upper()
        self.chain = cert_pem(self.cert, self.ca.cert)
        self.key_pem = key_pem(self.key)
        self.ca_file = tmp_path / "owner-ca.pem"
        self.ca_file.write_bytes(cert_pem(self.ca.cert))


async def presented(port: int) -> str:
    """The SHA-256 fingerprint of the certificate a new TLS connection is shown."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        await writer.wait_closed()
    cert = x509.load_der_x509_certificate(der)
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()
