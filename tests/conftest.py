"""Shared fixtures: the real data folder (skips when absent), a hash-encoder memory for mechanics."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnimem.data import data_dir as _data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data`` (or ``$OMNIMEM_DATA``); skips the test cleanly when it is absent."""
    path = _data_dir()
    if path is None:
        pytest.skip("shared data folder absent (set OMNIMEM_DATA or place it at ../shared/data)")
    return path


@pytest.fixture(scope="session")
def minilm():
    """The packaged all-MiniLM-L6-v2 encoder, loaded once per test session."""
    from omnimem.encoders.sentence import SentenceEncoder

    return SentenceEncoder.from_pretrained("minilm")


@pytest.fixture
def hash_encoder():
    from omnimem.encoders.hashing import HashEncoder

    return HashEncoder(64)


@pytest.fixture
def mem(tmp_path, hash_encoder):
    """A fresh memory on disk with the hash encoder (for mechanics, not quality)."""
    import omnimem

    with omnimem.Memory.open(tmp_path / "mem", encoder=hash_encoder) as memory:
        yield memory
