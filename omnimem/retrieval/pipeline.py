"""The GRASP retrieval pipeline: candidates per modality -> multi-hop expansion -> GRASP -> packing.

M3KG-RAG (arXiv 2512.20136), section "Modality-wise retrieval + GRASP", with HippoRAG 2's
personalized PageRank for the multi-hop step. Stages, each switchable in :class:`GraspConfig`:

1. candidates: the query's text (and image, when given) embedded by that modality's encoder and
   searched in the same space, dense hits below the space's tau dropped, BM25 beside them, fused as
   ``Memory.search`` fuses them (:func:`~omnimem.retrieval.hybrid.hybrid_fused`);
2. expansion: a second dense round from the top items (``hop2``), the question decomposed by its top
   item (``bridge``: the words it leaves unanswered and the entities it names) and PageRank over the bounded
   entity-item subgraph around linked query entities and the top items' entities (``ppr``), both
   nudging the first ranking (see :mod:`omnimem.retrieval.expand` for why conservatively);
3. GRASP: grounding (query entity links; presence in the query image, eta), the reranker's keep mask,
   redundancy collapse;
4. packing by utility per token into the budget (:mod:`omnimem.retrieval.pack`).

Per query the text encoder runs once (the query, its audio's transcript and its time anchors in one
batch), twice when there is a bridge query, a question naming one speaker (re-said in their own voice:
:func:`~omnimem.retrieval.focused.voice_query`) or a query name that is no entity's key but is spelled
like a nearby entity's name (:func:`~omnimem.retrieval.grounding.worth_embedding`; all in the second
batch), and the graph is read only around the entities
the query touches (roots of those ids, members of those roots): the work does not grow with the graph.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omnimem.errors import ConfigError, OmnimemError
from omnimem.retrieval import expand as ex
from omnimem.retrieval.context import Context, ContextEntry, GraspConfig, RetrievalSource, estimate_tokens
from omnimem.retrieval.focused import apply_focus, second_space, voice_query
from omnimem.retrieval.fusion import Fused
from omnimem.retrieval.grounding import (
    EntityLink,
    NameIndex,
    audio_text_presence,
    embedding_links,
    key_links,
    presence_scores,
    query_mentions,
    transcript_presence,
    triplet_presence,
    worth_embedding,
)
from omnimem.retrieval.hybrid import bm25_later, hybrid_fused
from omnimem.retrieval.pack import collapse_duplicates, pack_budget
from omnimem.retrieval.rerank import Candidate, OfflineReranker, Reranker
from omnimem.retrieval.temporal import anchors as time_anchors
from omnimem.retrieval.temporal import parse_time
from omnimem.retrieval.threads import later, query_threads, wider
from omnimem.stores.base import Filters
from omnimem.types import Hit, Item
from omnimem.vlm.prompts import Triplet, render_triplet

__all__ = ["GraspRanking", "grasp_rank", "grasp_search", "retrieve_context", "pack_context", "render_fact"]

log = logging.getLogger(__name__)

TEXT_SPACE, IMAGE_SPACE = "text", "image"


@dataclass
class GraspRanking:
    """Items and facts ranked by GRASP, before packing."""

    items: list[Fused]  # kept items, best first; ``score`` normalised so the best is 1
    facts: list[tuple[Any, float]] = field(default_factory=list)  # (TripletRow, score), best first
    links: list[EntityLink] = field(default_factory=list)  # query entities linked to the graph
    timings_ms: dict[str, float] = field(default_factory=dict)  # per stage
    personas: list[dict[str, Any]] = field(default_factory=list)  # personas of the named speakers (focused.py)


def _images(image: Any) -> list[Any]:
    if image is None:
        return []
    return list(image) if isinstance(image, (list, tuple)) else [image]


def grasp_rank(
    source: RetrievalSource, query: str, *, config: GraspConfig | None = None, image: Any = None,
    reranker: Reranker | None = None, filters: Filters | None = None, audio_text: str | None = None,
    audio: Any = None, audio_encoder: Any = None,
) -> GraspRanking:  # fmt: skip
    """Rank items and facts for ``query`` through every stage (BLAS on one thread meanwhile: threads.py).

    ``image``: the query's frame(s). ``audio_text``: the transcript of its audio; ``audio`` +
    ``audio_encoder``: the audio itself and an audio-text model (CLAP) that scores facts in it.
    """
    with query_threads():
        return _grasp_rank(source, query, config, image, reranker, filters, audio_text, (audio, audio_encoder))


def _grasp_rank(
    source: RetrievalSource, query: str, config: GraspConfig | None, image: Any, reranker: Reranker | None,
    filters: Filters | None, audio_text: str | None, heard: tuple[Any, Any],
) -> GraspRanking:  # fmt: skip
    if not isinstance(query, str) or not query.strip():
        raise ConfigError("query must be a non-empty string")
    cfg = config or GraspConfig()
    search_cfg = _with_candidates(source.config.search, cfg.candidates)
    # BM25 needs no vector: it runs on a worker thread while the query is linked, encoded and searched
    bm25 = bm25_later(source.store, query, search_cfg.candidates, filters) if search_cfg.bm25_weight > 0 else False
    frames = _images(image)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:  # a stage's time since the last lap, added to its earlier laps
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(timings.get(name, 0.0) + 1000 * (now - clock), 2)
        clock = now

    # the query's entity mentions: spaCy parses it on a worker thread, after BM25, while it is encoded and searched
    linking = (
        cfg.grounding
        or (cfg.ppr and cfg.ppr_seeds != "items")
        or cfg.speaker
        or cfg.voice
        or cfg.entities
        or cfg.units
        or cfg.personas
    )
    mentions_later = later(_mentions, source, query, after=bm25 or None) if linking else None
    exprs = parse_time(query) if cfg.temporal else []
    anchors = time_anchors(exprs)  # "after the road trip": the phrase is searched, encoded with the query
    lap("linking")

    # 1. candidates per modality (the query's audio is heard as its transcript, in the text space)
    texts = [query, audio_text] if audio_text else [query]
    vectors = np.asarray(source.encoder.encode(texts + anchors, modality="text"), dtype=np.float32)
    qvec = vectors[0]
    anchor_vectors = dict(zip(anchors, vectors[len(texts) :]))
    dense: dict[str, tuple[Any, np.ndarray]] = {"dense": (source.indexes[TEXT_SPACE].search, qvec)}
    if audio_text:
        dense["query_audio"] = (source.indexes[TEXT_SPACE].search, vectors[1])
    tau: dict[str, float] = {}
    if (t := cfg.tau_for(TEXT_SPACE)) is not None:
        tau.update({name: t for name in dense})
    if source.image_encoder is not None and IMAGE_SPACE in source.indexes:
        text_in_image = source.image_encoder.encode([query], modality="text")[0]
        dense["image"] = (source.indexes[IMAGE_SPACE].search, text_in_image)
        if frames:
            vectors = np.asarray(source.image_encoder.encode(frames, modality="image"), dtype=np.float32)
            mean = vectors.mean(axis=0)
            dense["query_image"] = (source.indexes[IMAGE_SPACE].search, mean / max(float(np.linalg.norm(mean)), 1e-9))
            if (t := cfg.tau_for(IMAGE_SPACE)) is not None:
                tau["query_image"] = t
    if cfg.dense2 and (second := second_space(source, query, cfg.dense2_space)) is not None:
        dense["dense2"] = second  # a second encoder's space, fused with the first
    fused, _ = hybrid_fused(
        query, store=source.store, dense=dense, config=search_cfg, filters=filters, bm25=bm25, neighbours=cfg.neighbours, tau=tau,
        weights={"dense2": cfg.dense2_weight}, spread=("dense2",),
    )  # fmt: skip
    lap("candidates")

    # grounding, part 1: the query's entities in the graph, by key and by a nearby entity's alias
    mentions = mentions_later() if mentions_later is not None else []
    links, unmatched, nearby = _key_links(source, mentions, [f.id for f in fused[: cfg.pool]], cfg)
    names = NameIndex.cached(source.encoder) if cfg.link_threshold < 1.0 else None
    lap("linking")

    # 2. multi-hop expansion: the bridge query (and, with hop2_vectors="encode", the second round's joint
    # queries) are encoded in one model call with the query's names that only an embedding may link (the
    # query's BM25 and parse are done: every core)
    hop2 = bool(cfg.hop2 and cfg.hop2_seeds and fused)
    seeds = _texts(source, [f.id for f in fused[: cfg.hop2_seeds]]) if hop2 else []
    top = (seeds or _texts(source, [fused[0].id]))[:1] if cfg.bridge and fused else []
    bridge = (
        ex.bridge_of(source.graph, query, *top[0], max_degree=cfg.max_seed_degree) if top else None
    )  # (top item id, bridge query)
    if cfg.hop2_seed_words:
        seeds = [(i, " ".join(t.split()[: cfg.hop2_seed_words])) for i, t in seeds]
    named = [r for r in nearby if r.type != "CONCEPT"] if names is not None else []
    unmatched = worth_embedding(unmatched, named)  # names spelled like a nearby one (none without names)
    todo = list(dict.fromkeys(c for _, c in unmatched))
    joints = ex.joint_texts(query, seeds) if cfg.hop2_vectors == "encode" else []
    voice = voice_query(source, query, mentions, fused[: cfg.pool]) if cfg.voice else None  # focused.py
    texts = joints + ([bridge[1]] if bridge else []) + ([voice] if voice else []) + todo
    with wider():
        encoded = np.asarray(source.encoder.encode(texts, modality="text"), dtype=np.float32) if texts else None
    joint = encoded[: len(joints)] if encoded is not None and joints else None
    name_vectors = dict(zip(todo, encoded[len(texts) - len(todo) :])) if todo and encoded is not None else {}
    voice_vector = encoded[len(texts) - len(todo) - 1] if voice and encoded is not None else None
    links = embedding_links(links, unmatched, source.graph, nearby=nearby, names=names,
                            threshold=cfg.link_threshold, mention_vectors=name_vectors, worthy=True)  # fmt: skip
    if hop2:
        if cfg.hop2_vectors == "sum":
            ids, stored = source.store.vectors(TEXT_SPACE, [i for i, _ in seeds])
            by_id = dict(zip(ids, stored))
            seeds = [(i, t) for i, t in seeds if i in by_id]
            joint = ex.joint_vectors(qvec, np.asarray([by_id[i] for i, _ in seeds])) if seeds else None
        hops = ex.second_hop(
            source.indexes[TEXT_SPACE].search, source.encoder, query, seeds, n=10, tau=cfg.tau_for(TEXT_SPACE),
            vectors=joint,
        )  # fmt: skip
        if filters is not None and not filters.is_empty():
            hops = [
                [(i, s) for i, s in hop if i in allowed]
                for hop in hops
                for allowed in [_allowed(source, dict(hop), filters)]
            ]
        fused = ex.insert_after_head(fused, hops, head=cfg.hop2_head, per_seed=1, name="hop2")
    if bridge and encoded is not None:  # the bridge query's best new item follows the second round's
        found = ex.second_hop(
            source.indexes[TEXT_SPACE].search, source.encoder, query, [(bridge[0], "")], n=10,
            tau=cfg.tau_for(TEXT_SPACE), vectors=encoded[len(joints) : len(joints) + 1],
        )[0]  # fmt: skip
        allowed = _allowed(source, dict(found), filters)
        found = [(i, s) for i, s in found if i in allowed]
        head = cfg.hop2_head + (cfg.hop2_seeds if hop2 else 0)
        fused = ex.insert_after_head(fused, [found], head=head, per_seed=1, name="bridge")
    lap("hop2")
    personas: list[dict[str, Any]] = []
    if fused and (
        cfg.temporal or cfg.speaker or cfg.questions or cfg.voice or cfg.entities or cfg.units or cfg.personas
    ):  # focused searches (focused.py)
        fused, personas = apply_focus(
            source, query, qvec, fused, cfg, mentions=mentions, entity_ids=[lk.entity_id for lk in links],
            exprs=exprs, anchor_vectors=anchor_vectors, search_cfg=search_cfg, filters=filters,
            voice_vector=voice_vector,
        )  # fmt: skip
    lap("focus")
    fact_mass: dict[str, float] = {}
    if cfg.ppr and fused:
        linked = {lk.entity_id: lk.score for lk in links}
        fused, fact_mass = ex.ppr_nudge(source.graph, fused, linked, cfg, lambda s: _allowed(source, s, filters))
    lap("ppr")

    pool = fused[: cfg.pool]
    best = max((f.score for f in pool), default=0.0) or 1.0
    pool = [Fused(f.id, f.score / best, f.ranks) for f in pool]
    facts = _facts(source, pool, links, fact_mass, cfg) if cfg.facts else []
    # grounding, part 2: facts present in the query image / heard in the query audio
    if cfg.grounding and frames and facts and source.image_encoder is not None:
        facts = _ground_in_image(source, facts, frames, cfg.eta)
    if cfg.grounding and (audio_text or heard[1] is not None) and facts:
        facts = _ground_in_audio(source, facts, audio_text or "", heard, cfg.eta)
    lap("facts")

    # 3. answer-supporting relevance
    if cfg.rerank and pool:
        pool, facts = _rerank(
            source,
            query,
            pool,
            facts,
            qvec,
            links,
            reranker or OfflineReranker(source.encoder),
            cfg.rerank_items,
            cfg.fact_vectors,
        )
    lap("rerank")
    return GraspRanking(pool, facts[: cfg.max_facts], links, timings, personas)


def _with_candidates(search_cfg: Any, n: int) -> Any:
    import dataclasses

    return search_cfg if search_cfg.candidates == n else dataclasses.replace(search_cfg, candidates=n)


def _mentions(source: RetrievalSource, query: str) -> list[tuple[str, str, str]]:
    """The query's entity mentions ``(surface, concept, type)``; none without a spaCy model."""
    try:
        return query_mentions(query, source.config.graph.spacy_model)
    except OmnimemError as e:  # no spaCy model: the walk seeds from the hits alone
        log.debug("query entity linking skipped: %s", e)
        return []


