"""PostgreSQL record store specifics: concurrent writers of several processes, readers beside a writer,
migrations, text search, large texts, pgvector; and the episodic nodes behaving as SQLite's do.

The RecordStore conformance suite (test_record_store_conformance.py) runs on PostgreSQL too.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time

import numpy as np
import pytest

from omnimem.errors import BackendUnavailable, ConfigError, MemoryLocked
from omnimem.stores import Filters, SQLiteRecordStore
from omnimem.types import Item

pytest.importorskip("psycopg", reason="pip install 'omnimem[postgres]' for these tests")

from omnimem.stores.pg import PgDatabase  # noqa: E402
from omnimem.stores.pg_records import SCHEMA_VERSION, PostgresRecordStore  # noqa: E402
from omnimem.stores.pg_schema import FTS_CHARS, MIGRATIONS  # noqa: E402


@pytest.fixture
def pg(pg_url):
    store = PostgresRecordStore(PgDatabase(pg_url))
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request, tmp_path):
    """Both backends, for behaviour that must not differ between them."""
    if request.param == "postgres":
        store = PostgresRecordStore(PgDatabase(request.getfixturevalue("pg_url")))
    else:
        store = SQLiteRecordStore(tmp_path / "m.db")
    yield store
    store.close()


def _raw(pg_server, store):
    """A psycopg connection of "another process", in the store's schema, in a transaction."""
    import psycopg

    conn = psycopg.connect(pg_server)
    conn.execute(f'SET search_path TO "{store.db.schema}", public')
    return conn


def _turns(n, session="s", episode="e"):
    return [
        Item.make(text=f"turn number {i} about topic {i % 7}", speaker="Ana", session=session, episode=episode,
                  event_time=f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}")
        for i in range(n)
    ]  # fmt: skip


# -- concurrency -----------------------------------------------------------------------------------
def test_concurrent_writers_of_two_processes_leave_no_duplicates_and_exact_nodes(pg_url):
    """Two PgDatabase pools (two processes), two threads each, add overlapping batches of one session."""
    turns = _turns(120)
    vectors = np.random.default_rng(0).normal(size=(len(turns), 8)).astype(np.float32)
    stores = [PostgresRecordStore(PgDatabase(pg_url)), PostgresRecordStore(PgDatabase(pg_url))]
    start = threading.Barrier(4)
    added: list[list[str]] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        rng = random.Random(n)
        order = list(range(len(turns)))
        rng.shuffle(order)
        start.wait()
        try:
            for batch in range(0, len(order), 15):
                picked = order[batch : batch + 30]  # overlapping windows, in an order of its own
                rows = [turns[i] for i in picked]
                space = {"text": ([t.id for t in rows], vectors[picked])}
                added[n] += stores[n % 2].add(rows, space, jobs=["graph"])
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors
        every = [i for batch in added for i in batch]
        assert sorted(every) == sorted(t.id for t in turns)  # each id reported new exactly once
        store = stores[0]
        assert len(store) == len(turns) and store.read("SELECT count(DISTINCT id) FROM items")[0][0] == len(turns)
        ids, array = store.vectors("text")
        assert sorted(ids) == sorted(t.id for t in turns)
        expected = {t.id: vectors[i] for i, t in enumerate(turns)}
        np.testing.assert_array_equal(array, np.stack([expected[i] for i in ids]))
        (session,) = store.nodes(level="session")
        (episode,) = store.nodes(level="episode")
        assert session.items == episode.items == len(turns)
        assert session.first_time == "2024-01-01T00:00:00" and session.last_time == "2024-01-01T00:01:59"
        assert sorted(store.pending("graph", limit=1000)) == sorted(t.id for t in turns)
        assert store.generation("text") >= 1
    finally:
        for s in stores:
            s.close()


def test_concurrent_deletes_and_adds_keep_node_counts(pg_url):
    turns = _turns(60)
    stores = [PostgresRecordStore(PgDatabase(pg_url)), PostgresRecordStore(PgDatabase(pg_url))]
    stores[0].add(turns[:30])
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(work) -> None:
        start.wait()
        try:
            work()
        except BaseException as e:
            errors.append(e)

    jobs = [
        lambda: [stores[0].add(turns[i : i + 5]) for i in range(30, 60, 5)],
        lambda: [stores[1].delete([t.id for t in turns[i : i + 5]]) for i in range(0, 30, 5)],
    ]
    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors
        assert sorted(stores[1].ids()) == sorted(t.id for t in turns[30:])
        (session,) = stores[1].nodes(level="session")
        assert session.items == 30 and session.first_time == turns[30].event_time
    finally:
        for s in stores:
            s.close()


