"""Agents' LangGraph checkpoint databases beside a memory: dropping the threads that quote forgotten items.

A memory directory may hold agents' checkpoints (``*.ckpt.sqlite``: a chat thread's buffer and prompts
quote the turns it saw). A privacy delete must reach them too; this module is the SQL that does it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["checkpoint_connection", "scrub_checkpoints", "CHECKPOINT_GLOB", "MIN_TEXT_NEEDLE"]

log = logging.getLogger(__name__)

CHECKPOINT_GLOB = "*.ckpt.sqlite"  # how the agents name their checkpoint databases in a memory directory
MIN_TEXT_NEEDLE = 12  # texts shorter than this are matched by item id only ("Yes." is in every thread)


def checkpoint_connection(path: str) -> sqlite3.Connection:
    """A connection for a LangGraph SQLite checkpointer at ``path`` (``":memory:"``: none on disk),
    usable from the threads a compiled graph runs its nodes in."""
    if path != ":memory:":
        Path(path).resolve().parent.mkdir(parents=True, exist_ok=True)
    return sqlite3.connect(path, check_same_thread=False)


def scrub_checkpoints(root: Path, item_ids: Sequence[str], texts: Iterable[str], *, timeout: float = 30.0) -> int:
    """Delete every checkpointed thread that quotes a forgotten item; returns how many threads went.

    A thread goes whole (all its checkpoints and pending writes): its state is a chain of snapshots
    that each may quote the item. A thread quotes an item when any value of any of its rows holds the
    item's id or (for texts of ``MIN_TEXT_NEEDLE`` characters or more) its text, in any letter case.
    Works on any SQLite checkpointer whose tables key rows by a ``thread_id`` column (LangGraph's).
    """
    needles = [i.lower() for i in item_ids] + [t.lower() for t in texts if len(t.strip()) >= MIN_TEXT_NEEDLE]
    if not needles:
        return 0
    dropped = 0
    for path in sorted(root.glob(CHECKPOINT_GLOB)):
        try:
            dropped += _scrub(path, needles, timeout)
        except sqlite3.DatabaseError as e:  # not a checkpoint database after all: leave it, say so
            log.warning("could not scrub %s (%s); delete it by hand if it holds forgotten text", path, e)
    return dropped


def _scrub(path: Path, needles: list[str], timeout: float) -> int:
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.execute("PRAGMA secure_delete=ON")
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if any(col[1] == "thread_id" for col in conn.execute(f'PRAGMA table_info("{name}")'))
        ]
        threads: set[str] = set()
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            at = [d[0] for d in cursor.description].index("thread_id")
            for row in cursor:
                if row[at] not in threads and any(_holds(value, needles) for value in row):
                    threads.add(row[at])
        if threads:
            conn.execute("BEGIN IMMEDIATE")
            for table in tables:
                conn.executemany(f'DELETE FROM "{table}" WHERE thread_id = ?', [(t,) for t in threads])
            conn.execute("COMMIT")
            _truncate_wal(conn, path, timeout)
            log.info("forget: dropped %d checkpointed thread(s) from %s", len(threads), path)
        return len(threads)
    finally:
        conn.close()


def _holds(value: object, needles: list[str]) -> bool:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return False
    value = value.lower()
    return any(n in value for n in needles)


def _truncate_wal(conn: sqlite3.Connection, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
        if time.monotonic() >= deadline:
            log.warning("%s-wal not truncated: a reader holds it; the next checkpoint will", path)
            return
        time.sleep(0.05)
