"""Entity resolution: spelling and modifier variants merge, homonyms with different contexts stay apart."""

from __future__ import annotations

import random
import string

import pytest

from omnimem.encoders.hashing import HashEncoder
from omnimem.errors import ConfigError
from omnimem.graph.builder import GraphBuilder
from omnimem.graph.resolve import (
    EntityResolver,
    ResolverConfig,
    candidate_pairs,
    compatible_types,
    mask_names,
    name_similarity,
)
from omnimem.graph.store import EntityRow, GraphStore, MentionRow
from omnimem.types import Item

OBAMA = [
    "Barack Obama served as president of the United States and signed the health care law.",
    "Obama served two terms as president of the United States and signed the health care law.",
    "As president of the United States, barack obama signed the health care law.",
]
JORDAN_PLAYER = [
    "Jordan scored 40 points for the Chicago Bulls in the basketball final.",
    "Jordan won six NBA championships with the Bulls and is the best basketball player.",
]
JORDAN_COUNTRY = [
    "Jordan borders Israel, Syria, Iraq and Saudi Arabia in the Middle East.",
    "Amman is the capital and largest city of Jordan, a kingdom in the Middle East.",
]


def hash_embed(texts):
    return HashEncoder(256).encode(list(texts))


def _entity_with_contexts(graph: GraphStore, eid: str, name: str, type_: str, sentences: list[str]) -> None:
    row = EntityRow(eid, name, type_, (name,))
    graph.write([row], [MentionRow(eid, f"{eid}-{k}", name, 0, len(name), s) for k, s in enumerate(sentences)])


# -- pure functions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [
        ("Barack Obama", "barack obama", 1.0, 1.0),
        ("Barack Obama", "Barak Obama", 0.85, 1.0),
        ("Barack Obama", "Obama", 0.0, 0.5),  # without the surname rule
        ("129th meridian", "138th meridian", 0.0, 0.0),  # numbers differ
        ("painter", "printer", 0.0, 0.5),
        ("Jordan", "Jordan", 1.0, 1.0),
    ],
)
def test_name_similarity(a, b, low, high):
    assert low <= name_similarity(a, b) <= high


def test_surname_rule():
    assert name_similarity("Barack Obama", "Obama", subset=True) == pytest.approx(0.8)
    assert name_similarity("Barack Obama", "Barack", subset=True) < 0.8  # a first name is not a surname


def test_type_compatibility():
    assert compatible_types("PERSON", "ORG")  # the small model swaps these
    assert compatible_types("CONCEPT", "GPE")
    assert not compatible_types("PERSON", "GPE")


def test_mask_names_removes_every_spelling():
    assert mask_names(["Jordan scored. JORDAN won."], ["Jordan"]) == "scored. won."


def test_blocking_is_far_from_all_pairs_and_keeps_close_names():
    rng = random.Random(0)
    names = ["".join(rng.choices(string.ascii_lowercase, k=10)) for _ in range(3000)]
    names += ["barack obama", "barak obama", "barack obamma"]
    pairs = candidate_pairs(names, threshold=0.6)
    n = len(names)
    assert len(pairs) < n * (n - 1) / 2 / 1000
    assert {(n - 3, n - 2), (n - 3, n - 1)} <= pairs
    assert candidate_pairs(names, threshold=0.6, probe=[n - 1]) <= pairs


def test_config_is_validated():
    with pytest.raises(ConfigError, match="context_threshold"):
        ResolverConfig(context_threshold=1.5)
    with pytest.raises(ConfigError, match="ngram"):
        ResolverConfig(ngram=1)


# -- against a graph ---------------------------------------------------------------------------


