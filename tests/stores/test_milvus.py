"""Milvus as a memory's vector index (``IndexConfig(backend="milvus")``, milvus-lite here): it answers
like FAISS, pushes filters down, follows deletes and forgets, survives a crash with a replay and a lost
or corrupt milvus-lite path with a rebuild from SQLite."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="pymilvus is not installed: pip install 'omnimem[milvus]'")

from omnimem import Item, Memory, MemoryConfig  # noqa: E402
from omnimem.config import GraphConfig, IndexConfig  # noqa: E402
from omnimem.encoders.hashing import HashEncoder  # noqa: E402
from omnimem.errors import ConfigError, MemoryLocked  # noqa: E402
from omnimem.stores.base import Filters  # noqa: E402
from omnimem.stores.milvus_common import filter_expression, literal  # noqa: E402
from omnimem.stores.milvus_index import MilvusSyncedIndex  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SPEAKERS = ("ann", "bob", 'O"Brien \\ the "quoted"', "dee")
MILVUS = MemoryConfig(index=IndexConfig(backend="milvus"), graph=GraphConfig(extract_on_add=False))
FAISS = dataclasses.replace(MILVUS, index=IndexConfig())


def _open(path: Path, config: MemoryConfig = MILVUS) -> Memory:
    return Memory.open(path, config=config, encoder=HashEncoder(64))


def _fill(mem: Memory, n: int = 120, start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + n):
        ids += mem.add(
            f"note {i} about topic {i % 7} and place {i % 11}", speaker=SPEAKERS[i % len(SPEAKERS)],
            session=f"s{i % 5}", timestamp=f"2024-01-{1 + i % 28:02d}T10:00:00",
        )  # fmt: skip
    return ids


def _brute(mem: Memory, query: np.ndarray, k: int, filters: Filters | None = None) -> list[tuple[str, float]]:
    ids, vectors = mem.store.vectors("text")
    items = dict(zip(ids, mem.store.get(ids)))
    scores = vectors @ query
    order = [(ids[j], float(scores[j])) for j in np.argsort(-scores)]
    return [(i, s) for i, s in order if filters is None or filters.matches(items[i])][:k]


def _same_ranking(got: list[tuple[str, float]], expected: list[tuple[str, float]], mem: Memory, query: np.ndarray):
    """The exact top-k up to ties: the same scores rank by rank, each the hit's true inner product."""
    assert np.allclose([s for _, s in got], [s for _, s in expected], atol=1e-5)
    ids, vectors = mem.store.vectors("text", [i for i, _ in got])
    truth = dict(zip(ids, (vectors @ query).tolist()))
    assert all(abs(truth[i] - s) < 1e-5 for i, s in got)


@pytest.fixture
def mem(tmp_path):
    with _open(tmp_path / "m") as m:
        yield m


def test_a_milvus_memory_answers_like_faiss_and_exact_search(tmp_path, mem):
    ids = _fill(mem)
    assert isinstance(mem.indexes["text"], MilvusSyncedIndex)
    assert (tmp_path / "m" / "index" / "text.milvus.db").exists()
    assert len(mem.indexes["text"]) == len(ids) and sorted(mem.indexes["text"].ids()) == sorted(ids)
    with _open(tmp_path / "f", FAISS) as other:
        _fill(other)
        for query in ("topic 3 and place 4", "note 17", "place 9"):
            vector = mem.encoder.encode([query], modality="text")
            mine, theirs = mem.indexes["text"].search(vector, 10)[0], other.indexes["text"].search(vector, 10)[0]
            _same_ranking(mine, _brute(mem, vector[0], 10), mem, vector[0])
            assert np.allclose([s for _, s in mine], [s for _, s in theirs], atol=1e-5)  # inner products, like FAISS
            hits, expected = mem.search(query, k=5), other.search(query, k=5)
            assert np.allclose([h.score for h in hits], [h.score for h in expected], atol=1e-5)


