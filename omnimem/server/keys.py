"""Scoped API keys of a server root: which memories a key may see, and whether it may change them.

    from omnimem.server.keys import KeyStore
    keys = KeyStore(Path("memories"))
    plain = keys.create("alice-phone", memories=["alice"], rights="read")   # shown once, never stored
    keys.verify(plain)     # Scope(name='alice-phone', memories=('alice',), rights='read')
    keys.revoke("alice-phone")

The keys live in ``<root>/.omnimem/keys.json`` (mode 0600; a dot-name is never a memory name). Each
record holds the key's name, a random public id, the memory names (``"*"``: every memory), the
rights (``"read"`` or ``"read-write"``), ``created_at`` and a salted scrypt hash of the key's secret;
the plain key is never written. A plain key reads ``omk_<id>_<secret>``: the id finds the record, so
a check costs one scrypt, and a key verified once is remembered in this process (by its SHA-256)
until the file changes, so a server pays the scrypt once per key, not per request.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnimem.errors import ConfigError, CorruptInput, NotFound
from omnimem.server.paths import check_name
from omnimem.types import utc_now

__all__ = ["KeyStore", "KeyInfo", "Scope", "ADMIN", "READ", "READ_WRITE", "RIGHTS", "ALL", "keys_path"]

log = logging.getLogger(__name__)

READ = "read"  # search, get, context, ask, stats, graph queries
READ_WRITE = "read-write"  # also add, ingest, chat (it remembers turns), forget, create
RIGHTS = (READ, READ_WRITE)
ALL = "*"  # in a key's memories: every memory under the root, present and future

_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PLAIN = re.compile(r"omk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,200})")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # 16 MiB, ~30 ms: the keys are 256-bit random, this is depth
_VERSION = 1


@dataclass(frozen=True)
class Scope:
    """What one key may do. ``memories`` holds names, or ``"*"`` for every memory."""

    name: str  # the key's name ("api_key" for the server's single admin key)
    memories: tuple[str, ...]  # memory names the key may see, or ("*",)
    rights: str = READ  # "read" or "read-write"

    def __post_init__(self) -> None:
        if self.rights not in RIGHTS:
            raise ConfigError(f"rights must be one of {RIGHTS}, got {self.rights!r}")

    def can_read(self, memory: str) -> bool:
        """Whether the key may see memory ``memory`` (list it, search it, read its items)."""
        return ALL in self.memories or memory in self.memories

    def can_write(self, memory: str) -> bool:
        """Whether the key may change (or create) memory ``memory``."""
        return self.rights == READ_WRITE and self.can_read(memory)


ADMIN = Scope("api_key", (ALL,), READ_WRITE)  # the server's single api_key: every memory, read-write


@dataclass(frozen=True)
class KeyInfo:
    """A stored key as :meth:`KeyStore.list` shows it: everything but its hash."""

    name: str  # unique within the root, chosen by whoever created it
    id: str  # 12 hex digits, public: the middle part of the plain key
    memories: tuple[str, ...]  # memory names, or ("*",)
    rights: str  # "read" or "read-write"
    created_at: str  # ISO-8601 UTC

    @property
    def scope(self) -> Scope:
        return Scope(self.name, self.memories, self.rights)


def keys_path(root: Path) -> Path:
    """Where the keys of the server root ``root`` are stored."""
    return Path(root) / ".omnimem" / "keys.json"


class KeyStore:
    """The scoped keys of one server root (``<root>/.omnimem/keys.json``); thread-safe."""

    def __init__(self, root: Path) -> None:
        self.path = keys_path(root)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None  # (inode, mtime_ns, size) of the loaded file
        self._records: dict[str, dict[str, Any]] = {}  # key id -> record, as last loaded
        self._verified: dict[bytes, Scope] = {}  # sha256 of a plain key -> its scope, until the file changes

    def exists(self) -> bool:
        """Whether this root uses keys: the file exists (even with every key revoked)."""
        return self.path.exists()

    def __len__(self) -> int:
        return len(self._load())

    def create(self, name: str, *, memories: Iterable[str], rights: str = READ) -> str:
        """Add a key named ``name`` for ``memories`` (``["*"]``: all) with ``rights``; returns the
        plain key, which is not stored anywhere: show it once."""
        if not isinstance(name, str) or not _KEY_NAME.fullmatch(name):
            raise ConfigError(
                f"invalid key name {name!r}: use 1-64 letters, digits, '.', '-' or '_', starting with a letter or digit"
            )
        if isinstance(memories, str):
            raise ConfigError(f"memories must be a list of memory names, got the string {memories!r}; wrap it in [...]")
        names = tuple(dict.fromkeys(memories))
        if not names:
            raise ConfigError("a key needs at least one memory name (or '*' for every memory)")
        for memory in names:
            if memory != ALL:
                check_name(memory)
        if rights not in RIGHTS:
            raise ConfigError(f"rights must be {READ!r} or {READ_WRITE!r}, got {rights!r}")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        record = {
            "name": name, "id": key_id, "memories": list(names), "rights": rights, "created_at": utc_now(),
            "kdf": {"name": "scrypt", **_SCRYPT}, "salt": salt.hex(), "hash": _scrypt(secret, salt, _SCRYPT).hex(),
        }  # fmt: skip
        with self._edit() as records:
            if any(r["name"] == name for r in records):
                raise ConfigError(f"a key named {name!r} exists; revoke it first or pick another name")
            records.append(record)
        log.info("created key %s (%s) for %s", name, rights, ", ".join(names))
        return f"omk_{key_id}_{secret}"

    def revoke(self, name: str) -> None:
        """Delete the key named ``name``; it stops working at once, in running servers too."""
        with self._edit() as records:
            kept = [r for r in records if r["name"] != name]
            if len(kept) == len(records):
                known = ", ".join(sorted(r["name"] for r in records)) or "none"
                raise NotFound(f"no key named {name!r} (known: {known}); see `omnimem keys list`")
            records[:] = kept
        log.info("revoked key %s", name)

    def list(self) -> list[KeyInfo]:
        """Every stored key, oldest first, without its hash."""
        return [_info(r) for r in sorted(self._load().values(), key=lambda r: r["created_at"])]

    def verify(self, plain: str) -> Scope | None:
        """The scope of the plain key ``plain``, or None if it is not a live key of this root."""
        match = _PLAIN.fullmatch(plain) if isinstance(plain, str) else None
        if match is None:
            return None
        records = self._load()
        digest = hashlib.sha256(plain.encode()).digest()
        with self._lock:
            known = self._verified.get(digest)
        if known is not None:
            return known
        record = records.get(match.group(1))
        if record is None:
            return None
        kdf = {k: record["kdf"][k] for k in ("n", "r", "p")}
        computed = _scrypt(match.group(2), bytes.fromhex(record["salt"]), kdf)
        if not hmac.compare_digest(computed, bytes.fromhex(record["hash"])):
            return None
        scope = _info(record).scope
        with self._lock:
            if self._records is records:  # not reloaded meanwhile (a revoke must not be undone)
                self._verified[digest] = scope
        return scope

    # -- the file -----------------------------------------------------------------------------

    def _load(self) -> dict[str, dict[str, Any]]:
        """The records by id, re-read when the file changed (a CLI in another process edits it)."""
        try:
            st = self.path.stat()
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp == self._stamp:
                return self._records
        records = {r["id"]: r for r in self._read()} if stamp is not None else {}
        with self._lock:
            self._stamp, self._records, self._verified = stamp, records, {}
            return records

    def _read(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CorruptInput(
                f"cannot read the keys file {self.path}: {e}; restore it, or delete it and re-add the keys"
            ) from e
        if not isinstance(data, dict) or data.get("version") != _VERSION or not isinstance(data.get("keys"), list):
            raise CorruptInput(
                f"{self.path} is not an omnimem keys file (version {_VERSION}); restore it, or delete it and re-add the keys"
            )
        for record in data["keys"]:
            _check_record(record, self.path)
        return data["keys"]

    @contextlib.contextmanager
    def _edit(self) -> Iterator[list[dict[str, Any]]]:
        """The records as a list to change in place, written back atomically (0600) on success."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _file_lock(self.path.with_suffix(".lock")):
            records = self._read()
            yield records
            body = json.dumps({"version": _VERSION, "keys": records}, indent=1, ensure_ascii=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")
            try:
                os.chmod(tmp, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(body + "\n")
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)


def _scrypt(secret: str, salt: bytes, params: dict[str, int]) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=params["n"], r=params["r"], p=params["p"], dklen=32)


