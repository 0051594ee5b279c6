"""The maintenance page and its API: version, uptime, restart, and the HTTPS certificate.

Admins only: a restart interrupts every Modbus client, and the certificate decides whom
browsers trust to be this panel.

An owner's certificate is installed from two uploads (the chain, leaf first, and its private
key), each refused beyond ``MAX_UPLOAD_BYTES`` (the request as a whole is bounded earlier, by
``middleware.MAX_BODY_BYTES``, when the form token check parses it). Every check runs before
anything on disk changes (``certs.install_certificate``), so a refused upload leaves the panel
serving what it served; an accepted one is served on new connections at once
(``ServedCertificate``), and HSTS starts with it. Every attempt is audited with the
certificate's subject and fingerprint or the reason for the refusal, never with key material.
"""

from __future__ import annotations

import time
from collections.abc import Coroutine
from typing import Any, Final

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

import panelhub
from panelhub.errors import CertificateError
from panelhub.security import bundle, slots
from panelhub.security.audit import AuditEvent, DetailValue, Outcome
from panelhub.security.certpolicy import CertificateProblem
from panelhub.security.certs import CertificateInfo
from panelhub.web.access import Access, api, client_address, context_of, page, session_of
from panelhub.web.bodies import BodyError, parse_json
from panelhub.web.certificate import ServedCertificate
from panelhub.web.templating import render

#: Largest certificate chain or key read from an upload: a chain of a few RSA-4096
#: certificates is about 10 KiB.
MAX_UPLOAD_BYTES: Final = 64 * 1024
#: A JSON body carries both PEM texts, escaped.
MAX_JSON_BYTES: Final = 3 * MAX_UPLOAD_BYTES
#: Seconds the "restarting" page waits before it goes back to the panel.
COME_BACK_AFTER_S: Final = 5


