"""Conformance suite for RecordStore backends (SQLite on disk and in memory, PostgreSQL), plus SQLite specifics.

PostgreSQL specifics are in test_pg_records.py."""

from __future__ import annotations

import numpy as np
import pytest

from omnimem.errors import ConfigError, CorruptInput, NotFound, StorageError
from omnimem.stores import Filters, RecordStore, SQLiteRecordStore
from omnimem.stores.sqlite import SCHEMA_VERSION, fts_query
from omnimem.stores.sqlite_driver import (
    sqlite3,  # the store's own SQLite: two libraries in one process do not see each other's locks
)
from omnimem.types import Item


@pytest.fixture(params=["file", "memory", "postgres"])
def store(request, tmp_path) -> RecordStore:
    if request.param == "postgres":  # a schema of its own on the session's throwaway server
        from omnimem.stores.pg import PgDatabase
        from omnimem.stores.pg_records import PostgresRecordStore

        s = PostgresRecordStore(PgDatabase(request.getfixturevalue("pg_url")))
    else:
        s = SQLiteRecordStore(tmp_path / "m.db" if request.param == "file" else ":memory:")
    yield s
    s.close()


def _items():
    return [
        Item.make(text="Alice moved to Berlin in March.", speaker="Alice", session="s1", event_time="2023-03-02"),
        Item.make(text="Bob adopted a golden retriever.", speaker="Bob", session="s1", event_time="2023-03-05"),
        Item.make(
            text="The quarterly report is due on Friday.", speaker="Carol", session="s2", event_time="2023-04-01"
        ),
        Item.make(modality="image", text="a dog running on a beach", session="s2", source="photo.jpg"),
    ]


def _vectors(items, dim=4):
    rng = np.random.default_rng(0)
    return {"text": ([i.id for i in items], rng.normal(size=(len(items), dim)).astype(np.float32))}


def test_is_a_record_store(store):
    assert isinstance(store, RecordStore)
    assert len(store) == 0


def test_add_get_roundtrip_preserves_fields(store):
    items = _items()
    assert store.add(items, _vectors(items)) == [i.id for i in items]
    got = store.get([items[3].id, "missing", items[0].id])
    assert got[1] is None
    assert got[0].modality == "image" and got[0].source == "photo.jpg"
    assert got[2].text == items[0].text and got[2].speaker == "Alice"
    assert got[2].event_time == "2023-03-02T00:00:00"
    assert got[2].ingest_time is not None


def test_add_is_idempotent(store):
    items = _items()
    store.add(items, _vectors(items))
    assert store.add(items, _vectors(items)) == []
    assert len(store) == 4
    assert len(store.vector_ids("text")) == 4
    assert store.generation("text") == 1  # the no-op add did not bump it


def test_vectors_roundtrip(store):
    items = _items()
    vectors = _vectors(items)
    store.add(items, vectors)
    ids, array = store.vectors("text", [items[1].id])
    assert ids == [items[1].id]
    np.testing.assert_array_equal(array[0], vectors["text"][1][1])
    ids, array = store.vectors("text")
    assert sorted(ids) == sorted(i.id for i in items) and array.shape == (4, 4)


def test_bm25_ranks_matching_text_first(store):
    store.add(_items())
    hits = store.bm25("Where did Alice move?", 5)
    assert hits and store.get([hits[0][0]])[0].speaker == "Alice"
    assert store.bm25("retrievers", 5)  # porter stemming: retrievers ~ retriever
    assert store.bm25("the of and", 5) == []  # only stopwords
    assert store.bm25('"quoted" OR (syntax* NEAR', 5) == []  # FTS syntax never leaks through


