"""Fixtures of the agents tests: a memory whose graph is built only by the jobs under test."""

from __future__ import annotations

import pytest


@pytest.fixture
def bare_mem(tmp_path, hash_encoder):
    """A memory with the hash encoder and no graph extraction on add."""
    import omnimem
    from omnimem.config import GraphConfig, MemoryConfig

    config = MemoryConfig(graph=GraphConfig(extract_on_add=False))
    with omnimem.Memory.open(tmp_path / "mem", encoder=hash_encoder, config=config) as memory:
        yield memory
