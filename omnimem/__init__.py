"""omnimem: long-term multimodal memory for AI agents.

    import omnimem
    with omnimem.Memory.open("my-memory") as mem:
        mem.add("Alice moved to Berlin in March.", speaker="Alice", timestamp="2023-03-02")
        hits = mem.search("Where does Alice live?")

Heavy libraries (torch, faiss, sentence-transformers ...) load lazily, when first needed.
"""

from omnimem.config import EncoderConfig, IndexConfig, MemoryConfig, SearchConfig, StoreConfig
from omnimem.errors import (
    BackendUnavailable,
    ConfigError,
    CorruptInput,
    MemoryLocked,
    NotFound,
    OmnimemError,
    StorageError,
)
from omnimem.memory import Memory
from omnimem.types import Hit, Item

__version__ = "0.1.0"

__all__ = [
    "Memory", "Item", "Hit", "MemoryConfig", "EncoderConfig", "IndexConfig", "SearchConfig",
    "StoreConfig", "OmnimemError", "ConfigError", "BackendUnavailable", "NotFound", "CorruptInput",
    "StorageError", "MemoryLocked", "__version__",
]  # fmt: skip
