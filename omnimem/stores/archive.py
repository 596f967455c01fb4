"""Item statistics for forgetting (access count, last access, importance) and the archive (schema 3).

Archived items leave every active table and index but are kept whole (row and vectors) so a prune
is never a silent loss: :meth:`ArchiveMixin.restore` brings them back. Access statistics are counted
by reads, which never take the write lock: they are buffered and written with the next write.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

import numpy as np
import sqlite_utils

from omnimem.errors import MemoryLocked, NotFound
from omnimem.types import Item, utc_now

__all__ = ["migration_archive", "ArchiveMixin"]

_ACCESS_BUFFER = 5_000  # buffered access statistics that trigger a write (when the lock is free)


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


class ArchiveMixin:
    """Statistics and archive methods of :class:`~omnimem.stores.sqlite.SQLiteRecordStore` (its tables
    ``item_stats``, ``archive`` and ``archive_vectors``)."""

    _lock: threading.RLock
    _access: dict[str, tuple[int, str]]  # access statistics not yet written: id -> (count, last)

    def touch_access(self, ids: Sequence[str], when: str) -> None:
        """Count one access of each item (search hits handed to a caller).

        A read must never wait for the write lock, so the counts are buffered here and written with
        the next write transaction of this store, or at :meth:`flush_access` / close (buffered counts
        are advisory: a crash loses at most them, never an item).
        """
        with self._lock:
            for item_id in dict.fromkeys(ids):
                count, _ = self._access.get(item_id, (0, when))
                self._access[item_id] = (count + 1, when)
            if len(self._access) >= _ACCESS_BUFFER:
                self.flush_access(wait=False)

    def flush_access(self, *, wait: bool = True) -> bool:
        """Write buffered access statistics; with ``wait=False`` only if the write lock is free now."""
        with self._lock:
            if not self._access:
                return True
            try:
                with self.transaction(wait=wait):
                    pass  # the transaction writes the buffer before it commits
            except MemoryLocked:
                return False
            return True

    def _write_access(self) -> None:
        if self._access:
            self.conn.executemany(
                "INSERT INTO item_stats (item_id, access_count, last_access) SELECT ?, ?, ?"
                " WHERE EXISTS (SELECT 1 FROM items WHERE id = ?) ON CONFLICT(item_id) DO UPDATE SET"
                " access_count = access_count + excluded.access_count, last_access = excluded.last_access",
                [(i, count, last, i) for i, (count, last) in self._access.items()],
            )

    def set_importance(self, ids: Sequence[str], importance: float) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO item_stats (item_id, importance) VALUES (?, ?)"
                " ON CONFLICT(item_id) DO UPDATE SET importance = excluded.importance",
                [(i, float(importance)) for i in ids],
            )

    def stats(self, ids: Sequence[str]) -> dict[str, tuple[int, str | None, float]]:
        """``{id: (access_count, last_access, importance)}``; items never touched are absent."""
        out: dict[str, tuple[int, str | None, float]] = {}
        ids = list(ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._read(
                f"SELECT item_id, access_count, last_access, importance FROM item_stats"
                f" WHERE item_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            out.update({r[0]: (r[1], r[2], r[3]) for r in rows})
        with self._lock:  # counts buffered by reads and not yet written
            for item_id in set(ids) & set(self._access):
                count, last = self._access[item_id]
                old_count, _, importance = out.get(item_id, (0, None, 1.0))
                out[item_id] = (old_count + count, last, importance)
        return out

    def archive(self, ids: Sequence[str], reason: str) -> list[str]:
        """Move items (row, vectors, stats) to the archive, in one transaction; returns those moved."""
        moved: list[str] = []
        archived_at = utc_now()
        items = [i for i in self.get(list(dict.fromkeys(ids))) if i is not None]
        stats = self.stats([i.id for i in items])
        with self.transaction() as conn:
            for item in items:
                payload = json.dumps(item.to_dict(), ensure_ascii=False)
                conn.execute(
                    "INSERT OR REPLACE INTO archive (item_id, item, stats, reason, archived_at) VALUES (?, ?, ?, ?, ?)",
                    (item.id, payload, json.dumps(stats.get(item.id, ())), reason, archived_at),
                )
                conn.execute(
                    "INSERT OR REPLACE INTO archive_vectors SELECT item_id, space, vector FROM vectors WHERE item_id = ?",
                    (item.id,),
                )
                moved.append(item.id)
        if moved:
            self.delete(moved)
        return moved

    def archived(self) -> list[tuple[str, str, str]]:
        """``(item id, reason, archived_at)`` of every archived item, oldest first."""
        return [tuple(r) for r in self._read("SELECT item_id, reason, archived_at FROM archive ORDER BY archived_at")]

    def restore(self, ids: Sequence[str]) -> list[Item]:
        """Bring archived items back (row and vectors); returns them."""
        restored: list[Item] = []
        for item_id in dict.fromkeys(ids):
            rows = self._read("SELECT item FROM archive WHERE item_id = ?", (item_id,))
            if not rows:
                raise NotFound(f"no archived item {item_id!r}")
            data = json.loads(rows[0][0])
            item = Item(**data)
            vectors: dict[str, tuple[list[str], np.ndarray]] = {}
            for space, blob in self._read("SELECT space, vector FROM archive_vectors WHERE item_id = ?", (item_id,)):
                vectors[space] = ([item_id], np.frombuffer(blob, dtype=np.float32)[None, :].copy())
            self.add([item], vectors)
            with self.transaction() as conn:
                conn.execute("DELETE FROM archive WHERE item_id = ?", (item_id,))
                conn.execute("DELETE FROM archive_vectors WHERE item_id = ?", (item_id,))
            restored.append(item)
        return restored

    def archived_items(self, ids: Sequence[str]) -> list[Item]:
        """The archived copies among ``ids`` (prune moved them out of the active tables)."""
        ids, out = list(dict.fromkeys(ids)), []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._read(f"SELECT item FROM archive WHERE item_id IN ({', '.join('?' * len(chunk))})", chunk)
            out += [Item(**json.loads(payload)) for (payload,) in rows]
        return out

    def drop_archived(self, ids: Sequence[str]) -> None:
        """Delete archived copies (a privacy delete reaches the archive too)."""
        with self.transaction() as conn:
            for item_id in dict.fromkeys(ids):
                conn.execute("DELETE FROM archive WHERE item_id = ?", (item_id,))
                conn.execute("DELETE FROM archive_vectors WHERE item_id = ?", (item_id,))
