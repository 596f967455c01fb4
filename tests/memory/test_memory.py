"""The Memory facade: persistence, idempotence, updates, deletes reaching every index, filters."""

from __future__ import annotations

import json

import numpy as np
import pytest

import omnimem
from omnimem.errors import ConfigError, NotFound


def test_add_search_roundtrip(mem):
    ids = mem.add(
        "Alice moved to Berlin in March.", speaker="Alice", timestamp="2023-03-02T10:00:00",
        session="s1", metadata={"dia_id": "D1:3"},
    )  # fmt: skip
    mem.add_conversation(
        [
            {"speaker": "Bob", "text": "I adopted a golden retriever named Max.", "metadata": {"dia_id": "D1:4"}},
            {"speaker": "Alice", "text": "The weather in Berlin is cold.", "timestamp": "2023-03-03"},
        ],
        session="s1",
    )
    assert len(ids) == 1 and len(mem) == 3
    hits = mem.search("Alice moved to Berlin", k=2)
    assert hits[0].id == ids[0]
    assert hits[0].metadata == {"dia_id": "D1:4"} or hits[0].metadata == {"dia_id": "D1:3"}
    assert hits[0].metadata["dia_id"] == "D1:3"
    assert set(hits[0].retrievers) == {"dense", "bm25"}
    assert hits[0].speaker == "Alice" and hits[0].event_time == "2023-03-02T10:00:00"
    assert hits[0].score >= hits[1].score


def test_adding_the_same_thing_twice_is_a_no_op(mem):
    first = mem.add("The sky is blue.", speaker="A", session="s")
    second = mem.add("The sky is blue.", speaker="A", session="s")
    assert first == second and len(mem) == 1
    assert len(mem.indexes["text"]) == 1
    assert mem.add("The sky is blue.", speaker="B", session="s") != first  # another speaker: another memory
    batch = mem.add(["one", "two", "one"])
    assert batch[0] == batch[2] and len(mem) == 4


def test_reopen_restores_everything(tmp_path, hash_encoder):
    path = tmp_path / "m"
    with omnimem.Memory.open(path, encoder=hash_encoder) as mem:
        ids = mem.add(["red apples grow on trees", "blue whales swim in the ocean"], session="s1")
    config = json.loads((path / "config.json").read_text())
    assert config["encoder"]["name"] == "hash" and config["encoder"]["dim"] == 64
    with omnimem.Memory.open(path) as mem:  # no arguments: the saved config names the encoder
        assert len(mem) == 2
        assert mem.search("whales ocean", k=1)[0].id == ids[1]
        assert mem.search("whales ocean", k=1, retrievers=("dense",))[0].id == ids[1]
        assert mem.get(ids[0]).session == "s1"


def test_update_reembeds_and_reindexes(mem):
    (item_id,) = mem.add("Alice lives in Berlin.")
    mem.add("Bob likes jazz music.")
    updated = mem.update(item_id, text="Alice lives in Lisbon.", metadata={"corrected": True})
    assert updated.id == item_id and mem.get(item_id).text == "Alice lives in Lisbon."
    assert mem.get(item_id).metadata == {"corrected": True}
    assert mem.search("Lisbon", k=1, retrievers=("bm25",))[0].id == item_id
    assert mem.search("Alice lives in Lisbon", k=1, retrievers=("dense",))[0].id == item_id
    assert not mem.search("Berlin", k=5, retrievers=("bm25",))
    with pytest.raises(ConfigError):
        mem.update(item_id, colour="red")


def test_delete_reaches_sqlite_fts_and_vector_index(mem):
    keep, gone = mem.add(["penguins live in Antarctica", "kangaroos live in Australia"])
    vector = mem.encoder.encode(["kangaroos live in Australia"])
    assert mem.delete(gone) == 1
    assert mem.delete(gone) == 0
    with pytest.raises(NotFound):
        mem.get(gone)
    assert all(h.id != gone for h in mem.search("kangaroos Australia", k=5))
    assert gone not in [i for i, _ in mem.indexes["text"].index.search(vector, 5)[0]]
    assert mem.store.bm25("kangaroos", 5) == []
    assert len(mem) == 1 and len(mem.indexes["text"]) == 1
    assert mem.check()["ok"]


