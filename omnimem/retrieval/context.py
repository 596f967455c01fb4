"""What GRASP retrieval hands the model: a token-budgeted :class:`Context`, and the :class:`GraspConfig`.

M3KG-RAG (arXiv 2512.20136), section "Modality-wise retrieval + GRASP": the prompt holds the kept
items and the kept facts, each fact rendered as ``<head, description> -relation-> <tail, description>``.
Each :class:`ContextEntry` says where it came from (source, span, modality), which retrievers found
it and how many tokens it costs, so a caller can cite it and a benchmark can count what it spent.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from omnimem.config import STAGES, GraspConfig
from omnimem.errors import ConfigError

__all__ = ["KINDS", "ContextEntry", "Context", "GraspConfig", "STAGES", "RetrievalSource", "estimate_tokens"]

KINDS = ("item", "fact", "summary", "frame")  # the kinds of evidence a Context holds


class RetrievalSource(Protocol):
    """What retrieval reads from a memory (``omnimem.Memory`` satisfies it; retrieval never imports it).

    ``store``: a SQLiteRecordStore (items, BM25, neighbours, episodic nodes); ``graph``: a GraphStore;
    ``encoder`` / ``image_encoder``: the text and (optional) CLIP-like encoders; ``indexes``: space ->
    vector index with ``search(vectors, k)``; ``config``: a MemoryConfig (``config.search`` is used).
    """

    store: Any
    graph: Any
    encoder: Any
    image_encoder: Any
    indexes: Any
    config: Any


def estimate_tokens(text: str) -> int:
    """A cheap token estimate for English BPE vocabularies: about 4 characters or 0.75 words a token."""
    return max(1, round(max(len(text) / 4.0, len(text.split()) / 0.75)))


@dataclass(frozen=True)
class ContextEntry:
    """One piece of evidence in the context, in the order the prompt shows it."""

    kind: str  # one of KINDS: "item" (a turn / passage / segment), "fact" (a triplet), "summary", "frame"
    id: str  # item id, triplet id or episodic node id
    text: str  # exactly what goes in the prompt (facts rendered as <h, d> -r-> <t, d>)
    score: float = 0.0  # utility used for ordering and packing, higher is better
    tokens: int = 0  # what ``text`` costs, by the counter the context was packed with
    source: str | None = None  # the item's source (file, conversation id ...), if any
    span: tuple[float, float] | None = None  # (t_start, t_end) seconds in the source media, if any
    modality: str = "text"  # the item's modality ("image" for a frame)
    retrievers: tuple[str, ...] = ()  # what found it: dense, bm25, image, query_image, ppr, hop2, graph ...
    item_ids: tuple[str, ...] = ()  # the items it rests on (itself for an item; a fact's sources)
    blob: str | None = None  # a frame's content address in the blob store
    metadata: dict[str, Any] = field(default_factory=dict)  # free fields (speaker, event time, title ...)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown context entry kind {self.kind!r}; use one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class Context:
    """Ordered evidence packed into a token budget; ``render()`` gives the prompt text."""

    query: str  # the question it was built for
    entries: tuple[ContextEntry, ...] = ()  # best first within each kind; see render() for the order
    budget_tokens: int = 0  # the budget it was packed into
    dropped: int = 0  # candidates that passed every filter but did not fit the budget
    timings_ms: dict[str, float] = field(default_factory=dict)  # per stage, for benchmarks

    @property
    def tokens(self) -> int:
        """Tokens of the rendered evidence (entries plus one separator line each)."""
        return sum(e.tokens for e in self.entries)

    @property
    def items(self) -> list[ContextEntry]:
        return [e for e in self.entries if e.kind == "item"]

    @property
    def facts(self) -> list[ContextEntry]:
        return [e for e in self.entries if e.kind == "fact"]

    def item_ids(self) -> list[str]:
        """Ids of the items in the context, best first (the ranking evaluations score)."""
        return [e.id for e in self.entries if e.kind in ("item", "frame")]

    def render(self) -> str:
        """Prompt text: summaries, then facts, then items and frames, each line citable as ``[E<n>]``."""
        blocks: list[str] = []
        for kind, title in (("summary", "Episodes"), ("fact", "Facts"), ("item", "Evidence"), ("frame", "Frames")):
            lines = [f"[E{n}] {e.text}" for n, e in enumerate(self.entries, start=1) if e.kind == kind]
            if lines:
                blocks.append(f"{title}:\n" + "\n".join(lines))
        return "\n\n".join(blocks)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    def __len__(self) -> int:
        return len(self.entries)
