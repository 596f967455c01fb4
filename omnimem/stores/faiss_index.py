"""FAISS vector index over string ids, persisted as ``index/<space>.faiss`` + ``.ids.json``.

Exact inner-product search (``IDMap2,Flat``) for small memories; an inverted-file index
(``IVF<nlist>,Flat``) once the index reaches ``approx_threshold`` vectors, trained on the vectors it
already holds. String ids map to int64 FAISS ids by a 63-bit BLAKE2b hash. The files are written
atomically (temporary file + rename) and carry the record store's generation, so a memory can tell
on open whether the index lags the database and repair it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omnimem.errors import ConfigError, CorruptInput, missing_extra
from omnimem.stores.exact import check_batch

__all__ = ["FaissIndex", "int_id", "load_faiss", "is_ivf"]


def load_faiss() -> Any:
    """The ``faiss`` module, imported on first use (a clear error when it is missing)."""
    try:
        import faiss
    except ImportError as e:  # pragma: no cover - faiss-cpu is a default dependency
        raise missing_extra("faiss-cpu", "default") from e
    return faiss


def is_ivf(index: Any) -> bool:
    """Whether a FAISS index is (or wraps) an inverted-file index."""
    try:
        load_faiss().extract_index_ivf(index)
    except RuntimeError:
        return False
    return True


def int_id(item_id: str) -> int:
    """The int64 FAISS id of a string id (63-bit BLAKE2b, so never negative)."""
    digest = hashlib.blake2b(item_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


def ivf_lists(n: int) -> int:
    """Inverted lists for ``n`` vectors: about sqrt(n), a power of two, 16..65536."""
    return int(min(65536, max(16, 2 ** round(math.log2(max(1.0, math.sqrt(n)))))))


class FaissIndex:
    """A :class:`~omnimem.stores.base.VectorIndex` on FAISS (inner product on L2-normalised rows)."""

    def __init__(self, dim: int, *, factory: str = "auto", approx_threshold: int = 100_000, nprobe: int = 32) -> None:
        if dim <= 0:
            raise ConfigError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.factory = factory
        self.approx_threshold = approx_threshold
        self.nprobe = nprobe
        self._str: dict[int, str] = {}
        self._index = self._empty(factory if factory != "auto" else "Flat")

    @property
    def kind(self) -> str:
        """``"flat"`` or ``"ivf"``: which structure currently answers searches."""
        return "ivf" if is_ivf(self._index) else "flat"

    # -- protocol ----------------------------------------------------------------------------
    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        vectors = check_batch(ids, vectors, self.dim)
        if not len(ids):
            return
        self.delete(ids)
        keys = np.array([int_id(i) for i in ids], dtype=np.int64)
        for key, item_id in zip(keys.tolist(), ids):
            other = self._str.get(key)
            if other is not None and other != item_id:  # pragma: no cover - 2**-63 per pair
                raise ConfigError(f"id hash collision between {other!r} and {item_id!r}")
            self._str[key] = item_id
        if is_ivf(self._index) and not self._index.is_trained:
            self._index.train(vectors)
        self._index.add_with_ids(vectors, keys)
        if self.factory == "auto" and self.kind == "flat" and len(self) >= self.approx_threshold:
            self._become_ivf()

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ConfigError(f"expected queries of shape (n, {self.dim}), got {queries.shape}")
        if not len(self) or k <= 0:
            return [[] for _ in range(len(queries))]
        scores, keys = self._index.search(queries, min(k, len(self)))
        return [
            [(self._str[key], float(s)) for key, s in zip(row_keys.tolist(), row_scores.tolist()) if key >= 0]
            for row_keys, row_scores in zip(keys, scores)
        ]

    def delete(self, ids: Iterable[str]) -> int:
        keys = [key for key in (int_id(i) for i in ids) if key in self._str]
        if not keys:
            return 0
        faiss = load_faiss()
        removed = self._index.remove_ids(faiss.IDSelectorBatch(np.array(keys, dtype=np.int64)))
        for key in keys:
            del self._str[key]
        return int(removed)

    def ids(self) -> list[str]:
        return list(self._str.values())

    def __len__(self) -> int:
        return int(self._index.ntotal)

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path, *, generation: int = 0) -> None:
        """Write ``path`` (the index) and ``path.ids.json`` (id map + generation) atomically."""
        faiss = load_faiss()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = faiss.serialize_index(self._index).tobytes()
        # the two files are renamed one after the other: the checksum tells a pair from two saves apart
        meta = {"dim": self.dim, "generation": generation, "ntotal": len(self), "crc32": zlib.crc32(data), "ids": self.ids()}  # fmt: skip
        _atomic_write(path, data)
        _atomic_write(Path(f"{path}.ids.json"), json.dumps(meta).encode("utf-8"))

    @classmethod
    def load(cls, path: str | Path, **options) -> tuple[FaissIndex, int]:
        """Read an index written by :meth:`save`; returns ``(index, generation)``.

        Raises :class:`CorruptInput` when the files are unreadable or disagree with each other;
        the caller rebuilds the index from the record store then.
        """
        faiss = load_faiss()
        path = Path(path)
        try:
            meta = json.loads(Path(f"{path}.ids.json").read_text(encoding="utf-8"))
            data = path.read_bytes()
            if isinstance(meta, dict) and meta.get("crc32", zlib.crc32(data)) != zlib.crc32(data):
                raise ValueError("the index file and its id map come from different saves")
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except (OSError, ValueError, RuntimeError) as e:
            raise CorruptInput(f"cannot read vector index {path} ({e}); it will be rebuilt from SQLite") from e
        ids, generation = meta.get("ids") if isinstance(meta, dict) else None, None
        if isinstance(meta, dict) and type(meta.get("generation", 0)) is int:
            generation = meta.get("generation", 0)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or generation is None:
            raise CorruptInput(f"the id map of vector index {path} is malformed; it will be rebuilt from SQLite")
        if index.ntotal != meta.get("ntotal") or index.d != meta.get("dim") or len(ids) != index.ntotal:
            raise CorruptInput(f"vector index {path} and its id map disagree; it will be rebuilt from SQLite")
        self = cls(index.d, **options)
        self._index = index
        if is_ivf(index):
            faiss.extract_index_ivf(index).nprobe = self.nprobe
        self._str = {int_id(i): i for i in ids}
        return self, generation

    # -- internals ---------------------------------------------------------------------------
    def _empty(self, factory: str):
        faiss = load_faiss()
        try:
            index = faiss.index_factory(self.dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as e:
            raise ConfigError(f"invalid FAISS factory string {factory!r}: {e}") from e
        if is_ivf(index):
            faiss.extract_index_ivf(index).nprobe = self.nprobe
            faiss.extract_index_ivf(index).make_direct_map(False)
            return index
        return faiss.IndexIDMap2(index)

    def _become_ivf(self) -> None:
        """Switch from exact search to IVF, training on the vectors already held (same ids)."""
        keys = load_faiss().vector_to_array(self._index.id_map).astype(np.int64)
        vectors = self._index.index.reconstruct_n(0, self._index.ntotal)
        index = self._empty(f"IVF{ivf_lists(len(keys))},Flat")
        index.train(vectors)
        index.add_with_ids(vectors, keys)
        self._index = index


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
