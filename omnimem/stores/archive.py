"""Schema 3: item statistics for forgetting (access count, last access, importance) and the archive.

Archived items leave every active table and index but are kept whole (row and vectors) so a prune
is never a silent loss: :meth:`SQLiteRecordStore.restore` brings them back.
"""

from __future__ import annotations

import sqlite_utils

__all__ = ["migration_archive"]


def migration_archive(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE item_stats (item_id TEXT PRIMARY KEY, access_count INTEGER NOT NULL DEFAULT 0,"
        " last_access TEXT, importance REAL NOT NULL DEFAULT 1.0) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE archive (item_id TEXT PRIMARY KEY, item TEXT NOT NULL, stats TEXT NOT NULL DEFAULT '{}',"
        " reason TEXT NOT NULL, archived_at TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE archive_vectors (item_id TEXT NOT NULL, space TEXT NOT NULL, vector BLOB NOT NULL,"
        " PRIMARY KEY (item_id, space)) WITHOUT ROWID"
    )
