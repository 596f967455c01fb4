"""SQL helpers of the SQLite record store: row conversion, filters as SQL, BM25 queries, error translation."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from omnimem.errors import ConfigError, CorruptInput, MemoryLocked, StorageError
from omnimem.stores.base import Filters
from omnimem.stores.sqlite_driver import sqlite3
from omnimem.types import Item, utc_now

__all__ = [
    "fts_query",
    "query_words",
    "item_row",
    "row_item",
    "vector_rows",
    "filter_sql",
    "translate",
    "ITEM_COLUMNS",
    "Vectors",
]

Vectors = tuple[Sequence[str], np.ndarray]  # (ids, float32 (n, dim)): the vectors of one space

ITEM_COLUMNS = (
    "id", "modality", "text", "blob", "source", "session", "episode", "speaker",
    "event_time", "ingest_time", "t_start", "t_end", "metadata",
)  # fmt: skip

# Words too common to help BM25 rank; dropping them also keeps OR-queries short.
_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up very was we were what when where which while who whom why will
    with would you your yours yourself yourselves""".split()
)


# Both stores' BM25, in a memory of over BM25_PRUNE_FROM items, leave out the query words found in more
# than BM25_COMMON items: a query then reads posting lists of bounded length whatever the memory's size.
# At a million items (benchmarks/scale.py's questions) a BM25 search takes 4.0 ms at p50 with 2,000 and
# 10.6 ms with 5,000; it runs beside the query's encoding on the other core, which it slows less when short.
BM25_PRUNE_FROM = 50_000
BM25_COMMON = 2_000


def query_words(text: str) -> list[str]:
    """The content words of a full-text query, lower-cased, once each, in order: no stopwords, no
    single letters (single digits stay). Every backend's keyword search ORs these."""
    words: list[str] = []
    for word in re.findall(r"\w+", text.lower()):
        if word not in _STOPWORDS and (len(word) > 1 or word.isdigit()) and word not in words:
            words.append(word)
    return words


def fts_query(text: str) -> str:
    """An FTS5 MATCH expression that ORs the query's content words, each quoted (no syntax errors)."""
    return " OR ".join(f'"{w}"' for w in query_words(text))


def item_row(item: Item) -> tuple:
    """The ``items`` row of an item: its fields, then the derived ``heading`` column."""
    values = item.to_dict()
    values["metadata"] = json.dumps(item.metadata, ensure_ascii=False, sort_keys=True)
    values["ingest_time"] = item.ingest_time or utc_now()
    return (*(values[c] for c in ITEM_COLUMNS), item.heading)


def row_item(row: tuple) -> Item:
    values = dict(zip(ITEM_COLUMNS, row))
    values["metadata"] = json.loads(values["metadata"] or "{}")
    return Item(**values)


def vector_rows(space: str, value: Vectors) -> tuple[int, dict[str, np.ndarray]]:
    """Validate ``(ids, float32 (n, dim))`` for a space -> ``(dim, {id: row})``."""
    try:
        ids, array = value
    except (TypeError, ValueError):
        raise ConfigError(f"vectors for space {space!r} must be a pair (ids, array)") from None
    ids = list(ids)
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.shape[0] != len(ids):
        shape = getattr(array, "shape", None)
        raise ConfigError(f"vectors for space {space!r} must have shape ({len(ids)}, dim), got {shape}")
    return int(array.shape[1]), dict(zip(ids, array))


def filter_sql(filters: Filters | None) -> tuple[str, list[Any]]:
    if filters is None:
        return "", []
    clauses, params = [], []
    for column, values in (
        ("modality", filters.modalities), ("session", filters.sessions),
        ("episode", filters.episodes), ("speaker", filters.speakers),
    ):  # fmt: skip
        if values is not None:
            clauses.append(f"items.{column} IN ({', '.join('?' * len(values))})" if values else "0")
            params += list(values)
    if filters.since is not None:
        clauses.append("items.event_time >= ?")
        params.append(filters.since)
    if filters.until is not None:
        clauses.append("items.event_time < ?")
        params.append(filters.until)
    return "".join(f" AND {c}" for c in clauses), params


def translate(error: sqlite3.DatabaseError, path: str) -> Exception:
    """Turn a sqlite3 error into one of omnimem's, with the fix in the message."""
    message = str(error)
    if "not a database" in message or "malformed" in message:
        return CorruptInput(
            f"{path} is not a readable SQLite database ({message}); restore it from a backup, or"
            " move it away and rebuild the memory from its sources"
        )
    if "locked" in message or "busy" in message:
        return MemoryLocked(
            f"{path} is locked by another writer ({message}); wait for it to finish, or raise store.busy_timeout"
        )
    if "full" in message:
        return StorageError(f"no space left to write {path} ({message}); free disk space and retry")
    if "readonly" in message or "read-only" in message:
        return StorageError(f"{path} is read-only ({message}); check the file's permissions")
    return StorageError(f"SQLite error on {path}: {message}")
