"""The logs page and the audit API as an admin uses them: filters, pages, downloads, verify."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re

import pytest
from starlette.testclient import TestClient

from panelhub.security.accounts import Role
from panelhub.security.audit import AuditEvent, AuditFilter, Outcome
from tests.security.test_audit import tamper
from tests.web.browsers import admin_browser, browser_of
from tests.web.conftest import Web

ROW = re.compile(r'<tr class="outcome-(\w+)"><td>(\d+)</td>')


@pytest.fixture
def admin(web: Web) -> TestClient:
    return admin_browser(web)


def failed_logins(web: Web) -> None:
    """Two wrong passwords for admin from 192.0.2.7, one unknown name from 198.51.100.9."""
    attacker = web.new_client("192.0.2.7")
    for _ in range(2):
        assert web.login("admin", "not-the-password", attacker)[0].status_code == 401
    stranger = web.new_client("198.51.100.9")
    assert web.login("Secret-Typed-As-Name1", "x", stranger)[0].status_code == 401


def shown_ids(page: str) -> list[int]:
    return [int(m.group(2)) for m in ROW.finditer(page)]


def test_failed_logins_are_on_the_page_with_user_source_and_outcome(web, admin):
    failed_logins(web)
    page = admin.get("/logs", params={"event": "login.failed"})
    assert page.status_code == 200
    rows = re.findall(r"<tr class=\"outcome-failure\">(.*?)</tr>", page.text, re.S)
    assert len(rows) == 3
    assert sum("<td>admin</td><td>192.0.2.7</td>" in row for row in rows) == 2
    # An unknown name is shown as its label, never as typed (it may be a password).
    assert any(
        re.search(r"<td>unknown#[0-9a-f]{12}</td><td>198.51.100.9</td>", row) for row in rows
    )
    assert "Secret-Typed-As-Name1" not in page.text
    assert '<a href="/logs">Logs</a>' in page.text
    assert "<script" not in page.text
    assert "style=" not in page.text
    assert "<style" not in page.text


def test_each_filter_selects_its_records(web, admin):
    failed_logins(web)

    def ids(**params: str) -> list[int]:
        page = admin.get("/logs", params=params)
        assert page.status_code == 200, page.text
        return shown_ids(page.text)

    everything = asyncio.run(web.audit.query(limit=1000))
    assert ids() == [r.id for r in everything]  # newest first
    by_source = ids(source="192.0.2.7")
    assert len(by_source) == 2
    assert ids(source="192.0.2.7", user="admin", outcome="failure") == by_source
    assert ids(user="admin", outcome="success") == [
        r.id for r in everything if r.user == "admin" and r.outcome == "success"
    ]
    assert ids(event="password.changed") == [
        r.id for r in everything if r.event == "password.changed"
    ]
    # From/to: the record in the middle is the first one from its own time on.
    middle = everything[len(everything) // 2]
    since = ids(since=middle.time.removesuffix("Z"))
    assert since == [r.id for r in everything if r.time >= middle.time]
    until = ids(until=middle.time)  # "Z" accepted, the bound itself excluded
    assert until == [r.id for r in everything if r.time < middle.time]
    assert ids(source="203.0.113.1") == []


def test_bad_filters_say_what_is_wrong(admin):
    page = admin.get("/logs", params={"event": "no.such.event"})
    assert page.status_code == 400
    assert "unknown event type" in page.text
    page = admin.get("/logs", params={"since": "yesterday"})
    assert page.status_code == 400
    assert "not a date and time" in page.text
    api = admin.get("/api/audit", params={"outcome": "maybe"})
    assert api.status_code == 400
    assert api.json()["error"] == "invalid_query"
    assert admin.get("/api/audit", params={"limit": "0"}).status_code == 400
    assert admin.get("/api/audit", params={"limit": "1001"}).status_code == 400


@pytest.mark.parametrize(
    "params",
    [{"limit": "9" * 5000}, {"before": str(10**30)}, {"since": "0001-01-01T00:00+05:00"},
     {"until": "9999-12-31T23:59-05:00"}],
)  # fmt: skip
def test_out_of_range_filters_are_refused_not_crashed_on(admin, params):
    assert admin.get("/api/audit", params=params).json()["error"] == "invalid_query"
    if "limit" not in params:  # the page has a fixed page size
        assert admin.get("/logs", params=params).status_code == 400


def test_pages_go_back_in_time_without_gaps_or_repeats(web, admin):
    async def fill() -> None:
        for n in range(120):
            await web.audit.record(AuditEvent.CONFIG_CHANGED, outcome=Outcome.SUCCESS,
                                   user="admin", source="127.0.0.1", interface="web",
                                   details={"setting": f"s{n}"})  # fmt: skip

    asyncio.run(fill())
    seen: list[int] = []
    url = "/logs?event=config.changed"
    while True:
        page = admin.get(url)
        seen += shown_ids(page.text)
        older = re.search(r'<a id="older" href="([^"]+)"', page.text)
        if older is None:
            break
        url = older.group(1).replace("&amp;", "&")
        assert "event=config.changed" in url
    assert len(seen) == 120
    assert seen == sorted(seen, reverse=True)
    assert len(set(seen)) == 120


def test_api_lists_filtered_records_page_by_page(web, admin):
    failed_logins(web)
    first = admin.get("/api/audit", params={"outcome": "failure", "limit": "2"}).json()
    assert [r["source"] for r in first["records"]] == ["198.51.100.9", "192.0.2.7"]
    assert first["records"][1]["user"] == "admin"
    assert first["records"][1]["event"] == "login.failed"
    older = {"outcome": "failure", "limit": "2", "before": str(first["next_before"])}
    second = admin.get("/api/audit", params=older).json()
    assert [r["source"] for r in second["records"]] == ["192.0.2.7"]
    assert second["next_before"] is None


def test_csv_download_holds_exactly_the_filtered_records(web, admin):
    failed_logins(web)
    response = admin.get("/logs/export.csv", params={"event": "login.failed"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert re.fullmatch(r'attachment; filename="panelhub-audit-\d{8}-\d{6}\.csv"', disposition)
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["user"], r["source"], r["outcome"]) for r in rows] == [
        ("admin", "192.0.2.7", "failure"),
        ("admin", "192.0.2.7", "failure"),
        (rows[2]["user"], "198.51.100.9", "failure"),
    ]
    assert re.fullmatch(r"unknown#[0-9a-f]{12}", rows[2]["user"])
    assert {r["event"] for r in rows} == {"login.failed"}
    assert "Secret-Typed-As-Name1" not in response.text


def test_json_download_holds_exactly_the_filtered_records(web, admin):
    failed_logins(web)
    response = admin.get("/api/audit/export.json", params={"source": "192.0.2.7"})
    assert response.status_code == 200
    assert response.headers["content-disposition"].endswith('.json"')
    records = response.json()
    assert [(r["event"], r["user"], r["outcome"]) for r in records] == [
        ("login.failed", "admin", "failure"),
        ("login.failed", "admin", "failure"),
    ]
    assert records[0]["id"] < records[1]["id"]  # oldest first, as a log reads
    empty = admin.get("/logs/export.json", params={"source": "203.0.113.1"})
    assert empty.json() == []


def test_downloads_are_audited_without_the_typed_filters(web, admin):
    admin.get("/logs/export.csv", params={"user": "Canary-Typed-Here9", "outcome": "failure"})
    admin.get("/api/audit/export.json")
    exports = asyncio.run(web.audit.query(AuditFilter(event=AuditEvent.AUDIT_EXPORTED)))
    assert [(r.user, r.details["format"]) for r in exports] == [("admin", "json"), ("admin", "csv")]
    assert exports[1].details["outcome"] == "failure"
    assert exports[1].details["user_filter"] is True
    everything = admin.get("/logs/export.csv").text
    assert "Canary-Typed-Here9" not in everything
    # Reading is not audited, nor is a HEAD: only the three downloads above.
    admin.get("/logs")
    admin.get("/api/audit")
    assert admin.head("/logs/export.csv").status_code == 200
    assert len(asyncio.run(web.audit.query(AuditFilter(event=AuditEvent.AUDIT_EXPORTED)))) == 3


def test_verify_shows_an_intact_chain_then_the_first_edited_record(web, admin):
    failed_logins(web)
    page = admin.get("/logs", params={"verify": "1"})
    assert re.search(r"Hash chain intact: \d+ records checked", page.text)
    assert admin.get("/api/audit/verify").json()["intact"] is True
    target = asyncio.run(web.audit.query(AuditFilter(source="192.0.2.7")))[-1]
    tamper(web.context.accounts.db.path,
           ("UPDATE audit_record SET source = '10.0.0.1' WHERE id = ?", (target.id,)))  # fmt: skip
    page = admin.get("/logs", params={"verify": "1"})
    assert f"Hash chain broken at record {target.id}" in page.text
    result = admin.get("/api/audit/verify").json()
    assert (result["intact"], result["record_id"]) == (False, target.id)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_viewers_and_operators_cannot_read_or_download_the_log(web, admin, role):
    client = browser_of(web, f"{role.value}1", role)
    for path in ("/logs", "/logs/export.csv", "/logs/export.json", "/api/audit",
                 "/api/audit/verify", "/api/audit/export.csv",
                 "/api/audit/export.json"):  # fmt: skip
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 403, path
        assert "login.failed" not in response.text
    assert '<a href="/logs">' not in client.get("/").text


def test_time_filters_accept_the_pages_own_format(web, admin):
    now = dt.datetime.now(dt.UTC)
    ahead = (now + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    behind = (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert shown_ids(admin.get("/logs", params={"since": ahead}).text) == []
    assert len(shown_ids(admin.get("/logs", params={"since": behind, "until": ahead}).text)) > 0
