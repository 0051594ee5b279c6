"""What PanelHub accepts as a TLS certificate and key: parsing and the rules, without any I/O.

An owner's certificate is checked against every rule before anything is written, so a refusal
names the one thing to fix (``CertificateProblem``) and the panel keeps serving its old one.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Final, TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from panelhub.errors import CertificateError

#: Largest certificate chain or key accepted for installation: a chain of a few RSA-4096
#: certificates is about 10 KiB; the bound keeps an upload from taking memory.
MAX_PEM_BYTES: Final = 256 * 1024
#: 112-bit security (NIST SP 800-57 part 1), the floor browsers and OpenSSL's SECLEVEL=2 apply.
MIN_RSA_BITS: Final = 2048
#: The curves TLS 1.3 can sign with (RFC 8446 §4.2.3): a certificate on another curve would be
#: refused by browsers even where OpenSSL loads it.
TLS_CURVES: Final = frozenset({"secp256r1", "secp384r1", "secp521r1"})
#: SHA-256 and up: SHA-1 signatures can be forged (SHAttered 2017) and browsers refuse them.
MIN_SIGNATURE_DIGEST_BYTES: Final = 32

_Extension = TypeVar("_Extension", bound=x509.ExtensionType)
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class CertificateProblem(enum.StrEnum):
    """Why a certificate or key is refused: the ``reason`` of a ``CertificateError``."""

    TOO_LARGE = "too_large"
    NOT_PEM = "not_pem"
    ENCRYPTED_KEY = "encrypted_key"
    KEY_MISMATCH = "key_mismatch"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WEAK_KEY = "weak_key"
    UNSUPPORTED_KEY = "unsupported_key"
    WEAK_SIGNATURE = "weak_signature"
    NOT_FOR_SERVERS = "not_for_servers"
    MISSING = "missing"
    INVALID_NAME = "invalid_name"
    #: The TLS layer could not load the files (``transport.tls`` raises it with this value).
    UNUSABLE = "unusable"


def parse_chain(pem: bytes, *, path: Path | None = None) -> list[x509.Certificate]:
    """Parse a PEM chain, leaf first; other PEM blocks (a key in the same file) are skipped.

    Raises:
        CertificateError: ``TOO_LARGE`` or ``NOT_PEM``; ``path`` is passed through.

    """
    _check_size(pem, "certificate", path)
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise CertificateError(
            "the certificate is not in PEM form (a DER .cer/.der file converts with "
            "`openssl x509 -inform der -in FILE`)",
            reason=CertificateProblem.NOT_PEM,
            path=path,
        )
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise CertificateError(
            f"the certificate cannot be parsed: {exc}", reason=CertificateProblem.NOT_PEM, path=path
        ) from exc


def parse_key(pem: bytes, *, path: Path | None = None) -> PrivateKey:
    """Parse an unencrypted PEM private key of a type a TLS server can sign with.

    Raises:
        CertificateError: ``TOO_LARGE``, ``NOT_PEM``, ``ENCRYPTED_KEY`` or ``UNSUPPORTED_KEY``.

    """
    _check_size(pem, "key", path)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError as exc:
        # cryptography's way of saying "this key needs a password".
        raise CertificateError(
            "the private key is encrypted: the service must start unattended, so give it "
            "unencrypted (`openssl pkey -in FILE`)",
            reason=CertificateProblem.ENCRYPTED_KEY,
            path=path,
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateError(
            f"the private key is not a PEM key that can be read: {exc}",
            reason=CertificateProblem.NOT_PEM,
            path=path,
        ) from exc
    if not isinstance(key, PrivateKey):
        raise CertificateError(
            f"{type(key).__name__} keys are not supported: use EC P-256, P-384, P-521 or RSA "
            f"of at least {MIN_RSA_BITS} bits",
            reason=CertificateProblem.UNSUPPORTED_KEY,
            path=path,
        )
    return key


def _check_size(pem: bytes, what: str, path: Path | None) -> None:
    if len(pem) > MAX_PEM_BYTES:
        raise CertificateError(
            f"the {what} is {len(pem)} bytes; at most {MAX_PEM_BYTES} are accepted",
            reason=CertificateProblem.TOO_LARGE,
            path=path,
        )


def check_key_strength(key: PrivateKey) -> None:
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertificateError(
                f"the RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are needed",
                reason=CertificateProblem.WEAK_KEY,
            )
    elif key.curve.name not in TLS_CURVES:
        too_small = key.curve.key_size < 256
        raise CertificateError(
            f"the EC key is on curve {key.curve.name}"
            + (f" ({key.curve.key_size} bits)" if too_small else ", which browsers refuse")
            + "; use P-256, P-384 or P-521",
            reason=CertificateProblem.WEAK_KEY if too_small else CertificateProblem.UNSUPPORTED_KEY,
        )


def check_pair(
    chain: Sequence[x509.Certificate],
    key: PrivateKey,
    *,
    path: Path | None = None,
) -> None:
    key_der = _public_der(key.public_key())
    if _public_der(chain[0].public_key()) == key_der:
        return
    hint = ""
    if any(_public_der(cert.public_key()) == key_der for cert in chain[1:]):
        hint = ": the certificate that matches it must come first in the chain"
    raise CertificateError(
        f"the private key does not belong to the certificate{hint}",
        reason=CertificateProblem.KEY_MISMATCH,
        path=path,
    )


def _public_der(public_key: object) -> bytes:
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return b""  # another algorithm than our keys': never equal to one of them
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_leaf(leaf: x509.Certificate, now: datetime) -> None:
    """Refuse a leaf browsers would refuse: checked at install, not discovered at next start."""
    if now >= leaf.not_valid_after_utc:
        raise CertificateError(
            f"the certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
            reason=CertificateProblem.EXPIRED,
        )
    if now < leaf.not_valid_before_utc:
        raise CertificateError(
            f"the certificate is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
            " (check this panel's clock)",
            reason=CertificateProblem.NOT_YET_VALID,
        )
    digest = leaf.signature_hash_algorithm  # None for Ed25519/Ed448 signatures: strong
    if digest is not None and digest.digest_size < MIN_SIGNATURE_DIGEST_BYTES:
        raise CertificateError(
            f"the certificate is signed with {digest.name.upper()}; SHA-256 or stronger is needed",
            reason=CertificateProblem.WEAK_SIGNATURE,
        )
    # Absent extensions put no limit on the key's use (RFC 5280 §4.2.1.3, §4.2.1.12).
    eku = extension(leaf, x509.ExtendedKeyUsage)
    if eku is not None and ExtendedKeyUsageOID.SERVER_AUTH not in eku:
        raise CertificateError(
            "the certificate's extended key usage does not include TLS server authentication "
            "(serverAuth)",
            reason=CertificateProblem.NOT_FOR_SERVERS,
        )
    usage = extension(leaf, x509.KeyUsage)
    if usage is not None and not usage.digital_signature:
        raise CertificateError(
            "the certificate's key usage does not allow digital signatures, which every ECDHE "
            "handshake needs",
            reason=CertificateProblem.NOT_FOR_SERVERS,
        )


def extension(cert: x509.Certificate, kind: type[_Extension]) -> _Extension | None:
    """The extension's value, or None when absent: most rules read absence as "no limit"."""
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
