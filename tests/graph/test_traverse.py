"""k-hop neighbourhoods and personalized PageRank (HippoRAG 2) over the entity-item graph."""

from __future__ import annotations

import networkx as nx
import pytest

from omnimem.errors import ConfigError
from omnimem.graph.builder import GraphBuilder
from omnimem.graph.store import entity_node, item_node, to_networkx
from omnimem.graph.traverse import k_hop, personalized_pagerank
from omnimem.types import Item


def _toy() -> nx.Graph:
    """alice -(t1)- acme -(t2)- berlin; items: i1 mentions alice, i2 mentions berlin, i3 is far away."""
    g = nx.Graph()
    for name in ("alice", "acme", "berlin", "tokyo", "sushi"):
        g.add_node(entity_node(name), kind="entity", name=name)
    for item in ("i1", "i2", "i3"):
        g.add_node(item_node(item), kind="item")
    g.add_edge(entity_node("alice"), entity_node("acme"), kind="triplet", triplets=["t1"], weight=1.0)
    g.add_edge(entity_node("acme"), entity_node("berlin"), kind="triplet", triplets=["t2"], weight=1.0)
    g.add_edge(entity_node("tokyo"), entity_node("sushi"), kind="triplet", triplets=["t3"], weight=1.0)
    g.add_edge(entity_node("alice"), item_node("i1"), kind="mention", weight=1.0)
    g.add_edge(entity_node("berlin"), item_node("i2"), kind="mention", weight=1.0)
    g.add_edge(entity_node("sushi"), item_node("i3"), kind="mention", weight=1.0)
    return g


def test_ppr_reaches_a_two_hop_item_and_not_a_disconnected_one():
    result = personalized_pagerank(_toy(), [entity_node("alice")])
    items = dict(result.items)
    assert items["i2"] > 0  # alice -> acme -> berlin -> i2
    assert "i3" not in items  # another component gets no mass
    assert result.entities[0][0] == "alice"
    assert [t for t, _ in result.triplets][:2] == ["t1", "t2"]


def test_ppr_validates_first_and_tolerates_unknown_seeds():
    g = _toy()
    with pytest.raises(ConfigError, match="damping"):
        personalized_pagerank(g, [entity_node("alice")], damping=1.0)
    with pytest.raises(ConfigError, match=">= 0"):
        personalized_pagerank(g, {entity_node("alice"): -1.0})
    with pytest.raises(ConfigError, match="top_k"):
        personalized_pagerank(g, [entity_node("alice")], top_k=0)
    assert personalized_pagerank(g, ["e:nobody"]).items == []
    assert len(personalized_pagerank(g, [entity_node("alice")], top_k=1).items) == 1


def test_k_hop():
    g = _toy()
    assert set(k_hop(g, [entity_node("alice")], 0)) == {entity_node("alice")}
    two = set(k_hop(g, [entity_node("alice")], 2))
    assert entity_node("berlin") in two and item_node("i2") not in two
    assert item_node("i2") in set(k_hop(g, [entity_node("alice")], 3))
    with pytest.raises(ConfigError):
        k_hop(g, [], -1)


def test_ppr_over_a_built_graph_finds_the_bridge_passage(graph, extractor):
    items = [
        Item.make(text="Alice works for Acme Corporation.", id="p1"),
        Item.make(text="Acme Corporation is headquartered in Berlin.", id="p2"),
        Item.make(text="Tokyo is famous for sushi.", id="p3"),
    ]
    GraphBuilder(graph, extractor).add_items(items)
    alice = graph.find_entities("Alice")[0].id
    result = personalized_pagerank(to_networkx(graph), [entity_node(alice)])
    ranked = [i for i, _ in result.items]
    assert ranked[:2] == ["p1", "p2"] and "p3" not in ranked
    sub = to_networkx(graph, sorted(graph.neighbor_ids([alice], hops=2)))
    assert item_node("p2") in sub and item_node("p3") not in sub
