"""GRASP grounding: link the query's entities to the graph, and score entities / facts in query media.

M3KG-RAG (arXiv 2512.20136), section "GRASP", step (a) *grounding*: entities mentioned in the query
are linked to graph entities (exact canonical key, then an alias of a mention, then the cosine of
name embeddings); for a query with an image, each candidate entity gets a presence score (the
image-text cosine of the CLIP-like encoder, max over the given frames), a triplet scores the mean of
its head's and tail's presence, and facts below eta are dropped. For a query with audio, the
presence of an entity is read from the audio's transcript (:func:`transcript_presence`: the name, or
a close spelling of it, is heard) and, when an audio-text model (CLAP) is configured, a fact also
scores the similarity of the audio to its sentence "head relation tail" (:func:`audio_text_presence`);
a fact is kept when either reaches eta.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from omnimem.errors import ConfigError
from omnimem.graph.normalize import concept_key
from omnimem.retrieval.pack import jaccard_at_least

__all__ = [
    "EntityLink", "NameIndex", "link_query_entities", "key_links", "embedding_links", "worth_embedding", "presence_scores",
    "transcript_presence", "triplet_presence", "audio_text_presence",
]  # fmt: skip

log = logging.getLogger(__name__)

_EXTRACTORS: dict[str, Any] = {}
_NAME_INDEXES: dict[tuple[int, str], NameIndex] = {}  # per encoder
_LOCK = threading.Lock()
_ALIKE = 0.25  # character-trigram Jaccard from which an unmatched name is worth embedding (worth_embedding)


@dataclass(frozen=True)
class EntityLink:
    """A query mention linked to a graph entity."""

    entity_id: str  # the root entity id
    name: str  # its canonical name
    surface: str  # the query text it was linked from
    how: str  # "exact" (canonical key), "alias" (a surface of its mentions) or "embedding"
    score: float  # 1.0 for exact / alias links, the name cosine for embedding links


class NameIndex:
    """Name embeddings of graph entities, cached by id: read from the graph store, where the builder
    stores them when it writes an entity, and computed with the text encoder only for names stored
    without one (memories built before, or by the agentic builder).

    Only the entities near the query are compared (those mentioned by its candidate items), so a
    query reads (or, for older memories, encodes) at most a few hundred names and latency does not
    grow with the graph. Concept entities (plain noun phrases) are left out: embedding links are for
    names written differently ("NYC" / "New York City"), and generic nouns would seed noise.
    """

    def __init__(self, encoder: Any, *, max_size: int = 200_000) -> None:
        self.encoder = encoder
        self.max_size = max_size
        self.vectors: dict[str, np.ndarray] = {}

    def embed(self, entities: Sequence[tuple[str, str]], graph: Any = None) -> np.ndarray:
        """Unit vectors (n, d) of ``(entity id, name)`` pairs: cached, else stored in ``graph`` (a
        GraphStore; vectors of another size than the encoder's are ignored), else encoded in one batch."""
        missing = {eid: name for eid, name in entities if eid not in self.vectors}
        found: dict[str, np.ndarray] = {}
        if missing and graph is not None:
            dim = getattr(self.encoder, "dim", None)
            found = {eid: v for eid, v in graph.embeddings(list(missing)).items() if dim is None or v.shape == (dim,)}
        todo = [(eid, name) for eid, name in missing.items() if eid not in found]
        if todo:
            encoded = np.asarray(self.encoder.encode([n for _, n in todo], modality="text"), dtype=np.float32)
            found.update({eid: v for (eid, _), v in zip(todo, encoded)})
        if found:
            if len(self.vectors) + len(found) > self.max_size:
                self.vectors.clear()
            self.vectors.update(found)
        if not entities:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([self.vectors[eid] for eid, _ in entities])

    @classmethod
    def cached(cls, encoder: Any) -> NameIndex:
        """One index per encoder for the process (entity ids are content hashes: safe across memories)."""
        key = (id(encoder), getattr(encoder, "name", ""))
        with _LOCK:
            found = _NAME_INDEXES.get(key)
            if found is None:
                found = _NAME_INDEXES[key] = cls(encoder)
        return found


def query_mentions(query: str, spacy_model: str) -> list[tuple[str, str, str]]:
    """``(surface, canonical concept, type)`` of the query's mentions, by the graph's own extractor."""
    from omnimem.graph.extract import SpacyExtractor

    with _LOCK:
        extractor = _EXTRACTORS.get(spacy_model)
        if extractor is None:
            extractor = _EXTRACTORS[spacy_model] = SpacyExtractor.from_pretrained(spacy_model)
    extraction = extractor.extract_one(query)
    return [(m.surface, m.concept, m.type) for m in extraction.mentions]


def link_query_entities(
    mentions: Sequence[tuple[str, str, str]],
    graph: Any,
    *,
    nearby: Sequence[Any] = (),
    names: NameIndex | None = None,
    threshold: float = 0.85,
    mention_vectors: Mapping[str, np.ndarray] | None = None,
) -> list[EntityLink]:
    """Link query mentions to root entities: exact key, then alias, then name embedding (names only).

    ``mentions``: ``(surface, concept, type)`` as :func:`query_mentions` returns them. Each mention
    links to every entity with its key (any type: "Jordan" the person and the country both stay; the
    walk and the reranker sort them out). An unmatched mention tries the aliases (surfaces of their
    mentions) of the ``nearby`` entity rows, then, when ``names`` is given and the mention is a name,
    the nearby named entity whose name embedding is closest, if its cosine is >= ``threshold``. The
    nearby names' vectors come from ``graph`` where stored (:meth:`NameIndex.embed`);
    ``mention_vectors``: concept -> unit vector of the mentions, when the caller encoded them with the
    query (else they are encoded here, in one batch).
    """
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"link threshold must be in [0, 1], got {threshold}")
    links, unmatched = key_links(mentions, graph, nearby)
    return embedding_links(links, unmatched, graph, nearby=nearby, names=names, threshold=threshold,
                           mention_vectors=mention_vectors)  # fmt: skip


