"""The web server's certificate and key: generated per installation, or installed by the owner.

Theory of operation:
- ``tls_dir`` (0700) holds ``key.pem`` (0600, PKCS#8, unencrypted so the service can start
  unattended), ``cert.pem`` (0644, the chain, leaf first) and ``origin`` ("generated" or
  "owner"). Only ``origin`` says whether the owner installed the certificate: the web pages send
  HSTS only then, and only then is the certificate never replaced behind the owner's back.
- At first start a fresh EC P-256 key and a self-signed certificate are made. Nothing is shipped
  in the package, so no two installations share a key.
- Later starts reuse the files while they are valid. A generated certificate is replaced when it
  is unreadable or half missing, expires within ``RENEW_BEFORE``, or no longer names every
  configured host name and address. An owner's certificate is never replaced: if it cannot be
  read, ``CertificateError`` says so; if it has expired it is still served and an ERROR logged.
- A change replaces the three files all together (``fileset``), so a crash never leaves a key
  next to another key's certificate; the directory lock keeps the service and a console command
  from writing at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import ipaddress
import logging
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from panelhub.errors import CertificateError
from panelhub.security import fileset
from panelhub.security.certpolicy import (
    MAX_PEM_BYTES,
    CertificateProblem,
    check_key_strength,
    check_leaf,
    check_pair,
    extension,
    parse_chain,
    parse_key,
)

logger = logging.getLogger(__name__)

KEY_FILE: Final = "key.pem"
CERT_FILE: Final = "cert.pem"
ORIGIN_FILE: Final = "origin"
KEY_MODE: Final = 0o600
CERT_MODE: Final = 0o644

#: Lifetime of a generated certificate: Apple platforms refuse TLS server certificates valid for
#: longer than 825 days, even ones a user trusts by hand.
VALIDITY: Final = timedelta(days=825)
#: Generated certificates start this far in the past, for clients whose clock is a little behind.
BACKDATE: Final = timedelta(hours=1)
#: A generated certificate this close to its end is replaced at start, before browsers refuse it.
RENEW_BEFORE: Final = timedelta(days=30)
#: X.509 upper bound on a common name (RFC 5280 ub-common-name).
MAX_COMMON_NAME_CHARS: Final = 64
#: Always in a generated certificate: a browser on the panel itself reaches it through these.
LOOPBACK_NAMES: Final = ("localhost",)
LOOPBACK_ADDRESSES: Final = ("127.0.0.1", "::1")

_ORIGIN_OWNER: Final = b"owner\n"
_ORIGIN_GENERATED: Final = b"generated\n"
# Labels of letters, digits, hyphens and (as Windows host names have them) underscores, up to 63
# characters each (RFC 1035 §2.3.4), after an optional wildcard label.
_LABEL: Final = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_DNS_NAME: Final = re.compile(rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*$")

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class CertificateChange(enum.Enum):
    """What a call did to the files: anything but UNCHANGED deserves an audit record."""

    UNCHANGED = "unchanged"
    CREATED = "created"
    REGENERATED = "regenerated"
    INSTALLED = "installed"
    REVERTED = "reverted"


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """The certificate in use, as the web pages show it and the TLS server loads it."""

    cert_path: Path
    key_path: Path
    subject: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    #: Aware datetimes in UTC.
    not_before: datetime
    not_after: datetime
    #: SHA-256 of the leaf certificate (DER), upper-case hex with colons, as browsers show it.
    sha256_fingerprint: str
    is_self_signed: bool
    is_owner_installed: bool
    change: CertificateChange = CertificateChange.UNCHANGED
    #: Why ``change`` happened, in words for the log and the audit record.
    change_reason: str = ""


@dataclass(frozen=True, slots=True)
class _Names:
    dns: tuple[str, ...]
    ips: tuple[_IPAddress, ...]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def ensure_certificate(
    tls_dir: Path,
    *,
    host_names: Sequence[str],
    addresses: Sequence[str],
    now: Callable[[], datetime] | None = None,
) -> CertificateInfo:
    """Make sure ``tls_dir`` holds a usable certificate and key, and describe them.

    Args:
        tls_dir: created (0700) if missing.
        host_names: DNS names users reach the panel by (this machine's host name first: it
            becomes the common name). ``localhost`` is always added.
        addresses: listening addresses; an IP address goes into the certificate (the
            wildcards ``0.0.0.0`` and ``::`` name no address and are left out), a host name is
            taken as a DNS name. ``127.0.0.1`` and ``::1`` are always added.
        now: the clock, returning an aware datetime.

    Raises:
        CertificateError: a name cannot be put in a certificate (``INVALID_NAME``), or the
            owner-installed certificate cannot be read (it is never replaced automatically:
            install it again, or go back with ``revert_to_self_signed``).
        OSError: the directory cannot be written.

    """
    clock = now or _utc_now
    names = _wanted_names(host_names, addresses)
    with fileset.locked(tls_dir):
        fileset.recover(tls_dir)
        _tighten_key_mode(tls_dir)
        has_any_file = (tls_dir / KEY_FILE).exists() or (tls_dir / CERT_FILE).exists()
        try:
            info = read_certificate_info(tls_dir)
        except CertificateError as exc:
            if _is_owner_installed(tls_dir):
                raise CertificateError(
                    f"the owner-installed certificate in {tls_dir} cannot be used: {exc}; "
                    "install it again, or go back to a self-signed certificate",
                    reason=exc.reason,
                    path=exc.path,
                ) from exc
            if not has_any_file:
                return _generate(tls_dir, names, clock(), CertificateChange.CREATED, "first start")
            logger.warning("replacing the self-signed certificate in %s: %s", tls_dir, exc)
            return _generate(tls_dir, names, clock(), CertificateChange.REGENERATED, str(exc))
        if info.is_owner_installed:
            _report_owner_validity(info, clock())
            return info
        reason = _why_regenerate(info, names, clock())
        if reason is None:
            return info
        logger.info("replacing the self-signed certificate in %s: %s", tls_dir, reason)
        return _generate(tls_dir, names, clock(), CertificateChange.REGENERATED, reason)


def install_certificate(
    tls_dir: Path,
    cert_pem: bytes,
    key_pem: bytes,
    *,
    now: Callable[[], datetime] | None = None,
) -> CertificateInfo:
    """Check the owner's certificate chain (leaf first) and key, then put them in use.

    Nothing on disk changes unless every check passes. The running TLS server keeps its old
    certificate until it loads the new files (a restart).

    Raises:
        CertificateError: ``reason`` is the ``CertificateProblem`` found first.
        OSError: the directory cannot be written.

    """
    clock = now or _utc_now
    chain = parse_chain(cert_pem)
    key = parse_key(key_pem)
    check_key_strength(key)
    check_pair(chain, key)
    check_leaf(chain[0], clock())
    files = {
        KEY_FILE: (
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            KEY_MODE,
        ),
        CERT_FILE: (
            b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain),
            CERT_MODE,
        ),
        ORIGIN_FILE: (_ORIGIN_OWNER, CERT_MODE),
    }
    with fileset.locked(tls_dir):
        fileset.recover(tls_dir)
        fileset.replace_files(tls_dir, files)
    info = _describe(tls_dir, chain[0], is_owner_installed=True)
    logger.info("owner certificate installed in %s: %s", tls_dir, info.sha256_fingerprint)
    return _with_change(info, CertificateChange.INSTALLED, "installed by the owner")


def revert_to_self_signed(
    tls_dir: Path,
    *,
    host_names: Sequence[str],
    addresses: Sequence[str],
    now: Callable[[], datetime] | None = None,
) -> CertificateInfo:
    """Replace whatever is in ``tls_dir`` with a fresh key and self-signed certificate.

    The way back from an owner's certificate that expired or was lost; HSTS stops with it.
    Arguments and errors are those of ``ensure_certificate``.
    """
    clock = now or _utc_now
    names = _wanted_names(host_names, addresses)
    with fileset.locked(tls_dir):
        fileset.recover(tls_dir)
        return _generate(
            tls_dir, names, clock(), CertificateChange.REVERTED, "the owner asked for it"
        )


def read_certificate_info(tls_dir: Path) -> CertificateInfo:
    """Describe the certificate in ``tls_dir`` after checking that its key belongs to it.

    Raises:
        CertificateError: a file is missing (``MISSING``), unreadable, or the pair does not
            match; ``path`` names the file.

    """
    cert_path = tls_dir / CERT_FILE
    key_path = tls_dir / KEY_FILE
    chain = parse_chain(_read(cert_path), path=cert_path)
    key = parse_key(_read(key_path), path=key_path)
    check_pair(chain, key, path=key_path)
    return _describe(tls_dir, chain[0], is_owner_installed=_is_owner_installed(tls_dir))


# --- names ---------------------------------------------------------------------------------


def _wanted_names(host_names: Sequence[str], addresses: Sequence[str]) -> _Names:
    dns: list[str] = []
    ips: list[_IPAddress] = [ipaddress.ip_address(a) for a in LOOPBACK_ADDRESSES]
    for text in addresses:
        try:
            # A scope ("fe80::1%eth0") is local to this machine and has no place in a SAN.
            address = ipaddress.ip_address(text.strip().split("%", 1)[0])
        except ValueError:
            dns.append(text)
            continue
        if not address.is_unspecified and address not in ips:
            ips.append(address)
    normalized = [_normalize_dns_name(name) for name in (*host_names, *LOOPBACK_NAMES, *dns)]
    return _Names(dns=tuple(dict.fromkeys(n for n in normalized if n)), ips=tuple(ips))


def _normalize_dns_name(name: str) -> str:
    text = name.strip().rstrip(".").lower()
    try:
        # Certificates carry internationalised names in their ASCII form (RFC 5280 §7.2).
        ascii_name = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError as exc:
        raise CertificateError(
            f"{name!r} cannot be put in a certificate: {exc}",
            reason=CertificateProblem.INVALID_NAME,
        ) from exc
    if ascii_name and not _DNS_NAME.match(ascii_name):
        raise CertificateError(
            f"{name!r} is not a DNS name a certificate can carry (letters, digits, '-', '_' "
            "and dots)",
            reason=CertificateProblem.INVALID_NAME,
        )
    return ascii_name


def _why_regenerate(info: CertificateInfo, names: _Names, now: datetime) -> str | None:
    if now >= info.not_after - RENEW_BEFORE:
        return f"it expires on {info.not_after:%Y-%m-%d}"
    if now < info.not_before:
        return f"it is not valid before {info.not_before:%Y-%m-%d %H:%M} UTC"
    missing = [n for n in names.dns if n not in info.dns_names]
    missing += [str(a) for a in names.ips if str(a) not in info.ip_addresses]
    if missing:
        return "it does not name " + ", ".join(missing)
    return None


def _report_owner_validity(info: CertificateInfo, now: datetime) -> None:
    # Served anyway: refusing to start would lock the owner out of the page that fixes it.
    if now >= info.not_after:
        logger.error(
            "the owner-installed certificate expired on %s: browsers refuse it; install a new one",
            info.not_after,
        )
    elif now >= info.not_after - RENEW_BEFORE:
        logger.warning("the owner-installed certificate expires on %s", info.not_after)


# --- generation ----------------------------------------------------------------------------


def _generate(
    tls_dir: Path, names: _Names, now: datetime, change: CertificateChange, reason: str
) -> CertificateInfo:
    key = ec.generate_private_key(ec.SECP256R1())
    public_key = key.public_key()
    common_name = names.dns[0] if len(names.dns[0]) <= MAX_COMMON_NAME_CHARS else "panelhub"
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    san = [x509.DNSName(n) for n in names.dns] + [x509.IPAddress(a) for a in names.ips]
    usage = x509.KeyUsage(
        digital_signature=True,  # ECDHE: the server signs the key exchange
        key_agreement=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fileset.replace_files(
        tls_dir,
        {
            KEY_FILE: (key_pem, KEY_MODE),
            CERT_FILE: (cert.public_bytes(serialization.Encoding.PEM), CERT_MODE),
            ORIGIN_FILE: (_ORIGIN_GENERATED, CERT_MODE),
        },
    )
    info = _with_change(_describe(tls_dir, cert, is_owner_installed=False), change, reason)
    logger.info(
        "self-signed certificate %s (%s) for %s",
        change.value,
        reason,
        ", ".join((*info.dns_names, *info.ip_addresses)),
    )
    return info


# --- description ---------------------------------------------------------------------------


def _describe(
    tls_dir: Path, leaf: x509.Certificate, *, is_owner_installed: bool
) -> CertificateInfo:
    san = extension(leaf, x509.SubjectAlternativeName)
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    if san is not None:
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
        ip_addresses = tuple(str(a) for a in san.get_values_for_type(x509.IPAddress))
    return CertificateInfo(
        cert_path=tls_dir / CERT_FILE,
        key_path=tls_dir / KEY_FILE,
        subject=leaf.subject.rfc4514_string(),
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        sha256_fingerprint=leaf.fingerprint(hashes.SHA256()).hex(":").upper(),
        is_self_signed=_is_self_signed(leaf),
        is_owner_installed=is_owner_installed,
    )


def _with_change(info: CertificateInfo, change: CertificateChange, reason: str) -> CertificateInfo:
    return dataclasses.replace(info, change=change, change_reason=reason)


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_owner_installed(tls_dir: Path) -> bool:
    try:
        return (tls_dir / ORIGIN_FILE).read_bytes() == _ORIGIN_OWNER
    except FileNotFoundError:
        return False


# --- files ---------------------------------------------------------------------------------


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            # One byte more than the limit is enough to refuse an oversize file.
            return file.read(MAX_PEM_BYTES + 1)
    except FileNotFoundError as exc:
        raise CertificateError(
            f"{path} is missing", reason=CertificateProblem.MISSING, path=path
        ) from exc


def _tighten_key_mode(tls_dir: Path) -> None:
    key_path = tls_dir / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        if key_path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning("%s was readable by others; it is now owner-only", key_path)
            key_path.chmod(KEY_MODE)
