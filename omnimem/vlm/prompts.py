"""Prompt templates, all in one place: grounded answers with citations, triplets, evidence lists.

The answer prompt asks the model to cite evidence ids in brackets (``[E3]``) and to say so when the
evidence does not contain the answer, instead of guessing (the abstention instruction of
retrieval-augmented QA prompts). Knowledge-graph facts are rendered as in M3KG-RAG (arXiv
2512.20136): ``<head, head description> -relation-> <tail, tail description>``.

Evidence is a plain :class:`Evidence` (or a dict with the same keys) until retrieval's ``Context``
exists; :func:`as_evidence` accepts either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omnimem.errors import ConfigError
from omnimem.vlm.base import Message

__all__ = [
    "Evidence",
    "Triplet",
    "NO_ANSWER",
    "SYSTEM_ANSWER",
    "as_evidence",
    "as_triplet",
    "render_triplet",
    "render_evidence",
    "evidence_header",
    "answer_messages",
    "cited_ids",
    "is_no_answer",
]

NO_ANSWER = "The evidence does not contain the answer."

SYSTEM_ANSWER = (
    "You answer questions using only the evidence given. Cite the ids of the evidence you use in square"
    f" brackets, like [E1]. If the evidence does not contain the answer, reply exactly: {NO_ANSWER}"
)

_IMAGE_MODALITIES = ("image", "frame", "video")


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence shown to the model."""

    id: str  # shown to the model in brackets, e.g. "E3"; answers cite it
    text: str = ""  # the passage, transcript or caption
    source: str | None = None  # where it came from: a file, a conversation id, a video
    span: tuple[float, float] | None = None  # (start, end) seconds in the source media, if any
    modality: str = "text"  # "text", or "image" / "frame" for a picture sent to a VLM
    image: Any = None  # for image evidence: a path, PIL image or uint8 (h, w, 3) array
    score: float = 0.0  # retrieval relevance, higher is better (orders frames)
    embedding: Any = None  # optional unit vector of the image, used to de-duplicate frames
    metadata: dict[str, Any] = field(default_factory=dict)  # free fields (speaker, time ...)

    def __post_init__(self) -> None:
        if not self.id or not isinstance(self.id, str):
            raise ConfigError(f"evidence id must be a non-empty str, got {self.id!r}")
        if "[" in self.id or "]" in self.id:
            raise ConfigError(f"evidence id {self.id!r} must not contain brackets; answers cite it as [id]")
        if self.is_image and self.image is None:
            raise ConfigError(f"evidence {self.id!r} has modality {self.modality!r} but no image")

    @property
    def is_image(self) -> bool:
        return self.modality in _IMAGE_MODALITIES


@dataclass(frozen=True)
class Triplet:
    """A knowledge-graph fact with its entities' descriptions."""

    head: str  # head entity name
    relation: str  # relation label
    tail: str  # tail entity name
    head_description: str = ""  # one line describing the head in context
    tail_description: str = ""  # one line describing the tail in context
    evidence_ids: tuple[str, ...] = ()  # ids of the evidence the fact comes from


def as_evidence(items: Iterable[Evidence | Mapping[str, Any] | str]) -> list[Evidence]:
    """Normalise evidence given as :class:`Evidence`, dicts or bare strings; missing ids become
    ``E1``, ``E2`` ... by position. Duplicate ids raise :class:`ConfigError`."""
    out: list[Evidence] = []
    for n, item in enumerate(items, start=1):
        if isinstance(item, Evidence):
            out.append(item)
        elif isinstance(item, str):
            out.append(Evidence(id=f"E{n}", text=item))
        elif isinstance(item, Mapping):
            data = dict(item)
            data["id"] = str(data.get("id") or f"E{n}")
            if data.get("span") is not None:
                data["span"] = tuple(float(x) for x in data["span"])
            unknown = set(data) - set(Evidence.__dataclass_fields__)
            if unknown:
                raise ConfigError(
                    f"unknown evidence field(s) {sorted(unknown)}; known: {list(Evidence.__dataclass_fields__)}"
                )
            out.append(Evidence(**data))
        else:
            raise ConfigError(f"evidence {n} must be an Evidence, a dict or a str, got {type(item).__name__}")
    ids = [e.id for e in out]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"evidence ids must be unique, got {ids}")
    return out


def as_triplet(value: Triplet | Mapping[str, Any] | Sequence[str]) -> Triplet:
    """A :class:`Triplet` from itself, a dict with its field names, or ``(head, relation, tail)``."""
    if isinstance(value, Triplet):
        return value
    if isinstance(value, Mapping):
        return Triplet(**value)
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 3:
        return Triplet(*map(str, value))
    raise ConfigError(f"a triplet is a Triplet, a dict or (head, relation, tail), got {value!r}")


def render_triplet(triplet: Triplet | Mapping[str, Any] | Sequence[str]) -> str:
    """``<head, description> -relation-> <tail, description>`` (a missing description is left out)."""
    t = as_triplet(triplet)
    head = f"<{t.head}, {t.head_description}>" if t.head_description else f"<{t.head}>"
    tail = f"<{t.tail}, {t.tail_description}>" if t.tail_description else f"<{t.tail}>"
    cites = "".join(f" [{i}]" for i in t.evidence_ids)
    return f"{head} -{t.relation}-> {tail}{cites}"


def evidence_header(e: Evidence) -> str:
    """``[E1] (source, 12.0-15.5 s)``: how an evidence line starts."""
    parts = [e.source] if e.source else []
    if e.span is not None:
        parts.append(f"{e.span[0]:.1f}-{e.span[1]:.1f} s")
    return f"[{e.id}]" + (f" ({', '.join(parts)})" if parts else "")


def render_evidence(evidence: Sequence[Evidence]) -> str:
    """One line per item: ``[E1] (source, 12.0-15.5 s) text``; image evidence notes its picture."""
    lines = []
    for e in evidence:
        text = e.text.strip()
        if e.is_image:
            text = f"(image {e.id} attached) {text}".strip()
        lines.append(f"{evidence_header(e)} {text}")
    return "\n".join(lines)


def answer_messages(
    question: str,
    evidence: Sequence[Evidence] = (),
    triplets: Sequence[Triplet | Mapping[str, Any] | Sequence[str]] = (),
    *,
    system: str = SYSTEM_ANSWER,
) -> list[Message]:
    """The grounded-QA chat: the system rules, then one user turn with facts, evidence and question."""
    if not question.strip():
        raise ConfigError("question is empty")
    blocks = []
    if triplets:
        blocks.append("Facts:\n" + "\n".join(render_triplet(t) for t in triplets))
    blocks.append("Evidence:\n" + (render_evidence(evidence) if evidence else "(none)"))
    blocks.append(f"Question: {question.strip()}")
    return [Message("system", system), Message("user", "\n\n".join(blocks))]


_CITE = re.compile(r"\[([^\[\]\n]{1,200})\]")


def cited_ids(answer: str) -> list[str]:
    """The evidence ids an answer cites, in first-cited order (``"... [E3][E1]"`` -> ``["E3", "E1"]``)."""
    seen: dict[str, None] = {}
    for match in _CITE.finditer(answer):
        for part in match.group(1).split(","):
            part = part.strip()
            if part and not any(c.isspace() for c in part):  # "[E2, E4]" cites two; "[a note]" none
                seen.setdefault(part, None)
    return list(seen)


def is_no_answer(answer: str) -> bool:
    """Whether the model said the evidence does not contain the answer."""
    norm = " ".join(answer.lower().split())
    return NO_ANSWER.lower().rstrip(".") in norm or "does not contain the answer" in norm
