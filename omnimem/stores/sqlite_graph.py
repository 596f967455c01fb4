"""The M3KG schema in SQLite, in the same database file as the record store.

M3KG-RAG (arXiv 2512.20136), section "M3KG construction", result: G = {entities, relations,
triplets, entity descriptions, items, links}. Tables (created with ``IF NOT EXISTS``; this component's
version is a row of ``schema_versions``):

- ``entities``: id, canonical name, key, type, aliases (JSON: the surfaces of its own mentions),
  description, embedding (float32 blob, optional: the name's, for query linking), ``merged_into``
  (entity resolution: a pointer, so :meth:`GraphStore.unmerge` only clears it) and ``root`` (where
  the pointers lead now, kept by the transaction that moves one; see :mod:`omnimem.stores.graph_schema`);
- ``relations``: relation phrases;
- ``triplets``: id (content hash of head id, relation, tail id), head, relation, tail, sentence,
  confidence, bi-temporal times (valid_from / valid_to, recorded_at / retired_at);
- ``triplet_sources``: triplet -> item id (+ the sentence it was read from in that item);
- ``mentions``: entity -> item id, surface, character span, sentence;
- ``entity_merges``: the merge log (kept id, merged id, reason, scores, undone_at);
- ``entity_splits``: the split log (entity id, sense id, reason, scores, undone_at): one name and type,
  two referents ("Jordan" the player / "Jordan" the neighbour), see :mod:`omnimem.graph.senses`.

**Coverage property**: every triplet links to at least one source item. :meth:`GraphStore.write`
refuses a triplet without sources, :meth:`GraphStore.check_coverage` lists violations, and
:meth:`GraphStore.delete_item_links` removes a deleted item's mentions and sources and every
triplet, relation and entity left without evidence, so a privacy delete leaves no trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from omnimem.errors import ConfigError, NotFound
from omnimem.stores.graph_schema import (
    GRAPH_SCHEMA_VERSION,
    SCHEMA_SQL,
    EntityRow,
    MentionRow,
    Merge,
    Split,
    TripletRow,
    entity_id,
    entity_node,
    entity_rows,
    item_node,
    sense_id,
    triplet_id,
)
from omnimem.stores.sqlite_moves import chunks as _chunks
from omnimem.stores.sqlite_moves import delete_links, migrate_roots, move_entity_rows, reroot
from omnimem.stores.sqlite_moves import marks as _marks
from omnimem.types import concept_key, utc_now

if TYPE_CHECKING:
    from omnimem.stores.sqlite import SQLiteRecordStore

__all__ = [
    "SQLiteGraphStore",
    "entity_id",
    "triplet_id",
    "entity_node",
    "item_node",
    "EntityRow",
    "MentionRow",
    "TripletRow",
    "Merge",
    "Split",
    "GRAPH_SCHEMA_VERSION",
]

log = logging.getLogger(__name__)

_COMPONENT = "graph"


class SQLiteGraphStore:
    """A :class:`~omnimem.stores.base.GraphStore`: the M3KG tables inside a
    :class:`~omnimem.stores.sqlite.SQLiteRecordStore`'s database (``store``, whose transactions it joins)."""

    def __init__(self, store: SQLiteRecordStore) -> None:
        self.store = store
        if self._version() == GRAPH_SCHEMA_VERSION:
            return  # a current schema is only read: opening a memory never takes the write lock
        with store.transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = conn.execute("SELECT version FROM schema_versions WHERE component = ?", (_COMPONENT,)).fetchone()
            if row is not None and row[0] > GRAPH_SCHEMA_VERSION:
                raise ConfigError(
                    f"{store.path} has graph schema version {row[0]}, newer than this omnimem"
                    f" ({GRAPH_SCHEMA_VERSION}); upgrade omnimem to open it"
                )
            for statement in SCHEMA_SQL.split(";"):
                if statement.strip():
                    conn.execute(statement)
            migrate_roots(conn)  # version 3: entities.root, computed for older rows
            conn.execute(
                "INSERT OR REPLACE INTO schema_versions (component, version) VALUES (?, ?)",
                (_COMPONENT, GRAPH_SCHEMA_VERSION),
            )

    def _version(self) -> int | None:
        """This component's schema version in the database (None before it was created)."""
        if not self._read("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_versions'"):
            return None
        rows = self._read("SELECT version FROM schema_versions WHERE component = ?", (_COMPONENT,))
        return rows[0][0] if rows else None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.store.read(sql, params)

    def _read_in(self, sql: str, ids: Sequence[str], params: Sequence[Any] = ()) -> list[tuple]:
        """``sql`` with one ``{in}`` placeholder, run over chunks of ``ids``."""
        rows: list[tuple] = []
        for chunk in _chunks(ids):
            rows += self._read(sql.format(in_=_marks(chunk)), (*params, *chunk))
        return rows

    # -- writes --------------------------------------------------------------------------------
    def write(
        self,
        entities: Sequence[EntityRow] = (),
        mentions: Sequence[MentionRow] = (),
        triplets: Sequence[TripletRow] = (),
    ) -> dict[str, int]:
        """Upsert entities, mentions and triplets (with their sources) in one transaction.

        Idempotent: writing the same rows twice changes nothing. Raises :class:`ConfigError` for a
        triplet without sources (the coverage property) or one whose head/tail entity is unknown.
        Returns counts of new rows: ``{"entities", "mentions", "triplets", "sources"}``.
        """
        for t in triplets:
            if not t.sources:
                raise ConfigError(f"triplet {t.id} ({t.relation!r}) has no source item; every triplet needs one")
        now = utc_now()
        counts = {"entities": 0, "mentions": 0, "triplets": 0, "sources": 0}
        merged_aliases: dict[str, EntityRow] = {}
        for e in entities:
            if not e.name or not e.type:
                raise ConfigError(f"entity {e.id} needs a name and a type")
            old = merged_aliases.get(e.id)
            merged_aliases[e.id] = e if old is None else EntityRow(old.id, old.name, old.type, old.aliases + e.aliases, old.description or e.description)  # fmt: skip
        with self.store.transaction() as conn:
            existing = {}
            for chunk in _chunks(list(merged_aliases)):
                existing.update(
                    conn.execute(f"SELECT id, aliases FROM entities WHERE id IN ({_marks(chunk)})", chunk).fetchall()
                )
            for e in merged_aliases.values():
                if e.id in existing:
                    old = json.loads(existing[e.id])
                    new = list(dict.fromkeys(old + list(e.aliases)))
                    if new != old:
                        conn.execute(
                            "UPDATE entities SET aliases = ? WHERE id = ?", (json.dumps(new, ensure_ascii=False), e.id)
                        )
                    if e.description:
                        conn.execute(
                            "UPDATE entities SET description = ? WHERE id = ? AND description IS NULL",
                            (e.description, e.id),
                        )
                else:
                    conn.execute(
                        "INSERT INTO entities (id, name, key, type, aliases, description, created_at, root) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (e.id, e.name, concept_key(e.name), e.type, json.dumps(list(dict.fromkeys(e.aliases)), ensure_ascii=False), e.description, now, e.id),
                    )  # fmt: skip
                    counts["entities"] += 1
            for m in mentions:
                counts["mentions"] += conn.execute(
                    'INSERT OR IGNORE INTO mentions (entity_id, item_id, surface, start, "end", sentence) VALUES (?, ?, ?, ?, ?, ?)',
                    (m.entity_id, m.item_id, m.surface, int(m.start), int(m.end), m.sentence),
                ).rowcount
            ends = {x for t in triplets for x in (t.head, t.tail)} | {m.entity_id for m in mentions}
            ends -= set(existing) | set(merged_aliases)
            for chunk in _chunks(list(ends)):
                ends -= {r[0] for r in conn.execute(f"SELECT id FROM entities WHERE id IN ({_marks(chunk)})", chunk)}
            if ends:
                raise ConfigError(f"triplets or mentions refer to unknown entities {sorted(ends)[:3]}; write the entities first or in the same call")  # fmt: skip
            for t in triplets:
                conn.execute("INSERT OR IGNORE INTO relations (name) VALUES (?)", (t.relation,))
                added = conn.execute(
                    "INSERT OR IGNORE INTO triplets (id, head, relation, tail, sentence, confidence, valid_from, valid_to,"
                    " recorded_at, retired_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (t.id, t.head, t.relation, t.tail, t.sentence, float(t.confidence), t.valid_from, t.valid_to, t.recorded_at or now, t.retired_at),
                ).rowcount  # fmt: skip
                counts["triplets"] += added
                if not added:
                    conn.execute("UPDATE triplets SET confidence = ? WHERE id = ? AND confidence < ?", (t.confidence, t.id, t.confidence))  # fmt: skip
                for item_id in t.sources:
                    counts["sources"] += conn.execute(
                        "INSERT OR IGNORE INTO triplet_sources (triplet_id, item_id, sentence) VALUES (?, ?, ?)",
                        (t.id, item_id, t.sentence),
                    ).rowcount
        return counts

    def set_embedding(self, entity_ids: Sequence[str], vectors: np.ndarray) -> None:
        """Store float32 ``(n, d)`` embeddings of entities (e.g. of their names, for resolution)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(entity_ids):
            raise ConfigError(f"vectors must have shape ({len(entity_ids)}, d), got {vectors.shape}")
        with self.store.transaction() as conn:
            for eid, vec in zip(entity_ids, vectors):
                conn.execute("UPDATE entities SET embedding = ? WHERE id = ?", (vec.tobytes(), eid))

    def set_descriptions(self, descriptions: Mapping[str, str], *, overwrite: bool = False) -> int:
        """Write entity descriptions (M3KG step 3); keeps an existing one unless ``overwrite``. Returns rows set."""
        sql = "UPDATE entities SET description = ? WHERE id = ?" + ("" if overwrite else " AND description IS NULL")
        with self.store.transaction() as conn:
            return sum(conn.execute(sql, (text, eid)).rowcount for eid, text in descriptions.items() if text)

    # -- reads ---------------------------------------------------------------------------------
    def roots(self) -> dict[str, str]:
        """Merged entity id -> the entity it resolves to now (every merged entity: for jobs and export)."""
        return dict(self._read("SELECT id, root FROM entities WHERE merged_into IS NOT NULL ORDER BY rowid"))

    def roots_of(self, entity_ids: Sequence[str]) -> dict[str, str]:
        """Each stored id of ``entity_ids`` -> the entity it resolves to now (itself when not merged)."""
        return dict(self._read_in("SELECT id, root FROM entities WHERE id IN ({in_})", entity_ids))

    def canonical(self, entity_id: str) -> str:
        return self.roots_of([entity_id]).get(entity_id, entity_id)

    def members(self, entity_ids: Sequence[str]) -> dict[str, list[str]]:
        """Each root id -> itself plus the ids merged into it."""
        out = {e: [e] for e in entity_ids}
        sql = "SELECT root, id FROM entities WHERE root IN ({in_}) AND id != root ORDER BY rowid"
        for root, eid in self._read_in(sql, list(out)):
            out[root].append(eid)
        return out

    def entities(self, ids: Sequence[str] | None = None, *, include_merged: bool = False) -> list[EntityRow]:
        """Entity rows (roots only unless ``include_merged``); a root's aliases include its members'."""
        cols = "id, name, type, aliases, description, merged_into, root"
        if ids is None:
            rows = self._read(f"SELECT {cols} FROM entities ORDER BY rowid")
            members = self._read("SELECT root, aliases FROM entities WHERE merged_into IS NOT NULL ORDER BY rowid")
        else:
            rows = self._read_in(f"SELECT {cols} FROM entities WHERE id IN ({{in_}})", ids)
            sql = "SELECT root, aliases FROM entities WHERE root IN ({in_}) AND id != root ORDER BY rowid"
            members = self._read_in(sql, [r[0] for r in rows if r[5] is None])
        return entity_rows(rows, members, include_merged=include_merged)

    def get_entity(self, entity_id: str) -> EntityRow:
        rows = self.entities([entity_id], include_merged=True)
        if not rows:
            raise NotFound(f"no entity with id {entity_id!r}; look ids up with find_entities(name)")
        return rows[0]

    def find_entities(self, name: str) -> list[EntityRow]:
        """Roots of the entities whose key equals ``name``'s (any type)."""
        rows = self._read("SELECT root FROM entities WHERE key = ? ORDER BY rowid", (concept_key(name),))
        roots = [r[0] for r in rows]
        return self.entities(list(dict.fromkeys(roots)))

    def embeddings(self, entity_ids: Sequence[str]) -> dict[str, np.ndarray]:
        rows = self._read_in(
            "SELECT id, embedding FROM entities WHERE embedding IS NOT NULL AND id IN ({in_})", entity_ids
        )
        return {eid: np.frombuffer(blob, dtype=np.float32).copy() for eid, blob in rows}

    def triplets(
        self, *, entity_ids: Sequence[str] | None = None, item_ids: Sequence[str] | None = None
    ) -> list[TripletRow]:
        """Triplets touching ``entity_ids`` (head or tail), or read from ``item_ids``, or all; with sources."""
        cols = "id, head, relation, tail, sentence, confidence, valid_from, valid_to, recorded_at, retired_at"
        if entity_ids is not None:
            ids = list(entity_ids)
            rows = self._read_in(f"SELECT {cols} FROM triplets WHERE head IN ({{in_}})", ids)
            rows += self._read_in(f"SELECT {cols} FROM triplets WHERE tail IN ({{in_}})", ids)
        elif item_ids is not None:
            tids = [
                r[0] for r in self._read_in("SELECT triplet_id FROM triplet_sources WHERE item_id IN ({in_})", item_ids)
            ]
            rows = self._read_in(f"SELECT {cols} FROM triplets WHERE id IN ({{in_}})", tids)
        else:
            rows = self._read(f"SELECT {cols} FROM triplets ORDER BY rowid")
        rows = list({r[0]: r for r in rows}.values())
        sources = self.sources([r[0] for r in rows])
        return [
            TripletRow(r[0], r[1], r[2], r[3], r[4], r[5], tuple(sources.get(r[0], ())), r[6], r[7], r[8], r[9])
            for r in rows
        ]

    def sources(self, triplet_ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for tid, item_id in self._read_in("SELECT triplet_id, item_id FROM triplet_sources WHERE triplet_id IN ({in_})", triplet_ids):  # fmt: skip
            out.setdefault(tid, []).append(item_id)
        return out

    def mentions(
        self, *, entity_ids: Sequence[str] | None = None, item_ids: Sequence[str] | None = None
    ) -> list[MentionRow]:
        cols = 'entity_id, item_id, surface, start, "end", sentence'
        if entity_ids is not None:
            rows = self._read_in(f"SELECT {cols} FROM mentions WHERE entity_id IN ({{in_}})", entity_ids)
        elif item_ids is not None:
            rows = self._read_in(f"SELECT {cols} FROM mentions WHERE item_id IN ({{in_}})", item_ids)
        else:
            rows = self._read(f"SELECT {cols} FROM mentions")
        return [MentionRow(*r) for r in rows]

    def contexts(self, entity_ids: Sequence[str], *, limit: int = 8) -> dict[str, list[str]]:
        """Each entity (with its merged members) -> up to ``limit`` distinct sentences mentioning it."""
        groups = self.members(entity_ids)
        owner = {m: root for root, ms in groups.items() for m in ms}
        out: dict[str, list[str]] = {e: [] for e in entity_ids}
        for eid, sentence in self._read_in("SELECT entity_id, sentence FROM mentions WHERE entity_id IN ({in_})", list(owner)):  # fmt: skip
            bucket = out[owner[eid]]
            if sentence and sentence not in bucket and len(bucket) < limit:
                bucket.append(sentence)
        return out

    def items_with_links(self, item_ids: Sequence[str]) -> set[str]:
        """Those of ``item_ids`` that have a mention or a triplet source in the graph."""
        found = {
            r[0] for r in self._read_in("SELECT DISTINCT item_id FROM mentions WHERE item_id IN ({in_})", item_ids)
        }
        found |= {r[0] for r in self._read_in("SELECT DISTINCT item_id FROM triplet_sources WHERE item_id IN ({in_})", item_ids)}  # fmt: skip
        return found

    def items_of(self, entity_ids: Sequence[str]) -> dict[str, set[str]]:
        """Each entity (with its merged members) -> the items that mention it."""
        groups = self.members(entity_ids)
        owner = {m: root for root, ms in groups.items() for m in ms}
        out: dict[str, set[str]] = {e: set() for e in entity_ids}
        for eid, item_id in self._read_in("SELECT entity_id, item_id FROM mentions WHERE entity_id IN ({in_})", list(owner)):  # fmt: skip
            out[owner[eid]].add(item_id)
        return out

    def mention_counts(self, entity_ids: Sequence[str]) -> dict[str, int]:
        """Entity id -> number of its own mentions."""
        sql = "SELECT entity_id, count(*) FROM mentions WHERE entity_id IN ({in_}) GROUP BY entity_id"
        return dict(self._read_in(sql, entity_ids))

    def neighbor_ids(self, entity_ids: Sequence[str], *, hops: int = 1) -> set[str]:
        """Root entity ids within ``hops`` triplet edges of ``entity_ids`` (in SQL, no full load)."""
        if hops < 0:
            raise ConfigError(f"hops must be >= 0, got {hops}")
        roots = self.roots_of(entity_ids)
        frontier = {roots.get(e, e) for e in entity_ids}
        seen = set(frontier)
        for _ in range(hops):
            expanded = [m for ms in self.members(list(frontier)).values() for m in ms]
            rows = self._read_in("SELECT head, tail FROM triplets WHERE head IN ({in_})", expanded)
            rows += self._read_in("SELECT head, tail FROM triplets WHERE tail IN ({in_})", expanded)
            ends = {x for r in rows for x in r}
            roots = self.roots_of(list(ends))
            frontier = {roots.get(x, x) for x in ends} - seen
            seen |= frontier
            if not frontier:
                break
        return seen

    def counts(self) -> dict[str, int]:
        one = lambda sql: self._read(sql)[0][0]
        return {
            "entities": one("SELECT count(*) FROM entities WHERE merged_into IS NULL"),
            "triplets": one("SELECT count(*) FROM triplets"),
            "mentions": one("SELECT count(*) FROM mentions"),
            "relations": one("SELECT count(*) FROM relations"),
            "merges": one("SELECT count(*) FROM entity_merges WHERE undone_at IS NULL"),
            "splits": one("SELECT count(*) FROM entity_splits WHERE undone_at IS NULL"),
        }

    def check_coverage(self) -> list[str]:
        """Ids of triplets that link to no source item (the coverage property holds when empty)."""
        sql = "SELECT id FROM triplets WHERE NOT EXISTS (SELECT 1 FROM triplet_sources s WHERE s.triplet_id = triplets.id)"
        return [r[0] for r in self._read(sql)]

    def stats(self) -> dict[str, Any]:
        """Root entities by type, and how many have a description."""
        return {
            "types": dict(self._read("SELECT type, count(*) FROM entities WHERE merged_into IS NULL GROUP BY type")),
            "described": self._read(
                "SELECT count(*) FROM entities WHERE merged_into IS NULL AND description IS NOT NULL"
            )[0][0],
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
                clauses.append(f"{column} IN ({_marks(values) or 'NULL'})")
                params += list(values)
        if exclude is not None:
            clauses.append("id != ?")
            params.append(exclude)
        sql = f"SELECT id, head, relation, tail, recorded_at FROM triplets WHERE {' AND '.join(clauses)} ORDER BY rowid"
        return [tuple(r) for r in self._read(sql, params)]

    def head_of(self, triplet_id: str) -> str | None:
        """The head entity of a triplet (None: no such triplet)."""
        rows = self._read("SELECT head FROM triplets WHERE id = ?", (triplet_id,))
        return rows[0][0] if rows else None

    def retire(self, triplet_id: str, at: str, *, valid_to: str | None = None) -> bool:
        """Retire a fact at ``at`` (it stays as history); ``valid_to``: when it stopped holding, if not
        already known. Returns whether it was active."""
        with self.store.transaction() as conn:
            return bool(
                conn.execute(
                    "UPDATE triplets SET valid_to = COALESCE(valid_to, ?), retired_at = ? WHERE id = ? AND retired_at IS NULL",
                    (valid_to, at, triplet_id),
                ).rowcount
            )

    def collapse(self, pairs: Sequence[tuple[str, str]]) -> int:
        """For each ``(keep, drop)``: ``drop``'s sources move to ``keep`` and ``drop`` goes (duplicate
        facts after entity merges). Returns triplets dropped."""
        dropped = 0
        with self.store.transaction() as conn:
            for keep, drop in pairs:
                conn.execute(
                    "INSERT OR IGNORE INTO triplet_sources (triplet_id, item_id, sentence)"
                    " SELECT ?, item_id, sentence FROM triplet_sources WHERE triplet_id = ?",
                    (keep, drop),
                )
                conn.execute("DELETE FROM triplet_sources WHERE triplet_id = ?", (drop,))
                dropped += conn.execute("DELETE FROM triplets WHERE id = ?", (drop,)).rowcount
        return dropped

    # -- entity resolution ---------------------------------------------------------------------
    def merge(self, kept: str, merged: str, *, reason: str, scores: dict[str, float] | None = None) -> Merge:
        """Resolve ``merged`` to ``kept`` (logged, reversible with :meth:`unmerge`)."""
        now = utc_now()
        with self.store.transaction() as conn:  # roots read under the write lock: no merge lost to a race
            found = dict(conn.execute("SELECT id, root FROM entities WHERE id IN (?, ?)", (kept, merged)).fetchall())
            root, merged_root = found.get(kept, kept), found.get(merged, merged)
            if root == merged_root:
                raise ConfigError(f"{merged} already resolves to {root}; nothing to merge")
            for eid in (kept, merged):
                if eid not in found:
                    raise NotFound(f"no entity with id {eid!r}")
            kept = root
            conn.execute("UPDATE entities SET merged_into = ? WHERE id = ?", (kept, merged_root))
            conn.execute("UPDATE entities SET root = ? WHERE root = ?", (kept, merged_root))  # its whole group
            cursor = conn.execute(
                "INSERT INTO entity_merges (kept, merged, reason, scores, created_at) VALUES (?, ?, ?, ?, ?)",
                (kept, merged_root, reason, json.dumps(scores or {}, sort_keys=True), now),
            )
        log.debug("merged entity %s into %s (%s)", merged_root, kept, reason)
        return Merge(int(cursor.lastrowid), kept, merged_root, reason, dict(scores or {}), now)

    def unmerge(self, merged: str) -> None:
        """Undo the merge of ``merged``: it is its own entity again (its own members follow it)."""
        with self.store.transaction() as conn:
            row = conn.execute("SELECT merged_into, root FROM entities WHERE id = ?", (merged,)).fetchone()
            if row is None or row[0] is None:
                raise NotFound(f"entity {merged!r} is not merged into another; see merges() for the log")
            conn.execute("UPDATE entities SET merged_into = NULL WHERE id = ?", (merged,))
            reroot(conn, [row[1]])  # it and the entities resolving through it leave its old root
            conn.execute(
                "UPDATE entity_merges SET undone_at = ? WHERE merged = ? AND undone_at IS NULL", (utc_now(), merged)
            )

    def merges(self, *, include_undone: bool = False) -> list[Merge]:
        where = "" if include_undone else " WHERE undone_at IS NULL"
        rows = self._read(f"SELECT id, kept, merged, reason, scores, created_at, undone_at FROM entity_merges{where} ORDER BY id")  # fmt: skip
        return [Merge(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]

    # -- senses: one name and type, two referents ------------------------------------------------
    def split(
        self, entity: str, item_ids: Sequence[str], *, reason: str, scores: dict[str, float] | None = None
    ) -> Split:
        """Move ``entity``'s own mentions in ``item_ids``, and its triplets sourced there, to a new entity.

        The new entity (a *sense*: same name, key and type, id :func:`sense_id`) is created, the rows
        are re-pointed (a triplet's id changes with its head or tail, so each moved source is written to
        the re-pointed triplet and removed from the old one, which goes when none is left: the coverage
        property holds) and the split is logged, all in one transaction. Undo with :meth:`unsplit`.
        """
        now = utc_now()
        with self.store.transaction() as conn:
            row = conn.execute("SELECT name, key, type FROM entities WHERE id = ?", (entity,)).fetchone()
            if row is None:
                raise NotFound(f"no entity with id {entity!r}")
            n = conn.execute("SELECT count(*) FROM entity_splits WHERE entity = ?", (entity,)).fetchone()[0]
            sense = sense_id(entity, n + 1)
            conn.execute(  # its own root; the same name, so the same name embedding
                "INSERT INTO entities (id, name, key, type, aliases, embedding, created_at, root)"
                " SELECT ?, name, key, type, '[]', embedding, ?, ? FROM entities WHERE id = ?",
                (sense, now, sense, entity),
            )
            if not move_entity_rows(conn, entity, sense, set(item_ids)):
                raise ConfigError(
                    f"entity {entity} has no mention in the {len(item_ids)} item(s) given; nothing to split"
                )
            scores = dict(scores or {})
            cursor = conn.execute(
                "INSERT INTO entity_splits (entity, sense, reason, scores, created_at) VALUES (?, ?, ?, ?, ?)",
                (entity, sense, reason, json.dumps(scores, sort_keys=True), now),
            )
        log.debug("split entity %s: sense %s (%s)", entity, sense, reason)
        return Split(int(cursor.lastrowid), entity, sense, reason, scores, now)

    def unsplit(self, sense: str) -> None:
        """Undo the split that made ``sense``: its mentions and triplets go back to the entity it was split
        from, and ``sense`` resolves to that entity (a merge-log row "undo split")."""
        now = utc_now()
        with self.store.transaction() as conn:
            row = conn.execute("SELECT id, entity FROM entity_splits WHERE sense = ? AND undone_at IS NULL", (sense,)).fetchone()  # fmt: skip
            if row is None:
                raise NotFound(f"{sense!r} is not the sense of an active split; see splits() for the log")
            split, entity = row
            move_entity_rows(conn, sense, entity, None)
            (old_root,) = conn.execute("SELECT root FROM entities WHERE id = ?", (sense,)).fetchone()
            conn.execute("UPDATE entities SET merged_into = ? WHERE id = ?", (entity, sense))
            reroot(conn, [old_root])  # the sense and what resolved to it now resolve to the entity
            conn.execute(
                "INSERT INTO entity_merges (kept, merged, reason, scores, created_at) VALUES (?, ?, 'undo split', '{}', ?)",
                (entity, sense, now),
            )
            conn.execute("UPDATE entity_splits SET undone_at = ? WHERE id = ?", (now, split))

    def splits(self, *, include_undone: bool = False) -> list[Split]:
        where = "" if include_undone else " WHERE undone_at IS NULL"
        rows = self._read(f"SELECT id, entity, sense, reason, scores, created_at, undone_at FROM entity_splits{where} ORDER BY id")  # fmt: skip
        return [Split(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]

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
        """Remove the mentions and triplet sources of deleted items, and what is left without evidence.

        A triplet with no source left is deleted; a surviving triplet whose sentence came from a
        deleted item takes a remaining source's sentence. An entity with no mention, no triplet and no
        member left is deleted with its merge-log rows; a surviving one's aliases are recomputed from
        its remaining mentions. Relations no triplet uses go too. Returns counts of deleted rows.
        """
        with self.store.transaction() as conn:
            return delete_links(conn, item_ids)
