"""The focused searches of GRASP (temporal, speaker, questions, voice, entities, units, personas, dense2) on small memories."""

from __future__ import annotations

import json

import numpy as np
import pytest

from omnimem.encoders.hashing import HashEncoder
from omnimem.errors import ConfigError
from omnimem.eval.spaces import WithSpace, needs_second_space, with_second_space
from omnimem.graph.store import EntityRow, MentionRow, TripletRow, triplet_id
from omnimem.memory.personas import INDEX_KEY, PersonaConfig, personas, refresh_personas, self_statement
from omnimem.retrieval import focused
from omnimem.retrieval.context import STAGES, GraspConfig
from omnimem.retrieval.pipeline import grasp_rank, retrieve_context
from omnimem.retrieval.temporal import parse_time

PLAIN = GraspConfig().without("hop2", "rerank", "redundancy", "grounding", "tau")


def _turns(speaker: str, texts: list[str], day: str) -> list[dict]:
    return [{"speaker": speaker, "text": t, "timestamp": day} for t in texts]


@pytest.fixture
def diary(mem):
    """Two people over three sessions in different months; the same activity in each month."""
    sessions = {
        "s1": ("2023-05-08T10:00:00", [("Ann", "We went hiking in the hills with the dog."), ("Bob", "Sounds fun.")]),
        "s2": ("2023-06-12T10:00:00", [("Bob", "We went hiking near the lake."), ("Ann", "Lovely, I paint lakes.")]),
        "s3": ("2023-07-20T10:00:00", [("Ann", "I love hiking and my garden."), ("Bob", "I play the violin.")]),
    }
    ids = {}
    for name, (day, turns) in sessions.items():
        out = mem.add_conversation(
            [{"speaker": s, "text": t, "timestamp": day} for s, t in turns], session=name, episode="diary"
        )
        ids[name] = out
    return ids


def test_new_stages_are_switchable_and_off_by_default_unless_measured():
    for stage in ("temporal", "speaker", "questions", "voice", "entities", "units", "personas", "dense2"):
        assert stage in STAGES
        assert GraspConfig().with_(stage).is_on(stage) and not GraspConfig().with_(stage).without(stage).is_on(stage)
    with pytest.raises(ConfigError):
        GraspConfig(entity_weight=-1.0)
    with pytest.raises(ConfigError):
        GraspConfig(speaker_boost=-0.5)
    assert not GraspConfig().speaker  # measured: costs the adversarial questions (config.py)
    assert GraspConfig().voice  # measured: both held-out folds agreed (config.py)
    for penalty in (-0.1, 1.0):
        with pytest.raises(ConfigError):
            GraspConfig(question_penalty=penalty)
    with pytest.raises(ConfigError):
        GraspConfig(dense2_space="")


def test_temporal_window_nudges_the_turn_of_that_month(mem, diary):
    query = "Who went hiking in June 2023?"
    qvec = mem.encoder.encode([query])[0]
    scores = focused.temporal_scores(mem, query, qvec, parse_time(query), {}, mem.config.search, None)
    june = set(diary["s2"])
    assert scores and set(scores) <= june and max(scores.values()) == 1.0
    ranked = [f.id for f in grasp_rank(mem, query, config=PLAIN.with_("temporal")).items]
    assert ranked[0] == diary["s2"][0]


def test_temporal_anchor_is_found_by_search(mem, diary):
    query = "What did Ann say after the lake hike?"
    exprs = parse_time(query)
    anchors = {e.anchor: mem.encoder.encode([e.anchor])[0] for e in exprs if e.anchor}
    scores = focused.temporal_scores(
        mem, query, mem.encoder.encode([query])[0], exprs, anchors, mem.config.search, None
    )
    assert scores and not set(scores) & set(diary["s1"])  # the May session is before the anchor


def test_present_time_is_the_latest_event_time(mem, diary):
    assert focused.present_time(mem).startswith("2023-07-20")


def test_entities_take_the_named_speakers_best_turn_per_session(mem, diary):
    query = "What does Ann like doing?"
    qvec = mem.encoder.encode([query])[0]
    scores = focused.entity_scores(
        mem, query, qvec, ["Ann"], [], sessions=2, search_cfg=mem.config.search, filters=None, max_degree=50
    )
    items = {i.id: i for i in mem.store.get(list(scores))}
    assert len(scores) == 2 and {i.speaker for i in items.values()} == {"Ann"}
    assert len({i.session for i in items.values()}) == 2
    assert (
        focused.entity_scores(
            mem, query, qvec, ["Nobody"], [], sessions=2, search_cfg=mem.config.search, filters=None, max_degree=50
        )
        == {}
    )


def test_named_people_keeps_proper_nouns():
    mentions = [("Melanie's", "Melanie", "PERSON"), ("kids", "kid", "CONCEPT"), ("Caroline", "Caroline", "CONCEPT")]
    assert focused.named_people(mentions) == ["Melanie", "Caroline"]


