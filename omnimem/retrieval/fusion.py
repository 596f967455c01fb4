"""Rank fusion: reciprocal rank fusion (Cormack, Clarke & Buettcher, SIGIR 2009)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from omnimem.errors import ConfigError

__all__ = ["Fused", "reciprocal_rank_fusion"]


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
