"""Jinja2 templates from the package, autoescaped; every page gets its session (or None)."""

from __future__ import annotations

from typing import Any, Final

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

TEMPLATES: Final = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.PackageLoader("panelhub.web", "templates"),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,  # a typo in a template fails its test, not silently
    )
)


def render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    session = getattr(request.state, "session", None)
    return TEMPLATES.TemplateResponse(
        request, name, {"session": session, **context}, status_code=status_code
    )