class UploadError(ValueError):
    """An upload that cannot even be handed to the certificate checks (missing, too large)."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def uptime_text(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days} d {clock}" if days else clock


def certificate_json(info: CertificateInfo) -> dict[str, object]:
    return {
        "subject": info.subject,
        "dns_names": list(info.dns_names),
        "ip_addresses": list(info.ip_addresses),
        "not_before": info.not_before.isoformat(),
        "not_after": info.not_after.isoformat(),
        "sha256_fingerprint": info.sha256_fingerprint,
        "is_self_signed": info.is_self_signed,
        "is_owner_installed": info.is_owner_installed,
    }


def _uptime_s(request: Request) -> float:
    return time.monotonic() - context_of(request).started_at


async def maintenance_page(request: Request) -> Response:
    """Version, uptime, restart, and the HTTPS certificate."""
    return await render_maintenance(request)


async def render_maintenance(
    request: Request, *, notice: str = "", error: str = "", status_code: int = 200
) -> Response:
    served = context_of(request).certificate
    info: CertificateInfo | None = None
    certificate_problem = ""
    if served is None:
        certificate_problem = "This server does not present a PanelHub certificate."
    else:
        try:
            info = await served.info()
        except CertificateError as exc:
            certificate_problem = str(exc)
    return render(
        request,
        "maintenance.html",
        {
            "version": panelhub.__version__,
            "uptime": uptime_text(_uptime_s(request)),
            "certificate": info,
            "certificate_problem": certificate_problem,
            "can_change_certificate": served is not None,
            "max_upload_kib": MAX_UPLOAD_BYTES // 1024,
            "can_install": slots.slots_dir_of_process() is not None,
            "pending_update": _pending_update(),
            "max_bundle_mib": bundle.MAX_BUNDLE_BYTES // 1024 // 1024,
            "notice": notice,
            "error": error,
        },
        status_code=status_code,
    )


def _pending_update() -> str:
    """The slot installed and waiting for a restart into it, or ""."""
    slots_dir = slots.slots_dir_of_process()
    trial = None if slots_dir is None else slots.target_of(slots_dir, slots.TRIAL)
    return "" if trial is None else trial.name


async def restart(request: Request) -> Response:
    """Restart the service: the gateway and the pages stop, read their settings and start."""
    await _request_restart(request)
    return render(request, "restarting.html", {"come_back_after_s": COME_BACK_AFTER_S})


async def restart_api(request: Request) -> Response:
    """Restart the service shortly after this answer; sessions end with it."""
    await _request_restart(request)
    return JSONResponse({"restarting": True}, status_code=202)


async def _request_restart(request: Request) -> None:
    context = context_of(request)
    await context.audit.record(
        AuditEvent.SERVICE_CHANGED,
        outcome=Outcome.SUCCESS,
        user=session_of(request).user_name,
        source=client_address(request),
        interface="web",
        details={"action": "restart"},
    )
    context.control.request_restart()


async def system_api(request: Request) -> Response:
    """The version and how long the service has been running (seconds)."""
    return JSONResponse({"version": panelhub.__version__, "uptime_s": int(_uptime_s(request))})


# --- certificate ---------------------------------------------------------------------------


async def install_page(request: Request) -> Response:
    """Install the owner's certificate chain and key from the maintenance page's form."""
    served = context_of(request).certificate
    if served is None:
        return await render_maintenance(
            request, error="No certificate can be changed here.", status_code=404
        )
    try:
        cert_pem, key_pem = await _checked(request, _uploads(request))
        info = await _install(request, served, cert_pem, key_pem)
    except (UploadError, CertificateError) as exc:
        if isinstance(exc, CertificateError) and exc.reason == CertificateProblem.UNUSABLE:
            return await render_maintenance(
                request, error=f"Installation failed: {exc}.", status_code=500
            )
        return await render_maintenance(
            request,
            error=f"The certificate was not installed: {exc}. The current one stays in use.",
            status_code=400,
        )
    return await render_maintenance(
        request, notice=f"Certificate installed and in use: {info.sha256_fingerprint}."
    )


async def revert_page(request: Request) -> Response:
    """Go back to a new self-signed certificate (from the maintenance page)."""
    served = context_of(request).certificate
    if served is None:
        return await render_maintenance(
            request, error="No certificate can be changed here.", status_code=404
        )
    try:
        info = await _revert(request, served)
    except CertificateError as exc:
        return await render_maintenance(
            request, error=f"Nothing was changed: {exc}.", status_code=400
        )
    return await render_maintenance(
        request, notice=f"A new self-signed certificate is in use: {info.sha256_fingerprint}."
    )


async def get_certificate(request: Request) -> Response:
    """The certificate the HTTPS server presents."""
    served = context_of(request).certificate
    if served is None:
        return _no_certificate()
    try:
        info = await served.info()
    except CertificateError as exc:
        return JSONResponse({"error": "certificate_unreadable", "message": str(exc)}, 500)
    return JSONResponse(certificate_json(info))


async def put_certificate(request: Request) -> Response:
    """Install the owner's chain and key: JSON ``certificate`` and ``key`` (PEM), or multipart."""
    served = context_of(request).certificate
    if served is None:
        return _no_certificate()
    try:
        is_multipart = request.headers.get("content-type", "").startswith("multipart/form-data")
        reading = _uploads(request) if is_multipart else _json_pems(request)
        cert_pem, key_pem = await _checked(request, reading)
        info = await _install(request, served, cert_pem, key_pem)
    except UploadError as exc:
        status = 413 if exc.too_large else 400
        return JSONResponse({"error": "bad_upload", "message": str(exc)}, status_code=status)
    except CertificateError as exc:
        return _refused(exc)
    return JSONResponse(certificate_json(info))


async def delete_certificate(request: Request) -> Response:
    """Go back to a new self-signed certificate; HSTS stops with it."""
    served = context_of(request).certificate
    if served is None:
        return _no_certificate()
    try:
        info = await _revert(request, served)
    except CertificateError as exc:
        return _refused(exc)
    return JSONResponse(certificate_json(info))


def _refused(exc: CertificateError) -> Response:
    # UNUSABLE: the checks passed but the TLS layer could not load the files; not the caller's
    # mistake.
    status = 500 if exc.reason == CertificateProblem.UNUSABLE else 400
    body = {"error": "certificate_refused", "reason": str(exc.reason), "message": str(exc)}
    return JSONResponse(body, status_code=status)


def _no_certificate() -> Response:
    return JSONResponse({"error": "no_certificate"}, status_code=404)


