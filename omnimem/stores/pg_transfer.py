"""Rows of the logical tables (:mod:`omnimem.stores.transfer`) out of and into a PostgreSQL memory:
what copying a memory between backends moves besides its items and vectors."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from omnimem.errors import ConfigError
from omnimem.stores.transfer import TABLES

__all__ = ["PgTransferMixin"]

_BATCH = 1_000
_REAL_ARRAYS = {("archive_vectors", "vector")}  # kept as real[] here, float32 bytes in a copy


class PgTransferMixin:
    """``dump`` / ``load`` of :class:`~omnimem.stores.pg_records.PostgresRecordStore`: the same rows as
    :class:`~omnimem.stores.sqlite_transfer.TransferMixin` gives and takes."""

    db: Any
    _read: Callable[..., list[tuple]]
    _write: Callable[..., Any]
    progress: Callable[[], Any]

    def dump(self, table: str) -> Iterator[tuple]:
        """The rows of a logical table, in insertion order, as tuples of ``TABLES[table]``."""
        columns = _columns(table)
        present = self._table_columns(table)
        if not present:
            return
        quoted = ", ".join(f'"{c}"' for c in columns)
        order = "seq" if "seq" in present else "id" if present.get("id") == "bigint" else quoted  # else by key
        arrays = [(table, c) in _REAL_ARRAYS for c in columns]
        offset = 0
        while True:
            rows = self._read(f'SELECT {quoted} FROM "{table}" ORDER BY {order} LIMIT %s OFFSET %s', (_BATCH, offset))
            for row in rows:
                yield tuple(
                    np.asarray(v, dtype=np.float32).tobytes() if real and v is not None else _plain(v)
                    for real, v in zip(arrays, row)
                )
            if len(rows) < _BATCH:
                return
            offset += _BATCH

    def load(self, table: str, rows: Sequence[tuple]) -> int:
        """Write rows of a logical table (existing keys are kept; node rows set summaries only)."""
        columns = _columns(table)
        rows = [
            tuple(
                np.frombuffer(v, dtype=np.float32).tolist() if (table, c) in _REAL_ARRAYS and v is not None else v
                for c, v in zip(columns, row)
            )
            for row in rows
        ]
        if table == "graph_progress":  # created by the first graph job otherwise
            self.progress()
        present = self._table_columns(table)
        if not present:
            raise ConfigError(f"{self.db.target.display} has no table {table!r} yet; open the memory whole first")
        quoted = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join(["%s"] * len(columns))

        def work(conn: Any) -> int:
            with conn.cursor() as cursor:
                if table == "nodes":
                    sql = "UPDATE nodes SET summary = %s, summary_kind = %s, dirty = %s WHERE id = %s"
                    cursor.executemany(sql, [(s, k, bool(d), i) for i, s, k, d in rows])
                    return max(cursor.rowcount, 0)
                if table == "meta":
                    conflict = "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                else:
                    conflict = "ON CONFLICT DO NOTHING"
                cursor.executemany(f'INSERT INTO "{table}" ({quoted}) VALUES ({marks}) {conflict}', rows)
                written = max(cursor.rowcount, 0)
            if present.get("id") == "bigint" and "id" in columns:  # explicit serial ids: the sequence follows
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence(%s, 'id'), max(id)) FROM \"{table}\" HAVING max(id) IS NOT NULL",
                    (table,),
                )
            return written

        return self._write(work) if rows else 0

    def _table_columns(self, table: str) -> dict[str, str]:
        """Column name -> data type of ``table`` in this memory's schema (empty: no such table)."""
        rows = self._read(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            (self.db.schema, table),
        )
        return dict(rows)


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def _columns(table: str) -> tuple[str, ...]:
    if table not in TABLES:
        raise ConfigError(f"unknown table {table!r} in a memory copy; known: {', '.join(TABLES)}")
    return TABLES[table]
