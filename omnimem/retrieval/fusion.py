"""Fusion of ranked lists from several retrievers.

- :func:`convex_fusion`: a weighted sum of normalised scores (TM2C2 in Bruch, Gai & Ingber, "An
  Analysis of Fusion Functions for Hybrid Retrieval", TOIS 2023), the default: it keeps how *much*
  better one candidate is than the next, so a weak retriever's tail cannot outvote a strong one's head.
- :func:`reciprocal_rank_fusion` (Cormack, Clarke & Buettcher, SIGIR 2009): rank-only, for retrievers
  whose scores are not comparable at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from omnimem.errors import ConfigError

__all__ = ["Fused", "reciprocal_rank_fusion", "convex_fusion"]


@dataclass
class Fused:
    """One fused candidate: its score and its 1-based rank in each ranking that had it."""

    id: str
    score: float
    ranks: dict[str, int] = field(default_factory=dict)


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[str]], *, k: int = 60, weights: Mapping[str, float] | None = None
) -> list[Fused]:
    """Fuse ranked id lists: ``score(d) = sum_r w_r / (k + rank_r(d))``, best first.

    Ties break by the best single rank, then by id, so the order is deterministic.
    """
    if k < 0:
        raise ConfigError(f"rrf k must be >= 0, got {k}")
    weights = dict(weights or {})
    fused: dict[str, Fused] = {}
    for name, ids in rankings.items():
        weight = float(weights.get(name, 1.0))
        if weight == 0:
            continue
        for rank, item_id in enumerate(dict.fromkeys(ids), start=1):
            entry = fused.setdefault(item_id, Fused(item_id, 0.0))
            entry.score += weight / (k + rank)
            entry.ranks[name] = rank
    return sorted(fused.values(), key=lambda f: (-f.score, min(f.ranks.values()), f.id))


def convex_fusion(
    scored: Mapping[str, Sequence[tuple[str, float]]], *, weights: Mapping[str, float] | None = None
) -> list[Fused]:
    """Fuse ``{retriever: [(id, score in [0, 1]), ...]}`` by ``sum_r w_r * s_r(d) / sum_r w_r``.

    Scores must already be normalised to [0, 1] per retriever (a missing candidate scores 0 there).
    Ties break by the best single rank, then by id.
    """
    weights = dict(weights or {})
    total = sum(float(weights.get(name, 1.0)) for name in scored)
    if total <= 0:
        raise ConfigError("convex fusion needs at least one retriever with a positive weight")
    fused: dict[str, Fused] = {}
    for name, pairs in scored.items():
        weight = float(weights.get(name, 1.0))
        for rank, (item_id, score) in enumerate(pairs, start=1):
            entry = fused.setdefault(item_id, Fused(item_id, 0.0))
            if name not in entry.ranks:
                entry.score += weight * float(score) / total
                entry.ranks[name] = rank
    return sorted(fused.values(), key=lambda f: (-f.score, min(f.ranks.values()), f.id))
