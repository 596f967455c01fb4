"""The traced text encoder against the eager one, alone and beside a spaCy parse, in one run.

    .venv/bin/python benchmarks/encoder_trace.py [--queries 200]

A query's encoding runs on one thread while its BM25 search and spaCy parse run on another
(``omnimem.retrieval.threads``); an add's encoding runs beside the graph's parse. Eager PyTorch gives
the GIL back between its few hundred small ops and waits for it again, and spaCy holds it most of the
time; the traced forward pass (``omnimem.encoders.traced``) releases it once. Two JSON lines:

- ``query``: one-question encode p50/p95 on one OpenMP thread, eager and traced, alone and while
  another thread parses questions with spaCy (as a query's worker does);
- ``batch``: the LoCoMo dev turns (``../shared/data`` or ``$OMNIMEM_DATA``; generated sentences
  without it) encoded in batches, eager and traced, and the largest difference between their vectors.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnimem.data import data_dir  # noqa: E402
from omnimem.encoders.sentence import SentenceEncoder  # noqa: E402
from omnimem.graph.extract import load_spacy  # noqa: E402
from omnimem.retrieval.threads import query_threads  # noqa: E402


def turns() -> list[str]:
    root = data_dir()
    path = root / "locomo" / "locomo_dev.json" if root else None
    if path is None or not path.exists():
        return [
            f"Caroline told Melanie about meeting {n} of the support group and the lake she painted."
            for n in range(800)
        ]
    out = []
    for sample in json.loads(path.read_text()):
        for key, session in sample["conversation"].items():
            if key.startswith("session_") and isinstance(session, list):
                out += [turn["text"] for turn in session]
    return out


def per_query(encoder: SentenceEncoder, questions: list[str]) -> list[float]:
    out = []
    with query_threads():  # one OpenMP thread, as a query encodes
        for q in questions:
            t = time.perf_counter()
            encoder.encode([q], modality="text")
            out.append(1000 * (time.perf_counter() - t))
    return out


def beside_parse(fn, nlp, questions: list[str]):
    """``fn()`` while another thread parses ``questions`` with spaCy, round and round."""
    stop = threading.Event()

    def parse() -> None:
        with query_threads():
            while not stop.is_set():
                for q in questions[:20]:
                    nlp(q)

    worker = threading.Thread(target=parse)
    worker.start()
    try:
        time.sleep(0.05)
        return fn()
    finally:
        stop.set()
        worker.join()


def stats(xs: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(xs, 50)), 2), "p95_ms": round(float(np.percentile(xs, 95)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    texts = turns()
    questions = [t for t in texts if 20 <= len(t) <= 120][: args.queries]
    traced, eager = SentenceEncoder.from_pretrained("minilm"), SentenceEncoder.from_pretrained("minilm", trace=False)
    if traced._traced is None:
        print(json.dumps({"bench": "encoder_trace", "skipped": "the model could not be traced (see the log)"}))
        return
    nlp = load_spacy()
    for q in questions[:20]:  # warm both and the parser
        traced.encode([q]), eager.encode([q]), nlp(q)
    rows = {}
    for name, enc in (("eager", eager), ("traced", traced)):  # alternate to share the machine's slow spells
        rows[name] = per_query(enc, questions)
        rows[f"{name}_beside_parse"] = beside_parse(lambda e=enc: per_query(e, questions), nlp, questions)
    summary = {name: stats(xs) for name, xs in rows.items()}
    speedup = lambda a, b: round(summary[a]["p50_ms"] / summary[b]["p50_ms"], 2)  # noqa: E731
    print(json.dumps({"bench": "encoder_trace", "part": "query", "queries": len(questions), **summary,
                      "alone_speedup": speedup("eager", "traced"),
                      "beside_parse_speedup": speedup("eager_beside_parse", "traced_beside_parse")}), flush=True)  # fmt: skip
    seconds = {}
    vectors = {}
    for name, enc in (("eager", eager), ("traced", traced), ("eager_again", eager)):
        t = time.perf_counter()
        vectors[name] = enc.encode(texts, modality="text")
        seconds[name] = time.perf_counter() - t
    eager_s = min(seconds["eager"], seconds["eager_again"])
    print(json.dumps({"bench": "encoder_trace", "part": "batch", "texts": len(texts),
                      "eager_s": round(eager_s, 2), "traced_s": round(seconds["traced"], 2),
                      "speedup": round(eager_s / seconds["traced"], 2),
                      "max_abs_diff": float(np.abs(vectors["eager"] - vectors["traced"]).max())}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
