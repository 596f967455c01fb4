"""The episodic tree's inner nodes, kept in step with the items inside the items' own transactions.

Items (turns, audio / video segments) are the leaves; a **session** node groups the items of one
``(episode, session)`` pair (a chat session, a video scene or segment window); an **episode** node
groups the items of one ``episode`` (a conversation, a video, a document). Each node holds its time
span (event times, and media seconds), its item count and a summary, which the memory layer writes
(WorldMM's multi-scale episodic memory; HippoMM's segment -> event consolidation). Spans and counts
are recomputed from the items by SQL aggregates whenever an item of the node is added or deleted, so
they can never drift; summaries are marked ``dirty`` then and refreshed by the memory layer. A summary
only ever quotes items the memory still holds: deleting or rewriting an item empties the summaries
above it in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from omnimem.stores.sqlite_driver import sqlite3
from omnimem.types import Item, utc_now

__all__ = ["Node", "migration_nodes", "node_keys", "touch_nodes", "clear_summaries", "NODE_COLUMNS", "node_id"]

NODE_COLUMNS = (
    "id", "level", "episode", "session", "parent", "first_time", "last_time", "t_start", "t_end",
    "items", "summary", "summary_kind", "dirty", "version", "updated_at",
)  # fmt: skip


@dataclass(frozen=True)
class Node:
    """A session or episode of the episodic tree."""

    id: str  # "session:<episode>/<session>" or "episode:<episode>"
    level: str  # "session" or "episode"
    episode: str  # the episode id ("" for a session outside any episode)
    session: str | None  # the session id (None for an episode node)
    parent: str | None  # the episode node of a session node, if any
    first_time: str | None  # ISO-8601, earliest event time among its items
    last_time: str | None  # ISO-8601, latest event time among its items
    t_start: float | None  # seconds, earliest media span start among its items
    t_end: float | None  # seconds, latest media span end among its items
    items: int  # number of items under it
    summary: str  # the summary text ("" until first refreshed)
    summary_kind: str | None  # "extractive" or "llm"
    dirty: bool  # whether items changed since the summary was written
    version: int  # bumped by every change of its items (guards summary writes against races)
    updated_at: str | None  # ISO-8601 UTC of the last change


def migration_nodes(db: sqlite_utils.Database) -> None:
    """Schema 2: the ``nodes`` table, filled from the items already stored."""
    db.execute(
        "CREATE TABLE nodes (id TEXT PRIMARY KEY, level TEXT NOT NULL, episode TEXT NOT NULL,"
        " session TEXT, parent TEXT, first_time TEXT, last_time TEXT, t_start REAL, t_end REAL,"
        " items INTEGER NOT NULL, summary TEXT NOT NULL DEFAULT '', summary_kind TEXT,"
        " dirty INTEGER NOT NULL DEFAULT 1, version INTEGER NOT NULL DEFAULT 0, updated_at TEXT)"
    )
    db.execute("CREATE INDEX nodes_level_time ON nodes(level, first_time)")
    db.execute("CREATE INDEX nodes_episode ON nodes(episode)")
    db.execute("CREATE INDEX items_episode_session ON items(episode, session)")
    keys = {(r[0] or "", r[1]) for r in db.execute("SELECT DISTINCT episode, session FROM items").fetchall()}
    touch_nodes(db.conn, _expand(keys))


def node_id(level: str, episode: str, session: str | None = None) -> str:
    return f"session:{episode}/{session}" if level == "session" else f"episode:{episode}"


def node_keys(items: Iterable[Item]) -> set[tuple[str, str, str | None]]:
    """The ``(level, episode, session)`` keys of the nodes above these items."""
    return _expand({(item.episode or "", item.session) for item in items})


def _expand(pairs: set[tuple[str, str | None]]) -> set[tuple[str, str, str | None]]:
    keys: set[tuple[str, str, str | None]] = set()
    for episode, session in pairs:
        if session:
            keys.add(("session", episode, session))
        if episode:
            keys.add(("episode", episode, None))
    return keys


def touch_nodes(conn: sqlite3.Connection, keys: Iterable[tuple[str, str, str | None]]) -> None:
    """Recompute span and count of these nodes from their items; drop nodes left empty."""
    now = utc_now()
    for level, episode, session in keys:
        nid = node_id(level, episode, session)
        where, params = _where(level, episode, session)
        row = conn.execute(
            f"SELECT count(*), min(event_time), max(event_time), min(t_start), max(t_end) FROM items WHERE {where}",
            params,
        ).fetchone()
        if not row[0]:
            conn.execute("DELETE FROM nodes WHERE id = ?", (nid,))
            continue
        parent = node_id("episode", episode) if level == "session" and episode else None
        conn.execute(
            "INSERT INTO nodes (id, level, episode, session, parent, first_time, last_time, t_start, t_end,"
            " items, dirty, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)"
            " ON CONFLICT(id) DO UPDATE SET first_time = excluded.first_time, last_time = excluded.last_time,"
            " t_start = excluded.t_start, t_end = excluded.t_end, items = excluded.items, dirty = 1,"
            " version = nodes.version + 1, updated_at = excluded.updated_at",
            (nid, level, episode, session, parent, row[1], row[2], row[3], row[4], row[0], now),
        )


def clear_summaries(conn: sqlite3.Connection, keys: Iterable[tuple[str, str, str | None]]) -> None:
    """Empty the summaries of these nodes (and mark them dirty): an item under them was deleted or
    rewritten, and a summary may quote only what the memory still holds (a forget leaves no trace)."""
    conn.executemany(
        "UPDATE nodes SET summary = '', summary_kind = NULL, dirty = 1, version = version + 1 WHERE id = ?",
        [(node_id(level, episode, session),) for level, episode, session in keys],
    )


def _where(level: str, episode: str, session: str | None) -> tuple[str, tuple[Any, ...]]:
    episode_clause = "episode = ?" if episode else "(episode IS NULL OR episode = '')"
    episode_params: tuple[Any, ...] = (episode,) if episode else ()
    if level == "session":
        return f"{episode_clause} AND session = ?", (*episode_params, session)
    return episode_clause, episode_params


def node_items_where(node: Node) -> tuple[str, tuple[Any, ...]]:
    """SQL condition (on ``items``) selecting the items under ``node``."""
    return _where(node.level, node.episode, node.session)


def row_node(row: tuple) -> Node:
    values = dict(zip(NODE_COLUMNS, row))
    values["dirty"] = bool(values["dirty"])
    return Node(**values)
