"""Graph extraction off the write path: a two-stage pipeline, encoding here, extraction on a worker.

An add is encoded, committed (items, vectors and a durable ``pending`` note that extraction is owed,
in one transaction) and indexed on the caller's thread; its graph extraction (spaCy parse, graph rows,
facts observed, the note cleared) then runs on one background thread while the caller encodes its
next batch. On a 2-core machine the encoder and the parser overlap instead of taking turns.

- **Batching across calls.** The worker takes every batch queued so far, up to ``max_batch`` items,
  as one extraction: one ``nlp.pipe`` run and one graph transaction for several small adds.
- **Backpressure.** An add waits while ``max_queued`` items are queued, so a producer faster than
  the parser (vectors handed in, nothing to encode) never holds a whole import in memory.
- **Reading your own writes.** A read that depends on the graph (``Memory.graph``, ``facts``,
  ``context``, ``consolidate``, ``check``, ``delete`` ...) first waits for what this process has
  queued (:meth:`ExtractionQueue.settled`); search and the episodic tree do not wait. Inside such a
  read, or on the worker itself, extraction runs inline: nothing waits on itself.
- **Crash story.** Nothing here is durable and nothing needs to be: the ``pending`` note is written
  with the items. A process killed with batches queued leaves their notes; ``Memory.catch_up`` (run by
  a later add for items older than a grace period, and by ``check`` and ``consolidate``) does the
  work then. An extraction that raises is logged and leaves the items stored and their notes in place.
  ``close`` drains the queue; a process that exits without closing drains it too (the worker is not
  a daemon thread, and it exits whenever the queue is empty).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from omnimem.config import GraphConfig
from omnimem.encoders import Encoder
from omnimem.errors import BackendUnavailable, MemoryLocked
from omnimem.graph.builder import GraphBuilder
from omnimem.graph.extract import Extraction
from omnimem.retrieval.threads import later, narrow
from omnimem.stores.base import GraphStore
from omnimem.types import Item, to_iso

if TYPE_CHECKING:  # pragma: no cover
    from omnimem.memory.core import Memory

__all__ = [
    "GRAPH_JOB",
    "ExtractionQueue",
    "Parse",
    "encode_beside",
    "reads_graph",
    "fast_builder",
    "extract_committed",
    "owed_items",
]

GRAPH_JOB = "graph"  # the pending-work note of graph extraction on add
ENCODE_CHUNK = 4  # texts an add encodes per thread decision beside the worker (encode_beside)

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def reads_graph(method: F) -> F:
    """Decorate a ``Memory`` method that reads (or changes) the graph: it runs inside
    ``self._extraction.settled()``, so it sees every add this process made before the call."""

    @functools.wraps(method)
    def settled_method(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._extraction.settled():
            return method(self, *args, **kwargs)

    return settled_method  # type: ignore[return-value]


class ExtractionQueue:
    """Committed batches waiting for graph extraction, and the one worker thread that extracts them.

    ``extract(items)`` does the work of one batch and must not raise for a bad item (it is
    ``Memory._extract_batch``); anything it raises is logged and the worker goes on.
    """

    def __init__(self, extract: Callable[[list[Item]], None], config: GraphConfig, *, name: str) -> None:
        self._extract = extract
        self.name = name  # the worker thread's name, for logs and debuggers
        self.max_queued = config.background_queue  # items queued before submit waits (backpressure)
        self.max_batch = config.background_batch  # most items one extraction takes from the queue
        self._cond = threading.Condition()
        self._queue: deque[tuple[int, list[Item]]] = deque()  # (ticket, items), in submission order
        self._queued = 0  # items in _queue
        self._submitted = 0  # ticket of the last batch submitted
        self._done = 0  # ticket of the last batch extracted (batches finish in ticket order)
        self._busy: set[str] = set()  # ids of the batch being extracted
        self._worker: threading.Thread | None = None
        self._local = threading.local()  # .depth: this thread is inside settled()

    # -- the producer side -------------------------------------------------------------------
    def submit(self, items: Sequence[Item]) -> None:
        """Queue committed items for extraction; waits while the queue is full."""
        if not items:
            return
        with self._cond:
            while self._queued >= self.max_queued and self._worker is not None:
                self._cond.wait()
            self._submitted += 1
            self._queue.append((self._submitted, list(items)))
            self._queued += len(items)
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name=self.name)
                self._worker.start()

    def inline(self) -> bool:
        """Whether the calling thread extracts its own adds now: the worker itself, or a thread inside
        :meth:`settled` (a read that adds, such as a fact correction, sees its add's graph at once)."""
        return self._on_worker() or getattr(self._local, "depth", 0) > 0

    def active(self) -> bool:
        """Whether the worker has work: a batch queued or being extracted."""
        return self._queued > 0

    def owned_ids(self) -> set[str]:
        """Ids of the items queued or being extracted: ``Memory.catch_up`` leaves them to the worker."""
        with self._cond:
            return {item.id for _, items in self._queue for item in items} | self._busy

    # -- the reader side ---------------------------------------------------------------------
    def wait(self) -> None:
        """Block until every batch submitted before this call is extracted (at once on the worker)."""
        if self._on_worker():
            return
        with self._cond:
            target = self._submitted
            while self._done < target:
                self._cond.wait()

    def settle(self) -> None:
        """:meth:`wait`, unless the calling thread is inside :meth:`settled` already (or the worker)."""
        if getattr(self._local, "depth", 0) == 0:
            self.wait()

    @contextmanager
    def settled(self) -> Iterator[None]:
        """A read of the graph: wait for the queue once, at the outermost level; adds made inside are
        extracted inline. Never enter it while holding the store's write lock (the worker needs it)."""
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self.wait()
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth

    def close(self) -> None:
        """Drain the queue: every batch submitted so far is extracted when this returns."""
        self.wait()

    # -- the worker --------------------------------------------------------------------------
    def _on_worker(self) -> bool:
        return self._worker is not None and threading.current_thread() is self._worker

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._worker = None  # the next submit starts a new worker
                    self._cond.notify_all()
                    return
                ticket, items = self._queue.popleft()
                while self._queue and len(items) + len(self._queue[0][1]) <= self.max_batch:
                    ticket, more = self._queue.popleft()
                    items = items + more
                self._busy = {item.id for item in items}
            try:
                with narrow():  # one core: the caller's encoder has the other (encode_beside)
                    self._extract(items)
            except BaseException:  # the items are committed and keep their pending note: caught up later
                log.exception("background graph extraction of %d item(s) failed; they stay owed", len(items))
            finally:
                with self._cond:
                    self._queued -= len(items)
                    self._busy = set()
                    self._done = ticket
                    self._cond.notify_all()


def encode_beside(
    encoder: Encoder, texts: list[str], busy: Callable[[], bool], chunk: int = ENCODE_CHUNK
) -> np.ndarray:
    """``encoder.encode(texts)`` in chunks, each on one OpenMP thread while ``busy()`` (a parse runs
    on another thread: the background worker's, or this add's own, :class:`Parse`) and on all
    of them otherwise. Two OpenMP threads beside the parser put three busy threads on two cores: the
    encoder's threads meet at a barrier after every layer, so the one the parser preempted holds the
    other up, and the parse cost its whole time on top of the encoding (LoCoMo dev ingest,
    ``benchmarks/ingest.py``: 0.71 of the encoder-only floor). With the encoder narrowed while the
    parser runs, each has a core: 0.79 of the floor (best of three rounds, floor measured between
    them). Chunks of 4 texts: with 16, a chunk begun on one thread ran on long after the parse it
    made room for had ended."""
    if not busy():
        return encoder.encode(texts, modality="text")
    parts = []
    for start in range(0, len(texts), chunk):
        with narrow() if busy() else nullcontext():
            parts.append(encoder.encode(texts[start : start + chunk], modality="text"))
    return np.concatenate(parts) if parts else encoder.encode([], modality="text")


class Parse:
    """The spaCy parse of an add's items, started on a worker thread before the add encodes them, for
    an add that extracts its graph inline: the parse needs no vector, so it runs on one core while the
    encoder has the other (:func:`encode_beside`), and the graph step after the commit only writes.

    Best effort: a parse that fails (or a parser that cannot load) gives ``None`` and the graph step
    parses as it would have, with its own error handling."""

    def __init__(self, builder: Callable[[], GraphBuilder], items: Sequence[Item]) -> None:
        """Start parsing ``items`` (each with text) through ``builder()``'s extractor."""
        self._finished = threading.Event()
        self._result = later(self._parse, builder, list(items))

    def _parse(self, builder: Callable[[], GraphBuilder], items: list[Item]) -> dict[str, Extraction] | None:
        try:
            found = builder().extractor.extract([it.text for it in items], speakers=[it.speaker for it in items])
            return {it.id: extraction for it, extraction in zip(items, found)}
        except Exception as e:  # noqa: BLE001 - the graph step parses again and reports what fails
            log.debug("parse beside the encoding failed (%s); the graph step parses again", e)
            return None
        finally:
            self._finished.set()

    def busy(self) -> bool:
        return not self._finished.is_set()

    def result(self) -> dict[str, Extraction] | None:
        """Item id -> its extraction (None when the parse failed)."""
        return self._result()


def fast_builder(graph: GraphStore, encoder: Encoder, config: GraphConfig) -> GraphBuilder:
    """The memory's fast (no-LLM) graph builder over ``config.spacy_model``. It stores the names of new
    named entities embedded by the text encoder, so a query links to them without encoding names."""
    from omnimem.graph.extract import SpacyExtractor

    return GraphBuilder(
        graph,
        SpacyExtractor.from_pretrained(config.spacy_model),
        embed=lambda texts: encoder.encode(list(texts), modality="text"),
    )


def extract_committed(memory: Memory, items: list[Item], parsed: Mapping[str, Extraction] | None = None) -> None:
    """Graph rows and facts for committed items, then their ``pending`` note cleared. ``parsed``: item
    id -> extraction done already (:class:`Parse`); the other items are parsed here.

    Best effort: a failing batch is split in halves until the bad items are alone, so one bad item
    leaves only itself without graph links (``omnimem graph build`` reads every item without links
    later), and the note of a tried item is cleared. A memory locked by another process raises and
    leaves the notes, so a later :meth:`Memory.catch_up` retries. A failure here never loses an item.
    """
    if not items:
        return
    try:
        memory.builder.add_items(items, parsed=parsed)
        memory.semantic.observe([it.id for it in items])
    except MemoryLocked:
        raise  # not the items' fault: their notes stay
    except Exception as e:  # noqa: BLE001 - the items are committed: extraction is best effort
        if len(items) > 1 and not isinstance(e, BackendUnavailable):
            extract_committed(memory, items[: len(items) // 2], parsed)
            extract_committed(memory, items[len(items) // 2 :], parsed)
            return
        log.warning("graph extraction skipped for item %s (%s); run 'omnimem graph build' to retry", items[0].id, e)
    memory.store.finish(GRAPH_JOB, [it.id for it in items])


def owed_items(memory: Memory, *, older_than_s: float, limit: int) -> list[Item]:
    """Items whose graph extraction is owed (their add committed, the extraction did not), stored at
    least ``older_than_s`` seconds ago, less those this process's worker holds."""
    before = to_iso(time.time() - older_than_s) if older_than_s else None
    owned = memory._extraction.owned_ids()
    owed = [i for i in memory.store.pending(GRAPH_JOB, limit, added_before=before) if i not in owned]
    return [item for item in memory.store.get(owed) if item is not None]
