"""Conformance suite for GraphStore backends: SQLite (embedded) and PostgreSQL (server).

Every test runs on both and expects the same answers: writes, the coverage property, privacy
deletes, merges, senses, reads and the semantic memory's triplet times. SQLite specifics (its schema
versions) stay in ``tests/graph/test_graph_store.py``; PostgreSQL's concurrency in ``test_pg_graph.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from omnimem.encoders.hashing import HashEncoder
from omnimem.errors import ConfigError, NotFound
from omnimem.graph.resolve import EntityResolver
from omnimem.graph.store import (
    EntityRow,
    GraphStore,
    MentionRow,
    SQLiteGraphStore,
    TripletRow,
    entity_id,
    entity_node,
    item_node,
    to_networkx,
)
from omnimem.stores.sqlite import SQLiteRecordStore
from omnimem.types import Item

GRAPH_TABLES = ["entities", "relations", "triplets", "triplet_sources", "mentions", "entity_merges", "entity_splits"]


@pytest.fixture(params=["sqlite", "postgres"])
def graph(request, tmp_path) -> GraphStore:
    if request.param == "sqlite":
        records = SQLiteRecordStore(tmp_path / "m.db")
        store: GraphStore = SQLiteGraphStore(records)
    else:
        from omnimem.stores.pg import PgDatabase
        from omnimem.stores.pg_graph import PostgresGraphStore
        from omnimem.stores.pg_records import PostgresRecordStore

        records = PostgresRecordStore(PgDatabase(request.getfixturevalue("pg_url")))
        store = PostgresGraphStore(records)
    yield store
    records.close()


# -- backend-neutral access to the tables, for checks the protocol has no read for -----------------
def _sql(graph: Any) -> tuple[Callable[[str], list[tuple]], Callable[[str], None]]:
    """``(read, execute)`` of raw SQL on the graph's database."""
    db = getattr(graph.store, "db", None)
    if db is not None and hasattr(db, "run"):  # PgDatabase
        return (lambda sql: db.read(sql)), (lambda sql: db.run(lambda conn: conn.execute(sql)))
    return (lambda sql: graph.store.read(sql)), (lambda sql: graph.store.conn.execute(sql))


def _dump(graph: Any) -> dict[str, list]:
    read, _ = _sql(graph)
    return {t: sorted(map(tuple, read(f"SELECT * FROM {t}")), key=repr) for t in GRAPH_TABLES}


def _fact(graph: GraphStore, head: str, relation: str, tail: str, item: str, sentence: str = "") -> TripletRow:
    h, t = EntityRow.make(head, "PERSON", [head]), EntityRow.make(tail, "CONCEPT", [tail])
    sentence = sentence or f"{head} {relation} {tail}."
    mentions = [MentionRow(h.id, item, head, 0, len(head), sentence), MentionRow(t.id, item, tail, 10, 10 + len(tail), sentence)]  # fmt: skip
    triplet = TripletRow.make(h.id, relation, t.id, sentence, 0.9, [item])
    graph.write([h, t], mentions, [triplet])
    return triplet


# -- writes and the coverage property --------------------------------------------------------------
def test_write_is_idempotent_and_merges_aliases(graph):
    first = _fact(graph, "Alice", "adopt", "cat", "item-1")
    assert graph.counts() == {"entities": 2, "triplets": 1, "mentions": 2, "relations": 1, "merges": 0, "splits": 0}
    before = _dump(graph)
    h, t = EntityRow.make("Alice", "PERSON", ["Alice"]), EntityRow.make("cat", "CONCEPT", ["cat"])
    again = graph.write([h, t], [MentionRow(h.id, "item-1", "Alice", 0, 5, "Alice adopt cat.")], [first])
    assert again == {"entities": 0, "mentions": 0, "triplets": 0, "sources": 0}
    assert _dump(graph) == before
    alice = EntityRow.make("Alice", "PERSON", ["Alice", "alice"])
    graph.write([alice, EntityRow.make("Alice", "PERSON", ["ALICE", "alice"])])  # repeats in one call merge too
    assert graph.get_entity(alice.id).aliases == ("Alice", "alice", "ALICE")


