"""The bridge query: the question decomposed by its first hop (the unanswered words plus the entities the
top item names) finds the passage a multi-hop question needs next."""

from __future__ import annotations

import pytest

import omnimem
from omnimem.retrieval import expand
from omnimem.retrieval.context import GraspConfig
from omnimem.retrieval.pipeline import grasp_rank
from omnimem.stores.base import Filters

WIND_FARM = "The Intrepid Wind Farm has 107 wind turbines in the north-west of Iowa."
STATEHOOD = "Iowa was admitted as the 29th state of the Union in 1846, when President James K. Polk signed the act."
DISTRACTORS = [
    "The Blue Canyon Wind Farm stands on the Slick Hills of Oklahoma.",
    "The Bald Hills Wind Farm in Victoria has 52 turbines.",
    "Wind power in the United States grew quickly after 2005.",
    "The Jersey-Atlantic Wind Farm was the first coastal wind farm in the United States.",
    "Ohio became the 17th state in 1803.",
    "The president of the wind energy association spoke about turbines.",
    "Nevada became a state during the Civil War, in 1864.",
    "Texas became a state in 1845 after a decade as a republic.",
    "The president opened the new wind farm near the coast.",
    "Hawaii became the 50th state in 1959.",
    "The Roscoe Wind Farm is located in Texas and was the largest in the world.",
]
QUESTION = "Who was president when the area where the Intrepid Wind Farm is located became a state?"


def test_bridge_query_keeps_the_unanswered_words_and_adds_the_new_names():
    seed = "Intrepid Wind Farm: The Intrepid Wind Farm has 107 wind turbines in the north-west of Iowa."
    names = ["Intrepid Wind Farm", "Iowa", "Iowa", " "]
    got = expand.bridge_query(QUESTION, seed, names)
    assert got == "Who was president when area where is located became a state Iowa"
    assert expand.bridge_query(QUESTION, seed, ["Intrepid Wind Farm"]) is None  # nothing new: no bridge
    assert expand.bridge_query(QUESTION, seed, []) is None


@pytest.fixture
def corpus(tmp_path, minilm):
    with omnimem.Memory.open(tmp_path / "m", encoder=minilm) as mem:
        ids = mem.add([WIND_FARM], session="s1") + mem.add([STATEHOOD], session="s2")
        mem.add(DISTRACTORS, session="s1")
        yield mem, ids


@pytest.mark.slow
def test_the_bridge_query_reaches_the_second_hop_passage(corpus):
    mem, (farm, statehood) = corpus
    with_bridge = grasp_rank(mem, QUESTION, config=GraspConfig(rerank=False, neighbours=False)).items
    without = grasp_rank(mem, QUESTION, config=GraspConfig(rerank=False, neighbours=False, bridge=False)).items
    assert with_bridge[0].id == farm  # the first hop: the passage the question names
    assert statehood not in [f.id for f in without[:4]]  # the question shares little with Iowa's statehood
    found = next(f for f in with_bridge[:4] if f.id == statehood)  # "... became a state Iowa" does
    assert "bridge" in found.ranks
    assert [f.score for f in with_bridge] == sorted((f.score for f in with_bridge), reverse=True)


@pytest.mark.slow
def test_the_bridge_query_respects_the_filters(corpus):
    mem, (farm, statehood) = corpus
    ranked = grasp_rank(
        mem, QUESTION, config=GraspConfig(rerank=False, neighbours=False), filters=Filters(sessions=("s1",))
    ).items
    assert ranked[0].id == farm
    assert statehood not in [f.id for f in ranked]


@pytest.mark.slow
def test_a_bridge_entity_many_items_mention_is_too_generic_to_follow(corpus):
    mem, (farm, _) = corpus
    text = mem.store.get([farm])[0].text
    assert expand.bridge_of(mem.graph, QUESTION, farm, text, max_degree=50) == (
        farm,
        "Who was president when area where is located became a state Iowa",
    )
    assert expand.bridge_of(mem.graph, QUESTION, farm, text, max_degree=1) is None  # two items mention Iowa
    config = GraspConfig(rerank=False, neighbours=False, max_seed_degree=1)
    assert not any("bridge" in f.ranks for f in grasp_rank(mem, QUESTION, config=config).items)
