"""Consolidation (episodic -> semantic) is idempotent; visual memory is searchable by image."""

from __future__ import annotations

import omnimem


def test_consolidation_run_twice_changes_nothing_the_second_time(tmp_path, hash_encoder):
    config = omnimem.MemoryConfig(graph=omnimem.config.GraphConfig(extract_on_add=False))
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, config=config) as mem:
        mem.add_conversation(
            [
                {"speaker": "Alice", "text": "I moved to Berlin last year.", "timestamp": "2022-01-01"},
                {"speaker": "Bob", "text": "Alice moved to Berlin, right?", "timestamp": "2022-01-02"},
                {"speaker": "Alice", "text": "Now I live in Lisbon.", "timestamp": "2023-06-01"},
            ],
            session="s1", episode="chat",
        )  # fmt: skip
        assert mem.graph.counts()["triplets"] == 0  # nothing extracted on add
        first = mem.consolidate()
        assert first["graph_items"] == 3 and first["triplets"] > 0 and first["facts_observed"] > 0
        assert first["summaries"] >= 2 and first["failures"] == 0
        residence = [f.tail for f in mem.facts("Alice") if f.relation in ("live in", "move to")]
        assert residence == ["Lisbon"]  # the contradiction was settled by the job
        state = (mem.graph.counts(), [str(f) for f in mem.facts("Alice", include_retired=True)])
        second = mem.consolidate()
        assert {k: v for k, v in second.items() if k != "seconds"} == {
            "graph_items": 0, "triplets": 0, "entity_merges": 0, "facts_observed": 0, "facts_merged": 0, "personas": 0,
            "summaries": 0, "failures": 0,
        }  # fmt: skip
        assert (mem.graph.counts(), [str(f) for f in mem.facts("Alice", include_retired=True)]) == state


def test_search_by_image(tmp_path, hash_encoder):
    from mediagen import write_tiny_open_clip
    from PIL import Image

    from omnimem.encoders.clip import OpenClipEncoder

    clip = OpenClipEncoder.from_pretrained(str(write_tiny_open_clip(tmp_path / "clip")))
    config = omnimem.MemoryConfig(media=omnimem.config.MediaConfig(ocr=False))
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, image_encoder=clip, config=config) as mem:
        red, blue = Image.new("RGB", (32, 32), (230, 10, 10)), Image.new("RGB", (32, 32), (10, 10, 230))
        (red_id,) = mem.add_image(red, caption="a red card")
        mem.add_image(blue, caption="a blue card")
        assert mem.search_image(red, k=1)[0].id == red_id
    with omnimem.Memory.open(tmp_path / "plain", encoder=hash_encoder) as plain:
        try:
            plain.search_image(red)
        except omnimem.ConfigError as e:
            assert "image_encoder" in str(e)
        else:
            raise AssertionError("expected a ConfigError")


def test_working_memory_spills_oldest_turns_over_budget(mem):
    with mem.working(budget_tokens=30, session="chat-1", count_tokens=lambda t: len(t.split())) as wm:
        assert wm.append("hello there, how are you today my friend", speaker="Ana") == []
        assert wm.append("fine thanks, I just moved to a new flat in Lisbon", speaker="Ben") == []
        spilled = wm.append("great, tell me about the neighbourhood and the river view", speaker="Ana")
        assert len(spilled) == 1 and mem.get(spilled[0]).text.startswith("hello there")
        assert wm.tokens <= 30 and "Ben: fine thanks" in wm.render()
        assert len(mem) == 1
    assert len(mem) == 3  # leaving the block flushed the rest, in order, as one session
    assert [n.items for n in mem.episodes("session")] == [3]