@pytest.mark.parametrize(
    "filters",
    [
        Filters(speakers=("bob",)),
        Filters(speakers=(SPEAKERS[2], "dee")),
        Filters(sessions=("s1", "s3")),
        Filters(since="2024-01-10T00:00:00", until="2024-01-20T00:00:00"),
        Filters(speakers=("ann",), sessions=("s0", "s2"), since="2024-01-05T00:00:00"),
        Filters(modalities=("text",), episodes=("nope",)),
        Filters(speakers=()),
        Filters(speakers=('ann" or speaker != "',)),  # an injection attempt is one odd name, matching nobody
        Filters(speakers=("",)),  # an empty name is a name: not the items without a speaker
        Filters(until="2024-01-04T00:00:00"),  # items without a time are not before it
    ],
)
@pytest.mark.parametrize("exact_below", [0, 20_000])  # 0: every filter runs inside Milvus
def test_filtered_search_matches_brute_force(tmp_path, filters, exact_below):
    config = dataclasses.replace(MILVUS, index=IndexConfig(backend="milvus", exact_below=exact_below))
    with _open(tmp_path / "m", config) as mem:
        _fill(mem)
        mem.add_items([Item.make(text="note without a speaker or a time", session="s1"), Item.make(text="note by nobody", speaker="")])  # fmt: skip
        index = mem.indexes["text"]
        pushed = []
        search = index.milvus.search
        index.milvus.search = lambda *a, **kw: pushed.append(kw.get("expr")) or search(*a, **kw)
        for query in ("topic 2", "place 5 note", "note by nobody"):
            vector = mem.encoder.encode([query], modality="text")
            got, expected = index.search(vector, 8, filters=filters)[0], _brute(mem, vector[0], 8, filters)
            _same_ranking(got, expected, mem, vector[0])
            assert all(filters.matches(item) for item in mem.store.get([i for i, _ in got]))
        expr, matching = filter_expression(filters), bool(_brute(mem, vector[0], 1, filters))
        assert pushed == ([expr] * 3 if expr and matching and not exact_below else [])  # none match: no search


