"""The memories a server process holds open, at most ``max_open`` idle ones, least recently used out.

One :class:`MemoryPool` per app. A memory opens on first use and stays open (its SQLite connection,
its FAISS indexes) until more than ``max_open`` are open, when the least recently used idle one is
closed (it reopens on its next use), or until :meth:`MemoryPool.close`. Each memory has a lock that
every request touching it holds, so the threadpool serving sync endpoints never runs two operations
on one memory at once.

Opening a memory may load a model (seconds), so it runs outside the pool's own lock: requests to
memories already open never wait for another memory to open. A per-name guard opens each memory once
however many requests ask for it together, and makes a request for a memory being closed wait, then
reopen it. Without a given ``encoder``, memories whose saved configs name the same encoder (name,
device) share one instance: a :class:`SharedEncoder`, which runs one ``encode`` at a time.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnimem.config import MemoryConfig
from omnimem.encoders import create_encoder
from omnimem.errors import ConfigError, NotFound
from omnimem.memory import Memory
from omnimem.memory.locations import read_saved_config
from omnimem.server.paths import check_name, confine, is_memory_dir
from omnimem.server.places import Places, places_of

__all__ = ["MemoryPool", "SharedEncoder", "DEFAULT_MAX_OPEN", "check_name", "confine", "is_memory_dir"]

log = logging.getLogger(__name__)

DEFAULT_MAX_OPEN = 16  # memories a server keeps open; past it the least recently used idle one closes


class SharedEncoder:
    """One encoder serving several memories; ``encode`` calls run one at a time (a Hugging Face fast
    tokenizer raises "Already borrowed" when two threads use it at once)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner  # the Encoder built by create_encoder
        self.name = inner.name
        self.dim = inner.dim
        self.modalities = tuple(getattr(inner, "modalities", ("text",)))
        self._lock = threading.Lock()

    def encode(self, inputs: Sequence[Any], *, modality: str = "text") -> Any:
        """The inner encoder's ``encode``: float32 ``(len(inputs), dim)``, rows L2-normalised."""
        with self._lock:
            return self.inner.encode(inputs, modality=modality)

    def __getattr__(self, name: str) -> Any:  # registry_name, device, batch_size ...
        if name == "inner":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


