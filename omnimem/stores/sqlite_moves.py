"""Re-pointing one entity's rows to another inside a transaction: what a sense split and its undo do.

Triplet ids are a content hash of (head, relation, tail), so moving a triplet's end writes the
re-pointed triplet with the moved sources and removes them from the old one, which goes when it has
none left: the coverage property (every triplet has a source item) holds throughout.
"""

from __future__ import annotations

import json
from typing import Any

from omnimem.stores.graph_schema import triplet_id

__all__ = ["move_entity_rows"]


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
