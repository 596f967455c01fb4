"""Store protocols: the small surfaces every storage backend implements.

``stores/`` knows ids, vectors, records and bytes, never models. Vectors cross this boundary as
float32 arrays of shape ``(n, dim)`` with L2-normalised rows; scores are inner products (cosine).
Each protocol has one conformance suite in ``tests/stores/`` that every backend runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from omnimem.stores.graph_schema import EntityRow, MentionRow, Merge, Split, TripletRow
from omnimem.types import Item

__all__ = ["Filters", "RecordStore", "VectorIndex", "BlobStore", "GraphStore", "FactLog"]


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


@runtime_checkable
class GraphStore(Protocol):
    """The M3KG (entities, mentions, triplets with their sources, the merge and split logs) of one memory.

    Ids are content hashes (:mod:`omnimem.stores.graph_schema`), so writes are idempotent. Merges
    are pointers, and each entity keeps the root they lead to, updated by the transaction that moves
    one: reads on a query's path (``roots_of``, ``canonical``, ``members``, ``entities(ids)``,
    ``find_entities``, ``neighbor_ids``) touch only the rows they name, never every entity. Every
    triplet keeps at least one source item (the coverage property). ``store`` is the memory's
    :class:`RecordStore`: a backend's graph writes join its ``transaction()``, so an item and its
    graph links change together.
    """

    store: Any

    def write(
        self,
        entities: Sequence[EntityRow] = (),
        mentions: Sequence[MentionRow] = (),
        triplets: Sequence[TripletRow] = (),
    ) -> dict[str, int]:
        """Upsert rows in one transaction; counts of new rows (entities, mentions, triplets, sources)."""

    def set_embedding(self, entity_ids: Sequence[str], vectors: np.ndarray) -> None:
        """Store float32 ``(n, d)`` vectors of entities (the builder stores their names' embeddings)."""

    def set_descriptions(self, descriptions: Mapping[str, str], *, overwrite: bool = False) -> int: ...

    def roots(self) -> dict[str, str]:
        """Every merged entity id -> the entity it resolves to now (reads them all: for jobs and export)."""

    def roots_of(self, entity_ids: Sequence[str]) -> dict[str, str]:
        """Each stored id of ``entity_ids`` -> the entity it resolves to now (itself when not merged);
        reads only those rows. Unknown ids are left out."""

    def canonical(self, entity_id: str) -> str:
        """The entity ``entity_id`` resolves to now (itself when not merged or unknown)."""

    def members(self, entity_ids: Sequence[str]) -> dict[str, list[str]]:
        """Each of ``entity_ids`` -> itself plus, for a root, the ids that resolve to it."""

    def entities(self, ids: Sequence[str] | None = None, *, include_merged: bool = False) -> list[EntityRow]: ...

    def get_entity(self, entity_id: str) -> EntityRow: ...

    def find_entities(self, name: str) -> list[EntityRow]: ...

    def embeddings(self, entity_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those of ``entity_ids`` that have one."""

    def triplets(
        self, *, entity_ids: Sequence[str] | None = None, item_ids: Sequence[str] | None = None
    ) -> list[TripletRow]: ...

    def sources(self, triplet_ids: Sequence[str]) -> dict[str, list[str]]: ...

    def mentions(
        self, *, entity_ids: Sequence[str] | None = None, item_ids: Sequence[str] | None = None
    ) -> list[MentionRow]: ...

    def contexts(self, entity_ids: Sequence[str], *, limit: int = 8) -> dict[str, list[str]]: ...

    def items_with_links(self, item_ids: Sequence[str]) -> set[str]: ...

    def items_of(self, entity_ids: Sequence[str]) -> dict[str, set[str]]: ...

    def mention_counts(self, entity_ids: Sequence[str]) -> dict[str, int]: ...

    def neighbor_ids(self, entity_ids: Sequence[str], *, hops: int = 1) -> set[str]: ...

    def counts(self) -> dict[str, int]: ...

    def stats(self) -> dict[str, Any]: ...

    def check_coverage(self) -> list[str]: ...

    def active_triplets(
        self, *, heads: Sequence[str] | None = None, relations: Sequence[str] | None = None, exclude: str | None = None
    ) -> list[tuple[str, str, str, str, str | None]]: ...

    def head_of(self, triplet_id: str) -> str | None: ...

    def retire(self, triplet_id: str, at: str, *, valid_to: str | None = None) -> bool: ...

    def collapse(self, pairs: Sequence[tuple[str, str]]) -> int: ...

    def merge(self, kept: str, merged: str, *, reason: str, scores: dict[str, float] | None = None) -> Merge: ...

    def unmerge(self, merged: str) -> None: ...

    def merges(self, *, include_undone: bool = False) -> list[Merge]: ...

    def split(
        self, entity: str, item_ids: Sequence[str], *, reason: str, scores: dict[str, float] | None = None
    ) -> Split: ...

    def unsplit(self, sense: str) -> None: ...

    def splits(self, *, include_undone: bool = False) -> list[Split]: ...

    def senses(self) -> dict[str, list[str]]: ...

    def orphan_items(self) -> list[str]: ...

    def delete_item_links(self, item_ids: Sequence[str]) -> dict[str, int]:
        """Remove deleted items' mentions and sources and every row left without evidence."""


@runtime_checkable
class FactLog(Protocol):
    """Every operation on a fact (add, reinforce, supersede(d), correct, merge), for its history."""

    def log(self, events: Iterable[tuple]) -> int:
        """Append ``(triplet_id, event, other_id, item_id, at[, note])`` events."""

    def history(self, triplet_id: str) -> list[tuple]:
        """One fact's events, oldest first: ``(triplet_id, event, other_id, item_id, at, note)``."""

    def logged(self, triplet_ids: Sequence[str]) -> set[str]: ...

    def corrected(self) -> set[str]: ...

    def unseen_items(self) -> list[str]:
        """Source items of triplets without any event (facts not observed yet)."""

    def prune(self) -> int:
        """Drop events of triplets that no longer exist."""
