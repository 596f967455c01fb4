"""The batch graph-construction job: every item not yet processed, resumable, idempotent, parallel.

M3KG-RAG (arXiv 2512.20136), "M3KG construction", run as a job over a whole memory rather than on
the write path. :func:`build_graph` is the fast (spaCy, no-LLM) job; the agentic job (rewriter,
extractor, normalizer, searcher, selector, refiner, inspector) lives in
``omnimem.agents.kg_build`` and runs on the same plumbing: :meth:`RecordStore.progress` (which items each
mode has processed), :func:`run_job` (batches, a worker pool, serialized SQLite writes, a progress
callback or bar) and :class:`GraphJobReport`.

Resumable: an item is marked done in ``graph_progress`` only after its rows are committed, so a
killed job re-reads at most the batches in flight; graph writes are content-hashed, so re-reading
changes nothing (idempotent). Sense splitting (:mod:`omnimem.graph.senses`: one name, two referents)
then entity resolution run once at the end; a flag row says they are owed, so a job killed before
them runs them over every entity on its next run.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from omnimem.errors import ConfigError, OmnimemError
from omnimem.executors import Executor as JobExecutor
from omnimem.executors import MakeFn
from omnimem.graph.builder import rows_from_extraction, store_name_embeddings
from omnimem.graph.extract import Extraction, ExtractorConfig, SpacyExtractor, load_spacy
from omnimem.graph.resolve import Embed, EntityResolver
from omnimem.graph.senses import SenseSplitter, route_senses
from omnimem.graph.store import EntityRow, GraphStore, MentionRow, TripletRow
from omnimem.types import Item

__all__ = [
    "Failure", "BatchOutcome", "GraphJobReport", "Progress", "run_job", "resolve_new",
    "split_senses", "run_with_resolution", "summarize", "write_rows", "build_graph", "graph_stats", "FAST",
]  # fmt: skip

log = logging.getLogger(__name__)

FAST = "fast"  # the mode name of the spaCy job in graph_progress
_CHUNK = 500

Progress = Callable[[int, int], None] | bool | None  # (done, total) callback; None: a bar on a TTY; False: off


@dataclass(frozen=True)
class Failure:
    """One item a job could not process as asked (it may still have fallback rows)."""

    item_id: str  # the item
    step: str  # where it failed: "extract", "rewrite", "write" ...
    message: str  # what went wrong


@dataclass
class BatchOutcome:
    """What committing one batch did (internal to a job; summed into the report)."""

    done: list[str] = field(default_factory=list)  # item ids to mark processed
    skipped: int = 0  # items with nothing to read (no text, or already in the graph)
    counts: Counter = field(default_factory=Counter)  # new entities / mentions / triplets / sources
    entity_ids: list[str] = field(default_factory=list)  # entities written, for resolution
    failures: list[Failure] = field(default_factory=list)  # items that failed (with fallback or not)
    llm_calls: Counter = field(default_factory=Counter)  # LLM calls by step


@dataclass(frozen=True)
class GraphJobReport:
    """What one :func:`build_graph` run did."""

    mode: str  # "fast" or "agentic"
    items: int = 0  # items processed in this run (skipped ones included)
    skipped: int = 0  # of those, items with nothing to read (no text, or already in the graph)
    entities: int = 0  # new entities
    mentions: int = 0  # new mentions
    triplets: int = 0  # new triplets
    sources: int = 0  # new triplet -> item links
    merges: int = 0  # entity merges made by resolution
    splits: int = 0  # entities split into two senses (omnimem.graph.senses)
    llm_calls: int = 0  # LLM calls made (0 on the fast path)
    llm_calls_by_step: dict[str, int] = field(default_factory=dict)  # LLM calls per agent step
    failures: tuple[Failure, ...] = ()  # items that failed a step (logged with their ids)
    remaining: int = 0  # items still unprocessed (a limit was given, or batches failed)
    seconds: float = 0.0  # wall-clock time of the run

    @property
    def llm_calls_per_item(self) -> float:
        read = self.items - self.skipped
        return self.llm_calls / read if read else 0.0

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["failures"] = [dataclasses.asdict(f) for f in self.failures]
        out["llm_calls_per_item"] = round(self.llm_calls_per_item, 3)
        out["items_per_s"] = round(self.items_per_s, 2)
        return out


class _Bar:
    """The job's progress: a caller's ``(done, total)`` callback, a tqdm bar on a TTY, or nothing."""

    def __init__(self, progress: Progress, total: int, desc: str) -> None:
        self.callback = progress if callable(progress) else None
        self.total, self.done = total, 0
        self.tqdm = None
        if progress is None and total and sys.stderr.isatty():
            from tqdm import tqdm

            self.tqdm = tqdm(total=total, desc=desc, unit="item")

    def update(self, n: int) -> None:
        self.done += n
        if self.tqdm is not None:
            self.tqdm.update(n)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.tqdm is not None:
            self.tqdm.close()


def _items(store: Any, ids: Sequence[str]) -> list[Item]:
    return [item for item in store.get(list(ids)) if item is not None]


def run_job(
    store: Any,
    *,
    mode: str,
    prepare: Callable[[list[Item]], Any],
    commit: Callable[[list[Item], Any], BatchOutcome],
    batch_size: int,
    workers: int = 1,
    pool: str = "process",
    progress: Progress = None,
    limit: int | None = None,
    executor: JobExecutor | None = None,
    make_prepare: MakeFn | None = None,
) -> tuple[list[BatchOutcome], int]:
    """Run ``prepare`` (in a pool when ``workers > 1``) then ``commit`` (here, serially) per batch.

    Batches are the pending items of ``mode`` in insertion order, ``batch_size`` each, at most
    ``limit`` items in all. ``prepare(items)`` must be picklable for ``pool="process"``. A batch is
    marked processed after its ``commit``; an exception from either propagates (the job stops, what
    was committed stays, the next run starts from the first unmarked batch). Returns the outcomes
    and the number of items still pending.

    ``executor`` (:class:`omnimem.executors.Executor`: a process pool, a Ray cluster) runs the
    prepare step instead of ``workers``/``pool``: ``make_prepare()`` builds each worker's
    ``prepare`` once (models load once per worker), the items go out as values and the results come
    back in batch order, so the commits are those of a run in one process, in the same order.
    """
    if batch_size <= 0 or workers <= 0:
        raise ConfigError(f"batch_size and workers must be positive, got {batch_size} and {workers}")
    if pool not in ("process", "thread"):
        raise ConfigError(f"pool must be 'process' or 'thread', got {pool!r}")
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be >= 0 or None, got {limit}")
    table = store.progress()
    pending = table.pending(mode)
    todo = pending[:limit] if limit is not None else pending
    batches = [todo[k : k + batch_size] for k in range(0, len(todo), batch_size)]
    bar = _Bar(progress, len(todo), f"graph build ({mode})")
    outcomes: list[BatchOutcome] = []

    def finish(ids: list[str], items: list[Item], prepared: Any) -> None:
        outcome = commit(items, prepared)
        gone = set(ids) - {item.id for item in items}  # deleted since listed: nothing to do
        table.mark([*outcome.done, *gone], mode)
        outcomes.append(outcome)
        bar.update(len(ids))

    try:
        if executor is not None:
            fed: deque[tuple[list[str], list[Item]]] = deque()

            def feed() -> Iterator[list[Item]]:  # read here, lazily, as the executor's window moves
                for ids in batches:
                    fed.append((ids, _items(store, ids)))
                    yield fed[-1][1]

            make = make_prepare or functools.partial(_constant, prepare)
            for prepared in executor.map_batches(make, feed()):
                ids, items = fed.popleft()
                finish(ids, items, prepared)
        elif workers == 1 or len(batches) <= 1:
            for ids in batches:
                items = _items(store, ids)
                finish(ids, items, prepare(items))
        else:
            with _executor(pool, workers) as executor:
                for ids, items, prepared in _pipelined(executor, prepare, store, batches, workers):
                    finish(ids, items, prepared)
    finally:
        bar.close()
    return outcomes, len(pending) - sum(len(o.done) for o in outcomes)


def _constant(fn: Callable[[list[Item]], Any]) -> Callable[[list[Item]], Any]:
    """A ``make_prepare`` for a ``prepare`` that needs no per-worker state."""
    return fn


def _executor(pool: str, workers: int) -> Executor:
    if pool == "thread":
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omnimem-graph")
    import multiprocessing

    # spawn, not fork: the parent holds SQLite connections and maybe torch threads
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _pipelined(
    executor: Executor, prepare: Callable[[list[Item]], Any], store: Any, batches: list[list[str]], workers: int
) -> Iterator[tuple[list[str], list[Item], Any]]:
    """Keep ``2 * workers`` batches in flight; yield each one's result in submission order."""
    window: list[tuple[list[str], list[Item], Future]] = []
    queue = iter(batches)
    for ids in queue:
        items = _items(store, ids)
        window.append((ids, items, executor.submit(prepare, items)))
        if len(window) >= 2 * workers:
            ids0, items0, future = window.pop(0)
            yield ids0, items0, future.result()
    for ids0, items0, future in window:
        yield ids0, items0, future.result()


