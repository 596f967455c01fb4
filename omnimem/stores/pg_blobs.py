"""Content-addressed blobs in a PostgreSQL table, for memories whose hosts share no file system.

Same addresses as :class:`~omnimem.stores.blobs.FileBlobStore` (sha256 + suffix), so a memory moves
between the two unchanged. ``path()`` materialises a blob into a local cache directory for libraries
that want a file (image decoders, ffmpeg).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from omnimem.errors import ConfigError, NotFound

__all__ = ["PgBlobStore", "migration_blobs"]

_ADDRESS = re.compile(r"^[0-9a-f]{64}(\.[A-Za-z0-9]{1,10})?$")


def migration_blobs(conn: Any) -> None:
    conn.execute("CREATE TABLE blobs (address TEXT PRIMARY KEY, data BYTEA NOT NULL)")


class PgBlobStore:
    """A :class:`~omnimem.stores.base.BlobStore` in the ``blobs`` table of a memory's schema."""

    def __init__(self, db: Any, *, cache: str | Path | None = None) -> None:
        self.db = db  # a PgDatabase
        db.migrate("blobs", [migration_blobs])
        self.cache = Path(cache) if cache is not None else Path(tempfile.mkdtemp(prefix="omnimem-blobs-"))

    def put(self, data: bytes, *, suffix: str = "") -> str:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ConfigError(f"blob data must be bytes, got {type(data).__name__}")
        suffix = suffix.lower()
        if suffix and not re.fullmatch(r"\.[a-z0-9]{1,10}", suffix):
            raise ConfigError(f"blob suffix must look like '.jpg', got {suffix!r}")
        address = hashlib.sha256(data).hexdigest() + suffix
        self.db.run(
            lambda conn: conn.execute(
                "INSERT INTO blobs (address, data) VALUES (%s, %s) ON CONFLICT (address) DO NOTHING",
                (address, bytes(data)),
            )
        )
        return address

    def get(self, address: str) -> bytes:
        rows = self.db.read("SELECT data FROM blobs WHERE address = %s", (_checked(address),))
        if not rows:
            raise NotFound(f"no blob {address!r} in {self.db.target.display}")
        return bytes(rows[0][0])

    def path(self, address: str) -> str:
        target = self.cache / _checked(address)[:2] / address
        if not target.exists():
            data = self.get(address)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        return str(target)

    def delete(self, address: str) -> bool:
        (self.cache / _checked(address)[:2] / address).unlink(missing_ok=True)
        return bool(self.db.run(lambda conn: conn.execute("DELETE FROM blobs WHERE address = %s", (address,)).rowcount))

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str) or not _ADDRESS.match(address):
            return False
        return bool(self.db.read("SELECT 1 FROM blobs WHERE address = %s", (address,)))


def _checked(address: str) -> str:
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise ConfigError(f"{address!r} is not a blob address (sha256 hex + optional suffix)")
    return address
