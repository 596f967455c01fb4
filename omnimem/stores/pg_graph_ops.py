"""The M3KG in PostgreSQL, the work that touches many rows in one transaction: the schema, the
upserts of :meth:`PostgresGraphStore.write`, re-pointing an entity's rows (sense splits), keeping
entities' roots and the privacy delete's cascade.

Same tables and semantics as SQLite (:mod:`omnimem.stores.sqlite_graph`, :mod:`omnimem.stores.sqlite_moves`),
plus what several writing processes need:

- ``seq`` (BIGSERIAL) on ``entities`` and ``triplets`` orders reads where SQLite uses its rowid. A
  write draws the numbers of its new rows in the order it was given them, so insertion order is
  SQLite's even though rows are inserted in id order;
- rows are upserted, and shared rows locked, in id order (``COLLATE "C"``, SQLite's and Python's
  order), so two writers of overlapping rows queue instead of deadlocking (a deadlock left in a rarer
  interleaving is retried whole by :meth:`PgDatabase.run`);
- a write holds a key-share lock on every entity and relation it links to, and the cascade locks what
  it may delete and checks it again in a new statement (a new snapshot under READ COMMITTED), so a
  delete never removes an entity or relation a concurrent write is adding evidence to;
- an entity's ``root`` (:mod:`omnimem.stores.graph_schema`) changes only under a lock on the root it
  leaves and the one it joins: merge, unmerge and unsplit lock both, so two of them never rewrite one
  group at once.

Every function runs inside the caller's transaction (``conn``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from omnimem.errors import ConfigError, StorageError
from omnimem.stores.graph_schema import EntityRow, MentionRow, TripletRow, follow, regroup, triplet_id
from omnimem.types import concept_key

__all__ = [
    "migration_graph", "migration_roots", "upsert", "move_entity_rows", "delete_links", "lock_entities",
    "lock_roots", "reroot", "follow", "refuse_nul", "C",
]  # fmt: skip

C = 'COLLATE "C"'  # byte order: SQLite's BINARY collation and Python's str order, whatever the database's locale

_SCHEMA = """
CREATE TABLE entities (
    seq BIGSERIAL NOT NULL, id TEXT PRIMARY KEY, name TEXT NOT NULL, key TEXT NOT NULL, type TEXT NOT NULL,
    aliases TEXT NOT NULL DEFAULT '[]', description TEXT, embedding BYTEA, merged_into TEXT,
    created_at TEXT NOT NULL);
CREATE INDEX entities_key ON entities(key);
CREATE INDEX entities_merged_into ON entities(merged_into);
CREATE TABLE relations (name TEXT PRIMARY KEY);
CREATE TABLE triplets (
    seq BIGSERIAL NOT NULL, id TEXT PRIMARY KEY, head TEXT NOT NULL, relation TEXT NOT NULL, tail TEXT NOT NULL,
    sentence TEXT NOT NULL DEFAULT '', confidence DOUBLE PRECISION NOT NULL, valid_from TEXT, valid_to TEXT,
    recorded_at TEXT NOT NULL, retired_at TEXT);
CREATE INDEX triplets_head ON triplets(head);
CREATE INDEX triplets_tail ON triplets(tail);
CREATE TABLE triplet_sources (
    triplet_id TEXT NOT NULL, item_id TEXT NOT NULL, sentence TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (triplet_id, item_id));
CREATE INDEX triplet_sources_item ON triplet_sources(item_id);
CREATE TABLE mentions (
    entity_id TEXT NOT NULL, item_id TEXT NOT NULL, surface TEXT NOT NULL, start INTEGER NOT NULL,
    "end" INTEGER NOT NULL, sentence TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (entity_id, item_id, start));
CREATE INDEX mentions_item ON mentions(item_id);
CREATE TABLE entity_merges (
    id BIGSERIAL PRIMARY KEY, kept TEXT NOT NULL, merged TEXT NOT NULL, reason TEXT NOT NULL,
    scores TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL, undone_at TEXT);
CREATE INDEX entity_merges_merged ON entity_merges(merged);
CREATE TABLE entity_splits (
    id BIGSERIAL PRIMARY KEY, entity TEXT NOT NULL, sense TEXT NOT NULL, reason TEXT NOT NULL,
    scores TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL, undone_at TEXT);
