"""What an admin may do to accounts, shared by the users page and the users API.

Theory of operation:
- Each operation is done by one acting admin (``actor``, their session) from one address, and
  is written to the audit log with the actor as the user and the target's name in the
  details; never a password. Refused changes are audited too, with the reason.
- An account change reaches the running sessions at once: disabling a user or resetting
  their password ends their sessions (the open browser lands on the login page at its next
  request), a role change applies to the next request of every session of that user.
- Two rules keep the panel administrable: the last enabled admin can be neither disabled
  nor demoted (the account store enforces it in the same transaction as the change; the
  check here only gives the refusal its own code), and an admin cannot disable or demote
  their own account or reset their own password here, so one wrong click cannot lock the
  person at the keyboard out.
- A generated password is returned to the caller once, to be shown once; it is never kept.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from panelhub.errors import AccountError, WeakPasswordError
from panelhub.security.accounts import Account, Role, check_name
from panelhub.security.audit import ANONYMOUS, SYSTEM, AuditEvent, DetailValue, Outcome
from panelhub.security.lockout import is_locked
from panelhub.security.passwords import generate_password
from panelhub.security.sessions import Session
from panelhub.web.context import WebContext
from panelhub.web.login import utc_iso

INTERFACE = "web"
#: Names the audit log uses for who acted when no account did (``ANONYMOUS``, ``SYSTEM``, the
#: label of an unknown login name): an account by such a name would make records ambiguous.
RESERVED_NAMES: Final = frozenset({ANONYMOUS, SYSTEM})
RESERVED_PREFIX: Final = "unknown#"


class Refusal(StrEnum):
    """Why an operation was refused; the API's ``error`` code."""

    INVALID = "invalid_request"  # a malformed name, role or request
    NOT_FOUND = "not_found"
    NAME_TAKEN = "name_taken"
    LAST_ADMIN = "last_admin"
    OWN_ACCOUNT = "own_account"
    CONFLICT = "conflict"  # any other rule of the account store


#: HTTP status of each refusal in the API (the page uses the same).
REFUSAL_STATUS = {
    Refusal.INVALID: 400,
    Refusal.NOT_FOUND: 404,
    Refusal.NAME_TAKEN: 409,
    Refusal.LAST_ADMIN: 409,
    Refusal.OWN_ACCOUNT: 409,
    Refusal.CONFLICT: 409,
}


class AccountRefusedError(AccountError):
    """An admin's account operation was refused; ``reason`` says which rule, the message why."""

    def __init__(self, message: str, *, reason: Refusal) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class UserView:
    """One account as the users page and API show it (no hash, no secret)."""

    name: str
    role: str
    is_enabled: bool
    has_password: bool
    must_change_password: bool
    failed_logins: int
    #: ISO 8601 UTC while the account is locked, else None.
    locked_until: str | None
    live_sessions: int
    created_at: str
    password_changed_at: str | None

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role,
            "enabled": self.is_enabled,
            "has_password": self.has_password,
            "must_change_password": self.must_change_password,
            "failed_logins": self.failed_logins,
            "locked_until": self.locked_until,
            "live_sessions": self.live_sessions,
            "created_at": self.created_at,
            "password_changed_at": self.password_changed_at,
        }


@dataclass(frozen=True, slots=True)
class NewPassword:
    """An account and the password just generated for it (to show once)."""

    user: UserView
    password: str


def parse_role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        roles = ", ".join(role.value for role in Role)
        raise AccountRefusedError(
            f"the role must be one of {roles}", reason=Refusal.INVALID
        ) from None


