"""The whole memory API on a real PostgreSQL server (pgvector): Memory.open("postgresql://...")."""

from __future__ import annotations

import pytest
from PIL import Image

import omnimem
from omnimem.graph.store import to_networkx
from omnimem.memory.transfer import migrate_memory, text_checksum

pytest.importorskip("psycopg")

EVE = "Eve booked the zorblatt trial at Quixville clinic for her mother."


def _open(url, encoder, **kw):
    config = omnimem.MemoryConfig(media=omnimem.config.MediaConfig(ocr=False))
    return omnimem.Memory.open(url, encoder=encoder, config=config, **kw)


def test_add_search_context_episodes_facts_on_postgres(pg_url, hash_encoder, tmp_path):
    url = f"{pg_url}&files={tmp_path / 'files'}"
    with _open(url, hash_encoder) as mem:
        ids = mem.add_conversation(
            [
                {"speaker": "Alice", "text": "I moved to Berlin in March.", "timestamp": "2023-03-02"},
                {"speaker": "Bob", "text": "Yes."},
                {"speaker": "Alice", "text": "I moved to Lisbon in May.", "timestamp": "2023-05-02"},
                {"speaker": "Bob", "text": "Yes."},
            ],
            session="s1",
            episode="chat",
        )
        assert len(set(ids)) == 4 and len(mem) == 4
        assert (
            mem.add_conversation([{"speaker": "Bob", "text": "Yes."}], session="s1", episode="chat", start=1)
            == ids[1:2]
        )
        hit = mem.search("Where did Alice move in May?", k=2)[0]
        assert "Lisbon" in hit.text and "bm25" in hit.retrievers
        assert {h.speaker for h in mem.search("Lisbon", k=5, speakers=["Bob"])} <= {"Bob"}
        ctx = mem.context("Where does Alice live?", budget_tokens=400)
        assert ctx.entries and ctx.render()
        (session,) = mem.episodes("session")
        assert session.items == 4 and session.summary
        assert sorted(i.id for i in mem.timeline(session)) == sorted(ids)
        mem.consolidate()
        lives = [f for f in mem.facts("Alice", include_retired=True) if f.relation == "move to"]
        assert {f.tail for f in lives} >= {"Berlin", "Lisbon"}
        then = {f.tail for f in mem.facts("Alice", as_of="2023-04-01") if f.relation == "move to"}
        assert then == {"Berlin"}
        assert to_networkx(mem.graph).number_of_nodes() > 0
        (photo,) = mem.add_image(Image.new("RGB", (16, 16), (1, 2, 3)), caption="Alice at the harbour")
        blob = mem.get(photo).blob
        assert blob in mem.blobs and mem.blobs.get(blob)[:4] == b"\x89PNG"  # the image, in the database
        assert mem.check()["ok"]
    with omnimem.Memory.open(url) as again:  # reopens with the config saved in the schema
        assert len(again) == 5 and again.encoder.name == hash_encoder.name


def test_forget_on_postgres_leaves_no_trace_in_any_read(pg_url, hash_encoder, tmp_path):
    url = f"{pg_url}&files={tmp_path / 'files'}"
    with _open(url, hash_encoder) as mem:
        mem.add_conversation(
            [{"speaker": "Bob", "text": "Bob plays jazz piano in Oslo."}, {"speaker": "Eve", "text": EVE}],
            session="s1",
            episode="chat",
        )
        mem.consolidate()
        assert "zorblatt" in " ".join(n.summary for n in mem.episodes()).lower()
        report = mem.forget(speakers=["Eve"])
        assert len(report.items) == 1 and report.wal_truncated
        seen = " ".join(
            [
                *(h.text for h in mem.search("zorblatt Quixville clinic", k=10)),
                mem.context("What did Eve book?").render(),
                *(n.summary for n in mem.episodes()),
                *(str(f) for f in mem.facts("Eve", include_retired=True)),
                *(str(d) for _, d in to_networkx(mem.graph).nodes(data=True)),
            ]
        ).lower()
        assert "zorblatt" not in seen and "quixville" not in seen and "oslo" in seen
        assert mem.check()["ok"]


def test_migrate_sqlite_to_postgres_and_back(pg_url, hash_encoder, tmp_path):
    with _open(tmp_path / "a", hash_encoder) as mem:
        mem.add_conversation(
            [{"speaker": "Alice", "text": "I moved to Berlin in March."}, {"speaker": "Bob", "text": "Nice!"}],
            session="s1",
        )
        mem.consolidate()
        checksum, graph = text_checksum(mem), mem.graph.counts()
    trailer = migrate_memory(tmp_path / "a", pg_url, encoder=hash_encoder)
    assert trailer["checksum"] == checksum
    with omnimem.Memory.open(pg_url) as on_pg:
        assert text_checksum(on_pg) == checksum and on_pg.graph.counts() == graph
        assert on_pg.search("Berlin", k=1)[0].speaker == "Alice"
    migrate_memory(pg_url, tmp_path / "b", encoder=hash_encoder)
    with omnimem.Memory.open(tmp_path / "b") as back:
        assert text_checksum(back) == checksum and back.graph.counts() == graph


def test_two_processes_creating_one_memory_tell_who_created_it(pg_url, hash_encoder, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    def create(_):
        mem = _open(pg_url, hash_encoder)
        try:
            return mem.created
        finally:
            mem.close()

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(create, range(4))) == [False, False, False, True]
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder) as first:
        assert first.created
    with omnimem.Memory.open(tmp_path / "m") as again:
        assert not again.created


def test_a_search_deeper_than_pgvectors_ef_limit_and_a_dated_context(pg_url, hash_encoder, tmp_path):
    url = f"{pg_url}&files={tmp_path / 'files'}"
    with _open(url, hash_encoder) as mem:
        mem.add([f"note {n} about the garden" for n in range(30)], session="s0")
        mem.add("We went hiking in the hills.", speaker="Ann", timestamp="2023-05-08", session="s1")
        index = mem.indexes["text"]
        assert len(index.search(mem.encoder.encode(["garden"]), 3_200)[0]) == 31  # k past hnsw.ef_search's cap
        hits = mem.context("What did Ann do in May 2023?", budget_tokens=400)  # a time window: a filtered search
        assert any("hiking" in e.text for e in hits.entries)