def _embed(memory: Any) -> Embed | None:
    """The memory's text encoder as an ``embed`` for contexts (None: bag-of-words)."""
    encoder = getattr(memory, "encoder", None)
    return (lambda texts: encoder.encode(list(texts), modality="text")) if encoder is not None else None


def split_senses(memory: Any, graph: GraphStore, entity_ids: Sequence[str], *, owed: bool) -> int:
    """Sense splitting after a job: the entities written (every entity if it was ``owed``)."""
    if not owed and not entity_ids:
        return 0
    return len(SenseSplitter(_embed(memory)).split(graph, None if owed else list(dict.fromkeys(entity_ids))))


def resolve_new(memory: Any, graph: GraphStore, entity_ids: Sequence[str], *, owed: bool) -> int:
    """Entity resolution after a job: the new entities against all (every entity if one was ``owed``)."""
    embed = _embed(memory)
    if not owed and not entity_ids:
        return 0
    resolution = EntityResolver(embed).resolve(graph, None if owed else list(dict.fromkeys(entity_ids)))
    return len(resolution.merges)


def summarize(
    mode: str, outcomes: Sequence[BatchOutcome], *, merges: int, remaining: int, seconds: float, splits: int = 0
) -> GraphJobReport:
    """Sum batch outcomes into a :class:`GraphJobReport`."""
    counts: Counter = Counter()
    calls: Counter = Counter()
    for o in outcomes:
        counts.update(o.counts)
        calls.update(o.llm_calls)
    failures = tuple(f for o in outcomes for f in o.failures)
    return GraphJobReport(
        mode=mode, items=sum(len(o.done) for o in outcomes), skipped=sum(o.skipped for o in outcomes),
        entities=counts["entities"], mentions=counts["mentions"], triplets=counts["triplets"],
        sources=counts["sources"], merges=merges, splits=splits, llm_calls=sum(calls.values()), llm_calls_by_step=dict(calls),
        failures=failures, remaining=remaining, seconds=seconds,
    )  # fmt: skip


