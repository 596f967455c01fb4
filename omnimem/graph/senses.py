"""Per-mention senses: one name and type, two referents, kept apart on the evidence of their contexts.

Entity identity is a content hash of (name key, type), so "Jordan" the basketball player and
"Jordan" the neighbour who bakes bread are one entity row when written; :class:`EntityResolver` only
decides merges between rows, never splits one. This module does, in two steps:

1. **split** (:class:`SenseSplitter`, a batch step of the graph job and of consolidation): for an
   entity mentioned in enough items, embed each item's context (its sentences mentioning the entity,
   with the entity's names masked, as :func:`~omnimem.graph.resolve.mask_names` does for the merge
   side), cluster the items in two (spherical 2-means, deterministic), and split only when all the
   evidence agrees: both groups have enough items, their centroids' cosine is below the resolver's
   ``context_threshold`` (its "contexts differ" rule), each group's mean silhouette is high (its
   contexts are closer to each other than to the other group's: a person's chat turns on many
   topics score near 0, their cut is arbitrary) and the two groups share few co-mentioned names. Chat turns about one person range over many topics, and a false split
   hurts the graph more than a missed one, so every threshold leans towards not splitting.
   The minority group's mentions and triplets move to a new entity (a *sense*) in one transaction,
   logged and reversible (:meth:`GraphStore.split <omnimem.graph.store.GraphStore.split>` /
   :meth:`~omnimem.graph.store.GraphStore.unsplit`). An entity already in the split log (split,
   a sense, or a split undone) is never split again: splitting is idempotent and an undo sticks.
2. **route** (:func:`route_senses`, on every write): a new item's mention of a name that has senses
   goes to the sense whose contexts (the centroid of some of its items) are closest to the item's
   context. Names without senses cost one small query per write batch, nothing per mention.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from omnimem.errors import ConfigError
from omnimem.graph.resolve import Embed, ResolverConfig, bow_embed, mask_names
from omnimem.graph.store import EntityRow, GraphStore, MentionRow, Split, TripletRow

__all__ = ["SenseConfig", "SenseSplitter", "two_means", "silhouette", "route_senses", "Rows"]

log = logging.getLogger(__name__)

Rows = tuple[list[EntityRow], list[MentionRow], list[TripletRow]]  # one item's graph rows

_NAMED = frozenset({"PERSON", "ORG", "GPE", "LOC", "FAC", "NORP", "PRODUCT", "WORK_OF_ART", "EVENT"})  # co-mentions


@dataclass(frozen=True)
class SenseConfig:
    """When one entity is two."""

    min_items: int = 6  # an entity is considered only when mentioned in at least this many items
    min_items_per_sense: int = 3  # items each of the two senses needs (two items make a pair by chance)
    context_threshold: float = ResolverConfig.context_threshold  # max centroid cosine of two senses (merge: min)
    min_silhouette: float = 0.15  # min mean silhouette (cosine distance, -1..1) of each group's items
    max_shared_names: float = 0.2  # max Jaccard of the named entities co-mentioned with each sense
    types: tuple[str, ...] = ("PERSON",)  # entity types that may split: see below
    max_items: int = 5000  # entities mentioned in more items are left alone (cost)
    max_context_chars: int = 600  # characters of one item's context embedded (MiniLM reads ~256 tokens)
    route_items: int = 16  # latest items per sense whose contexts make its centroid when routing

    # Only people by default: on MuSiQue (Wikipedia passages) every place, body and event that split
    # ("Earth", "Congress", "Atlantic Ocean") was one referent written about on different topics,
    # and a split there cuts the bridges multi-hop retrieval walks; two people sharing a first name
    # is the common case of a true homonym in a personal memory.

    def __post_init__(self) -> None:
        if self.min_items_per_sense < 1 or self.min_items < 2 * self.min_items_per_sense:
            raise ConfigError("min_items_per_sense must be >= 1 and min_items >= 2 * min_items_per_sense")
        for name in ("context_threshold", "max_shared_names"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not -1.0 <= self.min_silhouette <= 1.0:
            raise ConfigError(f"min_silhouette must be in [-1, 1], got {self.min_silhouette}")
        if self.max_items < self.min_items or self.max_context_chars < 1 or self.route_items < 1:
            raise ConfigError("max_items must be >= min_items, max_context_chars and route_items >= 1")


# -- pure functions ----------------------------------------------------------------------------


def two_means(x: np.ndarray, *, iterations: int = 50) -> np.ndarray:
    """Spherical 2-means of L2-normalised rows ``x`` (n, d) -> labels (n,) in {0, 1}; deterministic.

    Seeds: the row least like the mean, then the row least like that one (farthest-first); then
    Lloyd iterations on cosine. Label 0 is the group of the first row.
    """
    if x.ndim != 2 or len(x) < 2:
        raise ConfigError(f"two_means needs an (n >= 2, d) array, got {x.shape}")
    a = int(np.argmin(x @ x.mean(axis=0)))
    b = int(np.argmin(x @ x[a]))
    centroids = x[[a, b]]
    labels = np.zeros(len(x), dtype=np.int64)
    for _ in range(iterations):
        new = np.argmax(x @ centroids.T, axis=1)
        if len(set(new.tolist())) < 2 or (new == labels).all():
            labels = new
            break
        labels = new
        centroids = np.stack([_unit(x[labels == k].mean(axis=0)) for k in (0, 1)])
    return labels if labels[0] == 0 else 1 - labels


def silhouette(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Silhouettes (Rousseeuw, 1987) of a two-group labelling of L2-normalised rows ``x`` (n, d), cosine
    distance -> (n,) in [-1, 1].

    Per row: ``(b - a) / max(a, b)`` with ``a`` its mean distance to the rest of its group and ``b``
    to the other group (0 for a row alone in its group). Near 0 when the groups are an arbitrary cut
    of one cloud. O(n d): a mean cosine to a group is the dot product with the group's sum.
    """
    sizes = np.bincount(labels, minlength=2)
    if x.ndim != 2 or len(labels) != len(x) or sizes.min() == 0:
        raise ConfigError(f"silhouette needs (n, d) rows and two non-empty groups, got {x.shape}, sizes {sizes}")
    rows = np.arange(len(x))
    dots = x @ np.stack([x[labels == k].sum(axis=0) for k in (0, 1)]).T  # (n, 2)
    own, other = labels, 1 - labels
    alone = sizes[own] == 1
    a = 1.0 - (dots[rows, own] - (x * x).sum(axis=1)) / np.maximum(sizes[own] - 1, 1)
    b = 1.0 - dots[rows, other] / sizes[other]
    out = (b - a) / np.maximum(np.maximum(a, b), 1e-12)
    return np.where(alone, 0.0, out)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def _context(sentences: Sequence[str], names: Sequence[str], chars: int) -> str:
    return mask_names(list(dict.fromkeys(s for s in sentences if s)), names)[:chars]