def _key_links(
    source: RetrievalSource, mentions: list[tuple[str, str, str]], pool: list[str], cfg: GraspConfig
) -> tuple[list[EntityLink], list[tuple[str, str]], list[Any]]:
    """Query entities -> graph entities by key and alias (``key_links``), aliases looked up among the
    pool's entities (the roots of the top items' entities: their name embeddings are stored); also the
    unlinked names and those nearby entities, for the embedding links."""
    if not mentions:
        return [], [], []
    ids = list({m.entity_id for m in source.graph.mentions(item_ids=pool[: cfg.seed_items])}) if pool else []
    nearby_ids = list(dict.fromkeys(source.graph.roots_of(ids).values())) if ids else []
    nearby = source.graph.entities(nearby_ids) if nearby_ids else []
    links, unmatched = key_links(mentions, source.graph, nearby)
    return links, unmatched, nearby


def _texts(source: RetrievalSource, ids: Sequence[str]) -> list[tuple[str, str]]:
    return [(i.id, _heading_text(i)) for i in source.store.get(list(ids)) if i is not None]


def _heading_text(item: Item) -> str:
    return f"{item.heading}: {item.text}" if item.heading else item.text


def _allowed(source: RetrievalSource, scores: dict[str, float], filters: Filters | None) -> dict[str, float]:
    if filters is None or filters.is_empty() or not scores:
        return scores
    items = source.store.get(list(scores))
    return {i.id: scores[i.id] for i in items if i is not None and filters.matches(i)}


