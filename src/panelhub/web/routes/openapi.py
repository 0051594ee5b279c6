"""The OpenAPI 3.1 document of the JSON API, built from the application's own route table.

Built, not written: every ``api(...)`` route is in it with its methods, path parameters,
required role and the first line of its endpoint's docstring, so a new route appears without
anyone remembering to document it (a test checks the table and the document agree).

Only logged-in users may read it (``Access.VIEWER``): it is a map of everything the panel can be
asked to do, and nobody without an account needs one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from starlette.convertors import FloatConvertor, IntegerConvertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

import panelhub
from panelhub.web.access import SAFE_METHODS, SESSION_COOKIE, Access, GuardedRoute, api

OPENAPI_VERSION: Final = "3.1.0"
_ERROR: Final = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}


def build_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI document for the ``api`` routes among ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, GuardedRoute) or not route.is_api:
            continue
        item = paths.setdefault(route.path_format, {})
        for method in sorted(route.methods or ()):
            if method == "HEAD":  # answered with GET, as every GET route is
                continue
            item[method.lower()] = _operation(route, method)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "PanelHub API",
            "version": panelhub.__version__,
            "description": (
                "Log in through the login page: the API takes the same session cookie. "
                "Every method but GET needs the session's CSRF token (the one in the pages' "
                "forms) in the X-CSRF-Token header. Each operation names the least role it "
                "needs in x-panelhub-access."
            ),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
            },
            "schemas": {"Error": _ERROR},
        },
    }


def _operation(route: GuardedRoute, method: str) -> dict[str, Any]:
    doc = (route.endpoint.__doc__ or "").strip()
    summary = doc.splitlines()[0] if doc else route.name
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}_{route.name}",
        "summary": summary,
        "x-panelhub-access": route.access.value,
        "responses": {"200": {"description": "Success"}},
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _schema(convertor)}
        for name, convertor in route.param_convertors.items()
    ]
    if parameters:
        operation["parameters"] = parameters
    if route.access is Access.PUBLIC:
        operation["security"] = []
        return operation
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    operation["security"] = (
        [{"session": []}] if method in SAFE_METHODS else [{"session": [], "csrf": []}]
    )
    operation["description"] = f"Needs a session with role {_role(route.access)}."
    operation["responses"]["401"] = {"description": "No live session", "content": error}
    operation["responses"]["403"] = {
        "description": "Role too low, password change pending, or CSRF token missing",
        "content": error,
    }
    return operation


def _role(access: Access) -> str:
    if access is Access.PASSWORD_CHANGE:
        return "any (even before the initial password is changed)"
    return f"{access.value} or above" if access is not Access.ADMIN else "admin"


def _schema(convertor: object) -> dict[str, str]:
    if isinstance(convertor, IntegerConvertor):
        return {"type": "integer"}
    if isinstance(convertor, FloatConvertor):
        return {"type": "number"}
    return {"type": "string"}


async def openapi_document(request: Request) -> Response:
    """This document: the JSON API described in OpenAPI 3.1."""
    return JSONResponse(build_document(request.app.routes))


def routes() -> list[BaseRoute]:
    return [api("/api/openapi.json", openapi_document, access=Access.VIEWER)]