async def _checked(
    request: Request, reading: Coroutine[Any, Any, tuple[bytes, bytes]]
) -> tuple[bytes, bytes]:
    """The two PEM texts; an upload refused before the checks is audited like one after."""
    try:
        return await reading
    except UploadError as exc:
        reason = "too_large" if exc.too_large else "bad_upload"
        await _audit_certificate(request, Outcome.FAILURE, {"action": "install",
                                                            "reason": reason})  # fmt: skip
        raise


async def _install(
    request: Request, served: ServedCertificate, cert_pem: bytes, key_pem: bytes
) -> CertificateInfo:
    try:
        info = await served.install(cert_pem, key_pem)
    except CertificateError as exc:
        await _audit_certificate(request, Outcome.FAILURE, {"action": "install",
                                                            "reason": str(exc.reason)})  # fmt: skip
        raise
    context_of(request).send_hsts = info.is_owner_installed
    await _audit_certificate(request, Outcome.SUCCESS, _described("install", info))
    return info


async def _revert(request: Request, served: ServedCertificate) -> CertificateInfo:
    try:
        info = await served.revert()
    except CertificateError as exc:
        await _audit_certificate(request, Outcome.FAILURE, {"action": "revert",
                                                            "reason": str(exc.reason)})  # fmt: skip
        raise
    context_of(request).send_hsts = info.is_owner_installed
    await _audit_certificate(request, Outcome.SUCCESS, _described("revert", info))
    return info


def _described(action: str, info: CertificateInfo) -> dict[str, DetailValue]:
    return {
        "action": action,
        "subject": info.subject,
        "fingerprint": info.sha256_fingerprint,
        "not_after": info.not_after.isoformat(),
    }


async def _audit_certificate(
    request: Request, outcome: Outcome, details: dict[str, DetailValue]
) -> None:
    await context_of(request).audit.record(
        AuditEvent.CERTIFICATE_CHANGED,
        outcome=outcome,
        user=session_of(request).user_name,
        source=client_address(request),
        interface="web",
        details=details,
    )


async def _uploads(request: Request) -> tuple[bytes, bytes]:
    form = await request.form(max_files=2, max_fields=4, max_part_size=MAX_UPLOAD_BYTES)
    try:
        cert_pem = await _upload(form.get("certificate"), "certificate")
        key_pem = await _upload(form.get("key"), "private key")
    finally:
        await form.close()  # the uploads' temporary files, key material included
    return cert_pem, key_pem


async def _upload(value: UploadFile | str | None, what: str) -> bytes:
    if isinstance(value, UploadFile):
        data = await value.read(MAX_UPLOAD_BYTES + 1)
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
    else:
        data = b""
    if not data.strip():
        raise UploadError(f"no {what} file was given")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"the {what} is larger than {MAX_UPLOAD_BYTES // 1024} KiB", too_large=True
        )
    return data


async def _json_pems(request: Request) -> tuple[bytes, bytes]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise UploadError(
                f"the request is larger than {MAX_JSON_BYTES // 1024} KiB", too_large=True
            )
    try:
        document = parse_json(bytes(body))
    except BodyError:
        raise UploadError("the body is not JSON") from None
    if not isinstance(document, dict):
        raise UploadError('the body must be {"certificate": "<PEM>", "key": "<PEM>"}')
    values = document.get("certificate"), document.get("key")
    pems = [await _upload(v if isinstance(v, str) else None, w)
            for v, w in zip(values, ("certificate", "private key"), strict=True)]  # fmt: skip
    return pems[0], pems[1]


def routes() -> list[BaseRoute]:
    return [
        page("/maintenance", maintenance_page, access=Access.ADMIN),
        page("/maintenance/restart", restart, access=Access.ADMIN, methods=["POST"]),
        page("/maintenance/certificate", install_page, access=Access.ADMIN, methods=["POST"]),
        page("/maintenance/certificate/revert", revert_page, access=Access.ADMIN, methods=["POST"]),
        api("/api/system", system_api, access=Access.ADMIN),
        api("/api/restart", restart_api, access=Access.ADMIN, methods=["POST"]),
        api("/api/certificate", get_certificate, access=Access.ADMIN),
        api("/api/certificate", put_certificate, access=Access.ADMIN, methods=["PUT"]),
        api("/api/certificate", delete_certificate, access=Access.ADMIN, methods=["DELETE"]),
    ]