CREATE INDEX entity_splits_entity ON entity_splits(entity);
"""

_TRIPLET_COLS = "id, head, relation, tail, sentence, confidence, valid_from, valid_to, recorded_at, retired_at"


def migration_graph(conn: Any) -> None:
    """Version 1: the tables of SQLite's graph schema version 2 (with the split log)."""
    for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
        conn.execute(statement)


# a row inserted without a root (a memory copied table by table, in any order) takes the root its pointer
# leads to, and the rows whose chain ended at it (not stored yet) take the same: roots() of the rows so far
_ROOT_TRIGGERS = (
    """CREATE FUNCTION entities_root_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.root := COALESCE((SELECT p.root FROM entities p WHERE p.id = NEW.merged_into), NEW.merged_into, NEW.id);
    RETURN NEW;
END $$""",
    """CREATE FUNCTION entities_root_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE entities SET root = NEW.root WHERE root = NEW.id AND id <> NEW.id;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER entities_root_before BEFORE INSERT ON entities FOR EACH ROW WHEN (NEW.root IS NULL)"
    " EXECUTE FUNCTION entities_root_before_insert()",
    "CREATE TRIGGER entities_root_after AFTER INSERT ON entities FOR EACH ROW WHEN (NEW.root IS DISTINCT FROM NEW.id)"
    " EXECUTE FUNCTION entities_root_after_insert()",
)


def migration_roots(conn: Any) -> None:
    """Version 2: ``entities.root`` (SQLite's graph schema version 3), computed for every row from the
    ``merged_into`` pointers, its index and the insert triggers."""
    conn.execute("ALTER TABLE entities ADD COLUMN root TEXT")
    conn.execute("UPDATE entities SET root = id WHERE merged_into IS NULL")
    roots = follow(dict(conn.execute("SELECT id, merged_into FROM entities WHERE merged_into IS NOT NULL").fetchall()))
    if roots:
        conn.execute(
            "UPDATE entities e SET root = u.root FROM unnest(%s::text[], %s::text[]) AS u(id, root) WHERE e.id = u.id",
            (list(roots), list(roots.values())),
        )
    conn.execute("CREATE INDEX entities_root ON entities(root)")
    for statement in _ROOT_TRIGGERS:
        conn.execute(statement)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _numbers(conn: Any, table: str, ids: Sequence[str]) -> list[int | None]:
    """``seq`` numbers for rows about to be inserted into ``table`` (``entities`` or ``triplets``),
    ascending in the order of ``ids``; None for an id already stored (an insert draws one if it is gone
    by then). Drawn without a lock: a row another writer adds meanwhile only wastes its number."""
    known = {r[0] for r in conn.execute(f"SELECT id FROM {table} WHERE id = ANY(%s)", (list(ids),))}
    fresh = [i for i in ids if i not in known]
    if not fresh:
        return [None] * len(ids)
    sql = f"SELECT nextval(pg_get_serial_sequence('{table}', 'seq')) FROM generate_series(1, %s)"
    drawn = dict(zip(fresh, sorted(r[0] for r in conn.execute(sql, (len(fresh),)))))  # one session's draws grow
    return [drawn.get(i) for i in ids]


def lock_entities(conn: Any, ids: Sequence[str], mode: str = "UPDATE") -> dict[str, tuple]:
    """Lock entity rows in id order (``FOR UPDATE`` / ``FOR KEY SHARE``); id -> (aliases, merged_into, root)
    of those that exist. Under READ COMMITTED a row deleted by the writer it waited for is left out."""
    sql = f"SELECT id, aliases, merged_into, root FROM entities WHERE id = ANY(%s) ORDER BY id {C} FOR {mode}"
    return {r[0]: r[1:] for r in conn.execute(sql, (sorted(set(ids)),))}


def lock_roots(conn: Any, ids: Sequence[str], attempts: int = 50) -> dict[str, str]:
    """Lock ``ids`` and the roots they resolve to (``FOR UPDATE``), reading the roots again under the
    locks until they are the ones locked (a root another writer merged meanwhile is followed); returns
    id -> root of those stored. Held until commit: whoever moves a group's roots holds its root's lock,
    so no merge, unmerge or unsplit changes these groups meanwhile."""
    held: set[str] = set()
    for _ in range(attempts):
        roots = dict(conn.execute("SELECT id, root FROM entities WHERE id = ANY(%s)", (list(ids),)).fetchall())
        want = set(ids) | set(roots.values())
        if not want - held:
            merged = conn.execute(
                "SELECT id FROM entities WHERE id = ANY(%s) AND merged_into IS NOT NULL", (sorted(set(roots.values())),)
            ).fetchall()
            if merged:  # a root still pointing on: only a cycle already in the table does that
                raise StorageError(f"entities {sorted(ids)[:2]} resolve through a merge cycle; unmerge one of its members (see merges())")  # fmt: skip
            return roots
        lock_entities(conn, sorted(want - held))
        held |= want  # then read again: a new statement sees what the writers waited for committed
    raise StorageError(f"the roots of {sorted(ids)[:2]} kept moving under concurrent merges; try again")


def reroot(conn: Any, old_roots: Sequence[str]) -> None:
    """Recompute the root of every entity that resolved to one of ``old_roots``, after pointers in their
    group moved (the caller holds the locks of those roots)."""
    group = dict(conn.execute("SELECT id, merged_into FROM entities WHERE root = ANY(%s)", (list(old_roots),)).fetchall())  # fmt: skip
    reached = sorted({p for p in group.values() if p is not None and p not in group})
    outside = dict(conn.execute("SELECT id, root FROM entities WHERE id = ANY(%s)", (reached,)).fetchall())
    new = sorted(regroup(group, outside).items())
    conn.execute(
        "UPDATE entities e SET root = u.root FROM unnest(%s::text[], %s::text[]) AS u(id, root)"
        " WHERE e.id = u.id AND e.root IS DISTINCT FROM u.root",
        ([e for e, _ in new], [r for _, r in new]),
    )


def _surfaces(conn: Any, entity: str) -> list[str]:
    """The distinct surfaces of an entity's own mentions, first seen first (SQLite's scan order)."""
    rows = conn.execute(f"SELECT surface FROM mentions WHERE entity_id = %s ORDER BY item_id {C}, start", (entity,))
    return list(dict.fromkeys(r[0] for r in rows))


def refuse_nul(*groups: Sequence[Any]) -> None:
    """PostgreSQL's text holds no NUL character: refuse such a row whole, before any is written."""
    for rows in groups:
        for row in rows:
            for name, value in row.__dict__.items():
                texts = value if isinstance(value, tuple) else (value,)
                if any(isinstance(t, str) and "\x00" in t for t in texts):
                    raise ConfigError(
                        f"{type(row).__name__} {name} {value!r} holds a NUL character (\\x00), which PostgreSQL"
                        " cannot store; remove it first (text.replace('\\x00', ''))"
                    )


# -- write ---------------------------------------------------------------------------------------
def upsert(
    conn: Any, entities: Sequence[EntityRow], mentions: Sequence[MentionRow], triplets: Sequence[TripletRow], now: str
) -> dict[str, int]:
    """The body of ``write``: ``entities`` are unique by id (aliases of repeats already merged)."""
    counts = {"entities": 0, "mentions": 0, "triplets": 0, "sources": 0}
    given = {e.id: e for e in entities}
    if entities:
        inserted = _insert_entities(conn, entities, now)
        counts["entities"] = len(inserted)
        sql = "SELECT id, aliases FROM entities WHERE id = ANY(%s)"  # rows the insert found and locked
        existing = dict(conn.execute(sql, ([i for i in given if i not in inserted],)).fetchall())
    else:
        existing = {}
    for eid in sorted(existing):
        e = given[eid]
        old = json.loads(existing[eid])
        aliases = list(dict.fromkeys(old + list(e.aliases)))
        if aliases != old:
            conn.execute("UPDATE entities SET aliases = %s WHERE id = %s", (_dumps(aliases), eid))
        if e.description:
            conn.execute(
                "UPDATE entities SET description = %s WHERE id = %s AND description IS NULL", (e.description, eid)
            )
    ends = {x for t in triplets for x in (t.head, t.tail)} | {m.entity_id for m in mentions}
    ends -= set(given)
    if ends:  # held until commit: a concurrent privacy delete cannot take them away meanwhile
        ends -= set(lock_entities(conn, list(ends), "KEY SHARE"))
    if ends:
        raise ConfigError(f"triplets or mentions refer to unknown entities {sorted(ends)[:3]}; write the entities first or in the same call")  # fmt: skip
    if mentions:
        rows = sorted(mentions, key=lambda m: (m.entity_id, m.item_id, int(m.start)))  # stable: the first repeat wins
        counts["mentions"] = conn.execute(
            'INSERT INTO mentions (entity_id, item_id, surface, start, "end", sentence)'
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::int[], %s::text[])"
            " ON CONFLICT DO NOTHING",
            ([m.entity_id for m in rows], [m.item_id for m in rows], [m.surface for m in rows],
             [int(m.start) for m in rows], [int(m.end) for m in rows], [m.sentence for m in rows]),
        ).rowcount  # fmt: skip
    if triplets:
        counts["triplets"], counts["sources"] = _upsert_triplets(conn, triplets, now)
    return counts