def _facts(
    source: RetrievalSource, pool: list[Fused], links: list[EntityLink], fact_mass: dict[str, float], cfg: GraspConfig
) -> list[tuple[Any, float]]:
    """Triplets lifted from the pool's top items: score = best source item's score (+ link and walk bonus)."""
    top = {f.id: f.score for f in pool[: max(cfg.seed_items, 5)]}
    linked = {lk.entity_id for lk in links}
    triplets = source.graph.triplets(item_ids=list(top))
    roots = source.graph.roots_of([e for t in triplets for e in (t.head, t.tail)])
    out = []
    for t in triplets:
        if t.retired_at:
            continue
        base = max((top.get(s, 0.0) for s in t.sources), default=0.0)
        ends = {roots.get(t.head, t.head), roots.get(t.tail, t.tail)}
        bonus = 0.1 * len(ends & linked) + 0.1 * fact_mass.get(t.id, 0.0)
        out.append((t, base * t.confidence + bonus))
    out.sort(key=lambda p: (-p[1], p[0].id))
    return out[: cfg.max_facts * 2]


def _ground_in_image(source: RetrievalSource, facts: list[tuple[Any, float]], frames: list[Any], eta: float) -> list:
    """Drop facts whose head and tail are not present in the query image (GRASP grounding)."""
    ids = list({e for t, _ in facts for e in (t.head, t.tail)})
    names = {r.id: r.name for r in source.graph.entities(ids, include_merged=True)}
    scores = presence_scores(source.image_encoder, frames, [names.get(e, e) for e in ids])
    presence = dict(zip(ids, scores.tolist()))
    return [(t, s) for t, s in facts if triplet_presence(presence, t.head, t.tail) >= eta]