def test_write_counts_new_rows_and_keeps_the_highest_confidence(graph):
    a, b = EntityRow.make("Alice", "PERSON"), EntityRow.make("cat", "CONCEPT")
    low = TripletRow.make(a.id, "adopt", b.id, "Alice adopted a cat.", 0.4, ["item-1"])
    counts = graph.write([a, b], [MentionRow(a.id, "item-1", "Alice", 0, 5)] * 2, [low, low])
    assert counts == {"entities": 2, "mentions": 1, "triplets": 1, "sources": 1}
    high = TripletRow.make(a.id, "adopt", b.id, "She adopted a cat.", 0.8, ["item-2"])
    assert graph.write([], [], [high]) == {"entities": 0, "mentions": 0, "triplets": 0, "sources": 1}
    [row] = graph.triplets()
    assert row.confidence == pytest.approx(0.8) and row.sentence == "Alice adopted a cat."
    assert row.sources == ("item-1", "item-2") and row.recorded_at
    graph.write([], [], [low])
    assert graph.triplets()[0].confidence == pytest.approx(0.8)


def test_a_triplet_without_source_is_refused(graph):
    a, b = EntityRow.make("Alice", "PERSON"), EntityRow.make("cat", "CONCEPT")
    with pytest.raises(ConfigError, match="no source item"):
        graph.write([a, b], [], [TripletRow.make(a.id, "adopt", b.id, "Alice adopted a cat.", 0.9, [])])
    with pytest.raises(ConfigError, match="unknown entities"):
        graph.write([], [], [TripletRow.make("nope", "adopt", b.id, "", 0.9, ["item-1"])])
    with pytest.raises(ConfigError, match="unknown entities"):
        graph.write([a], [MentionRow("nope", "item-1", "Nope")])  # the whole call is refused: no Alice either
    with pytest.raises(ConfigError, match="name and a type"):
        graph.write([EntityRow("x", "", "PERSON")])
    assert graph.counts()["triplets"] == graph.counts()["mentions"] == graph.counts()["entities"] == 0


def test_check_coverage_lists_triplets_without_sources(graph):
    triplet = _fact(graph, "Alice", "adopt", "cat", "item-1")
    assert graph.check_coverage() == []
    _, execute = _sql(graph)
    execute("DELETE FROM triplet_sources")  # a bug elsewhere, simulated
    assert graph.check_coverage() == [triplet.id]


def test_embeddings_and_descriptions(graph):
    a, b = EntityRow.make("Alice", "PERSON"), EntityRow.make("cat", "CONCEPT", description="a small pet")
    graph.write([a, b])
    vectors = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    graph.set_embedding([a.id, b.id], vectors)
    got = graph.embeddings([b.id, a.id, "missing"])
    assert set(got) == {a.id, b.id} and got[a.id].dtype == np.float32
    np.testing.assert_array_equal(got[b.id], vectors[1])
    with pytest.raises(ConfigError):
        graph.set_embedding([a.id], vectors)
    assert graph.set_descriptions({a.id: "a person", b.id: "a big cat", "missing": "x"}) == 1
    assert graph.get_entity(b.id).description == "a small pet"
    assert graph.set_descriptions({b.id: "a big cat"}, overwrite=True) == 1
    assert graph.get_entity(b.id).description == "a big cat"
    graph.write([EntityRow.make("Alice", "PERSON", description="later")])
    assert graph.get_entity(a.id).description == "a person"  # a write never replaces a description
    assert graph.stats() == {"types": {"CONCEPT": 1, "PERSON": 1}, "described": 2}


# -- reads -----------------------------------------------------------------------------------------
def test_neighbor_ids_and_reads(graph):
    a = _fact(graph, "Alice", "adopt", "cat", "item-1")
    fish = EntityRow.make("fish", "CONCEPT")
    graph.write(
        [EntityRow.make("cat", "CONCEPT"), fish],
        [],
        [TripletRow.make(a.tail, "eat", fish.id, "The cat eats fish.", 0.7, ["item-3"])],
    )
    assert graph.neighbor_ids([a.head], hops=1) == {a.head, a.tail}
    assert graph.neighbor_ids([a.head], hops=2) == {a.head, a.tail, fish.id}
    assert graph.neighbor_ids([a.head], hops=0) == {a.head}
    with pytest.raises(ConfigError):
        graph.neighbor_ids([a.head], hops=-1)
    assert [e.name for e in graph.find_entities("ALICE")] == ["Alice"]
    assert [e.name for e in graph.entities()] == ["Alice", "cat", "fish"]  # insertion order
    assert graph.items_with_links(["item-1", "item-3", "nope"]) == {"item-1", "item-3"}
    assert graph.contexts([a.head]) == {a.head: ["Alice adopt cat."]}
    assert graph.items_of([a.tail]) == {a.tail: {"item-1"}}
    assert graph.mention_counts([a.head, fish.id]) == {a.head: 1}
    assert [t.relation for t in graph.triplets(entity_ids=[a.tail])] == ["eat", "adopt"]  # as head, then as tail
    assert [t.relation for t in graph.triplets(item_ids=["item-3"])] == ["eat"]
    assert graph.sources([a.id]) == {a.id: ["item-1"]}
    assert {(m.entity_id, m.item_id) for m in graph.mentions(item_ids=["item-1"])} == {(a.head, "item-1"), (a.tail, "item-1")}  # fmt: skip
    assert graph.counts() == {"entities": 3, "triplets": 2, "mentions": 2, "relations": 2, "merges": 0, "splits": 0}
    assert graph.stats() == {"types": {"CONCEPT": 2, "PERSON": 1}, "described": 0}
    with pytest.raises(NotFound):
        graph.get_entity("missing")


