"""Item queries of the PostgreSQL record store beyond get-by-id: selections by field, time-ordered runs
of an episode or session, and which blobs and sources are still in use (for a privacy delete).

The SQL of :mod:`omnimem.stores.sqlite_queries` with ``seq`` for SQLite's ``rowid`` and SQLite's
ordering of NULLs (first when ascending) spelled out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["PgQueryMixin"]


class PgQueryMixin:
    """Selection methods of :class:`~omnimem.stores.pg_records.PostgresRecordStore` over ``items``."""

    _read: Callable[..., list[tuple]]  # the store's read: (sql, params) -> rows

    def select(
        self, *, sessions: Sequence[str] | None = None, episodes: Sequence[str] | None = None,
        speakers: Sequence[str] | None = None, sources: Sequence[str] | None = None, before: str | None = None,
    ) -> list[str]:  # fmt: skip
        """Ids of the items matching every given field (``before``: event time earlier than it), in
        insertion order."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, values in (("session", sessions), ("episode", episodes), ("speaker", speakers), ("source", sources)):  # fmt: skip
            if values is not None:
                clauses.append(f"{column} = ANY(%s::text[])")
                params.append(list(values))
        if before is not None:
            clauses.append("event_time < %s")
            params.append(before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [r[0] for r in self._read(f"SELECT id FROM items {where} ORDER BY seq", params)]

    def timeline(
        self, *, episode: str | None = None, session: str | None = None, t_start: float | None = None,
        t_end: float | None = None, since: str | None = None, until: str | None = None,
    ) -> list[str]:  # fmt: skip
        """Ids of an episode's (or one of its sessions') items overlapping a media span (seconds) and/or
        an event-time range, in media-time order. ``episode=""`` is the items outside any episode."""
        clauses: list[str] = []
        params: list[Any] = []
        if episode is not None:
            clauses.append("episode = %s" if episode else "(episode IS NULL OR episode = '')")
            params += [episode] if episode else []
        if session is not None:
            clauses.append("session = %s")
            params.append(session)
        for clause, value in (("t_end > %s", t_start), ("t_start < %s", t_end), ("event_time >= %s", since), ("event_time < %s", until)):  # fmt: skip
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ORDER BY t_start NULLS FIRST, event_time NULLS FIRST, seq"
        return [r[0] for r in self._read(f"SELECT id FROM items {where} {order}", params)]

    def filter_ids(
        self, filters: Any, *, limit: int | None = None, among: Sequence[str] | None = None
    ) -> list[str] | None:
        """Ids of the items matching ``filters`` (a :class:`~omnimem.stores.base.Filters`); with
        ``limit``, None when more than ``limit`` match (the caller then searches the index with them);
        with ``among``, only those of these ids that match (in no particular order)."""
        from omnimem.stores.pg_schema import pg_filter_sql

        where, params = pg_filter_sql(filters)
        if among is not None:
            sql = f"SELECT items.id FROM items WHERE items.id = ANY(%s::text[]){where}"
            return [r[0] for r in self._read(sql, [list(dict.fromkeys(among)), *params])]
        cap = f" LIMIT {int(limit) + 1}" if limit is not None else ""
        rows = self._read(f"SELECT items.id FROM items WHERE TRUE{where} ORDER BY items.seq{cap}", params)
        if limit is not None and len(rows) > limit:
            return None
        return [r[0] for r in rows]

    def in_order(self, *, episode: str | None = None, session: str | None = None) -> list[tuple[str, str]]:
        """``(id, text)`` of a session's (else an episode's) items in event-time order."""
        column, value = ("session", session) if session is not None else ("episode", episode)
        sql = (
            f"SELECT id, text FROM items WHERE {column} = %s ORDER BY event_time NULLS FIRST, t_start NULLS FIRST, seq"
        )
        return [tuple(r) for r in self._read(sql, (value,))]

    def session_names(self, *, source: str | None = None, prefix: str | None = None) -> list[str]:
        """Distinct sessions (of items from ``source``), optionally only ``prefix`` itself or those under
        ``prefix + "/"`` (compared exactly: letter case counts), in byte order."""
        clauses: list[str] = ["session IS NOT NULL"]
        params: list[Any] = []
        if source is not None:
            clauses.append("source = %s")
            params.append(source)
        if prefix is not None:
            clauses.append("(session = %s OR left(session, %s) = %s)")
            params += [prefix, len(prefix) + 1, prefix + "/"]
        sql = f"SELECT DISTINCT session FROM items WHERE {' AND '.join(clauses)} ORDER BY session"
        return [r[0] for r in self._read(sql, params)]

    def blobs_in_use(self, addresses: Sequence[str]) -> set[str]:
        """Those of ``addresses`` some item still holds (as its blob or one of its keyframes)."""
        wanted = list(dict.fromkeys(addresses))
        used = {r[0] for r in self._read("SELECT DISTINCT blob FROM items WHERE blob = ANY(%s::text[])", (wanted,))}
        for address in set(wanted) - used:
            for (metadata,) in self._read("SELECT metadata FROM items WHERE strpos(metadata, %s) > 0", (address,)):
                frames = json.loads(metadata).get("keyframes", [])
                if any(isinstance(k, dict) and k.get("blob") == address for k in frames):
                    used.add(address)
                    break
        return used

    def sources_in_use(self, sources: Sequence[str]) -> set[str]:
        """Those of ``sources`` some item still names as its source."""
        wanted = [s for s in dict.fromkeys(sources) if s]
        return {r[0] for r in self._read("SELECT DISTINCT source FROM items WHERE source = ANY(%s::text[])", (wanted,))}

    def has_episode(self, episode: str) -> bool:
        """Whether any item belongs to ``episode`` (a media file's episode id, a conversation ...)."""
        return bool(self._read("SELECT 1 FROM items WHERE episode = %s LIMIT 1", (episode,)))

    def ids(self) -> Iterator[str]:
        """Every item id, in insertion order."""
        return iter([r[0] for r in self._read("SELECT id FROM items ORDER BY seq")])

    def __len__(self) -> int:
        return self._read("SELECT count(*) FROM items")[0][0]

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and bool(self._read("SELECT 1 FROM items WHERE id = %s", (item_id,)))
