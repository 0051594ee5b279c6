"""Reading request bodies with a size limit, so no client makes the server buffer it all."""

from __future__ import annotations

import json
from typing import Any, Final

from starlette.requests import Request

#: Largest JSON body the API reads; settings and account changes are a few kilobytes.
MAX_JSON_BYTES: Final = 256 * 1024


class BodyError(Exception):
    """A request body that is not read; ``code`` and ``status`` go into the API's answer."""

    def __init__(self, message: str, *, code: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


async def read_json(request: Request, limit: int = MAX_JSON_BYTES) -> Any:  # noqa: ANN401 - JSON
    """The body as JSON.

    Raises:
        BodyError: not JSON (415 for another content type, 400 for bad JSON), or too large
            (413), checked as it arrives rather than after.
    """
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise BodyError("send the body as application/json", code="unsupported_media_type",
                        status=415)  # fmt: skip
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyError(f"the body is larger than {limit} bytes", code="too_large", status=413)
    return parse_json(bytes(body))


def parse_json(body: bytes) -> Any:  # noqa: ANN401 - JSON
    """``body`` as JSON; every way it can fail is a ``BodyError`` (400), never a crash.

    Raises:
        BodyError: not UTF-8, not JSON, or nested deeper than the parser's recursion allows
            (``[[[[...`` a few kilobytes long: a ``RecursionError`` otherwise).
    """
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        message = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise BodyError(
            f"the body is not valid JSON: {message}", code="invalid_json", status=400
        ) from None
