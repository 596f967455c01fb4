"""Store protocols: the small surfaces every storage backend implements.

``stores/`` knows ids, vectors, records and bytes, never models. Vectors cross this boundary as
float32 arrays of shape ``(n, dim)`` with L2-normalised rows; scores are inner products (cosine).
Each protocol has one conformance suite in ``tests/stores/`` that every backend runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from omnimem.types import Item

__all__ = ["Filters", "RecordStore", "VectorIndex", "BlobStore"]


@dataclass(frozen=True)
class Filters:
    """Restrict a search to items matching every given field (None = no restriction)."""

    modalities: tuple[str, ...] | None = None  # e.g. ("text", "audio")
    sessions: tuple[str, ...] | None = None  # session ids
    episodes: tuple[str, ...] | None = None  # episode ids
    speakers: tuple[str, ...] | None = None  # speaker names, exact
    since: str | None = None  # ISO-8601, event_time >= since
    until: str | None = None  # ISO-8601, event_time < until

    def is_empty(self) -> bool:
        return all(getattr(self, f) is None for f in self.__dataclass_fields__)

    def matches(self, item: Item) -> bool:
        if self.modalities is not None and item.modality not in self.modalities:
            return False
        if self.sessions is not None and item.session not in self.sessions:
            return False
        if self.episodes is not None and item.episode not in self.episodes:
            return False
        if self.speakers is not None and item.speaker not in self.speakers:
            return False
        if self.since is not None and (item.event_time is None or item.event_time < self.since):
            return False
        if self.until is not None and (item.event_time is None or item.event_time >= self.until):
            return False
        return True


@runtime_checkable
class RecordStore(Protocol):
    """The source of truth: items, their vectors per embedding space, and BM25 over their text."""

    def add(
        self, items: Sequence[Item], vectors: Mapping[str, tuple[Sequence[str], np.ndarray]] | None = None
    ) -> list[str]:
        """Insert items not yet present (by id) and their vectors, in one transaction.

        ``vectors[space] = (ids, float32 (n, dim))``; vectors are stored only for the items this
        call inserted (a repeated add changes nothing). Returns the ids newly inserted.
        """

    def get(self, ids: Sequence[str]) -> list[Item | None]:
        """The items with these ids, in order; ``None`` where an id is unknown."""

    def update(self, item: Item, vectors: Mapping[str, tuple[Sequence[str], np.ndarray]] | None = None) -> None:
        """Replace a stored item (same id) and optionally its vectors, in one transaction."""

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Delete items and their vectors in one transaction; returns the ids that existed."""

    def bm25(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[str, float]]:
        """Top-k ``(id, score)`` by BM25 over item text, best first (higher score is better)."""

    def vectors(self, space: str, ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        """Stored vectors of a space (all, or for ``ids``): ``(ids, float32 (n, dim))``."""

    def vector_ids(self, space: str) -> list[str]:
        """Ids that have a vector in ``space``."""

    def generation(self, space: str) -> int:
        """A counter bumped by every committed change to ``space``'s vectors."""

    def ids(self) -> Iterator[str]:
        """Every item id."""

    def __len__(self) -> int: ...

    def close(self) -> None: ...


@runtime_checkable
class VectorIndex(Protocol):
    """A nearest-neighbour index over string ids; inner-product scores, best first."""

    dim: int

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add vectors, replacing those of ids already present. ``vectors``: float32 (n, dim)."""

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """For each query row, up to k ``(id, score)`` pairs, best first."""

    def delete(self, ids: Iterable[str]) -> int:
        """Remove ids (unknown ones are ignored); returns how many were removed."""

    def ids(self) -> list[str]:
        """Every id in the index."""

    def __len__(self) -> int: ...


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed bytes: the address is the sha256 of the content."""

    def put(self, data: bytes, *, suffix: str = "") -> str:
        """Store bytes (a no-op when present); returns their address."""

    def get(self, address: str) -> bytes:
        """The bytes at ``address``; raises NotFound."""

    def path(self, address: str) -> str:
        """A local file path holding the bytes (for libraries that want a file)."""

    def delete(self, address: str) -> bool:
        """Remove the bytes; returns whether they existed."""

    def __contains__(self, address: object) -> bool: ...
