"""Jobs on a local Ray cluster: ingest, graph build and consolidation write what one process writes.

Every job here runs on ``ray.init(num_cpus=2)`` (one cluster for the session) against SQLite and a
real PostgreSQL server, and is compared with the same job run in this process: the same items, the
same triplets, the same failures. A worker killed mid-job (its process, or its actor) loses nothing
and duplicates nothing, on the same run (a fresh actor takes its batches) or on a re-run (the files
and batches already written are skipped).
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

import omnimem
from omnimem.config import GraphConfig, MemoryConfig
from omnimem.encoders.hashing import HashEncoder
from omnimem.executors import InProcessExecutor, WorkerLost
from omnimem.graph.jobs import FAST, build_graph
from omnimem.types import Item

ray = pytest.importorskip("ray", reason="pip install 'omnimem[ray]' for these tests")
from omnimem.executors_ray import RayExecutor  # noqa: E402

pytestmark = pytest.mark.slow

GARBAGE = "garbage.mp3"  # random bytes named as audio: a failed file, never retried
PASSAGES = 48  # MuSiQue passages in the graph jobs (6 batches of 8)


@pytest.fixture(scope="session")
def ray_cluster():
    """A local two-CPU Ray cluster for the session; this module's helpers travel by value."""
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    yield
    if started:
        ray.shutdown()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """Where a memory lives: ``open(name, **config)`` on a directory or a schema of the real server."""
    if request.param == "postgresql":
        pytest.importorskip("psycopg")
        url = request.getfixturevalue("pg_url")  # one memory per test: its own schema, blobs in a table
        return lambda name, **kw: _open(url, **kw)
    return lambda name, **kw: _open(tmp_path / name, **kw)


def _open(where, *, extract_on_add: bool = True):
    config = MemoryConfig(graph=GraphConfig(extract_on_add=extract_on_add))
    return omnimem.Memory.open(where, encoder=HashEncoder(64), config=config)


def _items(mem) -> list[tuple]:
    items = [i for i in mem.store.get(list(mem.store.ids())) if i is not None]
    return sorted((i.episode or "", i.t_start or 0.0, i.text) for i in items)


def _graph(mem) -> tuple[set, set, int]:
    """Triplet ids, the items they were read from, and the mention count (a duplicate would show)."""
    triplets = mem.graph.triplets()
    sources = {s for ids in mem.graph.sources([t.id for t in triplets]).values() for s in ids}
    return {t.id for t in triplets}, sources, len(mem.graph.mentions())


# -- ingest ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory, data_dir) -> Path:
    """Real files: two speech recordings, three COCO photos, a text file, a garbage .mp3, and copies
    (the same bytes under another name) of a recording (skipped: its episode is stored) and of the
    text (stored again: its items come from another path)."""
    root = tmp_path_factory.mktemp("inbox")
    for path in ("audio/whisper/jfk.flac", "audio/speech_recognition/english.wav"):
        shutil.copy(data_dir / path, root)
    for photo in sorted((data_dir / "coco_mini" / "images").glob("*.jpg"))[:3]:
        shutil.copy(photo, root)
    (root / "notes.txt").write_text(
        "Alice moved to Berlin in 2019. She works at Siemens as an engineer.\n\nBob visited Alice in Paris last May."
    )
    (root / GARBAGE).write_bytes(os.urandom(4096))
    shutil.copy(root / "jfk.flac", root / "jfk_copy.flac")
    shutil.copy(root / "notes.txt", root / "notes_copy.txt")
    return root


@pytest.fixture(scope="module")
def expected(folder, tmp_path_factory):
    """The reference: the same folder ingested in this process (no executor)."""
    with _open(tmp_path_factory.mktemp("reference") / "m") as mem:
        report = mem.ingest(folder, progress=False)
        return {
            "items": _items(mem), "added": report.added, "skipped": report.skipped, "failed": set(report.failed),
            "graph": _graph(mem),
        }  # fmt: skip