# -- the splitter --------------------------------------------------------------------------------


class SenseSplitter:
    """Finds entities whose items tell of two referents and splits them in a :class:`GraphStore`."""

    def __init__(self, embed: Embed | None = None, config: SenseConfig | None = None) -> None:
        self.embed = embed  # the resolver's: texts -> (n, d) L2-normalised; None: bow_embed
        self.config = config or SenseConfig()

    def split(self, graph: GraphStore, entity_ids: Sequence[str] | None = None) -> list[Split]:
        """Split those of ``entity_ids`` (default: every entity) whose contexts tell of two referents.

        Each split is one transaction with a split-log row whose scores are ``{"items", "moved",
        "context", "silhouette", "shared_names"}``. Returns the splits made.
        """
        cfg = self.config
        roots = graph.roots()
        ids = None if entity_ids is None else list(dict.fromkeys(roots.get(e, e) for e in entity_ids))
        logged = {x for s in graph.splits(include_undone=True) for x in (s.entity, s.sense)}
        entities = [e for e in graph.entities(ids) if e.type in cfg.types and e.id not in logged]
        if not entities:
            return []
        by_item: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))  # entity -> item -> sentences
        for m in graph.mentions(entity_ids=[e.id for e in entities]):
            by_item[m.entity_id][m.item_id].append(m.sentence)
        candidates = [e for e in entities if cfg.min_items <= len(by_item[e.id]) <= cfg.max_items]
        texts: dict[str, dict[str, str]] = {}
        for e in candidates:
            names = [e.name, *e.aliases]
            texts[e.id] = {
                i: t for i, ss in sorted(by_item[e.id].items()) if (t := _context(ss, names, cfg.max_context_chars))
            }
        candidates = [e for e in candidates if len(texts[e.id]) >= cfg.min_items]
        flat = [t for e in candidates for t in texts[e.id].values()]
        vectors = iter(embed_texts(self.embed, flat))
        splits = []
        for e in candidates:
            items = list(texts[e.id])
            x = np.stack([next(vectors) for _ in items])
            decision = self._decide(graph, e, items, x)
            if decision is not None:
                moved, scores = decision
                splits.append(graph.split(e.id, moved, reason="contexts differ", scores=scores))
        log.info("entity senses: %d entities considered, %d split", len(candidates), len(splits))
        return splits

    def _decide(
        self, graph: GraphStore, entity: EntityRow, items: list[str], x: np.ndarray
    ) -> tuple[list[str], dict[str, float]] | None:
        """The items to move to a new sense and the evidence, or None when the entity stays one."""
        cfg = self.config
        labels = two_means(x)
        sizes = np.bincount(labels, minlength=2)
        if sizes.min() < cfg.min_items_per_sense:
            return None
        centroids = [_unit(x[labels == k].mean(axis=0)) for k in (0, 1)]
        scores = {"items": float(len(items)), "moved": float(sizes.min())}
        scores["context"] = round(float(centroids[0] @ centroids[1]), 3)
        if scores["context"] >= cfg.context_threshold:
            return None
        per_item = silhouette(x, labels)
        scores["silhouette"] = round(min(float(per_item[labels == k].mean()) for k in (0, 1)), 3)
        if scores["silhouette"] < cfg.min_silhouette:
            return None
        groups = [{i for i, label in zip(items, labels) if label == k} for k in (0, 1)]
        named = _co_mentioned(graph, entity.id, items)
        shared = [set().union(*(named.get(i, set()) for i in g)) for g in groups]
        scores["shared_names"] = round(_jaccard(*shared), 3)
        if scores["shared_names"] > cfg.max_shared_names:
            return None
        minority = 1 if sizes[1] <= sizes[0] else 0  # on a tie the group of the first item stays
        return sorted(groups[minority]), scores


