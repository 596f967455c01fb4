"""Which items each graph job has processed, in SQLite: what makes a killed job resumable.

An item is marked done for a job's mode only after its graph rows are committed (same database), so
a re-run skips exactly what was finished. A *flag* is a row whose item id is no item's: it says a job
of that mode still owes a step (an entity resolution over what it wrote).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omnimem.types import utc_now

__all__ = ["SQLiteJobProgress"]

PROGRESS_SQL = (
    "CREATE TABLE IF NOT EXISTS graph_progress (item_id TEXT NOT NULL, mode TEXT NOT NULL, done_at TEXT NOT NULL,"
    " PRIMARY KEY (item_id, mode)) WITHOUT ROWID"
)
_RESOLVE_FLAG = "graph-job:resolve-pending"  # a graph_progress row: a job of this mode owes a resolution


class SQLiteJobProgress:
    """The ``graph_progress`` table: which items each job mode has processed (and when)."""

    def __init__(self, store: Any) -> None:
        self.store = store  # an omnimem.stores.sqlite.SQLiteRecordStore
        with store.transaction() as conn:
            conn.execute(PROGRESS_SQL)

    def pending(self, mode: str) -> list[str]:
        """Ids of the items ``mode`` has not processed, in insertion order."""
        sql = (
            "SELECT id FROM items WHERE NOT EXISTS (SELECT 1 FROM graph_progress p"
            " WHERE p.item_id = items.id AND p.mode = ?) ORDER BY rowid"
        )
        return [r[0] for r in self.store.read(sql, (mode,))]

    def mark(self, item_ids: Sequence[str], mode: str) -> None:
        now = utc_now()
        with self.store.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO graph_progress (item_id, mode, done_at) VALUES (?, ?, ?)",
                [(i, mode, now) for i in dict.fromkeys(item_ids)],
            )

    def counts(self) -> dict[str, int]:
        """Mode -> number of processed items that still exist."""
        sql = (
            "SELECT mode, count(*) FROM graph_progress WHERE EXISTS (SELECT 1 FROM items WHERE items.id ="
            " graph_progress.item_id) GROUP BY mode"
        )
        return dict(self.store.read(sql))

    # a flag is a row whose item id is no item's: it says a job of `mode` owes a step (resolution)
    def set_flag(self, mode: str, on: bool) -> None:
        with self.store.transaction() as conn:
            if on:
                conn.execute(
                    "INSERT OR REPLACE INTO graph_progress (item_id, mode, done_at) VALUES (?, ?, ?)",
                    (_RESOLVE_FLAG, mode, utc_now()),
                )
            else:
                conn.execute("DELETE FROM graph_progress WHERE item_id = ? AND mode = ?", (_RESOLVE_FLAG, mode))

    def flagged(self, mode: str) -> bool:
        return bool(
            self.store.read("SELECT 1 FROM graph_progress WHERE item_id = ? AND mode = ?", (_RESOLVE_FLAG, mode))
        )
