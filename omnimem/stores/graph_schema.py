"""The M3KG schema as data: the SQLite DDL, row types and content-hash ids.

M3KG-RAG (arXiv 2512.20136), "M3KG construction", result G = {entities, relations, triplets, entity
descriptions, items, links}; see :mod:`omnimem.stores.sqlite_graph` for the tables' semantics. The row
types cross the storage boundary: every graph backend reads and writes them.

Each entity keeps its *root*, the entity it resolves to now (itself when not merged): the end of its
``merged_into`` chain, as :func:`follow` computes it from scratch. Backends update it in the
transaction that moves a pointer (merge, unmerge, unsplit), so a read resolves an id with one row and
lists a root's members through an index, never by reading every merged entity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omnimem.types import concept_key, content_id

__all__ = [
    "GRAPH_SCHEMA_VERSION", "SCHEMA_SQL", "ROOT_SQL", "EntityRow", "MentionRow", "TripletRow", "Merge", "Split",
    "entity_id", "sense_id", "triplet_id", "entity_node", "item_node", "follow", "regroup", "entity_rows",
]  # fmt: skip

GRAPH_SCHEMA_VERSION = 3  # 2: entity_splits (per-mention senses); 3: entities.root (maintained resolution)

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, key TEXT NOT NULL, type TEXT NOT NULL,
    aliases TEXT NOT NULL DEFAULT '[]', description TEXT, embedding BLOB, merged_into TEXT,
    created_at TEXT NOT NULL, root TEXT);
CREATE INDEX IF NOT EXISTS entities_key ON entities(key);
CREATE INDEX IF NOT EXISTS entities_merged_into ON entities(merged_into);
CREATE TABLE IF NOT EXISTS relations (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS triplets (
    id TEXT PRIMARY KEY, head TEXT NOT NULL, relation TEXT NOT NULL, tail TEXT NOT NULL,
    sentence TEXT NOT NULL DEFAULT '', confidence REAL NOT NULL, valid_from TEXT, valid_to TEXT,
    recorded_at TEXT NOT NULL, retired_at TEXT);
CREATE INDEX IF NOT EXISTS triplets_head ON triplets(head);
CREATE INDEX IF NOT EXISTS triplets_tail ON triplets(tail);
CREATE TABLE IF NOT EXISTS triplet_sources (
    triplet_id TEXT NOT NULL, item_id TEXT NOT NULL, sentence TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (triplet_id, item_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS triplet_sources_item ON triplet_sources(item_id);
CREATE TABLE IF NOT EXISTS mentions (
    entity_id TEXT NOT NULL, item_id TEXT NOT NULL, surface TEXT NOT NULL, start INTEGER NOT NULL,
    "end" INTEGER NOT NULL, sentence TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (entity_id, item_id, start)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mentions_item ON mentions(item_id);
CREATE TABLE IF NOT EXISTS entity_merges (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kept TEXT NOT NULL, merged TEXT NOT NULL, reason TEXT NOT NULL,
    scores TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL, undone_at TEXT);
CREATE INDEX IF NOT EXISTS entity_merges_merged ON entity_merges(merged);
CREATE TABLE IF NOT EXISTS entity_splits (
    id INTEGER PRIMARY KEY AUTOINCREMENT, entity TEXT NOT NULL, sense TEXT NOT NULL, reason TEXT NOT NULL,
    scores TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL, undone_at TEXT);
CREATE INDEX IF NOT EXISTS entity_splits_entity ON entity_splits(entity);
"""

# Run one by one, after the column exists (version 3 adds it to an older table). The trigger gives a row
# inserted without a root (a memory copied table by table, in any order) the root its pointer leads to,
# and the rows whose chain ended at it (it was not stored yet) the same root: ``roots()``'s answer for
# the rows stored so far. The graph store's own inserts set the root themselves.
ROOT_SQL = (
    "CREATE INDEX IF NOT EXISTS entities_root ON entities(root)",
    """CREATE TRIGGER IF NOT EXISTS entities_root_on_insert AFTER INSERT ON entities WHEN NEW.root IS NULL
BEGIN
    UPDATE entities SET root = COALESCE(
        (SELECT p.root FROM entities p WHERE p.id = NEW.merged_into), NEW.merged_into, NEW.id) WHERE id = NEW.id;
    UPDATE entities SET root = (SELECT r.root FROM entities r WHERE r.id = NEW.id) WHERE root = NEW.id AND id != NEW.id;
END""",
)


def entity_id(name: str, type: str) -> str:
    """Entity identity: the name's exact-match key and its type ("Jordan"/GPE and "Jordan"/PERSON differ)."""
    return content_id({"key": concept_key(name), "type": type})


def sense_id(entity_id: str, n: int) -> str:
    """The id of sense ``n`` (1, 2, ...) split off entity ``entity_id``: same name and type, another referent."""
    return content_id({"entity": entity_id, "sense": int(n)})


def follow(parent: Mapping[str, str]) -> dict[str, str]:
    """Each merged id -> the end of its ``merged_into`` chain (``parent``: every merged id -> its pointer).

    The from-scratch resolution the ``root`` column keeps: a chain stops at an id with no pointer (or
    one no longer stored), and at an id seen before on the way (a cycle, which merge() prevents).
    """
    out = {}
    for eid in parent:
        root, seen = eid, set()
        while root in parent and root not in seen:
            seen.add(root)
            root = parent[root]
        out[eid] = root
    return out


