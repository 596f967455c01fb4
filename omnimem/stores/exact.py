"""An exact, in-memory vector index in numpy: the reference :class:`VectorIndex` for tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from omnimem.errors import ConfigError

__all__ = ["ExactIndex", "check_batch"]


def check_batch(ids: Sequence[str], vectors: np.ndarray, dim: int) -> np.ndarray:
    """Validate an upsert batch; returns the vectors as C-contiguous float32 ``(n, dim)``."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ConfigError(f"expected vectors of shape (n, {dim}), got {vectors.shape}")
    if vectors.shape[0] != len(ids):
        raise ConfigError(f"got {len(ids)} ids for {vectors.shape[0]} vectors")
    if len(set(ids)) != len(ids):
        raise ConfigError("duplicate ids in one upsert batch")
    if not np.isfinite(vectors).all():
        raise ConfigError("vectors contain NaN or infinity")
    return np.ascontiguousarray(vectors, dtype=np.float32)


class ExactIndex:
    """Brute-force inner-product search over a dense matrix (the rows of deleted ids are dropped)."""

    def __init__(self, dim: int) -> None:
        if dim <= 0:
            raise ConfigError(f"dim must be positive, got {dim}")
        self.dim = dim
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        self._matrix = np.zeros((0, dim), dtype=np.float32)

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        vectors = check_batch(ids, vectors, self.dim)
        self.delete(ids)
        self._row.update({i: len(self._ids) + n for n, i in enumerate(ids)})
        self._ids.extend(ids)
        self._matrix = np.vstack([self._matrix, vectors])

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if not self._ids or k <= 0:
            return [[] for _ in range(len(queries))]
        scores = queries @ self._matrix.T
        k = min(k, len(self._ids))
        out = []
        for row in scores:
            top = np.argpartition(-row, k - 1)[:k]
            top = top[np.argsort(-row[top], kind="stable")]
            out.append([(self._ids[j], float(row[j])) for j in top])
        return out

    def delete(self, ids: Iterable[str]) -> int:
        gone = {i for i in ids if i in self._row}
        if gone:
            keep = [n for n, i in enumerate(self._ids) if i not in gone]
            self._ids = [self._ids[n] for n in keep]
            self._matrix = self._matrix[keep]
            self._row = {i: n for n, i in enumerate(self._ids)}
        return len(gone)

    def ids(self) -> list[str]:
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)
