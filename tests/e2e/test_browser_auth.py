"""The vendor guide's security functionality verification, done in a real browser.

Chromium (through Playwright) uses PanelHub's pages over HTTPS as a commissioning engineer
would: web authentication (no password, wrong passwords, the 10-minute and 60-minute locks),
web authorization (bookmarked pages in a private window, logout, the session cookie), the
audit of the failed attempts, pages on another origin posting forms to the panel, and the
Content-Security-Policy holding on every page. The test moves the panel's clock instead of
waiting out the locks.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import urllib.parse
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from panelhub.security.audit import AuditEvent, AuditRecord
from panelhub.web.access import SESSION_COOKIE, Access, GuardedRoute
from panelhub.web.app import routes
from panelhub.web.routes.auth import LOGIN_COOKIE
from tests.e2e.conftest import Console, Panel, Site

NEW_PASSWORD = "Commission#2026"  # noqa: S105 - the engineer's own, chosen at first login
WRONG_PASSWORDS = [f"Wrong#{n:02d}guess" for n in range(20)]
WRONG_CREDENTIALS = "Wrong user name or password."
MINUTE = 60.0


def path_of(page: Page) -> str:
    """The path and query the browser shows, without the origin."""
    parts = urllib.parse.urlsplit(page.url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def submit_login(page: Page, name: str, password: str) -> None:
    """Fill the login form shown and send it with Enter, as a user does; wait for the answer."""
    page.fill("#username", name)
    page.fill("#password", password)
    with page.expect_navigation():
        page.press("#password", "Enter")


def log_in(page: Page, name: str, password: str) -> None:
    page.goto("/login")
    submit_login(page, name, password)


def log_out(page: Page) -> None:
    with page.expect_navigation():
        page.click("form.logout button[type=submit]")
    assert path_of(page) == "/login"


def locked_until(panel: Panel, minutes: int) -> str:
    until = dt.datetime.fromtimestamp(panel.clock.now + minutes * MINUTE, dt.UTC)
    return f"This account is locked until {until:%Y-%m-%d %H:%M} UTC."


def first_login(page: Page, panel: Panel) -> None:
    """The initial password leads only to the change-password page; the change is made there."""
    log_in(page, "admin", panel.initial_password)
    assert path_of(page) == "/password"
    expect(page.locator("#must-change")).to_be_visible()
    page.goto("/")  # nothing else is reachable before the change
    assert path_of(page) == "/password"
    page.fill("#current", panel.initial_password)
    page.fill("#new", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    with page.expect_navigation():
        page.click("form[action='/password'] button[type=submit]")
    assert path_of(page) == "/"
    expect(page.locator("#overview-form")).to_be_visible()
    expect(page.locator(".who")).to_have_text("admin (admin)")


def expect_refused(page: Page, message: str) -> None:
    assert path_of(page).startswith("/login")
    expect(page.locator("#error")).to_have_text(message)
    expect(page.locator("#overview-form")).to_have_count(0)
    assert not any(c["name"] == SESSION_COOKIE for c in page.context.cookies())


def expect_home(page: Page) -> None:
    assert path_of(page) == "/"
    expect(page.locator("#overview-form")).to_be_visible()


def audit_records(panel: Panel) -> list[AuditRecord]:
    return panel.run(panel.audit.query(limit=1000))


def lock_for_ten_minutes(page: Page, panel: Panel) -> str:
    """Guide, web authentication 1 and 2: no password, then wrong ones, 10 in all."""
    page.goto("/login")
    expect(page.locator("#banner")).to_have_text("Authorised personnel only.")
    submit_login(page, "admin", "")
    expect_refused(page, WRONG_CREDENTIALS)
    for password in WRONG_PASSWORDS[:8]:
        submit_login(page, "admin", password)
        expect_refused(page, WRONG_CREDENTIALS)
    expected = locked_until(panel, 10)
    submit_login(page, "admin", WRONG_PASSWORDS[8])  # the 10th failure
    expect_refused(page, expected)
    submit_login(page, "admin", WRONG_PASSWORDS[19])  # while locked: not counted
    expect_refused(page, expected)
    submit_login(page, "admin", NEW_PASSWORD)  # the right password, refused the same way
    expect_refused(page, expected)
    return expected


def test_ten_failed_logins_lock_the_account_for_ten_minutes(page: Page, panel: Panel):
    first_login(page, panel)
    log_out(page)
    expected = lock_for_ten_minutes(page, panel)
    panel.advance(10 * MINUTE - 1)
    submit_login(page, "admin", NEW_PASSWORD)
    expect_refused(page, expected)
    panel.advance(1)
    submit_login(page, "admin", NEW_PASSWORD)
    expect_home(page)


def test_five_more_failures_after_the_first_lock_lock_it_for_an_hour(page: Page, panel: Panel):
    first_login(page, panel)
    log_out(page)
    lock_for_ten_minutes(page, panel)
    panel.advance(10 * MINUTE)
    expected = locked_until(panel, 60)
    for n, password in enumerate(WRONG_PASSWORDS[9:14], start=1):
        submit_login(page, "admin", password)
        expect_refused(page, expected if n == 5 else WRONG_CREDENTIALS)
    submit_login(page, "admin", NEW_PASSWORD)
    expect_refused(page, expected)
    panel.advance(59 * MINUTE)
    submit_login(page, "admin", NEW_PASSWORD)
    expect_refused(page, expected)
    panel.advance(1 * MINUTE)
    submit_login(page, "admin", NEW_PASSWORD)
    expect_home(page)


def download(page: Page, link: str) -> str:
    """Click a download link as the user does; the file's text as the browser saved it."""
    # Once the page has finished loading (its icon too): a download started while the
    # browser still fetches for the page can be cancelled by it.
    page.wait_for_load_state("networkidle")
    with page.expect_download() as info:
        page.click(link)
    saved = info.value.path()
    return saved.read_text(encoding="utf-8")


