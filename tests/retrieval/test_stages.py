"""Each GRASP stage on small fixtures (hash encoder for mechanics, MiniLM where meaning matters)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import omnimem
from omnimem.config import SearchConfig
from omnimem.errors import ConfigError
from omnimem.graph.store import EntityRow
from omnimem.retrieval import expand
from omnimem.retrieval.context import Context, ContextEntry, GraspConfig, estimate_tokens
from omnimem.retrieval.grounding import (
    NameIndex,
    link_query_entities,
    presence_scores,
    query_mentions,
    triplet_presence,
    worth_embedding,
)
from omnimem.retrieval.hybrid import hybrid_fused
from omnimem.retrieval.pack import collapse_duplicates, pack_budget
from omnimem.retrieval.pipeline import grasp_rank, grasp_search, retrieve_context

OFF = GraspConfig().without("tau", "hop2", "ppr", "rerank", "redundancy")


def _dense(mem, query):
    return {"dense": (mem.indexes["text"].search, mem.encoder.encode([query])[0])}


def test_tau_drops_an_off_topic_dense_neighbour(mem):
    on, off = mem.add(["The river Thames flows through London.", "Quarterly invoices are due on Monday."])
    query = "Which river flows through London?"
    fused, _ = hybrid_fused(query, store=mem.store, dense=_dense(mem, query), config=mem.config.search)
    assert {f.id for f in fused} == {on, off}  # without tau the whole (tiny) index comes back
    fused, scored = hybrid_fused(
        query, store=mem.store, dense=_dense(mem, query), config=mem.config.search, tau={"dense": 0.2}
    )
    assert [f.id for f in fused] == [on] and [i for i, _ in scored["dense"]] == [on]
    cfg = GraspConfig(tau=(("text", 0.2),), hop2=False, ppr=False)
    assert [h.id for h in grasp_search(mem, query, k=5, config=cfg)] == [on]


def test_grasp_without_stages_matches_memory_search(mem):
    mem.add([f"note {n} about apples and pears number {n}" for n in range(8)] + ["bananas are yellow"])
    plain = [h.id for h in mem.search("apples number 3", k=5)]
    assert [h.id for h in grasp_search(mem, "apples number 3", k=5, config=OFF.without("grounding"))] == plain


@pytest.fixture
def two_hop(mem):
    """Hop 1 names the bridge (Steve Hillage); hop 2 shares no word with the question."""
    ids = mem.add(
        [
            "Steve Hillage recorded the album Green in 1978.",
            "Miquette Giraudy lives with Steve Hillage in London.",
            "The album Red was recorded by King Crimson.",
            "Green tea is recorded as a popular drink.",
            "An album cover can be green or red.",
        ]
    )
    return mem, ids


def test_ppr_finds_a_two_hop_item_that_dense_search_misses(two_hop):
    mem, (hop1, hop2, *_) = two_hop
    query = "Which partner does the artist who recorded the album Green have?"
    assert hop2 not in [h.id for h in mem.search(query, k=4)]
    cfg = GraspConfig(
        tau=(("text", 0.1),), hop2=False, bridge=False, rerank=False, ppr=True, ppr_weight=0.5, ppr_rescue=2
    )  # the walk alone (the bridge query, through Steve Hillage, finds it too)
    fused, _ = hybrid_fused(query, store=mem.store, dense=_dense(mem, query), config=mem.config.search,
                            tau={"dense": 0.1})  # fmt: skip
    assert hop2 not in [f.id for f in fused]  # neither dense (after tau) nor BM25 has it
    hits = grasp_search(mem, query, k=4, config=cfg)
    assert hits[0].id == hop1 and hop2 in [h.id for h in hits]  # rescued by the walk through Steve Hillage
    assert next(h for h in hits if h.id == hop2).retrievers == ("ppr",)


def test_bounded_subgraph_respects_the_node_cap_and_closes_hubs(two_hop):
    mem, (hop1, hop2, *_) = two_hop
    seeds = [m.entity_id for m in mem.graph.mentions(item_ids=[hop1])]
    full = expand.bounded_subgraph(mem.graph, seeds, [hop1], hops=2, max_nodes=1000, max_degree=50)
    assert f"i:{hop2}" in full  # through Steve Hillage
    small = expand.bounded_subgraph(mem.graph, seeds, [hop1], hops=2, max_nodes=2, max_degree=50)
    assert small.number_of_nodes() < full.number_of_nodes()
    closed = expand.bounded_subgraph(mem.graph, seeds, [hop1], hops=2, max_nodes=1000, max_degree=1)
    assert f"i:{hop2}" not in closed  # Steve Hillage has two items: a hub when max_degree=1
    assert expand.seed_weights({"a": 1.0}, {"b": 1.0}, {"a": 1, "b": 100}, max_degree=50) == {
        "e:a": pytest.approx(1 / np.log(3))
    }


def test_nudge_is_conservative():
    from omnimem.retrieval.fusion import Fused

    fused = [Fused("a", 1.0, {"dense": 1}), Fused("b", 0.5, {"dense": 2}), Fused("c", 0.1, {"dense": 3})]
    out = expand.nudge(fused, {"c": 1.0, "z": 1.0, "y": 0.1}, weight=0.2, rescue=1, name="ppr")
    assert [f.id for f in out] == ["a", "z", "b", "c"]
    assert expand.nudge(fused, {"z": 1.0}, weight=0.0, rescue=1, name="ppr") == fused
    with pytest.raises(ConfigError):
        expand.nudge(fused, {}, weight=-1, rescue=0, name="ppr")


def test_second_hop_keeps_the_head_and_promotes_each_hops_best():
    from omnimem.retrieval.fusion import Fused

    fused = [Fused(i, 1.0 - n / 10, {"dense": n + 1}) for n, i in enumerate("abcdef")]
    hops = [[("a", 0.9), ("e", 0.8), ("z", 0.7)], [("e", 0.9), ("z", 0.8)]]
    out = expand.insert_after_head(fused, hops, head=2, per_seed=1, name="hop2")
    assert [f.id for f in out] == ["a", "b", "e", "z", "c", "d", "f"]
    assert out[2].ranks == {"dense": 5, "hop2": 1} and out[3].ranks == {"hop2": 2}
    assert [f.score for f in out] == sorted((f.score for f in out), reverse=True)
    assert expand.insert_after_head(fused, [], head=2, per_seed=1, name="hop2") == fused


def test_query_entities_link_exactly_and_by_alias(two_hop):
    mem, _ = two_hop
    mentions = query_mentions("What did Steve Hillage record?", mem.config.graph.spacy_model)
    links = link_query_entities(mentions, mem.graph)
    nyc = EntityRow.make("New York City", "GPE", ["NYC", "New York City"])
    by_alias = link_query_entities([("NYC", "NYC", "GPE")], mem.graph, nearby=[nyc])
    assert [(lk.entity_id, lk.how) for lk in by_alias] == [(nyc.id, "alias")]
    hillage = mem.graph.find_entities("Steve Hillage")[0]
    names = NameIndex(mem.encoder)
    mention = [("Steve Hillage band", "Steve Hillage band", "ORG")]
    by_name = link_query_entities(mention, mem.graph, nearby=[hillage], names=names, threshold=0.7)
    assert [(lk.entity_id, lk.how) for lk in by_name] == [(hillage.id, "embedding")] and hillage.id in names.vectors
    assert link_query_entities(mention, mem.graph, nearby=[hillage], names=names, threshold=0.95) == []
    assert any(lk.name == "Steve Hillage" and lk.how == "exact" for lk in links)
    assert link_query_entities([("Quentin Tarantino", "Quentin Tarantino", "PERSON")], mem.graph) == []


def test_a_query_name_spelled_unlike_every_nearby_entity_costs_no_model_call(two_hop):
    mem, _ = two_hop
    hillage = mem.graph.find_entities("Steve Hillage")[0]
    names = NameIndex(mem.encoder)
    names.embed([(hillage.id, hillage.name)], mem.graph)  # the entity's name vector, as a query finds it stored
    encoded: list[list[str]] = []
    encode = mem.encoder.encode
    names.encoder = type("Counting", (), {"encode": lambda self, t, **k: encoded.append(list(t)) or encode(t, **k)})()
    unlike = [("Zorblax", "Zorblax", "PERSON")]  # no trigram in common: not embedded, not linked at any threshold
    assert link_query_entities(unlike, mem.graph, nearby=[hillage], names=names, threshold=0.0) == [] and not encoded
    alike = [("Steve Hillage band", "Steve Hillage band", "ORG")]
    assert worth_embedding([(s, c) for s, c, _ in alike + unlike], [hillage]) == [alike[0][:2]]
    assert [lk.how for lk in link_query_entities(alike, mem.graph, nearby=[hillage], names=names, threshold=0.7)] == [
        "embedding"
    ]
    assert encoded == [["Steve Hillage band"]]


def test_grounding_keeps_a_present_entity_and_drops_an_absent_one(tmp_path, hash_encoder, fake_clip):
    scores = presence_scores(fake_clip, [["dog", "ball"]], ["dog", "cat"])
    assert scores[0] > 0.5 and scores[1] < 0.2
    assert triplet_presence({"d": 1.0, "b": 0.5}, "d", "b") == 0.75
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, image_encoder=fake_clip) as mem:
        mem.add(["The dog chased the ball in the park.", "The cat chased the mouse in the park."])
        query = "What did the animal chase in the park?"
        cfg = GraspConfig(rerank=False, ppr=False, hop2=False, eta=0.2)
        plain = {(f.text.split()[0], f.text) for f in retrieve_context(mem, query, config=cfg).facts}
        grounded = retrieve_context(mem, query, config=cfg, image=[["dog", "ball"]]).facts
        assert any("<dog>" in f.text for f in grounded)
        assert not any("<cat>" in f.text or "<mouse>" in f.text for f in grounded)
        assert any("<cat>" in text for _, text in plain)  # without the image the cat's fact stays


def test_pruning_collapses_paraphrases_keeping_the_better_sourced(minilm):
    texts = [
        "The team meeting was moved to Friday afternoon.",
        "Our flight to Lisbon leaves at 7 am.",
        "The team meeting has been moved to Friday afternoon.",
    ]
    entries = [
        ContextEntry("fact", "f1", texts[0], 0.9, item_ids=("x",)),
        ContextEntry("item", "i2", texts[1], 0.8, item_ids=("i2",)),
        ContextEntry("item", "i3", texts[2], 0.5, item_ids=("i3",)),
    ]
    kept = collapse_duplicates(entries, minilm.encode(texts), threshold=0.9)
    assert [e.id for e in kept] == ["i3", "i2"]  # the item beats the fact it repeats, in the fact's place
    distinct = collapse_duplicates(entries[:2], minilm.encode(texts[:2]), threshold=0.9)
    assert len(distinct) == 2
    lexical = collapse_duplicates([entries[0], dataclasses.replace(entries[0], id="f2", score=0.1)], None)
    assert [e.id for e in lexical] == ["f1"]


def test_packing_respects_the_budget(mem):
    entries = [ContextEntry("item", f"i{n}", "word " * (5 + 10 * n), 1.0 - n / 10) for n in range(6)]
    packed, dropped = pack_budget(entries, 60, estimate_tokens)
    assert sum(e.tokens for e in packed) <= 60 and dropped == 6 - len(packed) > 0
    assert [e.id for e in packed][:2] == ["i0", "i1"]  # best utility per token first, input order kept
    with pytest.raises(ConfigError):
        pack_budget(entries, 0, estimate_tokens)
    mem.add([f"Alice told Bob about her trip number {n} to the mountains and the lakes." for n in range(30)])
    for budget in (40, 120, 400):
        ctx = retrieve_context(mem, "Where did Alice travel?", budget_tokens=budget)
        assert isinstance(ctx, Context) and 0 < ctx.tokens <= budget
        assert ctx.render().count("[E") == len(ctx)
    counted = retrieve_context(mem, "Where did Alice travel?", budget_tokens=50, count_tokens=lambda t: 25)
    assert len(counted) == 1


def test_context_entries_carry_provenance(mem):
    mem.add_conversation(
        [{"speaker": "Ann", "text": "I adopted a puppy named Rex."}, {"speaker": "Ben", "text": "Rex is cute!"}],
        session="s1",
    )  # fmt: skip
    ctx = retrieve_context(mem, "What is the name of Ann's puppy?", budget_tokens=300)
    item = ctx.items[0]
    assert item.text.startswith(("Ann", "Ben")) and item.tokens > 0 and item.retrievers
    assert ctx.item_ids() and set(ctx.timings_ms) >= {"candidates", "ppr", "rerank", "pack"}
    assert all(f.text.startswith("<") and "->" in f.text for f in ctx.facts)
    assert "Evidence:" in ctx.render() and ctx.to_json()


def test_config_validates_and_switches_stages():
    with pytest.raises(ConfigError, match="damping"):
        GraspConfig(damping=1.0)
    with pytest.raises(ConfigError, match="tau"):
        GraspConfig(tau=(("text", 2.0),))
    with pytest.raises(ConfigError, match="unknown stage"):
        GraspConfig().without("magic")
    off = GraspConfig().without("hop2", "tau")
    assert not off.hop2 and off.tau_for("text") is None and GraspConfig().tau_for("text") == 0.1
    on = off.with_("ppr", "tau")
    assert on.ppr and on.is_on("ppr") and on.tau == GraspConfig().tau


def test_grasp_rank_rejects_an_empty_query(mem):
    with pytest.raises(ConfigError):
        grasp_rank(mem, "  ")
    with pytest.raises(ConfigError):
        retrieve_context(mem, "q", budget_tokens=0)


def test_second_round_from_stored_vectors_needs_no_model_call(minilm, tmp_path):
    passages = [
        "Green is the fourth studio album by the guitarist Steve Hillage, released in 1978.",
        "Steve Hillage has been married to the musician Miquette Giraudy since the 1970s.",
        "The album cover of Blue shows a lighthouse on a cliff at dusk.",
        "Miquette Giraudy is a French keyboard player and synthesist.",
    ] + [f"The weather report for town number {n} predicts rain and wind." for n in range(20)]

    class Counting:
        def __init__(self, inner):
            self.inner, self.calls, self.dim, self.name = inner, 0, inner.dim, inner.name

        def encode(self, texts, **kw):
            self.calls += 1
            return self.inner.encode(texts, **kw)

    with omnimem.Memory.open(tmp_path / "m", encoder=minilm) as mem:
        mem.add(passages)
        mem.encoder = counting = Counting(minilm)
        cfg = GraspConfig(hop2_vectors="sum", bridge=False, rerank=False, facts=False)
        ranking = grasp_rank(mem, "Who is the spouse of the Green performer?", config=cfg)
        assert counting.calls == 1  # the query only: the joint query is the stored vectors' sum
        grasp_rank(mem, "Who is the spouse of the Green performer?", config=dataclasses.replace(cfg, bridge=True))
        assert counting.calls == 3  # with the bridge query, a second call (it has no stored vector)
        ids = mem.store.ids()
        spouse = next(i for i in ids if mem.get(i).text.startswith("Steve Hillage has"))
        assert spouse in [f.id for f in ranking.items[:3]]
    joint = expand.joint_vectors(np.array([1.0, 0.0]), np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert np.allclose(joint, [[2**-0.5, 2**-0.5], [1.0, 0.0]])
    with pytest.raises(ConfigError, match="hop2_vectors"):
        GraspConfig(hop2_vectors="magic")


def test_second_round_can_join_only_the_seeds_first_words(mem):
    seen = []
    inner = mem.encoder

    class Recording:
        dim, name = inner.dim, inner.name

        def encode(self, texts, **kw):
            seen.extend(texts)
            return inner.encode(texts, **kw)

    mem.add(["one two three four five six seven eight nine ten about Alice", "Bob likes tea and cake"])
    mem.encoder = Recording()
    grasp_rank(mem, "What about Alice?", config=GraspConfig(hop2_seed_words=3, hop2_vectors="encode", rerank=False))
    joint = [t for t in seen if t.startswith("What about Alice? ")]
    assert joint and all(len(t.split()) <= 3 + 3 for t in joint)  # the query's 3 words + the seed's first 3
    with pytest.raises(ConfigError):
        GraspConfig(hop2_seed_words=-1)


def test_neighbour_smoothing_reads_the_session_order_once_and_scores_added_turns_from_it():
    from omnimem.retrieval.fusion import Fused
    from omnimem.retrieval.neighbours import neighbour_smoothing

    order = ["t1", "t2", "t3", "t4", "t5", "t6"]  # one session, in turn order; "x" has no session
    links = {
        t: (order[n - 1] if n else None, order[n + 1] if n + 1 < len(order) else None) for n, t in enumerate(order)
    }
    calls: list[list[str]] = []

    def neighbours(ids):
        calls.append(list(ids))
        return {i: links[i] for i in ids if i in links}

    fused = [Fused("t4", 1.0, {"dense": 1}), Fused("t2", 0.6, {"bm25": 1}), Fused("x", 0.5, {"dense": 2})]
    out = {f.id: round(f.score, 3) for f in neighbour_smoothing(fused, neighbours, beta=0.5, expand=2)}
    assert len(calls) == 1  # the added turns' own neighbours come from the candidates' links
    # t3 sits between both candidates and borrows the better one; t5 follows t4; t1 precedes t2
    assert out == {"t4": 1.0, "t2": 0.6, "x": 0.5, "t3": 0.5, "t5": 0.5, "t1": 0.3}


def test_the_turn_after_a_question_borrows_the_answer_share_of_its_score():
    from omnimem.retrieval.fusion import Fused
    from omnimem.retrieval.neighbours import neighbour_smoothing

    order = ["before", "ask", "answer", "after"]  # one session: a remark, a question, its answer, a remark
    links = {
        t: (order[n - 1] if n else None, order[n + 1] if n + 1 < len(order) else None) for n, t in enumerate(order)
    }
    asked: list[list[str]] = []

    def asking(ids):
        asked.append(sorted(ids))
        return {"ask"} & set(ids)

    fused = [Fused("ask", 1.0, {"dense": 1}), Fused("before", 0.3, {"bm25": 1}), Fused("answer", 0.2, {"bm25": 2})]

    def smooth(answer_beta, question_penalty=0.0):
        out = neighbour_smoothing(
            fused, lambda ids: {i: links[i] for i in ids if i in links}, beta=0.5, expand=3,
            answer_beta=answer_beta, question_penalty=question_penalty, asking=asking,
        )  # fmt: skip
        return {f.id: round(f.score, 3) for f in out}, [f.id for f in out]

    scores, ranked = smooth(0.9)
    # the answer takes 0.9 of the question's score; the remark before the question still only 0.5;
    # the question borrows 0.5 of the better of its own neighbours
    assert scores == {"ask": 1.15, "before": 0.8, "answer": 1.1, "after": 0.1}
    assert ranked == ["ask", "answer", "before", "after"] and asked == [["after", "answer", "ask", "before"]]
    asked.clear()
    scores, ranked = smooth(0.5)  # the same share both ways: the plain smoothing, no question read
    assert scores == {"ask": 1.15, "before": 0.8, "answer": 0.7, "after": 0.1} and ranked[:2] == ["ask", "before"]
    assert asked == []
    scores, ranked = smooth(0.9, question_penalty=0.3)  # the question keeps 0.7 of its own score
    assert scores == {"ask": 0.85, "before": 0.8, "answer": 1.1, "after": 0.1} and ranked[:2] == ["answer", "ask"]
    asked.clear()  # passages outside any session: nothing to ask about, no read
    alone = neighbour_smoothing(fused, lambda ids: {}, beta=0.5, expand=3, answer_beta=0.9, asking=asking)
    assert [f.score for f in alone] == [1.0, 0.3, 0.2] and asked == []
    with pytest.raises(ConfigError):
        neighbour_smoothing(fused, lambda ids: {}, beta=0.5, expand=1, answer_beta=-0.1, asking=asking)
    with pytest.raises(ConfigError):
        neighbour_smoothing(fused, lambda ids: {}, beta=0.5, expand=1, question_penalty=1.0, asking=asking)
    for bad in ({"answer_weight": -1}, {"question_penalty": 1.0}, {"question_penalty": -0.1}):
        with pytest.raises(ConfigError):
            SearchConfig(**bad)
