"""``Memory.check``: the source of truth against itself, and every derived index against it.

SQLite's integrity check and the FTS5 index's own check; each vector index's ids against the vectors
SQLite holds for its space; the graph's links against the items. Drift in what is derived is repaired
(FTS rebuilt, index re-synced, orphan graph links dropped, graph extraction a crash left undone
run); damage to the database itself is only
reported: its fix is a backup, which the report says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omnimem.errors import CorruptInput, StorageError

if TYPE_CHECKING:  # pragma: no cover
    from omnimem.memory.core import Memory

__all__ = ["check_memory"]


def check_memory(memory: Memory, *, repair: bool = True) -> dict[str, Any]:
    """The report of :meth:`Memory.check` (see there)."""
    report: dict[str, Any] = {"database": [], "indexes": {}, "graph": {}}
    try:
        _check(memory, repair, report)
    except (CorruptInput, StorageError) as e:  # a damaged page: say so, keep what was learnt so far
        report["database"].append(f"{e}")
        report["ok"] = False
    return report


def _check(memory: Memory, repair: bool, report: dict[str, Any]) -> None:
    store = memory.store
    problems = store.integrity_check()
    if problems and repair and all(p.startswith("full-text") for p in problems):
        store.rebuild_fts()
        problems = store.integrity_check()
    report["database"] = problems
    for space, index in memory.indexes.items():
        in_db, in_ix = set(store.vector_ids(space)), set(index.index.ids())
        drift = {"missing": len(in_db - in_ix), "extra": len(in_ix - in_db)}
        if repair and (drift["missing"] or drift["extra"]):
            index.rebuild()  # from the vectors the store holds: the source of truth
        report["indexes"][space] = {**drift, "size": len(index), "repaired": bool(repair and any(drift.values()))}
    orphans = memory.graph.orphan_items()  # graph links of items that are gone (a pre-0.2 delete, a crash)
    if repair and orphans:
        memory.graph.delete_item_links(orphans)
    owed = len(store.pending("graph", 1_000_000))  # extraction a crash left undone (see Memory.catch_up)
    if repair and owed:
        while memory.catch_up(limit=500):
            pass
    report["graph"] = {"orphan_items": len(orphans), "owed_items": owed, "repaired": bool(repair and (orphans or owed))}
    report["ok"] = (
        not problems
        and all(v["repaired"] or not (v["missing"] or v["extra"]) for v in report["indexes"].values())
        and (not (orphans or owed) or bool(repair))
    )