def regroup(pointers: Mapping[str, str | None], outside: Mapping[str, str]) -> dict[str, str]:
    """The roots of a group of entities after some of their pointers moved, as :func:`follow` would say.

    ``pointers``: every entity of the group (those that resolved to the same old roots) -> its
    ``merged_into`` now; ``outside``: the root of each entity outside the group a pointer reaches
    (unchanged: its chain never passed through the group). A chain that leaves the group ends at the
    root of the entity it reaches; one that reaches an id no longer stored ends there.
    """
    parent = {e: p for e, p in pointers.items() if p is not None}
    out = {}
    for eid in pointers:
        root, seen = eid, set()
        while root in parent and root not in seen:
            seen.add(root)
            root = parent[root]
        out[eid] = root if root in pointers else outside.get(root, root)
    return out


def entity_node(entity_id: str) -> str:
    """The networkx node of an entity."""
    return f"e:{entity_id}"


def item_node(item_id: str) -> str:
    """The networkx node of an item."""
    return f"i:{item_id}"


def triplet_id(head: str, relation: str, tail: str) -> str:
    """Triplet identity: content hash of (head entity id, relation, tail entity id)."""
    return content_id({"h": head, "r": relation, "t": tail})


@dataclass(frozen=True)
class EntityRow:
    """An entity as written or read. ``aliases`` on read include those of entities merged into it."""

    id: str  # entity_id(name, type)
    name: str  # canonical name (normalize.py)
    type: str  # spaCy label or "CONCEPT"
    aliases: tuple[str, ...] = ()  # surfaces as written
    description: str | None = None  # a refined description (M3KG step 3), if any
    merged_into: str | None = None  # the entity this one was merged into (read only)

    @classmethod
    def make(cls, name: str, type: str, aliases: Iterable[str] = (), description: str | None = None) -> EntityRow:
        return cls(entity_id(name, type), name, type, tuple(dict.fromkeys(aliases)), description)


@dataclass(frozen=True)
class MentionRow:
    """One entity mention in one item."""

    entity_id: str  # the mentioned entity
    item_id: str  # the item (text turn, caption, transcript segment) it appears in
    surface: str  # the text as written
    start: int = 0  # character offset in the item's text
    end: int = 0  # character offset just past the mention
    sentence: str = ""  # the sentence around it (the mention's context for entity resolution)


@dataclass(frozen=True)
class TripletRow:
    """One fact with its evidence: at least one source item (the coverage property)."""

    id: str  # triplet_id(head, relation, tail)
    head: str  # head entity id
    relation: str  # relation phrase
    tail: str  # tail entity id
    sentence: str  # the sentence it was read from
    confidence: float  # 0..1
    sources: tuple[str, ...] = ()  # item ids it was read from; never empty on write
    valid_from: str | None = None  # ISO-8601, when it became true in the world
    valid_to: str | None = None  # ISO-8601, when it stopped being true
    recorded_at: str | None = None  # ISO-8601 UTC, when the memory learned it (set on write)
    retired_at: str | None = None  # ISO-8601 UTC, when the memory retired it (contradiction)

    @classmethod
    def make(cls, head: str, relation: str, tail: str, sentence: str, confidence: float, sources: Sequence[str], **times: Any) -> TripletRow:  # fmt: skip
        return cls(
            triplet_id(head, relation, tail), head, relation, tail, sentence, float(confidence), tuple(sources), **times
        )


@dataclass(frozen=True)
class Merge:
    """One row of the merge log."""

    id: int  # log row id
    kept: str  # the surviving entity
    merged: str  # the entity now resolved to ``kept``
    reason: str  # why (e.g. "name+type+context")
    scores: dict[str, float] = field(default_factory=dict)  # evidence: name, context, embedding scores
    created_at: str = ""  # ISO-8601 UTC
    undone_at: str | None = None  # set by unmerge


@dataclass(frozen=True)
class Split:
    """One row of the split log: a homonym's mentions in some items moved to a new entity (a sense)."""

    id: int  # log row id
    entity: str  # the entity split (it keeps its other mentions)
    sense: str  # the new entity: same name and type, the moved mentions and their triplets
    reason: str  # why (e.g. "contexts differ")
    scores: dict[str, float] = field(default_factory=dict)  # evidence: items, context, silhouette, neighbours
    created_at: str = ""  # ISO-8601 UTC
    undone_at: str | None = None  # set by unsplit


def entity_rows(
    rows: Iterable[Sequence[Any]], members: Iterable[tuple[str, str]], *, include_merged: bool
) -> list[EntityRow]:
    """Entities as both graph stores return them: ``rows`` are ``(id, name, type, aliases JSON,
    description, merged_into, root)``; ``members`` ``(root, aliases JSON)`` of entities merged into
    a root, whose aliases the root lists as its own. Merged entities only with ``include_merged``."""
    extra: dict[str, list[str]] = {}
    for root, aliases in members:
        extra.setdefault(root, []).extend(json.loads(aliases))
    out = []
    for eid, name, type_, aliases, desc, merged_into, root in rows:
        if merged_into and not include_merged:
            continue
        own = json.loads(aliases) + ([] if merged_into else extra.get(eid, []))
        out.append(EntityRow(eid, name, type_, tuple(dict.fromkeys(own)), desc, root if merged_into else None))
    return out
