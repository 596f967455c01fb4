"""Forgetting: a privacy delete leaves no trace anywhere; decay scores; prune archives, restore undoes."""

from __future__ import annotations

import time

import pytest
from PIL import Image

import omnimem
from omnimem.graph.export import export_graph
from omnimem.graph.store import to_networkx
from omnimem.memory.forgetting import ForgetPolicy, decay_score

SECRET = "My passport number is ZX9931447 and my PIN is 8812."


def _files(path):
    return [p for p in path.rglob("*") if p.is_file()]


def test_forget_leaves_no_trace_in_any_store_or_file(tmp_path, hash_encoder):
    config = omnimem.MemoryConfig(media=omnimem.config.MediaConfig(ocr=False))
    path = tmp_path / "m"
    with omnimem.Memory.open(path, encoder=hash_encoder, config=config) as mem:
        mem.add("Bob likes jazz and lives in Oslo.", speaker="Bob", session="s1")
        (secret,) = mem.add(SECRET, speaker="Eve", session="s1", metadata={"kind": "secret"})
        (photo,) = mem.add_image(Image.new("RGB", (16, 16), (1, 2, 3)), caption="Eve's passport photo")
        vector = mem.encoder.encode([f"Eve: {SECRET}"])
        mem.store.read("PRAGMA wal_checkpoint(TRUNCATE)")
        blob = mem.get(photo).blob
        report = mem.forget([secret, photo])
        assert sorted(report.items) == sorted([secret, photo]) and report.blobs == 1
        assert blob not in mem.blobs
        assert not mem.search("ZX9931447 passport", k=5, retrievers=("bm25",))
        assert secret not in [i for i, _ in mem.indexes["text"].index.search(vector, 10)[0]]
        assert all(secret not in [s for t in mem.graph.triplets() for s in t.sources] for _ in [0])
        assert not mem.graph.find_entities("ZX9931447") and not mem.graph.find_entities("PIN")
        assert len(mem) == 1 and mem.check()["ok"]
    for file in _files(path):  # the database, its WAL, the index files, the blobs
        data = file.read_bytes()
        assert b"ZX9931447" not in data, file
        assert b"passport photo" not in data, file
    with omnimem.Memory.open(path) as mem:
        assert len(mem) == 1 and mem.search("jazz", k=1)[0].speaker == "Bob"


def test_forget_by_filter(mem):
    mem.add("one", speaker="A", session="s1", timestamp="2020-01-01")
    mem.add("two", speaker="B", session="s1", timestamp="2022-01-01")
    mem.add("three", speaker="A", session="s2", timestamp="2023-01-01")
    assert len(mem.forget(speakers=["A"], before="2021-01-01").items) == 1
    assert len(mem.forget(sessions="s1").items) == 1
    assert [mem.get(i).text for i in mem.store.ids()] == ["three"]
    with pytest.raises(omnimem.ConfigError, match="filter"):
        mem.forget()


def test_decay_score_falls_with_age_and_rises_with_use():
    policy = ForgetPolicy(half_life_days=30)
    assert decay_score(30, 0, 1.0, policy) == pytest.approx(0.5)
    assert decay_score(60, 0, 1.0, policy) < decay_score(30, 0, 1.0, policy)
    assert decay_score(60, 10, 1.0, policy) > decay_score(60, 0, 1.0, policy)
    assert decay_score(0, 0, 2.0, policy) == pytest.approx(2.0)


def test_prune_archives_weak_memories_and_restore_brings_them_back(mem):
    (old,) = mem.add("an old remark about the weather", timestamp="2020-01-01")
    (used,) = mem.add("an old but often recalled fact about Oslo", timestamp="2020-01-01")
    (new,) = mem.add("a fresh note about lunch", timestamp="2026-11-01")
    for _ in range(30):
        mem.store.touch_access([used], "2026-11-01T00:00:00+00:00")
    report = mem.prune(ForgetPolicy(half_life_days=90, threshold=0.05), now="2026-11-20")
    assert report.items == [old]
    assert len(mem) == 2 and not mem.search("weather remark", k=5, retrievers=("bm25",))
    assert [a[0] for a in mem.store.archived()] == [old]
    (back,) = mem.restore(old)
    assert back.text == "an old remark about the weather" and len(mem) == 3
    assert mem.search("an old remark about the weather", k=1, retrievers=("dense",))[0].id == old
    assert mem.store.archived() == []
    assert new in set(mem.store.ids())


def test_search_counts_accesses(mem):
    (item,) = mem.add("penguins live in Antarctica")
    mem.search("penguins", k=1)
    mem.search("penguins Antarctica", k=1)
    assert mem.store.stats([item])[item][0] == 2


# -- a privacy delete leaves nothing behind (by id, by speaker, by session) ---------------------------
EVE = "Eve booked the zorblatt trial at Quixville clinic for her mother."
EVE_TOKENS = ("zorblatt", "quixville")


def _eve_memory(path, hash_encoder):
    config = omnimem.MemoryConfig(media=omnimem.config.MediaConfig(ocr=False))
    mem = omnimem.Memory.open(path, encoder=hash_encoder, config=config)
    mem.add_conversation(
        [
            {"speaker": "Bob", "text": "Bob plays jazz piano in Oslo every Friday."},
            {"speaker": "Eve", "text": EVE, "timestamp": "2024-05-02T10:00:00"},
            {"speaker": "Bob", "text": "Good luck with that, the clinic is far from Oslo."},
        ],
        session="s1",
        episode="chat",
    )
    mem.add("Bob bought a new piano in Oslo.", speaker="Bob", session="s2", episode="chat")
    uploads = path / "uploads"
    uploads.mkdir()
    (uploads / "eve-note.txt").write_text(f"{EVE}\n")
    mem.ingest(uploads / "eve-note.txt")
    mem.consolidate()
    summaries = " ".join(n.summary for n in mem.episodes()).lower()
    assert "zorblatt" in summaries  # before: her words are in the summaries
    return mem


