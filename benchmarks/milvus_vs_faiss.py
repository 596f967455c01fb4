"""Milvus (milvus-lite, HNSW) against FAISS (the segmented index: IVF at this size) on the same vectors.

    .venv/bin/python benchmarks/milvus_vs_faiss.py [--n 100000] [--dim 384] [--queries 500]

Both indexes are what a memory uses (``MilvusSyncedIndex`` and ``SegmentedIndex``), kept in step with one
SQLite record store holding ``--n`` synthetic items: clustered unit vectors (2,000 centres plus noise,
closer to real embeddings than uniform noise), 100 speakers, one of them holding 1% of the items.
Measured, in one run on one machine (both sides under the same load):

- ``build_s`` / ``insert_per_s``: ``rebuild()`` from the store until the index answers a search (FAISS:
  train the IVF base, add, write it; Milvus: insert every row, flush, build HNSW);
- ``incremental_per_s``: the write path, ``applied()`` after each committed batch of 1,000 new items
  (SQLite's own time excluded: it is the same for both);
- ``recall_at_10`` against exact inner-product search, and ``query_p50_ms`` / ``query_p95_ms`` of one
  query per call (k=10);
- ``rare_filter_*``: the same with a speaker holding 1% of the items (both: the store selects them and
  they are scored exactly, below ``exact_below``); ``broad_filter_*``: 25 speakers, about a quarter of
  the items (FAISS: IVF with an id selector; Milvus: the expression pushed down into its HNSW search).

One JSON line per backend, then one with the milvus/faiss ratios. On a shared 2-core machine the absolute
figures are noisy while another heavy job runs; the ratios, measured side by side, are steadier.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnimem.stores.base import Filters  # noqa: E402
from omnimem.stores.milvus_index import MilvusSyncedIndex  # noqa: E402
from omnimem.stores.segments import SegmentedIndex  # noqa: E402
from omnimem.stores.sqlite import SQLiteRecordStore  # noqa: E402
from omnimem.types import Item  # noqa: E402

RARE = "speaker-rare"  # holds every 100th item
BROAD = Filters(speakers=tuple(f"speaker-{n}" for n in range(25)))  # about a quarter of the items


def wait_for_lite_hnsw(path: Path, timeout: float = 1800) -> None:
    """milvus-lite 3 builds a sealed segment's HNSW in a background thread (searches scan it meanwhile):
    wait until every data file has its index file. A no-op for other Milvus kinds."""
    deadline = time.monotonic() + timeout
    while path.is_dir() and time.monotonic() < deadline:
        data = {p.name.split(".")[0] for p in path.rglob("data_*.parquet")}
        if data <= {p.name.split(".")[0] for p in path.rglob("*.idx")}:
            return
        time.sleep(0.5)


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, centres.shape[1])).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def items(start: int, n: int) -> list[Item]:
    return [Item.make(text=f"item {i}", speaker=RARE if i % 100 == 0 else f"speaker-{i % 97}") for i in range(start, start + n)]  # fmt: skip


def exact_top(vectors: np.ndarray, ids: list[str], queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[set[str]]:  # fmt: skip
    scores = queries @ vectors.T
    if allowed is not None:
        scores[:, ~allowed] = -np.inf
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return [{ids[j] for j in row} for row in top]


def measure(name: str, index, store, queries: np.ndarray, truth: list[set[str]], rare_truth: list[set[str]], broad_truth: list[set[str]]) -> dict:  # fmt: skip
    started = time.perf_counter()
    index.rebuild()
    if hasattr(index, "milvus"):
        index.milvus.flush()  # seal the rows: Milvus builds HNSW on sealed segments
        wait_for_lite_hnsw(Path(index.uri))
    index.search(queries[:1], 10)
    build = time.perf_counter() - started
    n = store.vector_count("text")
    for q in queries[:5]:  # warm
        index.search(q[None], 10)
    times, hits = [], []
    for q in queries:
        t = time.perf_counter()
        hits.append(index.search(q[None], 10)[0])
        times.append(time.perf_counter() - t)
    recall = statistics.mean(len({i for i, _ in h} & t) / 10 for h, t in zip(hits, truth))
    filtered = {}
    for label, filters, expected in (("rare", Filters(speakers=(RARE,)), rare_truth), ("broad", BROAD, broad_truth)):
        ftimes, fhits = [], []
        for q in queries:
            t = time.perf_counter()
            fhits.append(index.search(q[None], 10, filters=filters)[0])
            ftimes.append(time.perf_counter() - t)
        filtered[f"{label}_filter_p50_ms"] = round(statistics.median(ftimes) * 1000, 2)
        filtered[f"{label}_filter_recall_at_10"] = round(statistics.mean(len({i for i, _ in h} & t) / 10 for h, t in zip(fhits, expected)), 4)  # fmt: skip
    ms = sorted(x * 1000 for x in times)
    return {
        "backend": name, "n": n, "dim": queries.shape[1], "queries": len(queries),
        "build_s": round(build, 2), "insert_per_s": round(n / build),
        "recall_at_10": round(recall, 4), "query_p50_ms": round(statistics.median(ms), 2),
        "query_p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
        **filtered,
    }  # fmt: skip


def incremental(store, indexes: dict, rng: np.random.Generator, centres: np.ndarray, start: int) -> dict[str, float]:
    """Vectors per second of ``applied()`` after each committed batch of 1,000 new items."""
    spent = dict.fromkeys(indexes, 0.0)
    added = 0
    for b in range(5):
        batch, vectors = items(start + b * 1_000, 1_000), clustered(rng, centres, 1_000)
        before = {name: index.generation for name, index in indexes.items()}
        store.add(batch, {"text": ([i.id for i in batch], vectors)})
        for name, index in indexes.items():
            t = time.perf_counter()
            index.applied([i.id for i in batch], vectors, before[name])
            spent[name] += time.perf_counter() - t
        added += len(batch)
    return {name: round(added / spent[name]) for name in indexes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="items (vectors) in the store")
    parser.add_argument("--dim", type=int, default=384, help="vector dimension")
    parser.add_argument("--queries", type=int, default=500, help="queries for recall and latency")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2_000, args.dim)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteRecordStore(Path(tmp) / "memory.db")
        indexes = {  # opened on the empty store: each is then built from it by a timed rebuild()
            "faiss": SegmentedIndex(store, "text", args.dim, Path(tmp) / "index"),
            "milvus-lite": MilvusSyncedIndex(store, "text", args.dim, str(Path(tmp) / "text.milvus.db"), "bench"),
        }
        started = time.perf_counter()
        all_ids, all_vectors = [], []
        for start in range(0, args.n, 5_000):
            size = min(5_000, args.n - start)
            batch, vectors = items(start, size), clustered(rng, centres, size)
            store.add(batch, {"text": ([i.id for i in batch], vectors)})
            all_ids += [i.id for i in batch]
            all_vectors.append(vectors)
        print(
            json.dumps({"store": "sqlite", "n": args.n, "fill_s": round(time.perf_counter() - started, 1)}), flush=True
        )
        vectors = np.concatenate(all_vectors)
        queries = clustered(rng, centres, args.queries)
        rare = np.array([n % 100 == 0 for n in range(args.n)])
        broad = np.array([n % 100 != 0 and n % 97 < 25 for n in range(args.n)])
        truth = exact_top(vectors, all_ids, queries, 10)
        rare_truth, broad_truth = exact_top(vectors, all_ids, queries, 10, rare), exact_top(vectors, all_ids, queries, 10, broad)  # fmt: skip
        results = {name: measure(name, index, store, queries, truth, rare_truth, broad_truth) for name, index in indexes.items()}  # fmt: skip
        for name, rate in incremental(store, indexes, rng, centres, args.n).items():
            results[name]["incremental_per_s"] = rate
        for index in indexes.values():
            index.close()
        store.close()
    for line in results.values():
        print(json.dumps(line), flush=True)
    m, f = results["milvus-lite"], results["faiss"]
    keys = ("build_s", "insert_per_s", "incremental_per_s", "query_p50_ms", "query_p95_ms", "rare_filter_p50_ms", "broad_filter_p50_ms")  # fmt: skip
    ratios = {k: round(m[k] / f[k], 2) for k in keys if f[k]}
    ratios |= {"recall_at_10": round(m["recall_at_10"] - f["recall_at_10"], 4)}
    print(json.dumps({"ratio": "milvus-lite / faiss (recall: difference)", **ratios}), flush=True)


if __name__ == "__main__":
    main()
