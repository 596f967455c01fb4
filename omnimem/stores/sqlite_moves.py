"""The SQLite graph's work on many rows inside one transaction: re-pointing one entity's rows to another
(what a sense split and its undo do), keeping entities' roots, and the privacy delete's cascade.

Triplet ids are a content hash of (head, relation, tail), so moving a triplet's end writes the
re-pointed triplet with the moved sources and removes them from the old one, which goes when it has
none left: the coverage property (every triplet has a source item) holds throughout.

Roots (:mod:`omnimem.stores.graph_schema`): a pointer that moves changes the roots of one group at
most (the entities that resolved to one old root), read and rewritten through the ``root`` index.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from omnimem.stores.graph_schema import ROOT_SQL, follow, regroup, triplet_id

__all__ = ["move_entity_rows", "reroot", "migrate_roots", "delete_links", "chunks", "marks"]

_CHUNK = 500  # ids per IN (...) clause


def chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    """Unique ids in order, in lists small enough for one ``IN (...)``."""
    ids = list(dict.fromkeys(ids))
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def marks(chunk: Sequence[Any]) -> str:
    return ", ".join("?" * len(chunk))


def _in(conn: Any, sql: str, ids: Iterable[str]) -> list[tuple]:
    """``sql`` with ``{in_}`` placeholders (each takes the ids), run over chunks of ``ids``."""
    rows: list[tuple] = []
    for chunk in chunks(ids):
        rows += conn.execute(sql.format(in_=marks(chunk)), chunk * sql.count("{in_}")).fetchall()
    return rows


# -- roots ---------------------------------------------------------------------------------------
def reroot(conn: Any, old_roots: Iterable[str]) -> None:
    """Recompute the root of every entity that resolved to one of ``old_roots``, after pointers in
    their group moved (their chains are the only ones that can have changed)."""
    group = {r[0]: r[1] for r in _in(conn, "SELECT id, merged_into FROM entities WHERE root IN ({in_})", old_roots)}
    reached = {p for p in group.values() if p is not None and p not in group}
    outside = dict(_in(conn, "SELECT id, root FROM entities WHERE id IN ({in_})", reached))
    new = regroup(group, outside)
    conn.executemany("UPDATE entities SET root = ? WHERE id = ? AND root IS NOT ?", [(r, e, r) for e, r in new.items()])


def migrate_roots(conn: Any) -> None:
    """Graph schema 3: the ``root`` column (added to an older table), computed for every row that has
    none from the ``merged_into`` pointers, its index and the insert trigger."""
    if "root" not in {r[1] for r in conn.execute("PRAGMA table_info(entities)")}:
        conn.execute("ALTER TABLE entities ADD COLUMN root TEXT")
    if conn.execute("SELECT 1 FROM entities WHERE root IS NULL LIMIT 1").fetchone():
        parent = dict(conn.execute("SELECT id, merged_into FROM entities WHERE merged_into IS NOT NULL").fetchall())
        conn.execute("UPDATE entities SET root = id WHERE merged_into IS NULL")
        conn.executemany("UPDATE entities SET root = ? WHERE id = ?", [(r, e) for e, r in follow(parent).items()])
    for statement in ROOT_SQL:
        conn.execute(statement)


def move_entity_rows(conn: Any, src: str, dst: str, items: set[str] | None) -> int:
    """Re-point ``src``'s own mentions in ``items`` (None: all) and its triplets' sources there to ``dst``.

    Runs inside the caller's transaction; refreshes both entities' aliases. Returns mentions moved.
    """
    moved = 0
    cols = 'item_id, surface, start, "end", sentence'
    for item_id, surface, start, end, sentence in conn.execute(f"SELECT {cols} FROM mentions WHERE entity_id = ?", (src,)).fetchall():  # fmt: skip
        if items is None or item_id in items:
            conn.execute(f"INSERT OR IGNORE INTO mentions (entity_id, {cols}) VALUES (?, ?, ?, ?, ?, ?)", (dst, item_id, surface, start, end, sentence))  # fmt: skip
            conn.execute(
                "DELETE FROM mentions WHERE entity_id = ? AND item_id = ? AND start = ?", (src, item_id, start)
            )
            moved += 1
    cols = "relation, confidence, valid_from, valid_to, recorded_at, retired_at"
    for tid, head, tail, sentence, relation, *rest in conn.execute(
        f"SELECT id, head, tail, sentence, {cols} FROM triplets WHERE head = ? OR tail = ?", (src, src)
    ).fetchall():
        sources = conn.execute("SELECT item_id, sentence FROM triplet_sources WHERE triplet_id = ?", (tid,)).fetchall()
        go = [s for s in sources if items is None or s[0] in items]
        if not go:
            continue
        head, tail = (dst if head == src else head), (dst if tail == src else tail)
        new = triplet_id(head, relation, tail)
        conn.execute(
            f"INSERT OR IGNORE INTO triplets (id, head, tail, sentence, {cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (new, head, tail, go[0][1] or sentence, relation, *rest),
        )
        for item_id, text in go:
            conn.execute("INSERT OR IGNORE INTO triplet_sources (triplet_id, item_id, sentence) VALUES (?, ?, ?)", (new, item_id, text))  # fmt: skip
            conn.execute("DELETE FROM triplet_sources WHERE triplet_id = ? AND item_id = ?", (tid, item_id))
        left = [s for s in sources if s not in go]
        if not left:
            conn.execute("DELETE FROM triplets WHERE id = ?", (tid,))
        elif sentence not in {text for _, text in left}:
            conn.execute("UPDATE triplets SET sentence = ? WHERE id = ?", (left[0][1], tid))
    for eid in (src, dst):
        surfaces = [r[0] for r in conn.execute("SELECT DISTINCT surface FROM mentions WHERE entity_id = ?", (eid,))]
        if surfaces:
            conn.execute("UPDATE entities SET aliases = ? WHERE id = ?", (json.dumps(surfaces, ensure_ascii=False), eid))  # fmt: skip
    return moved


# -- privacy delete ------------------------------------------------------------------------------
def delete_links(conn: Any, item_ids: Sequence[str]) -> dict[str, int]:
    """The body of ``delete_item_links`` (:meth:`SQLiteGraphStore.delete_item_links`): counts of deleted rows."""
    counts = {"mentions": 0, "sources": 0, "triplets": 0, "entities": 0, "relations": 0}
    touched_e: set[str] = set()
    touched_t: set[str] = set()
    for chunk in chunks(item_ids):
        m = marks(chunk)
        touched_e |= {r[0] for r in conn.execute(f"SELECT entity_id FROM mentions WHERE item_id IN ({m})", chunk)}
        touched_t |= {r[0] for r in conn.execute(f"SELECT triplet_id FROM triplet_sources WHERE item_id IN ({m})", chunk)}  # fmt: skip
        counts["mentions"] += conn.execute(f"DELETE FROM mentions WHERE item_id IN ({m})", chunk).rowcount
        counts["sources"] += conn.execute(f"DELETE FROM triplet_sources WHERE item_id IN ({m})", chunk).rowcount
    for tid in touched_t:
        left = conn.execute("SELECT sentence FROM triplet_sources WHERE triplet_id = ? LIMIT 1", (tid,)).fetchone()
        row = conn.execute("SELECT head, tail FROM triplets WHERE id = ?", (tid,)).fetchone()
        if row is None:
            continue
        if left is None:
            counts["triplets"] += conn.execute("DELETE FROM triplets WHERE id = ?", (tid,)).rowcount
            touched_e.update(row)
        else:
            conn.execute("UPDATE triplets SET sentence = ? WHERE id = ?", (left[0], tid))
    deleted: list[str] = []
    while touched_e:
        next_round: set[str] = set()
        for eid in touched_e:
            used = (
                conn.execute("SELECT 1 FROM mentions WHERE entity_id = ? LIMIT 1", (eid,)).fetchone()
                or conn.execute("SELECT 1 FROM triplets WHERE head = ? OR tail = ? LIMIT 1", (eid, eid)).fetchone()
                or conn.execute("SELECT 1 FROM entities WHERE merged_into = ? LIMIT 1", (eid,)).fetchone()
            )  # fmt: skip
            if used:
                surfaces = [r[0] for r in conn.execute("SELECT DISTINCT surface FROM mentions WHERE entity_id = ?", (eid,))]  # fmt: skip
                conn.execute("UPDATE entities SET aliases = ? WHERE id = ?", (json.dumps(surfaces, ensure_ascii=False), eid))  # fmt: skip
                continue
            parent = conn.execute("SELECT merged_into FROM entities WHERE id = ?", (eid,)).fetchone()
            counts["entities"] += conn.execute("DELETE FROM entities WHERE id = ?", (eid,)).rowcount
            conn.execute("DELETE FROM entity_merges WHERE kept = ? OR merged = ?", (eid, eid))
            conn.execute("DELETE FROM entity_splits WHERE entity = ? OR sense = ?", (eid, eid))
            deleted.append(eid)
            if parent and parent[0]:
                next_round.add(parent[0])  # its root may now be left with nothing
        touched_e = next_round
    # An entity goes only when nothing points at it (members go first), so no chain passed through it;
    # were one to, the group it left would resolve as roots() now says (to the id no longer stored).
    groups = _in(conn, "SELECT DISTINCT root FROM entities WHERE root IN ({in_}) OR merged_into IN ({in_})", deleted)
    if groups:
        reroot(conn, [r[0] for r in groups])
    counts["relations"] = conn.execute(
        "DELETE FROM relations WHERE NOT EXISTS (SELECT 1 FROM triplets t WHERE t.relation = relations.name)"
    ).rowcount
    return counts
