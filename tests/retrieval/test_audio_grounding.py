"""GRASP grounding in a query's audio: facts whose entities are not heard are dropped."""

from __future__ import annotations

import numpy as np
import pytest

from omnimem.retrieval import retrieve_context
from omnimem.retrieval.grounding import transcript_presence

PUPPY = "Ann adopted a puppy named Rex."
BARK = "The neighbour's dog barked at the mailman."


def _remember(mem, first: str = PUPPY) -> None:
    """Two turns of one session: Ann's (``first``) and Ben's about his car."""
    mem.add(first, speaker="Ann", session="s1")
    mem.add("Ben bought a red car in Berlin.", speaker="Ben", session="s1")


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
    _remember(mem)
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
        _remember(mem)
        ctx = mem.context("What do you know?", audio=wav, budget_tokens=400)
    assert "Rex" in ctx.items[0].text and "query_audio" in ctx.items[0].retrievers
    assert all("Ben" not in f.text for f in ctx.facts)


class _BarkClap:
    """An audio-text double: the query audio is a dog barking; sentences about barking match it."""

    modalities = ("text", "audio")

    def encode(self, inputs, *, modality="text"):
        if modality == "audio":
            return np.array([[1.0, 0.0]] * len(inputs), dtype=np.float32)
        return np.array([[1.0, 0.0] if "bark" in t else [0.0, 1.0] for t in inputs], dtype=np.float32)


def test_an_audio_text_model_keeps_facts_heard_in_the_audio_itself(mem):
    _remember(mem, BARK)
    query = "What happened?"
    heard = retrieve_context(mem, query, budget_tokens=400, audio=np.zeros(16000), audio_encoder=_BarkClap())
    facts = [e.text for e in heard.facts]
    assert facts and all("bark" in f for f in facts)  # no transcript: the audio-text model alone decides
    both = retrieve_context(
        mem, query, budget_tokens=400, audio_text="Ben and his car", audio=np.zeros(16000), audio_encoder=_BarkClap()
    )
    kinds = {("bark" in e.text, "Ben" in e.text) for e in both.facts}
    assert (True, False) in kinds and (False, True) in kinds  # heard in the audio or in its transcript


def test_memory_context_uses_the_configured_clap_model(tmp_path, hash_encoder):
    import dataclasses

    from mediagen import tone, write_audio, write_tiny_clap

    import omnimem

    pytest.importorskip("transformers")
    clap = write_tiny_clap(tmp_path / "clap")
    config = omnimem.MemoryConfig()
    config = dataclasses.replace(config, media=dataclasses.replace(config.media, audio_text_model=str(clap)))
    wav = write_audio(tmp_path / "q.wav", tone(1.0))
    with omnimem.Memory.open(tmp_path / "m", config=config, encoder=hash_encoder) as mem:
        _remember(mem, BARK)
        silent = {e.id for e in mem.context("What happened?", budget_tokens=400).facts}
        ctx = mem.context("What happened?", audio=wav, budget_tokens=400)
        assert mem._clap is not None and mem._clap.registry_name == "hf_clap"
        assert {e.id for e in ctx.facts} <= silent and ctx.items  # random weights: facts only ever drop


def test_a_query_video_is_read_as_frames_and_its_audio_track(tmp_path, minilm, speak, scene_video):
    from mediagen import write_video

    import omnimem
    from omnimem.memory.query_media import query_video

    frames, audio = query_video(scene_video)
    assert len(frames) == 4 and audio is None and all(f.size[0] <= 336 for f in frames)
    speech = speak("Tell me about the puppy Rex.", tmp_path / "s.wav")
    clip = write_video(
        tmp_path / "q.mp4", audio=np.concatenate([speech, np.zeros(16000 * 24, np.float32)])[: 16000 * 24]
    )
    with omnimem.Memory.open(tmp_path / "m", encoder=minilm) as mem:
        _remember(mem)
        ctx = mem.context("What do you know?", video=clip, budget_tokens=400)
    assert "Rex" in ctx.items[0].text and "query_audio" in ctx.items[0].retrievers
    assert all("Ben" not in f.text for f in ctx.facts)
