"""Vector search of one embedding space inside PostgreSQL (pgvector): the index is the table.

The record store keeps each space's vectors in ``vectors_<space>`` with an HNSW index (cosine); a
search is one ``ORDER BY embedding <=> query LIMIT k`` on it. Nothing lives outside the database, so
there is nothing to keep in step, save or rebuild after a crash: every process and host sees every
committed vector at once. :class:`PgVectorIndex` offers the surface :class:`~omnimem.stores.segments.SegmentedIndex`
offers the memory layer (``search``, ``applied``, ``refresh``, ``generation`` ...), where the
bookkeeping methods are no-ops.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from omnimem.errors import ConfigError
from omnimem.stores.segments import SyncReport

__all__ = ["PgVectorIndex", "vector_literal"]

HNSW_EF_MAX = 1_000  # pgvector's largest hnsw.ef_search

_SPACE = re.compile(r"[a-z][a-z0-9_]{0,40}")


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form of one row: ``[0.1,0.2,...]`` (float32 written exactly: repr round-trips)."""
    return "[" + ",".join(repr(float(x)) for x in np.asarray(vector, dtype=np.float32)) + "]"


class PgVectorIndex:
    """One space's nearest-neighbour search over the record store's pgvector table."""

    def __init__(self, records: Any, space: str, dim: int, *, ef_search: int = 100) -> None:
        if not _SPACE.fullmatch(space):
            raise ConfigError(f"space name {space!r} must be lower-case letters, digits or '_'")
        self.store = records  # a PostgresRecordStore
        self.space = space
        self.dim = dim
        self.ef_search = ef_search  # HNSW candidate list: recall against latency, at least k
        self.index = self  # what Memory.check() reads ids from
        self.last_report = SyncReport(space, 0, 0, False)

    # -- the SegmentedIndex surface -----------------------------------------------------------------
    @property
    def generation(self) -> int:
        return self.store.generation(self.space)

    def applied(self, ids: Sequence[str], vectors: np.ndarray | None, generation_before: int) -> None:
        """Nothing to mirror: the committed rows are the index."""

    def refresh(self, *, force: bool = False) -> SyncReport:
        return SyncReport(self.space, 0, 0, False)

    def rebuild(self) -> SyncReport:
        if self.store.space_dim(self.space) is not None:
            with self.store.transaction() as conn:
                conn.execute(f"REINDEX TABLE vectors_{self.space}")
        return SyncReport(self.space, 0, 0, True)

    def save(self) -> None:
        """Nothing to write: the database is the index."""

    def close(self) -> None:
        """The record store owns the connections."""

    # -- search ------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """For each query row, up to ``k`` ``(item id, cosine)`` pairs, best first."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ConfigError(f"expected queries of shape (n, {self.dim}), got {queries.shape}")
        if k <= 0 or self.store.space_dim(self.space) is None:
            return [[] for _ in range(len(queries))]
        vs = self.store.vector_schema  # pgvector's own schema: its type and operators live there
        sql = (
            f"SELECT item_id, 1 - (embedding OPERATOR({vs}.<=>) %s::{vs}.vector) FROM vectors_{self.space}"
            f" ORDER BY embedding OPERATOR({vs}.<=>) %s::{vs}.vector LIMIT %s"
        )
        out = []
        with self.store.db.transaction() as conn:  # SET LOCAL needs a transaction; a read takes no lock
            # pgvector caps ef_search at 1000; a larger k (a filtered search over-fetching) keeps scanning
            # the graph past it (iterative scan, pgvector >= 0.8), its rows then sorted here
            conn.execute(
                "SELECT set_config('hnsw.ef_search', %s, true)", (str(min(HNSW_EF_MAX, max(self.ef_search, k))),)
            )
            if k > HNSW_EF_MAX:
                conn.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
            for query in queries:
                literal = vector_literal(query)
                rows = [(i, float(s)) for i, s in conn.execute(sql, (literal, literal, int(k))).fetchall()]
                out.append(sorted(rows, key=lambda r: -r[1]))
        return out

    def ids(self) -> list[str]:
        return self.store.vector_ids(self.space)

    def __len__(self) -> int:
        return len(self.ids()) if self.store.space_dim(self.space) is not None else 0
