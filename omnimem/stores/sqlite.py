"""The SQLite record store: items, per-space vectors and FTS5 BM25, the memory's source of truth.

WAL mode (readers run beside one writer), one ``BEGIN IMMEDIATE`` transaction per batch, a schema
version in ``PRAGMA user_version`` with forward migrations, and content-hash ids so a repeated add is
a no-op. Vector indexes are derived from the ``vectors`` table and can always be rebuilt from it.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from omnimem.errors import ConfigError, CorruptInput, MemoryLocked, NotFound, StorageError
from omnimem.stores.archive import migration_archive
from omnimem.stores.base import Filters
from omnimem.stores.nodes import NODE_COLUMNS, Node, migration_nodes, node_items_where, node_keys, row_node, touch_nodes
from omnimem.types import Item, utc_now

__all__ = ["SQLiteRecordStore", "SCHEMA_VERSION", "fts_query", "Vectors"]

Vectors = tuple[Sequence[str], np.ndarray]  # (ids, float32 (n, dim)): the vectors of one space

log = logging.getLogger(__name__)

_ITEM_COLUMNS = (
    "id", "modality", "text", "blob", "source", "session", "episode", "speaker",
    "event_time", "ingest_time", "t_start", "t_end", "metadata",
)  # fmt: skip

# Words too common to help BM25 rank; dropping them also keeps OR-queries short.
_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up very was we were what when where which while who whom why will
    with would you your yours yourself yourselves""".split()
)


def fts_query(text: str) -> str:
    """An FTS5 MATCH expression that ORs the query's content words, each quoted (no syntax errors)."""
    words = []
    for word in re.findall(r"\w+", text.lower()):
        if word not in _STOPWORDS and (len(word) > 1 or word.isdigit()) and word not in words:
            words.append(word)
    return " OR ".join(f'"{w}"' for w in words)


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


# Forward migrations: MIGRATIONS[i] takes the schema from version i to i + 1.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_migration_1, migration_nodes, migration_archive]
SCHEMA_VERSION = len(MIGRATIONS)