def test_search_filters(mem):
    mem.add("Alice went hiking on the weekend.", speaker="Alice", session="s1", timestamp="2023-01-01")
    mem.add("Bob went hiking in the mountains.", speaker="Bob", session="s2", timestamp="2023-06-01")
    assert [h.speaker for h in mem.search("hiking", speakers=["Bob"])] == ["Bob"]
    assert [h.speaker for h in mem.search("hiking", sessions="s1")] == ["Alice"]
    assert [h.speaker for h in mem.search("hiking", since="2023-03-01")] == ["Bob"]
    assert [h.speaker for h in mem.search("hiking", until="2023-03-01", retrievers=("dense",))] == ["Alice"]
    assert mem.search("hiking", modalities=["image"]) == []


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.add(""), "empty"),
        (lambda m: m.add("   \n"), "empty"),
        (lambda m: m.add(42), "str"),
        (lambda m: m.add(["ok", None]), "str"),
        (lambda m: m.add("x", modality="smell"), "modality"),
        (lambda m: m.add("x", timestamp="last tuesday"), "ISO-8601"),
        (lambda m: m.add("x", metadata={"a": object()}), "JSON"),
        (lambda m: m.add("x", metadata=["not", "a", "dict"]), "dict"),
        (lambda m: m.add_conversation([{"speaker": "A"}]), "no 'text'"),
        (lambda m: m.add_conversation(["just a string"]), "dict"),
        (lambda m: m.add_conversation([{"text": "hi", "colour": "red"}]), "unknown key"),
        (lambda m: m.search(""), "non-empty"),
        (lambda m: m.search("x", k=0), "positive"),
        (lambda m: m.search("x", retrievers=("magic",)), "retriever"),
        (lambda m: m.search("x", modalities=["smell"]), "modality"),
        (lambda m: m.get("nope"), "no item"),
    ],
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(mem, call, message):
    mem.add("already here")
    with pytest.raises((ConfigError, NotFound), match=message):
        call(mem)
    assert len(mem) == 1


def test_directory_that_is_not_a_memory(tmp_path, hash_encoder):
    (tmp_path / "notes.txt").write_text("my notes")
    with pytest.raises(ConfigError, match="not an omnimem memory"):
        omnimem.Memory.open(tmp_path, encoder=hash_encoder)
    with pytest.raises(ConfigError, match="is a file"):
        omnimem.Memory.open(tmp_path / "notes.txt", encoder=hash_encoder)
    with pytest.raises(NotFound):
        omnimem.Memory.open(tmp_path / "absent", create=False)
    with pytest.raises(ConfigError, match="os.PathLike"):
        omnimem.Memory.open(123)  # type: ignore[arg-type]


def test_memory_built_with_another_dimension(tmp_path, hash_encoder):
    from omnimem.encoders.hashing import HashEncoder

    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder) as mem:
        mem.add("something")
    with pytest.raises(ConfigError, match="64-d"):
        omnimem.Memory.open(tmp_path / "m", encoder=HashEncoder(32))
    with omnimem.Memory.open(tmp_path / "m") as mem:  # nothing was changed by the refused open
        assert len(mem) == 1


def test_corrupt_database_and_config(tmp_path, hash_encoder):
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder) as mem:
        mem.add("something")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(omnimem.CorruptInput, match="config.json"):
        omnimem.Memory.open(tmp_path / "m")
    (tmp_path / "m" / "config.json").unlink()
    (tmp_path / "m" / "memory.db").write_bytes(b"\x00garbage" * 512)
    for suffix in ("-wal", "-shm"):
        (tmp_path / "m" / f"memory.db{suffix}").unlink(missing_ok=True)
    with pytest.raises(omnimem.CorruptInput, match="memory.db"):
        omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder)