def _ground_in_audio(
    source: RetrievalSource, facts: list[tuple[Any, float]], transcript: str, heard: tuple[Any, Any], eta: float
) -> list:
    """Drop facts not heard in the query audio (GRASP grounding): neither their head and tail in its
    transcript nor, with an audio-text model, their sentence "head relation tail" in the audio itself."""
    ids = list({e for t, _ in facts for e in (t.head, t.tail)})
    names = {r.id: r.name for r in source.graph.entities(ids, include_merged=True)}
    presence = dict(zip(ids, transcript_presence(transcript, [names.get(e, e) for e in ids]).tolist()))
    scores = [triplet_presence(presence, t.head, t.tail) for t, _ in facts]
    audio, encoder = heard
    if encoder is not None and audio is not None:
        sentences = [f"{names.get(t.head, t.head)} {t.relation} {names.get(t.tail, t.tail)}" for t, _ in facts]
        scores = np.maximum(scores, audio_text_presence(encoder, audio, sentences)).tolist()
    return [f for f, s in zip(facts, scores) if s >= eta]


def render_fact(source: RetrievalSource, triplet: Any, names: dict[str, Any]) -> str:
    head, tail = names.get(triplet.head), names.get(triplet.tail)
    return render_triplet(
        Triplet(
            head.name if head else triplet.head,
            triplet.relation,
            tail.name if tail else triplet.tail,
            (head.description or "") if head else "",
            (tail.description or "") if tail else "",
        )
    )