def test_units_hand_a_fact_score_to_its_source_turns(mem, diary):
    ann = EntityRow.make("Ann", "PERSON", ["Ann"])
    garden = EntityRow.make("garden", "CONCEPT", ["garden"])
    source = diary["s3"][0]
    text = mem.get(source).text
    mem.graph.write(
        [ann, garden],
        [MentionRow(garden.id, source, "garden", text.find("garden"), text.find("garden") + 6, text)],
        [TripletRow(triplet_id(ann.id, "love", garden.id), ann.id, "love", garden.id, text, 0.9, (source,))],
    )
    scores = focused.unit_scores(mem, mem.encoder.encode(["Ann garden"])[0], [ann.id], limit=3, filters=None)
    assert scores == {source: 1.0}
    assert focused.unit_scores(mem, mem.encoder.encode(["x"])[0], [], limit=3, filters=None) == {}


def test_personas_are_refreshed_read_and_packed(mem, diary):
    assert self_statement("I love hiking") and not self_statement("Sounds fun.")
    assert refresh_personas(mem, config=PersonaConfig(items=2, min_turns=2)) == 2
    assert refresh_personas(mem, config=PersonaConfig(items=2, min_turns=2)) == 0  # idempotent: nothing changed
    found = personas(mem)
    assert set(found) == {"Ann", "Bob"} and json.loads(mem.store.get_meta(INDEX_KEY)) == ["Ann", "Bob"]
    ann = found["Ann"]
    assert ann["summary"].startswith("About Ann:") and 1 <= len(ann["sources"]) <= 2
    assert all(mem.get(i).speaker == "Ann" for i in ann["sources"])
    ctx = retrieve_context(mem, "What would Ann enjoy?", config=PLAIN.with_("personas", "grounding"))
    entry = next(e for e in ctx.entries if e.id == "persona:Ann")
    assert entry.kind == "summary" and set(entry.item_ids) == set(ann["sources"])
    mem.delete(ann["sources"][0])  # a forgotten turn: the persona is not read until refreshed
    assert focused.read_personas(mem, ["Ann"]) == []
    refresh_personas(mem, config=PersonaConfig(items=2, min_turns=2))
    assert focused.read_personas(mem, ["Ann"])


def test_dense2_fuses_a_second_space(mem, diary):
    class Shifted(HashEncoder):  # another "model": the same words hashed into another space
        def encode_query(self, texts):
            return self.encode(texts)

    source = with_second_space(mem, Shifted(32, name="other"), space="e5")
    assert isinstance(source, WithSpace) and len(source.indexes["e5"]) == len(mem)
    assert source.store is mem.store and focused.second_space(mem, "x", "e5") is None
    search, vector = focused.second_space(source, "hiking lake", "e5")
    assert vector.shape == (32,) and search(vector[None, :], 1)[0]
    ranking = grasp_rank(source, "hiking near the lake", config=PLAIN.with_("dense2"))
    assert any("dense2" in f.ranks for f in ranking.items)
    assert needs_second_space({"a": PLAIN.with_("dense2")}) == "e5" and needs_second_space({"a": PLAIN}) is None


def test_all_focused_stages_together_keep_the_ranking_sane(mem, diary):
    refresh_personas(mem, config=PersonaConfig(items=2, min_turns=2))
    cfg = PLAIN.with_("temporal", "entities", "units", "personas", "grounding")
    ranking = grasp_rank(mem, "What did Ann do in July?", config=cfg)
    ids = [f.id for f in ranking.items]
    assert len(ids) == len(set(ids)) and ids[0] == diary["s3"][0]
    assert "focus" in ranking.timings_ms
    assert np.all(np.diff([f.score for f in ranking.items]) <= 1e-9)


def test_when_questions_move_the_dated_statement_of_the_named_person_up(mem):
    ids = mem.add_conversation(
        [
            {"speaker": "Bob", "text": "How was the pottery class you talked about?", "timestamp": "2023-05-09"},
            {"speaker": "Ann", "text": "I signed up for a pottery class yesterday.", "timestamp": "2023-05-09"},
            {"speaker": "Bob", "text": "I went to a pottery class last week too.", "timestamp": "2023-05-09"},
        ],
        session="s1",
        episode="e",
    )
    fused = [focused.Fused(i, s, {"dense": n}) for n, (i, s) in enumerate(zip(ids, (0.9, 0.5, 0.45)), start=1)]
    out = focused.event_statements(mem, fused, ["Ann"], head=10, boost=1.0)
    assert [f.id for f in out] == [ids[1], ids[0], ids[2]] and out[0].ranks["temporal"] == 0
    anyone = focused.event_statements(mem, fused, [], head=10, boost=1.0)  # no one named: any dated statement
    assert {f.id for f in anyone[:2]} == {ids[1], ids[2]}


