"""Hybrid text search: dense (FAISS) and BM25 (SQLite FTS5) candidates, fused.

Default fusion is convex (cosine as is, BM25 divided by the best BM25 score of the query); measured
on LoCoMo dev it beats both retrievers alone, where equal-weight RRF over 50 candidates each does not
(see benchmarks and the closing notes of the foundation issue).

This is the foundation's search; the GRASP pipeline (grounding, multi-hop expansion, pruning) builds
on the same candidate lists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from omnimem.config import SearchConfig
from omnimem.retrieval.fusion import Fused, convex_fusion, reciprocal_rank_fusion
from omnimem.retrieval.neighbours import asks, neighbour_smoothing
from omnimem.retrieval.threads import later
from omnimem.stores.base import Filters, RecordStore
from omnimem.types import Hit, Item

__all__ = ["hybrid_search", "hybrid_fused", "dense_candidates", "bm25_later"]

DenseSearch = Callable[[np.ndarray, int], list[list[tuple[str, float]]]]
Pairs = list[tuple[str, float]]


def bm25_later(store: RecordStore, query: str, n: int, filters: Filters | None) -> Callable[[], Pairs]:
    """Start the query's BM25 search on a worker thread now; the returned function waits for its result.

    BM25 needs no query vector, so it runs while the query is encoded and searched densely (the store
    reads it on a connection of its own, and SQLite, FAISS and torch all release the GIL): on two cores
    a search then costs about the longer of the two, not their sum. Pass the function to
    :func:`hybrid_fused` / :func:`hybrid_search` as ``bm25``."""
    return later(store.bm25, query, n, filters)


def dense_candidates(
    search: DenseSearch, store: RecordStore, query_vector: np.ndarray, n: int, filters: Filters | None
) -> list[tuple[str, float]]:
    """Top-n dense ``(id, score)`` for one query. With filters: an index that takes them selects the
    matching items first (``filters_in_search``); for others, over-fetch until n pass them."""
    if filters is None or filters.is_empty():
        return search(query_vector[None, :], n)[0]
    if getattr(getattr(search, "__self__", None), "filters_in_search", False):
        return search(query_vector[None, :], n, filters=filters)[0]
    fetch = n * 4
    while True:
        raw = search(query_vector[None, :], fetch)[0]
        items = store.get([i for i, _ in raw])
        kept = [(i, s) for (i, s), item in zip(raw, items) if item is not None and filters.matches(item)]
        if len(kept) >= n or len(raw) < fetch:
            return kept[:n]
        fetch *= 4


def hybrid_search(
    query: str,
    *,
    store: RecordStore,
    dense: Mapping[str, tuple[DenseSearch, np.ndarray]],
    k: int,
    config: SearchConfig,
    filters: Filters | None = None,
    bm25: bool | Callable[[], Pairs] = True,
    neighbours: bool = True,
    tau: Mapping[str, float] | None = None,
) -> list[Hit]:
    """Top-k hits for ``query``, fused from dense searches and BM25.

    ``dense`` maps a retriever name ("dense" for the text space, "image" for the image space) to its
    search function and the query's vector in that space. Cosine scores of the text space are used
    as they are; BM25 and image-space scores (CLIP text-image cosines live in a narrow band) are
    divided by the query's best score, so each lies in [0, 1] before the convex fusion. With
    ``neighbours`` (and ``config.neighbour_weight`` > 0) turns then borrow from adjacent turns
    (:func:`~omnimem.retrieval.neighbours.neighbour_smoothing`). ``tau``: retriever name -> the
    lowest raw cosine a dense hit may have (off-topic neighbours are dropped before fusion). ``bm25``:
    whether to search BM25, or the result of one started earlier (:func:`bm25_later`).
    """
    fused, scored = hybrid_fused(
        query, store=store, dense=dense, config=config, filters=filters, bm25=bm25, neighbours=neighbours, tau=tau
    )
    fused = fused[:k]
    items: list[Item | None] = store.get([f.id for f in fused])
    return [
        Hit.from_item(item, f.score, tuple(name for name in (*scored, "context") if name in f.ranks), f.ranks)
        for f, item in zip(fused, items)
        if item is not None
    ]


def hybrid_fused(
    query: str,
    *,
    store: RecordStore,
    dense: Mapping[str, tuple[DenseSearch, np.ndarray]],
    config: SearchConfig,
    filters: Filters | None = None,
    bm25: bool | Callable[[], Pairs] = True,
    neighbours: bool = True,
    tau: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
    spread: Sequence[str] = (),
) -> tuple[list[Fused], dict[str, list[tuple[str, float]]]]:
    """The whole fused candidate list of :func:`hybrid_search` (best first) and each retriever's
    normalised ``(id, score)`` list, for stages that go on from the candidates (GRASP).

    ``weights``: fusion weights of retrievers beyond the config's (e.g. a second dense space);
    ``spread``: retrievers whose scores are min-max rescaled over their candidates (an encoder whose
    cosines crowd into a narrow band, as E5's do, would otherwise give every candidate about the same)."""
    scored: dict[str, list[tuple[str, float]]] = {}
    weights = {
        "dense": config.dense_weight,
        "bm25": config.bm25_weight,
        "image": config.image_weight,
        **(weights or {}),
    }
    tau = dict(tau or {})
    for name, (search, vector) in dense.items():
        if weights.get(name, 1.0) <= 0:
            continue
        pairs = dense_candidates(search, store, vector, config.candidates, filters)
        if name in tau:
            pairs = [(i, s) for i, s in pairs if s >= tau[name]]
        if name in spread:
            scored[name] = _by_range(pairs)
        else:
            scored[name] = [(i, max(0.0, s)) for i, s in pairs] if name == "dense" else _by_best(pairs)
    if bm25 and config.bm25_weight > 0:
        pairs = bm25() if callable(bm25) else store.bm25(query, config.candidates, filters)
        scored["bm25"] = _by_best(pairs)
    if config.fusion == "rrf":
        rankings = {name: [i for i, _ in pairs] for name, pairs in scored.items()}
        fused = reciprocal_rank_fusion(rankings, k=config.rrf_k, weights=weights)
    else:
        fused = convex_fusion(scored, weights=weights) if scored else []
    if neighbours and config.neighbour_weight > 0 and hasattr(store, "neighbours"):
        found: dict[str, Item] = {}  # items read for the smoothing, reused by the filter below

        def asking(ids: Sequence[str]) -> list[str]:  # those whose item asks (the turn after it answers)
            found.update({i.id: i for i in store.get(ids) if i is not None})
            return [i for i in ids if i in found and asks(found[i].text)]

        fused = neighbour_smoothing(
            fused, store.neighbours, beta=config.neighbour_weight, expand=config.neighbour_expand,
            answer_beta=config.answer_weight, question_penalty=config.question_penalty, asking=asking,
        )  # fmt: skip
        if filters is not None and not filters.is_empty():  # neighbours may fall outside the filters
            unread = [f.id for f in fused if f.id not in found]
            found.update({i.id: i for i in store.get(unread) if i is not None} if unread else {})
            fused = [f for f in fused if f.id in found and filters.matches(found[f.id])]
    return fused, scored


def _by_range(pairs: list[tuple[str, float]]) -> list[tuple[str, float]]:
    if not pairs:
        return []
    low, high = min(s for _, s in pairs), max(s for _, s in pairs)
    return [(i, (s - low) / (high - low) if high > low else 1.0) for i, s in pairs]


def _by_best(pairs: list[tuple[str, float]]) -> list[tuple[str, float]]:
    best = max((s for _, s in pairs), default=0.0)
    return [(i, max(0.0, s) / best if best > 0 else 0.0) for i, s in pairs]