def _eve_ids(mem):
    return [i.id for i in mem.store.get(list(mem.store.ids())) if "zorblatt" in i.text.lower()]


def _scan(path) -> list[str]:
    """Files under ``path`` holding a forgotten token, in any letter case."""
    return [
        f"{file} holds {token!r}"
        for file in path.rglob("*")
        if file.is_file()
        for token in EVE_TOKENS
        if token.encode() in file.read_bytes().lower()
    ]


@pytest.mark.parametrize("how", ["ids", "speaker", "session"])
def test_forget_leaves_no_trace_in_any_file_or_read_api(tmp_path, hash_encoder, how):
    path = tmp_path / "m"
    mem = _eve_memory(path, hash_encoder)
    try:
        if how == "ids":
            report = mem.forget(_eve_ids(mem))
        elif how == "speaker":  # her turn by speaker, the upload (no speaker) by its source
            report = mem.forget(speakers=["Eve"])
            report.files += mem.forget(sources=[str(path / "uploads" / "eve-note.txt")]).files
        else:
            report = mem.forget(sessions=["s1"])
            report.files += mem.forget(_eve_ids(mem)).files
        assert report.wal_truncated
        assert not _eve_ids(mem) and len(mem) >= 1
        assert not (path / "uploads" / "eve-note.txt").exists()
        blob = " ".join(
            [
                *(h.text for h in mem.search("zorblatt trial Quixville clinic", k=20)),
                mem.context("What did Eve book at the clinic?", budget_tokens=2_000).render(),
                *(n.summary for n in mem.episodes()),
                *(i.text for n in mem.episodes() for i in mem.timeline(n)),
                *(str(f) for e in ("Eve", "zorblatt", "Quixville") for f in mem.facts(e, include_retired=True)),
                *(str(d) for _, d in to_networkx(mem.graph).nodes(data=True)),
                export_graph(mem.graph, format="json", output=tmp_path / "graph.json").read_text(),
            ]
        ).lower()
        assert not any(token in blob for token in EVE_TOKENS), blob
        assert "oslo" in blob  # Bob's memories are still there
        assert mem.check()["ok"]
    finally:
        mem.close()
    assert _scan(path) == []


def test_forget_with_a_reader_holding_the_wal(tmp_path, hash_encoder):
    from omnimem.stores.sqlite_driver import sqlite3  # the store's SQLite (one library per process)

    config = omnimem.MemoryConfig(store=omnimem.config.StoreConfig(busy_timeout=0.3))
    path = tmp_path / "m"
    with omnimem.Memory.open(path, encoder=hash_encoder, config=config) as mem:
        mem.add("Bob plays jazz piano in Oslo.", speaker="Bob")
        (eve,) = mem.add(EVE, speaker="Eve")
        reader = sqlite3.connect(path / "memory.db", isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM items").fetchone()  # holds a snapshot that still has her turn
        report = mem.forget(eve)
        assert not report.wal_truncated  # said, not ignored: her words may still be in the WAL
        reader.execute("COMMIT")
        reader.close()
        assert mem.store.purge()
        assert len(mem) == 1
    assert _scan(path) == []


def test_access_statistics_never_wait_for_the_write_lock(tmp_path, hash_encoder):
    from omnimem.stores.sqlite_driver import sqlite3  # the store's SQLite (one library per process)

    config = omnimem.MemoryConfig(store=omnimem.config.StoreConfig(busy_timeout=5))
    path = tmp_path / "m"
    with omnimem.Memory.open(path, encoder=hash_encoder, config=config) as mem:
        (item,) = mem.add("penguins live in Antarctica")
        writer = sqlite3.connect(path / "memory.db", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # another process writing
        started = time.monotonic()
        assert mem.search("penguins", k=1)[0].id == item
        assert mem.context("Where do penguins live?").entries
        assert time.monotonic() - started < 2  # not the 5 s busy timeout
        assert mem.store.stats([item])[item][0] == 2  # counted, in the buffer
        writer.execute("ROLLBACK")
        writer.close()
        mem.add("the next write carries the counts")
        assert mem.store.read("SELECT access_count FROM item_stats WHERE item_id = ?", (item,)) == [(2,)]


def test_consolidation_writes_personas_and_forget_rewrites_them(tmp_path, hash_encoder):
    from omnimem.memory.personas import personas

    path = tmp_path / "m"
    with omnimem.Memory.open(path, encoder=hash_encoder) as mem:
        turns = [
            {"speaker": "Eve", "text": "I love the zorblatt trial at the Quixville clinic."},
            {"speaker": "Eve", "text": "I'm a nurse at the Quixville clinic."},
            {"speaker": "Eve", "text": "My zorblatt results come in May."},
            {"speaker": "Eve", "text": "I think the zorblatt trial will work."},
            {"speaker": "Eve", "text": "I have a zorblatt appointment on Friday."},
        ]
        turns += [{"speaker": "Bob", "text": f"I play jazz piano in Oslo, night {n}."} for n in range(5)]
        mem.add_conversation(turns, session="s1")
        assert mem.consolidate()["personas"] == 2
        assert "zorblatt" in personas(mem)["Eve"]["summary"].lower()
        assert mem.consolidate()["personas"] == 0  # the same turns: nothing rewritten
        mem.forget(speakers=["Eve"])
        left = personas(mem)
        assert "Eve" not in left and "oslo" in left["Bob"]["summary"].lower()
    assert _scan(path) == []
