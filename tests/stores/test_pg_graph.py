"""PostgreSQL specifics of the graph store: its migration, and several writers at once.

Two :class:`PgDatabase` pools on one schema stand for two processes; each works from its own thread.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest

from omnimem.errors import ConfigError
from omnimem.graph.store import EntityRow, MentionRow, TripletRow

pytest.importorskip("psycopg", reason="pip install 'omnimem[postgres]' for these tests")

from omnimem.stores.pg import PgDatabase  # noqa: E402
from omnimem.stores.pg_graph import GRAPH_MIGRATIONS, PostgresGraphStore  # noqa: E402


def _open(url: str) -> PostgresGraphStore:
    from omnimem.stores.pg_records import PostgresRecordStore

    return PostgresGraphStore(PostgresRecordStore(PgDatabase(url)))


def _together(*work: Callable[[], object]) -> list[object]:
    """Run each callable in its own thread, all released at once; re-raise the first error."""
    start = threading.Barrier(len(work))
    results: list[object] = [None] * len(work)
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            start.wait()
            results[k] = work[k]()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if errors:
        raise errors[0]
    return results


@pytest.fixture
def two(pg_url):
    """Two graph stores on one schema through two pools ("two processes"), opened at the same time."""
    graphs = _together(lambda: _open(pg_url), lambda: _open(pg_url))
    yield graphs
    for g in graphs:
        g.store.close()


def test_migration_is_versioned_and_reopening_is_a_no_op(two):
    a, _ = two
    assert a.db.read("SELECT version FROM schema_versions WHERE component = 'graph'") == [(len(GRAPH_MIGRATIONS),)]
    assert a.db.migrate("graph", GRAPH_MIGRATIONS) == len(GRAPH_MIGRATIONS)
    PostgresGraphStore(a.store)


def _batch(k: int, n: int, writer: str) -> tuple[list[EntityRow], list[MentionRow], list[TripletRow]]:
    """Entities k..k+4 (each with an alias this batch of this writer alone adds), their mentions in item k,
    a chain of triplets among them read from items k and k+1: neighbouring batches share rows."""
    ids = [j % n for j in range(k, k + 5)]
    entities = [EntityRow.make(f"person {j}", "PERSON", [f"person {j}", f"P{j}@{k}{writer}"]) for j in ids]
    mentions = [MentionRow(e.id, f"item-{k}", e.name, 10 * x, 10 * x + 8, f"sentence {k}") for x, e in enumerate(entities)]  # fmt: skip
    triplets = [
        TripletRow.make(a.id, "knows", b.id, f"sentence {k}", 0.5 + 0.01 * k, [f"item-{k}", f"item-{k + 1}"])
        for a, b in zip(entities, entities[1:])
    ]
    return entities, mentions, triplets


def test_concurrent_overlapping_writes_make_each_row_once_and_lose_no_alias(two):
    n = 30
    order = list(range(n))

    def writer(graph: PostgresGraphStore, batches: list[int], tag: str) -> dict[str, int]:
        totals = {"entities": 0, "mentions": 0, "triplets": 0, "sources": 0}
        for k in batches:
            for key, value in graph.write(*_batch(k, n, tag)).items():
                totals[key] += value
        return totals

    a, b = two  # both write every batch twice: first in step (the same rows at the same time), then apart
    ta, tb = _together(
        lambda: writer(a, order + order[::-1], "a"), lambda: writer(b, order + random.Random(0).sample(order, n), "b")
    )
    read = a.db.read
    counts = a.counts()
    assert counts["entities"] == n == ta["entities"] + tb["entities"]  # each entity inserted by exactly one writer
    assert counts["mentions"] == 5 * n == ta["mentions"] + tb["mentions"]
    assert counts["triplets"] == ta["triplets"] + tb["triplets"]
    assert read("SELECT count(*) FROM triplet_sources")[0][0] == ta["sources"] + tb["sources"]
    assert counts["relations"] == 1 and a.check_coverage() == []
    for j in range(n):
        aliases = a.get_entity(EntityRow.make(f"person {j}", "PERSON").id).aliases
        assert len(aliases) == len(set(aliases)) == 11  # its name and one alias from each batch of each writer
    expected: dict[str, tuple[float, set[str]]] = {}
    for k in order:
        for t in _batch(k, n, "a")[2]:
            best, sources = expected.get(t.id, (0.0, set()))
            expected[t.id] = (max(best, t.confidence), sources | set(t.sources))
    got = {t.id: (t.confidence, set(t.sources)) for t in a.triplets()}
    assert got.keys() == expected.keys()
    for tid, (confidence, sources) in got.items():  # the highest confidence of any batch, every batch's sources
        assert confidence == pytest.approx(expected[tid][0]) and sources == expected[tid][1]


def test_concurrent_merges_make_no_cycle_and_lose_no_merge(two):
    n = 24
    a, b = two
    a.write([EntityRow.make(f"person {j}", "PERSON", [f"person {j}"]) for j in range(n)])
    ids = [EntityRow.make(f"person {j}", "PERSON").id for j in range(n)]

    def merger(graph: PostgresGraphStore, seed: int) -> list:
        rng, done = random.Random(seed), []
        for _ in range(40):
            i, j = rng.sample(range(n), 2)
            try:
                done.append(graph.merge(ids[i], ids[j], reason=f"thread {seed}"))
            except ConfigError:
                pass  # already one entity (perhaps by the other thread's merge a moment ago)
        return done

    done_a, done_b = _together(lambda: merger(a, 1), lambda: merger(b, 2))
    done = done_a + done_b
    assert done_a and done_b
    pointer = dict(a.db.read("SELECT id, merged_into FROM entities"))
    for eid in ids:  # every chain ends at a root: no cycle
        seen, x = set(), eid
        while pointer[x] is not None:
            assert x not in seen, f"merge cycle through {x}"
            seen.add(x)
            x = pointer[x]
    log = a.merges()
    assert sorted(m.id for m in log) == sorted(m.id for m in done)  # every merge that returned is logged, once
    assert all(pointer[m.merged] == m.kept for m in log)  # and still in force: none overwritten (lost)
    assert sum(p is not None for p in pointer.values()) == len(log)
    assert a.roots() == b.roots()
    assert all(a.canonical(m.merged) == a.canonical(m.kept) for m in done)
    assert a.counts()["entities"] == n - len(log)


def test_two_merges_of_one_pair_in_opposite_directions_make_one(two):
    a, b = two
    x, y = EntityRow.make("Ann", "PERSON"), EntityRow.make("Anne", "PERSON")
    a.write([x, y])
    for _ in range(5):
        results = _together(*(lambda g=g, p=p: _try_merge(g, *p) for g, p in ((a, (x.id, y.id)), (b, (y.id, x.id)))))
        assert sorted(map(type, results), key=str) == sorted([ConfigError, type(a.merges()[-1])], key=str)
        assert a.counts()["entities"] == 1 and len(a.merges()) == 1
        a.unmerge(a.merges()[-1].merged)


def _try_merge(graph: PostgresGraphStore, kept: str, merged: str) -> object:
    try:
        return graph.merge(kept, merged, reason="race")
    except ConfigError as e:
        return e


def test_a_privacy_delete_waits_for_a_write_that_adds_evidence(two):
    a, b = two
    alice = EntityRow.make("Alice", "PERSON", ["Alice"])
    a.write([alice], [MentionRow(alice.id, "item-old", "Alice", 0, 5, "Alice came.")])
    written = threading.Event()

    def write_slowly() -> None:
        with b.store.db.transaction():  # a new mention of Alice, held uncommitted for a moment
            b.write([], [MentionRow(alice.id, "item-new", "Alice", 0, 5, "Alice stayed.")])
            written.set()
            time.sleep(0.5)

    def delete() -> dict[str, int]:
        written.wait(10)
        return a.delete_item_links(["item-old"])

    _, counts = _together(write_slowly, delete)
    assert counts["entities"] == 0  # it saw the committed mention: Alice still has evidence
    assert [m.item_id for m in a.mentions(entity_ids=[alice.id])] == ["item-new"]
    assert a.db.read("SELECT count(*) FROM mentions WHERE entity_id NOT IN (SELECT id FROM entities)") == [(0,)]


def test_text_postgresql_cannot_store_is_refused_whole(two):
    a, _ = two
    ok, bad = EntityRow.make("Alice", "PERSON"), EntityRow.make("Bob", "PERSON", ["B\x00b"])
    with pytest.raises(ConfigError, match="NUL"):
        a.write([ok, bad])
    with pytest.raises(ConfigError, match="NUL"):
        a.write([ok], [MentionRow(ok.id, "item-1", "Alice", 0, 5, "Alice\x00")])
    assert a.counts()["entities"] == 0
    a.write([ok])
    with pytest.raises(ConfigError, match="NUL"):
        a.set_descriptions({ok.id: "a\x00person"})