def _insert_entities(conn: Any, entities: Sequence[EntityRow], now: str) -> set[str]:
    """Insert the entities not stored yet and lock those that are, in one pass in id order; returns the
    ids inserted. New rows take ``seq`` numbers in the order given (SQLite's rowid order)."""
    seq = dict(zip((e.id for e in entities), _numbers(conn, "entities", [e.id for e in entities])))
    rows = sorted(entities, key=lambda e: e.id)
    return {r[0] for r in conn.execute(
        "INSERT INTO entities (seq, id, name, key, type, aliases, description, created_at, root)"
        " SELECT COALESCE(u.seq, nextval(pg_get_serial_sequence('entities', 'seq'))), u.id, u.name, u.key, u.type,"
        " u.aliases, u.description, u.created_at, u.id FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[],"
        " %s::text[], %s::text[], %s::text[], %s::text[]) AS u(seq, id, name, key, type, aliases, description, created_at)"
        # a stored row is locked, not changed (WHERE false): the aliases are merged below, under that lock
        " ON CONFLICT (id) DO UPDATE SET id = excluded.id WHERE false RETURNING id",
        ([seq.get(e.id) for e in rows], [e.id for e in rows], [e.name for e in rows],
         [concept_key(e.name) for e in rows], [e.type for e in rows],
         [_dumps(list(dict.fromkeys(e.aliases))) for e in rows], [e.description for e in rows], [now] * len(rows)),
    )}  # fmt: skip