def test_index_drift_is_repaired_on_open(tmp_path, hash_encoder):
    path = tmp_path / "m"
    with omnimem.Memory.open(path, encoder=hash_encoder) as mem:
        ids = mem.add([f"fact number {n} about topic {n % 7}" for n in range(30)])
    # Simulate a crash after the SQLite commit but before the index write: an older index file.
    stale = (path / "index" / "text.faiss").read_bytes(), (path / "index" / "text.faiss.ids.json").read_text()
    with omnimem.Memory.open(path) as mem:
        new = mem.add(["a late fact about zebras"])
        mem.indexes["text"]._unsaved = 0  # do not save on close: the file stays stale
    (path / "index" / "text.faiss").write_bytes(stale[0])
    (path / "index" / "text.faiss.ids.json").write_text(stale[1])
    with omnimem.Memory.open(path) as mem:
        assert mem.indexes["text"].last_report.added == 1
        assert mem.search("a late fact about zebras", k=1, retrievers=("dense",))[0].id == new[0]
        assert len(mem.indexes["text"]) == 31
    # A corrupt index file is rebuilt from SQLite.
    (path / "index" / "text.faiss").write_bytes(b"junk")
    with omnimem.Memory.open(path) as mem:
        assert mem.indexes["text"].last_report.rebuilt
        assert len(mem.indexes["text"]) == 31
        assert mem.search(f"fact number 5 about topic {5 % 7}", k=1, retrievers=("dense",))[0].id == ids[5]


def test_check_reports_and_repairs_drift(mem):
    ids = mem.add(["alpha beta", "gamma delta", "epsilon zeta"])
    mem.indexes["text"].index.delete([ids[0]])  # drift behind the memory's back
    report = mem.check(repair=False)
    assert report["indexes"]["text"]["missing"] == 1 and not report["ok"]
    report = mem.check()
    assert report["ok"] and report["indexes"]["text"]["repaired"]
    assert mem.check(repair=False)["indexes"]["text"]["missing"] == 0


def test_closed_memory_refuses_work(tmp_path, hash_encoder):
    mem = omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder)
    mem.close()
    mem.close()
    with pytest.raises(ConfigError, match="closed"):
        mem.add("late")


def test_concurrent_threads_add_without_duplicates(mem):
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"shared fact {n}" for n in range(40)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda chunk: mem.add(chunk), [texts[i::2] for i in range(2)] * 3))
    assert len(mem) == 40 and len(mem.indexes["text"]) == 40
    assert sorted({i for r in results for i in r}) == sorted(mem.store.ids())


def test_vectors_are_normalised_float32(mem):
    vectors = mem.encoder.encode(["a b c", "d e"])
    assert vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)


def test_add_builds_the_graph_and_delete_clears_it(mem):
    (item_id,) = mem.add("Alice moved to Berlin in March.", speaker="Alice")
    names = {e.name for e in mem.graph.entities()}
    assert {"Alice", "Berlin"} <= names
    triplets = mem.graph.triplets(item_ids=[item_id])
    assert triplets and all(mem.graph.sources([t.id])[t.id] == [item_id] for t in triplets)
    assert mem.graph.check_coverage() == []
    mem.delete(item_id)
    assert mem.graph.counts()["triplets"] == 0 and not mem.graph.find_entities("Berlin")


def test_graph_extraction_can_be_switched_off(tmp_path, hash_encoder):
    config = omnimem.MemoryConfig(graph=omnimem.config.GraphConfig(extract_on_add=False))
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, config=config) as mem:
        mem.add("Alice moved to Berlin in March.")
        assert mem.graph.counts()["entities"] == 0


def test_delete_is_one_transaction_with_the_graph_links(mem, monkeypatch):
    keep, gone = mem.add(["Alice moved to Berlin in March.", "Bob flew to Lisbon in May."])

    def crash(item_ids):
        raise OSError("killed between the item and its graph links")

    monkeypatch.setattr(mem.graph, "delete_item_links", crash)
    with pytest.raises(OSError):
        mem.delete(gone)
    assert len(mem) == 2 and mem.get(gone).text.startswith("Bob")  # rolled back together
    monkeypatch.undo()
    assert mem.delete(gone) == 1 and not mem.graph.find_entities("Lisbon") and mem.graph.find_entities("Berlin")


def test_check_finds_and_repairs_graph_links_of_missing_items(mem):
    keep, gone = mem.add(["Alice moved to Berlin in March.", "Bob flew to Lisbon in May."])
    mem.store.delete([gone])  # behind the memory's back: the graph still links to it
    report = mem.check(repair=False)
    assert report["graph"]["orphan_items"] == 1 and not report["ok"]
    report = mem.check()
    assert report["ok"] and report["graph"]["repaired"] and not mem.graph.find_entities("Lisbon")
    assert mem.check(repair=False)["graph"] == {"orphan_items": 0, "repaired": False}
    assert mem.graph.find_entities("Berlin") and mem.graph.check_coverage() == []
