"""Milvus as a vector index: a milvus-lite path (embedded) or a Milvus server or cluster, same code.

Two layers:

- :class:`MilvusIndex` is a :class:`~omnimem.stores.base.VectorIndex` over one collection (upsert,
  search, delete, ids, len), the surface the conformance suite checks.
- :class:`MilvusSyncedIndex` is what the memory layer uses for one embedding space (the surface of
  :class:`~omnimem.stores.segments.SegmentedIndex`). The record store stays the source of truth; the
  collection is derived from it by replaying the store's vector log, and filtered searches are pushed
  down to Milvus as boolean expressions over the item fields stored beside each vector (a filter that
  few items pass is scored exactly instead: an HNSW walk through a sparse filter loses recall).

**Sync and crashes.** The collection keeps the log position it holds in a marker row (key -1, which
searches never read), not in a side file: whatever removes or replaces the collection (a
deleted milvus-lite path, a dropped collection, a server restored from an older backup) takes the
position with it, and a marker that is missing, older than the log's pruned floor or newer than the
log makes the next open rebuild from the store. Every replayed change is idempotent (a put writes the
vector the store holds *now*, a delete of a gone key is a no-op), and the marker is written after the
changes it covers, at most ``sync_every`` changes apart, so a crash at any instant costs at most a
replay of those changes. The log is pruned only up to a written marker, and only after a flush.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omnimem.errors import ConfigError, MemoryLocked, StorageError
from omnimem.stores.base import Filters
from omnimem.stores.exact import check_batch
from omnimem.stores.faiss_index import int_id
from omnimem.stores.milvus_common import (
    FILTER_FIELDS,
    MAX_TOPK,
    ROWS,
    check_name,
    connect,
    create_collection,
    disconnect,
    field_value,
    filter_expression,
    in_use,
    index_type_of,
    is_local,
    locked_elsewhere,
    milvus_target,
    pymilvus,
    schema_matches,
    wipe,
)
from omnimem.stores.segments import SyncReport

__all__ = ["MilvusIndex", "MilvusSyncedIndex", "open_synced_indexes"]

log = logging.getLogger(__name__)

_BATCH = 2_000  # rows per insert, upsert or delete request (well under Milvus's 64 MB message limit)
_MAX_EF = 4_096  # most HNSW candidates a filtered search asks for
_MARKER = -1  # primary key of the sync marker row (vector keys are 63-bit, never negative)
_INDEX_TYPES = {"auto": "HNSW", "HNSW": "HNSW", "Flat": "FLAT", "FLAT": "FLAT"}


class MilvusIndex:
    """A :class:`~omnimem.stores.base.VectorIndex` in a Milvus collection (inner product, best first).

    ``fields``: scalar fields stored beside each vector (as :func:`field_value` writes them; None
    unless :meth:`upsert` is given their values); ``index_type``: "auto"/"HNSW" (approximate, ``ef``
    candidates per search, at least k; a Milvus without HNSW gets its AUTOINDEX) or "Flat" (exact);
    ``replace``: drop an existing collection whose schema differs instead of raising.
    """

    def __init__(
        self, uri: str, collection: str, dim: int, *, fields: tuple[str, ...] = (), index_type: str = "auto",
        ef: int = 64, replace: bool = False,
    ) -> None:  # fmt: skip
        if dim <= 0:
            raise ConfigError(f"dim must be positive, got {dim}")
        if index_type not in _INDEX_TYPES:
            raise ConfigError(f"Milvus index_type must be one of {sorted(_INDEX_TYPES)}, got {index_type!r}")
        check_name(collection)
        self.uri, self.collection, self.dim, self.fields = uri, collection, dim, tuple(fields)
        self.wanted, self.ef = _INDEX_TYPES[index_type], ef
        self.index_type = self.wanted  # what the collection has (HNSW may be AUTOINDEX on milvus-lite 2)
        self.client = connect(uri)
        self._closed = False
        try:
            self._open(replace)
        except BaseException:
            disconnect(uri, self.client)
            raise

    def _open(self, replace: bool) -> None:
        if self.client.has_collection(self.collection):
            if schema_matches(self.client, self.collection, self.dim, self.fields):
                self.client.load_collection(self.collection)
                self.index_type = index_type_of(self.client, self.collection)
                return
            if not replace:
                raise ConfigError(
                    f"Milvus collection {self.collection!r} at {self.uri} has another schema or dimension than"
                    f" {self.dim}-d vectors with fields {list(self.fields)}; drop it or use another collection name"
                )
            log.warning("Milvus collection %s has an old schema: recreating it", self.collection)
        self.recreate()

    def recreate(self) -> None:
        """Drop the collection (when present) and create it empty."""
        if self.client.has_collection(self.collection):
            self.client.drop_collection(self.collection)
        self.index_type = create_collection(
            self.client, self.collection, self.dim, fields=self.fields, index_type=self.wanted
        )

    # -- the VectorIndex protocol -------------------------------------------------------------------
    def upsert(self, ids: Sequence[str], vectors: np.ndarray, values: Sequence[dict[str, Any]] | None = None) -> None:
        """Add vectors, replacing those of ids already present (``values``: each row's scalar fields)."""
        vectors = check_batch(ids, vectors, self.dim)
        self.put([int_id(i) for i in ids], list(ids), vectors, values)

    def put(
        self,
        keys: Sequence[int],
        ids: Sequence[str],
        vectors: np.ndarray,
        values: Sequence[dict[str, Any]] | None = None,
        *,
        fresh: bool = False,
    ) -> None:
        """Upsert rows by key (checked vectors; ``values`` may leave fields out: None). ``fresh``: the
        keys are known to be absent, so insert (an upsert also writes a delete of each key)."""
        write = self.client.insert if fresh else self.client.upsert
        for start in range(0, len(keys), _BATCH):
            rows = []
            for n in range(start, min(len(keys), start + _BATCH)):
                extra = values[n] if values is not None else {}
                row = {"key": int(keys[n]), "item_id": ids[n], "vector": vectors[n].tolist()}
                row.update({f: field_value(extra.get(f)) for f in self.fields})
                rows.append(row)
            write(self.collection, rows)

    def search(
        self, queries: np.ndarray, k: int, *, expr: str = "", ef: int | None = None
    ) -> list[list[tuple[str, float]]]:
        """For each query row, up to k ``(id, inner product)`` pairs, best first (``expr``: a Milvus
        boolean expression the hits must satisfy; ``ef``: HNSW candidates for this search)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ConfigError(f"expected queries of shape (n, {self.dim}), got {queries.shape}")
        if k <= 0 or not len(queries):
            return [[] for _ in range(len(queries))]
        limit = min(int(k), MAX_TOPK)
        # ef: HNSW's candidate list (FLAT and milvus-lite 2's AUTOINDEX take none)
        params = {"ef": max(ef or self.ef, limit)} if self.index_type == "HNSW" else {}
        results = self.client.search(
            self.collection, data=queries.tolist(), limit=limit, filter=f"{ROWS} and ({expr})" if expr else ROWS,
            output_fields=["item_id"], search_params={"metric_type": "IP", "params": params},
        )  # fmt: skip
        return [[(hit["entity"]["item_id"], float(hit["distance"])) for hit in row] for row in results]

    def delete(self, ids: Iterable[str]) -> int:
        """Remove ids (unknown ones are ignored); returns how many were removed."""
        keys = list(dict.fromkeys(int_id(i) for i in ids))
        present = [k for start in range(0, len(keys), _BATCH) for k in self._present(keys[start : start + _BATCH])]
        self.delete_keys(present)
        return len(present)

    def delete_keys(self, keys: Sequence[int]) -> None:
        """Remove rows by key (absent keys are a no-op)."""
        for start in range(0, len(keys), _BATCH):
            self.client.delete(self.collection, ids=[int(k) for k in keys[start : start + _BATCH]])

    def _present(self, keys: list[int]) -> list[int]:
        if not keys:
            return []
        rows = self.client.get(self.collection, ids=keys, output_fields=["key"])
        return [int(r["key"]) for r in rows]

    def ids(self) -> list[str]:
        """Every id in the index, read in key ranges small enough for one query each (the query
        iterator needs timestamps milvus-lite does not serve)."""
        out: list[str] = []
        spans = [(0, 2**63)]
        size = len(self)
        parts = 2 ** int(np.ceil(np.log2(size / 4_000))) if size > 4_000 else 1  # ~4,000 rows a range
        if parts > 1:
            step = 2**63 // parts
            spans = [(n * step, 2**63 if n == parts - 1 else (n + 1) * step) for n in range(parts)]
        while spans:
            low, high = spans.pop()
            expr = f"key >= {low} and key < {high}" if high < 2**63 else f"key >= {low}"
            rows = self.client.query(self.collection, filter=expr, output_fields=["item_id"], limit=MAX_TOPK)
            if len(rows) >= MAX_TOPK and high - low > 1:  # full: split the range and read it again
                middle = low + (high - low) // 2
                spans += [(low, middle), (middle, high)]
                continue
            out += [r["item_id"] for r in rows]
        return out

    def __len__(self) -> int:
        rows = self.client.query(self.collection, filter=ROWS, output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    # -- the rest ----------------------------------------------------------------------------------
    def flush(self) -> None:
        """Seal what was written into segments (persisted and indexed)."""
        self.client.flush(self.collection)

    def close(self) -> None:
        """Close the connection (a second call does nothing)."""
        if not self._closed:
            self._closed = True
            disconnect(self.uri, self.client)


class MilvusSyncedIndex:
    """One embedding space in a Milvus collection, kept in step with the record store's vector log.

    The surface :class:`~omnimem.stores.segments.SegmentedIndex` offers the memory layer: ``search``
    (with ``filters`` pushed down), ``applied``, ``refresh``, ``rebuild``, ``save``, ``close``,
    ``generation``, ``ids``, ``len``, ``last_report``.
    """

    filters_in_search = True  # search(..., filters=) restricts the hits itself (see search)

    def __init__(
        self, store: Any, space: str, dim: int, uri: str, collection: str, *, index_type: str = "auto",
        ef: int = 64, exact_below: int = 20_000, sync_every: int = 1_000, prune_every: int = 20_000,
    ) -> None:  # fmt: skip
        self.store = store
        self.space = space
        self.dim = dim
        self.uri = uri
        self.exact_below = exact_below  # a filtered search over at most this many items scores them exactly
        self.sync_every = sync_every  # log entries applied between two writes of the marker
        self.prune_every = prune_every  # marked log entries after which the store's log is pruned
        self.index = self  # Memory.check reads ids from ``index.ids()``
        self._lock = threading.RLock()
        self.seq = 0  # the log position the collection holds (this process's view)
        self.marked = 0  # the position the marker row says
        self._forgotten = False  # vectors were deleted since the last save()
        self._size = (-1, 0)  # (log position, vectors in the store then): sizes filtered searches
        options = dict(fields=FILTER_FIELDS, index_type=index_type, ef=ef, replace=True)
        unreadable = (StorageError, pymilvus().exceptions.MilvusException)
        try:
            self.milvus = MilvusIndex(uri, collection, dim, **options)
            try:
                self.last_report = self._resume()
            except BaseException:
                self.milvus.close()
                raise
        except unreadable as e:
            # a milvus-lite path is derived data of this memory: an unreadable one is rebuilt (unless
            # it is locked, or another index of this process has it open); a server's error is raised
            if isinstance(e, MemoryLocked) or not is_local(uri) or in_use(uri):
                raise
            if locked_elsewhere(uri):  # never delete what another process serves
                raise MemoryLocked(f"the milvus-lite index {uri} is open in another process ({e})") from e
            log.warning("milvus-lite index %s is unreadable (%s): rebuilding it from %s", uri, e, store.path)
            wipe(uri)
            self.milvus = MilvusIndex(uri, collection, dim, **options)
            try:
                self.last_report = self.rebuild()
            except BaseException:
                self.milvus.close()
                raise

    # -- the log position ----------------------------------------------------------------------------
    def _read_marker(self) -> int | None:
        rows = self.milvus.client.get(self.milvus.collection, ids=[_MARKER], output_fields=["item_id"])
        if not rows:
            return None
        try:
            marker = json.loads(rows[0]["item_id"])
            return int(marker["seq"]) if marker.get("space") == self.space else None
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def _mark(self) -> None:
        """Write the marker (never below what another process already marked), then maybe prune."""
        seq = max(self.seq, self._read_marker() or 0)
        vector = np.zeros(self.dim, dtype=np.float32)
        vector[0] = 1.0
        row = {"key": _MARKER, "item_id": json.dumps({"space": self.space, "seq": seq}), "vector": vector.tolist()}
        row.update(dict.fromkeys(self.milvus.fields, ""))
        self.milvus.client.upsert(self.milvus.collection, [row])
        self.marked = seq
        if seq - self.store.vector_log_floor(self.space) >= self.prune_every:
            self.milvus.flush()  # the changes up to the marker are sealed before the log forgets them
            try:
                self.store.prune_vector_log(self.space, seq, wait=False)
            except MemoryLocked:
                log.debug("vector log of %s not pruned now: another process is writing", self.space)

    def _resume(self) -> SyncReport:
        marker = self._read_marker()
        floor, current = self.store.vector_log_floor(self.space), self.store.vector_seq(self.space)
        if marker is None or marker < floor or marker > current:
            if marker is not None:
                log.warning("Milvus index %s is at log position %d, the store's log spans %d..%d: rebuilding",
                            self.space, marker, floor, current)  # fmt: skip
            return self.rebuild()
        self.seq = self.marked = marker
        return self.refresh(force=True)

    @property
    def generation(self) -> int:
        return self.seq

    # -- replaying the log ----------------------------------------------------------------------------
    def refresh(self, *, force: bool = False, known: dict[int, np.ndarray] | None = None) -> SyncReport:
        """Apply the log entries after this index's position (``known``: vectors the caller holds)."""
        added = removed = 0
        with self._lock:
            current = self.store.vector_seq(self.space)
            if current == self.seq:
                return SyncReport(self.space, 0, 0, False)
            if current < self.seq:  # the store went back (restored from a backup): start again from it
                return self.rebuild()
            if self.seq < self.store.vector_log_floor(self.space):
                marker = self._read_marker()  # another process may have applied and pruned past us
                if marker is None or marker > current or marker < self.store.vector_log_floor(self.space):
                    return self.rebuild()
                self.seq = marker
            while self.seq < current:
                entries = self.store.vector_log(self.space, self.seq)
                if not entries:
                    break
                last = {key: op for _, key, op in entries}
                a, r = self._apply(last, known)
                added, removed = added + a, removed + r
                self.seq = entries[-1][0]
            if force or self.seq - self.marked >= self.sync_every:
                self._mark()
        return SyncReport(self.space, added, removed, False)

    def _apply(self, last: dict[int, str], known: dict[int, np.ndarray] | None) -> tuple[int, int]:
        """Make the collection hold what the store holds now for these keys; (put, deleted) counts."""
        puts = [k for k, op in last.items() if op == "put"]
        vectors = {k: known[k] for k in puts if known is not None and k in known}
        fetch = [k for k in puts if k not in vectors]
        if fetch:
            keys, rows = self.store.vectors_by_key(self.space, fetch)
            vectors.update(zip(keys, rows))
        names = self.store.ids_for_keys(self.space, list(vectors))  # absent: the vector is gone since
        keys = [k for k in vectors if k in names]
        items = self.store.get([names[k] for k in keys])
        kept = [(k, item) for k, item in zip(keys, items) if item is not None]
        gone = [k for k in last if k not in names]
        self.milvus.delete_keys(gone)
        if kept:
            stacked = np.stack([vectors[k] for k, _ in kept]).astype(np.float32)
            self.milvus.put([k for k, _ in kept], [i.id for _, i in kept], stacked, [_values(i) for _, i in kept])
        self._forgotten = self._forgotten or bool(gone)
        return len(kept), len(gone)

    def applied(self, ids: Sequence[str], vectors: np.ndarray | None, generation_before: int) -> None:
        """Mirror a committed write: replay the log (this write and any other process's since)."""
        known = {int_id(i): v for i, v in zip(ids, vectors)} if vectors is not None and len(ids) else None
        self.refresh(known=known)

    # -- search ------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, *, filters: Filters | None = None) -> list[list[tuple[str, float]]]:
        """For each query row, up to ``k`` ``(item id, cosine)`` pairs, best first, only items matching
        ``filters`` when given. When at most ``exact_below`` items match (the store says), their vectors
        are scored exactly, as FAISS does and Milvus itself falls back to; else the filter runs inside
        Milvus's search, a boolean expression over the fields stored with each vector."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ConfigError(f"expected queries of shape (n, {self.dim}), got {queries.shape}")
        expr = filter_expression(filters)
        if k <= 0 or expr is None:
            return [[] for _ in range(len(queries))]
        with self._lock:  # not while a rebuild swaps the collection
            self.refresh()
            if not expr:
                return self.milvus.search(queries, k)
            few = self.store.filter_ids(filters, limit=self.exact_below)
            if few is not None:
                return self._exact(queries, k, few)
            rows = self.milvus.search(queries, k, expr=expr, ef=self._filtered_ef(k))
        # A field changed without a new vector (RecordStore.update without vectors) is not in the
        # vector log: check the hits against the store, so a stale field never lets a wrong item in.
        found = {i for row in rows for i, _ in row}
        items = {i.id: i for i in self.store.get(sorted(found)) if i is not None}
        return [[(i, s) for i, s in row if i in items and filters.matches(items[i])] for row in rows]

    def _exact(self, queries: np.ndarray, k: int, ids: list[str]) -> list[list[tuple[str, float]]]:
        found, vectors = self.store.vectors(self.space, ids)
        if not found:
            return [[] for _ in range(len(queries))]
        scores = queries @ vectors.T
        top = np.argsort(-scores, axis=1)[:, :k]
        return [[(found[j], float(scores[r, j])) for j in row] for r, row in enumerate(top)]

    def _filtered_ef(self, k: int) -> int:
        """HNSW candidates for a search whose filter passes more than ``exact_below`` of the vectors.

        A filtered HNSW walk meets matching vectors at the filter's pass rate, so it needs ``ef / rate``
        candidates to find what an unfiltered walk finds with ``ef``; the rate is at least
        ``exact_below / n`` here (else the exact path was taken), which bounds what is needed.
        """
        if self._size[0] != self.seq:
            self._size = (self.seq, self.store.vector_count(self.space))
        boost = self._size[1] / max(1, self.exact_below)
        return int(min(_MAX_EF, max(self.milvus.ef, k) * max(1.0, boost)))

    # -- the rest of what the memory layer uses -----------------------------------------------------
    def rebuild(self) -> SyncReport:
        """Drop the collection and fill it from every vector the store holds; replay what came after."""
        with self._lock:
            self.milvus.recreate()
            self.seq = self.store.vector_seq(self.space)  # what comes after is replayed below
            added = 0
            for keys, vectors in self.store.iter_vectors(self.space):
                names = self.store.ids_for_keys(self.space, keys)
                items = self.store.get([names.get(k, "") for k in keys])
                rows = [n for n, (k, item) in enumerate(zip(keys, items)) if k in names and item is not None]
                if rows:
                    self.milvus.put(
                        [keys[n] for n in rows], [items[n].id for n in rows], vectors[rows],
                        [_values(items[n]) for n in rows], fresh=True,
                    )  # fmt: skip
                added += len(rows)
            self.marked = 0
            self._forgotten = False
            self._mark()
            self.refresh()
            return SyncReport(self.space, added, 0, True)

    def save(self) -> None:
        """After a forget: leave no copy of the deleted vectors. A server compacts the collection
        (Milvus rewrites segments without deleted rows in the background); milvus-lite compacts only
        on its own schedule, so its collection is rebuilt from the store."""
        with self._lock:
            self.refresh(force=True)
            if not self._forgotten:
                return
            if is_local(self.uri):
                self.rebuild()
            else:
                self.milvus.flush()
                self.milvus.client.compact(self.milvus.collection)
                self._forgotten = False

    def close(self) -> None:
        with self._lock:
            try:
                if self.seq != self.marked:
                    self._mark()
            finally:
                self.milvus.close()

    def ids(self) -> list[str]:
        """Every item id the collection answers for (Memory.check compares them with the store)."""
        return self.milvus.ids()

    def __len__(self) -> int:
        return len(self.milvus)


def _values(item: Any) -> dict[str, Any]:
    """The scalar fields of an item that filters select on."""
    return {field: getattr(item, field) for field in FILTER_FIELDS}


def open_synced_indexes(
    store: Any, spaces: dict[str, int], root: str | Path, config: Any
) -> dict[str, MilvusSyncedIndex]:
    """One :class:`MilvusSyncedIndex` per space, as ``config`` (an :class:`~omnimem.config.IndexConfig`) says."""
    out: dict[str, MilvusSyncedIndex] = {}
    for space in spaces:  # FAISS segments of a memory that used FAISS before: stale, and would keep forgotten vectors
        for stale in (Path(root) / "index").glob(f"{space}.*.faiss"):
            stale.unlink(missing_ok=True)
    try:
        for space, dim in spaces.items():
            uri, collection = milvus_target(root, space, config.uri, store)
            out[space] = MilvusSyncedIndex(
                store, space, dim, uri, collection, index_type=config.factory, exact_below=config.exact_below,
                prune_every=config.save_every,
            )  # fmt: skip
    except BaseException:
        for index in out.values():
            index.close()
        raise
    return out
