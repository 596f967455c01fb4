"""Multi-hop expansion: a bounded entity-item subgraph, personalized PageRank on it, and a second
dense round; each fused with the first ranking conservatively.

HippoRAG 2 (Gutiérrez et al., 2025, section 3 "Online retrieval"): seed phrases from the query (and
passages with a small weight), a random walk with restart over phrase and passage nodes, passages
ranked by their mass. Its lesson on MuSiQue with spaCy triples (see ../shared/data/README.md):
generic seeds ("game", "player") pull the walk away from the dense-best passages, so seeds here are
only linked query entities and entities of the top hits mentioned by at most ``max_seed_degree``
items, the walk runs on a subgraph of at most ``max_nodes`` nodes around them (latency does not grow
with the memory), and its mass only nudges the first ranking (a small weight, a few rescued items).

The second dense round is multi-hop dense retrieval (Xiong et al., "Answering Complex Open-Domain
Questions with Multi-Hop Dense Retrieval", ICLR 2021) without its trained encoder: the query joined
with a top passage finds the passage the first hop's bridge entity leads to.

The bridge query (:func:`bridge_query`) is the question decomposed by its first hop without a
language model: the words of the question the top passage does not contain (the part still unanswered)
followed by the named entities that passage mentions in the graph and the question does not (the
candidate bridge entities: HotpotQA's "bridge" questions, Yang et al., EMNLP 2018; decomposition as in
DecompRC, Min et al., ACL 2019). "What year did the company Novair International Airways is part of
dissolve?" with the airline's passage on top becomes "What year did company is part dissolve Cal Air
International Rank Organisation", whose nearest new passage is the Rank Organisation's. Its best new
passage goes after the second round's; measured on MuSiQue 100 (both halves agree) that lifts GRASP
recall@5 from 0.657 to 0.728 with an encoded joint query, and from 0.619 to 0.727 with the default
summed one (see ``GraspConfig.bridge`` and the eval's ``--folds --ablation``).

Measured (MiniLM, spaCy graph): on MuSiQue 100, adding the second round's cosine to every candidate
(weight 0.5) drops hybrid recall@5 from 0.60 to 0.50 (it re-ranks the pool by likeness to the top
passage), while keeping the first round's top two and inserting each hop's best new passage after
them lifts it to 0.65-0.66 (any of 1-3 kept, 1-3 seeds); on LoCoMo dev that costs ~0.01 recall@10.
The walk, with weight 0.15 and two rescued items, leaves MuSiQue recall@5 unchanged (0.601 -> 0.601
alone, 0.653 -> 0.653 after the second round) at several times the latency, so it is off by default
(``GraspConfig(ppr=True)`` turns it on; facts then take the walk's mass too).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from omnimem.errors import ConfigError
from omnimem.graph.traverse import personalized_pagerank
from omnimem.retrieval.fusion import Fused

if TYPE_CHECKING:
    import networkx as nx

_WORD = re.compile(r"\w+")
_UNNAMED = frozenset({"CONCEPT", "DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY"})  # not bridges

__all__ = [
    "bounded_subgraph", "seed_weights", "ppr_items", "nudge", "second_hop", "joint_texts", "joint_vectors",
    "bridge_query", "bridge_of", "insert_after_head", "ppr_nudge",
]  # fmt: skip


def bounded_subgraph(
    graph_store: Any, seed_entities: Sequence[str], seed_items: Sequence[str], *, hops: int, max_nodes: int,
    max_degree: int,
) -> nx.Graph:  # fmt: skip
    """The entity-item graph within ``hops`` mention hops of the seeds, at most ``max_nodes`` nodes.

    Nodes ``"e:<root id>"`` / ``"i:<item id>"``; mention edges entity-item (weight = mentions), triplet
    edges entity-entity (weight = triplets). Breadth-first from the seeds; an entity mentioned by
    more than ``max_degree`` items is kept as a node but not walked through (a hub like "film" would
    otherwise pull in the whole memory). Rows are read from SQL, never the whole graph: ids resolve to
    their roots a batch at a time (``roots_of``), as the walk reaches them.
    """
    import networkx as nx

    if hops < 0 or max_nodes <= 0 or max_degree <= 0:
        raise ConfigError("hops must be >= 0, max_nodes and max_degree positive")
    roots = dict(graph_store.roots_of(list(seed_entities)))

    def resolve(ids: Sequence[str]) -> None:
        new = [e for e in dict.fromkeys(ids) if e not in roots]
        if new:
            roots.update(graph_store.roots_of(new))

    g = nx.Graph()
    frontier_e = {roots.get(e, e) for e in seed_entities}
    frontier_i = set(seed_items)
    for e in frontier_e:
        g.add_node(f"e:{e}", kind="entity")
    for i in frontier_i:
        g.add_node(f"i:{i}", kind="item")
    for _ in range(hops):
        if g.number_of_nodes() >= max_nodes:
            break
        new_e: set[str] = set()
        new_i: set[str] = set()
        if frontier_i:  # items -> the entities they mention
            mentions = graph_store.mentions(item_ids=sorted(frontier_i))
            resolve([m.entity_id for m in mentions])
            for m in mentions:
                e = roots.get(m.entity_id, m.entity_id)
                if f"e:{e}" not in g:
                    new_e.add(e)
                _add_edge(g, f"e:{e}", f"i:{m.item_id}")
        if frontier_e:  # entities -> the items that mention them (hubs stay closed)
            degree = graph_store.mention_counts(sorted(frontier_e))
            open_e = [e for e in frontier_e if degree.get(e, 0) <= max_degree]
            for e, items in graph_store.items_of(open_e).items():
                for i in sorted(items):
                    if f"i:{i}" not in g:
                        new_i.add(i)
                    _add_edge(g, f"e:{e}", f"i:{i}")
                    if g.number_of_nodes() >= max_nodes:
                        break
        frontier_e, frontier_i = new_e, new_i
    entities = [n[2:] for n, d in g.nodes(data=True) if d.get("kind") == "entity"]
    if entities:  # facts among the loaded entities
        triplets = graph_store.triplets(entity_ids=entities)
        resolve([e for t in triplets for e in (t.head, t.tail)])
        for t in triplets:
            h, tl = f"e:{roots.get(t.head, t.head)}", f"e:{roots.get(t.tail, t.tail)}"
            if h != tl and h in g and tl in g:
                if g.has_edge(h, tl):
                    g.edges[h, tl]["weight"] += 1.0
                    g.edges[h, tl].setdefault("triplets", []).append(t.id)
                else:
                    g.add_edge(h, tl, kind="triplet", weight=1.0, triplets=[t.id])
    return g


def _add_edge(g: nx.Graph, entity: str, item: str) -> None:
    if entity not in g:
        g.add_node(entity, kind="entity")
    if item not in g:
        g.add_node(item, kind="item")
    if g.has_edge(entity, item):
        g.edges[entity, item]["weight"] += 1.0
    else:
        g.add_edge(entity, item, kind="mention", weight=1.0)


def seed_weights(
    linked: Mapping[str, float], item_entities: Mapping[str, float], degree: Mapping[str, int], *, max_degree: int
) -> dict[str, float]:
    """Reset weights of entity nodes: linked query entities and entities of top hits, by specificity.

    Weight = (link score or hit score) / log(2 + items mentioning it), the inverse-frequency node
    weighting of HippoRAG 2; entities over ``max_degree`` mentions do not seed at all.
    """
    out: dict[str, float] = {}
    for source in (linked, item_entities):
        for e, w in source.items():
            n = degree.get(e, 1)
            if n > max_degree or w <= 0:
                continue
            out[f"e:{e}"] = max(out.get(f"e:{e}", 0.0), float(w) / math.log(2 + n))
    return out


def ppr_items(g: nx.Graph, seeds: Mapping[str, float], *, damping: float) -> tuple[dict[str, float], dict[str, float]]:
    """Personalized PageRank on ``g`` -> (item id -> mass / best item mass, triplet id -> same scale)."""
    if not seeds or g.number_of_nodes() == 0:
        return {}, {}
    result = personalized_pagerank(g, seeds, damping=damping)
    best = max((s for _, s in result.items), default=0.0)
    if best <= 0:
        return {}, {}
    return {i: s / best for i, s in result.items}, {t: s / best for t, s in result.triplets}


def nudge(fused: Sequence[Fused], extra: Mapping[str, float], *, weight: float, rescue: int, name: str) -> list[Fused]:
    """Add ``weight * extra[id]`` to fused candidates; the best ``rescue`` absent ones join. Best first.

    ``extra`` scores lie in [0, 1]. A rescued candidate scores ``weight * extra`` plus the pool's
    median score, so a strong graph or second-hop signal can reach the top few, a weak one cannot.
    """
    if weight < 0 or rescue < 0:
        raise ConfigError("weight and rescue must be >= 0")
    if weight == 0 or not extra:
        return list(fused)
    out = []
    for f in fused:
        bonus = extra.get(f.id, 0.0)
        ranks = dict(f.ranks)
        if bonus > 0:
            ranks[name] = 0
        out.append(Fused(f.id, f.score + weight * bonus, ranks))
    present = {f.id for f in fused}
    median = float(np.median([f.score for f in fused])) if fused else 0.0
    absent = sorted(((s, i) for i, s in extra.items() if i not in present and s > 0), reverse=True)[:rescue]
    out += [Fused(i, median + weight * s, {name: 0}) for s, i in absent]
    return sorted(out, key=lambda f: (-f.score, min(f.ranks.values()), f.id))


def second_hop(
    search: Any, encoder: Any, query: str, seeds: Sequence[tuple[str, str]], *, n: int, tau: float | None,
    vectors: Any = None,
) -> list[list[tuple[str, float]]]:  # fmt: skip
    """Dense search with the query joined to each seed item's text: one ranked ``(id, cosine)`` list
    per seed, the seeds themselves left out.

    ``seeds``: ``(item id, text)`` of the top first-round items. The joint text reads like the
    question with its first hop answered, so its nearest passages are the next hop's. ``vectors``:
    the joint queries' unit vectors when the caller has them (e.g. :func:`joint_vectors`, no model
    call); default: the encoder embeds each joint text.
    """
    if not seeds:
        return []
    if vectors is None:
        vectors = encoder.encode(joint_texts(query, seeds), modality="text")
    vectors = np.asarray(vectors, dtype=np.float32)
    own = {i for i, _ in seeds}
    return [
        [(i, float(s)) for i, s in row if i not in own and (tau is None or s >= tau)][:n]
        for row in search(vectors, n + len(seeds))
    ]


def joint_texts(query: str, seeds: Sequence[tuple[str, str]]) -> list[str]:
    """The second round's joint query of each ``(item id, text)`` seed: the question, then the passage."""
    return [f"{query} {text}" for _, text in seeds]


