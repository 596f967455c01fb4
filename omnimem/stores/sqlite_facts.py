"""The fact log in SQLite: every operation on a fact (a graph triplet), in the memory's database.

Graphiti's bi-temporal facts as the semantic memory (:mod:`omnimem.memory.semantic`) keeps them: a
triplet's own row holds its validity (``valid_from`` / ``valid_to``) and knowledge times
(``recorded_at`` / ``retired_at``, in :mod:`omnimem.stores.sqlite_graph`); this log holds what
happened to it: add, reinforce, supersede(d), correct, merge.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omnimem.stores.sqlite import SQLiteRecordStore

__all__ = ["SQLiteFactLog", "EVENT_COLUMNS"]

EVENT_COLUMNS = ("triplet_id", "event", "other_id", "item_id", "at", "note")  # one event, as logged and read

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fact_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, triplet_id TEXT NOT NULL, event TEXT NOT NULL,
    other_id TEXT, item_id TEXT, at TEXT NOT NULL, note TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS fact_events_triplet ON fact_events(triplet_id);
"""


class SQLiteFactLog:
    """A :class:`~omnimem.stores.base.FactLog` in a :class:`SQLiteRecordStore`'s database."""

    def __init__(self, store: SQLiteRecordStore) -> None:
        self.store = store
        if store.read("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'fact_events'"):
            return  # opening a memory never takes the write lock when the schema is there
        with store.transaction() as conn:  # executescript would COMMIT: run statements one by one
            for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                conn.execute(statement)

    def log(self, events: Iterable[tuple]) -> int:
        """Append events ``(triplet_id, event, other_id, item_id, at, note)``; returns how many."""
        rows = [(*e[:5], e[5] if len(e) > 5 and e[5] is not None else "") for e in events]
        with self.store.transaction() as conn:
            conn.executemany(
                "INSERT INTO fact_events (triplet_id, event, other_id, item_id, at, note) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def history(self, triplet_id: str) -> list[tuple]:
        """The events of one fact, oldest first, as ``EVENT_COLUMNS`` tuples."""
        sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM fact_events WHERE triplet_id = ? ORDER BY id"
        return [tuple(r) for r in self.store.read(sql, (triplet_id,))]

    def logged(self, triplet_ids: Sequence[str]) -> set[str]:
        """Those of ``triplet_ids`` with any event."""
        ids, out = list(dict.fromkeys(triplet_ids)), set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            sql = f"SELECT DISTINCT triplet_id FROM fact_events WHERE triplet_id IN ({', '.join('?' * len(chunk))})"
            out |= {r[0] for r in self.store.read(sql, chunk)}
        return out

    def corrected(self) -> set[str]:
        """Ids of facts retired by an explicit correction (they never held)."""
        return {r[0] for r in self.store.read("SELECT triplet_id FROM fact_events WHERE event = 'correct'")}

    def unseen_items(self) -> list[str]:
        """Items that are the source of a triplet the log has no event for (not observed yet)."""
        sql = (
            "SELECT DISTINCT s.item_id FROM triplet_sources s"
            " WHERE s.triplet_id NOT IN (SELECT triplet_id FROM fact_events)"
        )
        return [r[0] for r in self.store.read(sql)]

    def prune(self) -> int:
        """Drop the events of facts that no longer exist (a privacy delete took their evidence)."""
        with self.store.transaction() as conn:
            return conn.execute("DELETE FROM fact_events WHERE triplet_id NOT IN (SELECT id FROM triplets)").rowcount
