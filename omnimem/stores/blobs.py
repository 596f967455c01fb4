"""Content-addressed blob store on the local file system: ``blobs/ab/<sha256><suffix>``."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from omnimem.errors import ConfigError, NotFound

__all__ = ["FileBlobStore"]

_ADDRESS = re.compile(r"^[0-9a-f]{64}(\.[A-Za-z0-9]{1,10})?$")


class FileBlobStore:
    """A :class:`~omnimem.stores.base.BlobStore` in a directory; writes are atomic renames."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, *, suffix: str = "") -> str:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ConfigError(f"blob data must be bytes, got {type(data).__name__}")
        suffix = suffix.lower()
        if suffix and not re.fullmatch(r"\.[a-z0-9]{1,10}", suffix):
            raise ConfigError(f"blob suffix must look like '.jpg', got {suffix!r}")
        address = hashlib.sha256(data).hexdigest() + suffix
        target = self._file(address)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return address

    def get(self, address: str) -> bytes:
        try:
            return self._file(address).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no blob {address!r} in {self.root}") from None

    def path(self, address: str) -> str:
        target = self._file(address)
        if not target.exists():
            raise NotFound(f"no blob {address!r} in {self.root}")
        return str(target)

    def delete(self, address: str) -> bool:
        target = self._file(address)
        existed = target.exists()
        target.unlink(missing_ok=True)
        return existed

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and bool(_ADDRESS.match(address)) and self._file(address).exists()

    def _file(self, address: str) -> Path:
        if not _ADDRESS.match(address):
            raise ConfigError(f"{address!r} is not a blob address (sha256 hex + optional suffix)")
        return self.root / address[:2] / address
