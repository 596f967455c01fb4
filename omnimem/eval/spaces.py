"""A second dense space for the evaluations: every item embedded by another encoder, searched exactly.

GRASP's ``dense2`` stage (:func:`omnimem.retrieval.focused.second_space`) reads
``source.indexes[space]`` and ``source.space_encoders[space]``. A memory does not keep a second text
space yet, so the evaluations build one beside it after ingest (an exact index: a few thousand items)
and hand GRASP the memory with that space added (:class:`WithSpace`).
"""

from __future__ import annotations

from typing import Any

from omnimem.memory.inputs import embedding_text
from omnimem.stores.exact import ExactIndex

__all__ = ["WithSpace", "with_second_space", "needs_second_space"]


class WithSpace:
    """A memory seen with one more embedding space: ``indexes`` and ``space_encoders`` extended; every
    other attribute is the memory's."""

    def __init__(self, memory: Any, space: str, index: Any, encoder: Any) -> None:
        self._memory = memory
        self.indexes = {**memory.indexes, space: index}
        self.space_encoders = {**(getattr(memory, "space_encoders", None) or {}), space: encoder}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._memory, name)


def with_second_space(memory: Any, encoder: Any, *, space: str = "e5", batch: int = 256) -> WithSpace:
    """``memory`` with every item embedded by ``encoder`` (as the memory embeds: heading and text) in ``space``."""
    index = ExactIndex(encoder.dim)
    ids = list(memory.store.ids())
    for start in range(0, len(ids), batch):
        items = [i for i in memory.store.get(ids[start : start + batch]) if i is not None]
        if items:
            index.upsert([i.id for i in items], encoder.encode([embedding_text(i) for i in items], modality="text"))
    return WithSpace(memory, space, index, encoder)


def needs_second_space(systems: dict[str, Any]) -> str | None:
    """The dense2 space some GRASP system uses (None: none does)."""
    return next((c.dense2_space for c in systems.values() if c.dense2), None)
