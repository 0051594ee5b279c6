"""The TLS server context against real clients: Python's ssl module and the sslyze scanner.

Each refusal has a control: the same client against a deliberately permissive server succeeds,
so a refusal is the server's doing and not this machine's OpenSSL refusing to try. (asyncio's
server drops a connection whose handshake failed without flushing its TLS alert, so a refused
client sees a reset rather than the alert: the control is what pins the cause.)
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import ssl
import warnings
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

# sslyze's package root does not re-export these for the type checker: import their homes.
from sslyze.plugins.scan_commands import ScanCommand
from sslyze.scanner.models import AllScanCommandsAttempts, ServerScanRequest, ServerScanStatusEnum
from sslyze.scanner.scanner import Scanner
from sslyze.server_setting import ServerNetworkLocation

from panelhub.errors import CertificateError
from panelhub.security.certs import CertificateInfo, ensure_certificate, install_certificate
from panelhub.transport.tls import server_context
from tests.certificates import CA, cert_pem, key_pem, rsa_key

TIMEOUT_S = 5.0
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
HOST_NAME = "panel-7.example"
#: A TLS 1.2 suite PanelHub may offer: ephemeral ECDH, then AES-GCM or ChaCha20-Poly1305.
ECDHE_AEAD = re.compile(
    r"^TLS_ECDHE_(ECDSA|RSA)_WITH_(AES_(128|256)_GCM|CHACHA20_POLY1305)_SHA\d+$"
)
#: sslyze's bundled trust stores hold an old root with a negative serial number; cryptography
#: warns about it while sslyze loads them. Not PanelHub's certificate, not this test's subject.
SSLYZE_TRUST_STORE_WARNING = (
    "ignore:Parsed a serial number which wasn't positive"
    ":cryptography.utils.CryptographyDeprecationWarning"
)

#: How a refused handshake looks to an asyncio client (see the module docstring).
REFUSED = (ssl.SSLError, ConnectionResetError)


class HelloHTTP(asyncio.Protocol):
    """Answers one request with a fixed response, then closes: enough for a TLS client."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(RESPONSE)
        self.transport.close()


