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


def test_check_reports_and_repairs_drift(mem):
    ids = mem.add(["alpha beta", "gamma delta", "epsilon zeta"])
    from omnimem.stores.sqlite_vectors import vector_key

    mem.indexes["text"]._drop([vector_key(ids[0])])  # drift behind the memory's back
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
    assert mem.check(repair=False)["graph"] == {"orphan_items": 0, "owed_items": 0, "repaired": False}
    assert mem.graph.find_entities("Berlin") and mem.graph.check_coverage() == []


# -- identity: a turn's id carries its place in its conversation ------------------------------------
YES_TURNS = [
    {"speaker": "Eve", "text": "Shall we go?"},
    {"speaker": "Bob", "text": "Yes."},
    {"speaker": "Eve", "text": "Now?"},
    {"speaker": "Bob", "text": "Yes."},
]


def test_repeated_turns_are_all_kept_and_readding_is_a_no_op(mem):
    ids = mem.add_conversation(YES_TURNS, session="s1")
    assert len(set(ids)) == 4 and len(mem) == 4
    assert [mem.get(i).text for i in ids] == [t["text"] for t in YES_TURNS]
    assert mem.add_conversation(YES_TURNS, session="s1") == ids and len(mem) == 4
    links = mem.store.neighbours(ids)
    assert [links[i] for i in ids] == [(None, ids[1]), (ids[0], ids[2]), (ids[1], ids[3]), (ids[2], None)]
    more = mem.add_conversation(YES_TURNS[2:], session="s1", start=4)  # the next piece of the conversation
    assert len(mem) == 6 and not set(more) & set(ids)
    with pytest.raises(ConfigError, match="start"):
        mem.add_conversation(YES_TURNS, session="s1", start=-1)


def test_a_memory_from_before_places_keeps_its_ids_and_its_repeated_turns(tmp_path, hash_encoder):
    path = tmp_path / "m"
    with omnimem.Memory.open(path, encoder=hash_encoder) as mem:
        mem.store.conn.execute("UPDATE meta SET value = 'content' WHERE key = 'turn_ids'")  # as migrated
    with omnimem.Memory.open(path) as mem:
        ids = mem.add_conversation(YES_TURNS, session="s1")
        assert ids[0] == omnimem.Item.make(text="Shall we go?", speaker="Eve", session="s1").id  # content id
        assert len(set(ids)) == 4 and len(mem) == 4
        assert mem.add_conversation(YES_TURNS, session="s1") == ids and len(mem) == 4


# -- bad input loses nothing and says what to do ----------------------------------------------------
def _deep(n: int) -> dict:
    value: dict = {}
    for _ in range(n):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.add("x", metadata=_deep(500)), "nested more than"),
        (lambda m: m.add("lone \ud800 surrogate"), "surrogate"),
        (lambda m: m.add("x", speaker="\udcff"), "surrogate"),
        (lambda m: m.add("x", metadata={"k": "bad \ud800"}), "surrogate"),
    ],
)
def test_unstorable_input_is_refused_before_anything_is_written(mem, call, message):
    mem.add("already here")
    with pytest.raises(ConfigError, match=message):
        call(mem)
    assert len(mem) == 1 and mem.check()["ok"]


@pytest.mark.parametrize("damage", ["missing", "empty"])
def test_a_memory_without_its_database_refuses_to_open(tmp_path, hash_encoder, damage):
    path = tmp_path / "m"
    with omnimem.Memory.open(path, encoder=hash_encoder) as mem:
        mem.add("something worth keeping")
    mem_files = {p.name: p.read_bytes() for p in (path / "index").glob("*")}
    for suffix in ("", "-wal", "-shm"):
        (path / f"memory.db{suffix}").unlink(missing_ok=True)
    if damage == "empty":
        (path / "memory.db").write_bytes(b"")
    with pytest.raises(omnimem.CorruptInput, match=r"memory\.db is .*backup"):
        omnimem.Memory.open(path)
    assert {p.name: p.read_bytes() for p in (path / "index").glob("*")} == mem_files  # the refused open wrote nothing


def test_a_config_from_a_newer_omnimem_is_refused(tmp_path, hash_encoder):
    import json

    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder):
        pass
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "version": 99}))
    with pytest.raises(ConfigError, match=r"config\.json.*version 99.*upgrade"):
        omnimem.Memory.open(tmp_path / "m")