def _entity_rows(source: RetrievalSource, facts: list[tuple[Any, float]]) -> dict[str, Any]:
    ids = list({e for t, _ in facts for e in (t.head, t.tail)})
    return {r.id: r for r in source.graph.entities(ids, include_merged=True)} if ids else {}


def _mean_unit(vectors: list[np.ndarray]) -> np.ndarray | None:
    if not vectors:
        return None
    mean = np.mean(np.asarray(vectors, dtype=np.float32), axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-9)


def _rerank(
    source: RetrievalSource, query: str, pool: list[Fused], facts: list[tuple[Any, float]], qvec: np.ndarray,
    links: list[EntityLink], reranker: Reranker, items_too: bool, fact_vectors: str = "source",
) -> tuple[list[Fused], list[tuple[Any, float]]]:  # fmt: skip
    """The reranker's keep mask over facts (and items when ``items_too``); kept items stay in fused
    order, facts are ordered by the reranker's score (M3KG-RAG filters the facts).

    ``fact_vectors="source"``: a fact's vector is the mean of its source items' stored vectors (what
    the fact was read from), so the offline reranker needs no model call; its lexical feature still
    tells apart the facts of one item. ``"encode"``: the reranker embeds each rendered fact."""
    items = {i.id: i for i in source.store.get([f.id for f in pool]) if i is not None} if items_too else {}
    sourced = {s for t, _ in facts for s in t.sources} if fact_vectors == "source" else set()
    ids, vectors = source.store.vectors(TEXT_SPACE, sorted(set(items) | sourced)) if items or sourced else ([], [])
    vec_of = dict(zip(ids, vectors))
    names = _entity_rows(source, facts)
    linked = {lk.entity_id for lk in links}
    candidates = [
        Candidate(f.id, _heading_text(items[f.id]), "item", f.score, float("ppr" in f.ranks), vec_of.get(f.id))
        for f in pool
        if f.id in items
    ]
    candidates += [
        Candidate(
            t.id, render_fact(source, t, names), "fact", min(1.0, s), float(bool({t.head, t.tail} & linked)),
            _mean_unit([vec_of[i] for i in t.sources if i in vec_of]),
        )
        for t, s in facts
    ]  # fmt: skip
    if not candidates:
        return pool, facts
    if isinstance(reranker, OfflineReranker) and reranker.encoder is source.encoder:
        verdict = reranker.rerank(query, candidates, query_vector=qvec)  # saves one encode
    else:
        verdict = reranker.rerank(query, candidates)
    keep = {c.id for c, k in zip(candidates, verdict.keep) if k}
    fact_score = {c.id: float(s) for c, s in zip(candidates, verdict.scores) if c.kind == "fact"}
    kept_facts = sorted(((t, fact_score[t.id]) for t, _ in facts if t.id in keep), key=lambda p: (-p[1], p[0].id))
    return ([f for f in pool if f.id in keep] if items_too else pool), kept_facts