def test_ingest_on_ray_writes_what_one_process_writes(ray_cluster, backend, folder, expected):
    assert expected["failed"] == {str(folder / GARBAGE)} and len(expected["added"]) == 7
    assert expected["skipped"] == {str(folder / "jfk_copy.flac"): "already in memory"}
    with backend("ingest") as mem, RayExecutor(num_workers=2) as executor:
        seen = []
        report = mem.ingest(folder, executor=executor, progress=lambda done, total: seen.append((done, total)))
        assert _items(mem) == expected["items"]
        assert report.added == expected["added"] and set(report.failed) == expected["failed"]
        assert report.skipped == expected["skipped"]
        assert "not a known audio format" in report.failed[str(folder / GARBAGE)]
        assert _graph(mem) == expected["graph"]  # extracted on add, on the workers
        assert seen[-1] == (9, 9)
        again = mem.ingest(folder, executor=executor, progress=False)  # everything stored is skipped before reading
        assert set(again.skipped) == set(expected["added"]) | set(expected["skipped"])
        assert set(again.skipped.values()) == {"already in memory"} and not again.added
        assert set(again.failed) == expected["failed"] and _items(mem) == expected["items"]


def test_ingest_with_the_in_process_executor_matches(folder, expected, tmp_path):
    with _open(tmp_path / "m") as mem:
        report = mem.ingest(folder, executor=InProcessExecutor(), progress=False)
        assert _items(mem) == expected["items"] and report.added == expected["added"]
        assert _graph(mem) == expected["graph"]


