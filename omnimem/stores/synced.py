"""Keeps one embedding space's FAISS index in step with the record store (the source of truth).

The index file carries the store's generation for its space. On open, on demand before a search,
and after every write, a lagging or foreign-written index is brought up to date by diffing id sets
and fetching only the missing vectors from SQLite; an unreadable file is rebuilt from SQLite. So a
crash between the SQLite commit and the index write loses nothing, and two processes see each
other's writes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omnimem.errors import CorruptInput
from omnimem.stores.faiss_index import FaissIndex
from omnimem.stores.sqlite import SQLiteRecordStore

__all__ = ["SyncedIndex", "SyncReport"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncReport:
    """What a sync did to the index of one space."""

    space: str  # embedding space name
    added: int  # vectors copied from SQLite into the index
    removed: int  # vectors dropped from the index because SQLite no longer has them
    rebuilt: bool  # whether the index file was unreadable and rebuilt from scratch

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.rebuilt)


class SyncedIndex:
    """One space's :class:`FaissIndex`, its file, and the generation of SQLite it reflects."""

    def __init__(
        self, store: SQLiteRecordStore, space: str, dim: int, path: str | Path, *,
        factory: str = "auto", approx_threshold: int = 100_000, nprobe: int = 32, save_every: int = 2_000,
    ) -> None:  # fmt: skip
        self.store = store
        self.space = space
        self.dim = dim
        self.path = Path(path)
        self.save_every = save_every
        self._options = dict(factory=factory, approx_threshold=approx_threshold, nprobe=nprobe)
        self._lock = threading.RLock()
        self._unsaved = 0
        self.last_report = self._load()

    # -- sync --------------------------------------------------------------------------------
    def _load(self) -> SyncReport:
        rebuilt = False
        if self.path.exists():
            try:
                self.index, self.generation = FaissIndex.load(self.path, **self._options)
                if self.index.dim != self.dim:
                    raise CorruptInput(f"{self.path} holds {self.index.dim}-d vectors, expected {self.dim}")
            except CorruptInput as e:
                log.warning("%s", e)
                rebuilt = True
                self.index, self.generation = FaissIndex(self.dim, **self._options), -1
        else:
            self.index, self.generation = FaissIndex(self.dim, **self._options), -1
        report = self.refresh(force=True)
        report = SyncReport(self.space, report.added, report.removed, rebuilt)
        if report.changed:
            log.info("index %s synced with SQLite: %s", self.space, report)
            self.save()
        return report

    def refresh(self, *, force: bool = False) -> SyncReport:
        """Bring the index up to SQLite's state for this space if the generation moved."""
        with self._lock:
            current = self.store.generation(self.space)
            if current == self.generation and not force:
                return SyncReport(self.space, 0, 0, False)
            in_db = set(self.store.vector_ids(self.space))
            in_index = set(self.index.ids())
            missing = sorted(in_db - in_index)
            extra = in_index - in_db
            removed = self.index.delete(extra) if extra else 0
            for start in range(0, len(missing), 10_000):
                ids, vectors = self.store.vectors(self.space, missing[start : start + 10_000])
                if ids:
                    self.index.upsert(ids, vectors)
            self.generation = current
            self._unsaved += len(missing) + removed
            return SyncReport(self.space, len(missing), removed, False)

    def rebuild(self) -> SyncReport:
        """Throw the index away and rebuild it from every vector SQLite holds for this space."""
        with self._lock:
            self.index = FaissIndex(self.dim, **self._options)
            self.generation = -1
            report = self.refresh(force=True)
            self.save()
            return SyncReport(self.space, report.added, report.removed, True)

    # -- writes by this process --------------------------------------------------------------
    def applied(self, ids: Sequence[str], vectors: np.ndarray | None, generation_before: int) -> None:
        """Mirror a committed write (upsert ``vectors`` or, when None, delete ``ids``).

        ``generation_before`` is the index's generation when the write began: if SQLite moved by
        more than this one commit, another process wrote too, and a diff-sync follows.
        """
        with self._lock:
            if vectors is None:
                self.index.delete(ids)
            elif len(ids):
                self.index.upsert(ids, vectors)
            self._unsaved += len(ids)
            current = self.store.generation(self.space)
            if generation_before == self.generation and current <= generation_before + 1:
                self.generation = current
            else:
                self.refresh(force=True)
            if self._unsaved >= self.save_every:
                self.save()

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        self.refresh()
        with self._lock:
            return self.index.search(queries, k)

    def save(self) -> None:
        with self._lock:
            self.index.save(self.path, generation=self.generation)
            self._unsaved = 0

    def close(self) -> None:
        with self._lock:
            if self._unsaved:
                self.save()

    def __len__(self) -> int:
        return len(self.index)
