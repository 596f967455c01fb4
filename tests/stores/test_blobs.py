"""BlobStore conformance for the file-system backend."""

from __future__ import annotations

import hashlib

import pytest

from omnimem.errors import ConfigError, NotFound
from omnimem.stores import BlobStore, FileBlobStore


@pytest.fixture
def blobs(tmp_path) -> BlobStore:
    return FileBlobStore(tmp_path / "blobs")


def test_put_get_is_content_addressed(blobs):
    address = blobs.put(b"hello", suffix=".txt")
    assert address == hashlib.sha256(b"hello").hexdigest() + ".txt"
    assert blobs.put(b"hello", suffix=".txt") == address
    assert blobs.get(address) == b"hello"
    assert address in blobs
    with open(blobs.path(address), "rb") as f:
        assert f.read() == b"hello"


def test_delete_and_missing(blobs):
    address = blobs.put(b"bytes")
    assert blobs.delete(address) is True
    assert blobs.delete(address) is False
    assert address not in blobs
    with pytest.raises(NotFound):
        blobs.get(address)


def test_rejects_bad_input(blobs):
    with pytest.raises(ConfigError):
        blobs.put("text, not bytes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        blobs.put(b"x", suffix="../../etc")
    with pytest.raises(ConfigError):
        blobs.get("../../etc/passwd")
    assert "../../etc/passwd" not in blobs
