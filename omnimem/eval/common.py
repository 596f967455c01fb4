"""Pieces shared by the evaluations: the systems compared and a running mean of recalls."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from omnimem.errors import ConfigError

__all__ = ["SYSTEMS", "BASELINES", "Tally", "recalls_at", "percentile", "scratch_memory"]

# name -> (the retrievers Memory.search uses, session-neighbour smoothing); "hybrid" is omnimem's own
# search. Smoothing is a context trick any retriever could use: the "+neighbours" baselines show how much
# of the hybrid's gain is the fusion's own.
SYSTEMS: dict[str, tuple[tuple[str, ...], bool]] = {
    "hybrid": (("dense", "bm25"), True),
    "bm25": (("bm25",), False),
    "dense": (("dense",), False),
    "bm25+neighbours": (("bm25",), True),
    "dense+neighbours": (("dense",), True),
}
BASELINES = (("omnimem hybrid", ""), ("BM25 only", "bm25_"), ("dense only", "dense_"), ("BM25 + neighbours", "bm25+neighbours_"), ("dense + neighbours", "dense+neighbours_"))  # fmt: skip


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


@contextmanager
def scratch_memory(folder: str | Path, name: str, backend: str | None) -> Iterator[str | Path]:
    """Where an evaluation builds a throwaway memory: ``folder/name``, or with ``backend`` (a
    ``postgresql://`` URL) a fresh schema of that database, dropped afterwards."""
    if backend is None:
        yield Path(folder) / name
        return
    import uuid

    from omnimem.stores.pg import PgDatabase, is_postgres_url

    if not is_postgres_url(backend):
        raise ConfigError(f"--backend must be a postgresql:// URL, got {backend!r}")
    url = f"{backend}{'&' if '?' in backend else '?'}schema=eval_{name}_{uuid.uuid4().hex[:8]}"
    try:
        yield url
    finally:
        db = PgDatabase(url)
        try:
            db.drop()
        finally:
            db.close()
