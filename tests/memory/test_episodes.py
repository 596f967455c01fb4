"""The episodic tree: sessions and episodes with spans, counts, summaries and time-range queries."""

from __future__ import annotations

import numpy as np
import pytest

import omnimem
from omnimem.memory.episodes import central_items


def _chat(mem):
    mem.add_conversation(
        [
            {"speaker": "Ana", "text": "I moved to Lisbon last week.", "timestamp": "2024-03-02T10:00:00"},
            {"speaker": "Ben", "text": "Lisbon is lovely in spring.", "timestamp": "2024-03-02T10:01:00"},
        ],
        session="s1", episode="chat",
    )  # fmt: skip
    mem.add_conversation(
        [{"speaker": "Ana", "text": "My new job at the hospital starts Monday.", "timestamp": "2024-03-20T18:00:00"}],
        session="s2", episode="chat",
    )  # fmt: skip


def test_nodes_follow_their_items(mem):
    _chat(mem)
    sessions = mem.episodes("session")
    assert [(n.session, n.items) for n in sessions] == [("s1", 2), ("s2", 1)]
    assert sessions[0].first_time == "2024-03-02T10:00:00" and sessions[0].last_time == "2024-03-02T10:01:00"
    assert sessions[0].parent == "episode:chat"
    (episode,) = mem.episodes("episode")
    assert episode.items == 3 and episode.last_time == "2024-03-20T18:00:00"
    # a new child updates its parents at once
    mem.add("Ben: congratulations!", speaker="Ben", session="s2", episode="chat", timestamp="2024-03-21")
    assert mem.episodes("episode")[0].items == 4 and mem.episodes("episode")[0].last_time == "2024-03-21T00:00:00"
    # deleting shrinks, and an emptied node disappears
    (only,) = [h.id for h in mem.search("hospital job", k=1)]
    mem.delete(only)
    mem.delete([h.id for h in mem.search("congratulations", k=1)])
    assert [n.session for n in mem.episodes("session")] == ["s1"]


def test_summaries_are_extractive_and_refresh_when_items_change(mem):
    _chat(mem)
    s1 = mem.episodes("session")[0]
    assert s1.summary_kind == "extractive" and not s1.dirty
    assert "Lisbon" in s1.summary and s1.summary.startswith(("Ana:", "Ben:"))
    mem.add("We found a flat near the river in Lisbon.", speaker="Ana", session="s1", episode="chat")
    assert mem.store.nodes(level="session")[0].dirty  # marked, not recomputed inside the add
    assert not mem.episodes("session")[0].dirty  # reading refreshes it


def test_time_range_queries_at_each_scale(mem):
    _chat(mem)
    march_first_half = mem.episodes("session", since="2024-03-01", until="2024-03-15")
    assert [n.session for n in march_first_half] == ["s1"]
    assert [n.episode for n in mem.episodes("episode", since="2024-03-10")] == ["chat"]
    assert mem.episodes("session", since="2025-01-01") == []
    with pytest.raises(omnimem.ConfigError):
        mem.episodes("decade")


def test_timeline_selects_a_media_span(mem):
    from omnimem.types import Item

    segments = [
        Item.make(modality="video", text=f"minute {m} of the film", episode="film", session=f"film#{m}",
                  t_start=60.0 * m, t_end=60.0 * (m + 1))
        for m in range(180)
    ]  # fmt: skip
    mem.add_items(segments)
    second_hour = mem.timeline("film", t_start=3600, t_end=7200)
    assert len(second_hour) == 60 and second_hour[0].text == "minute 60 of the film"
    assert [i.t_start for i in second_hour] == sorted(i.t_start for i in second_hour)
    (film,) = mem.episodes("episode", episode="film")
    assert film.t_start == 0.0 and film.t_end == 10800.0 and film.items == 180


