"""Build the M3KG over the MuSiQue corpus with the fast (spaCy, no-LLM) extractor; print one JSON line.

    .venv/bin/python benchmarks/graph_build.py [--limit N] [--batch 256] [--no-resolve] [--no-split] [--embed minilm|bow]

Reads ``musique/musique_train_corpus.json`` (1,890 passages) from ``omnimem.data.data_dir()`` and
prints ``{"skipped": ...}`` when the data is absent. The baseline, measured in the same run over the
same passages (alternating with the build chunk by chunk), is spaCy's ``nlp.pipe`` alone: the ratio
``overhead`` = build / baseline shows what our rules and the SQLite writes cost on top of parsing.
Sense splitting (homonyms, ``omnimem.graph.senses``) then entity resolution (MiniLM contexts by
default) run once at the end and are timed on their own.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="passages to use (default: all)")
    parser.add_argument("--batch", type=int, default=256, help="items per GraphBuilder.add_items call")
    parser.add_argument("--no-resolve", action="store_true", help="skip entity resolution (and sense splitting)")
    parser.add_argument("--no-split", action="store_true", help="skip sense splitting")
    parser.add_argument("--embed", choices=("minilm", "bow"), default="minilm", help="context embedder for resolution")
    args = parser.parse_args(argv)

    from omnimem.data import data_dir

    root = data_dir()
    corpus_path = root / "musique" / "musique_train_corpus.json" if root else None
    if corpus_path is None or not corpus_path.is_file():
        print(json.dumps({"benchmark": "graph_build", "skipped": "musique corpus absent (set OMNIMEM_DATA)"}))
        return 0

    from omnimem.graph import EntityResolver, GraphBuilder, SenseSplitter, SpacyExtractor, SQLiteGraphStore
    from omnimem.stores.sqlite import SQLiteRecordStore
    from omnimem.types import Item

    corpus = json.loads(corpus_path.read_text(encoding="utf-8"))[: args.limit]
    items = [Item.make(text=f"{p['title']}. {p['text']}", source=p["title"]) for p in corpus]
    extractor = SpacyExtractor.from_pretrained()

    embed = None
    if not args.no_resolve and args.embed == "minilm":
        from omnimem.encoders.sentence import SentenceEncoder

        encoder = SentenceEncoder.from_pretrained("minilm")
        embed = lambda texts: encoder.encode(texts)  # noqa: E731
    resolver = None if args.no_resolve else EntityResolver(embed)

    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteRecordStore(Path(tmp) / "memory.db")
        graph = SQLiteGraphStore(store)
        builder = GraphBuilder(graph, extractor)
        # baseline and build alternate chunk by chunk, so load from other processes hits both alike
        baseline_s = build_s = 0.0
        sentences = 0
        for k in range(0, len(items), args.batch):
            chunk = items[k : k + args.batch]
            start = time.perf_counter()
            docs = extractor.nlp.pipe([i.text for i in chunk], batch_size=extractor.config.batch_size)
            sentences += sum(len(list(doc.sents)) for doc in docs)
            baseline_s += time.perf_counter() - start
            start = time.perf_counter()
            builder.add_items(chunk)
            build_s += time.perf_counter() - start
        start = time.perf_counter()
        splits = SenseSplitter(embed).split(graph) if resolver and not args.no_split else []
        split_s = time.perf_counter() - start
        split_names = sorted({graph.get_entity(s.entity).name for s in splits})
        start = time.perf_counter()
        resolution = resolver.resolve(graph) if resolver else None
        resolve_s = time.perf_counter() - start
        counts = graph.counts()
        uncovered = len(graph.check_coverage())
        store.close()

    seconds = build_s + split_s + resolve_s
    print(
        json.dumps(
            {
                "benchmark": "graph_build",
                "data": "musique_train_corpus",
                "passages": len(items),
                "sentences": sentences,
                "seconds": round(seconds, 2),
                "build_seconds": round(build_s, 2),
                "split_seconds": round(split_s, 2),
                "resolve_seconds": round(resolve_s, 2),
                "passages_per_s": round(len(items) / build_s, 1),
                "sentences_per_s": round(sentences / build_s, 1),
                "entities": counts["entities"],
                "triplets": counts["triplets"],
                "mentions": counts["mentions"],
                "relations": counts["relations"],
                "merges": counts["merges"],
                "splits": len(splits),
                "split_names": split_names[:20],
                "candidate_pairs": resolution.candidates if resolution else 0,
                "uncovered_triplets": uncovered,
                "resolver_embed": None if args.no_resolve else args.embed,
                "baseline": "spacy nlp.pipe alone",
                "baseline_seconds": round(baseline_s, 2),
                "baseline_sentences_per_s": round(sentences / baseline_s, 1),
                "overhead": round(build_s / baseline_s, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
