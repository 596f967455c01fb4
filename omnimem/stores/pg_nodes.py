"""The episodic tree's nodes on PostgreSQL: the SQL of :mod:`omnimem.stores.nodes`, safe under
concurrent writers.

Several processes may add items to one session at once. Each recomputes the session's span and count
from its items, so recomputations of one node must not overlap: a transaction takes an advisory lock
per node id (in id order, so two writers cannot deadlock on them) before it aggregates. Under READ
COMMITTED each statement reads a fresh snapshot, so the aggregate taken after the lock sees every item
the previous holder committed. :meth:`PgNodeMixin.set_summary` takes the same lock, so a summary and
the delete of an item it quotes cannot cross.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from omnimem.stores.nodes import NODE_COLUMNS, Node, node_id, row_node
from omnimem.types import utc_now

__all__ = ["PgNodeMixin", "touch_nodes", "clear_summaries", "lock_nodes"]

NodeKey = tuple[str, str, str | None]  # (level, episode, session)


def lock_nodes(conn: Any, schema: str, ids: Iterable[str]) -> None:
    """Hold these nodes (transaction-scoped advisory locks, taken in id order) until the transaction ends."""
    for nid in sorted(set(ids)):
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"omnimem/{schema}/node/{nid}",))


def touch_nodes(conn: Any, schema: str, keys: Iterable[NodeKey]) -> None:
    """Recompute span and count of these nodes from their items; drop nodes left empty."""
    by_id = {node_id(*key): key for key in keys}
    lock_nodes(conn, schema, by_id)
    now = utc_now()
    for nid in sorted(by_id):
        level, episode, session = by_id[nid]
        where, params = _where(level, episode, session)
        row = conn.execute(
            f"SELECT count(*), min(event_time), max(event_time), min(t_start), max(t_end) FROM items WHERE {where}",
            params,
        ).fetchone()
        if not row[0]:
            conn.execute("DELETE FROM nodes WHERE id = %s", (nid,))
            continue
        parent = node_id("episode", episode) if level == "session" and episode else None
        conn.execute(
            "INSERT INTO nodes (id, level, episode, session, parent, first_time, last_time, t_start, t_end,"
            " items, dirty, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, TRUE, %s)"
            " ON CONFLICT (id) DO UPDATE SET first_time = excluded.first_time, last_time = excluded.last_time,"
            " t_start = excluded.t_start, t_end = excluded.t_end, items = excluded.items, dirty = TRUE,"
            " version = nodes.version + 1, updated_at = excluded.updated_at",
            (nid, level, episode, session, parent, row[1], row[2], row[3], row[4], row[0], now),
        )


def clear_summaries(conn: Any, keys: Iterable[NodeKey]) -> None:
    """Empty the summaries of these nodes (and mark them dirty): an item under them was deleted or
    rewritten, and a summary may quote only what the memory still holds (a forget leaves no trace)."""
    ids = sorted({node_id(*key) for key in keys})
    if ids:
        conn.execute(
            "UPDATE nodes SET summary = '', summary_kind = NULL, dirty = TRUE, version = version + 1"
            " WHERE id = ANY(%s::text[])",
            (ids,),
        )


def _where(level: str, episode: str, session: str | None) -> tuple[str, tuple[Any, ...]]:
    episode_clause = "episode = %s" if episode else "(episode IS NULL OR episode = '')"
    episode_params: tuple[Any, ...] = (episode,) if episode else ()
    if level == "session":
        return f"{episode_clause} AND session = %s", (*episode_params, session)
    return episode_clause, episode_params


class PgNodeMixin:
    """Episodic-tree methods of :class:`~omnimem.stores.pg_records.PostgresRecordStore` (table ``nodes``)."""

    db: Any  # the store's PgDatabase
    _read: Callable[..., list[tuple]]
    _write: Callable[..., Any]

    def nodes(
        self, *, level: str | None = None, episode: str | None = None, since: str | None = None,
        until: str | None = None, dirty: bool | None = None, ids: Sequence[str] | None = None,
    ) -> list[Node]:  # fmt: skip
        """Sessions / episodes, in time order; ``since``/``until`` keep nodes whose span overlaps."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("level", level), ("episode", episode)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if dirty is not None:
            clauses.append("dirty = %s")
            params.append(bool(dirty))
        if since is not None:
            clauses.append("last_time >= %s")
            params.append(since)
        if until is not None:
            clauses.append("first_time < %s")
            params.append(until)
        if ids is not None:
            clauses.append("id = ANY(%s::text[])")
            params.append(list(ids))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ORDER BY first_time NULLS FIRST, t_start NULLS FIRST, id"  # SQLite's order: NULL first
        return [row_node(r) for r in self._read(f"SELECT {', '.join(NODE_COLUMNS)} FROM nodes {where} {order}", params)]

    def node_item_ids(self, node: Node, *, limit: int | None = None) -> list[str]:
        """Ids of the items under ``node`` in time order (the latest ``limit`` when given)."""
        where, params = _where(node.level, node.episode, node.session)
        if limit:
            order = "ORDER BY event_time DESC NULLS LAST, t_start DESC NULLS LAST, seq DESC"
        else:
            order = "ORDER BY event_time NULLS FIRST, t_start NULLS FIRST, seq"
        rows = self._read(f"SELECT id FROM items WHERE {where} {order} LIMIT %s", (*params, limit or None))
        ids = [r[0] for r in rows]
        return ids[::-1] if limit else ids

    def set_summary(self, node: Node, summary: str, kind: str, sources: Sequence[str] = ()) -> bool:
        """Write a node's summary, quoting the items ``sources``; returns whether it is current.

        The summary is written only if every item it quotes still exists (one may have been
        forgotten since ``node`` was read: its words must not come back); its dirty flag clears only
        if no item changed since then (False: refresh again). The node's lock is taken first, so a
        delete committing meanwhile is either seen here or clears the summary after it.
        """
        ids = list(dict.fromkeys(sources))

        def work(conn: Any) -> bool:
            lock_nodes(conn, self.db.schema, [node.id])
            alive = conn.execute("SELECT count(*) FROM items WHERE id = ANY(%s::text[])", (ids,)).fetchone()[0]
            if alive < len(ids):
                return False
            conn.execute("UPDATE nodes SET summary = %s, summary_kind = %s WHERE id = %s", (summary, kind, node.id))
            cursor = conn.execute(
                "UPDATE nodes SET dirty = FALSE WHERE id = %s AND version = %s", (node.id, node.version)
            )
            return bool(cursor.rowcount)

        return self._write(work)

    def neighbours(self, ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """For each id, the previous and next item of the same (episode, session), in insertion order.

        Items outside any session have no neighbours. Used to give a turn the context of the turns
        around it (the question before an answer, the answer after a question).
        """
        same = "n.session = c.session AND n.episode IS NOT DISTINCT FROM c.episode"
        rows = self._read(
            f"SELECT c.id,"
            f" (SELECT n.id FROM items n WHERE {same} AND n.seq < c.seq ORDER BY n.seq DESC LIMIT 1),"
            f" (SELECT n.id FROM items n WHERE {same} AND n.seq > c.seq ORDER BY n.seq LIMIT 1)"
            f" FROM items c WHERE c.id = ANY(%s::text[]) AND c.session IS NOT NULL",
            (list(dict.fromkeys(ids)),),
        )
        return {item_id: (before, after) for item_id, before, after in rows}