class ReadWriteLock:
    """Many readers or one writer; a waiting writer goes before readers that arrive after it."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer and not self._waiting_writers)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            self._cond.wait_for(lambda: not self._writer and not self._readers)
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class _Slot:
    memory: Memory
    lock: ReadWriteLock = field(default_factory=ReadWriteLock)  # searches share a memory, a write has it alone
    users: int = 0  # requests holding or waiting for the lock; only an idle slot (0) is evicted


class MemoryPool:
    """Open memories under ``root``, by name. ``encoder`` / ``config`` apply when opening or creating;
    ``max_open`` bounds how many stay open."""

    def __init__(
        self, root: Places | Path | str, *, encoder: Any = None, config: Any = None, max_open: int = DEFAULT_MAX_OPEN
    ) -> None:  # fmt: skip
        if isinstance(max_open, bool) or not isinstance(max_open, int) or max_open < 1:
            raise ConfigError(f"max_open must be an int >= 1 (memories kept open), got {max_open!r}")
        self.places = places_of(root) if isinstance(root, (str, Path)) else root  # directories or PG schemas
        self.encoder = encoder  # an omnimem Encoder for every memory (tests, custom setups); None: shared by config
        self.config = config  # a MemoryConfig for new memories; None: the default
        self.max_open = max_open  # open memories past which the least recently used idle one closes
        self._lock = threading.Lock()  # guards the dicts below; never held while a memory opens or closes
        self._slots: OrderedDict[str, _Slot] = OrderedDict()  # open memories, least recently used first
        self._pending: dict[str, threading.Event] = {}  # memories opening or closing: set when done
        self._encoders: dict[tuple[str, str], SharedEncoder] = {}  # (encoder name, device) -> the shared one
        self._encoder_locks: dict[tuple[str, str], threading.Lock] = {}  # one model load per key at a time

    def names(self) -> list[str]:
        """Names of the memories under the root (directories, or a database's schemas), sorted."""
        return self.places.names()

    def exists(self, name: str) -> bool:
        return self.places.exists(name)

    def open_names(self) -> list[str]:
        """Names of the memories open now, least recently used first."""
        with self._lock:
            return list(self._slots)

    def create(self, name: str) -> None:
        """Create the memory ``name``; raises :class:`ConfigError` if it exists."""
        path = self.places.target(check_name(name))
        taken = Path(path).exists() if isinstance(path, Path) else self.places.exists(name)
        with self._lock:
            if name in self._slots or name in self._pending or taken:
                raise ConfigError(f"memory {name!r} already exists; use it, or pick another name")
            done = self._pending[name] = threading.Event()
        slot = self._settle(name, done, lambda: self._open(path, create=True), users=0)
        if not getattr(slot.memory, "created", True):  # another server process created it a moment ago
            raise ConfigError(f"memory {name!r} already exists; use it, or pick another name")
        log.info("created memory %s", path)

    @contextmanager
    def use(self, name: str, *, write: bool = True) -> Iterator[Memory]:
        """Hold memory ``name`` (opened on first use) for one operation: alone (``write``), or beside
        other readers (``write=False``: search, context, reads; the memory's stores and index are safe
        for concurrent readers, so two cores serve two searches at once)."""
        slot = self._acquire(name)
        try:
            with slot.lock.writing() if write else slot.lock.reading():
                yield slot.memory
        finally:
            self._release(slot)

    def _acquire(self, name: str) -> _Slot:
        """The slot of ``name`` with one more user, opening the memory if no other request is."""
        path = self.places.target(check_name(name))
        while True:
            with self._lock:
                slot = self._slots.get(name)
                if slot is not None:
                    slot.users += 1
                    self._slots.move_to_end(name)
                    return slot
                done = self._pending.get(name)
                if done is None:
                    if not self.places.exists(name):
                        raise NotFound(f"no memory named {name!r}; create it with POST /v1/memories")
                    done = self._pending[name] = threading.Event()
                    break
            done.wait()  # another request opens (or closes) it: then look again
        return self._settle(name, done, lambda: self._open(path, create=False), users=1)

    def _settle(self, name: str, done: threading.Event, opener: Callable[[], Memory], *, users: int) -> _Slot:
        """Run ``opener`` (outside the lock); the memory it returns becomes the slot of ``name``."""
        try:
            memory = opener()
        except BaseException:
            with self._lock:
                del self._pending[name]
            done.set()
            raise
        with self._lock:
            slot = self._slots[name] = _Slot(memory, users=users)
            del self._pending[name]
        done.set()
        self._evict()
        return slot

    def _release(self, slot: _Slot) -> None:
        with self._lock:
            slot.users -= 1
            over = len(self._slots) > self.max_open
        if over:
            self._evict()

    def _evict(self) -> None:
        """Close the least recently used idle memories while more than ``max_open`` are open."""
        with self._lock:
            excess = len(self._slots) - self.max_open
            idle = [(name, slot) for name, slot in self._slots.items() if slot.users == 0][: max(excess, 0)]
            victims = []
            for name, slot in idle:  # a request for one waits until it is closed, then reopens it
                del self._slots[name]
                done = self._pending[name] = threading.Event()  # not pending while it had a slot
                victims.append((name, slot, done))
        for name, slot, done in victims:
            try:
                _close(slot)
                log.info("closed memory %s (least recently used of more than %d)", name, self.max_open)
            finally:
                with self._lock:
                    del self._pending[name]
                done.set()

    def _open(self, path: Path | str, *, create: bool) -> Memory:
        encoder = self.encoder
        if encoder is None:
            saved = self.config if create else read_saved_config(path)
            encoder = self._shared_encoder(saved or MemoryConfig())
        config = self.config if create else None
        return Memory.open(path, encoder=encoder, config=config, create=create)

    def _shared_encoder(self, config: MemoryConfig) -> SharedEncoder:
        """The one encoder of the pool for ``config.encoder`` (its name and device), built on first use."""
        spec = config.encoder
        key = (spec.name, spec.device)
        with self._lock:
            shared = self._encoders.get(key)
            if shared is not None:
                return shared
            build = self._encoder_locks.setdefault(key, threading.Lock())
        with build:  # one load per model; other memories and other models do not wait
            with self._lock:
                shared = self._encoders.get(key)
            if shared is None:
                shared = SharedEncoder(create_encoder(spec.name, device=spec.device, batch_size=spec.batch_size))
                with self._lock:
                    self._encoders[key] = shared
                log.info("loaded encoder %s on %s (shared by the memories that use it)", spec.name, spec.device)
        return shared

    def close(self) -> None:
        """Close every open memory, after those opening finish (safe to call twice; the pool stays usable)."""
        while True:
            with self._lock:
                waiting = list(self._pending.values())
                if not waiting:
                    slots, self._slots = list(self._slots.values()), OrderedDict()
                    break
            for done in waiting:
                done.wait()
        for slot in slots:
            _close(slot)


def _close(slot: _Slot) -> None:
    with slot.lock.writing():
        try:
            slot.memory.close()
        except Exception:  # one memory failing to close must not keep the others open
            log.exception("closing %s failed", slot.memory.path)
