"""The maintenance page's software and state actions: update, backup, restore, factory reset.

Admins only, each audited with its outcome. An update is saved to a private temporary file
(bounded by ``bundle.MAX_BUNDLE_BYTES``) and every check runs before the new slot is written;
it runs after a restart, which exits to the launcher. A backup is made in memory (it is
small) and sent as a download. A restore replaces the state all at once, then restarts the
service, which ends every session: everyone logs in again. A factory reset needs the word
``ERASE`` typed, and happens while the service is stopped, between two lives of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

import panelhub
from panelhub.devices.catalog import custom_model_id
from panelhub.errors import BackupError, BundleError, WeakPasswordError
from panelhub.security import backup, bundle, firmware, restore, slots
from panelhub.security.audit import AuditEvent, DetailValue, Outcome
from panelhub.web.access import Access, client_address, context_of, page, session_of
from panelhub.web.context import NextStart
from panelhub.web.routes.maintenance import COME_BACK_AFTER_S, render_maintenance
from panelhub.web.templating import render

#: What the reset form asks to have typed, as the console command does.
RESET_WORD: Final = "ERASE"
_CHUNK: Final = 1024 * 1024
NOT_A_SLOT: Final = "not installable here"


async def _audit(
    request: Request, event: AuditEvent, outcome: Outcome, **details: DetailValue
) -> None:
    await context_of(request).audit.record(
        event, outcome=outcome, user=session_of(request).user_name,
        source=client_address(request), interface="web", details=details,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def _uploaded(form: FormData, field: str, *, limit: int) -> AsyncIterator[Path]:
    """The upload in ``field`` as a file in a private temporary directory, removed after."""
    with tempfile.TemporaryDirectory(prefix="panelhub-upload-") as work:
        path = Path(work) / field
        await _save_upload(form.get(field), path, limit=limit)
        yield path


async def _save_upload(value: UploadFile | str | None, path: Path, *, limit: int) -> None:
    if not isinstance(value, UploadFile):
        raise BundleError("no file was given", reason="no file")
    size = 0
    with path.open("xb") as out:
        while chunk := await value.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise BundleError(
                    f"the file is larger than {limit // 1024 // 1024} MiB", reason=bundle.TOO_LARGE
                )
            out.write(chunk)


# --- update --------------------------------------------------------------------------------


async def firmware_page(request: Request) -> Response:
    """Check an uploaded bundle and install it into a new slot, or say why not."""
    context = context_of(request)
    form = await request.form(max_files=1, max_fields=2)
    try:
        async with _uploaded(form, "bundle", limit=bundle.MAX_BUNDLE_BYTES) as path:
            verified, slot = await asyncio.to_thread(_install, path, context.data_dir)
    except BundleError as exc:
        await _audit(request, AuditEvent.FIRMWARE_REJECTED, Outcome.FAILURE, reason=exc.reason,
                     file=_file_name(form))  # fmt: skip
        return await render_maintenance(
            request,
            error=f"Update refused: {exc.reason}. {exc}. Nothing was changed.",
            status_code=400,
        )
    finally:
        await form.close()
    version = str(verified.manifest.version)
    await _audit(request, AuditEvent.FIRMWARE_ACCEPTED, Outcome.SUCCESS, version=version,
                 signer=verified.header.key_id, file=_file_name(form))  # fmt: skip
    return await render_maintenance(
        request,
        notice=f"PanelHub {version} is installed in {slot.name}. It runs after "
        "'Restart into the update'; if it does not come up, this version runs again.",
    )


def _install(path: Path, data_dir: Path) -> tuple[bundle.VerifiedBundle, Path]:
    slots_dir = slots.slots_dir_of_process()
    anchors = [anchor.key for anchor in firmware.trust_anchors(data_dir)]
    verified = bundle.verify_bundle(path, anchors, installed=slots.installed_version(slots_dir))
    if slots_dir is None:
        raise BundleError(
            f"{NOT_A_SLOT}: this PanelHub does not run from a software slot (a development "
            "install); the bundle is good",
            reason=NOT_A_SLOT,
        )
    return verified, slots.install(verified, slots_dir)


def _file_name(form: FormData) -> str:
    value = form.get("bundle")
    return (value.filename or "")[:100] if isinstance(value, UploadFile) else ""


async def update_restart(request: Request) -> Response:
    """Exit to the launcher, which starts the newly installed slot (or the old one again)."""
    await _audit(request, AuditEvent.SERVICE_CHANGED, Outcome.SUCCESS, action="restart-update")
    context_of(request).control.request_restart(NextStart.UPDATE)
    return render(request, "restarting.html", {"come_back_after_s": COME_BACK_AFTER_S * 3})


# --- backup and restore --------------------------------------------------------------------


async def backup_download(request: Request) -> Response:
    """An encrypted backup of this panel's state, as a file to keep."""
    context = context_of(request)
    form = await request.form(max_files=0, max_fields=3)
    password, again = str(form.get("password", "")), str(form.get("password_again", ""))
    if password != again:
        return await render_maintenance(
            request, error="No backup made: the two passwords differ.", status_code=400
        )
    try:
        backup.check_backup_password(password)
        contents = await asyncio.to_thread(restore.take, context.data_dir, context.control.settings)
        now = dt.datetime.now(dt.UTC)
        data = await asyncio.to_thread(
            backup.seal, contents, password, product_version=panelhub.__version__, now=now
        )
    except WeakPasswordError as exc:
        return await render_maintenance(request, error=f"No backup made: {exc}.", status_code=400)
    name = f"panelhub-{now:%Y%m%d-%H%M}.backup"
    await _audit(request, AuditEvent.BACKUP_CREATED, Outcome.SUCCESS, file=name)
    headers = {"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"}
    return Response(data, media_type="application/octet-stream", headers=headers)


