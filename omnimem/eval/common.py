"""Pieces shared by the evaluations: the systems compared and a running mean of recalls."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["SYSTEMS", "Tally", "recalls_at", "percentile"]

# name -> the retrievers Memory.search uses; "hybrid" is omnimem's own search.
SYSTEMS = {"hybrid": ("dense", "bm25"), "bm25": ("bm25",), "dense": ("dense",)}


def recalls_at(system: str, found: Sequence[str], gold: Sequence[str], ks: Sequence[int]) -> dict[str, float]:
    """``{"[system_]recall@k": share of gold among found[:k]}``; the hybrid system has no prefix."""
    prefix = "" if system == "hybrid" else f"{system}_"
    return {f"{prefix}recall@{k}": len(set(found[:k]) & set(gold)) / len(gold) for k in ks}


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Tally:
    """Sums of per-question figures; ``means()`` averages them over the questions added."""

    sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    count: int = 0

    def add(self, values: dict[str, float]) -> None:
        self.count += 1
        for key, value in values.items():
            self.sums[key] += value

    def means(self) -> dict[str, float]:
        return {k: round(v / max(1, self.count), 4) for k, v in self.sums.items()}