@pytest.mark.parametrize("ids", [200, None, "x", {"a": 1}, [1, 2]])
def test_an_old_single_file_index_with_a_malformed_id_map_is_ignored(tmp_path, hash_encoder, ids):
    import json

    path = tmp_path / "m"
    with omnimem.Memory.open(path, encoder=hash_encoder) as mem:
        added = mem.add(["alpha beta", "gamma delta"])
    (path / "index").mkdir(exist_ok=True)
    (path / "index" / "text.faiss").write_bytes(b"old format")  # what omnimem <= 0.2 wrote
    (path / "index" / "text.faiss.ids.json").write_text(json.dumps({"ids": ids, "generation": "seven"}))
    with omnimem.Memory.open(path) as mem:
        assert mem.search("gamma delta", k=1, retrievers=("dense",))[0].id == added[1]
        assert mem.check()["ok"] and not (path / "index" / "text.faiss.ids.json").exists()


def test_check_reports_a_damaged_database_instead_of_raising(tmp_path, hash_encoder):
    path = tmp_path / "m"
    with omnimem.Memory.open(path, encoder=hash_encoder) as mem:
        mem.add([f"fact number {n} " + "padding " * 80 for n in range(200)])
    data = bytearray((path / "memory.db").read_bytes())
    data[4096 * 40 : 4096 * 41] = b"\xa5" * 4096  # one garbage page among the items' pages
    (path / "memory.db").write_bytes(bytes(data))
    with omnimem.Memory.open(path) as mem:
        report = mem.check()
    assert report["ok"] is False and report["database"]


def test_a_text_over_the_parsers_limit_is_stored_and_extracted_in_pieces(tmp_path, hash_encoder):
    from omnimem.graph.extract import ExtractorConfig, SpacyExtractor

    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder) as mem:
        mem._builder = None
        extractor = SpacyExtractor.from_pretrained(config=ExtractorConfig(chunk_chars=2_000))
        from omnimem.graph.builder import GraphBuilder

        mem._builder = GraphBuilder(mem.graph, extractor)
        long = "Alice moved to Berlin in March. " * 200 + "\n\nBob works at Acme in Paris. " * 100
        short = "Carol lives in Rome."
        ids = mem.add([long, short])
        assert mem.graph.items_with_links(ids) == set(ids)  # the long text and its batch-mate
        mentions = [m for m in mem.graph.mentions(item_ids=[ids[0]]) if m.surface == "Paris"]
        assert mentions and all(long[m.start : m.end] == "Paris" for m in mentions)  # offsets into the whole text


def test_extraction_a_crash_left_undone_is_caught_up(tmp_path, hash_encoder, monkeypatch):
    import omnimem.memory.core as core

    path = tmp_path / "m"
    with omnimem.Memory.open(path, encoder=hash_encoder) as mem:
        monkeypatch.setattr(
            mem, "_extract", lambda items, parsed=None: None
        )  # killed after the commit, before extraction
        ids = mem.add(["Alice moved to Berlin in March.", "Bob works at Acme in Paris."])
    monkeypatch.undo()
    with omnimem.Memory.open(path) as mem:
        assert mem.add(["Alice moved to Berlin in March."]) == ids[:1]  # a retry is a no-op ...
        assert mem.graph.items_with_links(ids) == set()  # ... and today's add leaves their extraction owed
        report = mem.check(repair=False)
        assert report["graph"]["owed_items"] == 2 and not report["ok"]
        monkeypatch.setattr(core, "OWED_GRACE_S", 0.0)  # the next add catches up items old enough
        mem.add("Carol lives in Rome.")
        assert mem.graph.items_with_links(ids) == set(ids)
        assert mem.check(repair=False)["graph"]["owed_items"] == 0


def test_a_truncated_database_is_refused_or_reported_naming_the_file(tmp_path, hash_encoder):
    path = tmp_path / "m"
    config = omnimem.MemoryConfig(graph=omnimem.config.GraphConfig(extract_on_add=False))
    with omnimem.Memory.open(path, encoder=hash_encoder, config=config) as mem:
        mem.add([f"fact number {n} " + "padding " * 60 for n in range(300)])
    data = (path / "memory.db").read_bytes()
    (path / "memory.db").write_bytes(data[: len(data) // 2])  # a copy cut short
    try:
        mem = omnimem.Memory.open(path)
    except omnimem.CorruptInput as e:
        assert "memory.db" in str(e) and "backup" in str(e)
    else:
        with mem:
            report = mem.check()
        assert report["ok"] is False and any("memory.db" in p for p in report["database"])


def test_a_ten_megabyte_text_is_stored_whole_and_found(tmp_path, hash_encoder):
    config = omnimem.MemoryConfig(graph=omnimem.config.GraphConfig(extract_on_add=False))
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, config=config) as mem:
        mem.add("a note before")
        big = ("lorem ipsum dolor sit amet " * 400_000)[: 10 * 1024 * 1024] + " zanzibar"
        (item,) = mem.add(big)
        assert len(mem.get(item).text) == len(big)
        assert mem.search("zanzibar", k=1, retrievers=("bm25",))[0].id == item
        assert len(mem) == 2 and mem.check()["ok"]