def grasp_search(
    source: RetrievalSource, query: str, k: int = 10, *, config: GraspConfig | None = None, image: Any = None,
    filters: Filters | None = None, reranker: Reranker | None = None, audio_text: str | None = None,
    audio: Any = None, audio_encoder: Any = None,
) -> list[Hit]:  # fmt: skip
    """GRASP-ranked hits (what ``Memory.search`` returns, ranked by :func:`grasp_rank`)."""
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ConfigError(f"k must be a positive int, got {k!r}")
    cfg = config or GraspConfig()
    ranking = grasp_rank(
        source, query, config=cfg, image=image, reranker=reranker, filters=filters, audio_text=audio_text,
        audio=audio, audio_encoder=audio_encoder,
    )  # fmt: skip
    top = ranking.items[:k]
    items = source.store.get([f.id for f in top])
    return [
        Hit.from_item(item, f.score, tuple(r for r in f.ranks), f.ranks)
        for f, item in zip(top, items)
        if item is not None
    ]


def retrieve_context(
    source: RetrievalSource, query: str, *, budget_tokens: int | None = None, config: GraspConfig | None = None,
    image: Any = None, count_tokens: Callable[[str], int] | None = None, reranker: Reranker | None = None,
    filters: Filters | None = None, audio_text: str | None = None, audio: Any = None, audio_encoder: Any = None,
) -> Context:  # fmt: skip
    """The evidence for ``query`` packed into ``budget_tokens`` (default ``config.budget_tokens``).

    ``count_tokens``: the model's token counter (e.g. a vlm generator's ``count_tokens``); default a
    cheap estimate. ``image``: the query's image (or a list of frames), for the image space and
    grounding. ``audio_text``: the transcript of the query's audio, searched in the text space and
    used to ground facts; ``audio`` + ``audio_encoder``: the audio and an audio-text model (CLAP) that
    also grounds them. ``reranker``: a :class:`~omnimem.retrieval.rerank.Reranker` (default: offline).
    """
    cfg = config or GraspConfig()
    with query_threads():  # one limit over ranking and packing
        ranking = grasp_rank(
            source, query, config=cfg, image=image, reranker=reranker, filters=filters, audio_text=audio_text,
            audio=audio, audio_encoder=audio_encoder,
        )  # fmt: skip
        return pack_context(source, query, ranking, budget_tokens=budget_tokens, config=cfg, count_tokens=count_tokens)