def _upsert_triplets(conn: Any, triplets: Sequence[TripletRow], now: str) -> tuple[int, int]:
    """Insert triplets (a repeat only raises the confidence), their relations and sources; returns new
    (triplets, sources)."""
    relations = sorted({t.relation for t in triplets})
    conn.execute("INSERT INTO relations (name) SELECT * FROM unnest(%s::text[]) ON CONFLICT DO NOTHING", (relations,))
    conn.execute(f"SELECT 1 FROM relations WHERE name = ANY(%s) ORDER BY name {C} FOR KEY SHARE", (relations,))
    first: dict[str, TripletRow] = {}
    for t in triplets:  # SQLite inserts the first of repeated ids and raises its confidence with the others
        old = first.get(t.id)
        first[t.id] = t if old is None else replace(old, confidence=max(old.confidence, t.confidence))
    rows = sorted(zip(_numbers(conn, "triplets", list(first)), first.values()), key=lambda p: p[1].id)
    flags = conn.execute(
        f"INSERT INTO triplets (seq, {_TRIPLET_COLS}) SELECT COALESCE(u.seq, nextval(pg_get_serial_sequence('triplets',"
        f" 'seq'))), {', '.join('u.' + c for c in _TRIPLET_COLS.split(', '))} FROM unnest(%s::bigint[], %s::text[],"
        " %s::text[], %s::text[], %s::text[], %s::text[], %s::float8[], %s::text[], %s::text[], %s::text[], %s::text[])"
        f" AS u(seq, {_TRIPLET_COLS})"
        " ON CONFLICT (id) DO UPDATE SET confidence = excluded.confidence WHERE triplets.confidence < excluded.confidence"
        " RETURNING xmax = 0",  # locks a repeated triplet even when unchanged; xmax = 0: a new row
        ([s for s, _ in rows], [t.id for _, t in rows], [t.head for _, t in rows], [t.relation for _, t in rows],
         [t.tail for _, t in rows], [t.sentence for _, t in rows], [float(t.confidence) for _, t in rows],
         [t.valid_from for _, t in rows], [t.valid_to for _, t in rows], [t.recorded_at or now for _, t in rows],
         [t.retired_at for _, t in rows]),
    ).fetchall()  # fmt: skip
    sources = sorted(((t.id, i, t.sentence) for t in triplets for i in t.sources), key=lambda s: s[:2])
    added = conn.execute(
        "INSERT INTO triplet_sources (triplet_id, item_id, sentence)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) ON CONFLICT DO NOTHING",
        ([s[0] for s in sources], [s[1] for s in sources], [s[2] for s in sources]),
    ).rowcount
    return sum(1 for (new,) in flags if new), added