def test_to_networkx_loads_only_the_requested_subgraph(graph):
    a = _fact(graph, "Alice", "adopt", "cat", "item-1")
    b = _fact(graph, "Bob", "adopt", "dog", "item-2")
    full = to_networkx(graph)
    assert full.number_of_nodes() == 6  # 4 entities + 2 items
    edge = full.edges[entity_node(a.head), entity_node(a.tail)]
    assert edge["kind"] == "triplet" and edge["triplets"] == [a.id] and edge["items"] == ["item-1"]
    sub = to_networkx(graph, [a.head, a.tail])
    assert set(sub.nodes) == {entity_node(a.head), entity_node(a.tail), item_node("item-1")}
    assert entity_node(b.head) not in sub


# -- the semantic memory's triplet times -----------------------------------------------------------
def test_active_triplets_retire_collapse_and_head_of(graph):
    lives = _fact(graph, "Alice", "live in", "Paris", "item-1")
    moved = _fact(graph, "Alice", "live in", "Berlin", "item-2")
    pet = _fact(graph, "Alice", "adopt", "cat", "item-3")
    assert [r[0] for r in graph.active_triplets()] == [lives.id, moved.id, pet.id]
    assert [r[0] for r in graph.active_triplets(heads=[lives.head], relations=["live in"], exclude=moved.id)] == [lives.id]  # fmt: skip
    assert graph.active_triplets(heads=[], relations=["live in"]) == []
    row = graph.active_triplets(relations=["adopt"])[0]
    assert row[:4] == (pet.id, pet.head, "adopt", pet.tail) and row[4]
    assert graph.head_of(lives.id) == lives.head and graph.head_of("missing") is None
    assert graph.retire(lives.id, "2024-01-01T00:00:00+00:00", valid_to="2023-12-01") is True
    assert graph.retire(lives.id, "2024-02-01T00:00:00+00:00") is False  # already retired
    [old] = [t for t in graph.triplets() if t.id == lives.id]
    assert (old.valid_to, old.retired_at) == ("2023-12-01", "2024-01-01T00:00:00+00:00")
    assert [r[0] for r in graph.active_triplets()] == [moved.id, pet.id]
    assert graph.collapse([(moved.id, pet.id), (moved.id, "missing")]) == 1
    assert graph.sources([moved.id]) == {moved.id: ["item-2", "item-3"]}
    assert graph.head_of(pet.id) is None and graph.check_coverage() == []


# -- privacy delete --------------------------------------------------------------------------------
def test_delete_item_links_leaves_no_orphan_and_no_trace(graph):
    secret = "Alice was diagnosed with gout."
    kept = _fact(graph, "Alice", "adopt", "cat", "item-1", "Alice adopted a cat.")
    gone = _fact(graph, "Alice", "diagnose with", "gout", "item-2", secret)
    shared = _fact(graph, "Alice", "like", "tea", "item-2", "Alice likes tea, she said.")
    _fact(graph, "Alice", "like", "tea", "item-1", "Alice likes tea.")
    counts = graph.delete_item_links(["item-2"])
    assert counts == {"mentions": 3, "sources": 2, "triplets": 1, "entities": 1, "relations": 1}
    assert {t.id for t in graph.triplets()} == {kept.id, shared.id}
    assert gone.id not in {t.id for t in graph.triplets()}
    assert [t.sentence for t in graph.triplets() if t.id == shared.id] == ["Alice likes tea."]
    assert graph.check_coverage() == []
    dump = json.dumps(_dump(graph), default=str)
    assert "gout" not in dump and "diagnose" not in dump and "she said" not in dump
    assert graph.triplets(entity_ids=[kept.head])[0].sources  # Alice still has evidence
    graph.delete_item_links(["item-1"])
    assert all(not rows for rows in _dump(graph).values())