def test_llm_summaries_when_a_generator_is_given(tmp_path, hash_encoder):
    class Scripted:
        name = "scripted"

        def __init__(self):
            self.prompts = []

        def generate(self, messages, **kwargs):
            self.prompts.append(messages[-1]["content"])
            return type("G", (), {"text": "Ana moved to Lisbon and Ben liked it."})()

    generator = Scripted()
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, generator=generator) as mem:
        _chat(mem)
        s1 = mem.episodes("session")[0]
        assert s1.summary == "Ana moved to Lisbon and Ben liked it." and s1.summary_kind == "llm"
        assert "[E1] Ana: I moved to Lisbon last week." in generator.prompts[0]


def test_existing_items_get_nodes_when_the_schema_migrates(tmp_path, hash_encoder):
    from omnimem.stores.sqlite import SQLiteRecordStore

    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder) as mem:
        _chat(mem)
    store = SQLiteRecordStore(tmp_path / "m" / "memory.db")
    store.conn.execute("DROP TABLE nodes")
    store.conn.execute("DROP INDEX items_episode_session")
    for table in ("item_stats", "archive", "archive_vectors", "meta", "pending", "vector_log"):  # schemas 3-5
        store.conn.execute(f"DROP TABLE {table}")
    store.conn.execute("DROP INDEX vectors_key")  # schema 5's column of the vectors table
    store.conn.execute("ALTER TABLE vectors DROP COLUMN key")
    store.conn.execute("PRAGMA user_version=1")  # as written by the first release
    store.close()
    with omnimem.Memory.open(tmp_path / "m") as mem:
        assert [n.items for n in mem.episodes("session")] == [2, 1]


def test_central_items_prefers_the_centre_and_diversifies():
    rng = np.random.default_rng(0)
    centre = rng.normal(size=8)
    rows = [centre + 0.1 * rng.normal(size=8) for _ in range(5)] + [rng.normal(size=8)]
    vectors = np.array(rows, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    picks = central_items(vectors, 3)
    assert len(picks) == 3 and 5 not in picks[:1] and len(set(picks)) == 3
    assert central_items(vectors[:0], 3) == []


def test_timeline_takes_a_node_its_id_or_an_episode_id(mem):
    _chat(mem)
    session, episode = mem.episodes("session")[0], mem.episodes("episode")[0]
    texts = lambda items: [i.text for i in items]
    assert texts(mem.timeline(episode)) == texts(mem.timeline("chat")) == texts(mem.timeline(episode.id))
    assert len(mem.timeline(episode)) == 3
    assert (
        texts(mem.timeline(session))
        == texts(mem.timeline(session.id))
        == [
            "I moved to Lisbon last week.",
            "Lisbon is lovely in spring.",
        ]
    )
    with pytest.raises(omnimem.NotFound, match="mem.episodes"):
        mem.timeline("session:chat/nope")
    with pytest.raises(omnimem.ConfigError, match="Node"):
        mem.timeline(42)  # type: ignore[arg-type]


def test_a_deleted_item_leaves_no_words_in_summaries(mem):
    _chat(mem)
    mem.add("See you soon.", speaker="Ana", session="s1", episode="chat", timestamp="2024-03-02T10:02:00")
    assert "Lisbon" in mem.episodes("session")[0].summary
    mem.forget(speakers=["Ben"])
    mem.forget([h.id for h in mem.search("I moved to Lisbon last week", k=1)])
    summaries = [n.summary for n in mem.store.nodes()]  # as stored, before any refresh
    assert not any("Lisbon" in s for s in summaries)


def test_reading_episodes_while_another_process_writes_does_not_wait(tmp_path, hash_encoder):
    import time

    from omnimem.stores.sqlite_driver import sqlite3  # the store's SQLite (one library per process)

    config = omnimem.MemoryConfig(store=omnimem.config.StoreConfig(busy_timeout=5))
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, config=config) as mem:
        _chat(mem)
        writer = sqlite3.connect(tmp_path / "m" / "memory.db", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        sessions = mem.episodes("session")
        assert time.monotonic() - started < 2
        assert all(n.summary and not n.dirty for n in sessions)  # computed for this read, not saved
        assert all(n.dirty for n in mem.store.nodes(level="session"))
        writer.execute("ROLLBACK")
        writer.close()
        mem.episodes("session")
        assert not any(n.dirty for n in mem.store.nodes(level="session"))  # saved once the lock was free