def test_bm25_weighs_a_rare_word_above_a_repeated_common_one(store):
    texts = [f"apple pie recipe number {n}" for n in range(8)]
    texts += ["apple apple apple apple tart", "a zebra crossing near the park"]
    store.add([Item.make(text=t) for t in texts])
    hits = store.bm25("apple zebra", 10)
    assert store.get([hits[0][0]])[0].text == "a zebra crossing near the park"  # inverse document frequency
    assert len(hits) == 10 and [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_bm25_filters(store):
    store.add(_items())
    assert [store.get([i])[0].speaker for i, _ in store.bm25("dog report Berlin", 5, Filters(sessions=("s1",)))] == [
        "Alice"
    ]
    only_images = store.bm25("dog", 5, Filters(modalities=("image",)))
    assert len(only_images) == 1
    since = store.bm25("Alice Bob report", 5, Filters(since="2023-03-04T00:00:00"))
    assert {store.get([i])[0].speaker for i, _ in since} == {"Bob", "Carol"}


def test_update_changes_text_and_fts(store):
    items = _items()
    store.add(items)
    import dataclasses

    store.update(dataclasses.replace(items[0], text="Alice moved to Paris."))
    assert store.get([items[0].id])[0].text == "Alice moved to Paris."
    assert store.bm25("Berlin", 5) == []
    assert store.bm25("Paris", 5)[0][0] == items[0].id
    with pytest.raises(NotFound):
        store.update(Item.make(text="never stored"))


def test_delete_reaches_items_vectors_and_fts(store):
    items = _items()
    store.add(items, _vectors(items))
    generation = store.generation("text")
    assert store.delete([items[0].id, "unknown"]) == [items[0].id]
    assert store.get([items[0].id]) == [None]
    assert items[0].id not in store.vector_ids("text")
    assert store.bm25("Berlin", 5) == []
    assert store.generation("text") == generation + 1
    assert len(store) == 3


def test_vector_dimension_is_fixed_per_space(store):
    items = _items()
    store.add(items[:1], {"text": ([items[0].id], np.zeros((1, 4), np.float32))})
    with pytest.raises(ConfigError, match="4-d"):
        store.add(items[1:2], {"text": ([items[1].id], np.zeros((1, 8), np.float32))})
    assert len(store) == 1  # the failed batch left nothing behind


def test_bad_vector_shapes(store):
    items = _items()
    with pytest.raises(ConfigError):
        store.add(items, {"text": ([i.id for i in items], np.zeros((2, 4), np.float32))})
    with pytest.raises(ConfigError):
        store.add(items, {"text": np.zeros((4, 4), np.float32)})
    assert len(store) == 0


def test_batch_is_atomic(store):
    items = _items()

    bad = Item.make(text="a later item in the same batch")
    object.__setattr__(bad, "metadata", {"x": {1, 2}})  # not JSON-serialisable: fails mid-batch
    with pytest.raises(TypeError):
        store.add([items[1], bad])
    assert len(store) == 0


def test_fts_query_quotes_words():
    assert fts_query("Where does Alice live?") == '"alice" OR "live"'
    assert fts_query("!!!") == ""


def test_schema_version_and_newer_schema_refused(tmp_path):
    store = SQLiteRecordStore(tmp_path / "m.db")
    assert store.schema_version == SCHEMA_VERSION
    store.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    store.close()
    with pytest.raises(ConfigError, match="upgrade omnimem"):
        SQLiteRecordStore(tmp_path / "m.db")


def test_corrupt_database_file_is_a_clear_error(tmp_path):
    path = tmp_path / "m.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CorruptInput, match="m.db"):
        SQLiteRecordStore(path)


def test_disk_full_rolls_back_and_names_the_fix(tmp_path):
    store = SQLiteRecordStore(tmp_path / "m.db")
    store.add(_items()[:1])
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count={pages + 1}")
    big = [Item.make(text=f"filler text number {n} " * 200) for n in range(50)]
    with pytest.raises(StorageError, match="free disk space"):
        store.add(big)
    assert len(store) == 1
    store.close()


def test_second_writer_waits_then_gets_a_clear_error(tmp_path):
    from omnimem.errors import MemoryLocked

    first = SQLiteRecordStore(tmp_path / "m.db")
    second = SQLiteRecordStore(tmp_path / "m.db", busy_timeout=0.2)
    blocker = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(MemoryLocked, match="busy_timeout"):
            second.add(_items()[:1])
        assert len(first) == 0  # readers still read while a writer holds the lock
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert second.add(_items()[:1])
    first.close()
    second.close()


def test_neighbours_are_the_adjacent_turns_of_the_same_session_and_episode(store):
    turns = [
        Item.make(text="t1", session="s1", episode="u1"),
        Item.make(text="other session", session="s2", episode="u1"),
        Item.make(text="t2", session="s1", episode="u1"),
        Item.make(text="same session, other user", session="s1", episode="u2"),
        Item.make(text="t3", session="s1", episode="u1"),
        Item.make(text="no session"),
    ]
    store.add(turns)
    t1, s2, t2, u2, t3, loose = (t.id for t in turns)
    got = store.neighbours([t2, t1, t3, s2, loose, "missing", t2])
    assert got[t1] == (None, t2) and got[t2] == (t1, t3) and got[t3] == (t2, None)
    assert got[s2] == (None, None) and loose not in got and "missing" not in got
    assert store.neighbours([u2]) == {u2: (None, None)}


def test_nested_transactions_are_savepoints(store):
    a, b, c = (Item.make(text=t) for t in ("outer", "inner, rolled back", "after"))
    with store.transaction():
        store.add([a])
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.add([b])
                raise RuntimeError("inner failure")
        store.add([c])
    assert sorted(store.ids()) == sorted([a.id, c.id])
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.add([b])
            with store.transaction():
                store.delete([a.id])
            raise RuntimeError("outer failure")
    assert sorted(store.ids()) == sorted([a.id, c.id])  # the released savepoint went with the outer rollback