def bridge_query(query: str, seed_text: str, names: Sequence[str]) -> str | None:
    """The question with its first hop answered by a passage: the question's words that ``seed_text``
    lacks, then those of ``names`` (entities the passage mentions) the question does not name; None
    when the passage names nothing new (no bridge to follow)."""
    answered = {w.lower() for w in _WORD.findall(seed_text)}
    rest = [w for w in _WORD.findall(query) if w.lower() not in answered]
    asked = query.lower()
    bridges = [n for n in dict.fromkeys(n.strip() for n in names) if n and n.lower() not in asked]
    return " ".join(rest + bridges) if bridges else None


def bridge_of(graph_store: Any, query: str, item_id: str, text: str, *, max_degree: int) -> tuple[str, str] | None:
    """``(item_id, bridge query)`` of a top item whose heading and text are ``text``, or None: the named entities
    the graph says it mentions, in the order the text names them (absent ones last). An entity that
    more than ``max_degree`` items mention leads nowhere in particular (the other speaker of a
    two-person chat, "United States") and is left out."""
    entity_ids = list(dict.fromkeys(m.entity_id for m in graph_store.mentions(item_ids=[item_id])))
    rows = [e for e in graph_store.entities(entity_ids) if e.type not in _UNNAMED] if entity_ids else []
    degree = graph_store.mention_counts([e.id for e in rows]) if rows else {}
    rows = [e for e in rows if degree.get(e.id, 0) <= max_degree]
    lowered = text.lower()

    def place(name: str) -> tuple[int, str]:
        at = lowered.find(name.lower())
        return (at if at >= 0 else len(text), name)

    query2 = bridge_query(query, text, sorted({e.name for e in rows}, key=place))
    return (item_id, query2) if query2 else None


