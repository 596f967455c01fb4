"""Rows of the logical tables (:mod:`omnimem.stores.transfer`) out of and into a SQLite memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from omnimem.errors import ConfigError
from omnimem.stores.transfer import TABLES

__all__ = ["TransferMixin"]

_BATCH = 1_000
_WITHOUT_ROWID = {
    "item_stats",
    "archive_vectors",
    "pending",
    "mentions",
    "triplet_sources",
    "graph_progress",
}  # ordered by their key


class TransferMixin:
    """``dump`` / ``load`` of :class:`~omnimem.stores.sqlite.SQLiteRecordStore`."""

    _read: Any
    transaction: Any

    def dump(self, table: str) -> Iterator[tuple]:
        """The rows of a logical table, in insertion order, as tuples of ``TABLES[table]``."""
        columns = _columns(table)
        if not self._read("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)):
            return
        quoted = ", ".join(f'"{c}"' for c in columns)
        order = quoted if table in _WITHOUT_ROWID else "rowid"
        offset = 0
        while True:
            rows = self._read(f'SELECT {quoted} FROM "{table}" ORDER BY {order} LIMIT ? OFFSET ?', (_BATCH, offset))
            yield from (tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows)
            if len(rows) < _BATCH:
                return
            offset += _BATCH

    def load(self, table: str, rows: Sequence[tuple]) -> int:
        """Write rows of a logical table (existing keys are kept; node rows set summaries only)."""
        columns = _columns(table)
        quoted = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" * len(columns))
        with self.transaction() as conn:
            if table == "nodes":
                sql = "UPDATE nodes SET summary = ?, summary_kind = ?, dirty = ? WHERE id = ?"
                return sum(conn.execute(sql, (s, k, int(bool(d)), i)).rowcount for i, s, k, d in rows)
            if table == "graph_progress":  # created by the first graph job otherwise
                from omnimem.stores.sqlite_jobs import PROGRESS_SQL

                conn.execute(PROGRESS_SQL)
            verb = "INSERT OR REPLACE" if table == "meta" else "INSERT OR IGNORE"
            return sum(conn.execute(f'{verb} INTO "{table}" ({quoted}) VALUES ({marks})', row).rowcount for row in rows)


def _columns(table: str) -> tuple[str, ...]:
    if table not in TABLES:
        raise ConfigError(f"unknown table {table!r} in a memory copy; known: {', '.join(TABLES)}")
    return TABLES[table]
