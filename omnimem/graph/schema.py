"""The M3KG schema as data (row types and content-hash ids): defined with the stores, which read and
write them (:mod:`omnimem.stores.graph_schema`); re-exported here for the graph layer."""

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
    item_node,
    sense_id,
    triplet_id,
)

__all__ = [
    "GRAPH_SCHEMA_VERSION", "SCHEMA_SQL", "EntityRow", "MentionRow", "TripletRow", "Merge", "Split",
    "entity_id", "sense_id", "triplet_id", "entity_node", "item_node",
]  # fmt: skip
