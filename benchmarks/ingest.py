"""Ingest throughput on real conversations, against the encoder-only floor measured in the same run.

    .venv/bin/python benchmarks/ingest.py [--encoder minilm] [--repeat 1]

The LoCoMo dev conversations (../shared/data or $OMNIMEM_DATA) are added session by session with
``mem.add_conversation``, as a chat agent adds them, into a fresh memory per mode:

- ``no_graph``: items, vectors and full text only (``graph.extract_on_add=False``);
- ``graph_inline``: spaCy graph extraction on every add, on the caller's thread, one after the other;
- ``graph_background``: the same extraction on a worker thread (``graph.extract_in_background``):
  the caller encodes the next session while the worker parses the last (omnimem.memory.pipeline).

Each mode's time runs from the first add to ``close()`` returning (queued extraction included). The
floor is the text encoder alone on the same texts the memory embeds (heading and text, the batches of
the sessions), into a numpy array: nothing stored. It is measured before and after the modes and the
faster of the two is used. One JSON line per mode: turns/s, its share of the floor, and the graph's size
(the background mode must build the same graph as the inline one).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnimem import Memory, MemoryConfig  # noqa: E402
from omnimem.config import GraphConfig  # noqa: E402
from omnimem.data import data_dir  # noqa: E402
from omnimem.encoders import create_encoder  # noqa: E402
from omnimem.eval.locomo import conversation_turns, load_locomo  # noqa: E402
from omnimem.memory.inputs import embedding_text  # noqa: E402

MODES = {
    "no_graph": GraphConfig(extract_on_add=False),
    "graph_inline": GraphConfig(extract_in_background=False),
    "graph_background": GraphConfig(extract_in_background=True),
}


def sessions(path: Path) -> list[tuple[str, str, list[dict]]]:
    """``(episode, session, turns)`` of every conversation, in order."""
    out = []
    for sample in load_locomo(path):
        for session, _, turns in conversation_turns(sample):
            out.append((str(sample.get("sample_id")), session, turns))
    return out


def ingest(tmp: Path, name: str, graph: GraphConfig, work, encoder) -> tuple[float, dict]:
    """Seconds to add every session and close; the memory's size after."""
    path = tmp / name
    t0 = time.perf_counter()
    mem = Memory.open(path, encoder=encoder, config=MemoryConfig(graph=graph))
    for episode, session, turns in work:
        mem.add_conversation(turns, session=session, episode=episode)
    mem.close()
    seconds = time.perf_counter() - t0
    with Memory.open(path, encoder=encoder) as mem:
        size = {
            "items": len(mem),
            "entities": len(mem.graph.entities()),
            "triplets": len(mem.graph.triplets()),
            "pending": len(mem.store.pending("graph")),
        }
    return seconds, size


def floor(batches: list[list[str]], encoder) -> float:
    """Seconds to encode the batches with the encoder alone."""
    t0 = time.perf_counter()
    for texts in batches:
        encoder.encode(texts, modality="text")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--repeat", type=int, default=1, help="times each mode runs (the fastest is kept)")
    args = parser.parse_args()
    root = data_dir()
    path = root / "locomo" / "locomo_dev.json" if root else None
    if path is None or not path.exists():
        print(json.dumps({"skipped": "LoCoMo dev data not found (set OMNIMEM_DATA)"}))
        return
    work = sessions(path)
    turns = sum(len(t) for _, _, t in work)
    encoder = create_encoder(args.encoder)
    encoder.encode(["warm up the encoder"], modality="text")
    with tempfile.TemporaryDirectory() as tmp:
        # the floor's texts: exactly what the memory embeds, batched as the sessions are
        seconds, _ = ingest(Path(tmp), "probe", GraphConfig(extract_on_add=False), work, encoder)
        with Memory.open(Path(tmp) / "probe", encoder=encoder) as mem:
            items = {i.id: i for i in mem.store.get(list(mem.store.ids())) if i is not None}
        order = sorted(items.values(), key=lambda i: (i.episode or "", i.session or "", i.metadata.get("dia_id", "")))
        by_session: dict[tuple, list[str]] = {}
        for item in order:
            by_session.setdefault((item.episode, item.session), []).append(embedding_text(item))
        batches = list(by_session.values())
        floors = [floor(batches, encoder)]
        results = {}
        for n in range(args.repeat):
            if n:  # the floor again between rounds: the fastest of several is the machine's quiet speed
                floors.append(floor(batches, encoder))
            for name, graph in MODES.items():
                seconds, size = ingest(Path(tmp), f"{name}-{n}", graph, work, encoder)
                if name not in results or seconds < results[name][0]:
                    results[name] = (seconds, size)
        floors.append(floor(batches, encoder))
    floor_s = min(floors)
    for name, (seconds, size) in results.items():
        print(
            json.dumps(
                {
                    "benchmark": "ingest",
                    "mode": name,
                    "turns": turns,
                    "turns_per_s": round(turns / seconds, 1),
                    "seconds": round(seconds, 2),
                    "floor_turns_per_s": round(turns / floor_s, 1),
                    "share_of_floor": round(floor_s / seconds, 3),
                    "floor_runs_s": [round(f, 2) for f in floors],
                    **size,
                    "encoder": encoder.name,
                }  # fmt: skip
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
