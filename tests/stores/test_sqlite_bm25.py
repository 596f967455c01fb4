"""BM25 in a large SQLite memory leaves out a query's most common words (their posting lists are long)."""

from __future__ import annotations

import omnimem.stores.sqlite as sqlite_store
from omnimem.stores.sqlite import SQLiteRecordStore
from omnimem.types import Item


def test_common_words_are_left_out_of_large_memories_only(tmp_path, monkeypatch):
    store = SQLiteRecordStore(tmp_path / "m.db")
    try:
        texts = [f"really nice day number {n}" for n in range(200)] + ["we really discussed adoption agencies"]
        store.add([Item.make(text=t) for t in texts])
        small = store.bm25("really adoption", k=300)
        assert len(small) == 201  # a small memory: every word counts, as before
        monkeypatch.setattr(sqlite_store, "_BM25_PRUNE_FROM", 100)
        monkeypatch.setattr(sqlite_store, "_BM25_COMMON", 50)
        large = store.bm25("Really ADOPTION", k=300)
        assert [store.get([i])[0].text for i, _ in large] == ["we really discussed adoption agencies"]
        assert store.bm25("really nice", k=5)  # every word common: the rarest stays
    finally:
        store.close()
