"""The knowledge graph's storage as the graph layer sees it.

The tables live behind the :class:`~omnimem.stores.base.GraphStore` protocol (SQLite:
:class:`~omnimem.stores.sqlite_graph.SQLiteGraphStore`); this module re-exports the row types and
adds :func:`to_networkx`, a view over any backend built from the protocol's reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from omnimem.stores.base import GraphStore
from omnimem.stores.graph_schema import (
    GRAPH_SCHEMA_VERSION,
    EntityRow,
    MentionRow,
    Merge,
    Split,
    TripletRow,
    entity_id,
    entity_node,
    item_node,
    triplet_id,
)
from omnimem.stores.sqlite_graph import SQLiteGraphStore

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "GraphStore", "SQLiteGraphStore", "to_networkx", "entity_id", "triplet_id", "entity_node", "item_node",
    "EntityRow", "MentionRow", "TripletRow", "Merge", "Split", "GRAPH_SCHEMA_VERSION",
]  # fmt: skip


def to_networkx(graph: GraphStore, entity_ids: Sequence[str] | None = None, *, items: bool = True) -> nx.Graph:
    """An undirected view: entity nodes ``"e:<id>"``, item nodes ``"i:<id>"`` (attribute ``kind``).

    Edges: entity-entity ``kind="triplet"`` with ``triplets`` (ids), ``relations`` and ``items``
    (their sources), ``weight`` = number of triplets; entity-item ``kind="mention"`` with
    ``weight`` = number of mentions. Merged entities appear as their root. ``entity_ids``: load
    only those entities (their roots and members), the triplets among them and their items.
    """
    import networkx as nx

    roots = graph.roots()
    if entity_ids is None:
        ents = graph.entities()
        triplets = graph.triplets()
        mentions = graph.mentions() if items else []
    else:
        wanted = {roots.get(e, e) for e in entity_ids}
        ents = graph.entities(list(wanted))
        expanded = [m for ms in graph.members(list(wanted)).values() for m in ms]
        triplets = [t for t in graph.triplets(entity_ids=expanded) if roots.get(t.head, t.head) in wanted and roots.get(t.tail, t.tail) in wanted]  # fmt: skip
        mentions = graph.mentions(entity_ids=expanded) if items else []
    view = nx.Graph()
    for e in ents:
        view.add_node(entity_node(e.id), kind="entity", id=e.id, name=e.name, type=e.type)
    for t in triplets:
        h, tl = entity_node(roots.get(t.head, t.head)), entity_node(roots.get(t.tail, t.tail))
        if h == tl or h not in view or tl not in view:
            continue
        if view.has_edge(h, tl):
            data = view.edges[h, tl]
            data["triplets"].append(t.id)
            data["relations"].append(t.relation)
            data["items"].extend(s for s in t.sources if s not in data["items"])
            data["weight"] += 1.0
        else:
            view.add_edge(h, tl, kind="triplet", triplets=[t.id], relations=[t.relation], items=list(t.sources), weight=1.0)  # fmt: skip
    for m in mentions:
        e, i = entity_node(roots.get(m.entity_id, m.entity_id)), item_node(m.item_id)
        if e not in view:
            continue
        if i not in view:
            view.add_node(i, kind="item", id=m.item_id)
        if view.has_edge(e, i):
            view.edges[e, i]["weight"] += 1.0
        else:
            view.add_edge(e, i, kind="mention", weight=1.0)
    return view
