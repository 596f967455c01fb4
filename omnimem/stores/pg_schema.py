"""The PostgreSQL record store's tables and the SQL helpers its modules share.

The tables mirror SQLite's (:mod:`omnimem.stores.sqlite`), with three differences:

- ``items.seq`` (``BIGSERIAL``) is the insertion order where SQLite uses its ``rowid``;
- full text is a generated ``tsvector`` column ``items.tsv`` with a GIN index (no separate FTS table);
- each embedding space has a table of its own, ``vectors_<space>`` (pgvector, HNSW on cosine),
  created on the first add of that space.

Text columns that are compared or sorted use the ``"C"`` collation: byte order, as in SQLite, whatever
the database's locale.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from omnimem.errors import BackendUnavailable, ConfigError
from omnimem.stores.base import Filters
from omnimem.stores.sqlite_sql import ITEM_COLUMNS, item_row

__all__ = [
    "MIGRATIONS", "FTS_CHARS", "FTS_EXPR", "HNSW_MAX_DIM", "check_space", "vector_table_sql", "vector_schema",
    "vector_literal", "parse_vector", "pg_item_row", "pg_filter_sql", "is_space", "chunks", "C",
]  # fmt: skip

C = 'COLLATE "C"'  # byte order for compared text columns, as SQLite compares
FTS_CHARS = 200_000  # characters of heading + text indexed for full text (tsvector holds at most 1 MB)
# what items.tsv holds: English stems of the heading and the text's first FTS_CHARS characters
FTS_EXPR = f"to_tsvector('english', left(coalesce(heading, '') || ' ' || text, {FTS_CHARS}))"
HNSW_MAX_DIM = 2000  # pgvector's HNSW index on `vector` takes at most this many dimensions
_SPACE = re.compile(r"[a-z][a-z0-9_]{0,40}")  # becomes part of a table name (as in omnimem.stores.pg_index)


def _migration_1(conn: Any) -> None:
    """Schema 1: every table of the SQLite store at its schema 4, in PostgreSQL types."""
    _ensure_pgvector(conn)
    conn.execute(
        f"CREATE TABLE items (seq BIGSERIAL NOT NULL, id TEXT {C} PRIMARY KEY, modality TEXT {C} NOT NULL,"
        f" text TEXT NOT NULL, blob TEXT {C}, source TEXT {C}, session TEXT {C}, episode TEXT {C},"
        f" speaker TEXT {C}, event_time TEXT {C}, ingest_time TEXT {C}, t_start DOUBLE PRECISION,"
        f" t_end DOUBLE PRECISION, metadata TEXT NOT NULL, heading TEXT,"
        # the heading (speaker or title) beside the text: questions name people the text leaves out
        f" tsv tsvector GENERATED ALWAYS AS ({FTS_EXPR}) STORED)"
    )
    conn.execute("CREATE UNIQUE INDEX items_seq_order ON items (seq)")
    for column in ("episode", "modality", "event_time", "source", "blob"):
        conn.execute(f"CREATE INDEX items_{column} ON items ({column})")
    conn.execute("CREATE INDEX items_session ON items (session, seq)")  # a session's turns in order (neighbours)
    conn.execute("CREATE INDEX items_episode_session ON items (episode, session)")
    conn.execute("CREATE INDEX items_tsv ON items USING gin (tsv)")
    conn.execute(
        f"CREATE TABLE spaces (space TEXT {C} PRIMARY KEY, dim INTEGER NOT NULL, generation BIGINT NOT NULL DEFAULT 0)"
    )
    conn.execute(
        f"CREATE TABLE nodes (id TEXT {C} PRIMARY KEY, level TEXT {C} NOT NULL, episode TEXT {C} NOT NULL,"
        f" session TEXT {C}, parent TEXT {C}, first_time TEXT {C}, last_time TEXT {C}, t_start DOUBLE PRECISION,"
        " t_end DOUBLE PRECISION, items INTEGER NOT NULL, summary TEXT NOT NULL DEFAULT '', summary_kind TEXT,"
        " dirty BOOLEAN NOT NULL DEFAULT TRUE, version BIGINT NOT NULL DEFAULT 0, updated_at TEXT)"
    )
    conn.execute("CREATE INDEX nodes_level_time ON nodes (level, first_time)")
    conn.execute("CREATE INDEX nodes_episode ON nodes (episode)")
    conn.execute(
        f"CREATE TABLE item_stats (item_id TEXT {C} PRIMARY KEY, access_count BIGINT NOT NULL DEFAULT 0,"
        " last_access TEXT, importance DOUBLE PRECISION NOT NULL DEFAULT 1.0)"
    )
    conn.execute(
        f"CREATE TABLE archive (item_id TEXT {C} PRIMARY KEY, item TEXT NOT NULL, stats TEXT NOT NULL DEFAULT '{{}}',"
        f" reason TEXT NOT NULL, archived_at TEXT {C} NOT NULL)"
    )
    conn.execute(
        f"CREATE TABLE archive_vectors (item_id TEXT {C} NOT NULL, space TEXT {C} NOT NULL, vector REAL[] NOT NULL,"
        " PRIMARY KEY (item_id, space))"
    )
    conn.execute(f"CREATE TABLE meta (key TEXT {C} PRIMARY KEY, value TEXT NOT NULL)")
    # a memory created by this code derives a conversation turn's id from its place (see turn_ids)
    conn.execute("INSERT INTO meta (key, value) VALUES ('turn_ids', 'place') ON CONFLICT (key) DO NOTHING")
    # work owed on committed items, written in the items' own transaction (see PostgresRecordStore.pending)
    conn.execute(f"CREATE TABLE pending (job TEXT {C} NOT NULL, item_id TEXT {C} NOT NULL, PRIMARY KEY (job, item_id))")
    conn.execute("CREATE INDEX pending_item ON pending (item_id)")


def _migration_speaker(conn: Any) -> None:
    """Schema 2: items by speaker (a speaker filter reads its own items, not every row)."""
    conn.execute("CREATE INDEX IF NOT EXISTS items_speaker ON items (speaker)")


# Forward migrations of the "records" component: MIGRATIONS[i] takes it from version i to i + 1.
MIGRATIONS = [_migration_1, _migration_speaker]


def _ensure_pgvector(conn: Any) -> None:
    """The ``vector`` extension, created (in ``public``) if this user may; else the fix, named."""
    # one database-wide creator at a time: memories of other schemas may be created at this moment
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('omnimem/extension/vector'))")
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
        return
    import psycopg

    try:
        with conn.transaction():  # a savepoint: the error below is ours, not an aborted transaction's
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
    except psycopg.errors.InsufficientPrivilege as e:
        raise BackendUnavailable(
            f"the pgvector extension is not enabled in this database and this user may not enable it ({e});"
            " ask an admin to run CREATE EXTENSION vector in the database"
        ) from e
    except (psycopg.errors.UndefinedFile, psycopg.errors.FeatureNotSupported) as e:
        raise BackendUnavailable(
            f"the PostgreSQL server has no pgvector extension ({e}); install pgvector on the server"
            " (https://github.com/pgvector/pgvector), then ask an admin to run CREATE EXTENSION vector in the database"
        ) from e


def vector_schema(db: Any) -> str:
    """The quoted schema that holds pgvector's type and functions (``"public"`` unless an admin chose)."""
    rows = db.read(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'"
    )
    if not rows:
        raise BackendUnavailable(
            f"{db.target.display}: the pgvector extension is gone from the database; ask an admin to run"
            " CREATE EXTENSION vector in the database"
        )
    return '"' + rows[0][0].replace('"', '""') + '"'


