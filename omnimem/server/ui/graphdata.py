"""The knowledge graph as the UI's graph view reads it: one entity's neighbourhood, an edge's evidence,
an entity's facts with their validity and history.

Everything goes through the graph store's protocol (:class:`~omnimem.stores.base.GraphStore`) and the
Memory API (``facts``, ``fact_history``), so it works on every backend. Ids are root entity ids:
merged entities show as the entity they were merged into.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from omnimem.errors import NotFound

__all__ = ["neighbourhood", "edge_sources", "facts_with_history", "fact_status", "MAX_NEIGHBOURS"]

MAX_NEIGHBOURS = 40  # neighbours drawn around one entity (best connected first)


def _entity_json(e: Any) -> dict[str, Any]:
    return {"id": e.id, "name": e.name, "type": e.type, "description": e.description, "aliases": list(e.aliases)}


def neighbourhood(graph: Any, entity_id: str, *, limit: int = MAX_NEIGHBOURS) -> dict[str, Any]:
    """``{"center", "nodes", "edges", "more"}`` for the entity ``entity_id`` and its direct neighbours.

    Each edge joins the center to a neighbour and lists the triplets between them (relation,
    direction, sentence, validity, whether retired) and their source items; ``more`` counts the
    neighbours left out past ``limit``.
    """
    roots = graph.roots()
    center = roots.get(entity_id, entity_id)
    found = graph.entities([center])
    if not found:
        raise NotFound(f"no entity with id {entity_id!r} in this memory's graph")
    ring = sorted(graph.neighbor_ids([center], hops=1) - {center})
    more = max(0, len(ring) - limit)
    if more:
        degree = graph.mention_counts(ring)
        ring = sorted(sorted(ring, key=lambda e: (-degree.get(e, 0), e))[:limit])
    wanted = {center, *ring}
    nodes = {e.id: _entity_json(e) for e in graph.entities([center, *ring])}
    members = [m for ms in graph.members([center]).values() for m in ms]
    edges: dict[str, dict[str, Any]] = {}
    for t in graph.triplets(entity_ids=members):
        head, tail = roots.get(t.head, t.head), roots.get(t.tail, t.tail)
        if head == tail or head not in wanted or tail not in wanted:
            continue
        other = tail if head == center else head
        name = nodes.get(other, {}).get("name", other)
        edge = edges.setdefault(other, {"id": f"{center}|{other}", "source": center, "target": other, "name": name, "triplets": []})  # fmt: skip
        edge["triplets"].append(
            {
                "id": t.id, "head": nodes.get(head, {}).get("name", head), "relation": t.relation,
                "tail": nodes.get(tail, {}).get("name", tail), "sentence": t.sentence,
                "valid_from": t.valid_from, "valid_to": t.valid_to, "retired": t.retired_at is not None,
                "sources": list(t.sources),
            }
        )  # fmt: skip
    return {"center": center, "nodes": list(nodes.values()), "edges": list(edges.values()), "more": more}


def edge_sources(mem: Any, triplet_ids: list[str]) -> list[dict[str, Any]]:
    """The items the triplets ``triplet_ids`` were read from (their evidence), in first-cited order."""
    sources = mem.graph.sources(triplet_ids)
    ids = list(dict.fromkeys(i for t in triplet_ids for i in sources.get(t, [])))
    out = []
    for item in mem.store.get(ids):
        if item is not None:
            out.append(
                {
                    "id": item.id, "text": item.text, "speaker": item.speaker, "modality": item.modality,
                    "event_time": item.event_time, "session": item.session, "t_start": item.t_start,
                }
            )  # fmt: skip
    return out


def fact_status(fact: Any) -> str:
    """``current``, ``corrected`` (it never held) or ``superseded`` (it held until ``valid_to``)."""
    if fact.retired_at is None:
        return "current"
    return "corrected" if fact.corrected else "superseded"


def facts_with_history(mem: Any, entity: str) -> list[dict[str, Any]]:
    """Every fact about ``entity`` (retired ones too), each with its status and its history of operations."""
    out = []
    for fact in mem.facts(entity, include_retired=True):
        row = asdict(fact)
        row["status"] = fact_status(fact)
        row["history"] = [asdict(e) for e in mem.fact_history(fact.id)]
        out.append(row)
    return out