def test_spelling_and_modifier_variants_merge(graph, extractor):
    items = [Item.make(text=t) for t in OBAMA + ["The small dog barked at the mailman.", "I walked the dogs."]]
    GraphBuilder(graph, extractor).add_items(items)
    assert len(graph.find_entities("dog")) == 1  # "the small dog" / "the dogs": one concept, no merge needed
    resolution = EntityResolver(hash_embed).resolve(graph)
    roots = {graph.canonical(e.id) for name in ("Barack Obama", "Obama", "barack obama") for e in graph.find_entities(name)}  # fmt: skip
    assert len(roots) == 1, resolution.rejected
    root = graph.get_entity(roots.pop())
    assert root.name == "Barack Obama"
    assert {"Obama", "obama"} <= set(root.aliases)  # the small model reads "barack obama" as "obama"
    assert all(m.reason and m.scores["context"] >= 0.45 for m in graph.merges())


def test_homonyms_with_different_contexts_stay_apart(graph):
    _entity_with_contexts(graph, "jordan-player", "Jordan", "PERSON", JORDAN_PLAYER)
    _entity_with_contexts(graph, "jordan-other", "Jordan", "PERSON", JORDAN_COUNTRY)
    _entity_with_contexts(graph, "jordan-country", "Jordan", "GPE", JORDAN_COUNTRY)
    resolution = EntityResolver(hash_embed).resolve(graph)
    assert resolution.merges == []
    why = {frozenset((a, b)): reason for a, b, reason, _ in resolution.rejected}
    assert why[frozenset(("jordan-player", "jordan-other"))] == "contexts differ"
    assert why[frozenset(("jordan-player", "jordan-country"))] == "types differ"


def test_resolution_is_reversible_and_scoped(graph):
    _entity_with_contexts(graph, "a", "Barack Obama", "PERSON", OBAMA[:1])
    _entity_with_contexts(graph, "b", "Obama", "PERSON", OBAMA[1:2])
    _entity_with_contexts(graph, "c", "Jordan", "PERSON", JORDAN_PLAYER)
    resolver = EntityResolver(hash_embed)
    assert resolver.resolve(graph, ["c"]).merges == []  # scoped to "c": Obama untouched
    merges = resolver.resolve(graph).merges
    assert [(m.kept, m.merged) for m in merges] == [("a", "b")]
    assert resolver.resolve(graph).merges == []  # nothing left to do
    graph.unmerge("b")
    assert graph.canonical("b") == "b" and graph.merges() == []


@pytest.mark.slow
def test_real_minilm_merges_variants_and_separates_jordans(graph, extractor, minilm):
    embed = lambda texts: minilm.encode(list(texts))  # noqa: E731
    items = [Item.make(text=t) for t in OBAMA + JORDAN_PLAYER + JORDAN_COUNTRY]
    GraphBuilder(graph, extractor).add_items(items)
    _entity_with_contexts(graph, "jordan-other", "Jordan", "PERSON", JORDAN_COUNTRY)
    _entity_with_contexts(graph, "jordan-player", "Jordan", "PERSON", JORDAN_PLAYER)
    resolution = EntityResolver(embed).resolve(graph)
    roots = {graph.canonical(e.id) for name in ("Barack Obama", "Obama") for e in graph.find_entities(name)}
    assert len(roots) == 1, resolution.rejected
    assert graph.canonical("jordan-other") != graph.canonical("jordan-player")
    apart = [s for a, b, why, s in resolution.rejected if {a, b} == {"jordan-other", "jordan-player"}]
    assert apart and apart[0]["context"] < 0.45


def test_name_embedding_candidates_catch_abbreviations(graph):
    def alias_embed(texts):  # a stand-in model that knows "NYC" is "New York City"
        return HashEncoder(256).encode([{"NYC": "New York City"}.get(t, t) for t in texts])

    _entity_with_contexts(graph, "nyc-long", "New York City", "GPE", ["New York City has five boroughs and a subway."])
    _entity_with_contexts(graph, "nyc-short", "NYC", "GPE", ["NYC has five boroughs and a busy subway."])
    assert EntityResolver(alias_embed).resolve(graph).merges == []  # characters alone miss it
    merges = EntityResolver(alias_embed, ResolverConfig(embed_names=3)).resolve(graph).merges
    assert [(m.kept, m.merged) for m in merges] == [("nyc-long", "nyc-short")]
    assert merges[0].scores["name_embedding"] >= 0.85