def pack_context(
    source: RetrievalSource, query: str, ranking: GraspRanking, *, budget_tokens: int | None = None,
    config: GraspConfig | None = None, count_tokens: Callable[[str], int] | None = None,
) -> Context:  # fmt: skip
    """A ranking's evidence (items, facts, summaries, frames), de-duplicated and packed into the budget."""
    cfg = config or GraspConfig()
    budget = cfg.budget_tokens if budget_tokens is None else budget_tokens
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise ConfigError(f"budget_tokens must be a positive int, got {budget!r}")
    counter = count_tokens or estimate_tokens
    t0 = time.perf_counter()
    entries = _entries(source, ranking, cfg)
    if cfg.redundancy and entries:
        entries = _collapse(source, entries, cfg)
    packed, dropped = pack_budget(entries, budget, counter)
    order = {"summary": 0, "fact": 1, "item": 2, "frame": 3}
    packed.sort(key=lambda e: (order[e.kind], -e.score))
    timings = {**ranking.timings_ms, "pack": round(1000 * (time.perf_counter() - t0), 2)}
    return Context(query, tuple(packed), budget, dropped, timings)


def _entries(source: RetrievalSource, ranking: GraspRanking, cfg: GraspConfig) -> list[ContextEntry]:
    items = {i.id: i for i in source.store.get([f.id for f in ranking.items]) if i is not None}
    entries: list[ContextEntry] = []
    for rank, f in enumerate(ranking.items):
        item = items.get(f.id)
        if item is None:
            continue
        utility = f.score / (1.0 + 0.1 * rank)  # position matters beyond the score gap
        span = (item.t_start, item.t_end) if item.t_start is not None and item.t_end is not None else None
        kind = "frame" if cfg.frames and item.blob and item.modality in ("image", "video") else "item"
        entries.append(
            ContextEntry(
                kind,
                item.id,
                _heading_text(item),
                utility,
                0,
                item.source,
                span,
                item.modality,
                tuple(f.ranks),
                (item.id,),
                item.blob if kind == "frame" else None,
                {
                    k: v
                    for k, v in (
                        ("speaker", item.speaker),
                        ("event_time", item.event_time),
                        ("session", item.session),
                        ("episode", item.episode),
                    )
                    if v
                },
            )
        )
    if ranking.facts:
        names = _entity_rows(source, ranking.facts)
        best = max(s for _, s in ranking.facts) or 1.0
        for t, s in ranking.facts:
            entries.append(
                ContextEntry(
                    "fact",
                    t.id,
                    render_fact(source, t, names),
                    0.5 * max(0.0, s) / best,
                    retrievers=("graph",),
                    item_ids=tuple(t.sources),
                )
            )
    if cfg.summaries:
        entries += _summaries(source, ranking.items[:5], items)
    entries += [
        ContextEntry("summary", f"persona:{p['speaker']}", p["summary"], 0.3, retrievers=("personas",),
                     item_ids=tuple(p.get("sources", ())))
        for p in ranking.personas if p.get("summary")
    ]  # fmt: skip
    return entries


def _summaries(source: RetrievalSource, top: list[Fused], items: dict[str, Item]) -> list[ContextEntry]:
    """Summaries of the sessions holding two or more of the top items (context for scattered hits)."""
    from omnimem.stores.nodes import node_id

    groups: dict[str, list[float]] = {}
    for f in top:
        item = items.get(f.id)
        if item is not None and item.session is not None:
            groups.setdefault(node_id("session", item.episode or "", item.session), []).append(f.score)
    wanted = [n for n, scores in groups.items() if len(scores) >= 2]
    if not wanted or not hasattr(source.store, "nodes"):
        return []
    return [
        ContextEntry(
            "summary", n.id, n.summary, 0.3 * max(groups[n.id]), source=n.episode or None, retrievers=("episodic",)
        )
        for n in source.store.nodes(ids=wanted)
        if n.summary
    ]


def _collapse(source: RetrievalSource, entries: list[ContextEntry], cfg: GraspConfig) -> list[ContextEntry]:
    ids, vectors = source.store.vectors(TEXT_SPACE, [e.id for e in entries if e.kind in ("item", "frame")])
    vec_of = dict(zip(ids, vectors))
    dim = vectors.shape[1] if len(ids) else 0
    if not dim:
        return collapse_duplicates(entries, None, threshold=cfg.dup_threshold)
    matrix = np.stack([vec_of.get(e.id, np.zeros(dim, dtype=np.float32)) for e in entries])
    return collapse_duplicates(entries, matrix, threshold=cfg.dup_threshold)
