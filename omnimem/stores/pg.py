"""A PostgreSQL database as omnimem's stores use it: one schema per memory, a connection pool,
transactions that nest and span stores, retries on serialization failures, versioned migrations.

``postgresql://user:password@host:5432/db?schema=alice`` names a memory: its tables live in the schema
``alice`` (created on first use), so one database holds many memories. Query parameters that are not
libpq's (``schema``, ``files``, ``blobs``, ``pool``) are omnimem's and are stripped before connecting.

Transactions are per thread: the first ``transaction()`` of a thread takes a connection from the pool
and begins; a nested one is a savepoint on the same connection, and every read of that thread inside
it runs on that connection too (it sees its own writes). Reads outside a transaction borrow a pooled
connection in autocommit mode: under PostgreSQL's MVCC a reader never waits for a writer.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from omnimem.errors import ConfigError, MemoryLocked, StorageError, missing_extra

__all__ = ["PgDatabase", "PgTarget", "parse_url", "is_postgres_url", "memory_schemas"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_OWN_PARAMS = ("schema", "files", "blobs", "pool")  # omnimem's URL parameters, not libpq's
RETRIES = 5  # attempts of a whole write on a serialization failure or a deadlock


def is_postgres_url(target: object) -> bool:
    """Whether ``target`` names a PostgreSQL memory (a ``postgresql://`` or ``postgres://`` URL)."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


@dataclass(frozen=True)
class PgTarget:
    """A memory on a PostgreSQL server, as named by its URL."""

    conninfo: str  # the URL without omnimem's parameters (what libpq connects with)
    schema: str  # the schema that holds this memory's tables
    files: str | None  # a directory for side files (uploads, agent checkpoints; blobs with blobs=files)
    blobs: str  # "db" (blobs in a table) or "files" (under ``files``/blobs, a path every host shares)
    pool: int  # the most connections this process opens

    @property
    def display(self) -> str:
        """The URL without a password, for messages and logs."""
        parts = urlsplit(self.conninfo)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        user = parts.username
        return urlunsplit((parts.scheme, f"{user}@{netloc}" if user else netloc, parts.path, "", "")) + f"?schema={self.schema}"  # fmt: skip


def parse_url(url: str) -> PgTarget:
    """Split a memory URL into libpq's part and omnimem's parameters; raises :class:`ConfigError`."""
    if not is_postgres_url(url):
        raise ConfigError(f"not a PostgreSQL URL: {url!r}; use postgresql://user@host/db?schema=NAME")
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in params if k in _OWN_PARAMS}
    rest = [(k, v) for k, v in params if k not in _OWN_PARAMS]
    schema = own.get("schema", "omnimem")
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigError(
            f"schema {schema!r} in {url!r} must be 1-63 lower-case letters, digits or '_', not starting with a digit"
        )
    blobs = own.get("blobs", "db")
    if blobs not in ("db", "files"):
        raise ConfigError(f"blobs={blobs!r}: use blobs=db (in the database) or blobs=files (under files=DIR)")
    if blobs == "files" and not own.get("files"):
        raise ConfigError("blobs=files needs files=DIR: a directory every host of this memory shares")
    try:
        pool = int(own.get("pool", "8"))
    except ValueError:
        raise ConfigError(f"pool={own['pool']!r} must be a number of connections") from None
    if pool < 1:
        raise ConfigError("pool must be >= 1")
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
    return PgTarget(conninfo, schema, own.get("files") or None, blobs, pool)


def memory_schemas(conninfo: str) -> list[str]:
    """The schemas of a database that hold an omnimem memory (an ``items`` table), sorted."""
    psycopg, _ = _driver()
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid"
                " WHERE c.relname = 'items' AND c.relkind = 'r' ORDER BY n.nspname"
            ).fetchall()
    except psycopg.Error as e:
        raise StorageError(f"cannot list the memories of {conninfo.split('?')[0]} ({e}); check the URL") from e
    return [r[0] for r in rows]


def _driver() -> Any:
    try:
        import psycopg
        import psycopg_pool
    except ImportError as e:
        raise missing_extra("psycopg", "postgres") from e
    return psycopg, psycopg_pool


