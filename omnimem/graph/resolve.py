"""Entity resolution beyond exact names: candidates by characters and embeddings, merged on evidence.

M3KG-RAG (arXiv 2512.20136), step 2 "Knowledge grounding" turns mentions into canonical concepts;
two canonical names can still denote one entity ("Barack Obama" / "Obama" / "barack obama") and one
name two entities ("Jordan" the player / "Jordan" the country). This module decides, per candidate
pair, with three pieces of evidence that must all agree:

1. **name similarity**: character n-gram Jaccard, edit distance, or one name's words inside the
   other's (a surname inside a full name) — candidates come from a blocking index (prefix filtering
   over n-grams ordered by rarity, plus a word index), so it is never all pairs;
   optionally also the nearest neighbours of the name embeddings;
2. **compatible types** (a PERSON is never a GPE; a noun phrase "CONCEPT" is compatible with any);
3. **context similarity**: cosine of the embedded sentences that mention each entity, with the
   names themselves masked so that a shared name does not count as shared context.

Merges are written to the graph's merge log with their scores and undone by
:meth:`~omnimem.graph.store.GraphStore.unmerge`. The other direction, one row that is two entities,
is :mod:`omnimem.graph.senses`; the senses of one split entity are never merged back here.
"""

from __future__ import annotations

import logging
import math
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from omnimem.errors import ConfigError
from omnimem.graph.normalize import concept_key

if TYPE_CHECKING:
    from omnimem.graph.store import EntityRow, GraphStore, Merge

__all__ = [
    "ResolverConfig", "Resolution", "EntityResolver", "name_similarity", "ngrams", "candidate_pairs",
    "compatible_types", "mask_names", "bow_embed",
]  # fmt: skip

log = logging.getLogger(__name__)

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> float32 (n, d), rows L2-normalised

_DIGITS = re.compile(r"\d+")
_PERSONISH = frozenset({"PERSON", "ORG"})  # the small model labels many surnames ORG

# spaCy labels that may denote the same thing (the small model often swaps PERSON and ORG).
_TYPE_GROUPS = {
    "PERSON": "agent", "ORG": "agent", "NORP": "group",
    "GPE": "place", "LOC": "place", "FAC": "place",
    "PRODUCT": "thing", "WORK_OF_ART": "thing", "EVENT": "thing", "LAW": "thing", "LANGUAGE": "thing",
    "DATE": "time", "TIME": "time",
}  # fmt: skip


@dataclass(frozen=True)
class ResolverConfig:
    """When two entities are one."""

    ngram: int = 3  # character n-gram size for name similarity
    name_threshold: float = 0.75  # min name similarity (0..1) of two names (n-gram Jaccard, typo, surname)
    max_block: int = 50  # a word shared by more entities than this is not used for blocking
    concept_name_threshold: float = 0.85  # min name similarity when both are noun phrases ("CONCEPT")
    skip_types: tuple[str, ...] = (
        "DATE",
        "TIME",
        "CARDINAL",
        "ORDINAL",
        "PERCENT",
        "QUANTITY",
        "MONEY",
    )  # never merged
    embed_names: int = 0  # also pair each entity with its k nearest names by embedding (0 = off)
    name_embed_threshold: float = 0.85  # min name-embedding cosine for such a candidate
    context_threshold: float = 0.45  # min cosine between the two entities' contexts to merge
    common_word_context_threshold: float = 0.7  # the same, for a lower-case word vs a name ("church"/"Church")
    max_contexts: int = 5  # sentences per entity in its context
    max_context_chars: int = 600  # characters of context embedded per entity (MiniLM reads ~256 tokens)

    def __post_init__(self) -> None:
        if self.ngram < 2:
            raise ConfigError(f"ngram must be >= 2, got {self.ngram}")
        for name in (
            "name_threshold", "concept_name_threshold", "name_embed_threshold", "context_threshold",
            "common_word_context_threshold",
        ):  # fmt: skip
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.max_block < 2 or self.embed_names < 0 or self.max_contexts < 1 or self.max_context_chars < 1:
            raise ConfigError("max_block must be >= 2, embed_names >= 0, max_contexts and max_context_chars >= 1")


@dataclass(frozen=True)
class Resolution:
    """What one resolution run did."""

    merges: list[Merge] = field(default_factory=list)  # merges written (kept, merged, reason, scores)
    rejected: list[tuple[str, str, str, dict[str, float]]] = field(default_factory=list)  # (a, b, why, scores)
    candidates: int = 0  # candidate pairs scored


# -- pure similarity functions -----------------------------------------------------------------


