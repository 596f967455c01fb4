"""Jobs on a local Ray cluster against the same jobs in this process: wall time with 1 and 2 workers,
what Ray adds per task, and the results compared item by item and triplet by triplet.

    .venv/bin/python benchmarks/ray_jobs.py [--copies 3] [--passages N] [--batch 64] [--encoder hash|minilm]

Prints one JSON line per job:

- ``ingest``: the video clips and speech recordings of the shared data folder, each copied ``--copies``
  times under distinct names with bytes appended (distinct digests, so each copy is read again:
  >= 20 files with the default 3), ingested in this process, then on Ray with 1 and 2 workers;
- ``graph_build``: the fast graph job over the MuSiQue corpus (1,890 passages, or ``--passages``),
  the same three ways; ``reduce_s`` is what stays on the driver after the last batch (sense splits
  and entity resolution);
- ``ray_task``: an empty batch through the Ray executor and through the in-process one: the
  round trip Ray adds to every task.

``overhead_per_task_ms`` = (Ray with 1 worker - in this process) / tasks: shipping inputs and
results, the actor's start and model loads, the driver's wait. The cluster's own start
(``cluster_start_s``) is timed once, apart. ``identical``: the same items (episode, span, text, id)
and the same triplet ids, sources and mention counts as the in-process run. Prints
``{"skipped": ...}`` when the data folder is absent. Numbers from a shared 2-core machine are
indicative: measure on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CLIPS = ["big_buck_bunny_0_30.webm", "big_buck_bunny_432_433.webm", "chaplin.mp4", "fire2.mp4"]
SPEECH = ["whisper/jfk.flac", "speech_recognition/english.wav", "speech_recognition/french.aiff"]


def _open(path: Path, encoder: str, *, extract_on_add: bool = True):
    from omnimem import Memory
    from omnimem.config import GraphConfig, MemoryConfig

    config = MemoryConfig(graph=GraphConfig(extract_on_add=extract_on_add))
    if encoder == "hash":
        from omnimem.encoders.hashing import HashEncoder

        return Memory.open(path, encoder=HashEncoder(64), config=config)
    return Memory.open(path, config=config)


def _items(mem) -> list[tuple]:
    items = [i for i in mem.store.get(list(mem.store.ids())) if i is not None]
    return sorted((i.episode or "", i.t_start or 0.0, i.text, i.id) for i in items)


def _graph(mem) -> tuple:
    triplets = mem.graph.triplets()
    sources = mem.graph.sources([t.id for t in triplets])
    return sorted(t.id for t in triplets), sorted((k, tuple(sorted(v))) for k, v in sources.items()), len(mem.graph.mentions())  # fmt: skip


def _folder(root: Path, data: Path, copies: int) -> list[Path]:
    """Each clip and recording ``copies`` times: copy k has k zero bytes appended (a new digest)."""
    files = []
    for name in [f"video/moviepy/{c}" for c in CLIPS] + [f"audio/{s}" for s in SPEECH]:
        source = data / name
        if not source.is_file():
            continue
        body = source.read_bytes()
        for k in range(copies):
            target = root / f"{source.stem}_{k}{source.suffix}"
            target.write_bytes(body + b"\0" * k)
            files.append(target)
    return files


def _runs(job, make_executor, workers: tuple[int, ...]) -> dict:
    """``job(executor) -> (seconds, result)`` in this process, then on Ray with each worker count."""
    out = {"here": job(None)}
    for n in workers:
        with make_executor(n) as executor:
            out[n] = job(executor)
    return out


def bench_ingest(data: Path, tmp: Path, args, make_executor) -> dict:
    folder = tmp / "inbox"
    folder.mkdir()
    files = _folder(folder, data, args.copies)

    def job(executor):
        where = tmp / f"ingest-{'here' if executor is None else executor.workers}"
        with _open(where, args.encoder) as mem:
            start = time.perf_counter()
            options = {} if executor is None else {"executor": executor}
            report = mem.ingest(folder, progress=False, **options)
            seconds = time.perf_counter() - start
            return seconds, (_items(mem), _graph(mem), sorted(report.added.items()), sorted(report.failed))

    warm = tmp / "warm"  # one file of each kind first: models and codecs in the page cache for every run
    warm.mkdir()
    for kind in (".webm", ".flac"):
        shutil.copy(next(f for f in files if f.suffix == kind), warm)
    with _open(tmp / "ingest-warm", args.encoder) as mem:
        mem.ingest(warm, progress=False)
    runs = _runs(job, make_executor, (1, 2))
    here, one, two = runs["here"], runs[1], runs[2]
    return {
        "bench": "ray_jobs", "job": "ingest", "files": len(files), "items": len(here[1][0]),
        "failed": len(here[1][3]), "encoder": args.encoder,
        "wall_s": {"in_process": round(here[0], 2), "ray_1_worker": round(one[0], 2), "ray_2_workers": round(two[0], 2)},
        "speedup_2_vs_1": round(one[0] / two[0], 2),
        "overhead_per_task_ms": round((one[0] - here[0]) / max(len(files), 1) * 1000, 1),
        "identical": one[1] == here[1] and two[1] == here[1],
    }  # fmt: skip


def bench_graph(data: Path, tmp: Path, args, make_executor) -> dict:
    from omnimem.graph.jobs import build_graph
    from omnimem.types import Item

    corpus = json.loads((data / "musique" / "musique_train_corpus.json").read_text(encoding="utf-8"))
    corpus = corpus[: args.passages] if args.passages else corpus
    items = [Item.make(text=f"{p['title']}. {p['text']}", source=p["title"]) for p in corpus]

    def job(executor):
        where = tmp / f"graph-{'here' if executor is None else executor.workers}"
        with _open(where, args.encoder, extract_on_add=False) as mem:
            mem.add_items(items)
            last = []
            start = time.perf_counter()
            report = build_graph(
                mem, batch_size=args.batch, executor=executor,
                progress=lambda done, total: last.append(time.perf_counter()) if done == total else None,
            )  # fmt: skip
            end = time.perf_counter()
            reduce_s = end - last[-1] if last else 0.0
            counts = (report.entities, report.triplets, report.merges, report.splits)
            return end - start, (_graph(mem), counts), reduce_s

    runs = _runs(job, make_executor, (1, 2))
    here, one, two = runs["here"], runs[1], runs[2]
    batches = -(-len(items) // args.batch)
    return {
        "bench": "ray_jobs", "job": "graph_build", "passages": len(items), "batch": args.batch, "batches": batches,
        "triplets": len(here[1][0][0]), "merges": here[1][1][2], "splits": here[1][1][3], "encoder": args.encoder,
        "wall_s": {"in_process": round(here[0], 2), "ray_1_worker": round(one[0], 2), "ray_2_workers": round(two[0], 2)},
        "reduce_s": {"in_process": round(here[2], 2), "ray_1_worker": round(one[2], 2), "ray_2_workers": round(two[2], 2)},
        "speedup_2_vs_1": round(one[0] / two[0], 2),
        "overhead_per_task_ms": round((one[0] - here[0]) / batches * 1000, 1),
        "identical": one[1] == here[1] and two[1] == here[1],
    }  # fmt: skip


def _noop():
    return _echo


def _echo(batch):
    return batch


def bench_task(make_executor, tasks: int = 300) -> dict:
    from omnimem.executors import InProcessExecutor

    batches = [[k] * 64 for k in range(tasks)]
    steady, first = {}, {}
    for name, executor in (("in_process", InProcessExecutor()), ("ray_1_worker", make_executor(1))):
        with executor:
            start = time.perf_counter()
            stamps = [time.perf_counter() for _ in executor.map_batches(_noop, batches)]
            first[name] = stamps[0] - start  # the job's start: actor, its function shipped
            steady[name] = (stamps[-1] - stamps[0]) / (tasks - 1) * 1000  # then each task's round trip
    return {
        "bench": "ray_jobs", "job": "ray_task", "tasks": tasks, "batch_items": 64,
        "ms_per_task": {k: round(v, 3) for k, v in steady.items()},
        "added_ms_per_task": round(steady["ray_1_worker"] - steady["in_process"], 3),
        "job_start_s": {k: round(v, 3) for k, v in first.items()},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3, help="copies of each clip and recording (3: 21 files)")
    parser.add_argument("--passages", type=int, default=None, help="MuSiQue passages (default: all 1,890)")
    parser.add_argument("--batch", type=int, default=64, help="items per graph batch (one Ray task)")
    parser.add_argument("--encoder", choices=("hash", "minilm"), default="hash", help="the memories' text encoder")
    parser.add_argument("--jobs", default="ingest,graph_build,ray_task", help="which jobs, comma-separated")
    args = parser.parse_args(argv)

    from omnimem.data import data_dir

    data = data_dir()
    if data is None:
        print(json.dumps({"bench": "ray_jobs", "skipped": "shared data folder absent (set OMNIMEM_DATA)"}))
        return 0
    import ray

    from omnimem.executors_ray import RayExecutor

    start = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    cluster_start_s = round(time.perf_counter() - start, 2)
    jobs = set(args.jobs.split(","))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            make = lambda n: RayExecutor(num_workers=n)  # noqa: E731
            if "ingest" in jobs:
                print(json.dumps(bench_ingest(data, Path(tmp), args, make) | {"cluster_start_s": cluster_start_s}), flush=True)  # fmt: skip
            if "graph_build" in jobs:
                print(json.dumps(bench_graph(data, Path(tmp), args, make) | {"cluster_start_s": cluster_start_s}), flush=True)  # fmt: skip
            if "ray_task" in jobs:
                print(json.dumps(bench_task(make)), flush=True)
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
