"""Talking to Milvus through ``pymilvus.MilvusClient``: connections, the collection schema, filters.

One code path reaches both kinds of Milvus: a local milvus-lite data path (``.../name.db``, embedded
in this process, one process at a time) or a server or cluster (``http://host:19530``). A collection
holds one embedding space: an INT64 primary key (the record store's 63-bit vector key), the item id,
the scalar fields :class:`~omnimem.stores.base.Filters` selects on (see :func:`field_value`) and a
float vector searched by inner product (cosine on the unit rows omnimem stores: the same scores as
FAISS). Rows with a negative key are an index's own bookkeeping (the log position a
:class:`~omnimem.stores.milvus_index.MilvusSyncedIndex` holds): every search, count and listing reads
``key >= 0`` only (``ROWS``). Partitions would do the same, but milvus-lite 2 has none.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from omnimem.errors import ConfigError, MemoryLocked, StorageError, missing_extra
from omnimem.stores.base import Filters

__all__ = [
    "FILTER_FIELDS", "ROWS", "MAX_TOPK", "pymilvus", "is_local", "connect", "disconnect", "wipe",
    "locked_elsewhere", "milvus_target", "literal", "field_value", "filter_expression", "create_collection", "index_type_of", "schema_matches",
]  # fmt: skip

log = logging.getLogger(__name__)

FILTER_FIELDS = ("modality", "session", "episode", "speaker", "event_time")  # Item fields Filters selects on
ROWS = "key >= 0"  # the rows holding vectors (vector keys are 63-bit hashes; negative keys are bookkeeping)
MAX_TOPK = 16_384  # Milvus's largest search limit
TEXT_MAX = 8_192  # longest item id or field value stored (bytes)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_users: dict[str, int] = {}  # milvus-lite path -> clients of this process open on it
_users_lock = threading.Lock()


def pymilvus() -> Any:
    try:
        import pymilvus as module
    except ImportError as e:
        raise missing_extra("pymilvus", "milvus") from e
    return module


def is_local(uri: str) -> bool:
    """Whether ``uri`` names a milvus-lite data path (else a server: ``http(s)://``, ``tcp://``...)."""
    return "://" not in uri


def check_name(collection: str) -> None:
    if not _NAME.fullmatch(collection):
        raise ConfigError(
            f"Milvus collection name {collection!r} must be letters, digits or '_', not starting with a digit"
        )


def connect(uri: str) -> Any:
    """A ``MilvusClient`` on ``uri``. A local path must end in ``.db``; milvus-lite holds it for one process."""
    client_class = pymilvus().MilvusClient
    local = is_local(uri)
    if local:
        if not uri.endswith(".db"):
            raise ConfigError(f"a milvus-lite path must end in '.db', got {uri!r}")
        uri = os.path.abspath(uri)
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    # milvus-lite's embedded gRPC server keeps gRPC's default ping policy (at most one ping in 5 minutes,
    # none while idle); pymilvus pings every 10 s, so an idle client would be sent GOAWAY "too_many_pings"
    options = {"grpc_options": {"grpc.keepalive_time_ms": 300_000, "grpc.keepalive_permit_without_calls": 0}}
    locked = MemoryLocked(
        f"the milvus-lite index {uri} is open in another process (milvus-lite serves one process);"
        " close that process, or use a Milvus server: IndexConfig(backend='milvus', uri='http://host:19530')"
    )
    # probe first: a failed open of milvus-lite 2 deletes the lock file of the process that holds it
    if local and not in_use(uri) and locked_elsewhere(uri):
        raise locked
    try:
        client = client_class(uri, **(options if local else {}))
    except Exception as e:  # pymilvus raises its own exception types, or OSError from milvus-lite
        if local and not in_use(uri) and locked_elsewhere(uri):
            raise locked from e
        raise StorageError(
            f"cannot open Milvus at {uri} ({e}); check that the server runs or the path is readable"
        ) from e
    if local:
        with _users_lock:
            _users[uri] = _users.get(uri, 0) + 1
    return client


def disconnect(uri: str, client: Any) -> None:
    """Close ``client``; the last one of this process on a milvus-lite path stops its embedded server,
    which releases the path's lock (else it is held until the process exits)."""
    try:
        client.close()
    except Exception:  # closing a broken connection is not an error worth raising
        log.debug("closing the Milvus client of %s failed", uri, exc_info=True)
    if not is_local(uri):
        return
    uri = os.path.abspath(uri)
    with _users_lock:
        _users[uri] = max(0, _users.get(uri, 0) - 1)
        last = not _users[uri]
        if last:
            del _users[uri]
    if last:
        try:
            from milvus_lite.server_manager import server_manager_instance
        except ImportError:  # a milvus-lite without a server manager: nothing to release
            return
        release = getattr(server_manager_instance, "release_server", None)
        if release is not None:
            release(uri)


def in_use(uri: str) -> int:
    """Clients of this process open on a milvus-lite path."""
    with _users_lock:
        return _users.get(os.path.abspath(uri), 0)


def wipe(uri: str) -> None:
    """Delete a milvus-lite data path (a directory, or a file for milvus-lite 2.x) and its side files."""
    path = Path(os.path.abspath(uri))
    for p in (path, *path.parent.glob(f".{path.name}*"), *path.parent.glob(f"{path.name}.lock")):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def milvus_target(root: str | Path, space: str, uri: str | None, store: Any) -> tuple[str, str]:
    """``(uri, collection)`` of a memory's space. ``uri`` None: the milvus-lite path
    ``index/<space>.milvus.db`` inside the memory directory, collection ``omnimem_<space>``. Else a
    relative path is taken inside the memory directory, and the collection is named by an id this
    memory keeps in its store, so memories sharing one server or path never share a collection."""
    if uri is None:
        return str(Path(root) / "index" / f"{space}.milvus.db"), f"omnimem_{space}"
    if is_local(uri) and not os.path.isabs(os.path.expanduser(uri)):
        uri = str(Path(root) / uri)
    elif is_local(uri):
        uri = os.path.expanduser(uri)
    uid = store.get_meta("milvus_uid")
    if uid is None:
        uid = uuid.uuid4().hex[:12]
        store.set_meta("milvus_uid", uid)
    return uri, f"omnimem_{uid}_{space}"


def literal(value: str) -> str:
    """A Milvus filter-expression string literal of ``value``: double-quoted, with backslash, quote,
    newline, carriage return and tab escaped (the escapes both Milvus's grammar and milvus-lite read);
    every other character stands for itself, so no value can end the literal or inject an operator."""
    if not isinstance(value, str):
        raise ConfigError(f"filter values must be strings, got {type(value).__name__}")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")  # fmt: skip
    return f'"{escaped}"'


def field_value(value: str | None) -> str:
    """How a filter field is stored: ``"=" + value``, and ``""`` for None. Nullable fields need
    Milvus 2.5 and milvus-lite 3; with the prefix no stored value is empty, so ``""`` stands for None
    on every version, and ``>=``/``<`` between prefixed values order as between the values."""
    return "" if value is None else "=" + value


def filter_expression(filters: Filters | None) -> str | None:
    """The Milvus boolean expression selecting what ``filters`` selects: ``""`` when it selects
    everything, None when it can select nothing (an empty list of allowed values).

    ``speaker in ["=ann", "=bob"] and event_time >= "=2024-01-01" and event_time < "=2024-02-01"``
    over the values as :func:`field_value` stores them: ISO-8601 text compares as the record store
    compares it, and an item without the field matches no list and no comparison, as NULL in SQL.
    """
    if filters is None:
        return ""
    clauses = []
    for field, values in (
        ("modality", filters.modalities), ("session", filters.sessions),
        ("episode", filters.episodes), ("speaker", filters.speakers),
    ):  # fmt: skip
        if values is None:
            continue
        if not len(values):
            return None
        clauses.append(f"{field} in [{', '.join(literal(field_value(v)) for v in dict.fromkeys(values))}]")
    if filters.since is not None:
        clauses.append(f"event_time >= {literal(field_value(filters.since))}")
    if filters.until is not None:  # ">= '='": an item without a time ("") is not before anything
        clauses.append(f'event_time >= "=" and event_time < {literal(field_value(filters.until))}')
    return " and ".join(clauses)


def create_collection(client: Any, name: str, dim: int, *, fields: tuple[str, ...], index_type: str) -> str:
    """Create and load a collection: key (INT64 primary), item_id, VARCHAR ``fields``, vector. Returns
    the vector index type it got: HNSW where the Milvus offers it, else its AUTOINDEX (milvus-lite 2)."""
    data_type = pymilvus().DataType
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", data_type.INT64, is_primary=True)
    schema.add_field("item_id", data_type.VARCHAR, max_length=TEXT_MAX)
    for field in fields:
        schema.add_field(field, data_type.VARCHAR, max_length=TEXT_MAX)
    schema.add_field("vector", data_type.FLOAT_VECTOR, dim=dim)
    # Strong: a search sees every write acknowledged before it (a memory searches right after adding)
    client.create_collection(name, schema=schema, consistency_level="Strong")
    for kind in (index_type, "AUTOINDEX") if index_type == "HNSW" else (index_type,):
        params = client.prepare_index_params()
        build = {"M": 16, "efConstruction": 200} if kind == "HNSW" else {}
        params.add_index("vector", index_type=kind, metric_type="IP", params=build)
        try:
            client.create_index(name, params, sync=False)  # an empty collection's index is ready at once
        except pymilvus().exceptions.MilvusException as e:
            if kind == "AUTOINDEX" or "index type" not in str(e):
                raise
            log.info("Milvus at hand has no HNSW (%s): using its AUTOINDEX", e)
            continue
        break
    client.load_collection(name)
    return kind


def index_type_of(client: Any, name: str) -> str:
    """The type of a collection's vector index ("HNSW", "FLAT", "AUTOINDEX" ...)."""
    try:
        return str(client.describe_index(name, "vector").get("index_type", "AUTOINDEX")).upper()
    except pymilvus().exceptions.MilvusException:
        return "AUTOINDEX"


def schema_matches(client: Any, name: str, dim: int, fields: tuple[str, ...]) -> bool:
    """Whether an existing collection has the fields and dimension this code writes."""
    described = client.describe_collection(name)
    found = {f["name"]: f for f in described.get("fields", [])}
    vector = found.get("vector", {})
    wanted = {"key", "item_id", "vector", *fields}
    return wanted <= set(found) and int(vector.get("params", {}).get("dim", -1)) == dim


def locked_elsewhere(path: str) -> bool:
    """Whether another process holds milvus-lite's lock on ``path``: ``<path>/LOCK`` (flock, milvus-lite
    3) or ``.<name>.lock`` beside it (lockf, milvus-lite 2). Probe only a path this process has no
    client on (closing the probe releases this process's own lockf locks)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - milvus-lite runs on POSIX only
        return False
    path_ = Path(os.path.abspath(path))
    for lock, call in ((path_ / "LOCK", fcntl.flock), (path_.parent / f".{path_.name}.lock", fcntl.lockf)):
        if not lock.is_file():
            continue
        with open(lock, "a") as f:
            try:
                call(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            call(f.fileno(), fcntl.LOCK_UN)
    return False