def test_failed_attempts_are_in_the_logs_downloaded_from_the_logs_page(page: Page, panel: Panel):
    """Guide, audit: after the authentication tests, the Logs page's downloads show them."""
    first_login(page, panel)
    log_out(page)
    lock_for_ten_minutes(page, panel)
    panel.advance(10 * MINUTE)
    submit_login(page, "admin", NEW_PASSWORD)
    session = next(c["value"] for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    with page.expect_navigation():
        page.click("nav a[href='/logs']")
    expect(page.locator("#records")).to_contain_text("login.failed")
    rows = list(csv.DictReader(io.StringIO(download(page, "#download-csv"))))
    items = json.loads(download(page, "#download-json"))
    for records in [rows, items]:
        failures = [
            (r["user"], r["source"], r["outcome"], r["interface"])
            for r in records
            if r["event"] in {AuditEvent.LOGIN_FAILED, AuditEvent.LOGIN_LOCKED}
        ]
        # The empty password, 8 wrong ones, the 10th that locked, and 2 tries while locked.
        assert failures == [("admin", "127.0.0.1", "failure", "web")] * 12
    secrets = [NEW_PASSWORD, panel.initial_password, *WRONG_PASSWORDS[:9], WRONG_PASSWORDS[19]]
    for text in [json.dumps(rows), json.dumps(items)]:
        for secret in [*secrets, session]:
            assert secret not in text


def protected_pages() -> list[str]:
    """Every page in the route table a browser can bookmark: each needs a login."""
    return [
        route.path
        for route in routes()
        if isinstance(route, GuardedRoute)
        and not route.is_api
        and route.access is not Access.PUBLIC
        and "GET" in (route.methods or ())
        and "{" not in route.path
    ]


def open_bookmark(page: Page, path: str) -> bool:
    """As a logged-in user: a page is shown (True), a download (a log export) is answered."""
    answer = page.request.get(path, max_redirects=0)
    assert answer.status == 200, (path, answer.status)
    if not answer.headers["content-type"].startswith("text/html"):
        return False
    page.goto(path)
    assert path_of(page) == path
    return True


def test_bookmarked_pages_need_a_login_in_a_private_window(
    page: Page, panel: Panel, new_context: Callable[[], BrowserContext]
):
    first_login(page, panel)
    bookmarks = protected_pages()
    assert "/" in bookmarks
    pages = [bookmark for bookmark in bookmarks if open_bookmark(page, bookmark)]
    private = new_context().new_page()
    for bookmark in bookmarks:
        private.goto(bookmark)
        assert path_of(private).startswith("/login")
        expect(private.locator("#username")).to_be_visible()
        expect(private.locator(".who")).to_have_count(0)
        expect(private.locator("#overview-form")).to_have_count(0)
    # Logging in from there leads on to the bookmarked page.
    private.goto(pages[-1])
    submit_login(private, "admin", NEW_PASSWORD)
    assert path_of(private) == pages[-1]


def test_after_logout_back_and_bookmarks_show_the_login_page(page: Page, panel: Panel):
    first_login(page, panel)
    page.goto("/password")
    page.goto("/")
    log_out(page)
    page.go_back()  # to the home page the user saw before logging out
    assert path_of(page) == "/login"
    expect(page.locator("#overview-form")).to_have_count(0)
    for bookmark in protected_pages():
        page.goto(bookmark)
        assert path_of(page).startswith("/login")
        expect(page.locator(".who")).to_have_count(0)
    log_in(page, "admin", panel.initial_password)  # the initial password is gone for good
    expect_refused(page, WRONG_CREDENTIALS)


def test_session_cookie_is_host_only_secure_httponly_and_strict(page: Page, panel: Panel):
    first_login(page, panel)
    cookies = [c for c in page.context.cookies() if c["name"].startswith("__Host-")]
    assert [c["name"] for c in cookies] == [SESSION_COOKIE]
    cookie = cookies[0]
    assert cookie["domain"] == "127.0.0.1"  # host-only: no Domain attribute
    assert cookie["path"] == "/"
    assert cookie["secure"] is True
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["expires"] == -1  # gone when the browser closes
    assert "panelhub" not in page.evaluate("document.cookie")  # scripts cannot read it


def auto_submit(action: str, fields: dict[str, str], referrer_policy: str, enctype: str) -> str:
    """An attacker's page: a form to ``action`` that sends itself as soon as it loads.

    With ``no-referrer`` the browser sends ``Origin: null``, hiding where the post comes from.
    """
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in fields.items()
    )
    return (
        f'<!doctype html><html><head><meta name="referrer" content="{referrer_policy}"></head>'
        "<body><h1>Cute cats</h1>"
        f'<form method="post" action="{html.escape(action)}" enctype="{enctype}">{inputs}</form>'
        "<script>document.forms[0].submit()</script></body></html>"
    )


