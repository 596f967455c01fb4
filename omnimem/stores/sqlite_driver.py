"""The SQLite library the embedded store runs on: ``pysqlite3`` (a recent SQLite, bundled in its wheel)
when it is installed, else Python's own ``sqlite3``.

Python's ``sqlite3`` uses the system's SQLite, which on Debian 12 is 3.40: its FTS5 keeps a deleted
row's tokens in old index segments until the whole index is merged, so a privacy delete must rewrite
the full-text index (seconds at a million items). SQLite 3.42+ deletes them at once (FTS5
``secure-delete``); ``pysqlite3-binary`` ships 3.51 for x86-64 Linux and is a default dependency there.
"""

from __future__ import annotations

try:
    from pysqlite3 import dbapi2 as sqlite3
except ImportError:  # pragma: no cover - other platforms: the system's SQLite
    import sqlite3

__all__ = ["sqlite3"]
