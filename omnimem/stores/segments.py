"""One embedding space's FAISS index as segments: a saved base on disk plus the changes since it.

A memory at a million items cannot rewrite its whole index every few thousand adds, nor read it all
on open. So:

- the **base** segment is a FAISS file ``index/<space>.<seq>.faiss`` holding every vector up to the
  record store's vector-log position ``seq`` (exact ``Flat`` below ``ivf_threshold`` vectors, ``IVF``
  above, its vectors kept as float16 by default: half the memory and disk, recall@10 against exact
  search 0.9900 for 0.9905 at 1M; an IVF base is memory-mapped, so opening costs the same at any size);
- the **delta** is an in-memory exact index of the vectors put since then, and the **tombstones** the
  keys changed since then (their base copies are skipped at search time);
- both are replayed on open, and before each search, from the record store's vector log (SQLite is the
  source of truth; the log is written in the same transaction as the vectors). A crash therefore
  costs at most a replay of the changes since the last base, never a rebuild;
- when the delta grows past ``compact_every`` (or a tenth of the base), a new base is written in a
  background thread (IVF re-trained when the data has doubled since training) and the log up to it
  is pruned. The file name carries its log position, written with one atomic rename: no pair of files
  can disagree.

Search takes filters: the record store selects the matching items first; when they are few
(``exact_below``) their vectors are scored exactly, so a rare speaker at a million items costs its own
items, not a walk of the whole index. A broad filter (more items pass) checks the unfiltered nearest
items against it, widening the search until enough pass, and only when too few of the nearest 4,096
do, searches with an id selector of every item it passes.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omnimem.errors import ConfigError, CorruptInput, MemoryLocked
from omnimem.stores.base import Filters
from omnimem.stores.faiss_index import is_ivf as _is_ivf
from omnimem.stores.faiss_index import load_faiss as _faiss

__all__ = ["SegmentedIndex", "SyncReport", "ivf_lists"]

log = logging.getLogger(__name__)

_WIDEST = 4_096  # the most nearest items a broad filter is checked against before an id selector is built
_BULK_BYTES = 256 << 20  # in a bulk load, the delta's float32 vectors may grow to this before a compaction
_CODES = {"fp16": "SQfp16", "float32": "Flat"}  # IndexConfig.codes -> the IVF's FAISS factory suffix
_IVF_FOURCC = (b"IwFl", b"IwF2", b"IvFl", b"IwSq", b"IwSQ", b"IvSQ")  # IVF Flat / ScalarQuantizer files
_BASE = re.compile(r"^(?P<space>[a-z0-9_]+)\.(?P<seq>\d+)\.faiss$")


@dataclass(frozen=True)
class SyncReport:
    """What bringing an index up to the store's state did."""

    space: str  # embedding space name
    added: int  # vectors put into the index
    removed: int  # vectors taken out of it
    rebuilt: bool  # whether it was built from every vector the store holds

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.rebuilt)


def ivf_lists(n: int) -> int:
    """Inverted lists for ``n`` vectors: about 4 sqrt(n), a power of two, 64..65536."""
    return int(min(65536, max(64, 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n)))))))