FORM = "application/x-www-form-urlencoded"
#: A form cannot send application/json, but text/plain can carry a JSON body.
JSON_IN_TEXT = "text/plain"
EVIL_PASSWORD = "Attacker#2026x"  # noqa: S105 - what the attacker wants to set
#: What a page elsewhere posts: (path, fields, encoding). The attacker even knows the
#: current password; only the session's form token is out of reach.
ATTACKS = [
    ("/password", {"current": NEW_PASSWORD, "new": EVIL_PASSWORD, "confirm": EVIL_PASSWORD,
                   "csrf_token": "guessed"}, FORM),
    ("/logout", {"csrf_token": "guessed"}, FORM),
    ("/users", {"name": "intruder", "role": "admin", "csrf_token": "guessed"}, FORM),
    ("/api/users", {'{"name": "intruder", "role": "admin", "x": "': '"}'}, JSON_IN_TEXT),
]  # fmt: skip
#: 127.0.0.1 on another port is the same site, so the browser sends the SameSite=Strict cookie
#: and PanelHub's own origin and token checks must refuse (403). 127.0.0.2 is another site:
#: the browser does not send the cookie, and the panel sees no session at all (a page goes
#: to the login page, the API answers 401).
ATTACKER_HOSTS = [("127.0.0.1", 403, 403), ("127.0.0.2", 303, 401)]
REFERRER_POLICIES = ["strict-origin-when-cross-origin", "no-referrer"]


def open_attack(page: Page, site: Site, name: str, target: str) -> int:
    """Load the attacker's page; return the status PanelHub answered its form post with."""
    with page.expect_response(lambda r: r.request.method == "POST" and r.url == target) as info:
        page.goto(f"{site.url}/{name}")
    return info.value.status


