"""Retrieve, then answer with citations: what ``/ask``, ``/chat`` and the MCP ``ask`` tool share.

Evidence comes from ``Memory.context(query, budget_tokens=...)`` when the memory has it (GRASP
retrieval), else from ``Memory.search`` hits packed best-first into the token budget. The answer
comes from a generator (``omnimem.vlm``) through :func:`~omnimem.vlm.prompts.answer_messages`; the
ids it cites (``[E2]``) map back to the memory's item ids.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from omnimem.vlm.prompts import Evidence, answer_messages, cited_ids

__all__ = ["Answer", "EvidenceRow", "retrieve", "answer", "render"]


@dataclass(frozen=True)
class EvidenceRow:
    """One piece of evidence, citable as ``[id]``."""

    id: str  # "E1", "E2" ... in prompt order
    item_id: str  # the memory's id of the item, fact or episodic node
    text: str  # what the prompt shows
    kind: str = "item"  # "item", "fact", "summary" or "frame"
    score: float = 0.0  # retrieval relevance, higher is better
    source: str | None = None  # file, conversation id ...
    span: tuple[float, float] | None = None  # (start, end) seconds in the source media
    modality: str = "text"


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str | None  # None when no generator is configured
    citations: list[EvidenceRow]  # the evidence the answer cites, in first-cited order
    evidence: list[EvidenceRow]


def retrieve(mem: Any, query: str, *, budget_tokens: int = 1_024) -> list[EvidenceRow]:
    """Evidence for ``query`` within ``budget_tokens``: the GRASP context (``mem.context``), one row per entry."""
    ctx = mem.context(query, budget_tokens=budget_tokens)
    return [_from_entry(n, e) for n, e in enumerate(ctx.entries, start=1)]


def _from_entry(n: int, entry: Any) -> EvidenceRow:
    span = getattr(entry, "span", None)
    return EvidenceRow(
        id=f"E{n}", item_id=entry.id, text=entry.text, kind=getattr(entry, "kind", "item"),
        score=float(getattr(entry, "score", 0.0)), source=getattr(entry, "source", None),
        span=tuple(span) if span is not None else None, modality=getattr(entry, "modality", "text"),
    )  # fmt: skip


def render(evidence: list[EvidenceRow]) -> str:
    """One citable line per piece of evidence: ``[E1] text``."""
    return "\n".join(f"[{e.id}] {e.text}" for e in evidence)


_GENERATE = threading.Lock()  # local backends (llama.cpp) are not thread-safe


def answer(generator: Any, question: str, evidence: list[EvidenceRow], *, max_new_tokens: int = 256) -> Answer:
    """The generator's grounded answer to ``question`` over ``evidence``; ``answer=None`` without one."""
    if generator is None:
        return Answer(question, None, [], evidence)
    # a text-only prompt: every piece of evidence, frames included, is shown by its text
    shown = [Evidence(id=e.id, text=e.text, source=e.source, span=e.span, score=e.score) for e in evidence]
    messages = answer_messages(question, shown)
    with _GENERATE:
        generation = generator.generate(messages, max_new_tokens=max_new_tokens)
    by_id = {e.id: e for e in evidence}
    citations = [by_id[i] for i in cited_ids(generation.text) if i in by_id]
    return Answer(question, generation.text.strip(), citations, evidence)
