"""The SQLite record store: items, per-space vectors and FTS5 BM25, the memory's source of truth.

WAL mode (readers run beside one writer), one ``BEGIN IMMEDIATE`` transaction per batch, a schema
version in ``PRAGMA user_version`` with forward migrations, and content-hash ids so a repeated add is
a no-op. Vector indexes are derived from the ``vectors`` table (and its change log) and can always be rebuilt from it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from omnimem.errors import ConfigError, NotFound, OmnimemError
from omnimem.stores.archive import ArchiveMixin, migration_archive
from omnimem.stores.nodes import (
    NODE_COLUMNS,
    Node,
    clear_summaries,
    migration_nodes,
    node_items_where,
    node_keys,
    row_node,
    touch_nodes,
)
from omnimem.stores.sqlite_bm25 import BM25Mixin
from omnimem.stores.sqlite_driver import sqlite3
from omnimem.stores.sqlite_queries import QueryMixin
from omnimem.stores.sqlite_sql import (
    ITEM_COLUMNS,
    Vectors,
    fts_query,
    item_row,
    row_item,
    translate,
    vector_rows,
)
from omnimem.stores.sqlite_transfer import TransferMixin
from omnimem.stores.sqlite_vectors import VectorsMixin, migration_vector_log, vector_key
from omnimem.types import Item

if TYPE_CHECKING:
    from omnimem.stores.sqlite_facts import SQLiteFactLog
    from omnimem.stores.sqlite_graph import SQLiteGraphStore
    from omnimem.stores.sqlite_jobs import SQLiteJobProgress

__all__ = ["SQLiteRecordStore", "SCHEMA_VERSION", "fts_query", "Vectors"]

log = logging.getLogger(__name__)

# FTS5 removes a deleted row's tokens from its index at once (instead of leaving them in old segments
# until a merge) from SQLite 3.42; older libraries get an 'optimize' after a privacy delete instead.
FTS_SECURE_DELETE = sqlite3.sqlite_version_info >= (3, 42, 0)


def _migration_1(db: sqlite_utils.Database) -> None:
    """Initial schema: items (+ FTS5), vectors per embedding space, spaces with generations."""
    db["items"].create(
        {
            "id": str,
            "modality": str,
            "text": str,
            "blob": str,
            "source": str,
            "session": str,
            "episode": str,
            "speaker": str,
            "event_time": str,
            "ingest_time": str,
            "t_start": float,
            "t_end": float,
            "metadata": str,
            "heading": str,  # derived: Item.heading, indexed by FTS beside the text
        },  # fmt: skip
        pk="id",
        not_null={"modality", "text", "metadata"},
    )
    for column in ("session", "episode", "modality", "event_time", "source", "blob"):
        db["items"].create_index([column], index_name=f"items_{column}")
    # The heading (speaker or title, see Item.heading) is indexed beside the text: questions name
    # people and topics ("When did Caroline ...?") that the text itself leaves out.
    db["items"].enable_fts(["text", "heading"], tokenize="porter", create_triggers=True)
    db.execute(
        "CREATE TABLE vectors (space TEXT NOT NULL, item_id TEXT NOT NULL, vector BLOB NOT NULL,"
        " PRIMARY KEY (space, item_id)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX vectors_item ON vectors(item_id)")
    db.execute(
        "CREATE TABLE spaces (space TEXT PRIMARY KEY, dim INTEGER NOT NULL, generation INTEGER NOT NULL DEFAULT 0)"
    )


def _migration_meta(db: sqlite_utils.Database) -> None:
    """Schema 4: a key-value ``meta`` table (how this memory derives turn ids, see ``turn_ids``) and
    the ``pending`` table of work owed on committed items."""
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    # Work owed on committed items (graph extraction after an add): written in the items' own
    # transaction, cleared when done, so a process killed in between leaves a note, not a gap.
    db.execute(
        "CREATE TABLE pending (job TEXT NOT NULL, item_id TEXT NOT NULL, PRIMARY KEY (job, item_id)) WITHOUT ROWID"
    )
    if FTS_SECURE_DELETE:
        db.execute("INSERT INTO items_fts(items_fts, rank) VALUES ('secure-delete', 1)")


def _migration_speaker(db: sqlite_utils.Database) -> None:
    """Schema 6: items by speaker (a speaker filter reads its own items, not every row)."""
    db.execute("CREATE INDEX IF NOT EXISTS items_speaker ON items(speaker)")


# Forward migrations: MIGRATIONS[i] takes the schema from version i to i + 1.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _migration_1,
    migration_nodes,
    migration_archive,
    _migration_meta,
    migration_vector_log,
    _migration_speaker,
]
SCHEMA_VERSION = len(MIGRATIONS)


class SQLiteRecordStore(ArchiveMixin, BM25Mixin, QueryMixin, TransferMixin, VectorsMixin):
    """A :class:`~omnimem.stores.base.RecordStore` in one SQLite file (or ``":memory:"``)."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0, synchronous: str = "NORMAL") -> None:
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self._savepoints = 0  # names nested transactions
        self._access: dict[str, tuple[int, str]] = {}  # access statistics not yet written: id -> (count, last)
        self._init_fts()
        try:
            self.conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
            if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # a read when already WAL
                self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={synchronous}")
            # Deleted content is overwritten, not left in free pages: a privacy delete leaves no trace.
            self.conn.execute("PRAGMA secure_delete=ON")
            self.db = sqlite_utils.Database(self.conn)
            self._migrate()
            rows = self.conn.execute("SELECT value FROM meta WHERE key = 'turn_ids'").fetchall()
        except sqlite3.DatabaseError as e:
            self._close_quietly()
            raise translate(e, self.path) from e
        # "place": a conversation turn's id carries its position; "content": a memory created before
        # schema 4, whose turns keep their content ids (a repeated turn alone gets its place).
        self.turn_ids = rows[0][0] if rows else "content"

    # -- schema ------------------------------------------------------------------------------
    def _migrate(self) -> None:
        """Bring the schema to ``SCHEMA_VERSION``; a current schema is only read (no write lock)."""
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{self.path} has schema version {version}, newer than this omnimem ({SCHEMA_VERSION});"
                " upgrade omnimem to open it"
            )
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]  # re-read under the lock
            for step in range(version, SCHEMA_VERSION):
                log.info("migrating %s schema %d -> %d", self.path, step, step + 1)
                MIGRATIONS[step](self.db)
            turn_ids = "place" if version == 0 else "content"
            self.conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('turn_ids', ?)", (turn_ids,))
            self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def transaction(self, *, wait: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): all of it commits, or none of it.

        Nested inside another transaction of this store (same thread), it is a SAVEPOINT: its work
        commits with the outer transaction, and an error inside it rolls back only its own part.
        ``wait=False``: raise :class:`MemoryLocked` at once when another process holds the write lock
        (for optional writes, such as a summary computed while reading). Access statistics buffered
        by reads are written with the next transaction.
        """
        with self._lock:
            if self.conn.in_transaction:
                self._savepoints += 1
                name = f"omnimem_{self._savepoints}"
                self.conn.execute(f"SAVEPOINT {name}")
                try:
                    yield self.conn
                except BaseException:
                    self.conn.execute(f"ROLLBACK TO {name}")
                    self.conn.execute(f"RELEASE {name}")
                    raise
                else:
                    self.conn.execute(f"RELEASE {name}")
                return
            self._begin(wait)
            try:
                yield self.conn
                self._write_access()
            except BaseException as e:
                self.conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.DatabaseError):
                    raise translate(e, self.path) from e
                raise
            else:
                try:
                    self.conn.execute("COMMIT")
                except sqlite3.DatabaseError as e:
                    self.conn.execute("ROLLBACK")
                    raise translate(e, self.path) from e
                self._access.clear()

    def _begin(self, wait: bool) -> None:
        if not wait:
            self.conn.execute("PRAGMA busy_timeout = 0")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as e:
            raise translate(e, self.path) from e
        finally:
            if not wait:
                self.conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a read-only SQL query under the store's lock (for layers above that own tables here)."""
        return self._read(sql, params)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as e:
                raise translate(e, self.path) from e

    # -- items -------------------------------------------------------------------------------
    def add(
        self, items: Sequence[Item], vectors: Mapping[str, Vectors] | None = None, *, jobs: Sequence[str] = ()
    ) -> list[str]:
        """Insert the items not yet stored, their vectors and, for each of ``jobs``, a note that the job
        is owed on them (:meth:`pending`), in one transaction; returns the ids inserted."""
        vectors = {space: vector_rows(space, v) for space, v in (vectors or {}).items()}
        added: list[str] = []
        with self.transaction() as conn:
            for item in items:
                cursor = conn.execute(
                    f"INSERT OR IGNORE INTO items ({', '.join(ITEM_COLUMNS)}, heading)"
                    f" VALUES ({', '.join('?' * (len(ITEM_COLUMNS) + 1))})",
                    item_row(item),
                )
                if cursor.rowcount:
                    added.append(item.id)
            fresh = set(added)
            conn.executemany(
                "INSERT OR IGNORE INTO pending (job, item_id) VALUES (?, ?)", [(j, i) for j in jobs for i in added]
            )
            touch_nodes(conn, node_keys(item for item in items if item.id in fresh))
            for space, (dim, rows) in vectors.items():
                new_rows = [(i, v) for i, v in rows.items() if i in fresh]
                for item_id, vector in new_rows:
                    self._put_vector(conn, space, item_id, vector)
                self._touch_space(conn, space, dim, bump=bool(new_rows))
        return added

    def pending(self, job: str, limit: int = 500, *, added_before: str | None = None) -> list[str]:
        """Ids of items ``job`` is still owed on (their add committed, the job's work did not); with
        ``added_before`` (ISO-8601 UTC), only items stored before then."""
        if added_before is None:
            return [r[0] for r in self._read("SELECT item_id FROM pending WHERE job = ? LIMIT ?", (job, int(limit)))]
        sql = (
            "SELECT p.item_id FROM pending p JOIN items i ON i.id = p.item_id"
            " WHERE p.job = ? AND i.ingest_time < ? LIMIT ?"
        )
        return [r[0] for r in self._read(sql, (job, added_before, int(limit)))]

    def finish(self, job: str, ids: Sequence[str]) -> None:
        """``job`` is done (or given up) on these items."""
        with self.transaction() as conn:
            conn.executemany("DELETE FROM pending WHERE job = ? AND item_id = ?", [(job, i) for i in ids])

    def get(self, ids: Sequence[str]) -> list[Item | None]:
        found: dict[str, Item] = {}
        ids = list(ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._read(
                f"SELECT {', '.join(ITEM_COLUMNS)} FROM items WHERE id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                found[row[0]] = row_item(row)
        return [found.get(i) for i in ids]

    def update(self, item: Item, vectors: Mapping[str, Vectors] | None = None) -> None:
        vectors = {space: vector_rows(space, v) for space, v in (vectors or {}).items()}
        row = item_row(item)
        with self.transaction() as conn:
            old = conn.execute("SELECT episode, session FROM items WHERE id = ?", (item.id,)).fetchone()
            if old is None:
                raise NotFound(f"no item with id {item.id!r}")
            conn.execute(
                f"UPDATE items SET {', '.join(f'{c} = ?' for c in (*ITEM_COLUMNS[1:], 'heading'))} WHERE id = ?",
                (*row[1:], item.id),
            )
            keys = node_keys([item, Item(id="", modality="text", episode=old[0], session=old[1])])
            touch_nodes(conn, keys)  # spans follow a changed time, session or episode
            clear_summaries(conn, keys)  # no summary quotes the old text
            if not vectors:  # fields an index may hold (session, speaker ...) changed: its spaces replay it
                spaces = [r[0] for r in conn.execute("SELECT space FROM vectors WHERE item_id = ?", (item.id,))]
                conn.executemany(
                    "INSERT INTO vector_log (space, key, op) VALUES (?, ?, 'put')",
                    [(s, vector_key(item.id)) for s in spaces],
                )
            for space, (dim, rows) in vectors.items():
                for item_id, vector in rows.items():
                    if item_id != item.id:
                        raise ConfigError(f"update of {item.id!r} got a vector for another id {item_id!r}")
                    self._put_vector(conn, space, item_id, vector)
                self._touch_space(conn, space, dim, bump=bool(rows))

    def delete(self, ids: Sequence[str]) -> list[str]:
        deleted: list[str] = []
        with self.transaction() as conn:
            spaces: set[str] = set()
            pairs: set[tuple[str | None, str | None]] = set()
            for item_id in dict.fromkeys(ids):
                pairs.update(conn.execute("SELECT episode, session FROM items WHERE id = ?", (item_id,)).fetchall())
                spaces |= self._drop_vectors(conn, item_id)
                conn.execute("DELETE FROM item_stats WHERE item_id = ?", (item_id,))
                conn.execute("DELETE FROM pending WHERE item_id = ?", (item_id,))
                if conn.execute("DELETE FROM items WHERE id = ?", (item_id,)).rowcount:
                    deleted.append(item_id)
            for space in spaces:
                conn.execute("UPDATE spaces SET generation = generation + 1 WHERE space = ?", (space,))
            keys = node_keys(Item(id="", modality="text", episode=e, session=s) for e, s in pairs)
            touch_nodes(conn, keys)
            clear_summaries(conn, keys)
        return deleted

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it, once, without waiting: after a bulk load (its
        compactions' reads keep SQLite's automatic checkpoints from finishing, and a WAL of gigabytes
        made the next cold open read it all: 44 s at 1M items). Returns whether it was truncated."""
        busy, _, _ = self._read("PRAGMA wal_checkpoint(TRUNCATE)")[0]
        return not busy

    def purge(self) -> bool:
        """Leave no copy of deleted content in the files: merge the full-text index (when SQLite is too
        old to delete from it at once) and checkpoint the WAL into the database, then truncate it.

        Returns whether the WAL was truncated; a reader of another process that holds an old
        snapshot can keep it from being (retried until ``busy_timeout``), then the next checkpoint
        does it.
        """
        secure = self._read("SELECT v FROM items_fts_config WHERE k = 'secure-delete'")
        if not (FTS_SECURE_DELETE and secure and secure[0][0]):  # this memory's FTS keeps deleted tokens
            with self.transaction() as conn:
                conn.execute("INSERT INTO items_fts(items_fts) VALUES ('optimize')")
        deadline = time.monotonic() + self.busy_timeout
        while True:
            busy, _, _ = self._read("PRAGMA wal_checkpoint(TRUNCATE)")[0]
            if not busy:
                return True
            if time.monotonic() >= deadline:
                log.warning(
                    "%s-wal not truncated: another process holds a read snapshot; the next checkpoint will", self.path
                )
                return False
            time.sleep(0.05)

    # -- episodic tree nodes (omnimem.stores.nodes) ------------------------------------------
    def nodes(
        self, *, level: str | None = None, episode: str | None = None, since: str | None = None,
        until: str | None = None, dirty: bool | None = None, ids: Sequence[str] | None = None,
    ) -> list[Node]:  # fmt: skip
        """Sessions / episodes, in time order; ``since``/``until`` keep nodes whose span overlaps."""
        clauses, params = [], []
        for column, value in (("level", level), ("episode", episode)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if dirty is not None:
            clauses.append("dirty = ?")
            params.append(int(dirty))
        if since is not None:
            clauses.append("last_time >= ?")
            params.append(since)
        if until is not None:
            clauses.append("first_time < ?")
            params.append(until)
        if ids is not None:
            clauses.append(f"id IN ({', '.join('?' * len(ids))})" if ids else "0")
            params += list(ids)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {', '.join(NODE_COLUMNS)} FROM nodes {where} ORDER BY first_time, t_start, id"
        return [row_node(r) for r in self._read(sql, params)]

    def node_item_ids(self, node: Node, *, limit: int | None = None) -> list[str]:
        """Ids of the items under ``node`` in time order (the latest ``limit`` when given)."""
        where, params = node_items_where(node)
        order = "ORDER BY event_time DESC, t_start DESC, rowid DESC" if limit else "ORDER BY event_time, t_start, rowid"
        rows = self._read(f"SELECT id FROM items WHERE {where} {order} LIMIT ?", (*params, limit or -1))
        ids = [r[0] for r in rows]
        return ids[::-1] if limit else ids

    def set_summary(self, node: Node, summary: str, kind: str, sources: Sequence[str] = ()) -> bool:
        """Write a node's summary, quoting the items ``sources``; returns whether it is current.

        The summary is written only if every item it quotes still exists (one may have been
        forgotten since ``node`` was read: its words must not come back); its dirty flag clears only
        if no item changed since then (False: refresh again).
        """
        with self.transaction() as conn:
            ids = list(dict.fromkeys(sources))
            alive = sum(
                conn.execute(f"SELECT count(*) FROM items WHERE id IN ({', '.join('?' * len(c))})", c).fetchone()[0]
                for c in (ids[i : i + 500] for i in range(0, len(ids), 500))
            )
            if alive < len(ids):
                return False
            conn.execute("UPDATE nodes SET summary = ?, summary_kind = ? WHERE id = ?", (summary, kind, node.id))
            cursor = conn.execute("UPDATE nodes SET dirty = 0 WHERE id = ? AND version = ?", (node.id, node.version))
            return bool(cursor.rowcount)

    def neighbours(self, ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """For each id, the previous and next item of the same (episode, session), in insertion order.

        Items outside any session have no neighbours. Used to give a turn the context of the turns
        around it (the question before an answer, the answer after a question).
        """
        out: dict[str, tuple[str | None, str | None]] = {}
        ids = list(dict.fromkeys(ids))
        same = "n.session = c.session AND n.episode IS c.episode"
        for start in range(0, len(ids), 500):  # one statement per 500 ids, not three per id
            chunk = ids[start : start + 500]
            rows = self._read(
                f"SELECT c.id,"
                f" (SELECT n.id FROM items n WHERE {same} AND n.rowid < c.rowid ORDER BY n.rowid DESC LIMIT 1),"
                f" (SELECT n.id FROM items n WHERE {same} AND n.rowid > c.rowid ORDER BY n.rowid LIMIT 1)"
                f" FROM items c WHERE c.id IN ({', '.join('?' * len(chunk))}) AND c.session IS NOT NULL",
                chunk,
            )
            out.update({item_id: (before, after) for item_id, before, after in rows})
        return out

    def graph_store(self) -> SQLiteGraphStore:
        """The M3KG tables of this database (:mod:`omnimem.stores.sqlite_graph`), sharing its transactions."""
        from omnimem.stores.sqlite_graph import SQLiteGraphStore

        return SQLiteGraphStore(self)

    def fact_log(self) -> SQLiteFactLog:
        """The fact log of this database (:mod:`omnimem.stores.sqlite_facts`)."""
        from omnimem.stores.sqlite_facts import SQLiteFactLog

        return SQLiteFactLog(self)

    def get_meta(self, key: str) -> str | None:
        """A value of the ``meta`` table (None when unset)."""
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str, *, only_new: bool = False) -> bool:
        """Set a ``meta`` value; with ``only_new``, only if unset. Returns whether it was written."""
        conflict = "DO NOTHING" if only_new else "DO UPDATE SET value = excluded.value"
        with self.transaction() as conn:
            return bool(
                conn.execute(
                    f"INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) {conflict}", (key, value)
                ).rowcount
            )

    def progress(self) -> SQLiteJobProgress:
        """Which items each graph job has processed (:mod:`omnimem.stores.sqlite_jobs`)."""
        from omnimem.stores.sqlite_jobs import SQLiteJobProgress

        return SQLiteJobProgress(self)

    def has_episode(self, episode: str) -> bool:
        """Whether any item belongs to ``episode`` (a media file's episode id, a conversation ...)."""
        return bool(self._read("SELECT 1 FROM items WHERE episode = ? LIMIT 1", (episode,)))

    def ids(self) -> Iterator[str]:
        return iter([r[0] for r in self._read("SELECT id FROM items ORDER BY rowid")])

    def __len__(self) -> int:
        return self._read("SELECT count(*) FROM items")[0][0]

    def __contains__(self, item_id: object) -> bool:
        return bool(self._read("SELECT 1 FROM items WHERE id = ?", (item_id,)))

    # -- lifecycle ---------------------------------------------------------------------------
    def integrity_check(self) -> list[str]:
        """SQLite's own integrity check plus FTS consistency; an empty list means healthy."""
        problems = [r[0] for r in self._read("PRAGMA integrity_check") if r[0] != "ok"]
        try:
            with self._lock:
                self.conn.execute("INSERT INTO items_fts(items_fts, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError as e:
            problems.append(f"full-text index: {e}")
        return problems

    def rebuild_fts(self) -> None:
        """Rebuild the FTS5 index from the items table."""
        with self.transaction() as conn:
            conn.execute("INSERT INTO items_fts(items_fts) VALUES ('rebuild')")

    def close(self) -> None:
        """Write buffered access statistics (waiting at most a second for the lock) and close."""
        with self._lock:
            if getattr(self, "conn", None) is not None and self._access:
                deadline = time.monotonic() + min(1.0, self.busy_timeout)
                try:
                    while not self.flush_access(wait=False) and time.monotonic() < deadline:
                        time.sleep(0.05)
                except OmnimemError as e:  # statistics are advisory; closing must not fail for them
                    log.warning("access statistics of %s not written: %s", self.path, e)
            self._close_quietly()

    def _close_quietly(self) -> None:
        self._close_fts()
        conn = getattr(self, "conn", None)
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing a broken handle
                pass
            self.conn = None  # type: ignore[assignment]
