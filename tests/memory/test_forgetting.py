"""Forgetting: a privacy delete leaves no trace anywhere; decay scores; prune archives, restore undoes."""

from __future__ import annotations

import pytest
from PIL import Image

import omnimem
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