def test_a_reader_is_not_blocked_by_a_writer_holding_rows(pg, pg_server, pg_url):
    items = _turns(3)
    pg.add(items, {"text": ([i.id for i in items], np.eye(3, 4, dtype=np.float32))})
    writer = _raw(pg_server, pg)
    try:  # "another process" inserts a row and rewrites one, and holds its transaction open
        writer.execute("INSERT INTO items (id, modality, text, metadata) VALUES ('held', 'text', 'held topic', '{}')")
        writer.execute("UPDATE items SET text = 'rewritten' WHERE id = %s", (items[0].id,))
        writer.execute("UPDATE nodes SET summary = 'locked'")
        started = time.monotonic()
        assert len(pg) == 3 and "held" not in pg
        assert pg.get([items[0].id])[0].text == items[0].text  # the last committed state
        assert pg.bm25("topic", 5) and pg.nodes()[0].items == 3
        assert pg.vectors("text")[1].shape == (3, 4) and pg.neighbours([items[1].id])
        pg.touch_access([items[0].id], "2024-02-01T00:00:00")  # reads never write
        assert time.monotonic() - started < 2
        # a writer of other rows goes ahead; one of the held rows waits, then says so
        assert pg.add([Item.make(text="unrelated note")])
        impatient = PostgresRecordStore(PgDatabase(pg_url, timeout=0.3))
        try:
            with pytest.raises(MemoryLocked, match="locked by another writer"):
                impatient.update(dataclasses.replace(items[0], text="mine"))
            with pytest.raises(MemoryLocked):
                impatient.add([Item(id="held", modality="text", text="same id")])
        finally:
            impatient.close()
    finally:
        writer.rollback()
        writer.close()
    assert pg.update(dataclasses.replace(items[0], text="mine")) is None
    assert pg.stats([items[0].id])[items[0].id][0] == 1


def test_access_statistics_wait_for_a_write_and_never_hold_one_up(pg, pg_server, pg_url):
    items = _turns(2)
    pg.add(items)
    pg.touch_access([items[0].id], "2024-02-01T00:00:00")
    assert pg.read("SELECT count(*) FROM item_stats")[0][0] == 0  # buffered, not written by the read
    assert pg.stats([items[0].id]) == {items[0].id: (1, "2024-02-01T00:00:00", 1.0)}
    blocker = _raw(pg_server, pg)
    try:  # another process holds the statistics row: the next write goes ahead without them
        blocker.execute("INSERT INTO item_stats (item_id, access_count) VALUES (%s, 5)", (items[0].id,))
        started = time.monotonic()
        assert pg.add([Item.make(text="a write while the statistics row is held")])
        assert time.monotonic() - started < 2
        assert pg.flush_access(wait=False) is False
    finally:
        blocker.rollback()
        blocker.close()
    assert pg.stats([items[0].id])[items[0].id][0] == 1  # still buffered
    pg.close()  # close writes the buffer
    reopened = PostgresRecordStore(PgDatabase(pg_url))
    try:
        assert reopened.stats([items[0].id]) == {items[0].id: (1, "2024-02-01T00:00:00", 1.0)}
    finally:
        reopened.close()


def test_a_concurrent_first_add_of_a_space_creates_its_table_once(pg_url):
    stores = [PostgresRecordStore(PgDatabase(pg_url)) for _ in range(3)]
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def add(n: int) -> None:
        item = Item.make(text=f"item {n}")
        start.wait()
        try:
            stores[n].add([item], {"image": ([item.id], np.ones((1, 5), np.float32))})
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors
        assert stores[0].spaces() == {"image": 5} and len(stores[0].vector_ids("image")) == 3
    finally:
        for s in stores:
            s.close()


# -- schema ----------------------------------------------------------------------------------------
def test_migrating_twice_is_a_no_op(pg, pg_url):
    pg.add(_turns(2))
    again = PostgresRecordStore(PgDatabase(pg_url))
    try:
        assert again.schema_version == SCHEMA_VERSION == len(MIGRATIONS) and len(again) == 2
        assert again.turn_ids == "place"

        def never(conn):
            raise AssertionError("a current schema must not migrate")

        assert again.db.migrate("records", [never] * SCHEMA_VERSION) == SCHEMA_VERSION
    finally:
        again.close()


def test_a_newer_schema_is_refused(pg, pg_url):
    with pg.transaction() as conn:
        conn.execute("UPDATE schema_versions SET version = %s WHERE component = 'records'", (SCHEMA_VERSION + 1,))
    with pytest.raises(ConfigError, match="upgrade omnimem"):
        PostgresRecordStore(PgDatabase(pg_url))


