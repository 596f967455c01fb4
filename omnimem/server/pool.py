"""The memories a server process holds open, and the rules for names and file paths clients send.

One :class:`MemoryPool` per app: a memory opens on first use and stays open (its SQLite connection,
its FAISS indexes) until :meth:`MemoryPool.close`. Each memory has a lock; every request that touches
it holds the lock, so the threadpool that serves sync endpoints never runs two operations on one
memory at once.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnimem.errors import ConfigError, NotFound
from omnimem.memory import Memory

__all__ = ["MemoryPool", "check_name", "confine", "is_memory_dir"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_name(name: str) -> str:
    """``name`` if it is a valid memory name (one directory, no separators, no dots)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"invalid memory name {name!r}: use 1-64 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return name


def is_memory_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "config.json").exists() or (path / "memory.db").exists())


def confine(path: str, allowed_root: Path | None) -> Path:
    """The real path of ``path`` (relative paths are taken under ``allowed_root``) if it lies inside
    ``allowed_root``, every symlink resolved; raises :class:`ConfigError` otherwise.

    A folder is accepted only if no file under it resolves outside the root either.
    """
    if allowed_root is None:
        raise ConfigError("ingest by path is disabled: start the server with allowed_root=... (or upload the file)")
    if "\x00" in path:
        raise ConfigError("path contains a NUL byte")
    root = allowed_root.resolve()
    candidate = Path(path)
    full = candidate if candidate.is_absolute() else root / candidate
    real = full.resolve()
    if not real.is_relative_to(root):
        raise ConfigError(f"path {path!r} is outside the allowed root {str(root)!r}; pass a path under it")
    if not real.exists():
        raise NotFound(f"path {path!r} does not exist under the allowed root")
    if real.is_dir():
        for child in real.rglob("*"):
            if not child.resolve().is_relative_to(root):
                raise ConfigError(f"{child.relative_to(real)} in {path!r} links outside the allowed root; remove it")
    return real


@dataclass
class _Slot:
    memory: Memory
    lock: threading.Lock = field(default_factory=threading.Lock)


class MemoryPool:
    """Open memories under ``root``, by name. ``encoder`` / ``config`` apply when opening or creating."""

    def __init__(self, root: Path, *, encoder: Any = None, config: Any = None) -> None:
        self.root = Path(root)
        self.encoder = encoder  # an omnimem Encoder for every memory (tests, custom setups); None: config's
        self.config = config  # a MemoryConfig for new memories; None: the default
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Names of the memory directories under the root, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if _NAME.fullmatch(p.name) and is_memory_dir(p))

    def exists(self, name: str) -> bool:
        return is_memory_dir(self.root / check_name(name))

    def create(self, name: str) -> None:
        """Create the memory ``name``; raises :class:`ConfigError` if it exists."""
        path = self.root / check_name(name)
        with self._lock:
            if path.exists():
                raise ConfigError(f"memory {name!r} already exists; use it, or pick another name")
            self._slots[name] = _Slot(self._open(path, create=True))
        log.info("created memory %s", path)

    @contextmanager
    def use(self, name: str) -> Iterator[Memory]:
        """Hold memory ``name`` (opened on first use) for one operation."""
        slot = self._slot(name)
        with slot.lock:
            yield slot.memory

    def _slot(self, name: str) -> _Slot:
        path = self.root / check_name(name)
        with self._lock:
            slot = self._slots.get(name)
            if slot is None:
                if not is_memory_dir(path):
                    raise NotFound(f"no memory named {name!r}; create it with POST /v1/memories")
                slot = self._slots[name] = _Slot(self._open(path, create=False))
            return slot

    def _open(self, path: Path, *, create: bool) -> Memory:
        config = self.config if create else None
        return Memory.open(path, encoder=self.encoder, config=config, create=create)

    def close(self) -> None:
        """Close every open memory (safe to call twice)."""
        with self._lock:
            slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            with slot.lock:
                try:
                    slot.memory.close()
                except Exception:  # one memory failing to close must not keep the others open
                    log.exception("closing %s failed", slot.memory.path)
