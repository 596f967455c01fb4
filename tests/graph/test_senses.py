"""Per-mention senses: one name and type, two referents split apart, logged, undoable, routed on write."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from omnimem.errors import ConfigError, NotFound
from omnimem.graph.builder import GraphBuilder
from omnimem.graph.resolve import EntityResolver
from omnimem.graph.senses import SenseConfig, SenseSplitter, silhouette, two_means
from omnimem.graph.store import GraphStore, entity_id
from omnimem.types import Item

# spaCy's small model labels "Jordan" PERSON in each of these (in others it says GPE: the country)
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
MORE_PLAYER = [
    "Jordan won the NBA scoring title again and the Bulls finished first in the league.",
    "Jordan made a jump shot at the buzzer and the Bulls won the NBA game.",
    "Jordan won the MVP award after leading the Bulls to the NBA championship.",
]
LATER_PLAYER = "Last night Jordan made twelve baskets and the Bulls won their NBA playoff game."
LATER_NEIGHBOUR = "Jordan showed me how to prune the apple tree and gave me jam she made from the fruit."
JORDAN = entity_id("Jordan", "PERSON")


def _items(texts: list[str]) -> list[Item]:
    return [Item.make(text=t) for t in texts]


def _jordans(graph: GraphStore) -> dict[str, set[str]]:
    """Each PERSON "Jordan" entity (root) -> the items whose mentions of Jordan it holds."""
    roots = graph.roots()
    out: dict[str, set[str]] = defaultdict(set)
    ids = {e.id for e in graph.find_entities("Jordan") if e.type == "PERSON"}
    for m in graph.mentions(entity_ids=[*ids, *(k for k, v in roots.items() if v in ids)]):
        out[roots.get(m.entity_id, m.entity_id)].add(m.item_id)
    return dict(out)


def _mentions(graph: GraphStore) -> set[tuple[str, str, int]]:
    roots = graph.roots()
    return {(roots.get(m.entity_id, m.entity_id), m.item_id, m.start) for m in graph.mentions()}


def _triplets(graph: GraphStore) -> set[tuple[str, str, str, tuple[str, ...]]]:
    roots = graph.roots()
    return {
        (roots.get(t.head, t.head), t.relation, roots.get(t.tail, t.tail), tuple(sorted(t.sources)))
        for t in graph.triplets()
    }


@pytest.fixture(params=["bow", "minilm"])
def embed(request):
    if request.param == "bow":
        return None
    encoder = request.getfixturevalue("minilm")
    return lambda texts: encoder.encode(list(texts))


# -- pure functions ----------------------------------------------------------------------------


def test_two_means_finds_two_clouds_deterministically():
    rng = np.random.default_rng(0)
    a, b = np.eye(8)[0], np.eye(8)[1]
    x = np.concatenate([a + 0.1 * rng.normal(size=(5, 8)), b + 0.1 * rng.normal(size=(4, 8))])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = two_means(x)
    assert labels.tolist() == [0] * 5 + [1] * 4
    assert (two_means(x) == labels).all()
    assert silhouette(x, labels).mean() > 0.8
    with pytest.raises(ConfigError):
        two_means(x[:1])


def test_silhouette_of_an_arbitrary_cut_is_near_zero():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 32))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert abs(silhouette(x, np.arange(200) % 2).mean()) < 0.05


def test_config_is_validated():
    with pytest.raises(ConfigError):
        SenseConfig(min_items=4, min_items_per_sense=3)
    with pytest.raises(ConfigError):
        SenseConfig(context_threshold=1.5)


# -- splitting ---------------------------------------------------------------------------------


def test_two_jordans_split_and_a_new_mention_goes_to_its_sense(graph, extractor, embed):
    player, neighbour = _items(PLAYER), _items(NEIGHBOUR)
    builder = GraphBuilder(graph, extractor, EntityResolver(embed))
    builder.add_items(player + neighbour)
    assert set(_jordans(graph)) == {JORDAN}  # one row at write time: same key, same type

    splits = SenseSplitter(embed).split(graph)

    assert [s.entity for s in splits] == [JORDAN]
    jordans = _jordans(graph)
    assert len(jordans) == 2
    assert sorted(map(frozenset, jordans.values()), key=len) == sorted(
        [frozenset(i.id for i in player), frozenset(i.id for i in neighbour)], key=len
    )
    assert graph.check_coverage() == []
    assert {e.name for e in graph.find_entities("Jordan") if e.type == "PERSON"} == {"Jordan"}
    split = splits[0]
    assert split.scores["context"] < SenseConfig().context_threshold
    assert split.scores["silhouette"] >= SenseConfig().min_silhouette
    # the triplets read from the moved items name the sense, the others the entity
    moved = jordans[split.sense]
    for t in graph.triplets(entity_ids=[split.sense]):
        assert set(t.sources) <= moved
    for t in graph.triplets(entity_ids=[JORDAN]):
        assert not set(t.sources) & moved

    later, next_door = Item.make(text=LATER_PLAYER), Item.make(text=LATER_NEIGHBOUR)
    builder.add_items([later, next_door])
    basketball = next(e for e, items in jordans.items() if player[0].id in items)
    garden = next(e for e in jordans if e != basketball)
    assert later.id in _jordans(graph)[basketball]
    assert next_door.id in _jordans(graph)[garden]
    assert {t.head for t in graph.triplets(item_ids=[later.id]) if t.relation.startswith("make")} == {basketball}


def test_one_jordan_in_consistent_contexts_is_not_split(graph, extractor, embed):
    GraphBuilder(graph, extractor).add_items(_items(PLAYER + MORE_PLAYER))
    assert SenseSplitter(embed).split(graph) == []
    assert set(_jordans(graph)) == {JORDAN}
    assert graph.splits() == []


def test_too_few_items_are_never_split(graph, extractor):
    GraphBuilder(graph, extractor).add_items(_items(PLAYER[:2] + NEIGHBOUR[:2]))
    assert SenseSplitter().split(graph) == []


def test_split_is_logged_undoable_and_idempotent(graph, extractor):
    GraphBuilder(graph, extractor).add_items(_items(PLAYER + NEIGHBOUR))
    before_mentions, before_triplets = _mentions(graph), _triplets(graph)
    splitter = SenseSplitter()

    [split] = splitter.split(graph)
    assert graph.splits() == [split]
    assert split.reason == "contexts differ" and set(split.scores) >= {"items", "moved", "context", "silhouette"}
    assert graph.counts()["splits"] == 1
    assert graph.senses() == {JORDAN: [JORDAN, split.sense]}
    assert _mentions(graph) != before_mentions
    assert splitter.split(graph) == []  # idempotent: a split entity and its sense are not split again
    assert EntityResolver().resolve(graph).merges == []  # nor merged back by resolution
    assert graph.check_coverage() == []

    graph.unsplit(split.sense)
    assert _mentions(graph) == before_mentions
    assert _triplets(graph) == before_triplets
    assert graph.canonical(split.sense) == JORDAN
    assert graph.check_coverage() == []
    assert graph.splits() == [] and graph.splits(include_undone=True)[0].undone_at is not None
    assert graph.senses() == {}
    assert splitter.split(graph) == []  # an undo sticks
    with pytest.raises(NotFound):
        graph.unsplit(split.sense)


def test_split_rejects_items_without_mentions(graph, extractor):
    GraphBuilder(graph, extractor).add_items(_items(PLAYER))
    with pytest.raises(ConfigError):
        graph.split(JORDAN, ["no-such-item"], reason="test")
    assert graph.entities([JORDAN]) and graph.splits() == [] and len(_jordans(graph)) == 1


def test_privacy_delete_removes_a_sense_and_its_log(graph, extractor):
    neighbour = _items(NEIGHBOUR)
    GraphBuilder(graph, extractor).add_items(_items(PLAYER) + neighbour)
    [split] = SenseSplitter().split(graph)
    moved = _jordans(graph)[split.sense]
    graph.delete_item_links(list(moved))
    assert graph.splits(include_undone=True) == []
    assert set(_jordans(graph)) == {JORDAN}
    assert graph.check_coverage() == []


# -- the job -----------------------------------------------------------------------------------


def test_build_graph_splits_and_can_be_told_not_to(tmp_path, minilm):
    import omnimem
    from omnimem.config import GraphConfig, MemoryConfig
    from omnimem.graph.jobs import build_graph

    texts = PLAYER + NEIGHBOUR
    config = MemoryConfig(graph=GraphConfig(extract_on_add=False))
    for split, expected in ((False, 0), (True, 1)):
        with omnimem.Memory.open(tmp_path / f"m{split}", encoder=minilm, config=config) as mem:
            mem.add(texts)
            report = build_graph(mem, split=split, progress=False)
            assert report.splits == expected == mem.graph.counts()["splits"]
            assert mem.graph.check_coverage() == []
