"""The logs page and the audit API: read, filter, verify and download the audit log.

Admins only. The audit log names who logged in from which address and when, and the failed
attempts against each account: for a viewer that is a map of the people and the attack
surface, and SECURITY.md gives downloading it to admins ("download as CSV and JSON by an
admin"). Operators export process data, not the security record.

Reading the log is not itself audited (every page view would bury the events it shows);
taking a copy is: each download adds an ``audit.exported`` record with the format and the
filters chosen from fixed lists. The free-text filters (user, source) are recorded as set or
not, never as typed: a password typed into the wrong box must not end up in the log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute

from panelhub.security.audit import (
    MAX_QUERY_LIMIT,
    AuditEvent,
    AuditFilter,
    AuditLog,
    AuditRecord,
    ChainIntact,
    DetailValue,
    Outcome,
)
from panelhub.web.access import Access, api, client_address, context_of, page, session_of
from panelhub.web.templating import render

#: Records on one page of the logs page (the API takes ``limit`` up to ``MAX_QUERY_LIMIT``).
PAGE_SIZE: Final = 50
DEFAULT_API_LIMIT: Final = 100
#: Longest free-text filter read: no record field is longer (``audit.MAX_TEXT_CHARS``).
MAX_FILTER_CHARS: Final = 200
FILTER_FIELDS: Final = ("since", "until", "event", "user", "outcome", "source")
EXPORT_TYPES: Final = {"csv": "text/csv", "json": "application/json"}


class FilterError(ValueError):
    """A query parameter that selects nothing sensible; the message says which and why."""


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    filters: AuditFilter
    #: The parameters as given (empty ones dropped): the page keeps them in its links.
    given: Mapping[str, str]


def parse_query(params: Mapping[str, str]) -> Query:
    """The filters from a query string; times without a zone are UTC, as the page says.

    Raises:
        FilterError: an unreadable time, an unknown event or outcome.

    """
    given = {
        name: params[name].strip()[:MAX_FILTER_CHARS]
        for name in FILTER_FIELDS
        if params.get(name, "").strip()
    }
    try:
        event = AuditEvent(given["event"]) if "event" in given else None
    except ValueError:
        raise FilterError(f"unknown event type {given['event']!r}") from None
    try:
        outcome = Outcome(given["outcome"]) if "outcome" in given else None
    except ValueError:
        raise FilterError("outcome must be 'success' or 'failure'") from None
    since, until = _time(given, "since"), _time(given, "until")
    if since is not None and until is not None and since >= until:
        raise FilterError("'from' must be before 'to'")
    filters = AuditFilter(
        since=since,
        until=until,
        event=event,
        user=given.get("user"),
        outcome=outcome,
        source=given.get("source"),
    )
    return Query(filters, given)


def _time(given: Mapping[str, str], name: str) -> dt.datetime | None:
    text = given.get(name)
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
        if moment.utcoffset() is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)  # 0001-01-01T00:00+05:00 falls out of range here
    except (ValueError, OverflowError):
        raise FilterError(
            f"{name!r} is not a date and time (YYYY-MM-DDTHH:MM, UTC): {text!r}"
        ) from None


#: The largest integer SQLite stores, and its length in digits.
MAX_SQL_INT: Final = 2**63 - 1
MAX_INT_DIGITS: Final = len(str(MAX_SQL_INT))


def _positive_int(params: Mapping[str, str], name: str, default: int | None) -> int | None:
    text = params.get(name, "").strip()
    if not text:
        return default
    # Digits first: int() of thousands of digits is refused (or slow), SQLite holds 63 bits.
    if not text.isdigit() or len(text) > MAX_INT_DIGITS or not 1 <= int(text) <= MAX_SQL_INT:
        raise FilterError(f"{name!r} must be a whole number from 1 to {MAX_SQL_INT}")
    return int(text)


def record_json(record: AuditRecord) -> dict[str, object]:
    item = dataclasses.asdict(record)
    item["details"] = dict(record.details)
    return item


def details_text(details: Mapping[str, DetailValue]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(details.items()))


async def logs_page(request: Request) -> Response:
    """The audit log, newest first, with filters, downloads and the chain check."""
    audit = context_of(request).audit
    status = 200
    error = ""
    try:
        query = parse_query(request.query_params)
        before = _positive_int(request.query_params, "before", None)
    except FilterError as exc:
        query, before, error, status = Query(AuditFilter(), {}), None, str(exc), 400
    records = [] if error else await audit.query(query.filters, limit=PAGE_SIZE, before_id=before)
    older = (
        urllib.parse.urlencode({**query.given, "before": records[-1].id})
        if len(records) == PAGE_SIZE
        else None
    )
    verify = await audit.verify() if request.query_params.get("verify") else None
    return render(
        request,
        "logs.html",
        {
            "records": records,
            "details_text": details_text,
            "given": query.given,
            "filter_query": urllib.parse.urlencode(query.given),
            "older_query": older,
            "is_first_page": before is None,
            "events": [event.value for event in AuditEvent],
            "outcomes": [outcome.value for outcome in Outcome],
            "verify": verify,
            "chain_intact": isinstance(verify, ChainIntact),
            "error": error,
        },
        status_code=status,
    )


async def list_records(request: Request) -> Response:
    """Audit records, newest first; pass ``next_before`` back as ``before`` for older ones."""
    try:
        query = parse_query(request.query_params)
        before = _positive_int(request.query_params, "before", None)
        limit = _positive_int(request.query_params, "limit", DEFAULT_API_LIMIT)
    except FilterError as exc:
        return JSONResponse({"error": "invalid_query", "message": str(exc)}, status_code=400)
    if limit is None or limit > MAX_QUERY_LIMIT:
        message = f"'limit' must be between 1 and {MAX_QUERY_LIMIT}"
        return JSONResponse({"error": "invalid_query", "message": message}, status_code=400)
    records = await context_of(request).audit.query(query.filters, limit=limit, before_id=before)
    next_before = records[-1].id if len(records) == limit else None
    return JSONResponse({"records": [record_json(r) for r in records], "next_before": next_before})


async def verify_chain(request: Request) -> Response:
    """Check the audit log's hash chain: intact, or the first edited, deleted or moved record."""
    result = await context_of(request).audit.verify()
    if isinstance(result, ChainIntact):
        return JSONResponse({"intact": True, "count": result.count})
    return JSONResponse({"intact": False, "record_id": result.record_id, "reason": result.reason})


