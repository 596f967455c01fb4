"""The PostgreSQL record store: items, per-space pgvector tables and full text, a memory's source of
truth on a server. The same surface and promises as :class:`~omnimem.stores.sqlite.SQLiteRecordStore`.

Tables live in the memory's schema (:mod:`omnimem.stores.pg_schema`), versioned with
``db.migrate("records", ...)``. Every write is one transaction, re-run as a whole when PostgreSQL
reports a serialization failure or a deadlock with another writer. Adds are idempotent under
concurrent writers of other processes: ``INSERT ... ON CONFLICT (id) DO NOTHING``, rows written in id
order (two writers cannot lock each other's rows in opposite orders), ``RETURNING`` what was new.
Readers never wait: under MVCC a read sees the last committed state beside any writer.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from omnimem.errors import ConfigError, NotFound, OmnimemError, StorageError
from omnimem.stores.base import Filters
from omnimem.stores.nodes import node_keys
from omnimem.stores.pg_archive import Access, PgArchiveMixin
from omnimem.stores.pg_bm25 import PgBM25
from omnimem.stores.pg_nodes import PgNodeMixin, clear_summaries, touch_nodes
from omnimem.stores.pg_queries import PgQueryMixin
from omnimem.stores.pg_schema import (
    FTS_EXPR,
    MIGRATIONS,
    check_space,
    chunks,
    is_space,
    pg_filter_sql,
    pg_item_row,
    vector_literal,
    vector_schema,
    vector_table_sql,
)
from omnimem.stores.pg_transfer import PgTransferMixin
from omnimem.stores.sqlite_sql import ITEM_COLUMNS, Vectors, query_words, row_item, vector_rows
from omnimem.types import Item

if TYPE_CHECKING:
    from omnimem.stores.pg import PgDatabase
    from omnimem.stores.pg_facts import PgJobProgress

__all__ = ["PostgresRecordStore", "SCHEMA_VERSION"]

log = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA_VERSION = len(MIGRATIONS)
_INSERT_COLUMNS = ("seq", *ITEM_COLUMNS, "heading")
_HELD_BACK = re.compile(r"(\d+) are dead but not yet removable")


class PostgresRecordStore(PgArchiveMixin, PgQueryMixin, PgNodeMixin, PgTransferMixin):
    """A :class:`~omnimem.stores.base.RecordStore` in one schema of a PostgreSQL database (pgvector).

    Full text: an item's heading and the first 200,000 characters of its text are indexed
    (PostgreSQL's ``tsvector`` holds at most 1 MB); the whole text is stored and returned. The
    store owns ``db``: :meth:`close` closes its pool (so does a failed construction).
    """

    def __init__(self, db: PgDatabase) -> None:
        self.db = db
        self.path = db.target.display  # for messages: the URL without its password
        self.busy_timeout = db.timeout  # seconds a writer waits for a row another writer holds
        self._lock = threading.RLock()  # guards the access buffer
        self._access: Access = {}  # access statistics not yet written: id -> (count, last)
        self._closed = False
        self._bm25 = PgBM25(self._read)  # full-text ranking with its cached collection statistics
        try:
            db.migrate("records", MIGRATIONS)
            self.vector_schema = vector_schema(db)  # pgvector's schema, quoted: its type and functions live there
            rows = db.read("SELECT value FROM meta WHERE key = 'turn_ids'")
        except BaseException:
            db.close()
            raise
        # "place": a conversation turn's id carries its position (every memory this code creates)
        self.turn_ids = rows[0][0] if rows else "place"

    # -- the backend's other stores, and its settings ---------------------------------------------
    def graph_store(self) -> Any:
        """The M3KG tables of this schema (:mod:`omnimem.stores.pg_graph`), sharing its transactions."""
        from omnimem.stores.pg_graph import PostgresGraphStore

        return PostgresGraphStore(self)

    def fact_log(self) -> Any:
        """The fact log of this schema (:mod:`omnimem.stores.pg_facts`)."""
        from omnimem.stores.pg_facts import PostgresFactLog

        return PostgresFactLog(self)

    def get_meta(self, key: str) -> str | None:
        """A value of the ``meta`` table (None when unset)."""
        rows = self.db.read("SELECT value FROM meta WHERE key = %s", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str, *, only_new: bool = False) -> bool:
        """Set a ``meta`` value; with ``only_new``, only if unset. Returns whether it was written."""
        conflict = "DO NOTHING" if only_new else "DO UPDATE SET value = excluded.value"
        sql = f"INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) {conflict}"
        return bool(self.db.run(lambda conn: conn.execute(sql, (key, value)).rowcount))

    @property
    def schema_version(self) -> int:
        return self.db.read("SELECT version FROM schema_versions WHERE component = 'records'")[0][0]

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, wait: bool = True) -> Iterator[Any]:
        """One transaction on this thread's connection: all of it commits, or none of it.

        Nested inside another transaction of this thread, it is a savepoint: its work commits with the
        outer transaction, and an error inside it rolls back only its own part. ``wait=False``: raise
        :class:`~omnimem.errors.MemoryLocked` at once when a row it writes is locked by another writer.
        Access statistics buffered by reads are written with the outermost transaction.
        """
        if self.db.in_transaction:
            with self.db.transaction(wait=wait) as conn:
                yield conn
            return
        written: Access = {}
        try:
            with self.db.transaction(wait=wait) as conn:
                yield conn
                written = self._write_access(conn)
        except BaseException:
            self._put_back(written)
            raise

    def _write(self, work: Callable[[Any], T]) -> T:
        """``work(conn)`` as one write transaction with the buffered access statistics, re-run whole on a
        serialization failure or deadlock (``work`` must be re-runnable); nested, a savepoint."""
        if self.db.in_transaction:
            return self.db.run(work)
        written: Access = {}

        def attempt(conn: Any) -> T:
            nonlocal written
            self._put_back(written)  # what a rolled-back attempt had taken
            written = {}
            result = work(conn)
            written = self._write_access(conn)
            return result

        try:
            return self.db.run(attempt)
        except BaseException:
            self._put_back(written)
            raise

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a read-only SQL query (for layers above that own tables here); ``%s`` placeholders."""
        return self.db.read(sql, params)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.db.read(sql, params)

    # -- items -------------------------------------------------------------------------------
    def add(
        self, items: Sequence[Item], vectors: Mapping[str, Vectors] | None = None, *, jobs: Sequence[str] = ()
    ) -> list[str]:
        """Insert the items not yet stored, their vectors and, for each of ``jobs``, a note that the job
        is owed on them (:meth:`pending`), in one transaction; returns the ids inserted."""
        literals = self._vector_literals(vectors)
        rows: dict[str, tuple] = {}  # id -> row, the first of a repeated id (as INSERT OR IGNORE keeps)
        for item in items:
            row = pg_item_row(item)
            rows.setdefault(item.id, row)
        in_order = list(rows)
        by_id = sorted(in_order)  # locks taken in id order: concurrent writers cannot deadlock
        jobs = list(dict.fromkeys(jobs))

        def work(conn: Any) -> list[str]:
            # insertion order (seq) is the caller's order, though rows are written in id order
            seqs = dict(zip(in_order, self._next_seqs(conn, len(in_order))))
            inserted: set[str] = set()
            for chunk in chunks(by_id):
                one = "(" + ", ".join(["%s"] * len(_INSERT_COLUMNS)) + ")"
                cursor = conn.execute(
                    f"INSERT INTO items ({', '.join(_INSERT_COLUMNS)}) VALUES {', '.join([one] * len(chunk))}"
                    " ON CONFLICT (id) DO NOTHING RETURNING id",
                    [value for item_id in chunk for value in (seqs[item_id], *rows[item_id])],
                )
                inserted.update(r[0] for r in cursor.fetchall())
            added = [item_id for item_id in in_order if item_id in inserted]
            if jobs and added:
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO pending (job, item_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        [(j, i) for j in jobs for i in sorted(inserted)],
                    )
            touch_nodes(conn, self.db.schema, node_keys(item for item in items if item.id in inserted))
            self._put_vectors(conn, {s: (dim, {i: v for i, v in r.items() if i in inserted}) for s, (dim, r) in literals.items()})  # fmt: skip
            return added

        return self._write(work)

    def update(self, item: Item, vectors: Mapping[str, Vectors] | None = None) -> None:
        literals = self._vector_literals(vectors)
        for rows in literals.values():
            for item_id in rows[1]:
                if item_id != item.id:
                    raise ConfigError(f"update of {item.id!r} got a vector for another id {item_id!r}")
        row = pg_item_row(item)

        def work(conn: Any) -> None:
            old = conn.execute("SELECT episode, session FROM items WHERE id = %s FOR UPDATE", (item.id,)).fetchone()
            if old is None:
                raise NotFound(f"no item with id {item.id!r}")
            conn.execute(
                f"UPDATE items SET {', '.join(f'{c} = %s' for c in (*ITEM_COLUMNS[1:], 'heading'))} WHERE id = %s",
                (*row[1:], item.id),
            )
            keys = node_keys([item, Item(id="", modality="text", episode=old[0], session=old[1])])
            touch_nodes(conn, self.db.schema, keys)  # spans follow a changed time, session or episode
            clear_summaries(conn, keys)  # no summary quotes the old text
            self._put_vectors(conn, literals)

        self._write(work)

    def delete(self, ids: Sequence[str]) -> list[str]:
        ids = list(ids)
        return self._write(lambda conn: self._delete_in(conn, ids))

    def _delete_in(self, conn: Any, ids: Sequence[str]) -> list[str]:
        """Delete items with everything hanging on them, inside the caller's transaction."""
        wanted = sorted(set(ids))
        conn.execute("SELECT id FROM items WHERE id = ANY(%s::text[]) ORDER BY id FOR UPDATE", (wanted,))  # id order
        rows = conn.execute(
            "DELETE FROM items WHERE id = ANY(%s::text[]) RETURNING id, episode, session", (wanted,)
        ).fetchall()
        for table in ("item_stats", "pending"):
            conn.execute(f"DELETE FROM {table} WHERE item_id = ANY(%s::text[])", (wanted,))
        changed = [
            space
            for (space,) in conn.execute("SELECT space FROM spaces ORDER BY space").fetchall()
            if conn.execute(f"DELETE FROM vectors_{space} WHERE item_id = ANY(%s::text[])", (wanted,)).rowcount
        ]
        keys = node_keys(Item(id="", modality="text", episode=e, session=s) for _, e, s in rows)
        touch_nodes(conn, self.db.schema, keys)
        clear_summaries(conn, keys)
        for space in changed:
            conn.execute("UPDATE spaces SET generation = generation + 1 WHERE space = %s", (space,))
        gone = {r[0] for r in rows}
        return [item_id for item_id in dict.fromkeys(ids) if item_id in gone]

    def get(self, ids: Sequence[str]) -> list[Item | None]:
        ids = list(ids)
        rows = self._read(
            f"SELECT {', '.join(ITEM_COLUMNS)} FROM items WHERE id = ANY(%s::text[])", (list(dict.fromkeys(ids)),)
        )
        found = {row[0]: row_item(row) for row in rows}
        return [found.get(i) for i in ids]

    def pending(self, job: str, limit: int = 500, *, added_before: str | None = None) -> list[str]:
        """Ids of items ``job`` is still owed on (their add committed, the job's work did not); with
        ``added_before`` (ISO-8601 UTC), only items stored before then."""
        if added_before is None:
            sql = "SELECT item_id FROM pending WHERE job = %s ORDER BY item_id LIMIT %s"
            return [r[0] for r in self._read(sql, (job, int(limit)))]
        sql = (
            "SELECT p.item_id FROM pending p JOIN items i ON i.id = p.item_id"
            " WHERE p.job = %s AND i.ingest_time < %s ORDER BY p.item_id LIMIT %s"
        )
        return [r[0] for r in self._read(sql, (job, added_before, int(limit)))]

    def finish(self, job: str, ids: Sequence[str]) -> None:
        """``job`` is done (or given up) on these items."""
        wanted = sorted(set(ids))
        self._write(lambda conn: conn.execute("DELETE FROM pending WHERE job = %s AND item_id = ANY(%s::text[])", (job, wanted)))  # fmt: skip

    def progress(self) -> PgJobProgress:
        """Which items each graph job has processed (:mod:`omnimem.stores.pg_facts`)."""
        from omnimem.stores.pg_facts import PgJobProgress

        return PgJobProgress(self)

    @staticmethod
    def _next_seqs(conn: Any, n: int) -> list[int]:
        if not n:
            return []
        rows = conn.execute(
            "SELECT nextval(pg_get_serial_sequence('items', 'seq')) FROM generate_series(1, %s) ORDER BY 1", (n,)
        ).fetchall()
        return [r[0] for r in rows]

    # -- full text ---------------------------------------------------------------------------
    def bm25(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[str, float]]:
        """Top-k ``(id, score)`` by Okapi BM25 over the ``tsv`` column, best first, scored as SQLite's
        FTS5 scores (:mod:`omnimem.stores.pg_bm25`); the query's content words are
        :func:`~omnimem.stores.sqlite_sql.query_words`'s."""
        words = query_words(query)
        if not words or k <= 0:
            return []
        return self._bm25.search(words, k, filters, pg_filter_sql)

    # -- vectors -----------------------------------------------------------------------------
    def vectors(self, space: str, ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        dim = self.space_dim(space)
        if dim is None:
            return [], np.zeros((0, 0), dtype=np.float32)
        sql = f"SELECT item_id, {self.vector_schema}.vector_send(embedding) FROM vectors_{space}"
        if ids is None:
            rows = self._read(f"{sql} ORDER BY item_id")
        else:
            rows = self._read(f"{sql} WHERE item_id = ANY(%s::text[]) ORDER BY item_id", (list(ids),))
        if not rows:
            return [], np.zeros((0, dim), dtype=np.float32)
        # vector_send: an int16 dimension and an unused int16 (4 bytes, one float's width), then the floats
        raw = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype=">f4").reshape(len(rows), dim + 1)
        return [r[0] for r in rows], raw[:, 1:].astype(np.float32)

    def vector_ids(self, space: str) -> list[str]:
        if self.space_dim(space) is None:
            return []
        return [r[0] for r in self._read(f"SELECT item_id FROM vectors_{space} ORDER BY item_id")]

    def generation(self, space: str) -> int:
        rows = self._read("SELECT generation FROM spaces WHERE space = %s", (space,))
        return rows[0][0] if rows else 0

    def space_dim(self, space: str) -> int | None:
        """The dimension of ``space``'s vectors; None if it has none (or cannot name a table)."""
        if not is_space(space):
            return None
        rows = self._read("SELECT dim FROM spaces WHERE space = %s", (space,))
        return rows[0][0] if rows else None

    def spaces(self) -> dict[str, int]:
        """Every embedding space with vectors here, and its dimension."""
        return dict(self._read("SELECT space, dim FROM spaces"))

    def _vector_literals(self, vectors: Mapping[str, Vectors] | None) -> dict[str, tuple[int, dict[str, str]]]:
        """Validated ``{space: (dim, {id: pgvector literal})}``, before any write."""
        out = {}
        for space, value in (vectors or {}).items():
            dim, rows = vector_rows(space, value)
            check_space(space)
            if not 1 <= dim <= 16_000:
                raise ConfigError(f"vectors for space {space!r} must have 1 to 16000 dimensions (pgvector), got {dim}")
            out[space] = (dim, {item_id: vector_literal(space, row) for item_id, row in rows.items()})
        return out

    def _put_vectors(self, conn: Any, literals: Mapping[str, tuple[int, Mapping[str, str]]]) -> None:
        """Write vectors (replacing an item's old one) and bump each changed space's generation."""
        changed = []
        for space in sorted(literals):
            dim, rows = literals[space]
            self._ensure_space(conn, space, dim)
            if rows:
                with conn.cursor() as cursor:
                    cursor.executemany(
                        f"INSERT INTO vectors_{space} (item_id, embedding) VALUES (%s, %s::{self.vector_schema}.vector)"
                        " ON CONFLICT (item_id) DO UPDATE SET embedding = excluded.embedding",
                        sorted(rows.items()),
                    )
                changed.append(space)
        for space in changed:
            conn.execute("UPDATE spaces SET generation = generation + 1 WHERE space = %s", (space,))

    def _ensure_space(self, conn: Any, space: str, dim: int) -> None:
        """Register ``space`` with its table on first use; refuse vectors of another dimension."""
        created = conn.execute(
            "INSERT INTO spaces (space, dim, generation) VALUES (%s, %s, 0) ON CONFLICT (space) DO NOTHING"
            " RETURNING space",
            (space, dim),
        ).fetchone()  # a concurrent first add of the space waits here until the other commits
        if created:
            for statement in vector_table_sql(space, dim, self.vector_schema):
                conn.execute(statement)
            return
        (stored,) = conn.execute("SELECT dim FROM spaces WHERE space = %s", (space,)).fetchone()
        if stored != dim:
            raise ConfigError(
                f"space {space!r} in {self.path} holds {stored}-d vectors, got {dim}-d; open it with"
                " the encoder that built it, or use a new memory (another schema)"
            )

    # -- lifecycle ---------------------------------------------------------------------------
    def integrity_check(self) -> list[str]:
        """Problems found, an empty list when healthy: every space has its vector table, every vector
        an item, and every item's full-text column what its text gives now."""
        problems: list[str] = []
        checks: list[tuple[str, str, Callable[[int], str]]] = [
            ("full text", f"SELECT count(*) FROM items WHERE tsv IS DISTINCT FROM {FTS_EXPR}",
             lambda n: f"full-text index: {n} item(s) indexed from another text; run rebuild_fts()"),
        ]  # fmt: skip
        try:
            spaces = sorted(self.spaces())
        except OmnimemError as e:
            return [f"spaces: {e}"]
        for space in spaces:
            if not self._read("SELECT to_regclass(%s)", (f"vectors_{space}",))[0][0]:
                problems.append(f"space {space!r}: its table vectors_{space} is missing")
                continue
            checks.append(
                (f"space {space!r}",
                 f"SELECT count(*) FROM vectors_{space} v WHERE NOT EXISTS (SELECT 1 FROM items WHERE id = v.item_id)",
                 lambda n, space=space: f"space {space!r}: {n} vector(s) of no item"),
            )  # fmt: skip
        for what, sql, message in checks:
            try:
                n = self._read(sql)[0][0]
            except OmnimemError as e:
                problems.append(f"{what}: {e}")
                continue
            if n:
                problems.append(message(n))
        return problems

    def rebuild_fts(self) -> None:
        """Recompute the full-text column of items whose stored value is stale (the generated column
        is always computed on write; a change of PostgreSQL's text-search dictionaries can leave old
        values) and rebuild its GIN index. Safe to run at any time; the index is locked meanwhile."""

        def work(conn: Any) -> None:
            conn.execute(f"UPDATE items SET text = text WHERE tsv IS DISTINCT FROM {FTS_EXPR}")
            conn.execute("REINDEX INDEX items_tsv")

        self._write(work)

    def purge(self) -> bool:
        """Remove the dead row versions deleted content leaves behind: ``VACUUM`` every table of this
        memory's schema (items, vector tables, nodes, archive, graph and facts).

        PostgreSQL keeps a deleted row on disk until VACUUM. The privacy promise here is: no read
        returns deleted content, and VACUUM removed its dead row versions; what the server's disk
        pages, WAL and backups keep is the server's concern. Returns False when it could not run
        (inside a transaction: the next purge, or autovacuum, does it) or when a transaction of another
        session still holds an old snapshot, so some dead rows were not yet removable.
        """
        if self.db.in_transaction:  # VACUUM cannot run inside a transaction
            log.debug("purge skipped inside a transaction of %s", self.path)
            return False
        import psycopg

        tables = [
            r[0]
            for r in self._read(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'"
                " ORDER BY table_name",
                (self.db.schema,),
            )
        ]
        held_back = []

        def notice(
            diagnostic: Any,
        ) -> None:  # VACUUM VERBOSE: "tuples: 3 removed, 5 remain, 0 are dead but not yet removable"
            found = _HELD_BACK.search(diagnostic.message_primary or "")
            if found and int(found.group(1)):
                held_back.append(found.group(0))

        try:
            with self.db.pool.connection() as conn:  # autocommit: VACUUM runs outside any transaction
                conn.add_notice_handler(notice)
                try:
                    for table in tables:
                        conn.execute(f'VACUUM (VERBOSE) "{self.db.schema}"."{table}"')
                finally:
                    conn.remove_notice_handler(notice)
        except psycopg.Error as e:
            raise StorageError(
                f"VACUUM of {self.path} failed ({e}); retry, or ask an admin to VACUUM the schema"
            ) from e
        if held_back:
            log.warning("%s: a transaction of another session holds old rows; the next purge removes them", self.path)
            return False
        return True

    def close(self) -> None:
        """Write buffered access statistics (waiting at most a second for locked rows) and close the pool."""
        if self._closed:
            return
        if self._access:
            deadline = time.monotonic() + min(1.0, self.busy_timeout)
            try:
                while not self.flush_access(wait=False) and time.monotonic() < deadline:
                    time.sleep(0.05)
            except OmnimemError as e:  # statistics are advisory; closing must not fail for them
                log.warning("access statistics of %s not written: %s", self.path, e)
        self._closed = True
        self.db.close()
