"""The segmented FAISS index: a saved base + the changes since, replayed from the record store's log."""

from __future__ import annotations

import numpy as np
import pytest

from omnimem.errors import ConfigError
from omnimem.stores.base import Filters
from omnimem.stores.segments import SegmentedIndex
from omnimem.stores.sqlite import SQLiteRecordStore
from omnimem.types import Item

DIM = 16


def _clustered(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around 40 centres: closer to real embeddings than uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, DIM))
    x = centres[rng.integers(0, 40, n)] + 0.35 * rng.normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _add(store, n: int, start: int = 0, seed: int = 0, speakers=("ann", "bob", "cy")) -> tuple[list[str], np.ndarray]:
    items = [Item.make(text=f"item {start + i}", speaker=speakers[(start + i) % len(speakers)]) for i in range(n)]
    vectors = _clustered(n, seed)
    store.add(items, {"text": ([i.id for i in items], vectors)})
    return [i.id for i in items], vectors


@pytest.fixture
def store(tmp_path):
    s = SQLiteRecordStore(tmp_path / "m.db")
    yield s
    s.close()


def _exact(store, query, k, allowed=None):
    ids, vectors = store.vectors("text")
    scores = vectors @ query
    order = [ids[j] for j in np.argsort(-scores)]
    return [i for i in order if allowed is None or i in allowed][:k]


def test_a_crash_after_the_base_costs_only_a_replay(tmp_path, store):
    index = SegmentedIndex(store, "text", DIM, tmp_path / "index", compact_every=10_000)
    first, _ = _add(store, 300)
    index.applied(first, None, 0)
    index.compact(wait=True)
    assert [p.name for p in (tmp_path / "index").glob("*.faiss")] == [f"text.{store.vector_seq('text')}.faiss"]
    more, vectors = _add(store, 50, start=300, seed=1)  # committed, then the process dies: no new base
    again = SegmentedIndex(store, "text", DIM, tmp_path / "index")
    assert again.last_report.added == 50 and not again.last_report.rebuilt
    assert len(again) == 350
    assert again.search(vectors[:1], 1)[0][0][0] == more[0]


def test_compaction_writes_a_new_base_prunes_the_log_and_keeps_answers_exact(tmp_path, store):
    index = SegmentedIndex(store, "text", DIM, tmp_path / "index", compact_every=200)
    ids, vectors = _add(store, 150)
    index.applied(ids, vectors, 0)
    assert index.base is None and len(index) == 150  # under the threshold: the log and the delta
    more, _ = _add(store, 100, start=150, seed=2)
    index.applied(more, None, 0)  # past compact_every: a base in the background
    index.close()
    assert index.base is not None and index.base_count == 250
    assert store.vector_log("text", 0) == [] and store.vector_log_floor("text") == index.base_seq
    query = _clustered(1, seed=9)[0]
    assert [i for i, _ in index.search(query[None, :], 10)[0]] == _exact(store, query, 10)


def test_deletes_and_updates_hide_the_base_copy_and_leave_the_files_after_compaction(tmp_path, store):
    index = SegmentedIndex(store, "text", DIM, tmp_path / "index")
    ids, vectors = _add(store, 200)
    index.applied(ids, vectors, 0)
    index.compact(wait=True)
    store.delete(ids[:1])
    index.refresh()
    assert ids[0] not in [i for i, _ in index.search(vectors[:1], 5)[0]] and len(index) == 199
    moved = Item.make(text="item 1", speaker="bob")  # the same item, a new vector
    store.update(moved, {"text": ([ids[1]], -vectors[1:2])})
    index.refresh()
    assert index.search(-vectors[1:2], 1)[0][0] == (ids[1], pytest.approx(1.0, abs=1e-5))
    index.save()  # a forget's: a new base without the deleted vector
    index.close()
    assert ids[0] not in index.ids() and len(index.ids()) == 199 and not index.tombstones


@pytest.mark.parametrize("codes, bytes_per_dim", [("fp16", 2), ("float32", 4)])
def test_a_large_base_is_ivf_memory_mapped_and_near_exact(tmp_path, store, codes, bytes_per_dim):
    folder = tmp_path / "index"
    index = SegmentedIndex(store, "text", DIM, folder, ivf_threshold=1_000, compact_every=100_000, codes=codes)
    ids, vectors = _add(store, 4_000)
    index.applied(ids, vectors, 0)
    index.compact(wait=True)
    reopened = SegmentedIndex(store, "text", DIM, folder)
    from omnimem.stores import segments

    assert segments._is_ivf(reopened.base) and not reopened.last_report.rebuilt
    assert reopened.base.code_size == bytes_per_dim * DIM  # fp16: half the bytes of each stored vector
    assert segments._is_ivf_file(next(folder.glob("text.*.faiss")))  # so it opens memory-mapped
    queries = _clustered(50, seed=5)
    got = reopened.search(queries, 10)
    recall = np.mean([len({i for i, _ in g} & set(_exact(store, q, 10))) / 10 for g, q in zip(got, queries)])
    assert recall >= 0.95
    exact = {i: float(v @ queries[0]) for i, v in zip(*store.vectors("text"))}
    assert all(abs(score - exact[i]) < 2e-3 for i, score in got[0])  # cosines, to float16's precision
    more_ids, more = _add(store, 500, start=4_000, seed=1)  # the delta merged into an fp16 base
    reopened.applied(more_ids, more, reopened.generation)
    reopened.compact(wait=True)
    assert len(reopened) == 4_500 and reopened.search(more[:1], 1)[0][0][0] == more_ids[0]


