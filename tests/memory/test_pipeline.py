"""Graph extraction on a worker thread (GraphConfig.extract_in_background, omnimem.memory.pipeline):
the caller's reads see its own adds' graph, close drains the queue, a failing extraction loses no
item and leaves the work owed, and the queue holds a bounded number of items."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import omnimem
from omnimem.config import GraphConfig
from omnimem.memory.pipeline import GRAPH_JOB, ExtractionQueue, encode_beside
from omnimem.memory.semantic import relation_family
from omnimem.types import Item

BACKGROUND = omnimem.MemoryConfig(graph=GraphConfig(extract_in_background=True, background_batch=64))


def test_reads_after_background_adds_see_their_graph_and_facts(tmp_path, hash_encoder):
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, config=BACKGROUND) as mem:
        for n in range(5):
            mem.add(f"Visitor {n} met Alice in Paris.", speaker="Bob", session="s1")
        mem.add("Alice moved to Berlin.", speaker="Alice", timestamp="2021-03-01")
        mem.add("Alice relocated to Lisbon.", speaker="Alice", timestamp="2023-06-01")
        assert [f.tail for f in mem.facts("Alice") if relation_family(f.relation) == "residence"] == ["Lisbon"]
        assert mem.graph.find_entities("Paris")
        assert mem.store.pending(GRAPH_JOB) == []  # every add's extraction is done and its note cleared
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder) as mem:
        assert mem.check(repair=False)["ok"]


def test_close_drains_the_queue(tmp_path, hash_encoder):
    mem = omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, config=BACKGROUND)
    ids = mem.add([f"Carol visited Rome on trip {n}." for n in range(40)], session="t")
    mem.close()
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder) as mem:
        assert mem.store.pending(GRAPH_JOB) == []
        linked = set().union(*mem.graph.items_of([e.id for e in mem.graph.find_entities("Rome")]).values())
        assert set(ids) <= linked


def test_a_failing_background_extraction_loses_no_item_and_stays_owed(tmp_path, hash_encoder, monkeypatch):
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, config=BACKGROUND) as mem:

        def broken(items):
            raise RuntimeError("the parser died")

        monkeypatch.setattr(mem, "_extract_batch", broken)
        mem._extraction._extract = broken
        (item,) = mem.add("Dave flew to Oslo.")
        mem._extraction.wait()
        assert mem.get(item).text == "Dave flew to Oslo."
        assert mem.store.pending(GRAPH_JOB) == [item]  # owed: a later catch-up does it
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder) as mem:
        assert mem.catch_up() == 1
        assert mem.graph.find_entities("Oslo") and mem.store.pending(GRAPH_JOB) == []


def test_the_queue_batches_across_calls_and_bounds_what_it_holds():
    config = GraphConfig(background_queue=5, background_batch=100)
    batches: list[list[str]] = []
    gate = threading.Event()

    def extract(items: list[Item]) -> None:
        gate.wait(10)
        batches.append([i.id for i in items])

    queue = ExtractionQueue(extract, config, name="test-worker")
    items = [Item.make(text=f"t{n}") for n in range(8)]
    queue.submit(items[:2])  # the worker takes this one and blocks on the gate
    queue.submit(items[2:4])
    queue.submit(items[4:6])  # 6 queued >= 5: the next submit must wait
    done = threading.Event()
    threading.Thread(target=lambda: (queue.submit(items[6:]), done.set()), daemon=True).start()
    time.sleep(0.3)
    assert not done.is_set()  # backpressure: held while the queue is full
    gate.set()
    assert done.wait(10)
    queue.close()
    assert [i for b in batches for i in b] == [i.id for i in items]  # every item once, in order
    assert len(batches) < 4  # later submissions were extracted together


@pytest.mark.parametrize("background", [False, True])
def test_the_same_graph_either_way(tmp_path, hash_encoder, background):
    config = omnimem.MemoryConfig(graph=GraphConfig(extract_in_background=background))
    texts = [f"Erin met Frank in Madrid in {1990 + n}." for n in range(12)]
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, config=config) as mem:
        for start in range(0, len(texts), 3):
            mem.add(texts[start : start + 3], session="s")
        names = sorted(e.name for e in mem.graph.entities())
        triplets = len(mem.graph.triplets())
    assert "Madrid" in names and triplets >= len(texts)


class _Recorder:
    """An encoder that records, per call, how many texts it got and the OpenMP threads it may use."""

    name, dim = "recorder", 3

    def __init__(self, threadpoolctl):
        self.calls, self._ctl = [], threadpoolctl

    def encode(self, inputs, *, modality="text"):
        libs = [lib["num_threads"] for lib in self._ctl.threadpool_info() if lib["user_api"] == "openmp"]
        self.calls.append((len(inputs), max(libs)))
        return np.array([[len(t), 1.0, 0.0] for t in inputs], dtype=np.float32)


def _busy_for(n):
    """A parse busy for the first ``n`` questions."""
    left = [n]

    def busy():
        left[0] -= 1
        return left[0] >= 0

    return busy


def test_an_add_encodes_on_one_thread_only_while_a_parse_runs():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import faiss  # noqa: F401  (brings an OpenMP library)

    with threadpoolctl.threadpool_limits(limits=2, user_api="openmp"):
        encoder = _Recorder(threadpoolctl)
        texts = [f"turn number {n}" + "!" * n for n in range(10)]
        vectors = encode_beside(encoder, texts, _busy_for(3), chunk=4)
        # asked once up front, then per chunk: busy for the first two chunks, idle for the last
        assert encoder.calls == [(4, 1), (4, 1), (2, 2)]
        assert vectors[:, 0].tolist() == [len(t) for t in texts]  # in order, nothing lost
        encoder.calls.clear()
        encode_beside(encoder, texts, _busy_for(0), chunk=4)
        assert encoder.calls == [(10, 2)]  # nothing parsing: one call, every thread
        assert {lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "openmp"} == {2}


def test_an_inline_add_parses_once_off_its_thread_and_a_failed_parse_is_redone(tmp_path, hash_encoder):
    texts = ["Erin moved to Vienna in 2020.", "Frank visited Erin in Vienna."]
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder) as mem:
        extractor = mem.builder.extractor
        real, calls = extractor.extract, []

        def spy(batch, **kwargs):
            calls.append((list(batch), threading.current_thread() is threading.main_thread()))
            return real(batch, **kwargs)

        extractor.extract = spy
        ids = mem.add(texts, session="s")
        assert calls == [(texts, False)]  # one parse, beside the encoding
        linked = set().union(*mem.graph.items_of([e.id for e in mem.graph.find_entities("Vienna")]).values())
        assert set(ids) <= linked and mem.store.pending(GRAPH_JOB) == []

        def broken_once(batch, **kwargs):
            extractor.extract = spy  # the graph step's own parse works
            raise RuntimeError("parser hiccup")

        calls.clear()
        extractor.extract = broken_once
        (gina,) = mem.add("Gina flew to Lima.", session="s")
        assert calls == [(["Gina flew to Lima."], True)]  # parsed again by the graph step, on the caller's thread
        assert gina in set().union(*mem.graph.items_of([e.id for e in mem.graph.find_entities("Lima")]).values())