# -- senses --------------------------------------------------------------------------------------
def move_entity_rows(conn: Any, src: str, dst: str, items: set[str] | None) -> int:
    """Re-point ``src``'s own mentions in ``items`` (None: all) and its triplets' sources there to ``dst``
    (:func:`omnimem.stores.sqlite_moves.move_entity_rows`). Refreshes both entities' aliases; returns
    mentions moved."""
    moved = 0
    cols = 'item_id, surface, start, "end", sentence'
    rows = conn.execute(f"SELECT {cols} FROM mentions WHERE entity_id = %s ORDER BY item_id {C}, start", (src,)).fetchall()  # fmt: skip
    for item_id, surface, start, end, sentence in rows:
        if items is None or item_id in items:
            conn.execute(f"INSERT INTO mentions (entity_id, {cols}) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", (dst, item_id, surface, start, end, sentence))  # fmt: skip
            conn.execute(
                "DELETE FROM mentions WHERE entity_id = %s AND item_id = %s AND start = %s", (src, item_id, start)
            )
            moved += 1
    cols = "relation, confidence, valid_from, valid_to, recorded_at, retired_at"
    for tid, head, tail, sentence, relation, *rest in conn.execute(
        f"SELECT id, head, tail, sentence, {cols} FROM triplets WHERE head = %s OR tail = %s ORDER BY seq FOR UPDATE",
        (src, src),
    ).fetchall():
        sources = conn.execute(
            f"SELECT item_id, sentence FROM triplet_sources WHERE triplet_id = %s ORDER BY item_id {C}", (tid,)
        ).fetchall()
        go = [s for s in sources if items is None or s[0] in items]
        if not go:
            continue
        head, tail = (dst if head == src else head), (dst if tail == src else tail)
        new = triplet_id(head, relation, tail)
        conn.execute(
            f"INSERT INTO triplets (id, head, tail, sentence, {cols}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (new, head, tail, go[0][1] or sentence, relation, *rest),
        )
        for item_id, text in go:
            conn.execute("INSERT INTO triplet_sources (triplet_id, item_id, sentence) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", (new, item_id, text))  # fmt: skip
            conn.execute("DELETE FROM triplet_sources WHERE triplet_id = %s AND item_id = %s", (tid, item_id))
        left = [s for s in sources if s not in go]
        if not left:
            conn.execute("DELETE FROM triplets WHERE id = %s", (tid,))
        elif sentence not in {text for _, text in left}:
            conn.execute("UPDATE triplets SET sentence = %s WHERE id = %s", (left[0][1], tid))
    for eid in (src, dst):
        surfaces = _surfaces(conn, eid)
        if surfaces:
            conn.execute("UPDATE entities SET aliases = %s WHERE id = %s", (_dumps(surfaces), eid))
    return moved