async def export_csv(request: Request) -> Response:
    """Download the filtered audit records as CSV, oldest first."""
    return await _export(request, "csv")


async def export_json(request: Request) -> Response:
    """Download the filtered audit records as a JSON array, oldest first."""
    return await _export(request, "json")


async def _export(request: Request, kind: str) -> Response:
    context = context_of(request)
    try:
        query = parse_query(request.query_params)
    except FilterError as exc:
        return JSONResponse({"error": "invalid_query", "message": str(exc)}, status_code=400)
    now = dt.datetime.fromtimestamp(context.clock(), dt.UTC)
    filename = f"panelhub-audit-{now:%Y%m%d-%H%M%S}.{kind}"
    chunks: Iterator[str] = iter(())
    if request.method != "HEAD":  # a HEAD takes no copy: nothing to record, nothing to read
        await context.audit.record(
            AuditEvent.AUDIT_EXPORTED,
            outcome=Outcome.SUCCESS,
            user=session_of(request).user_name,
            source=client_address(request),
            interface="web",
            details=_export_details(kind, query.filters),
        )
        chunks = _chunks(context.audit, kind, query.filters)
    return StreamingResponse(
        chunks,
        media_type=EXPORT_TYPES[kind],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _chunks(audit: AuditLog, kind: str, filters: AuditFilter) -> Iterator[str]:
    # A plain iterator: Starlette runs it in a worker thread, as the export's reads block.
    return audit.export_csv(filters) if kind == "csv" else audit.export_json(filters)


def _export_details(kind: str, filters: AuditFilter) -> dict[str, DetailValue]:
    return {
        "format": kind,
        "since": None if filters.since is None else filters.since.isoformat(),
        "until": None if filters.until is None else filters.until.isoformat(),
        "event": filters.event,
        "outcome": filters.outcome,
        "user_filter": filters.user is not None,
        "source_filter": filters.source is not None,
    }


def routes() -> list[BaseRoute]:
    return [
        page("/logs", logs_page, access=Access.ADMIN),
        page("/logs/export.csv", export_csv, access=Access.ADMIN),
        page("/logs/export.json", export_json, access=Access.ADMIN),
        api("/api/audit", list_records, access=Access.ADMIN),
        api("/api/audit/verify", verify_chain, access=Access.ADMIN),
        api("/api/audit/export.csv", export_csv, access=Access.ADMIN),
        api("/api/audit/export.json", export_json, access=Access.ADMIN),
    ]
