"""The int8 MiniLM against the float one: encoding speed and retrieval recall, in one run.

    .venv/bin/python benchmarks/encoder_int8.py [--queries 200] [--no-evals]

One JSON line per encoder ("minilm", "minilm-int8"): single-query encode p50 (one OpenMP thread, as
a query runs), batched encode ms per sentence (LoCoMo turns, batches of 64, all cores), and with the
shared data, LoCoMo dev hybrid recall@5/@10 and MuSiQue dev (100 questions) hybrid recall@2/@5; then
one line with the int8/float speed ratios and recall differences. The encoders are timed alternately
(a noisy machine slows both alike).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnimem.data import data_dir  # noqa: E402
from omnimem.encoders import create_encoder  # noqa: E402
from omnimem.retrieval.threads import query_threads  # noqa: E402

NAMES = ("minilm", "minilm-int8")


def turns(root: Path, limit: int) -> list[str]:
    """LoCoMo dev turn texts (the queries and the batch)."""
    out = []
    for sample in json.loads((root / "locomo" / "locomo_dev.json").read_text()):
        for key, session in sample["conversation"].items():
            if key.startswith("session_") and isinstance(session, list):
                out += [t["text"] for t in session if t.get("text")]
    return out[:limit]


def speed(encoders: dict, texts: list[str], queries: int) -> dict[str, dict[str, float]]:
    single: dict[str, list[float]] = {n: [] for n in encoders}
    for text in texts[:queries]:
        for name, encoder in encoders.items():
            with query_threads():
                t = time.perf_counter()
                encoder.encode([text], modality="text")
                single[name].append(1000 * (time.perf_counter() - t))
    batched = {}
    for name, encoder in encoders.items():
        t = time.perf_counter()
        encoder.encode(texts, modality="text")
        batched[name] = 1000 * (time.perf_counter() - t) / len(texts)
    return {n: {"query_p50_ms": round(sorted(v)[len(v) // 2], 2), "batch_ms_per_text": round(batched[n], 2)} for n, v in single.items()}  # fmt: skip


def recall(root: Path, encoder) -> dict[str, float]:
    from omnimem.eval.locomo import evaluate_locomo
    from omnimem.eval.musique import evaluate_musique

    locomo = evaluate_locomo(str(root / "locomo" / "locomo_dev.json"), ks=[5, 10], encoder=encoder)
    musique = evaluate_musique(
        str(root / "musique" / "musique_qa_train100.json"), str(root / "musique" / "musique_train_corpus.json"),
        ks=[2, 5], encoder=encoder,
    )  # fmt: skip
    return {
        "locomo_hybrid@5": locomo["recall@5"], "locomo_hybrid@10": locomo["recall@10"],
        "musique_hybrid@2": musique["recall@2"], "musique_hybrid@5": musique["recall@5"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-evals", action="store_true", help="speed only")
    args = parser.parse_args()
    root = data_dir()
    if root is None:
        print(json.dumps({"bench": "encoder_int8", "skipped": "no data folder (set OMNIMEM_DATA or place ../shared/data)"}))  # fmt: skip
        return
    encoders = {name: create_encoder(name) for name in NAMES}
    texts = turns(root, 640)
    for encoder in encoders.values():
        encoder.encode(texts[:64], modality="text")  # warm up
    figures = speed(encoders, texts, args.queries)
    if not args.no_evals:
        for name, encoder in encoders.items():
            figures[name].update({k: round(v, 4) for k, v in recall(root, encoder).items()})
    for name in NAMES:
        print(json.dumps({"bench": "encoder_int8", "encoder": name, "texts": len(texts), **figures[name]}), flush=True)
    fp, q8 = figures["minilm"], figures["minilm-int8"]
    ratio = {
        "query_speedup": round(fp["query_p50_ms"] / q8["query_p50_ms"], 2),
        "batch_speedup": round(fp["batch_ms_per_text"] / q8["batch_ms_per_text"], 2),
    }
    ratio.update({f"{k}_change": round(q8[k] - fp[k], 4) for k in fp if "@" in k})
    print(json.dumps({"bench": "encoder_int8", "int8_vs_float": ratio}))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
