"""GRASP answer-supporting relevance: a :class:`Reranker` keeps or drops each candidate.

M3KG-RAG (arXiv 2512.20136), section "GRASP", step (b): "a light model keeps or drops each remaining
fact under a conservative policy". Three backends share the protocol ``rerank(query, candidates) ->
Reranked`` (scores and a keep mask, one per candidate):

- :class:`OfflineReranker` (the default; no extra model): bi-encoder cosine, lexical overlap with
  the query, graph proximity and the upstream score, combined linearly; it drops only candidates
  far below the best.
- :class:`CrossEncoderReranker`: a sentence-transformers ``CrossEncoder`` the user has.
- :class:`GeneratorReranker`: the generator as a judge, a binary keep/drop mask as JSON.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from omnimem.errors import BackendUnavailable, ConfigError, CorruptInput

__all__ = [
    "Candidate",
    "Reranked",
    "Reranker",
    "OfflineReranker",
    "CrossEncoderReranker",
    "GeneratorReranker",
    "lexical_overlap",
    "conservative_keep",
]

_WORD = re.compile(r"[\w']+")
_STOP = frozenset(
    "a an the of in on at to for from by with and or is are was were be been what who whom whose which when"
    " where why how did do does that this it its as than then there their they he she his her him i you we"
    " my your our me us not no yes".split()
)


@dataclass(frozen=True)
class Candidate:
    """One item or fact offered to a reranker."""

    id: str  # item or triplet id
    text: str  # what the reranker reads (a fact as its rendered line)
    kind: str = "item"  # "item" or "fact"
    score: float = 0.0  # upstream (fused) score, in [0, 1] after normalisation by the caller
    proximity: float = 0.0  # graph proximity to the query's entities in [0, 1] (PPR mass, link hits)
    vector: Any = None  # its unit vector in the text space, when known (saves an encode)
    metadata: dict[str, Any] = field(default_factory=dict)  # free fields


@dataclass(frozen=True)
class Reranked:
    """A reranker's verdict: one score and one keep flag per candidate, in the candidates' order."""

    scores: np.ndarray  # float (n,), higher is more relevant
    keep: np.ndarray  # bool (n,)

    def __post_init__(self) -> None:
        if self.scores.shape != self.keep.shape or self.scores.ndim != 1:
            raise ConfigError(f"scores and keep must be (n,) arrays, got {self.scores.shape} and {self.keep.shape}")


class Reranker(Protocol):
    def rerank(self, query: str, candidates: Sequence[Candidate]) -> Reranked: ...


def _terms(text: str) -> set[str]:
    return {w for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOP and len(w) > 1}


def lexical_overlap(query: str, text: str) -> float:
    """Share of the query's content words that occur in ``text`` (0 when the query has none)."""
    q = _terms(query)
    return len(q & _terms(text)) / len(q) if q else 0.0


def conservative_keep(scores: np.ndarray, *, min_keep: int, ratio: float) -> np.ndarray:
    """Keep the best ``min_keep`` and every candidate scoring at least ``ratio`` of the best score.

    Scores are shifted so the worst is 0 first; the policy then only drops the clear losers.
    """
    n = len(scores)
    if n == 0:
        return np.zeros(0, dtype=bool)
    shifted = scores - scores.min()
    keep = shifted >= ratio * shifted.max() if shifted.max() > 0 else np.ones(n, dtype=bool)
    keep[np.argsort(-scores, kind="stable")[:min_keep]] = True
    return keep


