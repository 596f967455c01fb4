"""The fact log and the graph jobs' progress in PostgreSQL, beside a PostgresRecordStore's items.

Same tables and semantics as SQLite (:mod:`omnimem.stores.sqlite_facts`, :mod:`omnimem.stores.sqlite_jobs`):
``fact_events`` is every operation on a fact, oldest first by its BIGSERIAL id; ``graph_progress``
says which items each graph job mode has processed (a row whose item id is no item's is a flag: the
mode owes an entity resolution). Pending items come in the items' insertion order (``items.seq``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from omnimem.stores.sqlite_facts import EVENT_COLUMNS
from omnimem.types import utc_now

__all__ = ["PostgresFactLog", "PgJobProgress", "migration_facts", "migration_jobs"]

_RESOLVE_FLAG = "graph-job:resolve-pending"  # a graph_progress row: a job of this mode owes a resolution


def migration_facts(conn: Any) -> None:
    conn.execute(
        "CREATE TABLE fact_events (id BIGSERIAL PRIMARY KEY, triplet_id TEXT NOT NULL, event TEXT NOT NULL,"
        " other_id TEXT, item_id TEXT, at TEXT NOT NULL, note TEXT NOT NULL DEFAULT '')"
    )
    conn.execute("CREATE INDEX fact_events_triplet ON fact_events(triplet_id)")


def migration_jobs(conn: Any) -> None:
    conn.execute(
        "CREATE TABLE graph_progress (item_id TEXT NOT NULL, mode TEXT NOT NULL, done_at TEXT NOT NULL,"
        " PRIMARY KEY (item_id, mode))"
    )


class PostgresFactLog:
    """A :class:`~omnimem.stores.base.FactLog` in a PostgresRecordStore's schema."""

    def __init__(self, store: Any) -> None:
        self.store = store  # a PostgresRecordStore
        self.db = store.db
        self.db.migrate("facts", [migration_facts])

    def log(self, events: Iterable[tuple]) -> int:
        """Append events ``(triplet_id, event, other_id, item_id, at, note)``; returns how many."""
        rows = [(*e[:5], e[5] if len(e) > 5 and e[5] is not None else "") for e in events]
        if rows:
            columns = [list(c) for c in zip(*rows)]
            self.db.run(
                lambda conn: conn.execute(
                    f"INSERT INTO fact_events ({', '.join(EVENT_COLUMNS)})"
                    " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])",
                    columns,
                )
            )
        return len(rows)

    def history(self, triplet_id: str) -> list[tuple]:
        """The events of one fact, oldest first, as ``EVENT_COLUMNS`` tuples."""
        sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM fact_events WHERE triplet_id = %s ORDER BY id"
        return [tuple(r) for r in self.db.read(sql, (triplet_id,))]

    def logged(self, triplet_ids: Sequence[str]) -> set[str]:
        """Those of ``triplet_ids`` with any event."""
        sql = "SELECT DISTINCT triplet_id FROM fact_events WHERE triplet_id = ANY(%s)"
        return {r[0] for r in self.db.read(sql, (list(dict.fromkeys(triplet_ids)),))}

    def corrected(self) -> set[str]:
        """Ids of facts retired by an explicit correction (they never held)."""
        return {r[0] for r in self.db.read("SELECT triplet_id FROM fact_events WHERE event = 'correct'")}

    def unseen_items(self) -> list[str]:
        """Items that are the source of a triplet the log has no event for (not observed yet), in id order."""
        sql = (
            'SELECT DISTINCT s.item_id COLLATE "C" FROM triplet_sources s WHERE NOT EXISTS'
            " (SELECT 1 FROM fact_events e WHERE e.triplet_id = s.triplet_id) ORDER BY 1"
        )
        return [r[0] for r in self.db.read(sql)]

    def prune(self) -> int:
        """Drop the events of facts that no longer exist (a privacy delete took their evidence)."""
        sql = "DELETE FROM fact_events e WHERE NOT EXISTS (SELECT 1 FROM triplets t WHERE t.id = e.triplet_id)"
        return self.db.run(lambda conn: conn.execute(sql).rowcount)


class PgJobProgress:
    """The ``graph_progress`` table: which items each job mode has processed (and when)."""

    def __init__(self, store: Any) -> None:
        self.store = store  # a PostgresRecordStore
        self.db = store.db
        self.db.migrate("jobs", [migration_jobs])

    def pending(self, mode: str) -> list[str]:
        """Ids of the items ``mode`` has not processed, in insertion order."""
        sql = (
            "SELECT id FROM items WHERE NOT EXISTS (SELECT 1 FROM graph_progress p"
            " WHERE p.item_id = items.id AND p.mode = %s) ORDER BY seq"
        )
        return [r[0] for r in self.db.read(sql, (mode,))]

    def mark(self, item_ids: Sequence[str], mode: str) -> None:
        ids = sorted(set(item_ids))
        if not ids:
            return
        self.db.run(
            lambda conn: conn.execute(
                "INSERT INTO graph_progress (item_id, mode, done_at) SELECT i, %s, %s FROM unnest(%s::text[]) AS u(i)"
                " ON CONFLICT (item_id, mode) DO UPDATE SET done_at = excluded.done_at",
                (mode, utc_now(), ids),
            )
        )

    def counts(self) -> dict[str, int]:
        """Mode -> number of processed items that still exist."""
        sql = (
            "SELECT mode, count(*) FROM graph_progress WHERE EXISTS (SELECT 1 FROM items WHERE items.id ="
            ' graph_progress.item_id) GROUP BY mode ORDER BY mode COLLATE "C"'
        )
        return {mode: int(n) for mode, n in self.db.read(sql)}

    # a flag is a row whose item id is no item's: it says a job of `mode` owes a step (resolution)
    def set_flag(self, mode: str, on: bool) -> None:
        if on:
            sql = (
                "INSERT INTO graph_progress (item_id, mode, done_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (item_id, mode) DO UPDATE SET done_at = excluded.done_at"
            )
            self.db.run(lambda conn: conn.execute(sql, (_RESOLVE_FLAG, mode, utc_now())))
        else:
            sql = "DELETE FROM graph_progress WHERE item_id = %s AND mode = %s"
            self.db.run(lambda conn: conn.execute(sql, (_RESOLVE_FLAG, mode)))

    def flagged(self, mode: str) -> bool:
        sql = "SELECT 1 FROM graph_progress WHERE item_id = %s AND mode = %s"
        return bool(self.db.read(sql, (_RESOLVE_FLAG, mode)))