def _info(record: dict[str, Any]) -> KeyInfo:
    return KeyInfo(
        name=record["name"], id=record["id"], memories=tuple(record["memories"]), rights=record["rights"],
        created_at=record["created_at"],
    )  # fmt: skip


_FIELDS = {
    "name": str,
    "id": str,
    "memories": list,
    "rights": str,
    "created_at": str,
    "kdf": dict,
    "salt": str,
    "hash": str,
}


def _check_record(record: Any, path: Path) -> None:
    bad = not isinstance(record, dict) or any(not isinstance(record.get(k), t) for k, t in _FIELDS.items())
    if not bad:
        bad = record["rights"] not in RIGHTS or record["kdf"].get("name") != "scrypt"
        bad = bad or not all(isinstance(record["kdf"].get(k), int) for k in ("n", "r", "p"))
        bad = bad or not all(isinstance(m, str) for m in record["memories"])
        bad = bad or not all(re.fullmatch(r"(?:[0-9a-f]{2})+", record[k]) for k in ("salt", "hash"))
    if bad:
        raise CorruptInput(f"{path} holds a malformed key record; restore the file, or delete it and re-add the keys")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes editing the keys (POSIX ``flock``; none elsewhere)."""
    try:
        import fcntl
    except ImportError:  # Windows: edits are rare and manual; the write itself is still atomic
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
