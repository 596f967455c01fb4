"""Crash safety and multi-process use: a writer killed mid-batch, several processes writing at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import omnimem

BATCH = 50

WRITER = textwrap.dedent(
    """
    import sys, omnimem
    from omnimem.encoders.hashing import HashEncoder
    path, start, count, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    with omnimem.Memory.open(path, encoder=HashEncoder(64)) as mem:
        for b in range(start, start + count):
            mem.add([f"batch {b} item {i} words {b * i}" for i in range(batch)], session=f"b{b}")
            print(b, flush=True)
    """
)


def _spawn(path, start, count, batch=BATCH):
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(start), str(count), str(batch)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_writer_killed_mid_batch_loses_nothing_committed(tmp_path):
    path = tmp_path / "m"
    proc = _spawn(path, 0, 100_000)
    committed = []
    deadline = time.monotonic() + 120
    while len(committed) < 6 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        committed.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(committed) >= 6, proc.stderr.read()
    with omnimem.Memory.open(path) as mem:
        n = len(mem)
        assert n % BATCH == 0  # no partial batch is visible
        assert n >= len(committed) * BATCH  # every batch reported as committed is there
        sessions = {item.session for item in mem.store.get(list(mem.store.ids()))}
        assert {f"b{b}" for b in committed} <= sessions
        assert len(mem.indexes["text"]) == n  # the index caught up with SQLite on open
        assert mem.check(repair=False)["ok"]
        hit = mem.search(f"batch {committed[-1]} item 3 words {committed[-1] * 3}", k=1)[0]
        assert hit.session == f"b{committed[-1]}"


def test_processes_adding_overlapping_items_leave_no_duplicates(tmp_path):
    from omnimem.encoders.hashing import HashEncoder

    path = tmp_path / "m"
    omnimem.Memory.open(path, encoder=HashEncoder(64)).close()
    # 4 writers over overlapping ranges of batches: 0-5, 3-8, 0-5, 6-11 -> 12 distinct batches.
    procs = [_spawn(path, s, 6, 20) for s in (0, 3, 0, 6)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    with omnimem.Memory.open(path) as mem:
        assert len(mem) == 12 * 20
        assert len(mem.indexes["text"]) == 12 * 20
        assert mem.check(repair=False)["ok"]


def test_reader_sees_another_process_writes(tmp_path):
    from omnimem.encoders.hashing import HashEncoder

    path = tmp_path / "m"
    with omnimem.Memory.open(path, encoder=HashEncoder(64)) as reader:
        reader.add("written by the reader itself")
        proc = _spawn(path, 0, 1, 5)
        proc.communicate(timeout=120)
        assert len(reader) == 6
        assert reader.search("batch 0 item 2 words 0", k=1, retrievers=("dense",))[0].session == "b0"


HOLDER = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE IF NOT EXISTS scratch (x)")
    conn.execute("INSERT INTO scratch VALUES (1)")
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("ROLLBACK")
    """
)


def test_open_search_and_context_never_wait_for_a_writer(tmp_path):
    """A reader beside a long write: opening, searching and packing context take no write lock."""
    from omnimem.encoders.hashing import HashEncoder

    path = tmp_path / "m"
    with omnimem.Memory.open(path, encoder=HashEncoder(64)) as mem:
        mem.add_conversation(
            [{"speaker": "Ann", "text": f"fact {n} about topic {n % 9}"} for n in range(60)], session="s"
        )
        mem.episodes()
    hold = 8.0
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path / "memory.db"), str(hold)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with omnimem.Memory.open(path) as mem:
            opened = time.monotonic() - started
            times = []
            for n in range(40):
                t = time.monotonic()
                assert mem.search(f"fact {n} about topic", k=5)
                times.append(time.monotonic() - t)
            assert mem.context("Which facts are about topic 3?").entries
            assert [n.items for n in mem.episodes()] == [60]
        total = time.monotonic() - started
        assert holder.poll() is None, "the writer let go before the reads finished: the test proves nothing"
    finally:
        holder.kill()
        holder.wait()
    assert opened < 2.0 and max(times) < 1.0 and total < hold - 1, (opened, max(times), total)
