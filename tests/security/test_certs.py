"""The web certificate: generated per installation, kept, replaced when broken; owner installs."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from panelhub.errors import CertificateError
from panelhub.security.certpolicy import CertificateProblem
from panelhub.security.certs import (
    CertificateChange,
    CertificateInfo,
    ensure_certificate,
    install_certificate,
    read_certificate_info,
    revert_to_self_signed,
)
from tests.certificates import CA, NOW, cert_pem, ec_key, key_pem, rsa_key

HOST_NAMES = ["panel-7", "panel.example.com"]
ADDRESSES = ["192.0.2.10"]


def clock_at(moment: datetime = NOW) -> Callable[[], datetime]:
    return lambda: moment


def ensure(tls_dir: Path, *, host_names=HOST_NAMES, addresses=ADDRESSES, at=NOW):
    return ensure_certificate(tls_dir, host_names=host_names, addresses=addresses, now=clock_at(at))


def load(info: CertificateInfo) -> x509.Certificate:
    return x509.load_pem_x509_certificate(info.cert_path.read_bytes())


def load_key(info: CertificateInfo):
    return serialization.load_pem_private_key(info.key_path.read_bytes(), password=None)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tls"


# --- the generated certificate ---------------------------------------------------------------


def test_first_start_makes_an_x509v3_ec_p256_server_certificate(tls_dir):
    info = ensure(tls_dir)
    cert = load(info)

    assert info.change is CertificateChange.CREATED
    assert cert.version is x509.Version.v3
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert isinstance(public_key.curve, ec.SECP256R1)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    cert.verify_directly_issued_by(cert)  # self-signed, and the signature checks out
    assert cert.issuer == cert.subject
    assert cert.serial_number > 2**64

    ext = cert.extensions
    basic = ext.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca is False
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    usage = ext.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_cert_sign
    ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(public_key)

    assert cert.not_valid_before_utc == NOW - timedelta(hours=1)
    assert cert.not_valid_after_utc == NOW + timedelta(days=825)


def test_san_names_the_host_localhost_loopback_and_configured_addresses(tls_dir):
    info = ensure(
        tls_dir,
        host_names=["Panel-7.", "bücher.example"],
        addresses=["192.0.2.10", "2001:db8::5", "fe80::1%eth0", "0.0.0.0", "::", "panel.lan"],
    )
    san = load(info).extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert san.get_values_for_type(x509.DNSName) == [
        "panel-7",
        "xn--bcher-kva.example",
        "localhost",
        "panel.lan",
    ]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address(a)
        for a in ("127.0.0.1", "::1", "192.0.2.10", "2001:db8::5", "fe80::1")
    ]
    # The wildcards name no address a browser could use: they stay out.
    assert info.ip_addresses == ("127.0.0.1", "::1", "192.0.2.10", "2001:db8::5", "fe80::1")
    assert info.dns_names == ("panel-7", "xn--bcher-kva.example", "localhost", "panel.lan")
    assert info.subject == "CN=panel-7"


def test_info_describes_the_files(tls_dir):
    info = ensure(tls_dir)
    cert = load(info)

    assert info.cert_path == tls_dir / "cert.pem"
    assert info.key_path == tls_dir / "key.pem"
    assert info.sha256_fingerprint == cert.fingerprint(hashes.SHA256()).hex(":").upper()
    assert len(info.sha256_fingerprint) == 32 * 3 - 1
    assert info.not_before == cert.not_valid_before_utc
    assert info.not_after == cert.not_valid_after_utc
    assert info.is_self_signed
    assert not info.is_owner_installed
    assert read_certificate_info(tls_dir) == dataclasses.replace(
        info, change=CertificateChange.UNCHANGED, change_reason=""
    )


@pytest.mark.parametrize("umask", [0o000, 0o077], ids=["umask-000", "umask-077"])
def test_key_is_owner_only_and_certificate_world_readable_whatever_the_umask(tls_dir, umask):
    old = os.umask(umask)
    try:
        info = ensure(tls_dir)
    finally:
        os.umask(old)
    assert mode(info.key_path) == 0o600
    assert mode(info.cert_path) == 0o644
    assert mode(tls_dir) == 0o700
    assert sorted(p.name for p in tls_dir.iterdir()) == [".lock", "cert.pem", "key.pem", "origin"]


def test_two_installations_never_share_a_key_or_serial(tmp_path):
    first = ensure(tmp_path / "a")
    second = ensure(tmp_path / "b")

    assert first.key_path.read_bytes() != second.key_path.read_bytes()
    assert load(first).serial_number != load(second).serial_number
    assert first.sha256_fingerprint != second.sha256_fingerprint


# --- later starts --------------------------------------------------------------------------


def test_a_valid_certificate_is_reused(tls_dir):
    first = ensure(tls_dir)
    key_bytes = first.key_path.read_bytes()

    again = ensure(tls_dir, at=NOW + timedelta(days=100))

    assert again.change is CertificateChange.UNCHANGED
    assert again.sha256_fingerprint == first.sha256_fingerprint
    assert again.key_path.read_bytes() == key_bytes


def test_a_newly_configured_name_or_address_regenerates_the_self_signed_certificate(tls_dir):
    first = ensure(tls_dir)

    renamed = ensure(tls_dir, host_names=[*HOST_NAMES, "scada-gw.plant"])
    readdressed = ensure(
        tls_dir, host_names=[*HOST_NAMES, "scada-gw.plant"], addresses=["10.1.2.3"]
    )

    assert renamed.change is CertificateChange.REGENERATED
    assert "scada-gw.plant" in renamed.change_reason
    assert "scada-gw.plant" in renamed.dns_names
    assert renamed.sha256_fingerprint != first.sha256_fingerprint
    assert readdressed.change is CertificateChange.REGENERATED
    assert "10.1.2.3" in readdressed.ip_addresses
    # Fewer names is no reason to change: browsers that trusted the certificate keep trusting it.
    assert ensure(tls_dir, host_names=[], addresses=[]).change is CertificateChange.UNCHANGED


@pytest.mark.parametrize(
    ("days_before_end", "change"),
    [(31, CertificateChange.UNCHANGED), (29, CertificateChange.REGENERATED),
     (-5, CertificateChange.REGENERATED)],
)  # fmt: skip
def test_a_self_signed_certificate_near_its_end_is_renewed(tls_dir, days_before_end, change):
    first = ensure(tls_dir)

    later = ensure(tls_dir, at=first.not_after - timedelta(days=days_before_end))

    assert later.change is change
    if change is CertificateChange.REGENERATED:
        assert later.not_after > first.not_after
        assert "expires" in later.change_reason


def _truncate_cert(d: Path) -> None:
    (d / "cert.pem").write_bytes((d / "cert.pem").read_bytes()[:100])


def _garbage_key(d: Path) -> None:
    (d / "key.pem").write_bytes(
        b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"
    )


def _delete_key(d: Path) -> None:
    (d / "key.pem").unlink()


def _delete_cert(d: Path) -> None:
    (d / "cert.pem").unlink()


def _foreign_key(d: Path) -> None:
    (d / "key.pem").write_bytes(key_pem(ec_key()))


@pytest.mark.parametrize(
    "damage", [_truncate_cert, _garbage_key, _delete_key, _delete_cert, _foreign_key]
)
def test_a_damaged_self_signed_pair_is_replaced_and_said_so(tls_dir, caplog, damage):
    first = ensure(tls_dir)
    damage(tls_dir)

    with caplog.at_level(logging.WARNING, logger="panelhub.security.certs"):
        again = ensure(tls_dir)

    assert again.change is CertificateChange.REGENERATED
    assert again.change_reason
    assert again.sha256_fingerprint != first.sha256_fingerprint
    assert read_certificate_info(tls_dir).sha256_fingerprint == again.sha256_fingerprint
    assert any(
        r.levelno == logging.WARNING and "replacing" in r.getMessage() for r in caplog.records
    )


def test_a_key_readable_by_others_is_made_owner_only(tls_dir):
    info = ensure(tls_dir)
    info.key_path.chmod(0o644)

    again = ensure(tls_dir)

    assert again.change is CertificateChange.UNCHANGED
    assert mode(info.key_path) == 0o600


def test_a_name_no_certificate_can_carry_is_refused(tls_dir):
    with pytest.raises(CertificateError) as caught:
        ensure(tls_dir, host_names=["bad name"])
    assert caught.value.reason is CertificateProblem.INVALID_NAME
    assert "bad name" in str(caught.value)
    assert not (tls_dir / "key.pem").exists()


def test_reading_an_empty_directory_says_what_is_missing(tls_dir):
    tls_dir.mkdir(parents=True)
    with pytest.raises(CertificateError) as caught:
        read_certificate_info(tls_dir)
    assert caught.value.reason is CertificateProblem.MISSING
    assert caught.value.path == tls_dir / "cert.pem"


# --- crash safety --------------------------------------------------------------------------


def test_a_change_interrupted_after_its_commit_point_is_finished(tmp_path, tls_dir):
    ensure(tls_dir)
    new = ensure(tmp_path / "elsewhere")
    # A crash after .commit/ was complete and the key had been moved, before the certificate:
    commit = tls_dir / ".commit"
    commit.mkdir()
    for name in ("cert.pem", "origin"):
        shutil.copy2(tmp_path / "elsewhere" / name, commit / name)
    shutil.copy2(new.key_path, tls_dir / "key.pem")

    after = ensure(tls_dir)

    assert after.change is CertificateChange.UNCHANGED
    assert after.sha256_fingerprint == new.sha256_fingerprint
    assert not commit.exists()


def test_a_change_interrupted_before_its_commit_point_is_discarded(tls_dir):
    first = ensure(tls_dir)
    staging = tls_dir / ".staging"
    staging.mkdir()
    (staging / "key.pem").write_bytes(b"half a ke")

    after = ensure(tls_dir)

    assert after.sha256_fingerprint == first.sha256_fingerprint
    assert not staging.exists()


# --- the owner's certificate ---------------------------------------------------------------


def install(tls_dir: Path, certificate: bytes, key: bytes, at=NOW) -> CertificateInfo:
    return install_certificate(tls_dir, certificate, key, now=None if at is None else clock_at(at))


def test_installing_an_owner_certificate_marks_it_and_keeps_the_chain(tls_dir):
    generated = ensure(tls_dir)
    ca = CA()
    key = ec_key(ec.SECP384R1())
    leaf = ca.issue(key, names=["panel.example.com", "192.0.2.10"])

    info = install(tls_dir, cert_pem(leaf, ca.cert), key_pem(key))

    assert info.change is CertificateChange.INSTALLED
    assert info.is_owner_installed
    assert not info.is_self_signed
    assert info.sha256_fingerprint == leaf.fingerprint(hashes.SHA256()).hex(":").upper()
    assert info.dns_names == ("panel.example.com",)
    assert info.ip_addresses == ("192.0.2.10",)
    assert x509.load_pem_x509_certificates(info.cert_path.read_bytes()) == [leaf, ca.cert]
    assert mode(info.key_path) == 0o600
    assert info.sha256_fingerprint != generated.sha256_fingerprint
    assert read_certificate_info(tls_dir).is_owner_installed


def test_an_rsa_owner_certificate_is_accepted(tls_dir):
    ca = CA(key=rsa_key(3072))
    key = rsa_key(2048)

    info = install(tls_dir, cert_pem(ca.issue(key)), key_pem(key))

    assert info.is_owner_installed


def test_an_owner_certificate_is_never_replaced_automatically(tls_dir, caplog):
    ca = CA()
    key = ec_key()
    leaf = ca.issue(key, names=["other.example"], not_after=NOW + timedelta(days=10))
    installed = install(tls_dir, cert_pem(leaf), key_pem(key))

    # Names it does not carry, then a date after its end: served as is, with an error logged.
    same = ensure(tls_dir, host_names=["panel-9"])
    with caplog.at_level(logging.ERROR, logger="panelhub.security.certs"):
        expired = ensure(tls_dir, at=NOW + timedelta(days=11))

    for info in (same, expired):
        assert info.change is CertificateChange.UNCHANGED
        assert info.is_owner_installed
        assert info.sha256_fingerprint == installed.sha256_fingerprint
    assert any(r.levelno == logging.ERROR and "expired" in r.getMessage() for r in caplog.records)


def test_a_damaged_owner_certificate_is_reported_not_replaced(tls_dir):
    key = ec_key()
    install(tls_dir, cert_pem(CA().issue(key)), key_pem(key))
    (tls_dir / "key.pem").unlink()

    with pytest.raises(CertificateError) as caught:
        ensure(tls_dir)

    assert caught.value.reason is CertificateProblem.MISSING
    assert "owner-installed" in str(caught.value)
    assert not (tls_dir / "key.pem").exists()


def test_reverting_goes_back_to_a_fresh_self_signed_certificate(tls_dir):
    generated = ensure(tls_dir)
    key = ec_key()
    install(tls_dir, cert_pem(CA().issue(key)), key_pem(key))

    reverted = revert_to_self_signed(
        tls_dir, host_names=HOST_NAMES, addresses=ADDRESSES, now=clock_at()
    )

    assert reverted.change is CertificateChange.REVERTED
    assert reverted.is_self_signed
    assert not reverted.is_owner_installed
    assert not read_certificate_info(tls_dir).is_owner_installed
    assert reverted.sha256_fingerprint != generated.sha256_fingerprint
    assert load_key(reverted).public_key() == load(reverted).public_key()


def _sha1_signed_by_openssl(tmp_path: Path) -> tuple[bytes, bytes]:
    # cryptography no longer signs with SHA-1; the openssl tool still does, as old CAs did.
    key_path, cert_path = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-sha1", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key_path), "-out", str(cert_path),
         "-subj", "/CN=panel.example.com", "-days", "30"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert_path.read_bytes(), key_path.read_bytes()


#: Each way an owner's certificate can be unfit, the problem it must be refused with, and words
#: the message must contain so the owner knows what to fix.
REFUSALS = {
    "DER, not PEM": (CertificateProblem.NOT_PEM, "PEM"),
    "unparsable PEM": (CertificateProblem.NOT_PEM, "cannot be parsed"),
    "key not PEM": (CertificateProblem.NOT_PEM, "private key"),
    "too large": (CertificateProblem.TOO_LARGE, "bytes"),
    "encrypted key": (CertificateProblem.ENCRYPTED_KEY, "encrypted"),
    "key of another certificate": (CertificateProblem.KEY_MISMATCH, "does not belong"),
    "leaf not first": (CertificateProblem.KEY_MISMATCH, "must come first"),
    "expired": (CertificateProblem.EXPIRED, "expired on"),
    "not yet valid": (CertificateProblem.NOT_YET_VALID, "not valid before"),
    "RSA 1024": (CertificateProblem.WEAK_KEY, "1024 bits"),
    "EC P-224": (CertificateProblem.WEAK_KEY, "secp224r1"),
    "EC secp256k1": (CertificateProblem.UNSUPPORTED_KEY, "secp256k1"),
    "Ed25519": (CertificateProblem.UNSUPPORTED_KEY, "not supported"),
    "SHA-224 signature": (CertificateProblem.WEAK_SIGNATURE, "SHA224"),
    "SHA-1 signature": (CertificateProblem.WEAK_SIGNATURE, "SHA1"),
    "client-only EKU": (CertificateProblem.NOT_FOR_SERVERS, "serverAuth"),
    "no digitalSignature": (CertificateProblem.NOT_FOR_SERVERS, "digital signatures"),
}


@pytest.fixture(scope="module")
def unfit(tmp_path_factory) -> dict[str, tuple[bytes, bytes]]:
    ca = CA()
    key = ec_key()
    good = ca.issue(key)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    weak_rsa = rsa_key(1024)
    p224 = ec_key(ec.SECP224R1())
    k1 = ec_key(ec.SECP256K1())
    sha1_cert, sha1_key = _sha1_signed_by_openssl(tmp_path_factory.mktemp("sha1"))
    return {
        "DER, not PEM": (good.public_bytes(serialization.Encoding.DER), key_pem(key)),
        "unparsable PEM": (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                           key_pem(key)),
        "key not PEM": (cert_pem(good), b"hello"),
        "too large": (cert_pem(good) + b"\n" * (256 * 1024), key_pem(key)),
        "encrypted key": (cert_pem(good), key_pem(key, b"secret")),
        "key of another certificate": (cert_pem(good), key_pem(ec_key())),
        "leaf not first": (cert_pem(ca.cert, good), key_pem(key)),
        "expired": (cert_pem(ca.issue(key, not_after=NOW - timedelta(minutes=1))), key_pem(key)),
        "not yet valid": (cert_pem(ca.issue(key, not_before=NOW + timedelta(days=2))),
                          key_pem(key)),
        "RSA 1024": (cert_pem(ca.issue(weak_rsa)), key_pem(weak_rsa)),
        "EC P-224": (cert_pem(ca.issue(p224)), key_pem(p224)),
        "EC secp256k1": (cert_pem(ca.issue(k1)), key_pem(k1)),
        "Ed25519": (cert_pem(ca.issue(ed_key)), key_pem(ed_key)),
        "SHA-224 signature": (cert_pem(ca.issue(key, digest=hashes.SHA224())), key_pem(key)),
        "SHA-1 signature": (sha1_cert, sha1_key),
        "client-only EKU": (cert_pem(ca.issue(key, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])),
                            key_pem(key)),
        "no digitalSignature": (cert_pem(ca.issue(key, digital_signature=False)), key_pem(key)),
    }  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS)
def test_an_unfit_owner_certificate_is_refused_and_nothing_changes(tls_dir, unfit, case):
    problem, words = REFUSALS[case]
    certificate, key = unfit[case]
    before = ensure(tls_dir)
    files = {p.name: p.read_bytes() for p in tls_dir.iterdir()}

    with pytest.raises(CertificateError) as caught:
        # openssl dated its SHA-1 certificate from the real clock.
        install(tls_dir, certificate, key, at=None if case == "SHA-1 signature" else NOW)

    assert caught.value.reason is problem
    assert words in str(caught.value)
    assert {p.name: p.read_bytes() for p in tls_dir.iterdir()} == files
    after = read_certificate_info(tls_dir)
    assert not after.is_owner_installed
    assert after.sha256_fingerprint == before.sha256_fingerprint


def test_every_problem_an_upload_can_have_is_exercised():
    on_disk_only = {
        CertificateProblem.MISSING,
        CertificateProblem.INVALID_NAME,
        CertificateProblem.UNUSABLE,
    }
    assert {problem for problem, _ in REFUSALS.values()} == set(CertificateProblem) - on_disk_only