def test_orphan_items_are_graph_links_to_deleted_items(graph):
    records = graph.store
    one, two = Item.make(text="Alice adopted a cat."), Item.make(text="Bob adopted a dog.")
    records.add([one, two])
    _fact(graph, "Alice", "adopt", "cat", one.id)
    _fact(graph, "Bob", "adopt", "dog", two.id)
    _fact(graph, "Bob", "like", "tea", "never-stored")
    assert graph.orphan_items() == ["never-stored"]
    records.delete([two.id])
    assert graph.orphan_items() == sorted([two.id, "never-stored"])
    graph.delete_item_links([two.id, "never-stored"])
    assert graph.orphan_items() == []
    assert {e.name for e in graph.entities()} == {"Alice", "cat"}
    assert graph.items_with_links([one.id, two.id]) == {one.id}


def test_an_item_and_its_graph_links_commit_or_roll_back_together(graph):
    records = graph.store
    kept, lost = Item.make(text="Alice adopted a cat."), Item.make(text="Alice was diagnosed with gout.")
    with records.transaction():
        records.add([kept])
        _fact(graph, "Alice", "adopt", "cat", kept.id)
    with pytest.raises(RuntimeError), records.transaction():
        records.add([lost])
        _fact(graph, "Alice", "diagnose with", "gout", lost.id)
        raise RuntimeError("the write fails after the graph rows")
    assert records.get([kept.id, lost.id])[1] is None
    assert graph.items_with_links([kept.id, lost.id]) == {kept.id}
    assert graph.counts()["triplets"] == 1 and graph.find_entities("gout") == []


def test_a_deleted_member_takes_its_merge_log_and_an_empty_root_with_it(graph):
    _fact(graph, "Barack Obama", "sign", "law", "item-1")
    _fact(graph, "Obama", "visit", "school", "item-2")
    full, short = EntityRow.make("Barack Obama", "PERSON").id, EntityRow.make("Obama", "PERSON").id
    graph.merge(full, short, reason="test")
    graph.delete_item_links(["item-2"])
    assert graph.merges(include_undone=True) == [] and graph.canonical(short) == short
    assert {e.name for e in graph.entities()} == {"Barack Obama", "law"}
    graph.delete_item_links(["item-1"])
    assert all(not rows for rows in _dump(graph).values())


# -- entity resolution -----------------------------------------------------------------------------
def test_merge_and_unmerge_are_logged_and_reversible(graph):
    _fact(graph, "Barack Obama", "sign", "law", "item-1")
    _fact(graph, "Obama", "visit", "school", "item-2")
    full, short = EntityRow.make("Barack Obama", "PERSON").id, EntityRow.make("Obama", "PERSON").id
    before = graph.counts()["entities"]
    merge = graph.merge(full, short, reason="test", scores={"name": 0.8})
    assert graph.canonical(short) == full and graph.roots() == {short: full}
    assert graph.members([full]) == {full: [full, short]}
    assert graph.counts()["entities"] == before - 1 and graph.counts()["merges"] == 1
    assert "Obama" in graph.get_entity(full).aliases
    assert graph.get_entity(short).merged_into == full
    assert short not in {e.id for e in graph.entities()}
    assert short in {e.id for e in graph.entities(include_merged=True)}
    assert [(m.kept, m.merged, m.scores, m.reason) for m in graph.merges()] == [(full, short, {"name": 0.8}, "test")]
    assert merge.id == graph.merges()[0].id and merge.created_at
    assert graph.items_of([full]) == {full: {"item-1", "item-2"}}
    assert graph.neighbor_ids([short]) == {full, EntityRow.make("law", "CONCEPT").id, EntityRow.make("school", "CONCEPT").id}  # fmt: skip
    view = to_networkx(graph)
    assert entity_node(short) not in view and view.has_edge(entity_node(full), item_node("item-2"))
    with pytest.raises(ConfigError, match="already"):
        graph.merge(full, short, reason="again")
    with pytest.raises(ConfigError, match="already"):
        graph.merge(short, full, reason="a cycle")
    with pytest.raises(NotFound):
        graph.merge(full, "missing", reason="test")
    graph.unmerge(short)
    assert graph.canonical(short) == short
    assert graph.merges() == [] and graph.merges(include_undone=True)[0].undone_at
    assert graph.counts()["entities"] == before
    with pytest.raises(NotFound):
        graph.unmerge(short)