def test_without_pgvector_and_the_right_to_create_it_the_error_names_the_fix(pg_server):
    import uuid

    import psycopg

    name = f"novec_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN")
        admin.execute(f"CREATE DATABASE {name}")
        admin.execute(f"GRANT CREATE ON DATABASE {name} TO {name}")
    user, rest = pg_server.split("://", 1)[1].split("@", 1)
    database, query = rest.split("?", 1) if "?" in rest else (rest, "")
    host, _, _ = database.partition("/")
    url = f"postgresql://{name}@{host}/{name}?{query}{'&' if query else ''}schema=mem"
    try:
        with pytest.raises(BackendUnavailable, match="CREATE EXTENSION vector"):
            PostgresRecordStore(PgDatabase(url))
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {name}")


# -- text search -----------------------------------------------------------------------------------
def test_text_search_ranks_matching_text_first_and_respects_filters(pg):
    items = [
        Item.make(text="Lisbon trams climb the hills of Lisbon.", speaker="Ana", session="s1", episode="trip",
                  event_time="2024-03-01"),
        Item.make(text="We ate in Lisbon once.", speaker="Ben", session="s2", episode="trip", event_time="2024-03-05"),
        Item.make(text="The office moved to another floor.", speaker="Ana", session="s3", episode="work",
                  event_time="2024-04-01"),
    ]  # fmt: skip
    pg.add(items)
    hits = pg.bm25("Which hills in Lisbon?", 5)
    assert [i for i, _ in hits] == [items[0].id, items[1].id]
    assert all(score > 0 for _, score in hits) and hits[0][1] > hits[1][1]
    assert pg.bm25("Ana", 5)  # the heading (speaker) is searched beside the text
    assert [i for i, _ in pg.bm25("Lisbon", 5, Filters(speakers=("Ben",)))] == [items[1].id]
    assert [i for i, _ in pg.bm25("Lisbon office", 5, Filters(episodes=("work",)))] == [items[2].id]
    assert [i for i, _ in pg.bm25("Lisbon", 5, Filters(until="2024-03-02T00:00:00"))] == [items[0].id]
    assert pg.bm25("Lisbon", 5, Filters(sessions=())) == []
    assert len(pg.bm25("Lisbon", 1)) == 1 and pg.bm25("Lisbon", 0) == []
    assert pg.bm25("it's a 'quote' | & ! (paren:*", 5) == []  # tsquery syntax never leaks through


def test_a_10_mb_text_is_stored_whole_and_its_first_200k_characters_are_searchable(pg):
    words = [f"w{n}" for n in range(1_500_000)]
    text = "opening " + " ".join(words) + " closingword"
    assert len(text) > 10_000_000
    item = Item.make(text=text)
    assert pg.add([item]) == [item.id]
    assert pg.get([item.id])[0].text == text
    assert pg.bm25("opening", 5)[0][0] == item.id
    assert pg.bm25("closingword", 5) == []  # beyond the first FTS_CHARS characters
    assert FTS_CHARS == 200_000 and pg.integrity_check() == []


# -- vectors and input ---------------------------------------------------------------------------
def test_vectors_round_trip_float32_exactly(pg):
    items = _turns(3)
    values = np.array(
        [[1e-38, -3.4e38, -0.0, 0.1], [np.float32(1) / 3, 7e-45, 2.5, -1.0], [123456.789, -1e-7, 0.5, 1e30]],
        dtype=np.float32,
    )
    pg.add(items, {"text": ([i.id for i in items], values)})
    ids, array = pg.vectors("text", [items[2].id, items[0].id, items[1].id])
    order = [ids.index(i.id) for i in items]
    assert array.dtype == np.float32
    assert array[order].tobytes() == values.tobytes()
    none, empty = pg.vectors("nope")
    assert none == [] and empty.shape == (0, 0)
    assert pg.vector_ids("Not A Space") == [] and pg.space_dim("nope") is None


def test_refused_input_names_the_fix_and_writes_nothing(pg):
    item = Item.make(text="fine")
    with pytest.raises(ConfigError, match="space name"):
        pg.add([item], {"Text-Space": ([item.id], np.ones((1, 4), np.float32))})
    with pytest.raises(ConfigError, match="NaN"):
        pg.add([item], {"text": ([item.id], np.full((1, 4), np.nan, np.float32))})
    with pytest.raises(ConfigError, match="NUL"):
        pg.add([item, Item.make(text="bad\x00byte")])
    assert len(pg) == 0 and pg.spaces() == {}


