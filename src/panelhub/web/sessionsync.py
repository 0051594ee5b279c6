"""Live sessions kept in step with the account store, for changes made outside the pages.

The pages end or update sessions themselves when an admin changes an account. The console
(``panelhub user reset-password``, a recovery) writes the store directly, in another process:
every few seconds, at the next request, sessions are compared with the accounts, and a session
whose account is gone, disabled, or has had its password changed since the login ends; a role
change applies. Between two checks a change waits at most ``SYNC_INTERVAL_S``.
"""

from __future__ import annotations

from typing import Final

from panelhub.web.context import WebContext

#: Longest a console change waits before live sessions follow it.
SYNC_INTERVAL_S: Final = 2.0


async def sync_sessions(context: WebContext) -> None:
    """Compare sessions with accounts if the last comparison is ``SYNC_INTERVAL_S`` old."""
    now = context.clock()
    if now - context.sessions_synced_at < SYNC_INTERVAL_S:
        return
    context.sessions_synced_at = now
    sessions = context.sessions.list()
    if not sessions:
        return
    accounts = {account.id: account for account in await context.accounts.list()}
    for session in sessions:
        account = accounts.get(session.account_id)
        if (
            account is None
            or not account.is_enabled
            or account.password_changed_at != session.password_stamp
        ):
            context.sessions.end_key(session.key)
        elif account.role.value != session.role:
            context.sessions.update_user(account.id, role=account.role.value)
