"""What the agents share: evidence from memory packed into a token budget, citations, timestamps.

:func:`_recall` is the one place the agents turn a question into a prompt: GRASP retrieval
(``mem.context``: candidates, multi-hop round, grounding, reranking, redundancy pruning, packing;
M3KG-RAG "Modality-wise retrieval + GRASP") picks the evidence, and
:func:`omnimem.vlm.compress.compress_context` lays it out in the model's prompt with the caller's own
evidence (working buffer, facts, frames) under the model's token counter.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omnimem.errors import missing_extra
from omnimem.types import Hit, hms
from omnimem.vlm.compress import CompressionConfig, compress_context
from omnimem.vlm.prompts import Evidence, Triplet, cited_ids

__all__ = [
    "Recall", "hit_evidence", "cite", "hms", "span_label", "question_words", "open_checkpointer", "state_graph",
    "compile_graph", "stream_updates",
]  # fmt: skip

log = logging.getLogger(__name__)

_WORD = re.compile(r"[A-Za-z0-9][\w'-]*")


@dataclass(frozen=True)
class Recall:
    """A packed prompt and where each evidence id points."""

    messages: list[dict[str, str]]  # {"role", "content"} chat turns, ready for Generator.generate
    images: list[str]  # paths of the kept frames, in evidence order, for images=
    sources: dict[str, str]  # evidence id ("E2", "S1") -> item id or episodic-tree node id
    spans: dict[str, list[float]] = field(default_factory=dict)  # evidence id -> [t_start, t_end] seconds
    prompt_tokens: int = 0  # measured size of the prompt (<= the budget)
    visual_tokens: int = 0  # image tokens of the kept frames


def hit_evidence(hits: Sequence[Any], *, prefix: str = "E", start: int = 1) -> list[Evidence]:
    """Search hits as :class:`Evidence` ``E1, E2 ...`` (their item id in ``metadata["item"]``)."""
    out = []
    for n, h in enumerate(hits, start=start):
        span = (float(h.t_start), float(h.t_end)) if h.t_start is not None and h.t_end is not None else None
        text = f"{h.speaker}: {h.text}" if h.speaker else h.text
        meta = {"item": h.id, **({"time": h.event_time[:10]} if h.event_time else {})}
        out.append(Evidence(id=f"{prefix}{n}", text=text, source=h.session, span=span, score=h.score, metadata=meta))
    return out


def _recall(
    mem: Any, question: str, budget: int, *, count_tokens: Callable[[str], int], k: int = 8,
    sessions: Sequence[str] | None = None, modalities: Sequence[str] | None = None,
    context: Sequence[Evidence] = (), triplets: Sequence[Triplet] = (), frames: Sequence[Evidence] = (),
    config: CompressionConfig | None = None, exclude: Sequence[str] = (),
    expand: Callable[[list[Any]], tuple[list[Evidence], list[Triplet]]] | None = None, prune: float = 0.0,
    grasp: Any = None,
) -> Recall:  # fmt: skip
    """Retrieve for ``question`` with ``mem.context`` (within ``sessions``; ``grasp``: a GraspConfig for
    this call) and pack its items (at most ``k``, none of ``exclude``), its facts and session summaries, the given ``context``
    evidence (the working buffer), ``triplets`` and ``frames`` (image evidence with a path) into
    ``budget`` tokens. ``expand(hits)`` adds evidence and facts derived from the hits (the summaries
    of their sessions); ``prune`` drops hits under that share of the best score. Evidence ``metadata["item"]`` is where a citation of it points.

    An empty ``sessions`` list means "nothing to search" (a new user), not "search everything".
    """
    hits, knowledge = [], []
    if sessions is None or sessions:
        ctx = mem.context(
            question, budget_tokens=budget, sessions=sessions, modalities=modalities, count_tokens=count_tokens,
            config=grasp,
        )  # fmt: skip
        hits, knowledge = _context_hits(mem, ctx, set(exclude), k)
        if hits and prune > 0:  # keep hits scoring at least prune x the best
            hits = [h for h in hits if h.score >= prune * hits[0].score]
    more, facts = expand(hits) if expand is not None else ([], [])
    evidence = [*context, *hit_evidence(hits), *knowledge, *more, *frames]
    cfg = config or CompressionConfig()
    packed = compress_context(
        question, evidence, count_tokens, replace(cfg, token_budget=budget), triplets=[*triplets, *facts]
    )
    sources = {e.id: e.metadata["item"] for e in evidence if e.metadata.get("item")}
    spans = {e.id: list(e.span) for e in evidence if e.span is not None}
    return Recall(
        [m.to_dict() for m in packed.messages], [str(e.image) for e in packed.evidence if e.is_image], sources,
        spans, packed.prompt_tokens,
        packed.visual_tokens,
    )  # fmt: skip


def _context_hits(mem: Any, ctx: Any, exclude: set[str], k: int) -> tuple[list[Hit], list[Evidence]]:
    """A Context as hits (its items and frames, best first) and evidence (its facts ``K<n>``, summaries ``S<n>``)."""
    entries = [e for e in ctx.entries if e.kind in ("item", "frame") and e.id not in exclude][:k]
    items = mem.store.get([e.id for e in entries])
    hits = [Hit.from_item(item, e.score, e.retrievers) for e, item in zip(entries, items) if item is not None]
    knowledge = []
    for prefix, kind in (("K", "fact"), ("S", "summary")):
        chosen = [e for e in ctx.entries if e.kind == kind]
        knowledge += [
            Evidence(id=f"{prefix}{n}", text=e.text, score=e.score, metadata={"item": e.item_ids[0] if e.item_ids and kind == "fact" else e.id})
            for n, e in enumerate(chosen, start=1)
        ]  # fmt: skip
    return hits, knowledge


def cite(answer: str, sources: dict[str, str]) -> list[dict[str, str]]:
    """``[{"id": "E2", "item": <item id>}, ...]``: the ids the answer cites that map to memory."""
    return [{"id": c, "item": sources[c]} for c in cited_ids(answer) if c in sources]


def span_label(span: Sequence[float]) -> str:
    """``[HH:MM:SS-HH:MM:SS]`` of a ``(t_start, t_end)`` span in seconds."""
    return f"[{hms(span[0])}-{hms(span[1])}]"


def question_words(question: str, *, max_words: int = 3) -> list[str]:
    """Word n-grams (1..max_words) of ``question``: the names its entities may have in the graph."""
    words = _WORD.findall(question)
    grams = [" ".join(words[i : i + n]) for n in range(max_words, 0, -1) for i in range(len(words) - n + 1)]
    return list(dict.fromkeys(grams))


def open_checkpointer(path: str) -> Any:
    """A LangGraph SQLite checkpointer at ``path`` (``":memory:"`` for none on disk)."""
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError as e:
        raise missing_extra("langgraph-checkpoint-sqlite", "agents") from e
    from omnimem.stores.checkpoints import checkpoint_connection

    return SqliteSaver(checkpoint_connection(path))


def default_checkpoint(memory: Any, name: str) -> str:
    return str(Path(memory.path) / name)


def state_graph() -> tuple[Any, Any, Any]:
    """LangGraph's ``(StateGraph, START, END)``, or a clear error naming the extra to install."""
    try:
        from langgraph.graph import END, START, StateGraph
    except ImportError as e:
        raise missing_extra("langgraph", "agents") from e
    return StateGraph, START, END


def compile_graph(graph: Any, memory: Any, checkpointer: Any, path: str | None, default_name: str) -> Any:
    """``graph`` compiled with ``checkpointer``, or a SQLite one at ``path`` (default ``<memory>/<default_name>``)."""
    if checkpointer is None:
        checkpointer = open_checkpointer(path or default_checkpoint(memory, default_name))
    return graph.compile(checkpointer=checkpointer)


def stream_updates(
    app: Any, inputs: dict | None, config: dict, on_step: Callable[[str, dict], None] | None, label: str
) -> dict:
    """Run ``app`` on ``inputs`` (None: resume the thread), handing each node's update to ``on_step``;
    returns the thread's state after it."""
    for update in app.stream(inputs, config, stream_mode="updates"):
        for node, value in update.items():
            log.debug("%s step %s: %s", label, node, sorted(value or {}))
            if on_step is not None:
                on_step(node, value or {})
    return app.get_state(config).values
