"""Where a memory lives: a directory (SQLite + FAISS files, the embedded default) or a PostgreSQL schema.

``Memory.open`` is the same for both: it asks the location for the saved config, opens the record store
(whose ``graph_store()`` and ``fact_log()`` are the same backend's), builds one vector index per
embedding space and a blob store. A location also has a local directory for side files (agent
checkpoints, uploads): the memory directory itself, or for PostgreSQL the ``files=`` directory of its URL
(default ``$OMNIMEM_HOME/pg/<schema>-<server hash>``, ``OMNIMEM_HOME`` defaulting to ``~/.omnimem``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from omnimem.config import MemoryConfig
from omnimem.errors import ConfigError, CorruptInput, NotFound
from omnimem.memory.opening import CONFIG_FILE, DB_FILE, existing_config, write_config

__all__ = [
    "Location", "DirectoryLocation", "PostgresLocation", "location_of", "read_saved_config", "open_parts", "Parts",
    "TEXT_SPACE", "IMAGE_SPACE",
]  # fmt: skip

TEXT_SPACE = "text"  # the embedding space of the text encoder
IMAGE_SPACE = "image"  # the embedding space of the image encoder (CLIP-like: text and images)


class Location(Protocol):
    """What ``Memory.open`` needs from where a memory lives."""

    root: Path  # local directory for side files (checkpoints, uploads); the memory itself for SQLite
    display: str  # how messages name the memory

    def saved_config(self, *, create: bool) -> MemoryConfig | None: ...

    def open_store(self, config: MemoryConfig) -> Any: ...

    def save_config(self, store: Any, config: MemoryConfig) -> bool:
        """Save the config if it changed; True when this call created the memory (no other process did)."""

    def indexes(self, store: Any, spaces: dict[str, int], config: MemoryConfig) -> dict[str, Any]: ...

    def blobs(self, store: Any) -> Any: ...

    def release(self) -> None:
        """Close what ``saved_config`` opened, when the memory is not opened after all."""


def location_of(target: str | os.PathLike[str]) -> Location:
    """The location a path or URL names."""
    from omnimem.stores.pg import is_postgres_url

    if isinstance(target, (bytes, int)) or not isinstance(target, (str, os.PathLike)):
        raise ConfigError(f"path must be a str or os.PathLike, got {type(target).__name__}")
    if is_postgres_url(target):
        return PostgresLocation(str(target))
    return DirectoryLocation(Path(target))


@dataclass
class Parts:
    """What ``Memory.open`` builds a memory from."""

    root: Path  # the local directory for side files
    display: str  # how messages name the memory
    config: MemoryConfig  # the config it runs with (saved)
    store: Any  # its RecordStore
    encoder: Any  # the text encoder
    indexes: dict[str, Any]  # space -> vector index
    blobs: Any  # its BlobStore
    image_encoder: Any  # the CLIP-like encoder, or None
    created: bool = False  # this open created the memory (no other process did first)


def open_parts(
    target: str | os.PathLike[str], *, config: MemoryConfig | None, encoder: Any, image_encoder: Any, create: bool
) -> Parts:
    """Open the store at ``target`` and check it against the encoders (see ``Memory.open``)."""
    from omnimem.encoders import create_encoder
    from omnimem.memory.opening import image_encoder_for, resolve_config

    where = location_of(target)
    saved = where.saved_config(create=create)
    try:
        cfg = resolve_config(where.display, saved, config, encoder)
        if encoder is None:
            encoder = create_encoder(cfg.encoder.name, device=cfg.encoder.device, batch_size=cfg.encoder.batch_size)
        if cfg.encoder.dim is not None and encoder.dim != cfg.encoder.dim:
            raise ConfigError(
                f"{where.display} was built with a {cfg.encoder.dim}-d encoder {cfg.encoder.name!r}; the encoder"
                f" given is {encoder.dim}-d ({encoder.name!r}). Open it with the same encoder, or use a new memory"
            )
        cfg = dataclasses.replace(cfg, encoder=dataclasses.replace(cfg.encoder, name=encoder.name, dim=encoder.dim))
        image_encoder, cfg = image_encoder_for(cfg, image_encoder)
    except BaseException:
        where.release()
        raise
    store = where.open_store(cfg)
    try:
        stored_dim = store.space_dim(TEXT_SPACE)
        if stored_dim is not None and stored_dim != encoder.dim:
            raise ConfigError(
                f"{where.display} holds {stored_dim}-d text vectors but the encoder is {encoder.dim}-d;"
                " open it with the encoder that built it"
            )
        created = where.save_config(store, cfg)
        stored_image_dim = store.space_dim(IMAGE_SPACE)
        if stored_image_dim is not None and (image_encoder is None or image_encoder.dim != stored_image_dim):
            raise ConfigError(
                f"{where.display} has a {stored_image_dim}-d image space; open it with the image encoder that"
                " built it (image_encoder=..., or config.media naming it)"
            )
        spaces = {TEXT_SPACE: encoder.dim, **({IMAGE_SPACE: image_encoder.dim} if image_encoder is not None else {})}
        return Parts(
            where.root, where.display, cfg, store, encoder, where.indexes(store, spaces, cfg), where.blobs(store),
            image_encoder, created,
        )  # fmt: skip
    except BaseException:
        store.close()
        raise


def read_saved_config(target: str | os.PathLike[str]) -> MemoryConfig | None:
    """The config a memory was built with (None: no memory there yet), without keeping anything open."""
    where = location_of(target)
    try:
        return where.saved_config(create=True)
    finally:
        where.release()


class DirectoryLocation:
    """``memory.db`` (SQLite), ``index/<space>.faiss``, ``blobs/`` and ``config.json`` in one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.display = str(root)
        self._saved: MemoryConfig | None = None

    def saved_config(self, *, create: bool) -> MemoryConfig | None:
        self._saved = existing_config(self.root, create=create)
        return self._saved

    def open_store(self, config: MemoryConfig) -> Any:
        from omnimem.stores.sqlite import SQLiteRecordStore

        self.root.mkdir(parents=True, exist_ok=True)
        store = config.store
        return SQLiteRecordStore(self.root / DB_FILE, busy_timeout=store.busy_timeout, synchronous=store.synchronous)

    def save_config(self, store: Any, config: MemoryConfig) -> bool:
        if self._saved is None:  # a new memory: claim it with an exclusive link, so two creators can tell
            return write_config(self.root / CONFIG_FILE, config, exclusive=True)
        if self._saved != config:
            write_config(self.root / CONFIG_FILE, config)
        return False

    def indexes(self, store: Any, spaces: dict[str, int], config: MemoryConfig) -> dict[str, Any]:
        from omnimem.stores.segments import SegmentedIndex

        ix = config.index
        if ix.backend == "milvus":
            from omnimem.stores.milvus_index import open_synced_indexes

            return open_synced_indexes(store, spaces, self.root, ix)
        for space in spaces:  # a former Milvus index is a stale copy of the vectors: a forget must not miss it
            (self.root / "index" / f"{space}.milvus.db").unlink(missing_ok=True)
        options = dict(
            ivf_threshold=ix.approx_threshold if ix.factory != "Flat" else 2**62, nprobe=ix.nprobe or None,
            compact_every=ix.save_every, exact_below=ix.exact_below, codes=ix.codes,
        )  # fmt: skip
        return {
            space: SegmentedIndex(store, space, dim, self.root / "index", **options) for space, dim in spaces.items()
        }

    def blobs(self, store: Any) -> Any:
        from omnimem.stores.blobs import FileBlobStore

        return FileBlobStore(self.root / "blobs")

    def release(self) -> None:
        """Nothing stays open after reading ``config.json``."""