def test_an_unknown_code_kind_is_refused(tmp_path, store):
    with pytest.raises(ConfigError, match="codes"):
        SegmentedIndex(store, "text", DIM, tmp_path / "index", codes="int4")


@pytest.mark.parametrize("exact_below, widest", [(10_000, 4_096), (5, 4_096), (5, 8)])
def test_filtered_search_matches_brute_force(tmp_path, store, monkeypatch, exact_below, widest):
    """A rare speaker's few items are scored exactly; a broader filter checks the nearest items against
    it; one too few of the nearest pass falls back to an id selector. Each gives the exact answer."""
    import omnimem.stores.segments as segments

    monkeypatch.setattr(segments, "_WIDEST", widest)
    index = SegmentedIndex(store, "text", DIM, tmp_path / "index", exact_below=exact_below)
    ids, vectors = _add(store, 600, speakers=("ann",) * 99 + ("rare",))
    index.applied(ids, vectors, 0)
    index.compact(wait=True)
    extra, _ = _add(store, 50, start=600, seed=3, speakers=("rare", "ann"))  # some in the delta
    index.refresh()
    rare = {i.id for i in store.get(store.select(speakers=["rare"]))}
    query = _clustered(1, seed=11)[0]
    got = [i for i, _ in index.search(query[None, :], 8, filters=Filters(speakers=("rare",)))[0]]
    assert got == _exact(store, query, 8, allowed=rare) and set(got) <= rare


def test_a_reader_catches_a_base_another_process_wrote(tmp_path):
    writer_store, reader_store = SQLiteRecordStore(tmp_path / "m.db"), SQLiteRecordStore(tmp_path / "m.db")
    try:
        writer = SegmentedIndex(writer_store, "text", DIM, tmp_path / "index", compact_every=100_000)
        reader = SegmentedIndex(reader_store, "text", DIM, tmp_path / "index")
        ids, vectors = _add(writer_store, 120)
        writer.applied(ids, vectors, 0)
        writer.compact(wait=True)  # a new base, and the log pruned past the reader's position
        more, more_vectors = _add(writer_store, 5, start=120, seed=4)
        writer.applied(more, more_vectors, 0)
        assert reader.search(more_vectors[:1], 1)[0][0][0] == more[0]
        assert len(reader) == 125 and reader.base_seq == writer.base_seq
    finally:
        writer_store.close()
        reader_store.close()


def test_an_unreadable_newest_base_is_skipped(tmp_path, store):
    index = SegmentedIndex(store, "text", DIM, tmp_path / "index")
    ids, vectors = _add(store, 100)
    index.applied(ids, vectors, 0)
    index.compact(wait=True)
    (tmp_path / "index" / "text.999999.faiss").write_bytes(b"junk from a broken disk")
    again = SegmentedIndex(store, "text", DIM, tmp_path / "index")
    assert len(again) == 100 and again.search(vectors[:1], 1)[0][0][0] == ids[0]


def test_a_bulk_load_holds_a_bounded_delta_and_ends_with_one_base_of_everything(tmp_path, store, monkeypatch):
    import omnimem.stores.segments as segments

    monkeypatch.setattr(segments, "_BULK_BYTES", 1_000 * 4 * DIM)  # the delta may hold 1,000 vectors
    index = SegmentedIndex(store, "text", DIM, tmp_path / "index", ivf_threshold=100_000, compact_every=100)
    index.defer(True)
    ids, vectors = [], []
    for start in range(0, 3_250, 250):
        new_ids, new = _add(store, 250, start=start, seed=start)
        index.applied(new_ids, new, index.generation)
        if index._compacting is not None:  # let a compaction the load started finish
            index._compacting.join()
        ids += new_ids
        vectors.append(new)
        assert len(index.delta_keys) <= max(1_000, index.base_count // 2) + 250  # never the whole load
    assert 0 < index.base_count < 3_250 and index.delta_keys  # bases were written during the load
    index.defer(False)  # the end: one base with every vector
    assert index.base_count == 3_250 and not index.delta_keys
    reopened = SegmentedIndex(store, "text", DIM, tmp_path / "index")
    assert not reopened.last_report.rebuilt and len(reopened) == 3_250
    got = reopened.search(np.concatenate(vectors)[::300], 1)
    assert [g[0][0] for g in got] == ids[::300]
