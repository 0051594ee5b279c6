"""Logging in, out, and changing one's own password: the rules, apart from page or API.

The login page and the JSON API (``/api/login``) take the same path, so the rate limit, the
lockout, the session rotation and the audit records cannot differ between them.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Final

from panelhub.errors import AccountError, StateStoreError
from panelhub.security.accounts import ADMIN_NAME, LoginOutcome, forget_initial_password
from panelhub.security.audit import AuditEvent, Outcome
from panelhub.security.sessions import Session
from panelhub.web.context import WebContext

logger = logging.getLogger(__name__)

#: Longest user name or password read; longer input is cut before it is hashed.
MAX_FIELD_LENGTH: Final = 256
#: Recorded for an unknown user name when the label key cannot be read.
UNLABELLED_UNKNOWN_USER: Final = "unknown#?"


class LoginState(Enum):
    OK = "ok"
    RATE_LIMITED = "rate_limited"
    LOCKED = "locked"
    BAD_CREDENTIALS = "bad_credentials"


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    state: LoginState
    #: For the cookie, when ``state`` is OK.
    session_id: str = ""
    session: Session | None = None
    #: When ``state`` is LOCKED: until when (epoch seconds).
    locked_until: float = 0.0
    #: When ``state`` is RATE_LIMITED: seconds before the address may try again.
    retry_after_s: int = 0


async def log_in(
    context: WebContext, username: str, password: str, *, source: str, interface: str
) -> LoginAttempt:
    """Check the credentials and open a session: rate limit, lockout and audit included."""
    username, password = username[:MAX_FIELD_LENGTH], password[:MAX_FIELD_LENGTH]
    now = context.clock()
    if not context.rate_limiter.allow(source, now):
        retry = int(context.rate_limiter.retry_after(source, now)) + 1
        return LoginAttempt(LoginState.RATE_LIMITED, retry_after_s=retry)
    result = await context.accounts.authenticate(username, password)
    user = username if result.is_known_name else label_of(context, username)
    audit = partial(context.audit.record, user=user, source=source, interface=interface)
    if result.outcome is LoginOutcome.OK and result.account is not None:
        account = result.account
        session_id, session = context.sessions.create(
            account_id=account.id,
            user_name=account.name,
            role=account.role.value,
            source=source,
            must_change_password=account.must_change_password,
            password_stamp=account.password_changed_at,
        )
        await audit(AuditEvent.LOGIN_OK, outcome=Outcome.SUCCESS)
        return LoginAttempt(LoginState.OK, session_id=session_id, session=session)
    if result.outcome is LoginOutcome.LOCKED:
        until = utc_iso(result.locked_until)
        await audit(
            AuditEvent.LOGIN_LOCKED, outcome=Outcome.FAILURE, details={"locked_until": until}
        )
        return LoginAttempt(LoginState.LOCKED, locked_until=result.locked_until)
    await audit(AuditEvent.LOGIN_FAILED, outcome=Outcome.FAILURE)
    return LoginAttempt(LoginState.BAD_CREDENTIALS)


async def log_out(context: WebContext, session: Session, *, source: str, interface: str) -> None:
    context.sessions.end_key(session.key)
    await context.audit.record(AuditEvent.LOGOUT, outcome=Outcome.SUCCESS, user=session.user_name,
                               source=source, interface=interface)  # fmt: skip


async def change_own_password(
    context: WebContext, session: Session, current: str, new: str, *, source: str, interface: str
) -> tuple[str, Session]:
    """Change the session user's password; every session of theirs ends, a new one begins.

    Returns the new session's id (for the cookie) and the session.

    Raises:
        WeakPasswordError: ``new`` breaks the policy (not audited: nothing was tried).
        AccountError: ``current`` is wrong or the account is gone (audited as a failure).
    """
    audit = partial(
        context.audit.record, user=session.user_name, source=source, interface=interface
    )
    try:
        await context.accounts.change_password(
            session.account_id, current[:MAX_FIELD_LENGTH], new[:MAX_FIELD_LENGTH]
        )
    except AccountError as exc:
        await audit(AuditEvent.PASSWORD_CHANGED, outcome=Outcome.FAILURE,
                    details={"reason": str(exc)})  # fmt: skip
        raise
    context.sessions.end_user(session.account_id)
    account = await context.accounts.get_by_id(session.account_id)
    session_id, fresh = context.sessions.create(
        account_id=session.account_id,
        user_name=session.user_name,
        role=session.role,
        source=source,
        must_change_password=False,
        password_stamp=None if account is None else account.password_changed_at,
    )
    if session.user_name == ADMIN_NAME:
        forget_initial_password(context.data_dir)
    await audit(AuditEvent.PASSWORD_CHANGED, outcome=Outcome.SUCCESS)
    return session_id, fresh


def label_of(context: WebContext, typed_name: str) -> str:
    """The audit label of an unknown name; without the label key, a label that says so.

    A damaged key must not turn every failed login into a server error: the attempt is still
    recorded, and the error log says what to repair.
    """
    try:
        return context.audit.label_unknown_user(typed_name)
    except StateStoreError as exc:
        logger.error("unknown user names recorded without a label: %s", exc)  # noqa: TRY400
        return UNLABELLED_UNKNOWN_USER


def utc_iso(epoch_s: float) -> str:
    """A moment as the API and the audit log give times: ISO 8601, seconds, UTC as ``Z``."""
    moment = dt.datetime.fromtimestamp(epoch_s, dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
