"""One BLAS thread while a query runs: numpy's idle BLAS threads must not spin against the encoder's.

A GRASP query interleaves torch (the encoder, on its OpenMP pool) with numpy / spaCy matrix products
on OpenBLAS's pool. The products are tiny (tens of rows), but after each one OpenBLAS's threads
busy-wait for more work while torch's threads want the same cores: on the 2-core CPU this made a
query 1.7x slower (``benchmarks/retrieval_latency.py`` at 10k items: p50 77 ms with both pools at two
threads, 46 ms with OpenBLAS at one). :func:`one_blas_thread` limits BLAS to one thread for the
duration of a query and restores it after; nested and concurrent queries share one limit (a
reference count), so the setting returns to the caller's when the last query ends. Without
``threadpoolctl`` it does nothing. OpenBLAS only honours *raising* its thread count from the main
thread: when the last query to end ran in a worker thread (a server's pool), BLAS stays on one
thread; omnimem's own work does not mind (ingest speed measured the same either way), and a caller
can raise it again with ``threadpoolctl.threadpool_limits``.

:func:`query_threads` adds OpenMP (torch's encoder and FAISS each bring a ``libgomp``) for the calling
thread: a query is one short sentence and a search of a few inverted lists, too small to split over
two cores, and while the second OpenMP thread spins waiting for the next region it takes the core the
query's BM25 runs on (:func:`omnimem.retrieval.hybrid.bm25_later`). Measured at 1M items
(``benchmarks/scale.py``): ``mem.search`` p50 45 ms with OpenMP at two threads, 30 ms
at one, the floor (encode + FAISS) the same either way. OpenMP's thread count is a per-thread
setting, so this limit is set and restored by each query in its own thread and does not touch an
ingest running in another. :func:`wider` lifts it again for a stage that runs alone: the second hop's
joint query (the question and a whole passage) encodes in 13.7 ms on two threads against 21 ms on one.

:func:`later` runs a query's independent side work (its BM25 search, its spaCy parse) on a small
shared pool of worker threads while the calling thread encodes and searches: on two cores a query then
costs about its longest path, not the sum of its parts.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

__all__ = ["one_blas_thread", "query_threads", "wider", "narrow", "later"]

T = TypeVar("T")

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"controller": None, "modules": 0, "active": 0, "limit": None}


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the body with BLAS libraries (OpenBLAS, MKL ...) on one thread."""
    with _LOCK:
        if _STATE["active"] == 0:
            _STATE["limit"] = _limit()
        _STATE["active"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["active"] -= 1
            if _STATE["active"] == 0 and _STATE["limit"] is not None:
                _STATE["limit"].restore_original_limits()
                _STATE["limit"] = None


def _limit() -> Any:
    controller = _controller()
    return None if controller is None else controller.limit(limits=1, user_api="blas")


def _controller() -> Any:
    """threadpoolctl's view of the loaded thread pools (None without threadpoolctl); call under _LOCK."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    loaded = len(sys.modules)  # a new import may have loaded another BLAS (faiss and torch bring their own)
    if _STATE["controller"] is None or _STATE["modules"] != loaded:
        _STATE["controller"] = ThreadpoolController()  # scans the loaded libraries (~2 ms)
        _STATE["modules"] = loaded
    return _STATE["controller"]


@contextmanager
def query_threads() -> Iterator[None]:
    """Run a query with BLAS on one thread (:func:`one_blas_thread`) and OpenMP on one thread in this thread."""
    with one_blas_thread(), _openmp(1):
        yield


def wider(most: int = 4) -> AbstractContextManager[None]:
    """Run the body with OpenMP on up to ``most`` threads (the machine's cores) in this thread: for a
    stage of a query that nothing else of the query runs beside (its BM25 and spaCy parse are done)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return _openmp(max(1, min(most, cores)))


def narrow() -> AbstractContextManager[None]:
    """Run the body with OpenMP on one thread in this thread: for work that has a core to itself while
    other work holds the other (an add encoding beside a parse, the background parser's worker)."""
    return _openmp(1)


@contextmanager
def _openmp(threads: int) -> Iterator[None]:
    """``threads`` OpenMP threads for the calling thread (each OpenMP library's ``omp_set_num_threads``),
    restored after the body; nothing without threadpoolctl."""
    with _LOCK:
        controller = _controller()
    limit = None if controller is None else controller.limit(limits=threads, user_api="openmp")
    try:
        yield
    finally:
        if limit is not None:
            limit.restore_original_limits()


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def later(fn: Callable[..., T], *args: Any, after: Callable[[], Any] | None = None) -> Callable[[], T]:
    """Start ``fn(*args)`` on a worker thread now; the returned function waits for its result (and
    raises what ``fn`` raised). ``fn`` must not use the caller's SQLite connection or hold its locks:
    the store's BM25 reads on a connection of its own, spaCy touches no store.

    ``after``: a function :func:`later` returned earlier; ``fn`` starts once it has finished (its error
    is left to its own caller). On two cores the calling thread has one core and the side work the
    other: run side by side, a query's BM25 and its spaCy parse would share that core and both end
    late; one after the other, BM25 (which the fusion waits for) ends first. Waiting only on earlier
    work of a first-in, first-out pool cannot deadlock."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="omnimem-query")
        future = _pool.submit(_then, after, fn, args)
    return future.result


def _then(after: Callable[[], Any] | None, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    if after is not None:
        try:
            after()
        except Exception:  # reported where that work's result is read
            pass
    return fn(*args)