@pytest.mark.parametrize(("host", "page_status", "api_status"), ATTACKER_HOSTS)
def test_forms_posted_from_another_origin_change_nothing(
    page: Page,
    panel: Panel,
    other_site: Callable[[str], Site],
    new_context: Callable[[], BrowserContext],
    host: str,
    page_status: int,
    api_status: int,
):
    first_login(page, panel)
    session = next(c["value"] for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    site = other_site(host)
    for policy in REFERRER_POLICIES:
        for path, fields, enctype in ATTACKS:
            name = f"{path.strip('/').replace('/', '-')}-{policy}"
            site.pages[name] = auto_submit(f"{panel.url}{path}", fields, policy, enctype)
            status = api_status if path.startswith("/api/") else page_status
            assert open_attack(page, site, name, f"{panel.url}{path}") == status, path
    # Still logged in with the same session, on the same password, and no account made.
    page.goto(f"{panel.url}/")
    expect_home(page)
    cookies = page.context.cookies()
    assert next(c["value"] for c in cookies if c["name"] == SESSION_COOKIE) == session
    events = [r.event for r in audit_records(panel)]
    assert events.count(AuditEvent.PASSWORD_CHANGED) == 1  # the first login's change only
    assert AuditEvent.LOGOUT not in events
    assert AuditEvent.ACCOUNT_CREATED not in events
    accounts = panel.run(panel.context.accounts.list())
    assert sorted(account.name for account in accounts) == ["admin", "support"]
    other = new_context().new_page()
    log_in(other, "admin", EVIL_PASSWORD)
    expect_refused(other, WRONG_CREDENTIALS)
    log_in(other, "admin", NEW_PASSWORD)
    expect_home(other)


@pytest.mark.parametrize("host", [host for host, _, _ in ATTACKER_HOSTS])
def test_a_login_form_posted_from_another_origin_does_not_log_the_browser_in(
    page: Page,
    panel: Panel,
    other_site: Callable[[str], Site],
    host: str,
):
    site = other_site(host)
    # Login CSRF: the attacker logs the victim into an account the attacker controls.
    fields = {"username": "admin", "password": panel.initial_password, "next": "/"}
    page.goto(f"{panel.url}/login")  # the victim once opened the login page: it set its cookie
    for policy in REFERRER_POLICIES:
        # Even with the form token right (a page on another port of this host can set the
        # cookie itself), the origin gives the post away. Each refusal sets a new token.
        for knows_token in [False, True]:
            token = next(c["value"] for c in page.context.cookies() if c["name"] == LOGIN_COOKIE)
            name = f"login-{policy}-{knows_token}"
            site.pages[name] = auto_submit(
                f"{panel.url}/login",
                {**fields, "csrf_token": token if knows_token else "guessed"},
                policy,
                FORM,
            )
            assert open_attack(page, site, name, f"{panel.url}/login") == 403  # "the form expired"
    assert not any(c["name"] == SESSION_COOKIE for c in page.context.cookies())
    page.goto(f"{panel.url}/password")
    assert path_of(page).startswith("/login")
    assert AuditEvent.LOGIN_OK not in [r.event for r in audit_records(panel)]


def test_pages_load_without_content_security_policy_violations(
    page: Page, panel: Panel, console: Console
):
    page.goto("/login")
    first_login(page, panel)  # login page, change-password page, home page
    page.goto("/password")
    for bookmark in protected_pages():
        open_bookmark(page, bookmark)
    log_out(page)
    assert console.csp_violations() == []
    # Nor any other error: every resource a page asks for (the icon included) is there.
    assert [text for text in console.messages if text.startswith("error")] == []
    # The watch sees violations: an inline style, which the policy forbids, is reported.
    with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
        page.evaluate(
            "document.head.appendChild(document.createElement('style')).textContent = 'p{}'"
        )
    assert console.csp_violations() != []


def test_a_random_file_uploaded_as_firmware_is_refused_and_in_the_downloaded_log(
    page: Page, panel: Panel, tmp_path
):
    """Guide, software integrity: a random file as firmware says "wrong signature", changes
    nothing, and the failed update is in the audit log downloaded from the Logs page."""
    first_login(page, panel)
    random_file = tmp_path / "firmware.bin"
    random_file.write_bytes(bytes(range(256)) * 1024)
    with page.expect_navigation():
        page.click("nav a[href='/maintenance']")
    page.set_input_files("#bundle-file", str(random_file))
    with page.expect_navigation():
        page.click("#upload-bundle")
    expect(page.locator("#error")).to_contain_text("Update refused: wrong signature")
    expect(page.locator("#error")).to_contain_text("Nothing was changed")
    with page.expect_navigation():
        page.click("nav a[href='/logs']")
    rows = list(csv.DictReader(io.StringIO(download(page, "#download-csv"))))
    refused = [r for r in rows if r["event"] == AuditEvent.FIRMWARE_REJECTED]
    assert [(r["user"], r["outcome"], r["interface"]) for r in refused] == [
        ("admin", "failure", "web")
    ]
    assert "wrong signature" in refused[0]["details"]
    assert "firmware.bin" in refused[0]["details"]
