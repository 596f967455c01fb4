"""Fast M3KG construction from items: extract, write with sources, optionally resolve entities.

M3KG-RAG (arXiv 2512.20136), "M3KG construction" without the LLM agents: the extractor (step 1)
and the normalizer (step 2) run as :class:`~omnimem.graph.extract.SpacyExtractor`; every mention
and triplet is written with the id of the item it came from, so the coverage property holds by
construction. The agentic builder (rewriter, searcher, selector, refiner, inspector) lives in
``omnimem.agents`` and writes through the same :class:`~omnimem.graph.store.GraphStore`.

With an ``embed`` (the memory's text encoder), the names of new named entities are embedded in one
batch per call and stored with them (:func:`store_name_embeddings`), so linking a query to the graph
(:class:`~omnimem.retrieval.grounding.NameIndex`) reads them instead of encoding names per query.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from omnimem.errors import ConfigError, OmnimemError
from omnimem.graph.extract import Extraction, SpacyExtractor
from omnimem.graph.resolve import Embed, EntityResolver
from omnimem.graph.senses import route_senses
from omnimem.graph.store import EntityRow, GraphStore, MentionRow, TripletRow, entity_id
from omnimem.types import Item

__all__ = ["GraphBuilder", "BuildReport", "rows_from_extraction", "store_name_embeddings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildReport:
    """What one :meth:`GraphBuilder.add_items` call did."""

    items: int = 0  # items read (with text)
    skipped: int = 0  # items skipped: no text, or already in the graph
    entities: int = 0  # new entities
    mentions: int = 0  # new mentions
    triplets: int = 0  # new triplets
    sources: int = 0  # new triplet -> item links
    merges: int = 0  # entity merges made by the resolver


def rows_from_extraction(item: Item, extraction: Extraction) -> tuple[list[EntityRow], list[MentionRow], list[TripletRow]]:  # fmt: skip
    """The graph rows of one item's extraction: entities, mentions and triplets sourced to ``item.id``."""
    entities: dict[str, EntityRow] = {}

    def entity(name: str, type_: str, surface: str) -> str:
        row = EntityRow.make(name, type_, [surface])
        old = entities.get(row.id)
        if old is None:
            entities[row.id] = row
        elif surface not in old.aliases:
            entities[row.id] = EntityRow(old.id, old.name, old.type, (*old.aliases, surface))
        return row.id

    sentences = extraction.sentences
    mentions = [
        MentionRow(
            entity(m.concept, m.type, m.surface), item.id, m.surface, m.start, m.end,
            sentences[m.sentence] if m.sentence < len(sentences) else "",
        )
        for m in extraction.mentions
    ]  # fmt: skip
    triplets = []
    for t in extraction.triplets:
        head = entity_id(t.head, t.head_type)
        tail = entity_id(t.tail, t.tail_type)
        if head not in entities:
            entity(t.head, t.head_type, t.head)
        if tail not in entities:
            entity(t.tail, t.tail_type, t.tail)
        triplets.append(
            TripletRow.make(head, t.relation, tail, t.sentence, t.confidence, [item.id], valid_from=item.event_time)
        )
    return list(entities.values()), mentions, triplets


def store_name_embeddings(graph: GraphStore, entities: Sequence[EntityRow], embed: Embed | None) -> int:
    """Embed the names of the named entities (not CONCEPT ones, which query linking never embeds) that
    have no stored embedding yet, in one ``embed`` call, and store them (``GraphStore.set_embedding``).

    Call it after the rows are written; best effort: names it could not store are encoded when a query
    needs them. An entity merged later keeps its own vector; the root's is the one linking reads.
    Returns how many were stored (0 without ``embed``).
    """
    if embed is None:
        return 0
    named = {e.id: e.name for e in entities if e.type != "CONCEPT"}
    if not named:
        return 0
    try:
        have = graph.embeddings(list(named))
        todo = [(eid, name) for eid, name in named.items() if eid not in have]
        if not todo:
            return 0
        vectors = np.asarray(embed([name for _, name in todo]), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(todo):
            raise ConfigError(f"embed must return a (n, d) array for n={len(todo)} names, got {vectors.shape}")
        graph.set_embedding([eid for eid, _ in todo], vectors)
    except OmnimemError as e:
        log.warning("entity name embeddings not stored (queries will encode these names): %s", e)
        return 0
    return len(todo)


class GraphBuilder:
    """Items -> graph rows, written in one transaction per call; idempotent."""

    def __init__(
        self,
        graph: GraphStore,
        extractor: SpacyExtractor,
        resolver: EntityResolver | None = None,
        *,
        embed: Embed | None = None,
    ) -> None:
        self.graph = graph
        self.extractor = extractor
        self.resolver = resolver
        self.embed = embed  # texts -> float32 (n, d) unit rows: the memory's text encoder (None: names not stored)

    def add_items(
        self, items: Sequence[Item], *, skip_existing: bool = True, parsed: Mapping[str, Extraction] | None = None
    ) -> BuildReport:
        """Extract from each item's text (its speaker resolves "I"/"my") and write the rows.

        A mention of a name that has senses (:mod:`omnimem.graph.senses`) goes to the sense closest to
        its context (embedded with the resolver's ``embed``, else bag-of-words). With ``embed``, the
        names of named entities written without an embedding are embedded in one batch and stored.
        ``skip_existing``: items that already have mentions or triplet sources are not re-read.
        Running it twice on the same items changes nothing either way (content-hash ids). ``parsed``:
        item id -> its extraction, done already (an add parses while it encodes); the rest are parsed here.
        """
        todo = [item for item in items if item.text.strip()]
        skipped = len(items) - len(todo)
        if skip_existing and todo:
            done = self.graph.items_with_links([item.id for item in todo])
            skipped += sum(item.id in done for item in todo)
            todo = [item for item in todo if item.id not in done]
        if not todo:
            return BuildReport(skipped=skipped)
        parsed = parsed or {}
        rest = [item for item in todo if item.id not in parsed]
        found = (
            self.extractor.extract([item.text for item in rest], speakers=[item.speaker for item in rest])
            if rest
            else []
        )
        done = {**parsed, **{item.id: extraction for item, extraction in zip(rest, found)}}
        extractions = [done[item.id] for item in todo]
        rows = {item.id: rows_from_extraction(item, extraction) for item, extraction in zip(todo, extractions)}
        rows = route_senses(self.graph, rows, self.resolver.embed if self.resolver is not None else None)
        entities = [e for r in rows.values() for e in r[0]]
        mentions = [m for r in rows.values() for m in r[1]]
        triplets = [t for r in rows.values() for t in r[2]]
        counts = self.graph.write(entities, mentions, triplets)
        store_name_embeddings(self.graph, entities, self.embed)  # a separate write: one missing is encoded on demand
        merges = 0
        if self.resolver is not None and counts["entities"]:
            merges = len(self.resolver.resolve(self.graph, [e.id for e in entities]).merges)
        log.debug("graph build: %d items, %s, %d merges", len(todo), counts, merges)
        return BuildReport(items=len(todo), skipped=skipped, merges=merges, **counts)
