"""The M3KG in PostgreSQL, in the same schema as a :class:`~omnimem.stores.pg_records.PostgresRecordStore`.

The tables and their semantics are SQLite's (:mod:`omnimem.stores.sqlite_graph`: entities with
``merged_into`` pointers and the ``root`` each resolves to, triplets with their source items,
mentions, the merge and split logs; the coverage property). What differs is how many writers share
them (several processes and hosts may resolve one memory's entities at once):

- a write's rows are upserted in id order and the whole transaction is re-run on a deadlock
  (:meth:`PgDatabase.run`), so repeated writes neither duplicate rows nor fail;
- :meth:`PostgresGraphStore.merge` locks the two roots (``FOR UPDATE``, in id order) and resolves
  both ends again under the lock: a root another writer merged meanwhile is followed to its new root
  and two merges of one pair never make a cycle (the second finds them one entity and says so);
  unmerge and unsplit lock the roots they move entities between the same way, so whoever rewrites a
  group's ``root`` column holds its root's lock;
- reads take no lock (MVCC), and ``seq`` columns give SQLite's rowid order where reads rely on it.

Embeddings are stored as float32 bytes (``BYTEA``), as in SQLite: they serve entity resolution in
Python and are never searched in SQL. The multi-row work lives in :mod:`omnimem.stores.pg_graph_ops`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from omnimem.errors import ConfigError, NotFound
from omnimem.stores.graph_schema import EntityRow, MentionRow, Merge, Split, TripletRow, entity_rows, sense_id
from omnimem.stores.pg_graph_ops import (
    C,
    delete_links,
    lock_roots,
    migration_graph,
    migration_roots,
    move_entity_rows,
    refuse_nul,
    reroot,
    upsert,
)
from omnimem.types import concept_key, utc_now

__all__ = ["PostgresGraphStore", "GRAPH_MIGRATIONS"]

log = logging.getLogger(__name__)

GRAPH_MIGRATIONS = [migration_graph, migration_roots]  # the "graph" component's versions in schema_versions
_TRIPLET_COLS = "id, head, relation, tail, sentence, confidence, valid_from, valid_to, recorded_at, retired_at"
_MENTION_COLS = 'entity_id, item_id, surface, start, "end", sentence'


class PostgresGraphStore:
    """A :class:`~omnimem.stores.base.GraphStore` in PostgreSQL: the M3KG tables beside the items of
    ``store`` (a PostgresRecordStore), whose transactions its writes join."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.db = store.db  # the PgDatabase: per-thread transactions, nested ones are savepoints
        self.db.migrate("graph", GRAPH_MIGRATIONS)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.db.read(sql, params)

    @staticmethod
    def _ids(ids: Sequence[str]) -> list[str]:
        return list(dict.fromkeys(ids))

    # -- writes --------------------------------------------------------------------------------
    def write(
        self,
        entities: Sequence[EntityRow] = (),
        mentions: Sequence[MentionRow] = (),
        triplets: Sequence[TripletRow] = (),
    ) -> dict[str, int]:
        """Upsert entities, mentions and triplets (with their sources) in one transaction.

        Idempotent, also under concurrent writers of the same rows. Raises :class:`ConfigError` for a
        triplet without sources (the coverage property) or one whose head/tail entity is unknown.
        Returns counts of new rows: ``{"entities", "mentions", "triplets", "sources"}``.
        """
        for t in triplets:
            if not t.sources:
                raise ConfigError(f"triplet {t.id} ({t.relation!r}) has no source item; every triplet needs one")
        now = utc_now()
        merged_aliases: dict[str, EntityRow] = {}
        for e in entities:
            if not e.name or not e.type:
                raise ConfigError(f"entity {e.id} needs a name and a type")
            old = merged_aliases.get(e.id)
            merged_aliases[e.id] = e if old is None else EntityRow(old.id, old.name, old.type, old.aliases + e.aliases, old.description or e.description)  # fmt: skip
        rows, mentions, triplets = list(merged_aliases.values()), list(mentions), list(triplets)
        refuse_nul(rows, mentions, triplets)
        return self.db.run(lambda conn: upsert(conn, rows, mentions, triplets, now))

    def set_embedding(self, entity_ids: Sequence[str], vectors: np.ndarray) -> None:
        """Store float32 ``(n, d)`` embeddings of entities (e.g. of their names, for resolution)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(entity_ids):
            raise ConfigError(f"vectors must have shape ({len(entity_ids)}, d), got {vectors.shape}")
        last = dict(zip(entity_ids, vectors))  # a repeated id: its last vector, as SQLite's updates in turn

        def work(conn: Any) -> None:
            for eid in sorted(last):
                conn.execute("UPDATE entities SET embedding = %s WHERE id = %s", (last[eid].tobytes(), eid))

        self.db.run(work)

    def set_descriptions(self, descriptions: Mapping[str, str], *, overwrite: bool = False) -> int:
        """Write entity descriptions (M3KG step 3); keeps an existing one unless ``overwrite``. Returns rows set."""
        sql = "UPDATE entities SET description = %s WHERE id = %s" + ("" if overwrite else " AND description IS NULL")
        todo = sorted((eid, text) for eid, text in descriptions.items() if text)
        for eid, text in todo:
            if "\x00" in text:
                raise ConfigError(f"the description of {eid} holds a NUL character (\\x00), which PostgreSQL cannot store; remove it first")  # fmt: skip
        return self.db.run(lambda conn: sum(conn.execute(sql, (text, eid)).rowcount for eid, text in todo))

    # -- reads ---------------------------------------------------------------------------------
    def roots(self) -> dict[str, str]:
        """Merged entity id -> the entity it resolves to now (every merged entity: for jobs and export)."""
        return dict(self._read("SELECT id, root FROM entities WHERE merged_into IS NOT NULL ORDER BY seq"))

    def roots_of(self, entity_ids: Sequence[str]) -> dict[str, str]:
        """Each stored id of ``entity_ids`` -> the entity it resolves to now (itself when not merged)."""
        return dict(self._read("SELECT id, root FROM entities WHERE id = ANY(%s)", (self._ids(entity_ids),)))

    def canonical(self, entity_id: str) -> str:
        return self.roots_of([entity_id]).get(entity_id, entity_id)

    def members(self, entity_ids: Sequence[str]) -> dict[str, list[str]]:
        """Each root id -> itself plus the ids merged into it."""
        out = {e: [e] for e in entity_ids}
        sql = "SELECT root, id FROM entities WHERE root = ANY(%s) AND id <> root ORDER BY seq"
        for root, eid in self._read(sql, (list(out),)):
            out[root].append(eid)
        return out

    def entities(self, ids: Sequence[str] | None = None, *, include_merged: bool = False) -> list[EntityRow]:
        """Entity rows (roots only unless ``include_merged``); a root's aliases include its members'."""
        cols = "id, name, type, aliases, description, merged_into, root"
        if ids is None:
            rows = self._read(f"SELECT {cols} FROM entities ORDER BY seq")
            members = self._read("SELECT root, aliases FROM entities WHERE merged_into IS NOT NULL ORDER BY seq")
        else:
            rows = self._read(f"SELECT {cols} FROM entities WHERE id = ANY(%s) ORDER BY id {C}", (self._ids(ids),))
            sql = "SELECT root, aliases FROM entities WHERE root = ANY(%s) AND id <> root ORDER BY seq"
            members = self._read(sql, ([r[0] for r in rows if r[5] is None],))
        return entity_rows(rows, members, include_merged=include_merged)

    def get_entity(self, entity_id: str) -> EntityRow:
        rows = self.entities([entity_id], include_merged=True)
        if not rows:
            raise NotFound(f"no entity with id {entity_id!r}; look ids up with find_entities(name)")
        return rows[0]

    def find_entities(self, name: str) -> list[EntityRow]:
        """Roots of the entities whose key equals ``name``'s (any type)."""
        rows = self._read(f"SELECT root FROM entities WHERE key = %s ORDER BY id {C}", (concept_key(name),))
        return self.entities(list(dict.fromkeys(r[0] for r in rows)))

    def embeddings(self, entity_ids: Sequence[str]) -> dict[str, np.ndarray]:
        sql = f"SELECT id, embedding FROM entities WHERE embedding IS NOT NULL AND id = ANY(%s) ORDER BY id {C}"
        return {eid: np.frombuffer(blob, dtype=np.float32).copy() for eid, blob in self._read(sql, (self._ids(entity_ids),))}  # fmt: skip

    def triplets(
        self, *, entity_ids: Sequence[str] | None = None, item_ids: Sequence[str] | None = None
    ) -> list[TripletRow]:
        """Triplets touching ``entity_ids`` (head or tail), or read from ``item_ids``, or all; with sources."""
        if entity_ids is not None:
            ids = self._ids(entity_ids)
            rows = self._read(
                f"SELECT {_TRIPLET_COLS} FROM triplets WHERE head = ANY(%s) ORDER BY head {C}, seq", (ids,)
            )
            rows += self._read(f"SELECT {_TRIPLET_COLS} FROM triplets WHERE tail = ANY(%s) ORDER BY tail {C}, seq", (ids,))  # fmt: skip
        elif item_ids is not None:
            rows = self._read(
                f"SELECT {_TRIPLET_COLS} FROM triplets WHERE id IN"
                f" (SELECT triplet_id FROM triplet_sources WHERE item_id = ANY(%s)) ORDER BY id {C}",
                (self._ids(item_ids),),
            )
        else:
            rows = self._read(f"SELECT {_TRIPLET_COLS} FROM triplets ORDER BY seq")
        rows = list({r[0]: r for r in rows}.values())
        sources = self.sources([r[0] for r in rows])
        return [
            TripletRow(r[0], r[1], r[2], r[3], r[4], r[5], tuple(sources.get(r[0], ())), r[6], r[7], r[8], r[9])
            for r in rows
        ]

    def sources(self, triplet_ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        sql = f"SELECT triplet_id, item_id FROM triplet_sources WHERE triplet_id = ANY(%s) ORDER BY triplet_id {C}, item_id {C}"  # fmt: skip
        for tid, item_id in self._read(sql, (self._ids(triplet_ids),)):
            out.setdefault(tid, []).append(item_id)
        return out

    def mentions(
        self, *, entity_ids: Sequence[str] | None = None, item_ids: Sequence[str] | None = None
    ) -> list[MentionRow]:
        if entity_ids is not None:
            sql = f"SELECT {_MENTION_COLS} FROM mentions WHERE entity_id = ANY(%s) ORDER BY entity_id {C}, item_id {C}, start"  # fmt: skip
            rows = self._read(sql, (self._ids(entity_ids),))
        elif item_ids is not None:
            sql = f"SELECT {_MENTION_COLS} FROM mentions WHERE item_id = ANY(%s) ORDER BY item_id {C}, entity_id {C}, start"  # fmt: skip
            rows = self._read(sql, (self._ids(item_ids),))
        else:
            rows = self._read(f"SELECT {_MENTION_COLS} FROM mentions ORDER BY entity_id {C}, item_id {C}, start")
        return [MentionRow(*r) for r in rows]

    def contexts(self, entity_ids: Sequence[str], *, limit: int = 8) -> dict[str, list[str]]:
        """Each entity (with its merged members) -> up to ``limit`` distinct sentences mentioning it."""
        groups = self.members(entity_ids)
        owner = {m: root for root, ms in groups.items() for m in ms}
        out: dict[str, list[str]] = {e: [] for e in entity_ids}
        sql = f"SELECT entity_id, sentence FROM mentions WHERE entity_id = ANY(%s) ORDER BY entity_id {C}, item_id {C}, start"  # fmt: skip
        for eid, sentence in self._read(sql, (list(owner),)):
            bucket = out[owner[eid]]
            if sentence and sentence not in bucket and len(bucket) < limit:
                bucket.append(sentence)
        return out

    def items_with_links(self, item_ids: Sequence[str]) -> set[str]:
        """Those of ``item_ids`` that have a mention or a triplet source in the graph."""
        ids = self._ids(item_ids)
        rows = self._read(
            "SELECT item_id FROM mentions WHERE item_id = ANY(%s) UNION SELECT item_id FROM triplet_sources WHERE item_id = ANY(%s)",  # fmt: skip
            (ids, ids),
        )
        return {r[0] for r in rows}

    def items_of(self, entity_ids: Sequence[str]) -> dict[str, set[str]]:
        """Each entity (with its merged members) -> the items that mention it."""
        groups = self.members(entity_ids)
        owner = {m: root for root, ms in groups.items() for m in ms}
        out: dict[str, set[str]] = {e: set() for e in entity_ids}
        for eid, item_id in self._read("SELECT entity_id, item_id FROM mentions WHERE entity_id = ANY(%s)", (list(owner),)):  # fmt: skip
            out[owner[eid]].add(item_id)
        return out

    def mention_counts(self, entity_ids: Sequence[str]) -> dict[str, int]:
        """Entity id -> number of its own mentions."""
        sql = f"SELECT entity_id, count(*) FROM mentions WHERE entity_id = ANY(%s) GROUP BY entity_id ORDER BY entity_id {C}"  # fmt: skip
        return dict(self._read(sql, (self._ids(entity_ids),)))

    def neighbor_ids(self, entity_ids: Sequence[str], *, hops: int = 1) -> set[str]:
        """Root entity ids within ``hops`` triplet edges of ``entity_ids`` (in SQL, no full load)."""
        if hops < 0:
            raise ConfigError(f"hops must be >= 0, got {hops}")
        roots = self.roots_of(entity_ids)
        frontier = {roots.get(e, e) for e in entity_ids}
        seen = set(frontier)
        for _ in range(hops):
            expanded = [m for ms in self.members(list(frontier)).values() for m in ms]
            rows = self._read("SELECT head, tail FROM triplets WHERE head = ANY(%s) OR tail = ANY(%s)", (expanded, expanded))  # fmt: skip
            ends = {x for r in rows for x in r}
            roots = self.roots_of(list(ends))
            frontier = {roots.get(x, x) for x in ends} - seen
            seen |= frontier
            if not frontier:
                break
        return seen

    def counts(self) -> dict[str, int]:
        row = self._read(
            "SELECT (SELECT count(*) FROM entities WHERE merged_into IS NULL), (SELECT count(*) FROM triplets),"
            " (SELECT count(*) FROM mentions), (SELECT count(*) FROM relations),"
            " (SELECT count(*) FROM entity_merges WHERE undone_at IS NULL),"
            " (SELECT count(*) FROM entity_splits WHERE undone_at IS NULL)"
        )[0]  # one statement: one snapshot
        return dict(zip(("entities", "triplets", "mentions", "relations", "merges", "splits"), map(int, row)))

    def check_coverage(self) -> list[str]:
        """Ids of triplets that link to no source item (the coverage property holds when empty)."""
        sql = "SELECT id FROM triplets WHERE NOT EXISTS (SELECT 1 FROM triplet_sources s WHERE s.triplet_id = triplets.id) ORDER BY seq"  # fmt: skip
        return [r[0] for r in self._read(sql)]

    def stats(self) -> dict[str, Any]:
        """Root entities by type, and how many have a description."""
        return {
            "types": {
                t: int(n)
                for t, n in self._read(
                    f"SELECT type, count(*) FROM entities WHERE merged_into IS NULL GROUP BY type ORDER BY type {C}"
                )
            },  # fmt: skip
            "described": int(
                self._read("SELECT count(*) FROM entities WHERE merged_into IS NULL AND description IS NOT NULL")[0][0]
            ),  # fmt: skip
        }

    # -- facts over time (the semantic memory's reads and writes of triplet times) -------------
    def active_triplets(
        self, *, heads: Sequence[str] | None = None, relations: Sequence[str] | None = None, exclude: str | None = None
    ) -> list[tuple[str, str, str, str, str | None]]:
        """``(id, head, relation, tail, recorded_at)`` of triplets not retired, optionally only with one of
        ``heads`` and one of ``relations``, never ``exclude``."""
        clauses, params = ["retired_at IS NULL"], []
        for column, values in (("head", heads), ("relation", relations)):
            if values is not None:
                clauses.append(f"{column} = ANY(%s)")
                params.append(list(values))
        if exclude is not None:
            clauses.append("id != %s")
            params.append(exclude)
        sql = f"SELECT id, head, relation, tail, recorded_at FROM triplets WHERE {' AND '.join(clauses)} ORDER BY seq"
        return [tuple(r) for r in self._read(sql, params)]

    def head_of(self, triplet_id: str) -> str | None:
        """The head entity of a triplet (None: no such triplet)."""
        rows = self._read("SELECT head FROM triplets WHERE id = %s", (triplet_id,))
        return rows[0][0] if rows else None

    def retire(self, triplet_id: str, at: str, *, valid_to: str | None = None) -> bool:
        """Mark a triplet retired at ``at`` (it stopped being the memory's belief); ``valid_to``: when it
        stopped holding, if not already known. Returns whether it was active."""
        sql = "UPDATE triplets SET valid_to = COALESCE(valid_to, %s), retired_at = %s WHERE id = %s AND retired_at IS NULL"  # fmt: skip
        return bool(self.db.run(lambda conn: conn.execute(sql, (valid_to, at, triplet_id)).rowcount))

    def collapse(self, pairs: Sequence[tuple[str, str]]) -> int:
        """For each ``(keep, drop)``: ``drop``'s sources move to ``keep`` and ``drop`` goes (duplicate
        facts after entity merges). Returns triplets dropped."""
        pairs = list(pairs)

        def work(conn: Any) -> int:
            ids = sorted({x for pair in pairs for x in pair})
            conn.execute(f"SELECT 1 FROM triplets WHERE id = ANY(%s) ORDER BY id {C} FOR UPDATE", (ids,))
            dropped = 0
            for keep, drop in pairs:
                conn.execute(
                    "INSERT INTO triplet_sources (triplet_id, item_id, sentence) SELECT %s, item_id, sentence"
                    f" FROM triplet_sources WHERE triplet_id = %s ORDER BY item_id {C} ON CONFLICT DO NOTHING",
                    (keep, drop),
                )
                conn.execute("DELETE FROM triplet_sources WHERE triplet_id = %s", (drop,))
                dropped += conn.execute("DELETE FROM triplets WHERE id = %s", (drop,)).rowcount
            return dropped

        return self.db.run(work)

    # -- entity resolution ---------------------------------------------------------------------
    def merge(self, kept: str, merged: str, *, reason: str, scores: dict[str, float] | None = None) -> Merge:
        """Resolve ``merged`` to ``kept`` (logged, reversible with :meth:`unmerge`).

        Both roots are locked (in id order) and both ends resolved again under the lock, until the
        locked rows are the roots: a concurrent merge is followed, never undone or made a cycle.
        """
        now = utc_now()
        payload = json.dumps(scores or {}, sort_keys=True)

        def work(conn: Any) -> Merge:
            roots = lock_roots(conn, [kept, merged])  # still the roots: nobody changes them until we commit
            root, merged_root = roots.get(kept, kept), roots.get(merged, merged)
            if root == merged_root:
                raise ConfigError(f"{merged} already resolves to {root}; nothing to merge")
            for eid in (kept, merged):
                if eid not in roots:
                    raise NotFound(f"no entity with id {eid!r}")
            conn.execute("UPDATE entities SET merged_into = %s WHERE id = %s", (root, merged_root))
            conn.execute("UPDATE entities SET root = %s WHERE root = %s", (root, merged_root))  # its whole group
            (row_id,) = conn.execute(
                "INSERT INTO entity_merges (kept, merged, reason, scores, created_at) VALUES (%s, %s, %s, %s, %s) RETURNING id",  # fmt: skip
                (root, merged_root, reason, payload, now),
            ).fetchone()
            return Merge(int(row_id), root, merged_root, reason, dict(scores or {}), now)

        result = self.db.run(work)
        log.debug("merged entity %s into %s (%s)", result.merged, result.kept, reason)
        return result

    def unmerge(self, merged: str) -> None:
        """Undo the merge of ``merged``: it is its own entity again (its own members follow it)."""

        def work(conn: Any) -> None:
            root = lock_roots(conn, [merged]).get(merged)  # it and the root it leaves
            row = conn.execute("SELECT merged_into FROM entities WHERE id = %s", (merged,)).fetchone()
            if root is None or row[0] is None:
                raise NotFound(f"entity {merged!r} is not merged into another; see merges() for the log")
            conn.execute("UPDATE entities SET merged_into = NULL WHERE id = %s", (merged,))
            reroot(conn, [root])  # it and the entities resolving through it leave that root
            conn.execute(
                "UPDATE entity_merges SET undone_at = %s WHERE merged = %s AND undone_at IS NULL", (utc_now(), merged)
            )

        self.db.run(work)

    def merges(self, *, include_undone: bool = False) -> list[Merge]:
        where = "" if include_undone else " WHERE undone_at IS NULL"
        rows = self._read(f"SELECT id, kept, merged, reason, scores, created_at, undone_at FROM entity_merges{where} ORDER BY id")  # fmt: skip
        return [Merge(int(r[0]), r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]

    # -- senses: one name and type, two referents ------------------------------------------------
    def split(
        self, entity: str, item_ids: Sequence[str], *, reason: str, scores: dict[str, float] | None = None
    ) -> Split:
        """Move ``entity``'s own mentions in ``item_ids``, and its triplets sourced there, to a new entity
        (a *sense*), in one transaction; see :meth:`SQLiteGraphStore.split`. Undo with :meth:`unsplit`."""
        now = utc_now()
        scores = dict(scores or {})
        items = set(item_ids)

        def work(conn: Any) -> Split:
            row = conn.execute("SELECT name, key, type FROM entities WHERE id = %s FOR UPDATE", (entity,)).fetchone()
            if row is None:
                raise NotFound(f"no entity with id {entity!r}")
            (n,) = conn.execute("SELECT count(*) FROM entity_splits WHERE entity = %s", (entity,)).fetchone()
            sense = sense_id(entity, n + 1)
            conn.execute(  # its own root; the same name, so the same name embedding
                "INSERT INTO entities (id, name, key, type, aliases, embedding, created_at, root)"
                " SELECT %s, name, key, type, '[]', embedding, %s, %s FROM entities WHERE id = %s",
                (sense, now, sense, entity),
            )
            if not move_entity_rows(conn, entity, sense, items):
                raise ConfigError(
                    f"entity {entity} has no mention in the {len(item_ids)} item(s) given; nothing to split"
                )
            (row_id,) = conn.execute(
                "INSERT INTO entity_splits (entity, sense, reason, scores, created_at) VALUES (%s, %s, %s, %s, %s) RETURNING id",  # fmt: skip
                (entity, sense, reason, json.dumps(scores, sort_keys=True), now),
            ).fetchone()
            return Split(int(row_id), entity, sense, reason, scores, now)

        result = self.db.run(work)
        log.debug("split entity %s: sense %s (%s)", entity, result.sense, reason)
        return result

    def unsplit(self, sense: str) -> None:
        """Undo the split that made ``sense``: its mentions and triplets go back to the entity it was split
        from, and ``sense`` resolves to that entity (a merge-log row "undo split")."""
        now = utc_now()

        def work(conn: Any) -> None:
            sql = "SELECT id, entity FROM entity_splits WHERE sense = %s AND undone_at IS NULL ORDER BY id"
            row = conn.execute(sql, (sense,)).fetchone()
            roots: dict[str, str] = {}
            if row is not None:  # entities first, then the log row: the order write() and the delete lock in
                roots = lock_roots(conn, [row[1], sense])  # with the roots the sense leaves and joins
                row = conn.execute(sql + " FOR UPDATE", (sense,)).fetchone()
            if row is None:
                raise NotFound(f"{sense!r} is not the sense of an active split; see splits() for the log")
            split, entity = row
            move_entity_rows(conn, sense, entity, None)
            conn.execute("UPDATE entities SET merged_into = %s WHERE id = %s", (entity, sense))
            reroot(conn, [roots.get(sense, sense)])  # the sense and what resolved to it now resolve to the entity
            conn.execute(
                "INSERT INTO entity_merges (kept, merged, reason, scores, created_at) VALUES (%s, %s, 'undo split', '{}', %s)",  # fmt: skip
                (entity, sense, now),
            )
            conn.execute("UPDATE entity_splits SET undone_at = %s WHERE id = %s", (now, split))

        self.db.run(work)

    def splits(self, *, include_undone: bool = False) -> list[Split]:
        where = "" if include_undone else " WHERE undone_at IS NULL"
        rows = self._read(f"SELECT id, entity, sense, reason, scores, created_at, undone_at FROM entity_splits{where} ORDER BY id")  # fmt: skip
        return [Split(int(r[0]), r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]

    def senses(self) -> dict[str, list[str]]:
        """Each entity with active splits -> itself and its senses (the ids a new mention may go to)."""
        out: dict[str, list[str]] = {}
        for entity, sense in self._read("SELECT entity, sense FROM entity_splits WHERE undone_at IS NULL ORDER BY id"):
            out.setdefault(entity, [entity]).append(sense)
        return out

    # -- privacy delete ------------------------------------------------------------------------
    def orphan_items(self) -> list[str]:
        """Ids of items the graph still links to (mentions, triplet sources) that are no longer stored."""
        rows = self._read(
            "SELECT item_id FROM mentions WHERE item_id NOT IN (SELECT id FROM items)"
            " UNION SELECT item_id FROM triplet_sources WHERE item_id NOT IN (SELECT id FROM items)"
        )
        return sorted(r[0] for r in rows)

    def delete_item_links(self, item_ids: Sequence[str]) -> dict[str, int]:
        """Remove the mentions and triplet sources of deleted items, and what is left without evidence
        (:meth:`SQLiteGraphStore.delete_item_links`'s semantics). Returns counts of deleted rows."""
        ids = self._ids(item_ids)
        return self.db.run(lambda conn: delete_links(conn, ids))