def joint_vectors(query_vector: np.ndarray, seed_vectors: np.ndarray) -> np.ndarray:
    """The joint query of each seed without a model call: the normalised sum of the query's and the
    seed item's stored unit vectors (the midpoint direction of the two texts' embeddings)."""
    joint = np.asarray(seed_vectors, dtype=np.float32) + np.asarray(query_vector, dtype=np.float32)[None, :]
    return joint / np.maximum(np.linalg.norm(joint, axis=1, keepdims=True), 1e-9)


def insert_after_head(fused: Sequence[Fused], hops: Sequence[Sequence[tuple[str, float]]], *, head: int, per_seed: int,
                      name: str) -> list[Fused]:  # fmt: skip
    """Keep the first ``head`` candidates in place, then the best ``per_seed`` new items of each hop
    list, then the rest in order (an item found again moves up, carrying its ranks).

    The conservative fusion of the second hop: the first round's head is never displaced, and only
    each hop's best item is promoted, so a hop that went astray costs at most ``per_seed`` places.
    Promoted items take a score just above the candidate they now precede (scores stay sorted).
    """
    if head < 0 or per_seed < 0:
        raise ConfigError("head and per_seed must be >= 0")
    fused = list(fused)
    taken = {f.id for f in fused[:head]}
    promoted: list[str] = []
    for hop in hops:
        fresh = [i for i, _ in hop if i not in taken and i not in promoted][:per_seed]
        promoted += fresh
    if not promoted:
        return fused
    by_id = {f.id: f for f in fused}
    rest = [f for f in fused[head:] if f.id not in promoted]
    below = rest[0].score if rest else 0.0
    above = fused[head - 1].score if head and len(fused) >= head else below + 1.0
    step = (above - below) / (len(promoted) + 1)
    middle = []
    for n, item_id in enumerate(promoted, start=1):
        old = by_id.get(item_id)
        ranks = {**(old.ranks if old else {}), name: n}
        middle.append(Fused(item_id, max(old.score if old else 0.0, above - n * step), ranks))
    return fused[:head] + middle + rest


