"""TLS contexts: the one place PanelHub decides protocol versions, cipher suites and options.

Every listener that speaks TLS takes its ``ssl.SSLContext`` from here, so a change of policy
(a suite retired, a version dropped) is one edit, checked by one set of tests.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Final

from panelhub.errors import CertificateError

#: TLS 1.0 and 1.1 are deprecated (RFC 8996) and refused; TLS 1.3 is negotiated when offered.
MINIMUM_VERSION: Final = ssl.TLSVersion.TLSv1_2

#: The TLS 1.2 suites: ephemeral ECDH (forward secrecy) with an AEAD cipher only, i.e. Mozilla's
#: "intermediate" list without its finite-field DHE suites (slow, and weak with small groups).
#: ECDSA and RSA variants are both listed so an owner's RSA certificate works too. TLS 1.3 suites
#: are not set here: OpenSSL's defaults (AES-GCM, ChaCha20-Poly1305) are all AEAD with ECDHE.
#: SECLEVEL=2 makes OpenSSL refuse keys below 112-bit security (RSA < 2048) whatever the
#: distribution's default is.
TLS12_CIPHERS: Final = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "@SECLEVEL=2",
    )
)


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """Build the context of a TLS server that presents the certificate chain in ``cert_path``.

    Besides versions and suites: compression is off (CRIME), client-initiated renegotiation is
    refused (a CPU denial of service, and TLS 1.3 has none), and the server's suite order wins so a
    client cannot steer the handshake to the weakest suite it shares. ECDH groups are OpenSSL's
    defaults (X25519, P-256, P-384, ...).

    Raises:
        CertificateError: the certificate or key cannot be read or do not belong together.

    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_VERSION
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= (
        ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    )
    try:
        context.load_cert_chain(cert_path, key_path)
    except (OSError, ssl.SSLError) as exc:
        # ssl.SSLError is an OSError; both mean the same to the owner: these files do not work.
        raise CertificateError(
            f"the TLS server cannot use certificate {cert_path} with key {key_path}: {exc}",
            reason="unusable",
            path=cert_path,
        ) from exc
    return context
