"""Executors: where a job's expensive, independent work runs (this process, a process pool, a cluster).

A job (folder ingest, graph construction, consolidation's graph step) splits its work into batches
whose results the driver then writes, one writer, in order. The :class:`Executor` protocol is the
only thing the jobs know about where the batches run::

    results = executor.map_batches(make_fn, batches)  # an iterator, in submission order

``make_fn`` is a picklable zero-argument factory that builds one worker's function: it runs once per
worker, so models load once per worker (a Ray actor each in :mod:`omnimem.executors_ray`; a pool
process's initializer here), and the function it returns is called once per batch. Results come
back in the order the batches were given, so the driver's writes are the same, in the same order, as
a run in one process.

Failures: an exception raised by the function for a batch propagates (the job's own error, not
retried: bad input is reported by the job, never retried). A worker that dies (killed, out of
memory, a crash in native code) is a system failure: an executor may retry its batch on a fresh
worker; when it gives up it raises :class:`WorkerLost` with the batch's index, after yielding every
earlier result.

:class:`InProcessExecutor` is the reference: the calling thread with one worker, else a pool of
spawned processes (or threads). stdlib only.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar, runtime_checkable

from omnimem.errors import ConfigError, OmnimemError

__all__ = ["Executor", "InProcessExecutor", "WorkerLost", "MakeFn"]

B = TypeVar("B")
R = TypeVar("R")
MakeFn = Callable[[], Callable[[Any], Any]]  # builds one worker's batch function (picklable)


class WorkerLost(OmnimemError, RuntimeError):
    """A worker died on a batch (killed, out of memory, a native crash) more times than retries allow."""

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(message)
        self.index = index  # the batch's position in the batches given to ``map_batches``


@runtime_checkable
class Executor(Protocol):
    """Runs ``make_fn()(batch)`` for each batch on its workers; see the module docstring."""

    workers: int  # how many workers run batches at once

    def map_batches(self, make_fn: MakeFn, batches: Iterable[Any]) -> Iterator[Any]:
        """Each batch's result, in submission order; ``batches`` is read lazily (a bounded window)."""
        ...


_local = threading.local()  # the worker's function in a pool process or thread


def _init_worker(make_fn: MakeFn) -> None:
    _local.fn = make_fn()


def _call(batch: Any) -> Any:
    return _local.fn(batch)


class InProcessExecutor:
    """The reference executor: the calling thread (``workers=1``), or a pool of this machine.

    ``workers > 1`` with ``pool="process"`` spawns that many processes (each runs ``make_fn`` once
    in its initializer; a calling script needs the usual ``if __name__ == "__main__":`` guard), with
    ``pool="thread"`` that many threads (each builds its own function). A pool process that dies
    breaks the pool: :class:`WorkerLost` names the first unfinished batch, not necessarily the one that
    killed it (no retries here: the Ray executor retries on a fresh worker).
    """

    def __init__(self, workers: int = 1, *, pool: str = "process") -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be an int >= 1, got {workers!r}")
        if pool not in ("process", "thread"):
            raise ConfigError(f"pool must be 'process' or 'thread', got {pool!r}")
        self.workers = workers  # batches run at once
        self.pool = pool  # "process" (spawned, for CPU-bound model work) or "thread"

    def __repr__(self) -> str:
        return f"InProcessExecutor(workers={self.workers}, pool={self.pool!r})"

    def __enter__(self) -> InProcessExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: pools live only inside one ``map_batches``."""

    def map_batches(self, make_fn: MakeFn, batches: Iterable[Any]) -> Iterator[Any]:
        if self.workers == 1:
            fn = make_fn()
            for batch in batches:
                yield fn(batch)
            return
        with self._pool(make_fn) as pool:
            window: deque[tuple[int, Future]] = deque()
            for index, batch in enumerate(batches):
                try:
                    future = pool.submit(_call, batch)
                except BrokenProcessPool as e:  # a worker died while this batch was being read
                    while window:  # finished batches still come out; the first lost one raises
                        yield _result(*window.popleft())
                    raise WorkerLost(f"a worker process died before batch {index} ({e})", index=index) from e
                window.append((index, future))
                if len(window) >= 2 * self.workers:
                    yield _result(*window.popleft())
            while window:
                yield _result(*window.popleft())

    def _pool(self, make_fn: MakeFn) -> ProcessPoolExecutor | ThreadPoolExecutor:
        if self.pool == "thread":
            return ThreadPoolExecutor(self.workers, "omnimem-worker", initializer=_init_worker, initargs=(make_fn,))
        import multiprocessing

        # spawn, not fork: the driver holds database connections and maybe torch threads
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker, initargs=(make_fn,))


def _result(index: int, future: Future) -> Any:
    try:
        return future.result()
    except BrokenProcessPool as e:
        raise WorkerLost(f"a worker process died on batch {index} ({e})", index=index) from e