def run_with_resolution(memory: Any, *, mode: str, resolve: bool, split: bool | None = None, **job: Any) -> GraphJobReport:  # fmt: skip
    """:func:`run_job` then :func:`split_senses` and :func:`resolve_new`, with the owed flag kept across crashes.

    ``split``: split homonyms into senses before resolving (only with ``resolve``); None: the
    memory config's ``graph.split_senses``.
    """
    if split is None:
        split = memory.config.graph.split_senses
    start = time.perf_counter()
    table = memory.store.progress()
    owed = table.flagged(mode)
    if resolve and table.pending(mode):
        table.set_flag(mode, True)
    outcomes, remaining = run_job(memory.store, mode=mode, **job)
    merges = splits = 0
    if resolve:
        written = [e for o in outcomes for e in o.entity_ids]
        splits = split_senses(memory, memory.graph, written, owed=owed) if split else 0
        merges = resolve_new(memory, memory.graph, written, owed=owed)
        table.set_flag(mode, False)
    seconds = time.perf_counter() - start
    report = summarize(mode, outcomes, merges=merges, splits=splits, remaining=remaining, seconds=seconds)
    log.info("graph build (%s): %s", mode, {k: v for k, v in report.to_dict().items() if k != "failures"})
    for failure in report.failures:
        log.warning("graph build (%s): item %s failed at %s: %s", mode, failure.item_id, failure.step, failure.message)
    return report


# -- the fast job --------------------------------------------------------------------------------


def _extract(model: str, config: ExtractorConfig, items: list[Item]) -> list[Extraction | None]:
    """spaCy extraction of the items with text (None for the rest); runs in a worker process."""
    return _inline(SpacyExtractor(load_spacy(model), config), items)


def _extractor_fn(model: str, config: ExtractorConfig) -> Callable[[list[Item]], list[Extraction | None]]:
    """One worker's prepare step (an executor's ``make_prepare``): spaCy loaded once, then per batch."""
    return functools.partial(_inline, SpacyExtractor(load_spacy(model), config))


def _inline(extractor: SpacyExtractor, items: list[Item]) -> list[Extraction | None]:
    todo = [item for item in items if item.text.strip()]
    found = iter(extractor.extract([i.text for i in todo], speakers=[i.speaker for i in todo]))
    return [next(found) if item.text.strip() else None for item in items]


