"""Query latency and ingest rate as a memory grows: 1k -> 10k -> 100k items.

    .venv/bin/python benchmarks/latency.py [--sizes 1000 10000 100000] [--encoder minilm] [--queries 200]

One JSON line per size: ingest rate (items/s, encoding included) of the items added to reach that
size, hybrid ``mem.search`` latency p50/p95 (query encoding included), and a baseline measured in the
same run on the same vectors: encode + exact numpy inner-product search (what a plain dense memory
does), so ``search_vs_baseline_p50`` is stable across noisy machines. ``dense_overlap@10`` compares the
memory's FAISS index (IVF above ``index.approx_threshold``) with exact search.
Synthetic sentences are fine for scale: latency depends on sizes, not on meaning.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnimem import Memory, MemoryConfig  # noqa: E402
from omnimem.config import GraphConfig  # noqa: E402
from omnimem.encoders import create_encoder  # noqa: E402

NAMES = "Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert Sybil Trent Victor Walter Yara".split()
VERBS = "visited painted bought sold repaired borrowed photographed described recommended cooked planted cleaned discussed".split()
THINGS = "a red bicycle|an old guitar|the garden shed|a lemon cake|the blue canoe|a jazz record|the mountain cabin|a chess set|the tomato plants|a leather jacket|the city library|a wooden table|the harbour ferry|a silver necklace|the science museum".split(
    "|"
)
PLACES = "Berlin|Lisbon|Osaka|Denver|Nairobi|Oslo|Lima|Hanoi|Porto|Quebec|Seville|Tromso".split("|")
WHEN = "on Monday|last spring|in March|yesterday|over the weekend|in 2019|after work|during the holidays".split("|")


def sentence(rng: random.Random) -> str:
    return f"{rng.choice(NAMES)} {rng.choice(VERBS)} {rng.choice(THINGS)} in {rng.choice(PLACES)} {rng.choice(WHEN)}, item {rng.randrange(10**6)}."


def question(rng: random.Random) -> str:
    return f"What did {rng.choice(NAMES)} {rng.choice(VERBS).rstrip('ed')} in {rng.choice(PLACES)}?"


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1_000, help="items per add_conversation call")
    parser.add_argument("--no-graph", action="store_true", help="skip graph extraction on add (store + search only)")
    args = parser.parse_args()

    encoder = create_encoder(args.encoder)
    rng = random.Random(0)
    questions = [question(rng) for _ in range(args.queries)]
    config = MemoryConfig(graph=GraphConfig(extract_on_add=not args.no_graph))
    with tempfile.TemporaryDirectory() as tmp, Memory.open(Path(tmp) / "m", encoder=encoder, config=config) as mem:
        for size in sorted(args.sizes):
            start, t0 = len(mem), time.perf_counter()
            while len(mem) < size:
                n = min(args.batch, size - len(mem))
                mem.add_conversation([{"speaker": None, "text": sentence(rng)} for _ in range(n)])
            ingest_s = time.perf_counter() - t0
            mem.search(questions[0])  # warm-up
            lat = []
            for q in questions:
                q0 = time.perf_counter()
                mem.search(q, k=10)
                lat.append(1000 * (time.perf_counter() - q0))
            # Baseline: encode + exact search over the same vectors, in numpy.
            ids, matrix = mem.store.vectors("text")
            base, overlap = [], []
            for q in questions:
                q0 = time.perf_counter()
                qv = encoder.encode([q])
                scores = matrix @ qv[0]
                top = np.argpartition(-scores, 10)[:10]
                base.append(1000 * (time.perf_counter() - q0))
                exact = {ids[j] for j in top}
                approx = {i for i, _ in mem.indexes["text"].index.search(qv, 10)[0]}
                overlap.append(len(exact & approx) / 10)
            p50, base_p50 = statistics.median(lat), statistics.median(base)
            print(
                json.dumps(
                    {
                        "benchmark": "latency",
                        "items": len(mem),
                        "encoder": encoder.name,
                        "index": mem.indexes["text"].index.kind,
                        "ingest_items_per_s": round((len(mem) - start) / ingest_s, 1),
                        "search_ms_p50": round(p50, 2),
                        "search_ms_p95": round(percentile(lat, 0.95), 2),
                        "baseline_exact_dense_ms_p50": round(base_p50, 2),
                        "search_vs_baseline_p50": round(p50 / base_p50, 2),
                        "dense_overlap@10": round(float(np.mean(overlap)), 3),
                        "queries": len(questions),
                    }  # fmt: skip
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
