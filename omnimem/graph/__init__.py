"""graph layer (see DESIGN.md section 2): the M3KG schema, fast extraction, entity resolution, traversal.

M3KG-RAG (arXiv 2512.20136) "M3KG construction" without an LLM: :class:`SpacyExtractor` (extractor
and normalizer), :class:`GraphStore` (entities, relations, triplets with source items, mentions,
merge and split logs, in the record store's SQLite file), :class:`EntityResolver` and
:class:`SenseSplitter` (one name, two referents), :class:`GraphBuilder`, and
:func:`personalized_pagerank` / :func:`k_hop` over the networkx view (HippoRAG 2).
"""

from omnimem.graph.builder import BuildReport, GraphBuilder
from omnimem.graph.extract import Extraction, ExtractorConfig, Mention, SpacyExtractor, Triplet
from omnimem.graph.normalize import canonical_span, canonical_text, concept_key
from omnimem.graph.resolve import EntityResolver, Resolution, ResolverConfig
from omnimem.graph.senses import SenseConfig, SenseSplitter, route_senses
from omnimem.graph.store import (
    EntityRow,
    GraphStore,
    MentionRow,
    Merge,
    Split,
    SQLiteGraphStore,
    TripletRow,
    entity_id,
    to_networkx,
    triplet_id,
)
from omnimem.graph.traverse import PPRResult, k_hop, personalized_pagerank

__all__ = [
    "BuildReport", "GraphBuilder", "Extraction", "ExtractorConfig", "Mention", "SpacyExtractor", "Triplet",
    "canonical_span", "canonical_text", "concept_key", "EntityResolver", "Resolution", "ResolverConfig",
    "SenseConfig", "SenseSplitter", "route_senses", "EntityRow", "GraphStore", "SQLiteGraphStore", "to_networkx", "Merge", "Split", "MentionRow", "TripletRow", "entity_id", "triplet_id",
    "PPRResult", "k_hop", "personalized_pagerank",
]  # fmt: skip