def key_links(
    mentions: Sequence[tuple[str, str, str]], graph: Any, nearby: Sequence[Any] = ()
) -> tuple[list[EntityLink], list[tuple[str, str]]]:
    """The first phase of :func:`link_query_entities`: links by exact key, then by a nearby entity's
    alias; and the ``(surface, concept)`` of the named mentions neither linked (an embedding may)."""
    links: dict[str, EntityLink] = {}
    unmatched: list[tuple[str, str]] = []
    aliases: dict[str, list[Any]] = {}
    for row in nearby:
        for alias in (row.name, *row.aliases):
            aliases.setdefault(concept_key(alias), []).append(row)
    for surface, concept, type_ in mentions:
        found = graph.find_entities(concept) or graph.find_entities(surface)
        for row in found:
            links.setdefault(row.id, EntityLink(row.id, row.name, surface, "exact", 1.0))
        if found:
            continue
        by_alias = aliases.get(concept_key(surface), []) + aliases.get(concept_key(concept), [])
        for row in by_alias:
            links.setdefault(row.id, EntityLink(row.id, row.name, surface, "alias", 1.0))
        if not by_alias and type_ != "CONCEPT":
            unmatched.append((surface, concept))
    return list(links.values()), unmatched


def embedding_links(
    links: Sequence[EntityLink], unmatched: Sequence[tuple[str, str]], graph: Any, *, nearby: Sequence[Any],
    names: NameIndex | None, threshold: float, mention_vectors: Mapping[str, np.ndarray] | None = None,
    worthy: bool = False,
) -> list[EntityLink]:  # fmt: skip
    """The second phase: each unmatched name linked to the nearby named entity whose name embedding is
    closest, at cosine >= ``threshold``; ``links`` (the first phase's) come first. ``worthy``: the
    caller already kept only the names :func:`worth_embedding` keeps."""
    out = {lk.entity_id: lk for lk in links}
    named = [r for r in nearby if r.type != "CONCEPT"]
    unmatched = list(unmatched) if worthy else worth_embedding(unmatched, named)
    if unmatched and names is not None and named:
        matrix = names.embed([(r.id, r.name) for r in named], graph)
        given = mention_vectors or {}
        todo = [c for _, c in unmatched if c not in given]
        encoded = names.encoder.encode(todo, modality="text") if todo else []
        known = {**dict(zip(todo, np.asarray(encoded, dtype=np.float32))), **given}
        vectors = np.asarray([known[c] for _, c in unmatched], dtype=np.float32)
        for (surface, _), row in zip(unmatched, vectors @ matrix.T):
            best = int(np.argmax(row))
            if row[best] >= threshold:
                e = named[best]
                out.setdefault(e.id, EntityLink(e.id, e.name, surface, "embedding", float(row[best])))
    return list(out.values())