@dataclass(frozen=True)
class OfflineReranker:
    """Bi-encoder cosine + lexical overlap + graph proximity + upstream score, no extra model.

    ``score = w_cos * cos(query, text) + w_lex * overlap + w_graph * proximity + w_up * upstream``.
    Candidates with a ``vector`` are not re-encoded; the rest are encoded in one batch.
    """

    encoder: Any = None  # the memory's text encoder (None: the cosine feature is left out)
    w_cos: float = 0.4  # weight of the query-candidate cosine
    w_lex: float = 0.2  # weight of the lexical overlap with the query's content words
    w_graph: float = 0.1  # weight of the graph proximity
    w_up: float = 0.3  # weight of the upstream fused score
    min_keep: int = 5  # always keep this many of the best
    ratio: float = 0.3  # keep those at least this share of the best (after shifting the worst to 0)

    def rerank(self, query: str, candidates: Sequence[Candidate], *, query_vector: Any = None) -> Reranked:
        """``query_vector``: the query's unit vector in the encoder's space, if already computed."""
        n = len(candidates)
        if n == 0:
            return Reranked(np.zeros(0), np.zeros(0, dtype=bool))
        cos = np.zeros(n, dtype=np.float32)
        if self.encoder is not None:
            missing = [k for k, c in enumerate(candidates) if c.vector is None]
            texts = ([] if query_vector is not None else [query]) + [candidates[k].text for k in missing]
            encoded = np.asarray(self.encoder.encode(texts, modality="text"), dtype=np.float32) if texts else None
            qv = np.asarray(query_vector, dtype=np.float32) if query_vector is not None else encoded[0]
            offset = 0 if query_vector is not None else 1
            vectors = {k: encoded[offset + j] for j, k in enumerate(missing)}
            for k, c in enumerate(candidates):
                v = vectors[k] if c.vector is None else np.asarray(c.vector, dtype=np.float32)
                cos[k] = float(qv @ v)
        lex = np.array([lexical_overlap(query, c.text) for c in candidates], dtype=np.float32)
        prox = np.array([c.proximity for c in candidates], dtype=np.float32)
        up = np.array([c.score for c in candidates], dtype=np.float32)
        scores = self.w_cos * cos + self.w_lex * lex + self.w_graph * prox + self.w_up * up
        return Reranked(scores, conservative_keep(scores, min_keep=self.min_keep, ratio=self.ratio))


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` scoring (query, candidate) pairs.

    Keeps the best ``min_keep`` and those whose score clears ``threshold`` (a logit; 0 is the
    decision boundary of a binary relevance head), so a weak model cannot empty the context.
    """

    def __init__(self, model: Any, *, threshold: float = 0.0, min_keep: int = 3, batch_size: int = 32) -> None:
        if min_keep < 0 or batch_size <= 0:
            raise ConfigError("min_keep must be >= 0 and batch_size positive")
        self.model = model
        self.threshold = threshold
        self.min_keep = min_keep
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, device: str | None = None, **options: Any) -> CrossEncoderReranker:
        """Load ``CrossEncoder(name_or_path)``; needs ``pip install 'omnimem[sentence]'``."""
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as e:
            raise BackendUnavailable(
                "the cross-encoder reranker needs sentence-transformers: pip install 'omnimem[sentence]'"
            ) from e
        return cls(CrossEncoder(name_or_path, device=device), **options)

    def rerank(self, query: str, candidates: Sequence[Candidate]) -> Reranked:
        if not candidates:
            return Reranked(np.zeros(0), np.zeros(0, dtype=bool))
        raw = self.model.predict([(query, c.text) for c in candidates], batch_size=self.batch_size)
        scores = np.asarray(raw, dtype=np.float32).reshape(len(candidates), -1)[:, -1]
        keep = scores >= self.threshold
        keep[np.argsort(-scores, kind="stable")[: self.min_keep]] = True
        return Reranked(scores, keep)


_JUDGE_SYSTEM = (
    "You check which numbered pieces of evidence help answer a question. Keep a piece if it states or"
    " clearly leads to part of the answer; when unsure, keep it."
)


class GeneratorReranker:
    """The generator as a judge: one call returns ``{"keep": [true/false per candidate]}``.

    Scores are the upstream scores (a judge gives no order); the best ``min_keep`` by upstream score
    are kept whatever the judge says. A judge whose answer cannot be parsed after the retries keeps
    everything (conservative).
    """

    def __init__(self, generator: Any, *, min_keep: int = 1, retries: int = 1, max_chars: int = 400) -> None:
        if min_keep < 0 or retries < 0 or max_chars <= 0:
            raise ConfigError("min_keep and retries must be >= 0, max_chars positive")
        self.generator = generator
        self.min_keep = min_keep
        self.retries = retries
        self.max_chars = max_chars

    def rerank(self, query: str, candidates: Sequence[Candidate]) -> Reranked:
        from omnimem.vlm.base import Message
        from omnimem.vlm.structured import generate_json

        n = len(candidates)
        scores = np.array([c.score for c in candidates], dtype=np.float32)
        if n == 0:
            return Reranked(scores, np.zeros(0, dtype=bool))
        lines = "\n".join(f"{k}. {c.text[: self.max_chars]}" for k, c in enumerate(candidates, start=1))
        user = f"Question: {query}\n\nEvidence:\n{lines}\n\nAnswer with one true (keep) or false (drop) per piece, in order."
        schema = {
            "type": "object",
            "properties": {"keep": {"type": "array", "items": {"type": "boolean"}, "minItems": n, "maxItems": n}},
            "required": ["keep"],
        }
        try:
            gen = generate_json(
                self.generator, [Message("system", _JUDGE_SYSTEM), Message("user", user)], schema, self.retries,
                max_new_tokens=16 + 6 * n,
            )  # fmt: skip
            keep = np.array(gen.parsed["keep"], dtype=bool)
        except CorruptInput:
            keep = np.ones(n, dtype=bool)
        keep[np.argsort(-scores, kind="stable")[: self.min_keep]] = True
        return Reranked(scores, keep)
