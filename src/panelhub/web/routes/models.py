"""Device models: the built-in templates and the custom ones an admin imports or writes.

A model is a TOML file (``docs/device-templates.md``). Importing one (a file, or text typed
or pasted, e.g. a built-in copied and changed) validates it as a whole: every problem is
listed with its line, and nothing is kept until there is none. Saving and deleting are
audited as configuration changes.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from panelhub.devices.catalog import TEMPLATE_SUFFIX
from panelhub.devices.loader import MAX_TEMPLATE_BYTES
from panelhub.errors import DeviceError, TemplateError
from panelhub.security.audit import AuditEvent, Outcome
from panelhub.web.access import Access, client_address, context_of, datalog_of, page, session_of
from panelhub.web.templating import render

PAGE: Final = "/models"
MODELS_DIR: Final = "models"


def _render(
    request: Request, *, problems: tuple[str, ...] = (), text: str = "", status: int = 200
) -> Response:
    catalog = datalog_of(request).catalog
    return render(
        request,
        "models.html",
        {
            "models": sorted(catalog.values(), key=lambda t: (t.vendor, t.model)),
            "custom": set(catalog.custom),
            "problems": problems,
            "text": text,
            "saved": request.query_params.get("saved", ""),
            "can_edit": session_of(request).role == "admin",
        },
        status_code=status,
    )


async def models_page(request: Request) -> Response:
    return _render(request)


def model_text(request: Request, model_id: str) -> str:
    """The model's file as written: the package's for a built-in, the data directory's else."""
    if model_id in datalog_of(request).catalog.custom:
        path = context_of(request).data_dir / MODELS_DIR / f"{model_id}{TEMPLATE_SUFFIX}"
        return path.read_text(encoding="utf-8")
    folder = resources.files("panelhub.devices.templates")
    return (folder / f"{model_id}{TEMPLATE_SUFFIX}").read_text(encoding="utf-8")


async def model_page(request: Request) -> Response:
    model_id = request.path_params["model_id"]
    template = datalog_of(request).catalog.get(model_id)
    if template is None:
        return render(request, "model.html", {"template": None}, status_code=404)
    return render(
        request,
        "model.html",
        {
            "template": template,
            "text": model_text(request, model_id),
            "is_custom": model_id in datalog_of(request).catalog.custom,
            "can_edit": session_of(request).role == "admin",
        },
    )


async def _uploaded_text(request: Request) -> str:
    limits = {"max_files": 1, "max_fields": 4, "max_part_size": MAX_TEMPLATE_BYTES + 1}
    async with request.form(**limits) as form:  # closes the uploaded file's spool
        upload = form.get("file")
        if isinstance(upload, UploadFile) and upload.filename:
            raw = await upload.read(MAX_TEMPLATE_BYTES + 1)
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise TemplateError(
                    "the file is not UTF-8 text",
                    problems=("1: not UTF-8 text: is it a TOML file?",),
                ) from None
        text = form.get("text", "")
        return text if isinstance(text, str) else ""


async def _audit(request: Request, change: str, outcome: Outcome, reason: str = "") -> None:
    context = context_of(request)
    details = {"changed": change} | ({"reason": reason} if reason else {})
    await context.audit.record(AuditEvent.CONFIG_CHANGED, outcome=outcome, details=details,
                               user=session_of(request).user_name,
                               source=client_address(request), interface="web")  # fmt: skip


async def import_model(request: Request) -> Response:
    text = ""
    try:
        text = await _uploaded_text(request)
        template = await datalog_of(request).save_model(text)
    except TemplateError as exc:
        return _render(request, problems=exc.problems or (str(exc),), text=text, status=400)
    await _audit(request, f"models.{template.id} (saved)", Outcome.SUCCESS)
    return RedirectResponse(f"{PAGE}?saved={template.id}", status_code=303)


async def delete_model(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=4)
    model_id = str(form.get("id", ""))
    try:
        await datalog_of(request).delete_model(model_id)
    except DeviceError as exc:
        await _audit(request, f"models.{model_id} (removed)", Outcome.FAILURE, str(exc))
        return _render(request, problems=(str(exc),), status=409)
    await _audit(request, f"models.{model_id} (removed)", Outcome.SUCCESS)
    return RedirectResponse(PAGE, status_code=303)


def routes() -> list[BaseRoute]:
    return [
        page(PAGE, models_page, access=Access.VIEWER),
        page(f"{PAGE}/import", import_model, access=Access.ADMIN, methods=["POST"]),
        page(f"{PAGE}/delete", delete_model, access=Access.ADMIN, methods=["POST"]),
        page(PAGE + "/{model_id:str}", model_page, access=Access.VIEWER),
    ]