def check_space(space: str) -> str:
    """``space``, if it can name a vector table; else :class:`ConfigError`."""
    if not isinstance(space, str) or not _SPACE.fullmatch(space):
        raise ConfigError(
            f"embedding space {space!r}: on PostgreSQL a space name is 1-41 lower-case letters, digits or '_',"
            " starting with a letter"
        )
    return space


def is_space(space: object) -> bool:
    return isinstance(space, str) and _SPACE.fullmatch(space) is not None


def vector_table_sql(space: str, dim: int, vs: str) -> list[str]:
    """DDL of one space's vector table (``vs``: pgvector's schema) and, when pgvector can, its HNSW index."""
    statements = [f"CREATE TABLE vectors_{space} (item_id TEXT {C} PRIMARY KEY, embedding {vs}.vector({dim}) NOT NULL)"]
    if dim <= HNSW_MAX_DIM:  # larger vectors are searched exactly (a sequential scan)
        statements.append(f"CREATE INDEX vectors_{space}_hnsw ON vectors_{space} USING hnsw (embedding {vs}.vector_cosine_ops)")  # fmt: skip
    return statements


def vector_literal(space: str, vector: np.ndarray) -> str:
    """pgvector's text form of one float32 row, ``[0.1,...]``; exact (a float32 widened to a double
    prints digits that read back as the same float32). NaN and infinity are refused: pgvector
    cannot store them."""
    values = np.asarray(vector, dtype=np.float32)
    if not np.isfinite(values).all():
        raise ConfigError(f"vectors for space {space!r} hold NaN or infinity; check the encoder's output")
    return "[" + ",".join(map(repr, values.tolist())) + "]"


def parse_vector(data: bytes) -> np.ndarray:
    """A float32 row from pgvector's binary form (``vector_send``: int16 dim, int16 unused, then big-endian float4s)."""
    return np.frombuffer(data, dtype=">f4", offset=4).astype(np.float32)


def pg_item_row(item: Any) -> tuple:
    """The ``items`` row of an item (see :func:`~omnimem.stores.sqlite_sql.item_row`), checked for what
    PostgreSQL cannot store: a NUL character in a text column."""
    row = item_row(item)
    for column, value in zip((*ITEM_COLUMNS, "heading"), row):
        if isinstance(value, str) and "\x00" in value:
            raise ConfigError(
                f"item {item.id!r}: {column} holds a NUL character (\\x00), which PostgreSQL cannot store;"
                " remove it first (text.replace('\\x00', ''))"
            )
    return row


def pg_filter_sql(filters: Filters | None) -> tuple[str, list[Any]]:
    """``" AND ..."`` conditions on ``items`` for a :class:`Filters`, and their parameters."""
    if filters is None:
        return "", []
    clauses: list[str] = []
    params: list[Any] = []
    for column, values in (
        ("modality", filters.modalities), ("session", filters.sessions),
        ("episode", filters.episodes), ("speaker", filters.speakers),
    ):  # fmt: skip
        if values is not None:
            clauses.append(f"items.{column} = ANY(%s::text[])")
            params.append(list(values))
    if filters.since is not None:
        clauses.append("items.event_time >= %s")
        params.append(filters.since)
    if filters.until is not None:
        clauses.append("items.event_time < %s")
        params.append(filters.until)
    return "".join(f" AND {c}" for c in clauses), params


def chunks(values: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    return [values[start : start + size] for start in range(0, len(values), size)]
