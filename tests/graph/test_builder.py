"""GraphBuilder: items -> entities, mentions and triplets with sources, in one transaction; idempotent."""

from __future__ import annotations

import pytest

from omnimem.graph.builder import GraphBuilder
from omnimem.graph.resolve import EntityResolver
from omnimem.types import Item

TURNS = [
    ("Carol", "I adopted a puppy last week. My sister lives in Boston."),
    ("Dave", "Barack Obama was born in Hawaii."),
    ("Carol", "Obama moved to Chicago and worked as a lawyer."),
]


def _items():
    return [Item.make(text=text, speaker=speaker, session="s1") for speaker, text in TURNS] + [
        Item.make(modality="image", text="", blob="abc")
    ]


def _dump(store):
    tables = ["entities", "relations", "triplets", "triplet_sources", "mentions", "entity_merges"]
    return {t: sorted(map(tuple, store.conn.execute(f"SELECT * FROM {t}").fetchall()), key=repr) for t in tables}


def test_builder_writes_sourced_rows_and_is_idempotent(store, graph, extractor):
    builder = GraphBuilder(graph, extractor, EntityResolver())
    report = builder.add_items(_items())
    assert report.items == 3 and report.skipped == 1 and report.triplets > 0
    assert graph.check_coverage() == []
    before = _dump(store)
    again = builder.add_items(_items())
    assert again.items == 0 and again.skipped == 4
    forced = builder.add_items(_items(), skip_existing=False)
    assert (forced.entities, forced.mentions, forced.triplets, forced.sources, forced.merges) == (0, 0, 0, 0, 0)
    assert _dump(store) == before


def test_speaker_resolves_first_person(graph, extractor):
    GraphBuilder(graph, extractor).add_items(_items())
    facts = {(graph.get_entity(t.head).name, t.relation, graph.get_entity(t.tail).name) for t in graph.triplets()}
    assert ("Carol", "adopt", "puppy") in facts
    assert ("Carol", "has", "sister") in facts
    assert ("Barack Obama", "born in", "Hawaii") in facts


def test_every_triplet_points_at_the_item_it_came_from(graph, extractor):
    items = _items()
    GraphBuilder(graph, extractor).add_items(items)
    by_id = {i.id: i for i in items}
    for t in graph.triplets():
        assert t.sources
        for source in t.sources:
            assert t.sentence in by_id[source].text


@pytest.mark.data
def test_musique_passages_build_with_full_coverage(graph, extractor, data_dir):
    import json

    corpus = json.loads((data_dir / "musique" / "musique_train_corpus.json").read_text(encoding="utf-8"))[:40]
    items = [Item.make(text=f"{p['title']}. {p['text']}", source=p["title"]) for p in corpus]
    report = GraphBuilder(graph, extractor).add_items(items)
    assert report.items == 40 and report.triplets > 40
    assert graph.check_coverage() == []
    graph.delete_item_links([i.id for i in items])
    assert graph.counts() == {"entities": 0, "triplets": 0, "mentions": 0, "relations": 0, "merges": 0, "splits": 0}


def test_builder_stores_the_names_of_new_named_entities_once(graph, extractor):
    from omnimem.encoders.hashing import HashEncoder

    encoder, calls = HashEncoder(32), []

    def embed(texts):
        calls.append(list(texts))
        return encoder.encode(list(texts))

    builder = GraphBuilder(graph, extractor, embed=embed)
    builder.add_items(_items())
    named = {e.id: e.name for e in graph.entities() if e.type != "CONCEPT"}
    assert len(calls) == 1 and sorted(calls[0]) == sorted(named.values())  # one batch per add, no concept
    stored = graph.embeddings(list(named))
    assert stored.keys() == named.keys()
    for eid, name in named.items():
        assert stored[eid] == pytest.approx(encoder.encode([name])[0])
    builder.add_items(_items(), skip_existing=False)
    assert len(calls) == 1  # every name already has its vector
    full, short = graph.find_entities("Barack Obama")[0].id, graph.find_entities("Obama")[0].id
    graph.merge(full, short, reason="test")
    assert graph.embeddings([full])[full] == pytest.approx(stored[full])  # the root keeps its own
