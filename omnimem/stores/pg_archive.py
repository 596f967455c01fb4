"""Item statistics for forgetting and the archive, on PostgreSQL (tables ``item_stats``, ``archive``,
``archive_vectors``): the behaviour of :mod:`omnimem.stores.archive`.

Reads never write: access counts are buffered in the process and written with its next write
transaction (in a savepoint, so a locked statistics row never fails that write: the counts then stay
buffered for the next one), or by :meth:`PgArchiveMixin.flush_access` and at close.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from omnimem.errors import MemoryLocked, NotFound, OmnimemError
from omnimem.stores.sqlite_sql import ITEM_COLUMNS, row_item
from omnimem.types import Item, utc_now

__all__ = ["PgArchiveMixin"]

log = logging.getLogger(__name__)

_ACCESS_BUFFER = 5_000  # buffered access statistics that trigger a write (when no row is locked)

Access = dict[str, tuple[int, str]]  # item id -> (accesses not yet written, last access)


class PgArchiveMixin:
    """Statistics and archive methods of :class:`~omnimem.stores.pg_records.PostgresRecordStore`."""

    db: Any  # the store's PgDatabase
    _lock: threading.RLock  # guards _access
    _access: Access  # access statistics not yet written
    _read: Callable[..., list[tuple]]
    _write: Callable[..., Any]
    spaces: Callable[[], dict[str, int]]
    add: Callable[..., list[str]]
    _delete_in: Callable[[Any, Sequence[str]], list[str]]

    # -- access statistics -------------------------------------------------------------------
    def touch_access(self, ids: Sequence[str], when: str) -> None:
        """Count one access of each item (search hits handed to a caller).

        A read must never wait for a writer, so the counts are buffered here and written with the
        next write transaction of this store, or at :meth:`flush_access` / close (buffered counts
        are advisory: a crash loses at most them, never an item).
        """
        with self._lock:
            for item_id in dict.fromkeys(ids):
                count, _ = self._access.get(item_id, (0, when))
                self._access[item_id] = (count + 1, when)
            full = len(self._access) >= _ACCESS_BUFFER
        if full and not self.db.in_transaction:
            self.flush_access(wait=False)

    def flush_access(self, *, wait: bool = True) -> bool:
        """Write buffered access statistics; with ``wait=False`` only if no row they touch is locked now.

        Inside a transaction of this thread they are written with that transaction (True).
        """
        if self.db.in_transaction:
            return True
        taken = self._take_access()
        if not taken:
            return True
        try:
            with self.db.transaction(wait=wait) as conn:
                self._store_access(conn, taken)
        except MemoryLocked:
            self._put_back(taken)
            return False
        except BaseException:
            self._put_back(taken)
            raise
        return True

    def _take_access(self) -> Access:
        with self._lock:
            taken, self._access = self._access, {}
        return taken

    def _put_back(self, taken: Access) -> None:
        """Return counts whose write rolled back to the buffer (merged with those counted since)."""
        if not taken:
            return
        with self._lock:
            for item_id, (count, last) in taken.items():
                newer, newer_last = self._access.get(item_id, (0, last))
                self._access[item_id] = (count + newer, max(last, newer_last))

    def _write_access(self, conn: Any) -> Access:
        """Write the buffer inside the outermost transaction, in a savepoint; returns what it wrote
        (to put back if the transaction then fails). A failure here leaves the counts buffered."""
        taken = self._take_access()
        if not taken:
            return {}
        # advisory counts never hold a write up: a row another writer holds fails them in 50 ms
        (before,) = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
        conn.execute("SELECT set_config('lock_timeout', '50ms', true)")
        try:
            with self.db.transaction():  # nested: a savepoint, rolled back alone on error
                self._store_access(conn, taken)
        except OmnimemError as e:
            log.debug("access statistics kept for the next write: %s", e)
            self._put_back(taken)
            taken = {}
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (before,))
        return taken

    @staticmethod
    def _store_access(conn: Any, taken: Access) -> None:
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO item_stats (item_id, access_count, last_access) SELECT %s, %s, %s"
                " WHERE EXISTS (SELECT 1 FROM items WHERE id = %s) ON CONFLICT (item_id) DO UPDATE SET"
                " access_count = item_stats.access_count + excluded.access_count, last_access = excluded.last_access",
                [(i, count, last, i) for i, (count, last) in sorted(taken.items())],  # id order: no deadlock
            )

    def set_importance(self, ids: Sequence[str], importance: float) -> None:
        rows = [(i, float(importance)) for i in sorted(set(ids))]

        def work(conn: Any) -> None:
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO item_stats (item_id, importance) VALUES (%s, %s)"
                    " ON CONFLICT (item_id) DO UPDATE SET importance = excluded.importance",
                    rows,
                )

        self._write(work)

    def stats(self, ids: Sequence[str]) -> dict[str, tuple[int, str | None, float]]:
        """``{id: (access_count, last_access, importance)}``; items never touched are absent.

        Counts buffered by reads are included; while another thread of this process commits them
        they may briefly be missing (statistics are advisory)."""
        ids = list(ids)
        rows = self._read(
            "SELECT item_id, access_count, last_access, importance FROM item_stats WHERE item_id = ANY(%s::text[])",
            (ids,),
        )
        out: dict[str, tuple[int, str | None, float]] = {r[0]: (r[1], r[2], r[3]) for r in rows}
        with self._lock:
            for item_id in set(ids) & set(self._access):
                count, last = self._access[item_id]
                old_count, _, importance = out.get(item_id, (0, None, 1.0))
                out[item_id] = (old_count + count, last, importance)
        return out

    # -- archive -----------------------------------------------------------------------------
    def archive(self, ids: Sequence[str], reason: str) -> list[str]:
        """Move items (row, vectors, stats) to the archive, in one transaction; returns those moved."""
        wanted = sorted(set(ids))
        order = {item_id: n for n, item_id in enumerate(dict.fromkeys(ids))}
        archived_at = utc_now()

        def work(conn: Any) -> list[str]:
            rows = conn.execute(
                f"SELECT {', '.join(ITEM_COLUMNS)} FROM items WHERE id = ANY(%s::text[]) ORDER BY id FOR UPDATE",
                (wanted,),
            ).fetchall()  # locked: a concurrent delete either went first or waits for this move
            items = sorted((row_item(r) for r in rows), key=lambda item: order[item.id])
            moved = [item.id for item in items]
            stats = self.stats(moved)
            for item in items:
                conn.execute(
                    "INSERT INTO archive (item_id, item, stats, reason, archived_at) VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (item_id) DO UPDATE SET item = excluded.item, stats = excluded.stats,"
                    " reason = excluded.reason, archived_at = excluded.archived_at",
                    (item.id, json.dumps(item.to_dict(), ensure_ascii=False), json.dumps(stats.get(item.id, ())),
                     reason, archived_at),
                )  # fmt: skip
            for space in sorted(self.spaces()):
                conn.execute(
                    f"INSERT INTO archive_vectors (item_id, space, vector) SELECT item_id, %s, embedding::real[]"
                    f" FROM vectors_{space} WHERE item_id = ANY(%s::text[])"
                    " ON CONFLICT (item_id, space) DO UPDATE SET vector = excluded.vector",
                    (space, moved),
                )
            self._delete_in(conn, moved)
            return moved

        return self._write(work)

    def archived(self) -> list[tuple[str, str, str]]:
        """``(item id, reason, archived_at)`` of every archived item, oldest first."""
        rows = self._read("SELECT item_id, reason, archived_at FROM archive ORDER BY archived_at, item_id")
        return [tuple(r) for r in rows]

    def restore(self, ids: Sequence[str]) -> list[Item]:
        """Bring archived items back (row and vectors), one transaction each; returns them."""
        restored: list[Item] = []
        for item_id in dict.fromkeys(ids):

            def work(conn: Any, item_id: str = item_id) -> Item:
                row = conn.execute("SELECT item FROM archive WHERE item_id = %s FOR UPDATE", (item_id,)).fetchone()
                if row is None:
                    raise NotFound(f"no archived item {item_id!r}")
                item = Item(**json.loads(row[0]))
                vectors = {
                    space: ([item_id], np.asarray(vector, dtype=np.float32)[None, :])
                    for space, vector in conn.execute(
                        "SELECT space, vector FROM archive_vectors WHERE item_id = %s ORDER BY space", (item_id,)
                    ).fetchall()
                }
                self.add([item], vectors)  # nested in this transaction
                conn.execute("DELETE FROM archive WHERE item_id = %s", (item_id,))
                conn.execute("DELETE FROM archive_vectors WHERE item_id = %s", (item_id,))
                return item

            restored.append(self._write(work))
        return restored

    def archived_items(self, ids: Sequence[str]) -> list[Item]:
        """The archived copies among ``ids`` (prune moved them out of the active tables)."""
        rows = self._read("SELECT item FROM archive WHERE item_id = ANY(%s::text[])", (list(dict.fromkeys(ids)),))
        return [Item(**json.loads(payload)) for (payload,) in rows]

    def drop_archived(self, ids: Sequence[str]) -> None:
        """Delete archived copies (a privacy delete reaches the archive too)."""
        wanted = sorted(set(ids))

        def work(conn: Any) -> None:
            conn.execute("DELETE FROM archive WHERE item_id = ANY(%s::text[])", (wanted,))
            conn.execute("DELETE FROM archive_vectors WHERE item_id = ANY(%s::text[])", (wanted,))

        self._write(work)
