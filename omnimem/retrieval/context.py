"""What GRASP retrieval hands the model: a token-budgeted :class:`Context`, and the :class:`GraspConfig`.

M3KG-RAG (arXiv 2512.20136), section "Modality-wise retrieval + GRASP": the prompt holds the kept
items and the kept facts, each fact rendered as ``<head, description> -relation-> <tail, description>``.
Each :class:`ContextEntry` says where it came from (source, span, modality), which retrievers found
it and how many tokens it costs, so a caller can cite it and a benchmark can count what it spent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from omnimem.errors import ConfigError

__all__ = ["KINDS", "ContextEntry", "Context", "GraspConfig", "RetrievalSource", "estimate_tokens"]

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


@dataclass(frozen=True)
class GraspConfig:
    """Every GRASP stage, switchable for ablations (override with ``dataclasses.replace``)."""

    # candidate generation (per modality)
    candidates: int = 50  # candidates per retriever before fusion
    pool: int = 30  # fused items that go on to grounding, expansion and reranking
    tau: tuple[tuple[str, float], ...] = (("text", 0.1), ("image", 0.15))  # per-space min cosine of a dense hit
    # multi-hop expansion (HippoRAG 2)
    hop2: bool = True  # second dense round: the query joined with each top item (multi-hop dense retrieval)
    hop2_seeds: int = 1  # top items whose text joins the query in the second round (one search each)
    hop2_head: int = 2  # first-round items kept ahead of the second round's best (one per seed)
    ppr: bool = False  # personalized PageRank over the bounded entity-item subgraph (off: see expand.py)
    damping: float = 0.5  # probability of following an edge rather than restarting (HippoRAG 2: 0.5)
    ppr_seeds: str = "both"  # "query" (linked query entities), "items" (entities of top hits) or "both"
    seed_items: int = 5  # top fused items whose entities seed the walk
    max_seed_degree: int = 50  # entities mentioned by more items than this are too generic to seed
    hops: int = 2  # entity-item hops of the subgraph around the seeds
    max_nodes: int = 1000  # node cap of that subgraph, so latency stays flat as the graph grows
    ppr_weight: float = 0.15  # weight of the normalised PPR mass in the fusion (conservative)
    ppr_rescue: int = 2  # items PPR ranks high that no retriever found may join the pool
    # GRASP
    grounding: bool = True  # link query entities; with an image, drop entities / facts absent from it
    link_threshold: float = 0.85  # min name-embedding cosine for an embedding entity link
    eta: float = 0.2  # min presence score of a fact in the query image (head + tail, min-max normalised)
    rerank: bool = True  # answer-supporting relevance: the reranker's keep mask over facts
    rerank_items: bool = False  # also over items (off: answer turns often share no word with the question)
    redundancy: bool = True  # collapse near-duplicate evidence, keeping the better-sourced one
    dup_threshold: float = 0.92  # cosine above which two pieces of evidence are the same
    # packing
    facts: bool = True  # put kept triplets in the context
    max_facts: int = 10  # facts considered for packing
    summaries: bool = True  # put the sessions' summaries of the top items in the context
    frames: bool = True  # put images of image items in the context
    budget_tokens: int = 1024  # default budget of retrieve_context
    neighbours: bool = True  # turns borrow from their session neighbours (as Memory.search does)

    def __post_init__(self) -> None:
        if self.candidates <= 0 or self.pool <= 0:
            raise ConfigError("grasp candidates and pool must be positive")
        for space, value in self.tau:
            if not -1.0 <= float(value) <= 1.0:
                raise ConfigError(f"tau for space {space!r} must be a cosine in [-1, 1], got {value}")
        if not 0.0 < self.damping < 1.0:
            raise ConfigError(f"damping must be in (0, 1), got {self.damping}; HippoRAG 2 uses 0.5")
        if self.ppr_seeds not in ("query", "items", "both"):
            raise ConfigError(f"ppr_seeds must be 'query', 'items' or 'both', got {self.ppr_seeds!r}")
        if min(self.hop2_seeds, self.hop2_head, self.seed_items, self.hops, self.ppr_rescue, self.max_facts) < 0:
            raise ConfigError(
                "grasp counts (hop2_seeds, hop2_head, seed_items, hops, ppr_rescue, max_facts) must be >= 0"
            )
        if self.max_nodes <= 0 or self.max_seed_degree <= 0:
            raise ConfigError("max_nodes and max_seed_degree must be positive")
        if self.ppr_weight < 0:
            raise ConfigError("ppr_weight must be >= 0")
        for name in ("link_threshold", "eta", "dup_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.budget_tokens <= 0:
            raise ConfigError(f"budget_tokens must be positive, got {self.budget_tokens}")

    def tau_for(self, space: str) -> float | None:
        """The dense threshold of ``space`` (None: no threshold)."""
        return dict(self.tau).get(space)

    def is_on(self, stage: str) -> bool:
        """Whether ``stage`` (one of STAGES) is switched on."""
        return bool(getattr(self, stage))

    def with_(self, *stages: str) -> GraspConfig:
        """This config with stages switched on (tau: the default thresholds)."""
        unknown = set(stages) - set(STAGES)
        if unknown:
            raise ConfigError(f"unknown stage(s) {sorted(unknown)}; stages are {', '.join(STAGES)}")
        changes: dict[str, Any] = {s: True for s in stages if s != "tau"}
        if "tau" in stages:
            changes["tau"] = GraspConfig.__dataclass_fields__["tau"].default
        return _replace(self, changes)

    def without(self, *stages: str) -> GraspConfig:
        """This config with stages switched off, e.g. ``config.without("ppr", "rerank")`` (for ablations)."""
        unknown = set(stages) - set(STAGES)
        if unknown:
            raise ConfigError(f"unknown stage(s) {sorted(unknown)}; stages are {', '.join(STAGES)}")
        changes: dict[str, Any] = {s: False for s in stages if s != "tau"}
        if "tau" in stages:
            changes["tau"] = ()
        return _replace(self, changes)


STAGES: Sequence[str] = ("tau", "hop2", "ppr", "grounding", "rerank", "redundancy", "facts", "summaries")


def _replace(config: GraspConfig, changes: dict[str, Any]) -> GraspConfig:
    import dataclasses

    return dataclasses.replace(config, **changes)
