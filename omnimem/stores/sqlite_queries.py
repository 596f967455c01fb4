"""Item queries of the SQLite record store beyond get-by-id: selections by field, time-ordered runs of
an episode or session, and which blobs and sources are still in use (for a privacy delete)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["QueryMixin"]


class QueryMixin:
    """Selection methods of :class:`~omnimem.stores.sqlite.SQLiteRecordStore` over its ``items`` table."""

    _read: Any  # the store's locked read: (sql, params) -> rows

    def select(
        self, *, sessions: Sequence[str] | None = None, episodes: Sequence[str] | None = None,
        speakers: Sequence[str] | None = None, sources: Sequence[str] | None = None, before: str | None = None,
    ) -> list[str]:  # fmt: skip
        """Ids of the items matching every given field (``before``: event time earlier than it), in
        insertion order."""
        clauses, params = [], []
        for column, values in (("session", sessions), ("episode", episodes), ("speaker", speakers), ("source", sources)):  # fmt: skip
            if values is not None:
                clauses.append(f"{column} IN ({', '.join('?' * len(values))})" if values else "0")
                params += list(values)
        if before is not None:
            clauses.append("event_time < ?")
            params.append(before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [r[0] for r in self._read(f"SELECT id FROM items {where} ORDER BY rowid", params)]

    def timeline(
        self, *, episode: str | None = None, session: str | None = None, t_start: float | None = None,
        t_end: float | None = None, since: str | None = None, until: str | None = None,
    ) -> list[str]:  # fmt: skip
        """Ids of an episode's (or one of its sessions') items overlapping a media span (seconds) and/or
        an event-time range, in media-time order. ``episode=""`` is the items outside any episode."""
        clauses: list[str] = []
        params: list[Any] = []
        if episode is not None:
            clauses.append("episode = ?" if episode else "(episode IS NULL OR episode = '')")
            params += [episode] if episode else []
        if session is not None:
            clauses.append("session = ?")
            params.append(session)
        for clause, value in (("t_end > ?", t_start), ("t_start < ?", t_end), ("event_time >= ?", since), ("event_time < ?", until)):  # fmt: skip
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [r[0] for r in self._read(f"SELECT id FROM items {where} ORDER BY t_start, event_time, rowid", params)]

    def filter_ids(
        self, filters: Any, *, limit: int | None = None, among: Sequence[str] | None = None
    ) -> list[str] | None:
        """Ids of the items matching ``filters`` (a :class:`~omnimem.stores.base.Filters`); with
        ``limit``, None when more than ``limit`` match (the caller then searches the index with them);
        with ``among``, only those of these ids that match (in no particular order)."""
        from omnimem.stores.sqlite_sql import filter_sql

        where, params = filter_sql(filters)
        if among is not None:
            among, out = list(dict.fromkeys(among)), []
            for start in range(0, len(among), 500):
                chunk = among[start : start + 500]
                sql = f"SELECT items.id FROM items WHERE items.id IN ({', '.join('?' * len(chunk))}){where}"
                out += [r[0] for r in self._read(sql, [*chunk, *params])]
            return out
        cap = f" LIMIT {int(limit) + 1}" if limit is not None else ""
        rows = self._read(f"SELECT items.id FROM items WHERE 1 {where}{cap}", params)
        if limit is not None and len(rows) > limit:
            return None
        return [r[0] for r in rows]

    def in_order(self, *, episode: str | None = None, session: str | None = None) -> list[tuple[str, str]]:
        """``(id, text)`` of a session's (else an episode's) items in event-time order."""
        column, value = ("session", session) if session is not None else ("episode", episode)
        sql = f"SELECT id, text FROM items WHERE {column} = ? ORDER BY event_time, t_start, rowid"
        return [tuple(r) for r in self._read(sql, (value,))]

    def session_names(self, *, source: str | None = None, prefix: str | None = None) -> list[str]:
        """Distinct sessions (of items from ``source``), optionally only ``prefix`` itself or those under
        ``prefix + "/"`` (compared exactly: letter case counts)."""
        clauses, params = ["session IS NOT NULL"], []
        if source is not None:
            clauses.append("source = ?")
            params.append(source)
        if prefix is not None:
            clauses.append("(session = ? OR substr(session, 1, ?) = ?)")
            params += [prefix, len(prefix) + 1, prefix + "/"]
        return [r[0] for r in self._read(f"SELECT DISTINCT session FROM items WHERE {' AND '.join(clauses)}", params)]

    def blobs_in_use(self, addresses: Sequence[str]) -> set[str]:
        """Those of ``addresses`` some item still holds (as its blob or one of its keyframes)."""
        wanted, used = list(dict.fromkeys(addresses)), set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            used |= {r[0] for r in self._read(f"SELECT DISTINCT blob FROM items WHERE blob IN ({', '.join('?' * len(chunk))})", chunk)}  # fmt: skip
        for address in set(wanted) - used:
            for (metadata,) in self._read("SELECT metadata FROM items WHERE instr(metadata, ?) > 0", (address,)):
                frames = json.loads(metadata).get("keyframes", [])
                if any(isinstance(k, dict) and k.get("blob") == address for k in frames):
                    used.add(address)
                    break
        return used

    def sources_in_use(self, sources: Sequence[str]) -> set[str]:
        """Those of ``sources`` some item still names as its source."""
        wanted, used = [s for s in dict.fromkeys(sources) if s], set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            used |= {r[0] for r in self._read(f"SELECT DISTINCT source FROM items WHERE source IN ({', '.join('?' * len(chunk))})", chunk)}  # fmt: skip
        return used
