"""GRASP grounding in a query's audio: facts whose entities are not heard are dropped."""

from __future__ import annotations

from omnimem.retrieval import retrieve_context
from omnimem.retrieval.grounding import transcript_presence


def test_transcript_presence_hears_names_and_close_misspellings():
    heard = "Carolyn said she went to the lighthouse with her dog Rex."
    scores = transcript_presence(heard, ["Caroline", "Rex", "lighthouse", "Melanie", "Paris", "the dog"])
    assert scores[1] == scores[2] == 1.0  # heard as written
    assert 0.75 <= scores[0] < 1.0  # an ASR spelling of the name
    assert scores[3] == scores[4] == 0.0  # not said at all
    assert transcript_presence("", ["Rex"]).tolist() == [0.0]


def _facts(ctx):
    return [e.text for e in ctx.facts]


def test_audio_grounding_keeps_heard_facts_and_drops_the_rest(mem):
    mem.add("Ann adopted a puppy named Rex.", speaker="Ann", session="s1")
    mem.add("Ben bought a red car in Berlin.", speaker="Ben", session="s1")
    query = "What happened?"
    silent = retrieve_context(mem, query, budget_tokens=400)
    assert any("Ben" in f for f in _facts(silent)) and any("Ann" in f for f in _facts(silent))
    heard = retrieve_context(mem, query, budget_tokens=400, audio_text="Ann told me about her puppy Rex.")
    assert heard.facts and all("Ben" not in f for f in _facts(heard))
    assert heard.items[0].text.endswith("Ann adopted a puppy named Rex.")  # the audio also searches
    assert "query_audio" in heard.items[0].retrievers


def test_memory_context_transcribes_the_query_audio(tmp_path, minilm, speak):
    import omnimem

    wav = tmp_path / "q.wav"
    speak("Tell me about the puppy Rex.", wav)
    with omnimem.Memory.open(tmp_path / "m", encoder=minilm) as mem:
        mem.add("Ann adopted a puppy named Rex.", speaker="Ann", session="s1")
        mem.add("Ben bought a red car in Berlin.", speaker="Ben", session="s1")
        ctx = mem.context("What do you know?", audio=wav, budget_tokens=400)
    assert "Rex" in ctx.items[0].text and "query_audio" in ctx.items[0].retrievers
    assert all("Ben" not in f.text for f in ctx.facts)
