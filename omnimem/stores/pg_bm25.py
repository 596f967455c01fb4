"""BM25 over PostgreSQL's ``tsvector`` column, scored as SQLite FTS5 scores it.

PostgreSQL's own ``ts_rank_cd`` has no inverse document frequency (a rare word counts as much as a
common one) and ranks by cover density; on the LoCoMo and MuSiQue dev sets it cost the hybrid search
0.10 and 0.16 of recall against the embedded store (``benchmarks/backends.py --evals``). This module
computes Okapi BM25 (k1 = 1.2, b = 0.75, FTS5's idf ``log((N - df + 0.5) / (df + 0.5))``) from the
same column, so both backends rank full text alike:

- a query word's stem is PostgreSQL's (``ts_lexize('english_stem', ...)``, the ``english`` text
  search configuration the column is built with); stopwords drop out;
- a document's length is its number of distinct stems (``length(tsv)``; FTS5 counts tokens), a
  term's frequency the number of its positions in the document;
- the collection statistics (N, the mean length, each stem's document frequency) are cached and
  recounted once the memory has grown by a tenth, as the SQLite store caches document frequencies;
- in a memory of over 50,000 items, words found in more than 2,000 are left out (as in SQLite: a
  query reads bounded posting lists whatever the memory's size).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

from omnimem.stores.base import Filters
from omnimem.stores.sqlite_sql import BM25_COMMON as COMMON
from omnimem.stores.sqlite_sql import BM25_PRUNE_FROM as PRUNE_FROM

__all__ = ["PgBM25", "K1", "B"]

K1, B = 1.2, 0.75


class PgBM25:
    """BM25 search over ``items.tsv`` through ``read(sql, params)`` (the store's pooled reads)."""

    def __init__(self, read: Callable[[str, Sequence[Any]], list[tuple]]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._stems: dict[str, str | None] = {}
        self._df: dict[str, tuple[int, int]] = {}  # stem -> (document frequency, N when counted)
        self._stats: tuple[int, float, int] | None = None  # (N, mean document length, max seq) when counted

    def search(self, words: Sequence[str], k: int, filters: Filters | None, filter_sql: Any) -> list[tuple[str, float]]:
        """Top-k ``(id, score)`` for ``words`` (content words of a query), best first."""
        n, avgdl = self._collection()
        stems = list(dict.fromkeys(s for s in (self._stem(w) for w in words) if s))
        if not stems or not n:
            return []
        df = {s: self._frequency(s, n) for s in stems}
        stems = [s for s in stems if df[s] > 0]
        if n > PRUNE_FROM and len(stems) > 1:
            stems = [s for s in stems if df[s] <= COMMON] or sorted(stems, key=df.__getitem__)[:1]
        if not stems:
            return []
        idf = [max(1e-6, math.log((n - df[s] + 0.5) / (df[s] + 0.5))) for s in stems]
        where, params = filter_sql(filters)
        tsquery = " | ".join(f"'{s}'" for s in stems)  # stems of \w+ words: nothing to escape
        sql = (
            "WITH q AS (SELECT unnest(%s::text[]) AS lexeme, unnest(%s::float8[]) AS idf),"
            " m AS (SELECT items.id, items.seq, items.tsv FROM items"
            f" WHERE items.tsv @@ to_tsquery('simple', %s){where})"
            " SELECT m.id, sum(q.idf * cardinality(u.positions) * %s"
            " / (cardinality(u.positions) + %s * (1 - %s + %s * length(m.tsv) / %s))) AS score"
            " FROM m CROSS JOIN LATERAL unnest(m.tsv) AS u JOIN q ON q.lexeme = u.lexeme"
            " GROUP BY m.id, m.seq ORDER BY score DESC, m.seq LIMIT %s"
        )
        rows = self._read(sql, (stems, idf, tsquery, *params, K1 + 1, K1, B, B, max(avgdl, 1e-9), int(k)))
        return [(item_id, float(score)) for item_id, score in rows]

    def _stem(self, word: str) -> str | None:
        with self._lock:
            if word not in self._stems:
                row = self._read("SELECT (ts_lexize('english_stem', %s))[1]", (word.lower(),))
                self._stems[word] = row[0][0] if row else None
            return self._stems[word]

    def _collection(self) -> tuple[int, float]:
        """(N, mean document length), recounted when the items' highest ``seq`` moved by a tenth since
        the last count (deletions leave it: the count stays until the memory grows)."""
        top = int(self._read("SELECT coalesce(max(seq), 0) FROM items", ())[0][0] or 0)
        with self._lock:
            if self._stats is None or not self._stats[2] <= top <= 1.1 * self._stats[2] + 1:
                n, avgdl = self._read("SELECT count(*), coalesce(avg(length(tsv)), 0) FROM items", ())[0]
                self._stats = (int(n), float(avgdl), top)
            return self._stats[0], self._stats[1]

    def _frequency(self, stem: str, n: int) -> int:
        with self._lock:
            cached = self._df.get(stem)
        if cached is None or cached[1] < 0.9 * n or cached[1] > n / 0.9:
            rows = self._read("SELECT count(*) FROM items WHERE tsv @@ to_tsquery('simple', %s)", (f"'{stem}'",))
            cached = (int(rows[0][0]), n)
            with self._lock:
                self._df[stem] = cached
        return cached[0]
