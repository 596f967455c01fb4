"""Vectors of the SQLite record store: one row per (space, item), a 63-bit key per vector (what FAISS
indexes hold), and a log of every change per space so a segmented index replays only what changed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import sqlite_utils

from omnimem.errors import ConfigError
from omnimem.stores.faiss_index import int_id as vector_key
from omnimem.stores.sqlite_driver import sqlite3

__all__ = ["VectorsMixin", "migration_vector_log", "vector_key"]

# Lookups by key name their index: without statistics SQLite's planner takes ``space = ?`` on the primary
# key for selective and walks every vector of the space per chunk of 500 keys (at 1M items: 166 s a
# chunk against 0.03 s through the index; a compaction's replay of 300k changes never ended).
_BY_KEY = "INDEXED BY vectors_key"


def migration_vector_log(db: sqlite_utils.Database) -> None:
    """Schema 5: each vector's int64 key (indexed: search results map back to items through it) and
    the per-space change log."""
    db.conn.create_function("omnimem_key", 1, vector_key, deterministic=True)
    db.execute("ALTER TABLE vectors ADD COLUMN key INTEGER")
    db.execute("UPDATE vectors SET key = omnimem_key(item_id)")
    db.execute("CREATE INDEX vectors_key ON vectors(space, key)")
    db.execute(
        "CREATE TABLE vector_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, space TEXT NOT NULL, key INTEGER NOT NULL,"
        " op TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX vector_log_space ON vector_log(space, seq)")


class VectorsMixin:
    """Vector methods of :class:`~omnimem.stores.sqlite.SQLiteRecordStore` (table ``vectors``, ``spaces``,
    ``vector_log``)."""

    _read: Any
    transaction: Any
    path: str

    def vectors(self, space: str, ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        dim = self.space_dim(space)
        if ids is None:
            rows = self._read("SELECT item_id, vector FROM vectors WHERE space = ? ORDER BY item_id", (space,))
        else:
            rows = []
            ids = list(ids)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows += self._read(
                    f"SELECT item_id, vector FROM vectors WHERE space = ? AND item_id IN ({', '.join('?' * len(chunk))})",
                    (space, *chunk),
                )
        if not rows:
            return [], np.zeros((0, dim or 0), dtype=np.float32)
        array = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        return [r[0] for r in rows], array.copy()

    def vector_ids(self, space: str) -> list[str]:
        return [r[0] for r in self._read("SELECT item_id FROM vectors WHERE space = ?", (space,))]

    def generation(self, space: str) -> int:
        rows = self._read("SELECT generation FROM spaces WHERE space = ?", (space,))
        return rows[0][0] if rows else 0

    def space_dim(self, space: str) -> int | None:
        rows = self._read("SELECT dim FROM spaces WHERE space = ?", (space,))
        return rows[0][0] if rows else None

    def spaces(self) -> dict[str, int]:
        """Every embedding space with vectors here, and its dimension."""
        return dict(self._read("SELECT space, dim FROM spaces"))

    def _put_vector(self, conn: sqlite3.Connection, space: str, item_id: str, vector: np.ndarray) -> None:
        key = vector_key(item_id)
        conn.execute(
            "INSERT OR REPLACE INTO vectors (space, item_id, vector, key) VALUES (?, ?, ?, ?)",
            (space, item_id, np.ascontiguousarray(vector, dtype=np.float32).tobytes(), key),
        )
        conn.execute("INSERT INTO vector_log (space, key, op) VALUES (?, ?, 'put')", (space, key))

    def _drop_vectors(self, conn: sqlite3.Connection, item_id: str) -> set[str]:
        """Delete an item's vectors in every space (logged); returns the spaces it had one in."""
        spaces = {r[0] for r in conn.execute("SELECT space FROM vectors WHERE item_id = ?", (item_id,))}
        conn.execute("DELETE FROM vectors WHERE item_id = ?", (item_id,))
        key = vector_key(item_id)
        conn.executemany("INSERT INTO vector_log (space, key, op) VALUES (?, ?, 'del')", [(s, key) for s in spaces])
        return spaces

    # -- the vector log: what changed in a space since a given point (segmented indexes replay it) --
    def vector_seq(self, space: str) -> int:
        """The last change to ``space``'s vectors (0: none logged)."""
        rows = self._read("SELECT max(seq) FROM vector_log WHERE space = ?", (space,))
        return max(int(rows[0][0] or 0), self.vector_log_floor(space))  # a pruned log still knows its end

    def vector_log(self, space: str, since: int, limit: int = 50_000) -> list[tuple[int, int, str]]:
        """``(seq, key, op)`` of the changes after ``since``, oldest first; op is "put" or "del"."""
        sql = "SELECT seq, key, op FROM vector_log WHERE space = ? AND seq > ? ORDER BY seq LIMIT ?"
        return [tuple(r) for r in self._read(sql, (space, int(since), int(limit)))]

    def vector_log_floor(self, space: str) -> int:
        """Changes up to this seq were pruned (an index older than it must be rebuilt)."""
        rows = self._read("SELECT value FROM meta WHERE key = ?", (f"vector_log_floor:{space}",))
        return int(rows[0][0]) if rows else 0

    def prune_vector_log(self, space: str, upto: int, *, wait: bool = True) -> None:
        """Forget the changes up to ``upto`` (a saved index segment holds them)."""
        with self.transaction(wait=wait) as conn:
            conn.execute("DELETE FROM vector_log WHERE space = ? AND seq <= ?", (space, int(upto)))
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value ="
                " max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                (f"vector_log_floor:{space}", str(int(upto))),
            )

    def vectors_by_key(self, space: str, keys: Sequence[int]) -> tuple[list[int], np.ndarray]:
        """The vectors of these keys that still exist: ``(keys, float32 (n, dim))``."""
        rows: list[tuple] = []
        keys = list(dict.fromkeys(int(k) for k in keys))
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows += self._read(
                f"SELECT key, vector FROM vectors {_BY_KEY} WHERE space = ? AND key IN ({', '.join('?' * len(chunk))})",
                (space, *chunk),
            )
        if not rows:
            return [], np.zeros((0, self.space_dim(space) or 0), dtype=np.float32)
        return [r[0] for r in rows], np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(
            len(rows), -1
        ).copy()

    def ids_for_keys(self, space: str, keys: Sequence[int]) -> dict[int, str]:
        """Item id of each key (the index's int64 ids; absent when the vector is gone)."""
        out: dict[int, str] = {}
        keys = list(dict.fromkeys(int(k) for k in keys))
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            sql = (
                f"SELECT key, item_id FROM vectors {_BY_KEY} WHERE space = ? AND key IN ({', '.join('?' * len(chunk))})"
            )
            out.update(dict(self._read(sql, (space, *chunk))))
        return out

    def iter_vectors(self, space: str, batch: int = 50_000) -> Iterator[tuple[list[int], np.ndarray]]:
        """All of a space's vectors as ``(keys, float32 (n, dim))`` batches, in key order (bounded memory)."""
        last = -1
        while True:
            rows = self._read(
                "SELECT key, vector FROM vectors WHERE space = ? AND key > ? ORDER BY key LIMIT ?", (space, last, batch)
            )
            if not rows:
                return
            yield (
                [r[0] for r in rows],
                np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1).copy(),
            )
            last = rows[-1][0]

    def vector_count(self, space: str) -> int:
        return self._read("SELECT count(*) FROM vectors WHERE space = ?", (space,))[0][0]

    def _touch_space(self, conn: sqlite3.Connection, space: str, dim: int, *, bump: bool) -> None:
        row = conn.execute("SELECT dim FROM spaces WHERE space = ?", (space,)).fetchone()
        if row is None:
            conn.execute("INSERT INTO spaces (space, dim, generation) VALUES (?, ?, ?)", (space, dim, int(bump)))
        elif row[0] != dim:
            raise ConfigError(
                f"space {space!r} in {self.path} holds {row[0]}-d vectors, got {dim}-d; open it with"
                " the encoder that built it, or use a new memory directory"
            )
        elif bump:
            conn.execute("UPDATE spaces SET generation = generation + 1 WHERE space = ?", (space,))
