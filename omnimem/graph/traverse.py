"""Multi-hop traversal over the entity-item graph: k-hop neighbourhoods and personalized PageRank.

Pure functions over a networkx graph as built by :meth:`omnimem.graph.store.GraphStore.to_networkx`:
entity nodes ``"e:<id>"`` and item nodes ``"i:<id>"`` (attribute ``kind``), triplet edges between
entities (attribute ``triplets``: their ids) and mention edges between entities and items.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from omnimem.errors import ConfigError

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["PPRResult", "k_hop", "personalized_pagerank"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PPRResult:
    """Ranked graph elements, best first; ids without the ``e:`` / ``i:`` prefixes."""

    entities: list[tuple[str, float]] = field(default_factory=list)  # (entity id, PageRank mass)
    triplets: list[tuple[str, float]] = field(default_factory=list)  # (triplet id, mean mass of head and tail)
    items: list[tuple[str, float]] = field(default_factory=list)  # (item id, PageRank mass)


def _node_id(node: object) -> str:
    text = str(node)
    return text[2:] if text[:2] in ("e:", "i:") else text


def k_hop(graph: nx.Graph, seeds: Iterable[str], k: int, *, through_items: bool = True) -> nx.Graph:
    """The subgraph induced by the nodes within ``k`` hops of ``seeds`` (breadth-first).

    ``through_items=False``: item nodes are reached but not walked through, so hops follow triplet
    edges only (an entity's neighbours are the entities it shares a fact with, plus its items).
    """
    if k < 0:
        raise ConfigError(f"k must be >= 0, got {k}")
    frontier = [s for s in dict.fromkeys(seeds) if s in graph]
    seen = set(frontier)
    seed_set = set(frontier)
    for _ in range(k):
        nxt = []
        for node in frontier:
            if not through_items and graph.nodes[node].get("kind") == "item" and node not in seed_set:
                continue
            for other in graph.neighbors(node):
                if other not in seen:
                    seen.add(other)
                    nxt.append(other)
        frontier = nxt
    return graph.subgraph(seen)


def personalized_pagerank(
    graph: nx.Graph,
    seeds: Mapping[str, float] | Iterable[str],
    *,
    damping: float = 0.5,
    max_iter: int = 100,
    tol: float = 1e-6,
    weight: str | None = "weight",
    top_k: int | None = None,
) -> PPRResult:
    """Personalized PageRank from seed nodes over the entity-item graph (HippoRAG 2).

    HippoRAG 2 (Gutiérrez et al., 2025, section 3 "Online retrieval"): the query's seed phrases (and
    passages, with a small weight) get the reset probability, a random walk with restart runs over
    the graph of phrase and passage nodes, and passages are ranked by their stationary mass.

    ``graph``: n nodes (``"e:<id>"`` entities, ``"i:<id>"`` items). ``seeds``: node ids, or node id
    -> non-negative reset weight (normalised to sum 1; unknown nodes are dropped). ``damping``: the
    probability of following an edge rather than restarting (HippoRAG 2 uses 0.5). Returns entities,
    triplets (scored by the mean mass of their head and tail) and items, best first, ``top_k`` each.
    """
    if not 0.0 < damping < 1.0:
        raise ConfigError(f"damping must be in (0, 1), got {damping}; HippoRAG 2 uses 0.5")
    if max_iter <= 0 or tol <= 0:
        raise ConfigError(f"max_iter and tol must be positive, got {max_iter}, {tol}")
    if top_k is not None and top_k <= 0:
        raise ConfigError(f"top_k must be positive or None, got {top_k}")
    weights = dict(seeds) if isinstance(seeds, Mapping) else dict.fromkeys(seeds, 1.0)
    if any(w < 0 for w in weights.values()):
        raise ConfigError("seed weights must be >= 0")
    reset = {node: float(w) for node, w in weights.items() if node in graph and w > 0}
    if len(reset) < len(weights):
        log.debug("personalized_pagerank: %d of %d seeds not in the graph", len(weights) - len(reset), len(weights))
    if not reset:
        return PPRResult()
    import networkx as nx

    try:
        # start the walk at the seeds (not uniform), so nodes the walk never reaches keep exactly 0
        scores = nx.pagerank(
            graph, alpha=damping, personalization=reset, nstart=reset, max_iter=max_iter, tol=tol, weight=weight
        )
    except nx.PowerIterationFailedConvergence as e:
        raise ConfigError(f"PageRank did not converge in {max_iter} iterations; raise max_iter or tol") from e

    entities, items = [], []
    for node, score in scores.items():
        if score <= 0:
            continue
        kind = graph.nodes[node].get("kind")
        (items if kind == "item" else entities).append((_node_id(node), float(score)))
    triplets: dict[str, float] = {}
    for head, tail, data in graph.edges(data=True):
        if data.get("kind") == "triplet":
            mass = (scores.get(head, 0.0) + scores.get(tail, 0.0)) / 2
            for tid in data.get("triplets", ()):
                triplets[tid] = max(triplets.get(tid, 0.0), mass)

    def ranked(pairs: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
        out = sorted(pairs, key=lambda p: (-p[1], p[0]))
        return out[:top_k] if top_k else out

    return PPRResult(ranked(entities), ranked(triplets.items()), ranked(items))