async def restore_page(request: Request) -> Response:
    """Replace this panel's state with a backup's, then restart (everyone logs in again)."""
    context = context_of(request)
    form = await request.form(max_files=1, max_fields=3)
    try:
        try:
            async with _uploaded(form, "backup", limit=backup.MAX_BACKUP_BYTES) as path:
                data = path.read_bytes()
        except BundleError as exc:  # no file, or too large
            raise BackupError(str(exc), reason=exc.reason) from None
        header = await asyncio.to_thread(_restore, data, str(form.get("password", "")), request)
    except BackupError as exc:
        await _audit(request, AuditEvent.RESTORE_REFUSED, Outcome.FAILURE, reason=exc.reason)
        return await render_maintenance(
            request, error=f"Nothing was restored: {exc.reason}. {exc}.", status_code=400
        )
    finally:
        await form.close()
    await _audit(request, AuditEvent.RESTORE_OK, Outcome.SUCCESS, made=header.created,
                 version=header.product_version)  # fmt: skip
    context.control.request_restart(NextStart.RESTART)
    reason = "The backup was restored: log in again."
    return render(
        request, "restarting.html", {"come_back_after_s": COME_BACK_AFTER_S, "reason": reason}
    )


def _restore(data: bytes, password: str, request: Request) -> backup.BackupHeader:
    context = context_of(request)
    header, contents = backup.open_backup(data, password)
    snapshot = restore.parse(contents, model_id_of=custom_model_id)
    restore.apply(snapshot, context.data_dir, config_path=context.control.config_path,
                  settings=context.control.settings)  # fmt: skip
    return header


# --- factory reset -------------------------------------------------------------------------


async def reset_page(request: Request) -> Response:
    """Erase every file of the data directory, once the word is typed; then start as new."""
    form = await request.form(max_files=0, max_fields=2)
    if str(form.get("confirm", "")).strip() != RESET_WORD:
        return await render_maintenance(
            request, error=f"Nothing was erased: type {RESET_WORD} to confirm.", status_code=400
        )
    await _audit(request, AuditEvent.FACTORY_RESET, Outcome.SUCCESS)
    context_of(request).control.request_restart(NextStart.FACTORY_RESET)
    return render(request, "restarting.html", {
        "come_back_after_s": COME_BACK_AFTER_S * 2,
        "reason": "Every file of the panel's data is being erased. The new initial password "
        "is shown on the console."})  # fmt: skip


def routes() -> list[BaseRoute]:
    return [
        page("/maintenance/firmware", firmware_page, access=Access.ADMIN, methods=["POST"]),
        page(
            "/maintenance/firmware/restart", update_restart, access=Access.ADMIN, methods=["POST"]
        ),
        page("/maintenance/backup", backup_download, access=Access.ADMIN, methods=["POST"]),
        page("/maintenance/restore", restore_page, access=Access.ADMIN, methods=["POST"]),
        page("/maintenance/reset", reset_page, access=Access.ADMIN, methods=["POST"]),
    ]
