"""Storage: the SQLite record store (source of truth), FAISS vector indexes, a blob store.

Knows ids, vectors, records and bytes; never models.
"""

from omnimem.stores.base import BlobStore, Filters, RecordStore, VectorIndex
from omnimem.stores.blobs import FileBlobStore
from omnimem.stores.exact import ExactIndex
from omnimem.stores.faiss_index import FaissIndex
from omnimem.stores.segments import SegmentedIndex, SyncReport
from omnimem.stores.sqlite import SQLiteRecordStore

__all__ = [
    "BlobStore", "Filters", "RecordStore", "VectorIndex", "FileBlobStore", "ExactIndex",
    "FaissIndex", "SQLiteRecordStore", "SegmentedIndex", "SyncReport",
]  # fmt: skip