@contextlib.asynccontextmanager
async def serving(context: ssl.SSLContext) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HelloHTTP, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def permissive_context(info: CertificateInfo) -> ssl.SSLContext:
    """What PanelHub must not be: every version and suite this OpenSSL can still speak."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 is deprecated: the point
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.load_cert_chain(info.cert_path, info.key_path)
    return context


def client_context(
    cafile: Path,
    *,
    minimum: ssl.TLSVersion | None = None,
    maximum: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """A verifying client; old versions or odd suites need security level 0 to be offered."""
    context = ssl.create_default_context(cafile=cafile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            context.minimum_version = minimum
        if maximum is not None:
            context.maximum_version = maximum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


async def fetch(
    port: int, context: ssl.SSLContext, *, server_hostname: str = "localhost"
) -> tuple[str, str, bytes]:
    """Return the negotiated TLS version and suite, and the response."""
    async with asyncio.timeout(TIMEOUT_S):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname=server_hostname
        )
        try:
            tls = writer.get_extra_info("ssl_object")
            writer.write(b"GET / HTTP/1.1\r\nHost: panel\r\n\r\n")
            response = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(ssl.SSLError, ConnectionError):
                await writer.wait_closed()
    version = tls.version()
    cipher = tls.cipher()
    assert version is not None
    assert cipher is not None
    return version, cipher[0], response


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> CertificateInfo:
    return ensure_certificate(
        tmp_path_factory.mktemp("generated") / "tls",
        host_names=[HOST_NAME],
        addresses=["127.0.0.1"],
    )


@pytest.fixture(scope="module")
def owner_rsa(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertificateInfo, Path]:
    """An owner-installed RSA certificate (so RSA key exchange could be offered) and its CA."""
    ca = CA(key=rsa_key(2048))
    key = rsa_key(2048)
    now = datetime.now(UTC)
    leaf = ca.issue(
        key,
        names=["localhost", "127.0.0.1"],
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
    )
    directory = tmp_path_factory.mktemp("owner")
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(cert_pem(ca.cert))
    info = install_certificate(directory / "tls", cert_pem(leaf, ca.cert), key_pem(key))
    return info, ca_file


# --- Python ssl clients --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "expected"),
    [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")],
)
async def test_tls_1_2_and_1_3_clients_are_served(generated, version, expected):
    client = client_context(generated.cert_path, minimum=version, maximum=version)
    async with serving(server_context(generated.cert_path, generated.key_path)) as port:
        negotiated, cipher, response = await fetch(port, client)

    assert negotiated == expected
    assert response == RESPONSE
    if version is ssl.TLSVersion.TLSv1_2:
        assert re.match(r"^ECDHE-ECDSA-(AES(128|256)-GCM-SHA\d+|CHACHA20-POLY1305)$", cipher)


async def test_the_certificate_verifies_by_host_name_and_by_address(generated):
    client = client_context(generated.cert_path)
    async with serving(server_context(generated.cert_path, generated.key_path)) as port:
        for name in (HOST_NAME, "localhost", "127.0.0.1"):
            assert (await fetch(port, client, server_hostname=name))[2] == RESPONSE


OLD_VERSIONS = [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1]


@pytest.mark.parametrize("version", OLD_VERSIONS, ids=["TLSv1.0", "TLSv1.1"])
async def test_tls_1_0_and_1_1_clients_are_refused_by_the_server(generated, version):
    client = client_context(
        generated.cert_path, minimum=version, maximum=version, ciphers="DEFAULT:@SECLEVEL=0"
    )
    async with serving(server_context(generated.cert_path, generated.key_path)) as port:
        with pytest.raises(REFUSED):
            await fetch(port, client)


@pytest.mark.parametrize("version", OLD_VERSIONS, ids=["TLSv1.0", "TLSv1.1"])
async def test_control_the_same_old_clients_reach_a_permissive_server(generated, version):
    client = client_context(
        generated.cert_path, minimum=version, maximum=version, ciphers="DEFAULT:@SECLEVEL=0"
    )
    async with serving(permissive_context(generated)) as port:
        negotiated, _, response = await fetch(port, client)
    assert negotiated == {ssl.TLSVersion.TLSv1: "TLSv1", ssl.TLSVersion.TLSv1_1: "TLSv1.1"}[version]
    assert response == RESPONSE


#: TLS 1.2 suites PanelHub refuses, each with the certificate type that could otherwise carry it.
WEAK_SUITES = [
    ("ec", "ECDHE-ECDSA-AES128-SHA256"),  # ECDHE, but CBC with HMAC: not AEAD
    ("ec", "ECDHE-ECDSA-AES256-SHA"),
    ("rsa", "ECDHE-RSA-AES128-SHA"),
    ("rsa", "AES128-GCM-SHA256"),  # AEAD, but RSA key exchange: no forward secrecy
    ("rsa", "AES256-SHA256"),
]


def _server_files(kind, generated, owner_rsa) -> tuple[CertificateInfo, Path]:
    return (generated, generated.cert_path) if kind == "ec" else owner_rsa


@pytest.mark.parametrize(("kind", "suite"), WEAK_SUITES)
async def test_tls_1_2_clients_offering_only_weak_suites_are_refused(
    generated, owner_rsa, kind, suite
):
    info, cafile = _server_files(kind, generated, owner_rsa)
    client = client_context(cafile, maximum=ssl.TLSVersion.TLSv1_2, ciphers=f"{suite}:@SECLEVEL=0")
    async with serving(server_context(info.cert_path, info.key_path)) as port:
        with pytest.raises(REFUSED):
            await fetch(port, client)


@pytest.mark.parametrize(("kind", "suite"), WEAK_SUITES)
async def test_control_the_same_suites_reach_a_permissive_server(generated, owner_rsa, kind, suite):
    info, cafile = _server_files(kind, generated, owner_rsa)
    client = client_context(cafile, maximum=ssl.TLSVersion.TLSv1_2, ciphers=f"{suite}:@SECLEVEL=0")
    async with serving(permissive_context(info)) as port:
        _, cipher, _ = await fetch(port, client)
    assert cipher == suite


async def test_an_owner_rsa_certificate_is_served_with_ecdhe_rsa_suites(owner_rsa):
    info, cafile = owner_rsa
    client = client_context(cafile, maximum=ssl.TLSVersion.TLSv1_2)
    async with serving(server_context(info.cert_path, info.key_path)) as port:
        _, cipher, _ = await fetch(port, client)
    assert re.match(r"^ECDHE-RSA-(AES(128|256)-GCM-SHA\d+|CHACHA20-POLY1305)$", cipher)


def test_files_that_cannot_be_loaded_raise_a_certificate_error(generated, owner_rsa, tmp_path):
    with pytest.raises(CertificateError) as missing:
        server_context(tmp_path / "cert.pem", tmp_path / "key.pem")
    with pytest.raises(CertificateError) as mismatched:
        server_context(generated.cert_path, owner_rsa[0].key_path)

    assert missing.value.reason == "unusable"
    assert missing.value.path == tmp_path / "cert.pem"
    assert str(generated.cert_path) in str(mismatched.value)


# --- sslyze --------------------------------------------------------------------------------


SCAN_COMMANDS = {
    ScanCommand.CERTIFICATE_INFO,
    ScanCommand.SSL_2_0_CIPHER_SUITES,
    ScanCommand.SSL_3_0_CIPHER_SUITES,
    ScanCommand.TLS_1_0_CIPHER_SUITES,
    ScanCommand.TLS_1_1_CIPHER_SUITES,
    ScanCommand.TLS_1_2_CIPHER_SUITES,
    ScanCommand.TLS_1_3_CIPHER_SUITES,
    ScanCommand.TLS_COMPRESSION,
    ScanCommand.SESSION_RENEGOTIATION,
}


def scan(port: int) -> AllScanCommandsAttempts:
    scanner = Scanner()
    location = ServerNetworkLocation(hostname="localhost", port=port, ip_address="127.0.0.1")
    scanner.queue_scans([ServerScanRequest(server_location=location, scan_commands=SCAN_COMMANDS)])
    [result] = scanner.get_results()
    assert result.scan_status is ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    assert result.scan_result is not None
    return result.scan_result


def accepted(results: AllScanCommandsAttempts, command: ScanCommand) -> list[str]:
    attempt = getattr(results, command.value)
    assert attempt.result is not None, attempt.error_trace  # the scan itself worked
    return [suite.cipher_suite.name for suite in attempt.result.accepted_cipher_suites]


OLD_PROTOCOLS = [
    ScanCommand.SSL_2_0_CIPHER_SUITES,
    ScanCommand.SSL_3_0_CIPHER_SUITES,
    ScanCommand.TLS_1_0_CIPHER_SUITES,
    ScanCommand.TLS_1_1_CIPHER_SUITES,
]


@pytest.mark.filterwarnings(SSLYZE_TRUST_STORE_WARNING)
@pytest.mark.parametrize("kind", ["ec", "rsa"])
async def test_sslyze_finds_only_tls_1_2_ecdhe_aead_and_tls_1_3(generated, owner_rsa, kind):
    info, _ = _server_files(kind, generated, owner_rsa)
    async with serving(server_context(info.cert_path, info.key_path)) as port:
        results = await asyncio.to_thread(scan, port)

    for command in OLD_PROTOCOLS:
        assert accepted(results, command) == [], command
    tls12 = accepted(results, ScanCommand.TLS_1_2_CIPHER_SUITES)
    assert tls12
    assert [s for s in tls12 if not ECDHE_AEAD.match(s)] == []
    assert accepted(results, ScanCommand.TLS_1_3_CIPHER_SUITES)
    assert results.tls_compression.result is not None
    assert not results.tls_compression.result.supports_compression
    renegotiation = results.session_renegotiation.result
    assert renegotiation is not None
    assert not renegotiation.is_vulnerable_to_client_renegotiation_dos

    certificate_info = results.certificate_info.result
    assert certificate_info is not None
    leaf = certificate_info.certificate_deployments[0].received_certificate_chain[0]
    assert leaf.fingerprint(hashes.SHA256()).hex(":").upper() == info.sha256_fingerprint


@pytest.mark.filterwarnings(SSLYZE_TRUST_STORE_WARNING)
async def test_sslyze_sees_a_v3_certificate_naming_the_panel(generated):
    async with serving(server_context(generated.cert_path, generated.key_path)) as port:
        results = await asyncio.to_thread(scan, port)

    certificate_info = results.certificate_info.result
    assert certificate_info is not None
    leaf = certificate_info.certificate_deployments[0].received_certificate_chain[0]
    assert leaf.version is x509.Version.v3
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {HOST_NAME, "localhost"} <= set(san.get_values_for_type(x509.DNSName))
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)


@pytest.mark.filterwarnings(SSLYZE_TRUST_STORE_WARNING)
async def test_control_sslyze_reports_what_a_permissive_server_allows(owner_rsa):
    info, _ = owner_rsa
    async with serving(permissive_context(info)) as port:
        results = await asyncio.to_thread(scan, port)

    assert accepted(results, ScanCommand.TLS_1_0_CIPHER_SUITES)
    tls12 = accepted(results, ScanCommand.TLS_1_2_CIPHER_SUITES)
    assert [s for s in tls12 if not ECDHE_AEAD.match(s)]


def test_the_version_floor_and_renegotiation_refusal_do_not_rest_on_the_suite_list(generated):
    # The suite list alone already rules out TLS 1.0/1.1 (no AEAD suite there) and OpenSSL 3
    # already refuses client renegotiation: these settings keep holding if either changes.
    context = server_context(generated.cert_path, generated.key_path)
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_RENEGOTIATION
    assert context.options & ssl.OP_NO_COMPRESSION
