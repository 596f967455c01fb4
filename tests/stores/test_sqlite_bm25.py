"""BM25 in a large SQLite memory leaves out a query's most common words (their posting lists are long)."""

from __future__ import annotations

import threading

import omnimem.stores.sqlite_bm25 as sqlite_bm25
from omnimem.stores.sqlite import SQLiteRecordStore
from omnimem.types import Item


def test_common_words_are_left_out_of_large_memories_only(tmp_path, monkeypatch):
    store = SQLiteRecordStore(tmp_path / "m.db")
    try:
        texts = [f"really nice day number {n}" for n in range(200)] + ["we really discussed adoption agencies"]
        store.add([Item.make(text=t) for t in texts])
        small = store.bm25("really adoption", k=300)
        assert len(small) == 201  # a small memory: every word counts, as before
        monkeypatch.setattr(sqlite_bm25, "_PRUNE_FROM", 100)
        monkeypatch.setattr(sqlite_bm25, "_COMMON", 50)
        large = store.bm25("Really ADOPTION", k=300)
        assert [store.get([i])[0].text for i, _ in large] == ["we really discussed adoption agencies"]
        assert store.bm25("really nice", k=5)  # every word common: the rarest stays
    finally:
        store.close()


def test_bm25_sees_its_own_transaction_and_is_not_held_up_by_another_threads(tmp_path):
    """BM25 reads on a connection of its own (so it runs beside the dense search), except inside a
    write transaction of the calling thread, whose uncommitted rows only the store's connection sees."""
    store = SQLiteRecordStore(tmp_path / "m.db")
    try:
        store.add([Item.make(text="the lighthouse keeper waved")])
        with store.transaction():
            store.add([Item.make(text="a lighthouse in the fog")])
            inside = {store.get([i])[0].text for i, _ in store.bm25("lighthouse", k=5)}
        assert inside == {"the lighthouse keeper waved", "a lighthouse in the fog"}

        holding, release, seen = threading.Event(), threading.Event(), []

        def writer():
            with store.transaction():
                store.add([Item.make(text="lighthouse not yet committed")])
                holding.set()
                release.wait(10)

        thread = threading.Thread(target=writer)
        thread.start()
        holding.wait(10)
        try:  # another thread's open transaction: committed rows only, and no waiting for its lock
            seen = store.bm25("lighthouse", k=5)
        finally:
            release.set()
            thread.join()
        assert len(seen) == 2
        assert len(store.bm25("lighthouse", k=5)) == 3
    finally:
        store.close()