def _co_mentioned(graph: GraphStore, entity: str, items: Sequence[str]) -> dict[str, set[str]]:
    """Item -> the (root) named entities it mentions besides ``entity``."""
    roots = graph.roots()
    mentions = graph.mentions(item_ids=list(items))
    others = {m.entity_id for m in mentions} - {entity}
    typed = {e.id for e in graph.entities(list({roots.get(o, o) for o in others})) if e.type in _NAMED}
    out: dict[str, set[str]] = defaultdict(set)
    for m in mentions:
        root = roots.get(m.entity_id, m.entity_id)
        if m.entity_id != entity and root in typed:
            out[m.item_id].add(root)
    return out


def embed_texts(embed: Embed | None, texts: Sequence[str]) -> np.ndarray:
    """``embed(texts)`` (or :func:`bow_embed`) as float32 (n, d), checked."""
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    vectors = np.asarray(embed(list(texts)) if embed else bow_embed(texts), dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise ConfigError(f"embed must return a (n, d) array for n={len(texts)} texts, got {vectors.shape}")
    return vectors


# -- routing at write time -----------------------------------------------------------------------


def route_senses(
    graph: GraphStore, rows: Mapping[str, Rows], embed: Embed | None = None, *, config: SenseConfig | None = None
) -> dict[str, Rows]:
    """Each item's rows with mentions of names that have senses re-pointed to the closest sense.

    ``rows``: item id -> its rows from :func:`~omnimem.graph.builder.rows_from_extraction` (which
    always name the unsplit entity). Per item and split entity, the item's sentences mentioning it
    (names masked) are embedded and compared with each sense's centroid: the mean of the contexts of
    ``route_items`` of its items (in id order). One embedding call for the whole batch; names without senses
    cost nothing.
    """
    cfg = config or SenseConfig()
    families = graph.senses() if rows else {}
    if not families:
        return dict(rows)
    split = {e.id for r in rows.values() for e in r[0] if e.id in families}
    if not split:
        return dict(rows)
    members = sorted({s for e in split for s in families[e]})  # the split entities and their senses
    names = defaultdict(set)  # split entity -> every surface of it and its senses (masked in contexts)
    owner = {x: e for e in split for x in families[e]}
    for e in graph.entities(members, include_merged=True):
        names[owner[e.id]].update([e.name, *e.aliases])
    for r in rows.values():
        for e in r[0]:
            if e.id in split:
                names[e.id].update([e.name, *e.aliases])
    wanted: dict[tuple[str, str], str] = {}  # (item, entity) -> its context in the item
    for item_id, (entities, mentions, triplets) in rows.items():
        for e in (e for e in entities if e.id in split):
            said = [m.sentence for m in mentions if m.entity_id == e.id]
            said += [t.sentence for t in triplets if e.id in (t.head, t.tail)]
            if text := _context(said, sorted(names[e.id]), cfg.max_context_chars):
                wanted[(item_id, e.id)] = text
    if not wanted:
        return dict(rows)
    sentences: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for m in graph.mentions(entity_ids=members):
        sentences[m.entity_id][m.item_id].append(m.sentence)
    sense_texts: dict[str, list[str]] = {}
    for family in {e for _, e in wanted}:
        for s in families[family]:
            some = list(sentences[s].values())[: cfg.route_items]
            sense_texts[s] = [t for ss in some if (t := _context(ss, sorted(names[family]), cfg.max_context_chars))]
    flat = list(wanted.values()) + [t for ts in sense_texts.values() for t in ts]
    vectors = iter(embed_texts(embed, flat))
    new = {key: next(vectors) for key in wanted}
    centroids = {s: _unit(np.mean([next(vectors) for _ in ts], axis=0)) for s, ts in sense_texts.items() if ts}
    choice: dict[str, dict[str, str]] = defaultdict(dict)  # item -> entity -> its sense there
    for (item_id, eid), v in new.items():
        scored = [(float(v @ centroids[s]), -k, s) for k, s in enumerate(families[eid]) if s in centroids]
        if scored and (best := max(scored)[2]) != eid:  # ties go to the entity itself
            choice[item_id][eid] = best
    return {item_id: _repoint(r, choice.get(item_id, {})) for item_id, r in rows.items()}


def _repoint(rows: Rows, to: Mapping[str, str]) -> Rows:
    """One item's rows with entity ids replaced as ``to`` says."""
    if not to:
        return rows
    entities, mentions, triplets = rows
    entities = [EntityRow(to.get(e.id, e.id), e.name, e.type, e.aliases, e.description) for e in entities]
    mentions = [
        MentionRow(to.get(m.entity_id, m.entity_id), m.item_id, m.surface, m.start, m.end, m.sentence) for m in mentions
    ]
    triplets = [
        TripletRow.make(
            to.get(t.head, t.head), t.relation, to.get(t.tail, t.tail), t.sentence, t.confidence, t.sources,
            valid_from=t.valid_from, valid_to=t.valid_to, recorded_at=t.recorded_at, retired_at=t.retired_at,
        )
        for t in triplets
    ]  # fmt: skip
    return entities, mentions, triplets