class Administration:
    """The account operations of one admin's request."""

    def __init__(self, context: WebContext, actor: Session, source: str) -> None:
        self._context = context
        self._actor = actor
        self._source = source

    # -- reading

    async def users(self) -> list[UserView]:
        accounts = await self._context.accounts.list()
        live = Counter(session.account_id for session in self._context.sessions.list())
        return [self._view(account, live_sessions=live[account.id]) for account in accounts]

    async def user(self, name: str) -> UserView:
        return self._view(await self._account(name))

    # -- changing

    async def create(self, name: str, role: Role) -> NewPassword:
        try:
            check_name(name)
        except AccountError as exc:
            raise AccountRefusedError(str(exc), reason=Refusal.INVALID) from exc
        if name.casefold() in RESERVED_NAMES or name.startswith(RESERVED_PREFIX):
            raise AccountRefusedError(
                f"{name!r} is reserved: the audit log uses it", reason=Refusal.INVALID
            )
        if await self._context.accounts.get(name) is not None:
            await self._refused(AuditEvent.ACCOUNT_CREATED, name, Refusal.NAME_TAKEN)
            raise AccountRefusedError(
                f"an account named {name!r} exists already", reason=Refusal.NAME_TAKEN
            )
        password = generate_password(user_name=name)
        try:
            account = await self._context.accounts.create(name, role, password)
        except AccountError as exc:  # taken in the meantime
            raise AccountRefusedError(str(exc), reason=Refusal.NAME_TAKEN) from exc
        await self._audit(AuditEvent.ACCOUNT_CREATED, name, role=role.value)
        return NewPassword(self._view(account), password)

    async def change(
        self, name: str, *, role: Role | None = None, is_enabled: bool | None = None
    ) -> UserView:
        """Set a role and/or the enabled state; sessions follow at once."""
        account = await self._account(name)
        await self._check_change(account, role=role, is_enabled=is_enabled)
        try:
            updated = await self._context.accounts.update(
                account.id, role=role, is_enabled=is_enabled
            )
        except AccountError as exc:  # the store's own rules (last admin in a race, no password)
            await self._refused(AuditEvent.ACCOUNT_CHANGED, name, Refusal.CONFLICT)
            raise AccountRefusedError(str(exc), reason=Refusal.CONFLICT) from exc
        sessions = self._context.sessions
        if not updated.is_enabled:
            sessions.end_user(updated.id)
        else:
            sessions.update_user(updated.id, role=updated.role.value)
        details: dict[str, DetailValue] = {}
        if role is not None:
            details["role"] = updated.role.value
        if is_enabled is not None:
            details["enabled"] = updated.is_enabled
        await self._audit(AuditEvent.ACCOUNT_CHANGED, name, **details)
        return self._view(updated)

    async def unlock(self, name: str) -> UserView:
        await self._account(name)
        try:
            # The console's transaction; on a worker thread, never blocking the event loop.
            account = await asyncio.to_thread(self._context.accounts.unlock_sync, name)
        except AccountError as exc:  # deleted in the meantime
            raise AccountRefusedError(str(exc), reason=Refusal.NOT_FOUND) from exc
        await self._audit(AuditEvent.ACCOUNT_UNLOCKED, name)
        return self._view(account)

    async def reset_password(self, name: str) -> NewPassword:
        """A new random password, to be changed at the next login; the user's sessions end."""
        account = await self._account(name)
        if account.id == self._actor.account_id:
            await self._refused(AuditEvent.PASSWORD_CHANGED, name, Refusal.OWN_ACCOUNT)
            raise AccountRefusedError(
                "use Change password for your own password", reason=Refusal.OWN_ACCOUNT
            )
        password = generate_password(user_name=name)
        try:
            await self._context.accounts.set_password(account.id, password, must_change=True)
        except (AccountError, WeakPasswordError) as exc:  # pragma: no cover - deleted meanwhile
            raise AccountRefusedError(str(exc), reason=Refusal.NOT_FOUND) from exc
        self._context.sessions.end_user(account.id)
        await self._audit(AuditEvent.PASSWORD_CHANGED, name, reset=True)
        return NewPassword(await self.user(name), password)

    async def end_sessions(self, name: str) -> int:
        """End every session of a user; the actor's own current session stays."""
        account = await self._account(name)
        count = self._context.sessions.end_user(account.id, keep_key=self._actor.key)
        await self._audit(AuditEvent.SESSION_ENDED, name, count=count)
        return count

    # -- rules and records

    async def _account(self, name: str) -> Account:
        account = await self._context.accounts.get(name)
        if account is None:
            raise AccountRefusedError(f"no account named {name!r}", reason=Refusal.NOT_FOUND)
        return account

    async def _check_change(
        self, account: Account, *, role: Role | None, is_enabled: bool | None
    ) -> None:
        is_demoted = role is not None and role is not Role.ADMIN
        is_disabled = is_enabled is False
        if not (account.role is Role.ADMIN and account.is_enabled and (is_demoted or is_disabled)):
            return
        admins = [
            other
            for other in await self._context.accounts.list()
            if other.role is Role.ADMIN and other.is_enabled and other.id != account.id
        ]
        if not admins:
            await self._refused(AuditEvent.ACCOUNT_CHANGED, account.name, Refusal.LAST_ADMIN)
            raise AccountRefusedError(
                f"{account.name!r} is the last enabled admin: it cannot be disabled or demoted",
                reason=Refusal.LAST_ADMIN,
            )
        if account.id == self._actor.account_id:
            await self._refused(AuditEvent.ACCOUNT_CHANGED, account.name, Refusal.OWN_ACCOUNT)
            raise AccountRefusedError(
                "you cannot disable or demote your own account; another admin can",
                reason=Refusal.OWN_ACCOUNT,
            )

    def _view(self, account: Account, *, live_sessions: int | None = None) -> UserView:
        now = self._context.clock()
        locked = is_locked(account.locked_until, now)
        if live_sessions is None:
            sessions = self._context.sessions.list()
            live_sessions = sum(1 for s in sessions if s.account_id == account.id)
        return UserView(
            name=account.name,
            role=account.role.value,
            is_enabled=account.is_enabled,
            has_password=account.has_password,
            must_change_password=account.must_change_password,
            failed_logins=account.failed_logins,
            locked_until=utc_iso(account.locked_until) if locked else None,
            live_sessions=live_sessions,
            created_at=account.created_at,
            password_changed_at=account.password_changed_at,
        )

    async def _audit(self, event: AuditEvent, target: str, **details: DetailValue) -> None:
        await self._context.audit.record(
            event,
            outcome=Outcome.SUCCESS,
            user=self._actor.user_name,
            source=self._source,
            interface=INTERFACE,
            details={"target": target, **details},
        )

    async def _refused(self, event: AuditEvent, target: str, reason: Refusal) -> None:
        await self._context.audit.record(
            event,
            outcome=Outcome.FAILURE,
            user=self._actor.user_name,
            source=self._source,
            interface=INTERFACE,
            details={"target": target, "reason": reason.value},
        )
