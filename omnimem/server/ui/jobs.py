"""Ingest jobs of the UI: uploaded files remembered on a background thread, with progress.

The browser uploads one file per request, then polls the job: its state, the fraction done (the
ingestor's own progress callback: seconds of media done / in all) and, at the end, the report --
files added (items written), skipped and failed (with why) and notes. Server paths never reach the
page: a report names each file by the name it was uploaded with. A job is visible only to the
session that started it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnimem.errors import OmnimemError

__all__ = ["Job", "Jobs", "MAX_JOBS_PER_SESSION"]

log = logging.getLogger(__name__)

MAX_JOBS_PER_SESSION = 50  # finished jobs a session keeps; the oldest go first


@dataclass
class Job:
    """One upload being remembered."""

    id: str  # random, unguessable
    memory: str  # the memory's name
    files: dict[str, str]  # server path -> the name it was uploaded with
    state: str = "queued"  # "queued", "running", "done" or "failed"
    fraction: float = 0.0  # 0..1 of the whole job
    current: str = ""  # the file being remembered now (its uploaded name)
    report: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"added": {}, "skipped": {}, "failed": {}, "notes": {}}
    )  # like IngestReport, keyed by uploaded names
    error: str | None = None  # what stopped the whole job (a storage error), if anything
    started: float = field(default_factory=time.time)  # POSIX seconds
    finished: float | None = None  # POSIX seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "memory": self.memory, "state": self.state, "fraction": round(self.fraction, 4),
            "current": self.current, "report": self.report, "error": self.error,
        }  # fmt: skip


class Jobs:
    """Runs ingest jobs over a server's pool, one thread per job."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def start(self, session: Any, name: str, files: dict[str, str]) -> Job:
        """Start remembering ``files`` (server path -> uploaded name) in memory ``name``."""
        job = Job(secrets.token_urlsafe(16), name, dict(files))
        jobs = session.jobs
        jobs[job.id] = job
        for old in [j for j in jobs.values() if j.state in ("done", "failed")][: max(0, len(jobs) - MAX_JOBS_PER_SESSION)]:  # fmt: skip
            del jobs[old.id]
        threading.Thread(target=self.run, args=(job,), name=f"omnimem-ui-ingest-{name}", daemon=True).start()
        return job

    def run(self, job: Job) -> Job:
        """Remember the job's files one after the other (in this thread); returns the finished job."""
        job.state = "running"
        paths = list(job.files)
        path = paths[0] if paths else ""
        try:
            for n, path in enumerate(paths):
                shown = job.files[path]
                job.current = shown

                def progress(done: float, total: float, n: int = n) -> None:
                    part = min(1.0, done / total) if total > 0 else 0.0
                    job.fraction = (n + part) / len(paths)

                with self.pool.use(job.memory) as mem:
                    report = mem.ingest(path, progress=progress)
                for section in ("added", "skipped", "failed", "notes"):
                    for value in getattr(report, section).values():  # one file: at most one entry
                        job.report[section][shown] = _hide(value, path, shown)
                job.fraction = (n + 1) / len(paths)
            job.state = "done"
        except OmnimemError as e:  # a storage error stops the batch: no later file could be written
            job.error, job.state = _hide(str(e), path, job.files.get(path, "")), "failed"
        except Exception as e:  # never let a job thread die silently
            log.exception("UI ingest job %s failed", job.id)
            job.error, job.state = f"unexpected {type(e).__name__}: {e}", "failed"
        finally:
            job.current, job.finished = "", time.time()
        return job


def _hide(value: Any, path: str, shown: str) -> Any:
    """``value`` with the server path of a file replaced by its uploaded name (messages quote paths)."""
    if isinstance(value, str) and path:
        return value.replace(str(path), shown).replace(str(Path(path).parent) + "/", "")
    return value