def test_integrity_check_reports_a_vector_without_item_and_purge_vacuums(pg, pg_server):
    items = _turns(3)
    pg.add(items, {"text": ([i.id for i in items], np.ones((3, 4), np.float32))})
    assert pg.integrity_check() == []
    with pg.transaction() as conn:
        conn.execute("INSERT INTO vectors_text (item_id, embedding) VALUES ('ghost', '[1,2,3,4]')")
    assert any("1 vector(s) of no item" in p for p in pg.integrity_check())
    pg.rebuild_fts()
    pg.delete([items[0].id, "ghost"])
    assert pg.integrity_check() == []
    with pg.transaction():
        assert pg.purge() is False  # VACUUM cannot run inside a transaction
    assert _purged(pg)
    assert [i for i, _ in pg.bm25("turn", 5)] == [items[1].id, items[2].id]
    reader = _raw(pg_server, pg)  # another session's snapshot keeps what it could still see
    try:
        reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        assert reader.execute("SELECT count(*) FROM items").fetchone()[0] == 2
        pg.delete([items[1].id])
        assert pg.purge() is False
    finally:
        reader.rollback()
        reader.close()
    assert _purged(pg)


def _purged(store) -> bool:
    """purge() succeeded (retried briefly: a background ANALYZE of the server may hold a snapshot a moment)."""
    for _ in range(20):
        if store.purge():
            return True
        time.sleep(0.1)
    return False


def test_archive_and_restore_keep_rows_and_vectors(pg):
    items = _turns(2)
    vectors = np.random.default_rng(1).normal(size=(2, 4)).astype(np.float32)
    pg.add(items, {"text": ([i.id for i in items], vectors)})
    pg.touch_access([items[0].id], "2024-03-01T00:00:00")
    assert pg.archive([items[0].id, "missing"], "stale") == [items[0].id]
    assert items[0].id not in pg and pg.vector_ids("text") == [items[1].id]
    (copy,) = pg.archived_items([items[0].id])
    assert [r[0] for r in pg.archived()] == [items[0].id] and copy.text == items[0].text and copy.ingest_time
    (restored,) = pg.restore([items[0].id])
    assert restored == copy and pg.get([copy.id]) == [copy] and pg.archived() == []
    assert pg.vectors("text", [items[0].id])[1].tobytes() == vectors[:1].tobytes()
    assert pg.nodes(level="session")[0].items == 2


# -- episodic nodes, as SQLite keeps them ------------------------------------------------------------
def _chat():
    return [
        Item.make(text="I moved to Lisbon last week.", speaker="Ana", session="s1", episode="chat",
                  event_time="2024-03-02T10:00:00"),
        Item.make(text="Lisbon is lovely in spring.", speaker="Ben", session="s1", episode="chat",
                  event_time="2024-03-02T10:01:00"),
        Item.make(text="My new job at the hospital starts Monday.", speaker="Ana", session="s2", episode="chat",
                  event_time="2024-03-20T18:00:00"),
    ]  # fmt: skip


def test_nodes_follow_their_items(any_store):
    store = any_store
    chat = _chat()
    store.add(chat)
    sessions = store.nodes(level="session")
    assert [(n.session, n.items) for n in sessions] == [("s1", 2), ("s2", 1)]
    assert sessions[0].first_time == "2024-03-02T10:00:00" and sessions[0].last_time == "2024-03-02T10:01:00"
    assert sessions[0].parent == "episode:chat" and sessions[0].dirty
    (episode,) = store.nodes(level="episode")
    assert episode.items == 3 and episode.last_time == "2024-03-20T18:00:00" and episode.parent is None
    late = Item.make(text="congratulations!", speaker="Ben", session="s2", episode="chat", event_time="2024-03-21")
    store.add([late])
    assert store.nodes(level="episode")[0].items == 4
    assert store.nodes(level="episode")[0].last_time == "2024-03-21T00:00:00"
    assert [n.session for n in store.nodes(level="session", since="2024-03-10")] == ["s2"]
    assert [n.session for n in store.nodes(level="session", until="2024-03-10")] == ["s1"]
    assert [n.id for n in store.nodes(ids=["session:chat/s2", "nope"])] == ["session:chat/s2"]
    assert store.nodes(ids=[]) == [] and len(store.nodes(dirty=True)) == 3 and store.nodes(dirty=False) == []
    store.delete([chat[2].id, late.id])
    assert [n.session for n in store.nodes(level="session")] == ["s1"]  # an emptied node disappears
    assert store.nodes(level="episode")[0].items == 2


