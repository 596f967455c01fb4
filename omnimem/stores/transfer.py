"""What copying a whole memory between backends moves, table by table (besides its items and vectors).

Items travel with their vectors through the record store's own ``get`` / ``vectors`` / ``add``
(so the destination derives its full-text index and episodic nodes itself). Everything else is copied
as rows of these logical tables, whose columns every backend stores under the same names; bytes
(entity embeddings, archived vectors) travel as float32 bytes whatever the backend keeps them as.
"""

from __future__ import annotations

__all__ = ["TABLES", "BYTES"]

# logical table -> its columns, in the order a copy loads them (parents before children)
TABLES: dict[str, tuple[str, ...]] = {
    "meta": ("key", "value"),
    "item_stats": ("item_id", "access_count", "last_access", "importance"),
    "archive": ("item_id", "item", "stats", "reason", "archived_at"),
    "archive_vectors": ("item_id", "space", "vector"),
    "pending": ("job", "item_id"),
    "nodes": ("id", "summary", "summary_kind", "dirty"),  # spans and counts follow the items: only summaries
    "entities": ("id", "name", "key", "type", "aliases", "description", "embedding", "merged_into", "created_at"),
    "relations": ("name",),
    "triplets": (
        "id",
        "head",
        "relation",
        "tail",
        "sentence",
        "confidence",
        "valid_from",
        "valid_to",
        "recorded_at",
        "retired_at",
    ),  # fmt: skip
    "triplet_sources": ("triplet_id", "item_id", "sentence"),
    "mentions": ("entity_id", "item_id", "surface", "start", "end", "sentence"),
    "entity_merges": ("id", "kept", "merged", "reason", "scores", "created_at", "undone_at"),
    "entity_splits": ("id", "entity", "sense", "reason", "scores", "created_at", "undone_at"),
    "fact_events": ("id", "triplet_id", "event", "other_id", "item_id", "at", "note"),
    "graph_progress": ("item_id", "mode", "done_at"),
}
BYTES = {("archive_vectors", "vector"), ("entities", "embedding")}  # float32 bytes in a copy
