-- Accounts and their login-protection state. Lock state lives here, with the account, so it
-- survives restarts and is read and written in the same transaction as the login it guards.
CREATE TABLE account (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    -- NULL: no password set yet; the account cannot log in.
    password_hash TEXT,
    is_enabled INTEGER NOT NULL DEFAULT 1,
    must_change_password INTEGER NOT NULL DEFAULT 1,
    -- Consecutive failed logins since the last success.
    failed_logins INTEGER NOT NULL DEFAULT 0,
    -- Unix time until which every login is refused; 0 when not locked.
    locked_until REAL NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    password_changed_at TEXT
);
