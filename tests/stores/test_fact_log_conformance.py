"""Conformance suite for FactLog backends (SQLite and PostgreSQL), and the graph jobs' progress table."""

from __future__ import annotations

import pytest

from omnimem.graph.store import EntityRow, TripletRow
from omnimem.stores.base import FactLog
from omnimem.stores.sqlite import SQLiteRecordStore
from omnimem.stores.sqlite_facts import SQLiteFactLog
from omnimem.stores.sqlite_graph import SQLiteGraphStore
from omnimem.types import Item


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    """``(records, graph, facts)`` of one backend."""
    if request.param == "sqlite":
        records = SQLiteRecordStore(tmp_path / "m.db")
        yield records, SQLiteGraphStore(records), SQLiteFactLog(records)
    else:
        from omnimem.stores.pg import PgDatabase
        from omnimem.stores.pg_facts import PostgresFactLog
        from omnimem.stores.pg_graph import PostgresGraphStore
        from omnimem.stores.pg_records import PostgresRecordStore

        records = PostgresRecordStore(PgDatabase(request.getfixturevalue("pg_url")))
        yield records, PostgresGraphStore(records), PostgresFactLog(records)
    records.close()


def _triplet(graph, head: str, tail: str, items: list[str]) -> str:
    h, t = EntityRow.make(head, "PERSON"), EntityRow.make(tail, "CONCEPT")
    row = TripletRow.make(h.id, "like", t.id, f"{head} likes {tail}.", 0.9, items)
    graph.write([h, t], [], [row])
    return row.id


def test_is_a_fact_log(backend):
    assert isinstance(backend[2], FactLog)


def test_log_and_history_keep_order_and_fill_the_note(backend):
    _, _, facts = backend
    events = [
        ("t1", "add", None, "item-1", "2024-01-01T00:00:00+00:00"),
        ("t2", "add", None, "item-2", "2024-01-01T00:00:01+00:00", None),
        ("t1", "reinforce", None, "item-3", "2024-01-01T00:00:00+00:00", "again"),
        ("t1", "supersede", "t2", None, "2024-01-02T00:00:00+00:00"),
    ]
    assert facts.log(events) == 4
    assert facts.log([]) == 0
    assert facts.history("t1") == [
        ("t1", "add", None, "item-1", "2024-01-01T00:00:00+00:00", ""),
        ("t1", "reinforce", None, "item-3", "2024-01-01T00:00:00+00:00", "again"),
        ("t1", "supersede", "t2", None, "2024-01-02T00:00:00+00:00", ""),
    ]
    assert facts.history("t2") == [("t2", "add", None, "item-2", "2024-01-01T00:00:01+00:00", "")]
    assert facts.history("missing") == []
    assert facts.logged(["t1", "t3", "t1"]) == {"t1"}
    assert facts.logged([]) == set()


def test_corrected_lists_facts_retired_by_a_correction(backend):
    _, _, facts = backend
    facts.log([("t1", "add", None, "i", "2024"), ("t2", "correct", "t3", "i", "2024", "wrong city")])
    assert facts.corrected() == {"t2"}


def test_unseen_items_and_prune_follow_the_graph(backend):
    _, graph, facts = backend
    seen = _triplet(graph, "Alice", "tea", ["item-1"])
    _triplet(graph, "Bob", "coffee", ["item-3", "item-2"])
    _triplet(graph, "Carol", "cake", ["item-2"])
    assert facts.unseen_items() == ["item-1", "item-2", "item-3"]
    facts.log([(seen, "add", None, "item-1", "2024")])
    assert facts.unseen_items() == ["item-2", "item-3"]
    facts.log([("gone", "add", None, "item-9", "2024")])
    assert facts.prune() == 1
    assert facts.history("gone") == [] and facts.logged([seen]) == {seen}
    graph.delete_item_links(["item-1"])  # the fact loses its only evidence
    assert facts.prune() == 1 and facts.history(seen) == []
    assert facts.prune() == 0


def test_job_progress_is_resumable_in_insertion_order(backend):
    records, _, _ = backend
    progress = records.progress()
    items = [Item.make(text=t) for t in ("zebra", "apple", "mango", "kiwi")]
    records.add(items[:2])
    records.add(items[2:])
    ids = [i.id for i in items]
    assert progress.pending("fast") == ids
    progress.mark([ids[1], ids[3], ids[1]], "fast")
    progress.mark([ids[1]], "fast")  # marking again is a no-op
    assert progress.pending("fast") == [ids[0], ids[2]]
    assert progress.pending("agentic") == ids
    assert progress.counts() == {"fast": 2}
    records.delete([ids[3]])
    assert progress.counts() == {"fast": 1}  # only items that still exist count
    assert not progress.flagged("fast")
    progress.set_flag("fast", True)
    progress.set_flag("fast", True)
    assert progress.flagged("fast") and not progress.flagged("agentic")
    assert progress.counts() == {"fast": 1} and progress.pending("fast") == [ids[0], ids[2]]
    progress.set_flag("fast", False)
    assert not progress.flagged("fast")