def ngrams(text: str, n: int = 3) -> set[str]:
    """Character n-grams of a name's key, padded so short names still have some."""
    key = f" {concept_key(text)} "
    if len(key) <= n:
        return {key}
    return {key[i : i + n] for i in range(len(key) - n + 1)}


def _levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def name_similarity(a: str, b: str, *, n: int = 3, subset: bool = False) -> float:
    """Similarity of two names in [0, 1]: the best of n-gram Jaccard, a close edit ratio (a typo) and,
    with ``subset``, one name being the other's last words ("Obama" / "Barack Obama": 0.8).

    Names whose numbers differ score 0 ("129th meridian" / "138th meridian" are two things).
    ``subset`` is meant for person names; for other names it would pair "church" with "Catholic Church".
    """
    ka, kb = concept_key(a), concept_key(b)
    if not ka or not kb:
        return 0.0
    if ka == kb:
        return 1.0
    if _DIGITS.findall(ka) != _DIGITS.findall(kb):
        return 0.0
    ga, gb = ngrams(ka, n), ngrams(kb, n)
    score = len(ga & gb) / len(ga | gb)
    if score >= 0.3 and 8 <= max(len(ka), len(kb)) <= 40:
        edit = 1.0 - _levenshtein(ka, kb) / max(len(ka), len(kb))
        if edit >= 0.85:  # a typo in a long name; in short words an edit changes the word ("painter"/"printer")
            score = max(score, edit)
    if subset:
        wa, wb = ka.split(), kb.split()
        small, large = (wa, wb) if len(wa) <= len(wb) else (wb, wa)
        if len(small) < len(large) and large[-len(small) :] == small and len(small[-1]) >= 3:
            score = max(score, 0.8)
    return score


def compatible_types(a: str, b: str) -> bool:
    """Whether two mention types may denote one entity ("CONCEPT" is compatible with anything)."""
    if a == b or "CONCEPT" in (a, b):
        return True
    return _TYPE_GROUPS.get(a, a) == _TYPE_GROUPS.get(b, b)


def candidate_pairs(
    names: Sequence[str],
    *,
    n: int = 3,
    threshold: float = 0.6,
    max_block: int = 50,
    probe: Sequence[int] | None = None,
    words: Sequence[bool] | None = None,
) -> set[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, with n-gram Jaccard >= ``threshold``, or sharing a last word.

    Blocking, not all pairs: prefix filtering (Chaudhuri et al., 2006) — with each name's n-grams
    ordered rarest first, two sets with Jaccard >= t must share one of the first
    ``|g| - ceil(t |g|) + 1`` grams, so only those are indexed — plus an index of last words (>= 3 chars)
    whose blocks larger than ``max_block`` are skipped. ``words[i]``: index name ``i``'s words (default:
    all; pass False for common nouns). ``probe``: only pairs touching these indexes.
    """
    grams = [sorted(ngrams(name, n)) for name in names]
    freq = Counter(g for gs in grams for g in gs)
    by_gram: dict[str, list[int]] = defaultdict(list)
    by_word: dict[str, list[int]] = defaultdict(list)
    for i, gs in enumerate(grams):
        gs.sort(key=lambda g: (freq[g], g))
        prefix = len(gs) - math.ceil(threshold * len(gs)) + 1
        for g in gs[:prefix]:
            by_gram[g].append(i)
        last = concept_key(names[i]).rsplit(" ", 1)[-1]
        if (words is None or words[i]) and len(last) >= 3:
            by_word[last].append(i)  # surnames: "Obama" meets "Barack Obama"
    probes = set(range(len(names))) if probe is None else set(probe)
    sets = [set(gs) for gs in grams]
    pairs: set[tuple[int, int]] = set()
    seen: set[tuple[int, int]] = set()
    for block in by_gram.values():  # verified: only pairs whose Jaccard reaches the threshold
        for i in (i for i in block if i in probes) if len(block) > 1 else ():
            for j in block:
                pair = (min(i, j), max(i, j))
                if i == j or pair in seen:
                    continue
                seen.add(pair)
                small, large = sorted((len(sets[i]), len(sets[j])))
                if small >= threshold * large and len(sets[i] & sets[j]) >= threshold * len(sets[i] | sets[j]):
                    pairs.add(pair)
    for block in by_word.values():  # unverified: a shared last word is the surname rule's business
        if 1 < len(block) <= max_block:
            for i in (i for i in block if i in probes):
                pairs.update((min(i, j), max(i, j)) for j in block if i != j)
    return pairs


def mask_names(sentences: Sequence[str], names: Sequence[str]) -> str:
    """Join sentences with every occurrence of ``names`` removed (shared names are not shared context).

    Whole words only: a speaker's alias "I" must not take the letter out of "hiking".
    """
    text = " ".join(sentences)
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", " ", text, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", text).strip()


# English function words of 3+ letters: in a bag of words they make any two sentences look alike
_STOP = frozenset(
    "the and for are but not you all any can had her was one our out has him his how its may who did get got"
    " she they them their there then than this that these those with from have were been being into onto"
    " about after before over under again also just very some such what when where which while would could"
    " should will shall does doing done your yours mine ours hers because each other only own same too more"
    " most much many here off upon yet nor".split()
)


def bow_embed(texts: Sequence[str], dim: int = 256) -> np.ndarray:
    """A dependency-free bag-of-words embedding (hashed, L2-normalised): the fallback when no ``embed``.

    Words of three letters or more, English function words left out.
    """
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"\w{3,}", text.lower()):
            if word in _STOP:
                continue
            out[row, zlib.crc32(word.encode("utf-8")) % dim] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def _surname_pair(a: EntityRow, b: EntityRow) -> bool:
    """One is a person's full name and the other its last words ("Barack Obama" / "Obama")."""
    (short, ws), (full, wl) = sorted(((e, concept_key(e.name).split()) for e in (a, b)), key=lambda p: len(p[1]))
    if full.type != "PERSON" or short.type not in _PERSONISH or len(ws) >= len(wl):
        return False
    return wl[-len(ws) :] == ws and len(ws[-1]) >= 3


