"""The M3KG schema in SQLite: writes, the coverage property, privacy deletes, merges, the networkx view."""

from __future__ import annotations

import json

import pytest

from omnimem.errors import ConfigError, NotFound
from omnimem.graph.store import (
    GRAPH_SCHEMA_VERSION,
    EntityRow,
    GraphStore,
    MentionRow,
    SQLiteGraphStore,
    TripletRow,
    entity_node,
    item_node,
    to_networkx,
)


def _fact(graph: GraphStore, head: str, relation: str, tail: str, item: str, sentence: str = "") -> TripletRow:
    h, t = EntityRow.make(head, "PERSON", [head]), EntityRow.make(tail, "CONCEPT", [tail])
    sentence = sentence or f"{head} {relation} {tail}."
    mentions = [MentionRow(h.id, item, head, 0, len(head), sentence), MentionRow(t.id, item, tail, 10, 10 + len(tail), sentence)]  # fmt: skip
    triplet = TripletRow.make(h.id, relation, t.id, sentence, 0.9, [item])
    graph.write([h, t], mentions, [triplet])
    return triplet


def _dump(store) -> dict[str, list]:
    tables = ["entities", "relations", "triplets", "triplet_sources", "mentions", "entity_merges"]
    return {t: sorted(map(tuple, store.conn.execute(f"SELECT * FROM {t}").fetchall()), key=repr) for t in tables}


def test_tables_live_in_the_record_store_file_with_a_version_row(store, graph):
    names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"items", "entities", "relations", "triplets", "triplet_sources", "mentions", "entity_merges", "entity_splits"} <= names  # fmt: skip
    assert store.conn.execute("SELECT version FROM schema_versions WHERE component = 'graph'").fetchone() == (
        GRAPH_SCHEMA_VERSION,
    )
    SQLiteGraphStore(store)  # reopening is a no-op


def test_a_version_1_file_opens_and_gains_the_split_log(store, graph):
    _fact(graph, "Alice", "adopt", "cat", "item-1")
    store.conn.execute("DROP TABLE entity_splits")
    store.conn.execute("UPDATE schema_versions SET version = 1 WHERE component = 'graph'")
    reopened = SQLiteGraphStore(store)
    assert reopened.splits() == [] and reopened.counts()["triplets"] == 1
    assert store.conn.execute("SELECT version FROM schema_versions WHERE component = 'graph'").fetchone() == (
        GRAPH_SCHEMA_VERSION,
    )


def _as_version_2(store) -> None:
    """The file as graph schema 2 left it: no root column, its index or its trigger."""
    store.conn.execute("DROP TRIGGER entities_root_on_insert")
    store.conn.execute("DROP INDEX entities_root")
    store.conn.execute("ALTER TABLE entities DROP COLUMN root")
    store.conn.execute("UPDATE schema_versions SET version = 2 WHERE component = 'graph'")


def test_a_version_2_file_gains_roots_computed_from_its_merge_pointers(store, graph):
    for name in ("Alice", "Alicia", "Ally", "Bob"):
        graph.write([EntityRow.make(name, "PERSON", [name])])
    a, b, c, d = (EntityRow.make(n, "PERSON").id for n in ("Alice", "Alicia", "Ally", "Bob"))
    graph.merge(b, c, reason="test")
    graph.merge(a, b, reason="test")  # a chain: c -> b -> a
    _as_version_2(store)
    reopened = SQLiteGraphStore(store)
    assert reopened.roots_of([a, b, c, d, "missing"]) == {a: a, b: a, c: a, d: d}
    assert reopened.members([a, d]) == {a: [a, b, c], d: [d]}
    assert store.conn.execute("SELECT version FROM schema_versions WHERE component = 'graph'").fetchone() == (3,)


def test_newer_graph_schema_is_refused(store, graph):
    store.conn.execute("UPDATE schema_versions SET version = 99 WHERE component = 'graph'")
    with pytest.raises(ConfigError, match="upgrade omnimem"):
        SQLiteGraphStore(store)


def test_write_is_idempotent_and_merges_aliases(store, graph):
    _fact(graph, "Alice", "adopt", "cat", "item-1")
    before = _dump(store)
    _fact(graph, "Alice", "adopt", "cat", "item-1")
    assert _dump(store) == before
    alice = EntityRow.make("Alice", "PERSON", ["Alice", "alice"])
    graph.write([alice])
    assert graph.get_entity(alice.id).aliases == ("Alice", "alice")


def test_a_triplet_without_source_is_refused(graph):
    a, b = EntityRow.make("Alice", "PERSON"), EntityRow.make("cat", "CONCEPT")
    with pytest.raises(ConfigError, match="no source item"):
        graph.write([a, b], [], [TripletRow.make(a.id, "adopt", b.id, "Alice adopted a cat.", 0.9, [])])
    with pytest.raises(ConfigError, match="unknown entities"):
        graph.write([], [], [TripletRow.make("nope", "adopt", b.id, "", 0.9, ["item-1"])])
    with pytest.raises(ConfigError, match="unknown entities"):
        graph.write([], [MentionRow("nope", "item-1", "Nope")])
    assert graph.counts()["triplets"] == graph.counts()["mentions"] == 0


