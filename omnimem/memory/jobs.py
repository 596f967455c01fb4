"""Background jobs of one memory: consolidation runs here, never inside a user's query or turn.

One worker thread per memory (SQLite has one writer anyway); a job already queued or running is not
queued again, so a chat that asks for consolidation every N turns never piles jobs up. ``close``
waits for the running job, so a memory never closes under it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["JobRunner"]

log = logging.getLogger(__name__)


class JobRunner:
    """Runs named jobs one at a time on a background thread."""

    def __init__(self, name: str) -> None:
        self.name = name  # thread name prefix, for logs and debuggers
        self._executor: ThreadPoolExecutor | None = None
        self._jobs: dict[str, Future] = {}
        self._lock = threading.Lock()

    def submit(self, job: str, fn: Callable[[], Any]) -> Future:
        """Run ``fn`` in the background; the same job already waiting or running is returned instead."""
        with self._lock:
            current = self._jobs.get(job)
            if current is not None and not current.done():
                return current
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
            future = self._executor.submit(fn)
            future.add_done_callback(lambda f: _log_failure(job, f))
            self._jobs[job] = future
            return future

    def running(self, job: str) -> Future | None:
        """The job's future while it waits or runs, else None."""
        with self._lock:
            current = self._jobs.get(job)
            return current if current is not None and not current.done() else None

    def close(self) -> None:
        """Wait for the running job; jobs not started yet are cancelled."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _log_failure(job: str, future: Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("background job %s failed: %s", job, future.exception())