class SQLiteRecordStore:
    """A :class:`~omnimem.stores.base.RecordStore` in one SQLite file (or ``":memory:"``)."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0, synchronous: str = "NORMAL") -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._savepoints = 0  # names nested transactions
        try:
            self.conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={synchronous}")
            # Deleted content is overwritten, not left in free pages: a privacy delete leaves no trace.
            self.conn.execute("PRAGMA secure_delete=ON")
            self.db = sqlite_utils.Database(self.conn)
            self._migrate()
        except sqlite3.DatabaseError as e:
            self._close_quietly()
            raise _translate(e, self.path) from e

    # -- schema ------------------------------------------------------------------------------
    def _migrate(self) -> None:
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
            self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): all of it commits, or none of it.

        Nested inside another transaction of this store (same thread), it is a SAVEPOINT: its work
        commits with the outer transaction, and an error inside it rolls back only its own part.
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
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as e:
                raise _translate(e, self.path) from e
            try:
                yield self.conn
            except BaseException as e:
                self.conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.DatabaseError):
                    raise _translate(e, self.path) from e
                raise
            else:
                try:
                    self.conn.execute("COMMIT")
                except sqlite3.DatabaseError as e:
                    self.conn.execute("ROLLBACK")
                    raise _translate(e, self.path) from e

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a read-only SQL query under the store's lock (for layers above that own tables here)."""
        return self._read(sql, params)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as e:
                raise _translate(e, self.path) from e

    # -- items -------------------------------------------------------------------------------
    def add(self, items: Sequence[Item], vectors: Mapping[str, Vectors] | None = None) -> list[str]:
        vectors = {space: _vector_rows(space, v) for space, v in (vectors or {}).items()}
        added: list[str] = []
        with self.transaction() as conn:
            for item in items:
                cursor = conn.execute(
                    f"INSERT OR IGNORE INTO items ({', '.join(_ITEM_COLUMNS)}, heading)"
                    f" VALUES ({', '.join('?' * (len(_ITEM_COLUMNS) + 1))})",
                    _item_row(item),
                )
                if cursor.rowcount:
                    added.append(item.id)
            fresh = set(added)
            touch_nodes(conn, node_keys(item for item in items if item.id in fresh))
            for space, (dim, rows) in vectors.items():
                new_rows = [(i, v) for i, v in rows.items() if i in fresh]
                for item_id, vector in new_rows:
                    self._put_vector(conn, space, item_id, vector)
                self._touch_space(conn, space, dim, bump=bool(new_rows))
        return added

    def get(self, ids: Sequence[str]) -> list[Item | None]:
        found: dict[str, Item] = {}
        ids = list(ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._read(
                f"SELECT {', '.join(_ITEM_COLUMNS)} FROM items WHERE id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                found[row[0]] = _row_item(row)
        return [found.get(i) for i in ids]

    def update(self, item: Item, vectors: Mapping[str, Vectors] | None = None) -> None:
        vectors = {space: _vector_rows(space, v) for space, v in (vectors or {}).items()}
        row = _item_row(item)
        with self.transaction() as conn:
            cursor = conn.execute(
                f"UPDATE items SET {', '.join(f'{c} = ?' for c in (*_ITEM_COLUMNS[1:], 'heading'))} WHERE id = ?",
                (*row[1:], item.id),
            )
            if not cursor.rowcount:
                raise NotFound(f"no item with id {item.id!r}")
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
                spaces.update(r[0] for r in conn.execute("SELECT space FROM vectors WHERE item_id = ?", (item_id,)))
                conn.execute("DELETE FROM vectors WHERE item_id = ?", (item_id,))
                conn.execute("DELETE FROM item_stats WHERE item_id = ?", (item_id,))
                if conn.execute("DELETE FROM items WHERE id = ?", (item_id,)).rowcount:
                    deleted.append(item_id)
            for space in spaces:
                conn.execute("UPDATE spaces SET generation = generation + 1 WHERE space = ?", (space,))
            touch_nodes(conn, node_keys(Item.make(text="", episode=e, session=s) for e, s in pairs))
        return deleted

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

    def set_summary(self, node: Node, summary: str, kind: str) -> bool:
        """Write a node's summary; its dirty flag clears only if no item changed since ``node`` was read.

        Returns whether the summary is current (False: items arrived meanwhile, refresh again).
        """
        with self.transaction() as conn:
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

    # -- forgetting: statistics and the archive (omnimem.stores.archive) ---------------------
    def touch_access(self, ids: Sequence[str], when: str) -> None:
        """Count one access of each item (search hits handed to a caller)."""
        if not ids:
            return
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO item_stats (item_id, access_count, last_access) VALUES (?, 1, ?)"
                " ON CONFLICT(item_id) DO UPDATE SET access_count = access_count + 1, last_access = excluded.last_access",
                [(i, when) for i in dict.fromkeys(ids)],
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

    def has_episode(self, episode: str) -> bool:
        """Whether any item belongs to ``episode`` (a media file's episode id, a conversation ...)."""
        return bool(self._read("SELECT 1 FROM items WHERE episode = ? LIMIT 1", (episode,)))

    def ids(self) -> Iterator[str]:
        return iter([r[0] for r in self._read("SELECT id FROM items ORDER BY rowid")])

    def __len__(self) -> int:
        return self._read("SELECT count(*) FROM items")[0][0]

    def __contains__(self, item_id: object) -> bool:
        return bool(self._read("SELECT 1 FROM items WHERE id = ?", (item_id,)))

    # -- BM25 --------------------------------------------------------------------------------
    def bm25(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[str, float]]:
        match = fts_query(query)
        if not match or k <= 0:
            return []
        where, params = _filter_sql(filters)
        sql = (
            "SELECT items.id, bm25(items_fts) AS score FROM items_fts"
            " JOIN items ON items.rowid = items_fts.rowid"
            f" WHERE items_fts MATCH ? {where} ORDER BY score LIMIT ?"
        )
        rows = self._read(sql, (match, *params, int(k)))
        return [(item_id, -float(score)) for item_id, score in rows]

    # -- vectors -----------------------------------------------------------------------------
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
        conn.execute(
            "INSERT OR REPLACE INTO vectors (space, item_id, vector) VALUES (?, ?, ?)",
            (space, item_id, np.ascontiguousarray(vector, dtype=np.float32).tobytes()),
        )

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
        with self._lock:
            self._close_quietly()

    def _close_quietly(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing a broken handle
                pass
            self.conn = None  # type: ignore[assignment]


def _item_row(item: Item) -> tuple:
    """The ``items`` row of an item: its fields, then the derived ``heading`` column."""
    values = item.to_dict()
    values["metadata"] = json.dumps(item.metadata, ensure_ascii=False, sort_keys=True)
    values["ingest_time"] = item.ingest_time or utc_now()
    return (*(values[c] for c in _ITEM_COLUMNS), item.heading)


def _row_item(row: tuple) -> Item:
    values = dict(zip(_ITEM_COLUMNS, row))
    values["metadata"] = json.loads(values["metadata"] or "{}")
    return Item(**values)


def _vector_rows(space: str, value: Vectors) -> tuple[int, dict[str, np.ndarray]]:
    """Validate ``(ids, float32 (n, dim))`` for a space -> ``(dim, {id: row})``."""
    try:
        ids, array = value
    except (TypeError, ValueError):
        raise ConfigError(f"vectors for space {space!r} must be a pair (ids, array)") from None
    ids = list(ids)
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.shape[0] != len(ids):
        shape = getattr(array, "shape", None)
        raise ConfigError(f"vectors for space {space!r} must have shape ({len(ids)}, dim), got {shape}")
    return int(array.shape[1]), dict(zip(ids, array))


def _filter_sql(filters: Filters | None) -> tuple[str, list[Any]]:
    if filters is None:
        return "", []
    clauses, params = [], []
    for column, values in (
        ("modality", filters.modalities), ("session", filters.sessions),
        ("episode", filters.episodes), ("speaker", filters.speakers),
    ):  # fmt: skip
        if values is not None:
            clauses.append(f"items.{column} IN ({', '.join('?' * len(values))})" if values else "0")
            params += list(values)
    if filters.since is not None:
        clauses.append("items.event_time >= ?")
        params.append(filters.since)
    if filters.until is not None:
        clauses.append("items.event_time < ?")
        params.append(filters.until)
    return "".join(f" AND {c}" for c in clauses), params


def _translate(error: sqlite3.DatabaseError, path: str) -> Exception:
    """Turn a sqlite3 error into one of omnimem's, with the fix in the message."""
    message = str(error)
    if "not a database" in message or "malformed" in message:
        return CorruptInput(
            f"{path} is not a readable SQLite database ({message}); restore it from a backup, or"
            " move it away and rebuild the memory from its sources"
        )
    if "locked" in message or "busy" in message:
        return MemoryLocked(
            f"{path} is locked by another writer ({message}); wait for it to finish, or raise store.busy_timeout"
        )
    if "full" in message:
        return StorageError(f"no space left to write {path} ({message}); free disk space and retry")
    if "readonly" in message or "read-only" in message:
        return StorageError(f"{path} is read-only ({message}); check the file's permissions")
    return StorageError(f"SQLite error on {path}: {message}")