class PostgresLocation:
    """A schema of a PostgreSQL database (``postgresql://...?schema=NAME``): items, graph, facts and
    vectors (pgvector) in tables; the config in the schema's ``meta`` table; blobs in a table
    (``blobs=db``, the default) or under ``files=DIR`` (``blobs=files``)."""

    def __init__(self, url: str) -> None:
        from omnimem.stores.pg import parse_url

        self.url = url
        self.target = parse_url(url)
        self.display = self.target.display
        if self.target.files:
            self.root = Path(self.target.files).expanduser()
        else:
            home = Path(os.environ.get("OMNIMEM_HOME", "~/.omnimem")).expanduser()
            server = hashlib.sha256(self.target.conninfo.encode()).hexdigest()[:10]
            self.root = home / "pg" / f"{self.target.schema}-{server}"
        self._store: Any = None
        self._saved: MemoryConfig | None = None

    def saved_config(self, *, create: bool) -> MemoryConfig | None:
        from omnimem.config import MemoryConfig
        from omnimem.stores.pg import PgDatabase
        from omnimem.stores.pg_records import PostgresRecordStore

        db = PgDatabase(self.target)
        try:
            self._store = PostgresRecordStore(db)
            text = self._store.get_meta("config")
            if text is None and not create:
                raise NotFound(f"no memory at {self.display}; create one with Memory.open({self.url!r})")
            if text is not None:
                try:
                    self._saved = MemoryConfig.from_json(text)
                except ValueError as e:
                    raise CorruptInput(f"the saved config of {self.display} is unreadable ({e}); restore it") from e
        except BaseException:
            db.close()
            raise
        return self._saved

    def open_store(self, config: MemoryConfig) -> Any:
        self.root.mkdir(parents=True, exist_ok=True)
        return self._store

    def save_config(self, store: Any, config: MemoryConfig) -> bool:
        if self._saved is None:  # a new memory: whoever inserts the config first created it
            if store.set_meta("config", config.to_json(), only_new=True):
                return True
            other = MemoryConfig.from_json(store.get_meta("config") or "{}")
            if other.encoder.name != config.encoder.name:
                raise ConfigError(
                    f"{self.display} was just created by another process with encoder {other.encoder.name!r}"
                    f" (not {config.encoder.name!r}); open it with that encoder"
                )
            return False
        if self._saved != config:
            store.set_meta("config", config.to_json())
        return False

    def indexes(self, store: Any, spaces: dict[str, int], config: MemoryConfig) -> dict[str, Any]:
        from omnimem.stores.pg_index import PgVectorIndex

        if config.index.backend != "faiss":
            raise ConfigError(
                f"{self.display}: index.backend={config.index.backend!r} is for memory directories; on PostgreSQL"
                " the vectors are searched in the database (pgvector): leave index.backend at 'faiss'"
            )
        return {space: PgVectorIndex(store, space, dim) for space, dim in spaces.items()}

    def blobs(self, store: Any) -> Any:
        if self.target.blobs == "files":
            from omnimem.stores.blobs import FileBlobStore

            return FileBlobStore(self.root / "blobs")
        from omnimem.stores.pg_blobs import PgBlobStore

        return PgBlobStore(store.db, cache=self.root / "blob-cache")

    def release(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
