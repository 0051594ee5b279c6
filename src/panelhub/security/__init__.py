"""Accounts, passwords, login protection, sessions, CSRF, the audit log and certificates."""