def test_node_items_in_time_order_and_the_latest(any_store):
    store = any_store
    chat = _chat()
    store.add(chat[::-1])
    (episode,) = store.nodes(level="episode")
    assert store.node_item_ids(episode) == [i.id for i in chat]
    assert store.node_item_ids(episode, limit=2) == [chat[1].id, chat[2].id]
    loose = [Item.make(text="no time, first", session="x"), Item.make(text="no time, second", session="x")]
    store.add(loose)
    (node,) = store.nodes(ids=["session:/x"])
    assert node.episode == "" and node.parent is None and node.first_time is None
    assert store.node_item_ids(node) == [i.id for i in loose]  # insertion order breaks ties
    assert store.nodes()[0].id == "session:/x"  # nodes without times come first, as in SQLite


def test_summaries_quote_only_items_that_still_exist(any_store):
    store = any_store
    chat = _chat()
    store.add(chat)
    s1 = store.nodes(level="session")[0]
    assert store.set_summary(s1, "Ana: I moved to Lisbon", "extractive", [chat[0].id]) is True
    now = store.nodes(ids=[s1.id])[0]
    assert now.summary == "Ana: I moved to Lisbon" and now.summary_kind == "extractive" and not now.dirty
    # an item added since the node was read: the summary is kept, but the node stays dirty
    store.add([Item.make(text="We found a flat.", speaker="Ana", session="s1", episode="chat")])
    assert store.set_summary(now, "stale", "extractive", [chat[0].id]) is False
    assert store.nodes(ids=[s1.id])[0].summary == "stale" and store.nodes(ids=[s1.id])[0].dirty
    # rewriting or deleting an item empties the summaries above it
    current = store.nodes(ids=[s1.id])[0]
    assert store.set_summary(current, "Ben: Lisbon is lovely", "llm", [chat[1].id]) is True
    store.update(dataclasses.replace(chat[1], text="Porto is lovely in spring."))
    assert {n.summary for n in store.nodes(ids=[s1.id, "episode:chat"])} == {""}
    current = store.nodes(ids=[s1.id])[0]
    store.delete([chat[0].id])
    assert store.set_summary(current, "Ana: I moved to Lisbon", "extractive", [chat[0].id]) is False
    assert not any("Lisbon" in n.summary for n in store.nodes())


# -- copies between backends -----------------------------------------------------------------------
def test_dump_and_load_carry_the_logical_tables_between_backends(tmp_path, pg):
    source = SQLiteRecordStore(tmp_path / "m.db")
    chat = _chat()
    vectors = np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32)
    source.add(chat, {"text": ([i.id for i in chat], vectors)}, jobs=["graph"])
    source.set_importance([chat[0].id], 0.25)
    source.touch_access([chat[1].id], "2024-05-01T00:00:00")
    source.archive([chat[2].id], "stale")
    source.set_summary(source.nodes(level="session")[0], "Ana: I moved to Lisbon", "extractive", [chat[0].id])
    ids = list(source.ids())
    pg.add(source.get(ids), {"text": source.vectors("text", ids)})
    tables = ("meta", "item_stats", "archive", "archive_vectors", "pending", "nodes")
    for table in tables:
        pg.load(table, list(source.dump(table)))
        pg.load(table, list(source.dump(table)))  # existing keys are kept: a repeated load changes nothing

    def rows(store, table):
        return sorted(tuple(int(v) if isinstance(v, bool) else v for v in row) for row in store.dump(table))

    try:
        for table in tables:
            assert rows(pg, table) == rows(source, table), table
        assert pg.nodes(level="session")[0].summary == "Ana: I moved to Lisbon"
        (restored,) = pg.restore([chat[2].id])
        assert pg.vectors("text", [restored.id])[1].tobytes() == vectors[2:].tobytes()
        with pytest.raises(ConfigError, match="unknown table"):
            pg.load("items", [])
    finally:
        source.close()


def test_filter_ids_selects_matching_items_or_says_there_are_too_many(any_store):
    chat = _chat()
    any_store.add(chat)
    assert any_store.filter_ids(Filters(speakers=("Ana",))) == [chat[0].id, chat[2].id]
    assert any_store.filter_ids(Filters(sessions=("s1",)), limit=1) is None
    assert any_store.filter_ids(Filters(sessions=("s2",)), limit=1) == [chat[2].id]
    among = [chat[2].id, "no-such-item", chat[1].id, chat[0].id]  # a broad filter's check of search hits
    assert sorted(any_store.filter_ids(Filters(speakers=("Ana",)), among=among)) == sorted([chat[0].id, chat[2].id])
    assert any_store.filter_ids(Filters(speakers=("Ana",)), among=[]) == []
