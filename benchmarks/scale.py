"""One machine, a million items: build, open, search and context as the memory grows.

    .venv/bin/python benchmarks/scale.py --sizes 10000 100000 1000000 [--queries 200] [--memory DIR]

One JSON line per size: build time and items/s (bulk path, precomputed vectors), open time (cold: a
fresh process; warm: again), disk size, peak RSS of the building process, ``mem.search`` and
``mem.context`` p50/p95 over ``--queries`` questions (query encoding included; steady state, after a
pass over them, taking turns with the floor question by question, with the first 50 searches after the page-cache drop reported as ``cold_search``), filtered-search p50
for a speaker holding 0.1% of the items, dense recall@10 of the index against exact search, and in the
same run the floor: MiniLM query encoding + the raw FAISS search on the same vectors (no SQL, no
fusion), with ``search_vs_floor`` / ``context_vs_floor`` ratios (stable across noisy machines).

Items are conversation-like: sentences of the LoCoMo turns and MuSiQue passages under ../shared/data
(or $OMNIMEM_DATA), one or two per item, with the LoCoMo speakers' names swapped for 2,000 generated
names (a Zipf law over speakers; one speaker holds 0.1% of the items) and dates spread over five years;
~20 items per session. Encoding a million items would take hours on 2 cores, so a pool of unique
sentences is encoded once with the real encoder and an item's vector is the normalised sum of its
sentences' vectors plus a little noise (norm 0.2 against the unit vector: items stay distinct, clustered
around their sentences as real embeddings of recombined text are). The
first 5,000 items go through the normal add path with graph extraction, so the memory has a graph;
the rest use the bulk path (``add_items(vectors=..., extract=False)``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnimem import Item, Memory, MemoryConfig  # noqa: E402
from omnimem.config import GraphConfig  # noqa: E402
from omnimem.data import data_dir  # noqa: E402
from omnimem.encoders import create_encoder  # noqa: E402

GRAPH_ITEMS = 5_000  # items added through the normal path with graph extraction
POOL = 6_000  # unique sentences encoded with the real encoder
NOISE = 0.2  # norm of the noise added to an item's (unit) vector: items of one sentence stay ~0.98 alike
# a fresh process: the encoder loads first (untimed: a server has it loaded), then Memory.open and the
# first search are timed
OPEN = """
import sys, time
import omnimem
from omnimem.encoders import create_encoder
encoder = create_encoder(sys.argv[2])
encoder.encode(["warm up"], modality="text")
t = time.perf_counter()
mem = omnimem.Memory.open(sys.argv[1], encoder=encoder)
opened = time.perf_counter() - t
t = time.perf_counter()
mem.search("what did they say about the trip?", k=10)
print(opened, time.perf_counter() - t)
mem.close()
"""


def sentences(root: Path, limit: int) -> list[str]:
    """Unique sentences of LoCoMo turns and MuSiQue passages, shuffled."""
    out: set[str] = set()
    for sample in json.loads((root / "locomo" / "locomo_dev.json").read_text()):
        for key, turns in sample["conversation"].items():
            if key.startswith("session_") and isinstance(turns, list):
                out.update(s for t in turns for s in re.split(r"(?<=[.!?])\s+", t.get("text", "")) if 20 < len(s) < 300)
    for passage in json.loads((root / "musique" / "musique_train_corpus.json").read_text()):
        out.update(s for s in re.split(r"(?<=[.!?])\s+", passage.get("text", "")) if 20 < len(s) < 300)
    pool = sorted(out)
    random.Random(0).shuffle(pool)
    return pool[:limit]


class Maker:
    """Conversation-like items over a sentence pool, with their vectors (see the module docstring)."""

    def __init__(self, pool: list[str], vectors: np.ndarray, seed: int = 0) -> None:
        self.pool, self.vectors, self.rng = pool, vectors, np.random.default_rng(seed)
        syll = ["an", "bel", "cor", "dan", "el", "fa", "gor", "hel", "is", "jo", "ka", "lin", "mar", "no", "or", "pe", "ri", "sa", "tu", "vi"]  # fmt: skip
        self.names = sorted({(a + b + c).capitalize() for a in syll for b in syll for c in syll[:5]})[:2_000]
        weights = 1.0 / np.arange(1, len(self.names) + 1)
        self.p = weights / weights.sum()
        self.rare = "Quillon"  # holds every 1,000th item: the 0.1%-selective filter
        self.n = 0

    def batch(self, size: int) -> tuple[list[Item], np.ndarray]:
        items, rows = [], []
        for _ in range(size):
            k = 1 + int(self.rng.random() < 0.4)
            picks = self.rng.integers(0, len(self.pool), k)
            speaker = self.rare if self.n % 1_000 == 0 else self.names[self.rng.choice(len(self.names), p=self.p)]
            day = f"{2019 + self.n // 200_000}-{1 + (self.n // 17_000) % 12:02d}-{1 + (self.n // 600) % 28:02d}"
            text = " ".join(self.pool[i] for i in picks).replace("Caroline", speaker).replace("Melanie", self.names[(self.n * 7) % 2000])  # fmt: skip
            items.append(Item.make(text=text, speaker=speaker, event_time=day, session=f"s{self.n // 20}", episode=f"e{self.n // 500}", place=self.n))  # fmt: skip
            v = self.vectors[picks].sum(axis=0)
            v = v / np.linalg.norm(v) + NOISE * self.rng.standard_normal(len(v)) / np.sqrt(len(v))
            rows.append(v / np.linalg.norm(v))
            self.n += 1
        return items, np.asarray(rows, dtype=np.float32)


def questions(maker: Maker, n: int) -> list[str]:
    """``n`` questions about the items: a frequent speaker and the first words of a pool sentence."""
    rng = random.Random(1)
    return [f"What did {rng.choice(maker.names[:300])} say about {' '.join(rng.choice(maker.pool).split()[:6])}?" for _ in range(n)]  # fmt: skip


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


def timed(fn, args) -> list[float]:
    out = []
    for a in args:
        t = time.perf_counter()
        fn(a)
        out.append(1000 * (time.perf_counter() - t))
    return out


def interleaved(args, *fns) -> list[list[float]]:
    """Milliseconds of each function on each argument, the functions taking turns per argument (in a
    rotating order): on a machine whose speed drifts, each one sees the same slow and quiet spells, so
    the ratios between them hold."""
    out: list[list[float]] = [[] for _ in fns]
    for n, a in enumerate(args):
        for k in [(n + j) % len(fns) for j in range(len(fns))]:
            t = time.perf_counter()
            fns[k](a)
            out[k].append(1000 * (time.perf_counter() - t))
    return out


def measure(path: Path, size: int, built_s: float, added: int, queries: list[str], encoder) -> dict:
    dropped = _drop_page_cache()  # cold: the files read from disk (when this process may drop the cache)
    cold, cold_search = _open_in_fresh_process(path, encoder.name)
    warm, warm_search = _open_in_fresh_process(path, encoder.name)
    with Memory.open(path, encoder=encoder) as mem:
        index = mem.indexes["text"]
        index.close()  # no compaction running while timing
        first = timed(lambda q: mem.search(q, k=10), queries[:50])  # the page cache was dropped: from disk
        for q in queries:  # then steady state, as a serving process runs: the timed passes below
            mem.search(q, k=10)
            mem.context(q)
        search, context, floor = interleaved(
            queries,
            lambda q: mem.search(q, k=10),
            lambda q: mem.context(q),
            lambda q: index._faiss_search(encoder.encode([q], modality="text"), 10, None),
        )
        rare = timed(lambda q: mem.search(q, k=10, speakers=["Quillon"], retrievers=("dense",)), queries[:50])
        vectors = encoder.encode(queries, modality="text")
        exact = _exact_top10(mem, vectors[:100])
        got = index.search(vectors[:100], 10)
        recall = float(np.mean([len({i for i, _ in g} & e) / 10 for g, e in zip(got, exact)]))
        rare_ok = all(h.speaker == "Quillon" for h in mem.search(queries[1], k=10, speakers=["Quillon"]))
        kind = "ivf" if index.base is not None and "IVF" in type(index.base).__name__ else "flat"
        kind += f"-{mem.config.index.codes}" if kind == "ivf" else ""
    disk = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    p50 = lambda xs: pct(xs, 0.5)  # noqa: E731
    return {
        "bench": "scale", "items": size, "built_items": added, "build_s": round(built_s, 1),
        "build_items_per_s": round(added / built_s, 1) if built_s else None, "open_cold_s": round(cold, 3),
        "open_warm_s": round(warm, 3),
        "page_cache_dropped": dropped, "first_search_after_open_ms": [round(1000 * cold_search, 1), round(1000 * warm_search, 1)], "disk_mb": round(disk / 2**20, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "index": kind,
        "cold_search_p50_ms": p50(first), "cold_search_p95_ms": pct(first, 0.95), "search_p50_ms": p50(search), "search_p95_ms": pct(search, 0.95), "context_p50_ms": p50(context),
        "context_p95_ms": pct(context, 0.95), "filtered_search_p50_ms": p50(rare), "filter_only_matches": rare_ok,
        "dense_recall@10_vs_exact": round(recall, 4), "floor_p50_ms": p50(floor),
        "search_vs_floor": round(p50(search) / p50(floor), 2), "context_vs_floor": round(p50(context) / p50(floor), 2),
        "queries": len(queries),
    }  # fmt: skip


def _open_in_fresh_process(path: Path, encoder: str) -> tuple[float, float]:
    """Seconds of ``Memory.open`` and of the first search after it, in a new Python process."""
    done = subprocess.run([sys.executable, "-c", OPEN, str(path), encoder], capture_output=True, text=True, check=True)
    opened, first = done.stdout.split()[-2:]
    return float(opened), float(first)


def _drop_page_cache() -> bool:
    """Ask the kernel to drop its page cache (root on Linux); False where it may not."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def _exact_top10(mem, queries: np.ndarray) -> list[set[str]]:
    """Exact top-10 ids of each query over every stored vector, streamed in batches (bounded memory)."""
    best_s = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    best_k = np.zeros((len(queries), 10), dtype=np.int64)
    for keys, vectors in mem.store.iter_vectors("text"):
        scores = np.concatenate([best_s, queries @ vectors.T], axis=1)
        cands = np.concatenate([best_k, np.broadcast_to(np.array(keys, dtype=np.int64), (len(queries), len(keys)))], axis=1)  # fmt: skip
        top = np.argsort(-scores, axis=1)[:, :10]
        best_s, best_k = np.take_along_axis(scores, top, 1), np.take_along_axis(cands, top, 1)
    names = mem.store.ids_for_keys("text", sorted(set(best_k.ravel().tolist())))
    return [{names[k] for k in row if k in names} for row in best_k.tolist()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument(
        "--memory",
        help="build here (kept; a memory already there of a size is measured, not rebuilt); default a temporary folder, removed after",
    )
    parser.add_argument("--batch", type=int, default=2_000)
    args = parser.parse_args()
    root = data_dir()
    if root is None:
        print(json.dumps({"bench": "scale", "skipped": "no data folder (set OMNIMEM_DATA or place ../shared/data)"}))
        return
    encoder = create_encoder(args.encoder)
    pool = sentences(root, POOL)
    t0 = time.perf_counter()
    pool_vectors = encoder.encode(pool, modality="text")
    print(json.dumps({"bench": "scale", "pool_sentences": len(pool), "pool_encode_s": round(time.perf_counter() - t0, 1)}), flush=True)  # fmt: skip
    maker = Maker(pool, pool_vectors)
    queries = questions(maker, args.queries)
    folder = Path(args.memory) if args.memory else Path(tempfile.mkdtemp(prefix="omnimem-scale-"))
    path = folder / "m"
    try:
        with Memory.open(path, encoder=encoder, config=MemoryConfig(graph=GraphConfig(extract_on_add=True))) as mem:
            for size in sorted(args.sizes):
                t, start = time.perf_counter(), len(mem)
                with mem.bulk():  # one base segment at the end, not one per tenth of growth
                    while len(mem) < size:
                        items, vectors = maker.batch(min(args.batch, size - len(mem)))
                        mem.add_items(items, vectors=vectors, extract=len(mem) < GRAPH_ITEMS)
                built = time.perf_counter() - t
                mem.store.flush_access()
                print(json.dumps(measure(path, size, built, len(mem) - start, queries, encoder)), flush=True)
    finally:
        if not args.memory:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