def ppr_nudge(
    graph: Any, fused: list[Fused], linked: Mapping[str, float], cfg: Any, allowed: Any
) -> tuple[list[Fused], dict[str, float]]:
    """HippoRAG 2's walk as a nudge: seed from ``linked`` query entities (``{entity id: link score}``)
    and the top items' entities, build the bounded subgraph, walk, and nudge ``fused`` with the item mass
    (``allowed``: the item scores a filter keeps). ``cfg``: a GraspConfig. Returns the ranking and the
    facts' mass."""
    linked = dict(linked) if cfg.ppr_seeds in ("query", "both") else {}
    top = fused[: cfg.seed_items] if cfg.ppr_seeds in ("items", "both") else []
    item_entities: dict[str, float] = {}
    if top:
        best = top[0].score or 1.0
        score_of = {f.id: f.score / best for f in top}
        mentions = graph.mentions(item_ids=list(score_of))
        roots = graph.roots_of([m.entity_id for m in mentions])
        for m in mentions:
            e = roots.get(m.entity_id, m.entity_id)
            item_entities[e] = max(item_entities.get(e, 0.0), score_of[m.item_id])
    degree = graph.mention_counts(list({*linked, *item_entities})) if (linked or item_entities) else {}
    seeds = seed_weights(linked, item_entities, degree, max_degree=cfg.max_seed_degree)
    if not seeds:
        return fused, {}
    for f in top:  # passages seed too, with a small weight (HippoRAG 2)
        seeds[f"i:{f.id}"] = 0.05 * f.score / (top[0].score or 1.0)
    sub = bounded_subgraph(
        graph,
        [s[2:] for s in seeds if s.startswith("e:")],
        [f.id for f in top],
        hops=cfg.hops,
        max_nodes=cfg.max_nodes,
        max_degree=cfg.max_seed_degree,
    )
    items, facts = ppr_items(sub, seeds, damping=cfg.damping)
    return nudge(fused, allowed(items), weight=cfg.ppr_weight, rescue=cfg.ppr_rescue, name="ppr"), facts