def test_filter_expressions_escape_every_string():
    assert literal('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert filter_expression(None) == "" and filter_expression(Filters()) == ""
    assert filter_expression(Filters(speakers=())) is None
    expr = filter_expression(Filters(speakers=('x" or 1 == 1 or speaker == "',), until="2024"))
    assert expr == 'speaker in ["=x\\" or 1 == 1 or speaker == \\""] and event_time >= "=" and event_time < "=2024"'


def test_memory_search_filters_by_speaker_session_and_time(mem):
    _fill(mem)
    hits = mem.search("topic 3", k=10, speakers=["bob"], sessions=["s1", "s2"], since="2024-01-03", until="2024-01-25")
    assert hits
    for item in mem.store.get([h.id for h in hits]):
        assert item.speaker == "bob" and item.session in ("s1", "s2") and "2024-01-03" <= item.event_time < "2024-01-25"


def test_delete_and_forget_remove_vectors_from_milvus(tmp_path, mem):
    ids = _fill(mem, 60)
    index = mem.indexes["text"]
    assert mem.delete(ids[:3]) == 3
    assert len(index) == 57 and not set(ids[:3]) & set(index.ids())
    vector = mem.store.vectors("text", [ids[5]])[1]
    assert ids[5] in [i for i, _ in index.search(vector, 3)[0]]
    mem.add("a private remark", speaker="zed-secret-name")
    folder = tmp_path / "m" / "index" / "text.milvus.db"
    index.milvus.flush()
    visible = _holds(folder, b"zed-secret-name")  # milvus-lite 3 writes names plainly (2 compresses them)
    report = mem.forget(speakers=["zed-secret-name"])
    assert len(report.items) == 1
    assert len(index) == 57 and mem.search("private remark", k=5, speakers=["zed-secret-name"]) == []
    assert not (visible and _holds(folder, b"zed-secret-name"))  # milvus-lite's files keep no copy
    assert mem.check()["ok"]


def _holds(path: Path, needle: bytes) -> bool:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return any(needle in p.read_bytes() for p in files)


def test_reopening_replays_the_log_without_a_rebuild(tmp_path):
    with _open(tmp_path / "m") as mem:
        ids = _fill(mem, 40)
    with _open(tmp_path / "m") as mem:
        report = mem.indexes["text"].last_report
        assert not report.rebuilt and report.added == 0
        assert sorted(mem.indexes["text"].ids()) == sorted(ids)
    # a process killed after its SQLite commits: the marker lags, reopening replays the rest
    child = f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        from tests.stores.test_milvus import _fill, _open
        from pathlib import Path
        mem = _open(Path({str(tmp_path / "m")!r}))
        _fill(mem, 30, start=40)
        os._exit(0)
    """
    subprocess.run([sys.executable, "-c", textwrap.dedent(child)], check=True, timeout=300)
    with _open(tmp_path / "m") as mem:
        report = mem.indexes["text"].last_report
        assert not report.rebuilt and report.added == 30
        assert len(mem.indexes["text"]) == 70 == len(mem)
        assert mem.check()["ok"]


@pytest.mark.parametrize("damage", ["deleted", "corrupt", "a file"])
def test_a_lost_or_corrupt_milvus_lite_path_is_rebuilt_from_sqlite(tmp_path, damage):
    with _open(tmp_path / "m") as mem:
        ids = _fill(mem, 50)
    path = tmp_path / "m" / "index" / "text.milvus.db"  # a directory (milvus-lite 3) or a file (2)
    if damage == "corrupt" and path.is_file():
        path.write_bytes(b"garbage" * 1000)
    elif damage == "corrupt":
        for manifest in path.rglob("manifest.json*"):
            manifest.write_text("garbage")
    else:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    if damage == "a file":
        path.write_bytes(b"not milvus")
    with _open(tmp_path / "m") as mem:
        index = mem.indexes["text"]
        assert index.last_report.rebuilt and index.last_report.added == 50
        assert sorted(index.ids()) == sorted(ids)
        vector = mem.store.vectors("text", [ids[7]])[1]
        assert index.search(vector, 1)[0][0][0] == ids[7]
        assert mem.check()["ok"]


def test_check_finds_and_repairs_drift(mem):
    ids = _fill(mem, 30)
    index = mem.indexes["text"]
    index.milvus.delete(ids[:4])  # behind the store's back
    report = mem.check(repair=False)
    assert report["indexes"]["text"]["missing"] == 4 and not report["ok"]
    assert mem.check()["indexes"]["text"]["repaired"]
    assert len(index) == 30 and mem.check(repair=False)["ok"]


def test_a_second_process_gets_a_clear_error(tmp_path):
    with _open(tmp_path / "m") as mem:
        _fill(mem, 5)
    holder = f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from tests.stores.test_milvus import _open
        from pathlib import Path
        mem = _open(Path({str(tmp_path / "m")!r}))
        print("open", flush=True)
        sys.stdin.read()
    """
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(holder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "open"
        with pytest.raises(MemoryLocked, match="milvus-lite serves one process"):
            _open(tmp_path / "m")
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


def test_index_config_validates_backend_and_uri():
    assert IndexConfig().backend == "faiss" and IndexConfig().uri is None
    assert MemoryConfig.from_json(MILVUS.to_json()) == MILVUS
    IndexConfig(backend="milvus", uri="http://localhost:19530")
    IndexConfig(backend="milvus", uri="vectors.db")
    for bad in (dict(backend="qdrant"), dict(uri="vectors.db"), dict(backend="milvus", uri="vectors"),
                dict(backend="milvus", uri=""), dict(backend="milvus", factory="IVF64,Flat")):  # fmt: skip
        with pytest.raises(ConfigError):
            IndexConfig(**bad)


def test_a_uri_names_a_collection_of_this_memory(tmp_path):
    config = dataclasses.replace(MILVUS, index=IndexConfig(backend="milvus", uri="shared/vectors.db"))
    with _open(tmp_path / "a", config) as a:
        _fill(a, 10)
        collection = a.indexes["text"].milvus.collection
    assert (tmp_path / "a" / "shared" / "vectors.db").exists()
    assert collection.startswith("omnimem_") and collection.endswith("_text") and collection != "omnimem_text"
    with _open(tmp_path / "a", config) as a:
        assert a.indexes["text"].milvus.collection == collection and len(a.indexes["text"]) == 10


def test_switching_a_faiss_memory_to_milvus_builds_from_sqlite_and_drops_the_faiss_files(tmp_path):
    with _open(tmp_path / "m", FAISS) as mem:
        ids = _fill(mem, 20)
        mem.indexes["text"].compact(wait=True)
    assert list((tmp_path / "m" / "index").glob("text.*.faiss"))
    with _open(tmp_path / "m") as mem:
        assert mem.indexes["text"].last_report.rebuilt and sorted(mem.indexes["text"].ids()) == sorted(ids)
    assert not list((tmp_path / "m" / "index").glob("text.*.faiss"))
    with Memory.open(tmp_path / "m", encoder=HashEncoder(64)) as mem:  # the choice is saved in config.json
        assert isinstance(mem.indexes["text"], MilvusSyncedIndex) and mem.config.index.backend == "milvus"