def test_a_merge_of_a_member_moves_its_root(graph):
    for name in ("Alice", "Alicia", "Ally"):
        graph.write([EntityRow.make(name, "PERSON", [name])])
    a, b, c = (entity_id(n, "PERSON") for n in ("Alice", "Alicia", "Ally"))
    graph.merge(b, c, reason="test")  # c -> b
    m = graph.merge(a, c, reason="test")  # c's root b -> a
    assert (m.kept, m.merged) == (a, b)
    assert graph.roots() == {b: a, c: a}
    assert set(graph.get_entity(a).aliases) == {"Alice", "Alicia", "Ally"}
    graph.unmerge(b)  # b and its own member c are apart from a again
    assert graph.roots() == {c: b}


def _entity_with_contexts(graph: GraphStore, eid: str, name: str, type_: str, sentences: list[str]) -> None:
    row = EntityRow(eid, name, type_, (name,))
    graph.write([row], [MentionRow(eid, f"{eid}-{k}", name, 0, len(name), s) for k, s in enumerate(sentences)])


def test_resolution_runs_the_same_on_every_backend(graph):
    def embed(texts):
        return HashEncoder(256).encode(list(texts))

    obama = [
        "Barack Obama served as president of the United States and signed the health care law.",
        "Obama served two terms as president of the United States and signed the health care law.",
    ]
    _entity_with_contexts(graph, "a", "Barack Obama", "PERSON", obama[:1])
    _entity_with_contexts(graph, "b", "Obama", "PERSON", obama[1:])
    _entity_with_contexts(graph, "c", "Jordan", "PERSON", ["Jordan scored 40 points for the Chicago Bulls."])
    _entity_with_contexts(graph, "d", "Jordan", "GPE", ["Jordan borders Israel, Syria and Iraq."])
    resolver = EntityResolver(embed)
    assert resolver.resolve(graph, ["c"]).merges == []
    resolution = resolver.resolve(graph)
    assert [(m.kept, m.merged) for m in resolution.merges] == [("a", "b")]
    assert {frozenset(r[:2]): r[2] for r in resolution.rejected}[frozenset(("c", "d"))] == "types differ"
    assert resolver.resolve(graph).merges == []
    graph.unmerge("b")
    assert graph.canonical("b") == "b" and graph.merges() == []


# -- senses ----------------------------------------------------------------------------------------
JORDAN = entity_id("Jordan", "PERSON")


def _jordan_graph(graph: GraphStore) -> dict[str, TripletRow]:
    """Jordan in four items: a player in 1-2 (won title, play for Bulls), a neighbour in 3-4 (bake pie)."""
    jordan = EntityRow.make("Jordan", "PERSON", ["Jordan"])
    tails = {k: EntityRow.make(k, "CONCEPT", [k]) for k in ("title", "Bulls", "pie")}
    facts = {
        "item-1": ("win", "title", "Jordan won the title."),
        "item-2": ("play for", "Bulls", "Jordan plays for the Bulls."),
        "item-3": ("bake", "pie", "Jordan baked a pie."),
        "item-4": ("bake", "pie", "jordan bakes a pie every Sunday."),
    }
    mentions, triplets = [], {}
    for item, (relation, tail, sentence) in facts.items():
        mentions.append(MentionRow(jordan.id, item, sentence.split()[0], 0, 6, sentence))
        mentions.append(MentionRow(tails[tail].id, item, tail, 20, 20 + len(tail), sentence))
        triplets[item] = TripletRow.make(jordan.id, relation, tails[tail].id, sentence, 0.9, [item])
    graph.write([jordan, *tails.values()], mentions, list(triplets.values()))
    return triplets


def _state(graph: GraphStore) -> tuple[set, set]:
    roots = graph.roots()
    mentions = {(roots.get(m.entity_id, m.entity_id), m.item_id, m.start, m.surface) for m in graph.mentions()}
    triplets = {
        (roots.get(t.head, t.head), t.relation, roots.get(t.tail, t.tail), tuple(sorted(t.sources)), t.sentence)
        for t in graph.triplets()
    }
    return mentions, triplets