class SegmentedIndex:
    """A space's vectors as a saved base segment + an in-memory delta, kept in step with the log."""

    filters_in_search = True  # search(..., filters=) selects the matching items itself

    def __init__(
        self, store: Any, space: str, dim: int, folder: str | Path, *, ivf_threshold: int = 50_000,
        nprobe: int | None = None, compact_every: int = 20_000, exact_below: int = 20_000, codes: str = "fp16",
    ) -> None:  # fmt: skip
        self.store = store
        self.space = space
        self.dim = dim
        self.folder = Path(folder)
        self.ivf_threshold = ivf_threshold  # vectors from which a base is IVF instead of exact
        self.nprobe = nprobe  # IVF lists searched per query (None: nlist / 32, at least 64)
        self.compact_every = compact_every  # delta size that triggers writing a new base
        self.exact_below = exact_below  # filtered searches over fewer items are scored exactly
        if codes not in _CODES:
            raise ConfigError(f"codes must be one of {sorted(_CODES)}, got {codes!r}")
        self.codes = _CODES[codes]  # an IVF base's vector storage: SQfp16 (half of Flat's bytes) or Flat
        self.index = self  # Memory.check reads ids from ``index.ids()``
        self._lock = threading.RLock()
        self._compacting: threading.Thread | None = None
        self._deferred = 0  # > 0 inside Memory.bulk(): no compaction until it ends
        self.base: Any = None
        self.base_seq = 0
        self.base_count = 0
        self._keys: np.ndarray | None = None  # the base's int64 ids, read once per base when needed
        self.trained_on = 0  # vectors the IVF base was trained with (re-trained when doubled)
        self.last_report = self._load()

    # -- loading and replaying ---------------------------------------------------------------------
    def _load(self) -> SyncReport:
        rebuilt = False
        for legacy in (f"{self.space}.faiss", f"{self.space}.faiss.ids.json"):  # omnimem <= 0.2's single file
            (self.folder / legacy).unlink(missing_ok=True)
        with self._lock:
            self.base, self.base_seq = self._read_base()
            if self.base is not None and self.base_seq < self.store.vector_log_floor(self.space):
                log.warning("index %s is older than its change log: rebuilding from %s", self.space, self.store.path)
                self.base = None
            self._reset_delta(self.base_seq if self.base is not None else 0)
            report = self.refresh(force=True)
            if self.base is None and len(self.delta_keys) != self.store.vector_count(self.space):  # an old memory
                self._build_base()
                rebuilt = True
        return SyncReport(self.space, report.added, report.removed, rebuilt)

    def _read_base(self) -> tuple[Any, int]:
        """The newest readable base file and its log position (None, 0 when there is none)."""
        faiss = _faiss()
        found = sorted(
            ((int(m["seq"]), p) for p in self.folder.glob(f"{self.space}.*.faiss") if (m := _BASE.match(p.name))),
            reverse=True,
        )
        for seq, path in found:
            try:
                ivf = _is_ivf_file(path)
                flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if ivf else 0
                index = faiss.read_index(str(path), flags)
                if index.d != self.dim:
                    raise CorruptInput(f"{path} holds {index.d}-d vectors, expected {self.dim}")
            except (RuntimeError, CorruptInput) as e:
                log.warning("cannot read index segment %s (%s); trying an older one or rebuilding", path, e)
                continue
            self.base_count = int(index.ntotal)
            if ivf:
                self.trained_on = self.base_count
            return index, seq
        return None, 0

    def _reset_delta(self, seq: int) -> None:
        faiss = _faiss()
        self.delta = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self.tombstones: set[int] = set()  # keys whose base copy is stale (changed or deleted since)
        self._stale: Any = None  # the selector that skips them, built once per change
        self.delta_keys: set[int] = set()
        self.seq = seq

    @property
    def generation(self) -> int:
        return self.seq

    def refresh(self, *, force: bool = False, known: dict[int, np.ndarray] | None = None) -> SyncReport:
        """Apply the log entries after this index's position (``known``: vectors the caller holds)."""
        added = removed = 0
        with self._lock:
            current = self.store.vector_seq(self.space)
            if current == self.seq:
                return SyncReport(self.space, 0, 0, False)
            if current < self.seq or self.seq < self.store.vector_log_floor(self.space):
                self._catch_base()  # another process compacted and pruned the log past us
                current = self.store.vector_seq(self.space)
            while self.seq < current:
                entries = self.store.vector_log(self.space, self.seq)
                if not entries:
                    break
                last: dict[int, str] = {}
                for _, key, op in entries:
                    last[key] = op
                puts = [k for k, op in last.items() if op == "put"]
                gone = [k for k, op in last.items() if op == "del"]
                self._drop(list(last))
                fetch = [k for k in puts if known is None or k not in known]
                keys, vectors = self.store.vectors_by_key(self.space, fetch) if fetch else ([], None)
                pairs = [(k, known[k]) for k in puts if known is not None and k in known]
                pairs += list(zip(keys, vectors)) if keys else []
                if pairs:
                    self.delta.add_with_ids(
                        np.stack([v for _, v in pairs]).astype(np.float32),
                        np.array([k for k, _ in pairs], dtype=np.int64),
                    )
                    self.delta_keys.update(k for k, _ in pairs)
                added += len(pairs)
                removed += len(gone)
                self.seq = entries[-1][0]
        if len(self.delta_keys) >= self._due():
            self.compact()
        return SyncReport(self.space, added, removed, False)

    def _due(self) -> int:
        """The delta size that starts a compaction: ``compact_every`` or a tenth of the base; inside a bulk
        load (:meth:`defer`) half the base, and at least ``_BULK_BYTES`` of vectors: the delta's memory
        stays bounded while the bases a load rewrites grow geometrically (their total is a few times the
        final one, not one base per tenth of growth)."""
        if self._deferred:
            return max(_BULK_BYTES // (4 * self.dim), self.base_count // 2)
        return max(self.compact_every, self.base_count // 10)

    def _catch_base(self) -> None:
        """Load the newest base another process wrote (rebuild only when none covers the log)."""
        base, seq = self._read_base()
        if base is not None and seq >= self.store.vector_log_floor(self.space):
            self.base, self.base_seq, self._keys = base, seq, None
            self._reset_delta(seq)
        else:
            self._build_base()

    def _drop(self, keys: Sequence[int]) -> None:
        """Forget these keys' current copies: tombstone the base's, remove the delta's."""
        if not keys:
            return
        self.tombstones.update(keys)
        self._stale = None
        present = [k for k in keys if k in self.delta_keys]
        if present:
            faiss = _faiss()
            self.delta.remove_ids(faiss.IDSelectorBatch(np.array(present, dtype=np.int64)))
            self.delta_keys.difference_update(present)

    # -- writes of this process ----------------------------------------------------------------------
    def applied(self, ids: Sequence[str], vectors: np.ndarray | None, generation_before: int) -> None:
        """Mirror a committed write: replay the log (this write and any other process's since)."""
        from omnimem.stores.sqlite_vectors import vector_key

        known = {vector_key(i): v for i, v in zip(ids, vectors)} if vectors is not None and len(ids) else None
        self.refresh(known=known)

    # -- search ----------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, *, filters: Filters | None = None) -> list[list[tuple[str, float]]]:
        """For each query row, up to ``k`` ``(item id, cosine)`` pairs, best first (only items matching
        ``filters`` when given)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ConfigError(f"expected queries of shape (n, {self.dim}), got {queries.shape}")
        if k <= 0:
            return [[] for _ in range(len(queries))]
        self.refresh()
        if filters is not None and not filters.is_empty():
            ids = self.store.filter_ids(filters, limit=self.exact_below)
            if ids is not None:  # few enough: score them exactly
                return self._exact(queries, k, ids)
            return [self._broad(row[None, :], k, filters) for row in queries]
        with self._lock:
            pairs = self._faiss_search(queries, k, None)
        return self._named(pairs, k)

    def _named(self, pairs: list[list[tuple[int, float]]], k: int) -> list[list[tuple[str, float]]]:
        names = self.store.ids_for_keys(self.space, {key for row in pairs for key, _ in row})
        return [[(names[key], s) for key, s in row if key in names][:k] for row in pairs]

    def _broad(self, query: np.ndarray, k: int, filters: Filters) -> list[tuple[str, float]]:
        """Top k of one query under a filter more than ``exact_below`` items pass: the unfiltered
        ranking, widened until k of it pass (a broad filter lets most through: "since 2020" costs a
        search and a lookup, not a list of every item after 2020); a filter that lets too few of the
        nearest through falls back to searching with an id selector of every item it passes."""
        fetch = min(max(4 * k, 256), _WIDEST)
        while True:
            with self._lock:
                total = self.base_count + len(self.delta_keys)
                pairs = self._faiss_search(query, fetch, None)
            row = self._named(pairs, fetch)[0]
            passing = set(self.store.filter_ids(filters, among=[i for i, _ in row]) or ())
            kept = [(i, s) for i, s in row if i in passing]
            if len(kept) >= k:
                return kept[:k]
            if fetch >= min(_WIDEST, total):
                break
            fetch *= 4
        from omnimem.stores.sqlite_vectors import vector_key

        allowed = np.array([vector_key(i) for i in self.store.filter_ids(filters)], dtype=np.int64)
        with self._lock:
            pairs = self._faiss_search(query, k, allowed)
        return self._named(pairs, k)[0]

    def _faiss_search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> list[list[tuple[int, float]]]:
        faiss = _faiss()
        keep = faiss.IDSelectorBatch(allowed) if allowed is not None else None
        rows: list[list[tuple[int, float]]] = [[] for _ in range(len(queries))]
        if self.delta.ntotal:
            params = faiss.SearchParameters(sel=keep) if keep is not None else None
            scores, keys = self.delta.search(queries, min(k, int(self.delta.ntotal)), params=params)
            for row, (ks, ss) in enumerate(zip(keys, scores)):
                rows[row] += [(int(key), float(s)) for key, s in zip(ks, ss) if key >= 0]
        if self.base is not None and self.base_count:
            sel = keep
            if self.tombstones:
                if self._stale is None:
                    batch = faiss.IDSelectorBatch(np.fromiter(self.tombstones, dtype=np.int64))
                    self._stale = (faiss.IDSelectorNot(batch), batch)  # keep the inner selector alive
                stale = self._stale[0]
                sel = stale if keep is None else faiss.IDSelectorAnd(keep, stale)
            if _is_ivf(self.base):
                nlist = faiss.extract_index_ivf(self.base).nlist
                params = faiss.SearchParametersIVF(sel=sel, nprobe=self.nprobe or max(64, nlist // 32))
            else:
                params = faiss.SearchParameters(sel=sel) if sel is not None else None
            scores, keys = self.base.search(queries, min(k, self.base_count), params=params)
            for row, (ks, ss) in enumerate(zip(keys, scores)):
                rows[row] += [(int(key), float(s)) for key, s in zip(ks, ss) if key >= 0]
        return [sorted(row, key=lambda p: -p[1])[:k] for row in rows]

    def _exact(self, queries: np.ndarray, k: int, ids: list[str]) -> list[list[tuple[str, float]]]:
        found, vectors = self.store.vectors(self.space, ids)
        if not found:
            return [[] for _ in range(len(queries))]
        scores = queries @ vectors.T
        top = np.argsort(-scores, axis=1)[:, :k]
        return [[(found[j], float(scores[r, j])) for j in row] for r, row in enumerate(top)]

    # -- segments ----------------------------------------------------------------------------------
    def defer(self, on: bool) -> None:
        """Space automatic compaction out for a bulk load (:meth:`Memory.bulk`, :meth:`_due`); a base
        with everything is written when it ends."""
        with self._lock:
            self._deferred += 1 if on else -1
            due = not self._deferred and len(self.delta_keys) >= min(self.compact_every, max(1, self.base_count // 10))
        if due:
            self.compact(wait=True)

    def compact(self, *, wait: bool = False) -> None:
        """Write a new base holding the delta (in a background thread unless ``wait``)."""
        with self._lock:
            running = self._compacting is not None and self._compacting.is_alive()
            if not running:
                self._compacting = threading.Thread(target=self._compact, name=f"omnimem-compact-{self.space}", daemon=True)  # fmt: skip
                self._compacting.start()
            thread = self._compacting
        if wait:  # outside the lock: the compaction takes it to swap its base in
            thread.join()

    def _compact(self) -> None:
        try:
            with self._lock:
                seq = self.seq
                retrain = self.base is None or (_is_ivf(self.base) and self.base_count + len(self.delta_keys) > 2 * self.trained_on)  # fmt: skip
                grow_to_ivf = self.base is not None and not _is_ivf(self.base) and self.base_count + len(self.delta_keys) >= self.ivf_threshold  # fmt: skip
            if retrain or grow_to_ivf:
                index, seq = self._fresh_base()
            else:
                index = self._merged_base()
            path = self._write(index, seq)
            with self._lock:
                self._swap_in(path, seq)
        except Exception:  # a failed compaction loses nothing: the log still holds every change
            log.exception("compacting index %s failed; it keeps running on its log", self.space)

    def _merged_base(self) -> Any:
        """The base read into memory, the tombstoned keys out and the delta in."""
        faiss = _faiss()
        with self._lock:
            files = [p for p in self.folder.glob(f"{self.space}.{self.base_seq}.faiss")]
            base = faiss.read_index(str(files[0])) if files else None
            tombs = np.fromiter(self.tombstones, dtype=np.int64)
            keys = faiss.vector_to_array(self.delta.id_map).astype(np.int64)
            vectors = self.delta.index.reconstruct_n(0, self.delta.ntotal) if self.delta.ntotal else None
        if base is None:
            base = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        if len(tombs):
            base.remove_ids(faiss.IDSelectorBatch(tombs))
        if vectors is not None:
            base.add_with_ids(vectors, keys)
        return base

    def _fresh_base(self) -> tuple[Any, int]:
        """A base built from every vector the store holds now (IVF trained on a sample when large)."""
        faiss = _faiss()
        seq = self.store.vector_seq(self.space)
        n = self.store.vector_count(self.space)
        if n >= self.ivf_threshold:
            nlist = ivf_lists(n)
            index = faiss.index_factory(self.dim, f"IVF{nlist},{self.codes}", faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            sample = [v[rng.random(len(v)) < min(1.0, 50 * nlist / n)] for _, v in self.store.iter_vectors(self.space)]
            index.train(np.concatenate(sample)[: 100 * nlist])
            self.trained_on = n
        else:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        for keys, vectors in self.store.iter_vectors(self.space):
            index.add_with_ids(vectors, np.array(keys, dtype=np.int64))
        return index, seq

    def _build_base(self) -> None:
        index, seq = self._fresh_base()
        self._swap_in(self._write(index, seq), seq)

    def _write(self, index: Any, seq: int) -> Path:
        faiss = _faiss()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.space}.{seq}.faiss"
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{self.space}.")
        os.close(fd)
        try:
            faiss.write_index(index, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)  # one file, one rename: a kill leaves the old base or the new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def _swap_in(self, path: Path, seq: int) -> None:
        """Use the base at ``path`` (log position ``seq``); replay what came after; drop older files."""
        faiss = _faiss()
        ivf = _is_ivf_file(path)
        base = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if ivf else 0)
        with self._lock:
            self.base, self.base_seq, self.base_count, self._keys = base, seq, int(base.ntotal), None
            self._reset_delta(seq)
            self.refresh(force=True)
            for old in self.folder.glob(f"{self.space}.*.faiss"):
                m = _BASE.match(old.name)
                if m and int(m["seq"]) < seq:
                    old.unlink(missing_ok=True)
        try:  # the log up to the base is no longer needed; a busy writer just means later
            self.store.prune_vector_log(self.space, seq, wait=False)
        except MemoryLocked:
            log.debug("vector log of %s not pruned now: another process is writing", self.space)

    # -- the rest of what the memory layer uses ---------------------------------------------------
    def rebuild(self) -> SyncReport:
        """Throw every segment away and build a base from the vectors the store holds."""
        with self._lock:
            self._build_base()
            return SyncReport(self.space, self.base_count, 0, True)

    def save(self) -> None:
        """Start writing a new base without the tombstoned vectors (a forget does: the old segment
        must not keep them). Searches skip them at once; the files lose them when it finishes."""
        if self.tombstones and self.base is not None:
            self.compact()

    def close(self) -> None:
        if self._compacting is not None:
            self._compacting.join()

    def ids(self) -> list[str]:
        """Every item id the index answers for (Memory.check compares them with the store)."""
        with self._lock:
            keys = set(self.delta_keys) | (set(self._live_base_keys().tolist()))
        names = self.store.ids_for_keys(self.space, sorted(keys))
        return [names.get(k, f"<unknown key {k}>") for k in keys]

    def __len__(self) -> int:
        with self._lock:
            return len(self._live_base_keys()) + len(self.delta_keys)

    def _live_base_keys(self) -> np.ndarray:
        if self.base is None or not self.base_count:
            return np.zeros(0, dtype=np.int64)
        if self._keys is None:
            self._keys = _base_keys(self.base)
        if not self.tombstones:
            return self._keys
        return self._keys[~np.isin(self._keys, np.fromiter(self.tombstones, dtype=np.int64))]


def _is_ivf_file(path: Path) -> bool:
    """Whether ``path`` holds an IVF base (read memory-mapped), by the FAISS file's first four bytes."""
    with open(path, "rb") as f:
        return f.read(4) in _IVF_FOURCC


def _base_keys(index: Any) -> np.ndarray:
    """The int64 ids a base holds (IVF: read from its inverted lists)."""
    faiss = _faiss()
    if not _is_ivf(index):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    ivf = faiss.extract_index_ivf(index)
    lists = ivf.invlists
    out = [
        faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy() for i in range(ivf.nlist) if lists.list_size(i)
    ]
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)
