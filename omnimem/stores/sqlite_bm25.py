"""BM25 over the SQLite store's FTS5 index, read on a connection of its own.

A query's BM25 and its dense search are independent, so the retrieval layer runs them at the same
time (:func:`omnimem.retrieval.hybrid.bm25_later`). On the store's one connection (one lock) they
would take turns; this mixin therefore reads the full-text index through a second connection
(used for reads only) with its own lock, opened on first use. It never writes the database file (the query
stemmer's tables are temporary) and holds no transaction between queries, so it neither blocks a
writer nor keeps a snapshot that would stop a WAL checkpoint after a privacy delete.

Inside a write transaction of the calling thread the store's own connection is used instead: only it
sees the transaction's uncommitted rows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from omnimem.stores.base import Filters
from omnimem.stores.sqlite_driver import sqlite3
from omnimem.stores.sqlite_sql import BM25_COMMON as _COMMON
from omnimem.stores.sqlite_sql import BM25_PRUNE_FROM as _PRUNE_FROM
from omnimem.stores.sqlite_sql import filter_sql, query_words, translate

__all__ = ["BM25Mixin"]


class _Reader:
    """One connection for full-text reads, its lock, and what it caches."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.stemmer = False  # the temporary tables that stem query words exist on this connection


class BM25Mixin:
    """``bm25`` for :class:`~omnimem.stores.sqlite.SQLiteRecordStore` (needs ``path``, ``conn``, ``_lock``;
    the store calls :meth:`_init_fts` before opening its connection)."""

    path: str
    conn: Any
    _lock: Any
    busy_timeout: float

    def bm25(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[str, float]]:
        """Top-k ``(id, score)`` by BM25 (FTS5, Porter stems). In a large memory (over 50,000 items) the
        query's words found in more than 2,000 items are left out: FTS5 scores every row of every
        posting list it reads (no early stop), so one common word at a million items costs more than the
        rest of a search; with this cap a query reads a bounded number of rows whatever the memory's
        size, and the dense retriever still matches what the left-out words mean. If every word is that
        common, the rarest one stays. Without filters only the top k rows are joined to their items."""
        if k <= 0:
            return []
        with self._fts() as reader:
            words = query_words(query)
            n = int(reader.conn.execute("SELECT max(rowid) FROM items").fetchone()[0] or 0)  # no scan
            if len(words) > 1 and n > _PRUNE_FROM:
                words = self._rare_words(reader, words, n)
            match = " OR ".join(f'"{w}"' for w in words)
            if not match:
                return []
            where, params = filter_sql(filters)
            if where:
                sql = (
                    "SELECT items.id, bm25(items_fts) AS score FROM items_fts"
                    " JOIN items ON items.rowid = items_fts.rowid"
                    f" WHERE items_fts MATCH ? {where} ORDER BY score LIMIT ?"
                )
            else:  # rank first, then look up k items (a join per matching row costs as much as the ranking)
                sql = (
                    "SELECT items.id, top.score FROM (SELECT rowid, bm25(items_fts) AS score FROM items_fts"
                    " WHERE items_fts MATCH ? ORDER BY score LIMIT ?) AS top"
                    " JOIN items ON items.rowid = top.rowid ORDER BY top.score"
                )
            rows = reader.conn.execute(sql, (match, *params, int(k))).fetchall()
        return [(item_id, -float(score)) for item_id, score in rows]

    def _init_fts(self) -> None:
        """No reader yet (the side connection opens on the first BM25 outside a transaction)."""
        self._fts_lock = threading.Lock()  # guards opening and closing the readers
        self._own_reader: _Reader | None = None  # the store's connection, with its stemmer state
        self._side_reader: _Reader | None = None
        self._df: dict[str, tuple[int, int]] = {}  # stem -> (items holding it, memory size when counted)

    @contextmanager
    def _fts(self) -> Iterator[_Reader]:
        """The full-text reader, locked: the side connection, or the store's own one inside a write
        transaction of this thread (or for an in-memory database, which no second connection sees)."""
        try:
            if self.path == ":memory:" or self.path.startswith("file::memory:"):
                with self._lock:
                    yield self._own()
                return
            if self._lock.acquire(blocking=False):  # held by another thread: its transaction is not ours
                try:
                    if self.conn is not None and self.conn.in_transaction:
                        yield self._own()
                        return
                finally:
                    self._lock.release()
            reader = self._side()
            with reader.lock:
                yield reader
        except sqlite3.DatabaseError as e:
            raise translate(e, self.path) from e

    def _own(self) -> _Reader:
        with self._fts_lock:
            if self._own_reader is None:
                self._own_reader = _Reader(self.conn)
            return self._own_reader

    def _side(self) -> _Reader:
        with self._fts_lock:
            if self._side_reader is None:
                conn = sqlite3.connect(
                    self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
                )
                self._side_reader = _Reader(conn)
            return self._side_reader

    def _close_fts(self) -> None:
        with self._fts_lock:
            reader, self._side_reader, self._own_reader = self._side_reader, None, None
        if reader is not None:
            with reader.lock:
                try:
                    reader.conn.close()
                except sqlite3.Error:  # pragma: no cover - closing a broken handle
                    pass

    def _rare_words(self, reader: _Reader, words: list[str], n: int) -> list[str]:
        """``words`` without those in more than ``_COMMON`` items (see :meth:`bm25`)."""
        df = self._df
        counts = {}
        for word, stem in zip(words, _stems(reader, words)):
            cached = df.get(stem)
            if cached is None or cached[1] < 0.9 * n:  # counted when the memory was much smaller
                rows = reader.conn.execute("SELECT doc FROM temp.items_fts_vocab WHERE term = ?", (stem,)).fetchall()
                cached = df[stem] = (int(rows[0][0]) if rows else 0, n)
            counts[word] = cached[0]
        kept = [w for w in words if counts[w] <= _COMMON]
        return kept or sorted(words, key=counts.__getitem__)[:1]


def _stems(reader: _Reader, words: list[str]) -> list[str]:
    """The Porter stems FTS5 indexes ``words`` under (tokenized by a temporary FTS5 table)."""
    conn = reader.conn
    if not reader.stemmer:
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.omnimem_q USING fts5(t, tokenize = 'porter')")
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.omnimem_qv USING fts5vocab(temp, omnimem_q, 'instance')")
        # the memory's own vocabulary, read through a temporary table: a read never writes the file
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.items_fts_vocab USING fts5vocab(main, items_fts, 'row')")
        reader.stemmer = True
    conn.execute("DELETE FROM temp.omnimem_q")
    conn.executemany("INSERT INTO temp.omnimem_q (rowid, t) VALUES (?, ?)", list(enumerate(words, start=1)))
    stems = dict(conn.execute("SELECT doc, term FROM temp.omnimem_qv").fetchall())
    return [stems.get(i, w) for i, w in enumerate(words, start=1)]