def test_split_moves_mentions_and_triplets_and_unsplit_restores_them(graph):
    _jordan_graph(graph)
    before = _state(graph)
    split = graph.split(JORDAN, ["item-3", "item-4", "item-9"], reason="contexts differ", scores={"context": 0.1})
    assert graph.splits() == [split] and split.scores == {"context": 0.1}
    assert graph.senses() == {JORDAN: [JORDAN, split.sense]}
    assert graph.counts()["splits"] == 1
    sense = graph.get_entity(split.sense)
    assert (sense.name, sense.type, sense.aliases) == ("Jordan", "PERSON", ("Jordan", "jordan"))
    assert graph.get_entity(JORDAN).aliases == ("Jordan",)
    assert {m.item_id for m in graph.mentions(entity_ids=[split.sense])} == {"item-3", "item-4"}
    assert {m.item_id for m in graph.mentions(entity_ids=[JORDAN])} == {"item-1", "item-2"}
    [baked] = graph.triplets(entity_ids=[split.sense])
    assert baked.relation == "bake" and baked.sources == ("item-3", "item-4") and baked.sentence == "Jordan baked a pie."  # fmt: skip
    assert {t.relation for t in graph.triplets(entity_ids=[JORDAN])} == {"win", "play for"}
    assert graph.check_coverage() == []
    with pytest.raises(ConfigError, match="nothing to split"):
        graph.split(JORDAN, ["item-3"], reason="again")  # its mentions there moved already
    assert len(graph.splits()) == 1

    graph.unsplit(split.sense)
    assert _state(graph) == before
    assert graph.canonical(split.sense) == JORDAN
    assert graph.merges()[-1].reason == "undo split"
    assert graph.splits() == [] and graph.splits(include_undone=True)[0].undone_at is not None
    assert graph.senses() == {} and graph.check_coverage() == []
    with pytest.raises(NotFound):
        graph.unsplit(split.sense)
    with pytest.raises(NotFound):
        graph.split("missing", ["item-1"], reason="test")


def test_a_second_split_makes_a_second_sense(graph):
    _jordan_graph(graph)
    first = graph.split(JORDAN, ["item-3", "item-4"], reason="test")
    second = graph.split(JORDAN, ["item-2"], reason="test")
    assert first.sense != second.sense and second.id > first.id
    assert graph.senses() == {JORDAN: [JORDAN, first.sense, second.sense]}
    assert {m.item_id for m in graph.mentions(entity_ids=[JORDAN])} == {"item-1"}


def test_privacy_delete_removes_a_sense_and_its_log(graph):
    _jordan_graph(graph)
    split = graph.split(JORDAN, ["item-3", "item-4"], reason="test")
    graph.delete_item_links(["item-3", "item-4"])
    assert graph.splits(include_undone=True) == []
    assert {e.id for e in graph.find_entities("Jordan")} == {JORDAN}
    assert split.sense not in {e.id for e in graph.entities(include_merged=True)}
    assert graph.check_coverage() == []
    assert "pie" not in json.dumps(_dump(graph), default=str)


# -- maintained roots: what each entity resolves to, kept by every move of a pointer -----------------
def _check_roots(graph: GraphStore) -> dict[str, str]:
    """``roots_of``, ``roots``, ``canonical`` and ``members`` agree, for every entity, with the roots
    computed from scratch over the ``merged_into`` pointers; returns those roots."""
    read, _ = _sql(graph)
    pointer = dict(read("SELECT id, merged_into FROM entities"))
    expected = dict.fromkeys(pointer)
    for eid in pointer:
        x = eid
        while pointer.get(x) is not None:  # no cycle: merge() refuses one
            x = pointer[x]
        expected[eid] = x
    assert graph.roots_of([*pointer, "missing"]) == expected
    assert graph.roots() == {e: r for e, r in expected.items() if pointer[e] is not None}
    assert {e: graph.canonical(e) for e in pointer} == expected
    group = {e: {x for x, r in expected.items() if r == e} or {e} for e in pointer}  # a merged id: only itself
    assert {r: set(ms) for r, ms in graph.members([*pointer]).items()} == group
    rows = {e.id: e for e in graph.entities(list(pointer), include_merged=True)}
    assert {e: rows[e].merged_into or e for e in pointer} == expected
    return expected


