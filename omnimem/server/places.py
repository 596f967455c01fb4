"""Where a server's memories live: directories under a root folder, or schemas of one PostgreSQL database.

``omnimem serve memories/`` serves every memory directory under ``memories/``; ``omnimem serve
postgresql://user@host/db`` serves every omnimem schema of that database (a memory named ``alice`` is
``?schema=alice``), so several server processes, on several hosts, serve the same memories. Each
server keeps its keys file in a local ``home``: the root folder, or for PostgreSQL the URL's
``files=DIR`` (point it at a shared path so that every host has the same keys and uploads; a memory's
own side files go to ``DIR/<name>``), by default ``$OMNIMEM_HOME/pg/server-<hash>``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from omnimem.server.paths import NAME, check_name, is_memory_dir

__all__ = ["Places", "DirectoryPlaces", "PostgresPlaces", "places_of"]


class Places(Protocol):
    home: Path  # local folder of the keys file
    display: str  # how logs name the root

    def names(self) -> list[str]: ...

    def exists(self, name: str) -> bool: ...

    def target(self, name: str) -> str | Path: ...


def places_of(root: str | os.PathLike[str]) -> Places:
    from omnimem.stores.pg import is_postgres_url

    return PostgresPlaces(str(root)) if is_postgres_url(root) else DirectoryPlaces(Path(root))


class DirectoryPlaces:
    """Memory directories under a root folder."""

    def __init__(self, root: Path) -> None:
        self.home = self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.display = str(root)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if NAME.fullmatch(p.name) and is_memory_dir(p))

    def exists(self, name: str) -> bool:
        return is_memory_dir(self.root / check_name(name))

    def target(self, name: str) -> Path:
        return self.root / check_name(name)


class PostgresPlaces:
    """Memory schemas of one PostgreSQL database (names are lower-case: a schema name's rule)."""

    def __init__(self, url: str) -> None:
        from omnimem.stores.pg import parse_url

        parts = urlsplit(url)
        params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
        self._url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params), parts.fragment))
        target = parse_url(self._url)
        self.files = Path(target.files).expanduser() if target.files else None
        server = hashlib.sha256(target.conninfo.encode()).hexdigest()[:10]
        self.home = (
            self.files or Path(os.environ.get("OMNIMEM_HOME", "~/.omnimem")).expanduser() / "pg" / f"server-{server}"
        )
        self.home.mkdir(parents=True, exist_ok=True)
        self.display = target.display.rsplit("?", 1)[0]
        self._conninfo = target.conninfo

    def names(self) -> list[str]:
        from omnimem.stores.pg import memory_schemas

        return [n for n in memory_schemas(self._conninfo) if NAME.fullmatch(n)]

    def exists(self, name: str) -> bool:
        return check_name(name) in self.names()

    def target(self, name: str) -> str:
        check_name(name)
        parts = urlsplit(self._url)
        params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "files"]
        params.append(("schema", name))
        if self.files is not None:
            params.append(("files", str(self.files / name)))
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params), parts.fragment))
