"""How far the rollups of each series are built; called through ``TimeSeriesStore.call``.

Kept in the series table so that a restart (or a crash) resumes where the rollups stopped
instead of rebuilding years, or skipping the downtime's buckets.
"""

from __future__ import annotations

import sqlite3

from panelhub.storage.db import transaction


def rolled_until(connection: sqlite3.Connection) -> dict[int, int]:
    """Per series id: the end of its last rolled-up 5-minute bucket (0: none yet)."""
    rows = connection.execute("SELECT series_id, rolled_until FROM series").fetchall()
    return {int(series_id): int(until) for series_id, until in rows}


def set_rolled_until(connection: sqlite3.Connection, progress: dict[int, int]) -> None:
    with transaction(connection):
        connection.executemany(
            "UPDATE series SET rolled_until = ? WHERE series_id = ?",
            [(until, series_id) for series_id, until in progress.items()],
        )