def write_rows(
    graph: GraphStore,
    rows: Mapping[str, tuple[list[EntityRow], list[MentionRow], list[TripletRow]]],
    *,
    embed: Embed | None = None,
) -> BatchOutcome:
    """Write each item's rows in one transaction (sources = the item ids: the coverage property).

    ``embed``: the memory's text encoder. Mentions of names that have senses go to the closest sense
    first (:func:`route_senses`), and the names of named entities without a stored embedding are
    embedded in one batch and stored (:func:`store_name_embeddings`); without it (the agentic
    builder), query linking encodes those names on demand.
    """
    rows = route_senses(graph, rows, embed)
    entities = [e for r in rows.values() for e in r[0]]
    mentions = [m for r in rows.values() for m in r[1]]
    triplets = [t for r in rows.values() for t in r[2]]
    counts = graph.write(entities, mentions, triplets) if rows else {}
    store_name_embeddings(graph, entities, embed)
    return BatchOutcome(done=list(rows), counts=Counter(counts), entity_ids=[e.id for e in entities])


def _fast_commit(
    graph: GraphStore, embed: Embed | None, items: list[Item], extractions: list[Extraction | None]
) -> BatchOutcome:
    linked = graph.items_with_links([i.id for i in items])
    rows = {}
    skipped: list[str] = []
    for item, extraction in zip(items, extractions):
        if extraction is None or item.id in linked:  # no text, or extracted on add already
            skipped.append(item.id)
        else:
            rows[item.id] = rows_from_extraction(item, extraction)
    try:
        outcome = write_rows(graph, rows, embed=embed)
    except OmnimemError as e:
        log.warning("graph build (fast): batch of %d items not written: %s", len(rows), e)
        return BatchOutcome(done=skipped, skipped=len(skipped), failures=[Failure(i, "write", str(e)) for i in rows])
    outcome.done += skipped
    outcome.skipped = len(skipped)
    return outcome


def build_graph(
    memory: Any,
    *,
    workers: int = 1,
    batch_size: int = 64,
    progress: Progress = None,
    resolve: bool = True,
    limit: int | None = None,
    split: bool | None = None,
    executor: JobExecutor | None = None,
) -> GraphJobReport:
    """Build the graph with the fast spaCy extractor over every item the fast job has not processed.

    ``memory``: an ``omnimem.Memory`` (its ``store``, ``graph``, ``builder``, ``encoder`` and
    ``config.graph.spacy_model`` are used). ``workers > 1`` parses in that many worker processes
    (each loads spaCy once; they are spawned, so a calling script needs the usual
    ``if __name__ == "__main__":`` guard) while this process writes. ``progress``: a ``(done, total)`` callback,
    ``None`` for a tqdm bar when stderr is a TTY, ``False`` for nothing. ``resolve``: run entity
    resolution over the new entities at the end, after splitting homonyms into senses unless ``split``
    is False (None: ``memory.config.graph.split_senses`` if set, else on). ``limit``: process at
    most that many items. ``executor`` (:mod:`omnimem.executors`; a Ray cluster with
    :class:`omnimem.executors_ray.RayExecutor`) parses the batches on its workers instead of
    ``workers`` (spaCy loaded once per worker); writing, sense splitting and entity resolution stay
    here, once, over the whole result: the graph is the one a run in this process builds.
    Items that already have graph rows (extracted on add) are marked done without re-reading.
    """
    extractor = memory.builder.extractor
    model = memory.config.graph.spacy_model
    # an executor's workers each build their own prepare step (spaCy loaded once per worker)
    make_prepare = functools.partial(_extractor_fn, model, extractor.config) if executor is not None else None
    if workers > 1 and executor is None:
        prepare = functools.partial(_extract, model, extractor.config)
    else:
        prepare = functools.partial(_inline, extractor)
    return run_with_resolution(
        memory, mode=FAST, resolve=resolve, split=split, prepare=prepare,
        commit=functools.partial(_fast_commit, memory.graph, _embed(memory)),
        batch_size=batch_size, workers=workers, pool="process", progress=progress, limit=limit,
        executor=executor, make_prepare=make_prepare,
    )  # fmt: skip


def graph_stats(memory: Any) -> dict[str, Any]:
    """Counts of the graph (entities, triplets, mentions, relations, merges), coverage and job progress."""
    graph: GraphStore = memory.graph
    table = memory.store.progress()
    counts, stats = graph.counts(), graph.stats()
    types, described = stats["types"], stats["described"]
    items = len(memory.store)
    done = table.counts()
    return {
        **counts,
        "items": items,
        "described_entities": described,
        "entity_types": dict(sorted(types.items(), key=lambda kv: -kv[1])),
        "uncovered_triplets": len(graph.check_coverage()),
        "processed": done,
        "pending": {mode: items - n for mode, n in done.items()} | ({} if FAST in done else {FAST: items}),
    }