def _dying(make_fn, victim: str, marker: str):
    """A worker that kills its own process (SIGKILL) the first time it is given ``victim``."""
    fn = make_fn()

    def run(batch):
        names = [Path(b[0]).name if isinstance(b, tuple) else getattr(b, "id", "") for b in batch]
        if victim in names and not os.path.exists(marker):
            Path(marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return fn(batch)

    return run


class Dying:
    """An executor whose worker dies on the batch holding ``victim`` (once, across every worker)."""

    def __init__(self, inner, victim: str, marker: Path) -> None:
        self.inner, self.victim, self.marker = inner, victim, str(marker)
        self.workers = inner.workers

    def map_batches(self, make_fn, batches):
        return self.inner.map_batches(functools.partial(_dying, make_fn, self.victim, self.marker), batches)


def test_a_killed_worker_is_replaced_and_the_job_finishes(ray_cluster, folder, expected, tmp_path):
    with _open(tmp_path / "m") as mem, RayExecutor(num_workers=2, max_retries=2) as executor:
        report = mem.ingest(folder, executor=Dying(executor, "jfk.flac", tmp_path / "died"), progress=False)
        assert (tmp_path / "died").exists()  # the worker reading jfk.flac was killed
        assert report.added == expected["added"] and set(report.failed) == expected["failed"]
        assert _items(mem) == expected["items"] and len(mem) == len(expected["items"])
        assert _graph(mem) == expected["graph"]


def test_a_file_whose_worker_dies_is_failed_and_the_rerun_finishes(ray_cluster, backend, folder, expected, tmp_path):
    with backend("killed") as mem:
        with RayExecutor(num_workers=2, max_retries=0) as executor:
            report = mem.ingest(folder, executor=Dying(executor, "english.wav", tmp_path / "died"), progress=False)
        wav = str(folder / "english.wav")
        assert "killed the worker" in report.failed[wav] and "WorkerLost" not in report.failed[wav]
        assert set(report.added) == set(expected["added"]) - {wav}  # the other files went on
        assert set(report.failed) == expected["failed"] | {wav}
        with RayExecutor(num_workers=2) as executor:  # the re-run: only what was not written is read
            again = mem.ingest(folder, executor=executor, progress=False)
        assert set(again.added) == {wav} and again.added[wav] == expected["added"][wav]
        assert set(again.skipped) == (set(expected["added"]) | set(expected["skipped"])) - {wav}
        assert _items(mem) == expected["items"] and len(mem) == len(expected["items"])  # nothing duplicated
        assert _graph(mem) == expected["graph"]


# -- graph build and consolidation ---------------------------------------------------------------


@pytest.fixture(scope="module")
def passages(data_dir) -> list[Item]:
    import json

    corpus = json.loads((data_dir / "musique" / "musique_train_corpus.json").read_text())[:PASSAGES]
    return [Item.make(text=p["text"], metadata={"title": p["title"]}) for p in corpus]


@pytest.fixture(scope="module")
def reference_graph(passages, tmp_path_factory):
    with _open(tmp_path_factory.mktemp("graph") / "m", extract_on_add=False) as mem:
        mem.add_items(passages)
        report = build_graph(mem, batch_size=8, progress=False)
        return {"graph": _graph(mem), "merges": report.merges, "entities": mem.graph.counts()["entities"]}


def test_graph_build_on_ray_matches_in_process(ray_cluster, backend, passages, reference_graph):
    with backend("graph", extract_on_add=False) as mem, RayExecutor(num_workers=2) as executor:
        mem.add_items(passages)
        report = build_graph(mem, batch_size=8, progress=False, executor=executor)
        assert report.items == PASSAGES and report.remaining == 0 and not report.failures
        assert _graph(mem) == reference_graph["graph"]
        assert report.merges == reference_graph["merges"]
        assert mem.graph.counts()["entities"] == reference_graph["entities"]
        assert build_graph(mem, progress=False, executor=executor).items == 0  # all done: nothing re-read


def test_graph_build_killed_then_rerun(ray_cluster, passages, reference_graph, tmp_path):
    with _open(tmp_path / "m", extract_on_add=False) as mem:
        mem.add_items(passages)
        with RayExecutor(num_workers=2, max_retries=0) as executor:

            def kill_a_worker(done, total):  # after the first batch is written: ray.kill one actor
                if done == 8:
                    ray.kill(executor.actors[0])

            with pytest.raises(WorkerLost):
                build_graph(mem, batch_size=8, progress=kill_a_worker, executor=executor)
        done = PASSAGES - len(mem.store.progress().pending(FAST))
        assert 8 <= done < PASSAGES  # what was written stays marked
        with RayExecutor(num_workers=2) as executor:
            report = build_graph(mem, batch_size=8, progress=False, executor=executor)
        assert report.items == PASSAGES - done and report.remaining == 0
        assert _graph(mem) == reference_graph["graph"]  # nothing lost, nothing duplicated


def test_graph_build_survives_a_killed_actor(ray_cluster, passages, reference_graph, tmp_path):
    with _open(tmp_path / "m", extract_on_add=False) as mem, RayExecutor(num_workers=2, max_retries=2) as executor:
        mem.add_items(passages)
        killed = []

        def kill_a_worker(done, total):
            if done == 8 and not killed:
                killed.append(executor.actors[1])
                ray.kill(executor.actors[1])

        report = build_graph(mem, batch_size=8, progress=kill_a_worker, executor=executor)
        assert killed and report.items == PASSAGES and report.remaining == 0
        assert _graph(mem) == reference_graph["graph"]


def test_consolidate_on_ray_matches_in_process(ray_cluster, passages, tmp_path):
    results = []
    for name, executor in (("here", None), ("ray", RayExecutor(num_workers=2))):
        with _open(tmp_path / name, extract_on_add=False) as mem:
            mem.add_items(passages)
            report = mem.consolidate(executor=executor)
            assert report["graph_items"] == PASSAGES and report["failures"] == 0
            assert mem.consolidate(executor=executor)["graph_items"] == 0  # idempotent
            results.append((_graph(mem), len(mem.facts_log.unseen_items())))
            report.pop("seconds")
            results.append(report)
    assert results[:2] == results[2:]


def test_cli_ray_flags(ray_cluster, folder, tmp_path, capsys):
    import json

    from omnimem.cli import main

    address = ray.get_runtime_context().gcs_address  # join the session's cluster, as --ray HOST:PORT does
    path = str(tmp_path / "m")
    with _open(path):
        pass
    assert main(["ingest", path, str(folder / "notes.txt"), "--ray", address, "--workers", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["counts"] == {"added": 1, "skipped": 0, "failed": 0, "items": 1}
    assert main(["graph", "build", path, "--ray", address, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == FAST
    assert main(["consolidate", path, "--ray", address, "--workers", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["failures"] == 0
    assert main(["graph", "build", path, "--ray", "--agentic"]) == 2
    assert "agentic job runs in threads" in capsys.readouterr().err