class PgDatabase:
    """The connection pool of one memory's schema, with per-thread transactions."""

    def __init__(self, target: PgTarget | str, *, timeout: float = 30.0) -> None:
        self.target = parse_url(target) if isinstance(target, str) else target
        self.schema = self.target.schema
        self.timeout = timeout  # seconds to wait for a pooled connection or a row lock
        psycopg, psycopg_pool = _driver()
        self._errors = psycopg.errors
        self._local = threading.local()
        schema = self.schema

        def configure(conn: Any) -> None:
            conn.execute(f'SET search_path TO "{schema}", public')

        try:
            self.pool = psycopg_pool.ConnectionPool(
                self.target.conninfo, min_size=1, max_size=self.target.pool, timeout=timeout,
                kwargs={"autocommit": True}, configure=configure, open=True, name=f"omnimem-{schema}",
            )  # fmt: skip
            self.pool.wait(timeout=timeout)
        except Exception as e:  # psycopg_pool.PoolTimeout, OperationalError ...
            raise StorageError(
                f"cannot connect to {self.target.display} ({e}); check the URL, that the server runs and"
                " accepts this user"
            ) from e

    # -- transactions ----------------------------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        return getattr(self._local, "conn", None) is not None

    @contextmanager
    def transaction(self, *, wait: bool = True) -> Iterator[Any]:
        """One transaction on this thread's connection (a savepoint when nested). ``wait=False``:
        give up at once (:class:`MemoryLocked`) when a row it writes is locked by another writer."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with self._translated(), conn.transaction():
                yield conn
            return
        with self.pool.connection() as conn:
            self._local.conn = conn
            try:
                with self._translated(), conn.transaction():
                    limit = "50ms" if not wait else f"{int(self.timeout * 1000)}ms"
                    conn.execute("SELECT set_config('lock_timeout', %s, true)", (limit,))
                    yield conn
            finally:
                self._local.conn = None

    def run(self, work: Callable[[Any], T]) -> T:
        """``work(conn)`` in a transaction, re-run on a serialization failure or deadlock (a concurrent
        writer touched the same rows) up to ``RETRIES`` times; nested, it simply runs."""
        if self.in_transaction:
            with self.transaction() as conn:
                return work(conn)
        for attempt in range(RETRIES):
            try:
                with self.transaction() as conn:
                    return work(conn)
            except _Retry:
                time.sleep(0.02 * (2**attempt))
        with self.transaction() as conn:  # the last attempt raises what it raises
            return work(conn)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Rows of one query: on this thread's transaction if any, else on a pooled connection."""
        conn = getattr(self._local, "conn", None)
        with self._translated():
            if conn is not None:
                return conn.execute(sql, params).fetchall()
            with self.pool.connection() as pooled:
                return pooled.execute(sql, params).fetchall()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        errors = self._errors
        try:
            yield
        except (errors.SerializationFailure, errors.DeadlockDetected) as e:
            raise _Retry(str(e)) from e
        except errors.LockNotAvailable as e:
            raise MemoryLocked(f"{self.target.display}: rows are locked by another writer ({e}); retry later") from e
        except errors.DiskFull as e:
            raise StorageError(f"{self.target.display}: the server's disk is full ({e}); free space and retry") from e
        except errors.InsufficientPrivilege as e:
            raise StorageError(f"{self.target.display}: permission denied ({e}); grant this user the schema") from e
        except _Retry:
            raise
        except errors.Error as e:
            if isinstance(e, errors.OperationalError):
                raise StorageError(f"{self.target.display}: {e}; check that the server is reachable") from e
            raise StorageError(f"PostgreSQL error on {self.target.display}: {e}") from e

    # -- schema ----------------------------------------------------------------------------------
    def migrate(self, component: str, migrations: Sequence[Callable[[Any], None]]) -> int:
        """Bring ``component``'s tables to ``len(migrations)``; returns the version found before.

        A current schema is only read. Otherwise one process at a time (an advisory lock on the
        schema and component) creates the schema if needed and runs the missing steps in one
        transaction. A newer version than this omnimem knows raises :class:`ConfigError`.
        """
        latest = len(migrations)
        found = self._version(component)
        if found == latest:
            return found
        if found is not None and found > latest:
            raise ConfigError(
                f"{self.target.display} has {component} schema version {found}, newer than this omnimem"
                f" ({latest}); upgrade omnimem to open it"
            )
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.schema}/{component}",))
            if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)).fetchone():
                conn.execute(f'CREATE SCHEMA "{self.schema}"')  # needs CREATE on the database: only when missing
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = conn.execute("SELECT version FROM schema_versions WHERE component = %s", (component,)).fetchone()
            start = row[0] if row else 0
            for step in range(start, latest):
                log.info("migrating %s %s schema %d -> %d", self.target.display, component, step, step + 1)
                migrations[step](conn)
            conn.execute(
                "INSERT INTO schema_versions (component, version) VALUES (%s, %s)"
                " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (component, latest),
            )
        return found or 0

    def _version(self, component: str) -> int | None:
        rows = self.read(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'schema_versions'",
            (self.schema,),
        )
        if not rows:
            return None
        rows = self.read("SELECT version FROM schema_versions WHERE component = %s", (component,))
        return rows[0][0] if rows else None

    def drop(self) -> None:
        """Drop this memory's schema and everything in it (tests, ``omnimem`` migrations' cleanup)."""
        with self.transaction() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def close(self) -> None:
        self.pool.close()


class _Retry(StorageError):
    """A serialization failure or deadlock: the whole transaction may be run again."""