def worth_embedding(unmatched: Sequence[tuple[str, str]], named: Sequence[Any]) -> list[tuple[str, str]]:
    """The unmatched ``(surface, concept)`` names that some ``named`` entity row's name resembles in
    spelling (character-trigram Jaccard >= 0.25): only those can reach the embedding threshold, and
    the others need no model call. Measured on the LoCoMo and MuSiQue dev questions: of 47 unmatched
    names, the 9 linked (cosine >= 0.85: "Peter Bonetti" -> "Peter Phillip Bonetti", "Big Eye" ->
    "Big Eyes") had a Jaccard of 0.39-0.87 with their entity; under 0.25 no pair passed a cosine of
    0.63 ("John" -> "Jon" 0.60, "June" -> "next month" 0.62)."""
    if not unmatched or not named:
        return []
    entities = [_trigrams(r.name) for r in named]
    keep = []
    for surface, concept in unmatched:
        grams = _trigrams(concept)
        if any(jaccard_at_least(grams, e, _ALIKE) for e in entities):
            keep.append((surface, concept))
    return keep


def _trigrams(name: str) -> frozenset[str]:
    key = f" {concept_key(name)} "
    return frozenset(key[i : i + 3] for i in range(len(key) - 2))


def presence_scores(image_encoder: Any, images: Sequence[Any], names: Sequence[str]) -> np.ndarray:
    """Presence of each named entity in the query media: max over frames of the image-text cosine.

    ``images``: f frames (paths, PIL images or arrays, as the encoder takes them); ``names``: n
    entity names, each embedded as the text "a photo of <name>". Returns float32 (n,).
    """
    if not len(images) or not len(names):
        return np.zeros(len(names), dtype=np.float32)
    frames = np.asarray(image_encoder.encode(list(images), modality="image"), dtype=np.float32)  # (f, d)
    texts = np.asarray(image_encoder.encode([f"a photo of {n}" for n in names], modality="text"), dtype=np.float32)
    return (texts @ frames.T).max(axis=1)  # (n,)


def transcript_presence(transcript: str, names: Sequence[str], *, near: float = 0.75) -> np.ndarray:
    """Presence of each named entity in a query's audio, from its transcript: float32 (n,) in [0, 1].

    1.0 when the name's words are heard in order; otherwise the best character-match ratio
    (``difflib``, 2 x matches / total length) between the name and a run of as many transcript words,
    counted only from ``near`` up (speech recognisers misspell names: "Carolyn" for "Caroline" scores
    0.8; an absent name scores 0, not the noise of chance letters).
    """
    from difflib import SequenceMatcher

    words = concept_key(transcript).split()
    out = np.zeros(len(names), dtype=np.float32)
    for k, name in enumerate(names):
        target = concept_key(name).split()
        n = len(target)
        if not n or not words:
            continue
        runs = [" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))]
        joined = " ".join(target)
        best = 1.0 if joined in runs else max(SequenceMatcher(None, joined, run).ratio() for run in runs)
        out[k] = best if best >= near else 0.0
    return out


def audio_text_presence(audio_encoder: Any, audio: Any, sentences: Sequence[str]) -> np.ndarray:
    """Cosine of the query audio with each sentence ("head relation tail") in an audio-text model's
    space (CLAP): float32 ``(n,)``. ``audio``: a file path or mono samples at the encoder's rate."""
    if not len(sentences):
        return np.zeros(0, dtype=np.float32)
    heard = np.asarray(audio_encoder.encode([audio], modality="audio"), dtype=np.float32)[0]
    texts = np.asarray(audio_encoder.encode(list(sentences), modality="text"), dtype=np.float32)
    return texts @ heard


def triplet_presence(presence: Mapping[str, float], head: str, tail: str) -> float:
    """A triplet's presence: the sum of its head's and tail's, halved so it has the entities' scale.

    An entity without a score (not among the scored candidates) counts as 0.
    """
    return (presence.get(head, 0.0) + presence.get(tail, 0.0)) / 2.0