def test_check_coverage_lists_triplets_without_sources(store, graph):
    triplet = _fact(graph, "Alice", "adopt", "cat", "item-1")
    assert graph.check_coverage() == []
    store.conn.execute("DELETE FROM triplet_sources")  # a bug elsewhere, simulated
    assert graph.check_coverage() == [triplet.id]


def test_delete_item_links_leaves_no_orphan_and_no_trace(store, graph):
    secret = "Alice was diagnosed with gout."
    kept = _fact(graph, "Alice", "adopt", "cat", "item-1", "Alice adopted a cat.")
    gone = _fact(graph, "Alice", "diagnose with", "gout", "item-2", secret)
    shared = _fact(graph, "Alice", "like", "tea", "item-2", "Alice likes tea, she said.")
    _fact(graph, "Alice", "like", "tea", "item-1", "Alice likes tea.")
    counts = graph.delete_item_links(["item-2"])
    assert counts["triplets"] == 1 and counts["entities"] == 1  # the gout triplet and the "gout" entity
    assert {t.id for t in graph.triplets()} == {kept.id, shared.id}
    assert gone.id not in {t.id for t in graph.triplets()}
    assert graph.check_coverage() == []
    dump = json.dumps(_dump(store), default=str)
    assert "gout" not in dump and "diagnose" not in dump and "she said" not in dump
    assert graph.triplets(entity_ids=[kept.head])[0].sources  # Alice still has evidence
    graph.delete_item_links(["item-1"])
    assert all(not rows for rows in _dump(store).values())


def test_merge_and_unmerge_are_logged_and_reversible(graph):
    _fact(graph, "Barack Obama", "sign", "law", "item-1")
    _fact(graph, "Obama", "visit", "school", "item-2")
    full, short = EntityRow.make("Barack Obama", "PERSON").id, EntityRow.make("Obama", "PERSON").id
    before = graph.counts()["entities"]
    merge = graph.merge(full, short, reason="test", scores={"name": 0.8})
    assert graph.canonical(short) == full
    assert graph.counts()["entities"] == before - 1
    assert "Obama" in graph.get_entity(full).aliases
    assert [(m.kept, m.merged, m.scores) for m in graph.merges()] == [(full, short, {"name": 0.8})]
    assert merge.id == graph.merges()[0].id
    view = to_networkx(graph)
    assert entity_node(short) not in view and view.has_edge(entity_node(full), item_node("item-2"))
    with pytest.raises(ConfigError, match="already"):
        graph.merge(full, short, reason="again")
    graph.unmerge(short)
    assert graph.canonical(short) == short
    assert graph.merges() == [] and graph.merges(include_undone=True)[0].undone_at
    assert graph.counts()["entities"] == before
    with pytest.raises(NotFound):
        graph.unmerge(short)


def test_to_networkx_loads_only_the_requested_subgraph(graph):
    a = _fact(graph, "Alice", "adopt", "cat", "item-1")
    b = _fact(graph, "Bob", "adopt", "dog", "item-2")
    full = to_networkx(graph)
    assert full.number_of_nodes() == 6  # 4 entities + 2 items
    edge = full.edges[entity_node(a.head), entity_node(a.tail)]
    assert edge["kind"] == "triplet" and edge["triplets"] == [a.id] and edge["items"] == ["item-1"]
    assert full.nodes[item_node("item-1")]["kind"] == "item"
    sub = to_networkx(graph, [a.head, a.tail])
    assert set(sub.nodes) == {entity_node(a.head), entity_node(a.tail), item_node("item-1")}
    assert entity_node(b.head) not in sub
    assert set(to_networkx(graph, [a.head], items=False).nodes) == {entity_node(a.head)}


def test_neighbor_ids_and_reads(graph):
    a = _fact(graph, "Alice", "adopt", "cat", "item-1")
    graph.write(
        [EntityRow.make("cat", "CONCEPT"), EntityRow.make("fish", "CONCEPT")],
        [],
        [TripletRow.make(a.tail, "eat", EntityRow.make("fish", "CONCEPT").id, "The cat eats fish.", 0.7, ["item-3"])],
    )
    fish = EntityRow.make("fish", "CONCEPT").id
    assert graph.neighbor_ids([a.head], hops=1) == {a.head, a.tail}
    assert fish in graph.neighbor_ids([a.head], hops=2)
    assert [e.name for e in graph.find_entities("ALICE")] == ["Alice"]
    assert graph.items_with_links(["item-1", "item-3", "nope"]) == {"item-1", "item-3"}
    assert graph.contexts([a.head]) == {a.head: ["Alice adopt cat."]}
    with pytest.raises(NotFound):
        graph.get_entity("missing")