def _before_roots(graph: GraphStore) -> GraphStore:
    """The tables as the schema before roots left them (no column, index or trigger), reopened."""
    _, execute = _sql(graph)
    if isinstance(graph, SQLiteGraphStore):
        downgrade = ["DROP TRIGGER entities_root_on_insert", "DROP INDEX entities_root", "ALTER TABLE entities DROP COLUMN root", "UPDATE schema_versions SET version = 2 WHERE component = 'graph'"]  # fmt: skip
    else:
        downgrade = [
            "DROP TRIGGER entities_root_before ON entities", "DROP TRIGGER entities_root_after ON entities",
            "DROP FUNCTION entities_root_before_insert", "DROP FUNCTION entities_root_after_insert",
            "ALTER TABLE entities DROP COLUMN root", "UPDATE schema_versions SET version = 1 WHERE component = 'graph'",
        ]  # fmt: skip
    for sql in downgrade:
        execute(sql)
    return type(graph)(graph.store)


def test_an_older_schema_gains_roots_computed_from_its_pointers(graph):
    names = ("Alice", "Alicia", "Ally", "Bob")
    for name in names:
        graph.write([EntityRow.make(name, "PERSON", [name])])
    a, b, c, d = (entity_id(n, "PERSON") for n in names)
    graph.merge(b, c, reason="test")
    graph.merge(a, b, reason="test")  # c -> b -> a
    graph = _before_roots(graph)
    assert _check_roots(graph) == {a: a, b: a, c: a, d: d}
    graph.unmerge(b)  # kept from then on
    assert _check_roots(graph) == {a: a, b: b, c: b, d: d}


def test_rows_copied_without_roots_resolve_whatever_the_order(graph):
    """A memory copied table by table (``omnimem migrate``) inserts entities without their root: each
    takes the root its chain leads to, whichever row of the chain comes first."""
    _, execute = _sql(graph)
    for eid, parent in [("c", "b"), ("a", None), ("d", "c"), ("b", "a"), ("e", None)]:  # d -> c -> b -> a; e
        into = f"'{parent}'" if parent else "NULL"
        execute(f"INSERT INTO entities (id, name, key, type, merged_into, created_at) VALUES ('{eid}', '{eid}', '{eid}', 'PERSON', {into}, '')")  # fmt: skip
    assert _check_roots(graph) == {"a": "a", "b": "a", "c": "a", "d": "a", "e": "e"}


def test_roots_follow_merges_chained_merges_and_unmerges(graph):
    names = ("Alice", "Alicia", "Ally", "Bob", "Bobby", "Rob")
    for name in names:
        graph.write([EntityRow.make(name, "PERSON", [name])])
    a, b, c, d, e, f = (entity_id(n, "PERSON") for n in names)
    assert _check_roots(graph) == {x: x for x in (a, b, c, d, e, f)}
    graph.merge(b, c, reason="test")  # c -> b
    assert _check_roots(graph)[c] == b
    graph.merge(a, c, reason="test")  # c's root b -> a: the chain c -> b -> a
    assert _check_roots(graph)[c] == a
    graph.merge(e, f, reason="test")
    graph.merge(d, e, reason="test")  # f -> e -> d
    graph.merge(f, b, reason="test")  # b's root a -> f's root d: both groups are one
    roots = _check_roots(graph)
    assert {x for x, r in roots.items() if r == d} == {a, b, c, d, e, f}
    assert set(graph.get_entity(d).aliases) == set(names)
    graph.unmerge(b)  # b and c (which resolves through b) leave d; a stays: it is merged into d
    roots = _check_roots(graph)
    assert roots[b] == roots[c] == b and roots[a] == d
    graph.unmerge(e)  # e and f leave d: f -> e
    assert _check_roots(graph)[f] == e
    graph.merge(c, e, reason="test")  # a merge by a member id goes to its root
    assert _check_roots(graph)[f] == b


def test_roots_follow_splits_and_unsplits(graph):
    _jordan_graph(graph)
    mj = EntityRow.make("MJ", "PERSON", ["MJ"])
    graph.write([mj], [MentionRow(mj.id, "item-5", "MJ", 0, 2, "MJ dunked.")])
    graph.merge(JORDAN, mj.id, reason="test")  # MJ -> Jordan
    split = graph.split(JORDAN, ["item-3", "item-4"], reason="test")
    roots = _check_roots(graph)
    assert roots[split.sense] == split.sense and roots[mj.id] == JORDAN  # a new sense is its own root
    baker = EntityRow.make("the baker", "PERSON", ["the baker"])
    graph.write([baker], [MentionRow(baker.id, "item-6", "the baker", 0, 9, "the baker came.")])
    graph.merge(split.sense, baker.id, reason="test")  # the baker -> the sense
    mike = EntityRow.make("Michael", "PERSON", ["Michael"])
    graph.write([mike], [MentionRow(mike.id, "item-7", "Michael", 0, 7, "Michael came.")])
    graph.merge(mike.id, JORDAN, reason="test")  # Jordan (and MJ) -> Michael
    assert _check_roots(graph)[baker.id] == split.sense
    graph.unsplit(split.sense)  # the sense and what resolved to it now resolve to Jordan's root
    roots = _check_roots(graph)
    assert roots[split.sense] == roots[baker.id] == roots[JORDAN] == roots[mj.id] == mike.id
    assert graph.check_coverage() == []


