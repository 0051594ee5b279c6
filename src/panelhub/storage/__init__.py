"""Persistence: the SQLite owner (``db``) and the schema migrations it applies."""
