"""Server-side login sessions: random ids, idle and absolute timeouts, ending them.

Theory of operation:
- A session id is 256 random bits, sent to the browser once in a cookie and kept here only as
  its SHA-256: a copy of this table (a memory dump, a debug page) gives nobody a usable id.
- Sessions live in memory. A restart logs everyone out, which is the safe direction.
- Each session carries its own CSRF token (``csrf_token``): state-changing requests must
  echo it, and a page on another origin cannot read it.
- A session ends at logout, after ``idle_timeout_s`` without a request, after
  ``absolute_timeout_s`` in any case, when its user's password changes (all of that user's
  other sessions), or when an admin ends it. Limits per user and in total bound the memory a
  flood of logins can take: the oldest session goes first.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

#: Bytes of randomness in a session id (256 bits) and in a CSRF token.
ID_BYTES: Final = 32
#: Sessions one user may hold at once (browsers, tabs that logged in again, API clients).
MAX_SESSIONS_PER_USER: Final = 16
#: Sessions held in total: bounds the memory a flood of successful logins can take.
MAX_SESSIONS: Final = 1_024
DEFAULT_IDLE_TIMEOUT_S: Final = 15 * 60
DEFAULT_ABSOLUTE_TIMEOUT_S: Final = 12 * 3600


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(slots=True)
class Session:
    """One logged-in browser or API client. ``key`` identifies it without being the id."""

    key: str
    account_id: int
    user_name: str
    role: str
    source: str
    created_at: float
    last_seen: float
    must_change_password: bool
    #: The account's password-change time when the session began: a session outlives no
    #: password change, even one made elsewhere (the console, another process).
    password_stamp: str | None = None
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(ID_BYTES))

    def check_csrf(self, token: str) -> bool:
        return hmac.compare_digest(self.csrf_token.encode(), token.encode())


class SessionStore:
    """The sessions of one running service."""

    def __init__(
        self,
        *,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        absolute_timeout_s: float = DEFAULT_ABSOLUTE_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.absolute_timeout_s = absolute_timeout_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}  # by key, oldest first

    def create(
        self,
        *,
        account_id: int,
        user_name: str,
        role: str,
        source: str,
        must_change_password: bool,
        password_stamp: str | None = None,
    ) -> tuple[str, Session]:
        """A new session (a login); returns the id for the cookie and the session."""
        self._expire()
        mine = [s for s in self._sessions.values() if s.account_id == account_id]
        for old in mine[: max(0, len(mine) - MAX_SESSIONS_PER_USER + 1)]:
            del self._sessions[old.key]
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        session_id = secrets.token_urlsafe(ID_BYTES)
        now = self._clock()
        session = Session(
            key=_key(session_id),
            account_id=account_id,
            user_name=user_name,
            role=role,
            source=source,
            created_at=now,
            last_seen=now,
            must_change_password=must_change_password,
            password_stamp=password_stamp,
        )
        self._sessions[session.key] = session
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        """The live session with this id, its idle time restarted; None if none or expired."""
        session = self._sessions.get(_key(session_id))
        if session is None:
            return None
        now = self._clock()
        if self._is_expired(session, now):
            del self._sessions[session.key]
            return None
        session.last_seen = now
        return session

    def end(self, session_id: str) -> Session | None:
        return self._sessions.pop(_key(session_id), None)

    def end_key(self, key: str) -> Session | None:
        """An admin ends a session seen in the list (which shows keys, never ids)."""
        return self._sessions.pop(key, None)

    def end_user(self, account_id: int, *, keep_key: str | None = None) -> int:
        """End every session of a user (but ``keep_key``); returns how many ended."""
        doomed = [
            key
            for key, session in self._sessions.items()
            if session.account_id == account_id and key != keep_key
        ]
        for key in doomed:
            del self._sessions[key]
        return len(doomed)

    def update_user(
        self, account_id: int, *, role: str | None = None, must_change_password: bool | None = None
    ) -> None:
        """Carry an account change into its live sessions (a role change applies at once)."""
        for session in self._sessions.values():
            if session.account_id == account_id:
                if role is not None:
                    session.role = role
                if must_change_password is not None:
                    session.must_change_password = must_change_password

    def list(self) -> list[Session]:
        self._expire()
        return list(self._sessions.values())

    def _is_expired(self, session: Session, now: float) -> bool:
        return (
            now - session.last_seen >= self.idle_timeout_s
            or now - session.created_at >= self.absolute_timeout_s
        )

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, s in self._sessions.items() if self._is_expired(s, now)]:
            del self._sessions[key]