def _keep_first(a: EntityRow, b: EntityRow, counts: dict[str, int], *, surname: bool) -> tuple[EntityRow, EntityRow]:
    """(kept, merged): a person's full name over its surname, else the better-attested entity."""
    rank = lambda e: (-len(e.name) * surname, -counts.get(e.id, 0), -len(e.name), e.id)
    return (a, b) if rank(a) <= rank(b) else (b, a)


def _common_word(a: EntityRow, b: EntityRow) -> bool:
    """A lower-case one-word noun phrase against a name: "church" / "Church" needs stronger context."""
    if (a.type == "CONCEPT") == (b.type == "CONCEPT"):
        return False
    concept = a if a.type == "CONCEPT" else b
    return " " not in concept.name.strip() and concept.name == concept.name.lower()


def _gate(a: EntityRow, b: EntityRow, name: float, cfg: ResolverConfig) -> str | None:
    """Why the pair cannot be one entity on names and types alone, or None when context should decide."""
    if not compatible_types(a.type, b.type):
        return "types differ"
    concepts = (a.type == "CONCEPT") + (b.type == "CONCEPT")
    if concepts == 2:
        return None if name >= cfg.concept_name_threshold else "names differ"
    if concepts == 1:
        # a noun phrase joins a name only when it spells that name ("Parma", "barack obama")
        return None if name == 1.0 else "concept vs name"
    return None if name >= cfg.name_threshold else "names differ"


# -- the resolver --------------------------------------------------------------------------------