def test_roots_after_a_privacy_delete_in_the_middle_of_a_merge_chain(graph):
    _fact(graph, "Ann", "own", "boat", "item-1")
    _fact(graph, "Annie", "sail", "boat", "item-2")
    _fact(graph, "Anna", "paint", "boat", "item-3")
    a, b, c = (entity_id(n, "PERSON") for n in ("Ann", "Annie", "Anna"))
    graph.merge(b, a, reason="test")
    graph.merge(c, b, reason="test")  # a -> b -> c
    graph.delete_item_links(["item-2"])  # the middle loses its evidence, but a still resolves through it
    roots = _check_roots(graph)
    assert roots[a] == roots[b] == c and {m.item_id for m in graph.mentions(entity_ids=[b])} == set()
    graph.delete_item_links(["item-1"])  # a goes, then b with nothing left pointing at it
    roots = _check_roots(graph)
    assert a not in roots and b not in roots and roots[c] == c
    assert graph.members([c]) == {c: [c]} and graph.merges(include_undone=True) == []
    assert graph.get_entity(c).aliases == ("Anna",)


def test_roots_after_a_privacy_delete_of_a_chain_at_once(graph):
    for n, name in enumerate(("Ann", "Annie", "Anna", "Anne")):
        _fact(graph, name, "own", "boat", f"item-{n}")
    a, b, c, d = (entity_id(n, "PERSON") for n in ("Ann", "Annie", "Anna", "Anne"))
    graph.merge(b, a, reason="test")
    graph.merge(c, b, reason="test")
    graph.merge(d, c, reason="test")  # a -> b -> c -> d
    graph.delete_item_links(["item-1", "item-2"])  # the two in the middle: both still carry a's chain
    assert _check_roots(graph)[a] == d
    graph.delete_item_links(["item-0", "item-3"])
    assert all(not rows for rows in _dump(graph).values())


# -- the graph layer over each backend: extraction, senses, resolution -------------------------------
PLAYER = [
    "Jordan won six NBA championships with the Bulls and was the league's best scorer.",
    "In the playoffs Jordan made the winning shot, and the Bulls beat the Jazz by two points.",
    "Jordan returned to the Bulls and led the team to another NBA title with 45 points in the final game.",
]
NEIGHBOUR = [
    "Jordan gave us a basket of fresh tomatoes from the garden and a loaf of homemade bread.",
    "On Sunday morning Jordan was watering the roses in the garden while the bread was baking.",
    "Jordan baked a cherry pie for the street party and brought flowers from her garden.",
]


@pytest.fixture(scope="module")
def extractor():
    from omnimem.graph.extract import SpacyExtractor

    return SpacyExtractor.from_pretrained()


def test_built_graphs_split_and_unsplit_alike(graph, extractor):
    from omnimem.graph.builder import GraphBuilder
    from omnimem.graph.senses import SenseSplitter

    GraphBuilder(graph, extractor).add_items([Item.make(text=t) for t in PLAYER + NEIGHBOUR])
    before = _state(graph)
    [split] = SenseSplitter().split(graph)
    assert split.entity == JORDAN and split.reason == "contexts differ"
    assert graph.senses() == {JORDAN: [JORDAN, split.sense]} and graph.check_coverage() == []
    moved = {m.item_id for m in graph.mentions(entity_ids=[split.sense])}
    assert moved in ({Item.make(text=t).id for t in PLAYER}, {Item.make(text=t).id for t in NEIGHBOUR})
    assert SenseSplitter().split(graph) == []  # idempotent
    assert EntityResolver().resolve(graph).merges == []  # a split is not merged back
    graph.unsplit(split.sense)
    assert _state(graph) == before and graph.check_coverage() == []
