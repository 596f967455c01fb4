"""Fixtures of the graph tests: the packaged spaCy pipeline (loaded once per module), a graph store."""

from __future__ import annotations

import pytest

from omnimem.graph.extract import SpacyExtractor
from omnimem.graph.store import GraphStore, SQLiteGraphStore
from omnimem.stores.sqlite import SQLiteRecordStore


@pytest.fixture(scope="module")
def extractor() -> SpacyExtractor:
    """The packaged en_core_web_sm behind the fast extractor, loaded once per test module."""
    return SpacyExtractor.from_pretrained()


@pytest.fixture
def store(tmp_path):
    record_store = SQLiteRecordStore(tmp_path / "m.db")
    yield record_store
    record_store.close()


@pytest.fixture
def graph(store) -> GraphStore:
    return SQLiteGraphStore(store)
