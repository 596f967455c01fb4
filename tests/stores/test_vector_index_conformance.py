"""One conformance suite for every VectorIndex backend: exact numpy, FAISS flat, FAISS IVF, Milvus
(milvus-lite: HNSW and flat; skipped when pymilvus is not installed: pip install 'omnimem[milvus]')."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from omnimem.errors import ConfigError
from omnimem.stores import ExactIndex, FaissIndex, VectorIndex

DIM = 16


def _unit(rng, n):
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _milvus(tmp_path, index_type):
    if importlib.util.find_spec("pymilvus") is None:
        pytest.skip("pymilvus is not installed: pip install 'omnimem[milvus]'")
    from omnimem.stores.milvus_index import MilvusIndex

    return MilvusIndex(str(tmp_path / "vectors.db"), "conformance", DIM, index_type=index_type)


BACKENDS = {
    "exact": lambda tmp_path: ExactIndex(DIM),
    "faiss-flat": lambda tmp_path: FaissIndex(DIM, factory="Flat"),
    "faiss-auto": lambda tmp_path: FaissIndex(DIM, approx_threshold=10_000),
    # IVF with every list probed is exact, so it must pass the same suite.
    "faiss-ivf": lambda tmp_path: FaissIndex(DIM, factory="IVF4,Flat", nprobe=4),
    # milvus-lite, embedded; the same MilvusIndex reaches a server with uri="http://host:19530".
    # HNSW with ef >= the collection's size visits every vector: exact here, like IVF above.
    "milvus-hnsw": lambda tmp_path: _milvus(tmp_path, "HNSW"),
    "milvus-flat": lambda tmp_path: _milvus(tmp_path, "Flat"),
}


@pytest.fixture(params=sorted(BACKENDS))
def index(request, tmp_path) -> VectorIndex:
    built = BACKENDS[request.param](tmp_path)
    yield built
    if hasattr(built, "close"):
        built.close()


def _filled(index, n=64, seed=0):
    rng = np.random.default_rng(seed)
    vectors = _unit(rng, n)
    ids = [f"item-{i}" for i in range(n)]
    index.upsert(ids, vectors)
    return ids, vectors


def test_is_a_vector_index(index):
    assert isinstance(index, VectorIndex)
    assert len(index) == 0
    assert index.search(np.zeros((1, DIM), np.float32), 5) == [[]]


def test_each_vector_finds_itself_first(index):
    ids, vectors = _filled(index)
    results = index.search(vectors, 3)
    assert [r[0][0] for r in results] == ids
    for row in results:
        scores = [s for _, s in row]
        assert scores == sorted(scores, reverse=True)
        assert row[0][1] == pytest.approx(1.0, abs=1e-5)


def test_matches_brute_force_order(index):
    ids, vectors = _filled(index, n=50, seed=1)
    query = _unit(np.random.default_rng(9), 1)
    expected = [ids[j] for j in np.argsort(-(vectors @ query[0]))[:10]]
    assert [i for i, _ in index.search(query, 10)[0]] == expected


def test_upsert_replaces_existing_id(index):
    ids, vectors = _filled(index, n=20)
    index.upsert([ids[0]], vectors[1:2])
    assert len(index) == 20
    top = index.search(vectors[1:2], 2)[0]
    assert {i for i, _ in top} == {ids[0], ids[1]}
    assert index.search(vectors[0:1], 1)[0][0][0] != ids[0] or top[0][1] == pytest.approx(1.0, abs=1e-5)


def test_delete_removes_and_ignores_unknown(index):
    ids, vectors = _filled(index, n=20)
    assert index.delete([ids[3], "no-such-id"]) == 1
    assert len(index) == 19
    assert ids[3] not in index.ids()
    assert ids[3] not in [i for i, _ in index.search(vectors[3:4], 19)[0]]
    assert index.delete([]) == 0


def test_k_larger_than_size(index):
    ids, _ = _filled(index, n=5)
    assert len(index.search(_unit(np.random.default_rng(2), 2), 50)[1]) == 5


def test_rejects_bad_batches(index):
    with pytest.raises(ConfigError):
        index.upsert(["a"], np.zeros((1, DIM + 1), np.float32))
    with pytest.raises(ConfigError):
        index.upsert(["a", "b"], np.zeros((1, DIM), np.float32))
    with pytest.raises(ConfigError):
        index.upsert(["a", "a"], np.zeros((2, DIM), np.float32))
    with pytest.raises(ConfigError):
        index.upsert(["a"], np.full((1, DIM), np.nan, np.float32))
    assert len(index) == 0


def test_faiss_switches_to_ivf_at_threshold_and_keeps_ids():
    index = FaissIndex(DIM, approx_threshold=300, nprobe=64)
    rng = np.random.default_rng(3)
    vectors = _unit(rng, 400)
    ids = [f"x{i}" for i in range(400)]
    index.upsert(ids[:200], vectors[:200])
    assert index.kind == "flat"
    index.upsert(ids[200:], vectors[200:])
    assert index.kind == "ivf"
    assert len(index) == 400
    hits = index.search(vectors[:50], 1)
    assert sum(h[0][0] == i for h, i in zip(hits, ids)) >= 48  # approximate, nearly exact here
    index.delete(ids[:10])
    assert len(index) == 390


def test_faiss_save_load_roundtrip(tmp_path):
    index = FaissIndex(DIM)
    ids, vectors = _filled(index, n=30)
    index.save(tmp_path / "t.faiss", generation=7)
    loaded, generation = FaissIndex.load(tmp_path / "t.faiss")
    assert generation == 7
    assert sorted(loaded.ids()) == sorted(ids)
    assert loaded.search(vectors[4:5], 1)[0][0][0] == ids[4]


def test_faiss_load_of_corrupt_file_is_a_clear_error(tmp_path):
    from omnimem.errors import CorruptInput

    index = FaissIndex(DIM)
    _filled(index, n=5)
    index.save(tmp_path / "t.faiss")
    (tmp_path / "t.faiss").write_bytes(b"garbage")
    with pytest.raises(CorruptInput, match="rebuilt"):
        FaissIndex.load(tmp_path / "t.faiss")


def test_invalid_factory_string():
    with pytest.raises(ConfigError, match="factory"):
        FaissIndex(DIM, factory="NotAnIndex42")