def test_speaker_prior_moves_the_named_persons_own_turns_up_within_the_head(mem, diary):
    ann = [diary["s1"][0], diary["s2"][1], diary["s3"][0]]
    bob = [diary["s1"][1], diary["s2"][0], diary["s3"][1]]
    order = [bob[1], ann[0], bob[0], ann[2], bob[2], ann[1]]
    fused = [focused.Fused(i, 1.0 - 0.1 * n, {"dense": n}) for n, i in enumerate(order, start=1)]
    out = focused.speaker_turns(mem, fused, ["Ann", "Lake District"], head=5, boost=0.6)
    # the head re-ranked with Ann's turns x1.6: 0.8 -> 1.28 and 0.6 -> 0.96 pass Bob's 0.9; the tail stays
    assert [f.id for f in out] == [ann[0], ann[2], bob[1], bob[0], bob[2], ann[1]]
    assert out[0].ranks["speaker"] == 0 and "speaker" not in out[2].ranks
    assert out[0].score == pytest.approx(0.8 * 1.6)
    assert focused.speaker_turns(mem, fused, ["Carol"], head=5, boost=0.6) == fused  # no speaker named
    ranking = grasp_rank(mem, "What does Ann like?", config=PLAIN.with_("speaker"))
    marked = [f.id for f in ranking.items if "speaker" in f.ranks]
    assert marked and {i.speaker for i in mem.store.get(marked)} == {"Ann"}
    assert not any("speaker" in f.ranks for f in grasp_rank(mem, "What does Ann like?", config=PLAIN).items)


def test_turns_that_only_ask_move_down_and_are_not_marked_as_found(mem):
    assert focused.asks("Cool! What do you play?") and focused.asks("Nice? [shares an image: a cat]")
    assert not focused.asks("I play the violin. [shares an image: what is this?]")
    assert not focused.asks("Is it? No, I sold it.") and not focused.asks("")
    ids = mem.add_conversation(
        [
            {"speaker": "Bob", "text": "What instrument do you play?"},
            {"speaker": "Ann", "text": "I play the violin in an orchestra."},
            {"speaker": "Bob", "text": "Do you play every day?"},
        ],
        session="s1",
    )
    fused = [focused.Fused(i, s, {"dense": n}) for n, (i, s) in enumerate(zip(ids, (0.9, 0.85, 0.3)), start=1)]
    out = focused.question_turns(mem, fused, head=2, penalty=0.1)
    # 0.9 x 0.9 = 0.81 falls behind Ann's statement; the third is past the head and stays as it was
    assert [f.id for f in out] == [ids[1], ids[0], ids[2]]
    assert out[1].score == pytest.approx(0.81) and out[1].ranks == {"dense": 1} and out[2] is fused[2]
    assert focused.question_turns(mem, fused, head=2, penalty=0.0) == fused


def test_own_voice_says_the_question_as_the_named_person_would():
    assert (
        focused.own_voice("What has Melanie painted with her kids?", "Melanie") == "What have I painted with my kids?"
    )
    assert focused.own_voice("What is Caroline's identity?", "Caroline") == "What is my identity?"
    assert focused.own_voice("Does Jon like it? His kids do.", "Jon") == "Do I like it? My kids do."
    assert (
        focused.own_voice("When Jon is planning to open his studio?", "Jon") == "When I am planning to open my studio?"
    )
    assert focused.own_voice("What does Jon's dance make him?", "Jon") == "What does my dance make me?"
    assert focused.own_voice("What did Jonathan say?", "Jon") is None  # a whole name, not a prefix
    assert focused.own_voice("What is the weather like?", "Jon") is None
    assert focused.own_voice("Qu'est-ce que Jon a peint ?", "Jon") is None  # not English: left alone


def test_voice_nudges_first_person_turns_of_any_speaker_and_rescues_none(mem):
    ids = mem.add_conversation(
        [
            {"speaker": "Bob", "text": "Ann, what a weekend! Ann went to the museum, right?"},
            {"speaker": "Ann", "text": "I painted my garden fence and my kids painted the shed."},
            {"speaker": "Bob", "text": "I painted my boat last summer."},
            {"speaker": "Ann", "text": "Thanks Bob, see you soon."},
        ],
        session="s1",
    )
    query = "What has Ann painted with her kids?"
    pool = [focused.Fused(i, 1.0, {"dense": n}) for n, i in enumerate(ids, start=1)]
    mentions = [("Ann", "ann", "PERSON")]
    assert focused.voice_query(mem, query, mentions, pool) == "What have I painted with my kids?"
    assert focused.voice_query(mem, query, mentions + [("Bob", "bob", "PERSON")], pool) is None  # two named
    assert focused.voice_query(mem, query, [("Carol", "carol", "PERSON")], pool) is None  # no speaker named
    vector = mem.encoder.encode(["What have I painted with my kids?"], modality="text")[0]
    scores = focused.voice_scores(mem, vector, n=10, filters=None)
    # speaker-neutral: Bob's first-person turn scores too; Ann's own account scores best
    assert max(scores, key=scores.get) == ids[1] and ids[2] in scores
    plain = grasp_rank(mem, query, config=PLAIN.without("voice"))
    voiced = grasp_rank(mem, query, config=PLAIN)  # on by default
    marked = [f.id for f in voiced.items if "voice" in f.ranks]
    assert ids[1] in marked and not any("voice" in f.ranks for f in plain.items)
    assert {f.id for f in voiced.items} == {f.id for f in plain.items}  # a nudge, nothing rescued
    with pytest.raises(ConfigError):
        GraspConfig(voice_weight=-0.1)