class EntityResolver:
    """Finds candidate pairs in a :class:`GraphStore`, decides on evidence, and logs merges there."""

    def __init__(self, embed: Embed | None = None, config: ResolverConfig | None = None) -> None:
        self.embed = embed
        self.config = config or ResolverConfig()

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        vectors = np.asarray(self.embed(list(texts)) if self.embed else bow_embed(texts), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ConfigError(f"embed must return a (n, d) array for n={len(texts)} texts, got {vectors.shape}")
        return vectors

    def candidates(self, entities: Sequence[EntityRow], probe: Sequence[int] | None = None) -> set[tuple[int, int]]:
        """Candidate index pairs among ``entities``: character blocking, plus name-embedding neighbours."""
        cfg = self.config
        names = [e.name for e in entities]
        named = [e.type in _PERSONISH for e in entities]
        pairs = candidate_pairs(
            names, n=cfg.ngram, threshold=cfg.name_threshold, max_block=cfg.max_block, probe=probe, words=named
        )
        if cfg.embed_names and self.embed is not None and len(entities) > 1:
            vectors = self._embed(names)
            rows = list(range(len(names))) if probe is None else list(probe)
            for start in range(0, len(rows), 1024):
                chunk = rows[start : start + 1024]
                sims = vectors[chunk] @ vectors.T  # (chunk, n)
                sims[np.arange(len(chunk)), chunk] = -1.0
                k = min(cfg.embed_names, len(names) - 1)
                top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
                for r, i in enumerate(chunk):
                    for j in top[r]:
                        if sims[r, j] >= cfg.name_embed_threshold:
                            pairs.add((min(i, int(j)), max(i, int(j))))
        return pairs

    def resolve(self, graph: GraphStore, entity_ids: Sequence[str] | None = None) -> Resolution:
        """Resolve ``entity_ids`` (default: every entity) against all entities of ``graph``.

        Pairs are decided best name score first; a merge keeps the entity with more mentions (then
        the longer name) and writes a merge-log row with ``{"name", "context", "name_embedding"}``.
        """
        cfg = self.config
        entities = [e for e in graph.entities() if e.type not in cfg.skip_types]
        index = {e.id: k for k, e in enumerate(entities)}
        probe = None
        if entity_ids is not None:
            roots = graph.roots()
            probe = sorted({index[roots.get(e, e)] for e in entity_ids if roots.get(e, e) in index})
            if not probe:
                return Resolution()
        pairs = self.candidates(entities, probe)
        rejected: list[tuple[str, str, str, dict[str, float]]] = []
        typed = []
        for i, j in pairs:
            a, b = entities[i], entities[j]
            n = name_similarity(a.name, b.name, n=cfg.ngram, subset=_surname_pair(a, b))
            why = _gate(a, b, n, cfg)
            if why == "types differ":
                rejected.append((a.id, b.id, why, {"name": round(n, 3)}))
            elif why is None or (cfg.embed_names and why == "names differ"):
                typed.append((n, i, j))
        typed.sort(key=lambda s: (-s[0], s[1], s[2]))
        if not typed:
            return Resolution([], rejected, len(pairs))
        involved = sorted({k for _, i, j in typed for k in (i, j)})
        ids = [entities[k].id for k in involved]
        name_vectors: dict[int, np.ndarray] = {}
        if cfg.embed_names and self.embed is not None:
            name_vectors = dict(zip(involved, self._embed([entities[k].name for k in involved])))
            typed = [
                (n, i, j) for n, i, j in typed
                if n >= cfg.name_threshold or float(name_vectors[i] @ name_vectors[j]) >= cfg.name_embed_threshold
            ]  # fmt: skip
        contexts = graph.contexts(ids, limit=cfg.max_contexts)
        counts = graph.mention_counts(ids)
        items = graph.items_of(ids)
        # one embedding per entity: its sentences with its own names masked (one batched call)
        texts = {
            k: mask_names(contexts.get(entities[k].id) or [], [entities[k].name, *entities[k].aliases])[: cfg.max_context_chars]
            for k in involved
        }  # fmt: skip
        keys = [k for k in involved if texts[k]]
        vectors = dict(zip(keys, self._embed([texts[k] for k in keys])))

        root = {k: k for k in involved}
        family = {x: e for e, xs in graph.senses().items() for x in xs}  # a split entity and its senses

        def find(k: int) -> int:
            while root[k] != k:
                k = root[k]
            return k

        merges = []
        for n, i, j in typed:
            ri, rj = find(i), find(j)
            if ri == rj:
                continue
            a, b = entities[i], entities[j]
            scores = {"name": round(n, 3)}
            if name_vectors:
                scores["name_embedding"] = round(float(name_vectors[i] @ name_vectors[j]), 3)
            if family.get(entities[ri].id, entities[ri].id) == family.get(entities[rj].id, entities[rj].id):
                # kept apart by a split (omnimem.graph.senses)
                rejected.append((a.id, b.id, "senses of one name", scores))
                continue
            shared = items.get(a.id, set()) & items.get(b.id, set())
            if shared and concept_key(a.name) != concept_key(b.name) and not _surname_pair(a, b):
                # two spellings in one text are two things ("Tuntsayoki" / "Kutsayoki River"), unless one
                # is the other's surname ("Barack Obama ... Obama")
                rejected.append((a.id, b.id, "co-mentioned", scores))
                continue
            va, vb = vectors.get(i), vectors.get(j)
            if va is None or vb is None:
                rejected.append((a.id, b.id, "no context", scores))
                continue
            scores["context"] = round(float(va @ vb), 3)
            needed = cfg.common_word_context_threshold if _common_word(a, b) else cfg.context_threshold
            if scores["context"] < needed:
                rejected.append((a.id, b.id, "contexts differ", scores))
                continue
            keep, drop = _keep_first(entities[ri], entities[rj], counts, surname=_surname_pair(a, b))
            keep, drop = (ri, rj) if keep is entities[ri] else (rj, ri)
            merges.append(graph.merge(entities[keep].id, entities[drop].id, reason="name+type+context", scores=scores))
            root[drop] = keep
            counts[entities[keep].id] = counts.get(entities[keep].id, 0) + counts.get(entities[drop].id, 0)
        log.info(
            "entity resolution: %d candidate pairs, %d merges, %d kept apart", len(pairs), len(merges), len(rejected)
        )
        return Resolution(merges, rejected, len(pairs))