# -- privacy delete ------------------------------------------------------------------------------
def delete_links(conn: Any, item_ids: Sequence[str]) -> dict[str, int]:
    """The body of ``delete_item_links`` (:meth:`SQLiteGraphStore.delete_item_links`'s semantics)."""
    counts = {"mentions": 0, "sources": 0, "triplets": 0, "entities": 0, "relations": 0}
    ids = list(dict.fromkeys(item_ids))
    cur = conn.execute("DELETE FROM mentions WHERE item_id = ANY(%s) RETURNING entity_id", (ids,))
    touched_e = {r[0] for r in cur.fetchall()}
    counts["mentions"] = cur.rowcount
    cur = conn.execute("DELETE FROM triplet_sources WHERE item_id = ANY(%s) RETURNING triplet_id", (ids,))
    touched_t = sorted({r[0] for r in cur.fetchall()})
    counts["sources"] = cur.rowcount
    ends = conn.execute("SELECT head, tail FROM triplets WHERE id = ANY(%s)", (touched_t,)).fetchall()
    lock_entities(conn, [*touched_e, *(x for row in ends for x in row)])  # entities, then triplets: write()'s order
    heads_tails = {
        r[0]: (r[1], r[2])
        for r in conn.execute(
            f"SELECT id, head, tail FROM triplets WHERE id = ANY(%s) ORDER BY id {C} FOR UPDATE", (touched_t,)
        )  # fmt: skip
    }
    for tid in touched_t:
        if tid not in heads_tails:
            continue
        left = conn.execute(
            f"SELECT sentence FROM triplet_sources WHERE triplet_id = %s ORDER BY item_id {C} LIMIT 1", (tid,)
        ).fetchone()
        if left is None:
            counts["triplets"] += conn.execute("DELETE FROM triplets WHERE id = %s", (tid,)).rowcount
            touched_e.update(heads_tails[tid])
        else:
            conn.execute("UPDATE triplets SET sentence = %s WHERE id = %s", (left[0], tid))
    deleted: list[str] = []
    while touched_e:
        next_round: set[str] = set()
        locked = lock_entities(conn, list(touched_e))
        for eid in sorted(touched_e):
            used = (
                conn.execute("SELECT 1 FROM mentions WHERE entity_id = %s LIMIT 1", (eid,)).fetchone()
                or conn.execute("SELECT 1 FROM triplets WHERE head = %s OR tail = %s LIMIT 1", (eid, eid)).fetchone()
                or conn.execute("SELECT 1 FROM entities WHERE merged_into = %s LIMIT 1", (eid,)).fetchone()
            )  # fmt: skip
            if used:
                conn.execute("UPDATE entities SET aliases = %s WHERE id = %s", (_dumps(_surfaces(conn, eid)), eid))
                continue
            counts["entities"] += conn.execute("DELETE FROM entities WHERE id = %s", (eid,)).rowcount
            conn.execute("DELETE FROM entity_merges WHERE kept = %s OR merged = %s", (eid, eid))
            conn.execute("DELETE FROM entity_splits WHERE entity = %s OR sense = %s", (eid, eid))
            deleted.append(eid)
            parent = locked.get(eid, (None, None))[1]
            if parent:
                next_round.add(parent)  # its root may now be left with nothing
        touched_e = next_round
    # An entity goes only when nothing points at it (members go first), so no chain passed through it;
    # were one to, the group it left would resolve as roots() now says (to the id no longer stored).
    sql = "SELECT DISTINCT root FROM entities WHERE root = ANY(%s) OR merged_into = ANY(%s)"
    groups = [r[0] for r in conn.execute(sql, (deleted, deleted))] if deleted else []
    if groups:
        reroot(conn, groups)
    unused = [r[0] for r in conn.execute(
        f"SELECT name FROM relations r WHERE NOT EXISTS (SELECT 1 FROM triplets t WHERE t.relation = r.name)"
        f" ORDER BY name {C} FOR UPDATE"
    )]  # fmt: skip
    if unused:  # checked again after the lock: a write that held one committed a triplet using it
        counts["relations"] = conn.execute(
            "DELETE FROM relations r WHERE name = ANY(%s) AND NOT EXISTS (SELECT 1 FROM triplets t WHERE t.relation = r.name)",
            (unused,),
        ).rowcount
    return counts
