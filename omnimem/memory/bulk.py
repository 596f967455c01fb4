"""Bulk loading: a large JSON-lines file of items, streamed in batches, resumable after a crash.

One line is one item::

    {"text": "...", "speaker": "Ann", "timestamp": "2024-05-01T10:00:00", "session": "s1",
     "episode": "chat", "source": "export.jsonl", "metadata": {...}, "id": "...",
     "vector": [0.01, ...]}                       (every field but "text" optional)

A line's ``vector`` (the memory's text-space embedding, computed elsewhere) spares the encoder; lines
without one are encoded here, a batch at a time. Each batch is one transaction (so a batch is all in or
all out), and the number of lines done is recorded in the memory after it commits: run the same import
again after a crash and it resumes at the first batch not committed (items already there are no-ops in
any case). A bad line (not JSON, no text, a wrong field) is reported with its line number and the import
goes on.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from omnimem.errors import ConfigError, NotFound, OmnimemError
from omnimem.types import Item

__all__ = ["BulkReport", "import_items", "is_export"]

log = logging.getLogger(__name__)

_FIELDS = {"text", "speaker", "timestamp", "event_time", "session", "episode", "source", "metadata", "id", "modality", "vector", "t_start", "t_end"}  # fmt: skip


@dataclass
class BulkReport:
    """What :func:`import_items` did."""

    lines: int = 0  # lines read this run (after the resume point)
    added: int = 0  # items newly stored
    present: int = 0  # items that were already there (a re-run, a duplicate line)
    failed: dict[int, str] = field(default_factory=dict)  # line number -> why it was skipped
    resumed_at: int = 0  # lines a previous, interrupted run had committed
    seconds: float = 0.0

    @property
    def items_per_s(self) -> float:
        return (self.added + self.present) / self.seconds if self.seconds else 0.0


def is_export(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a whole-memory export (``omnimem export``) rather than a file of items."""
    with _open(Path(path)) as f:
        first = f.readline()
    try:
        return json.loads(first).get("omnimem") == "memory"
    except (ValueError, AttributeError):
        return False


def import_items(
    memory: Any, path: str | os.PathLike[str], *, batch: int = 512, extract: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BulkReport:  # fmt: skip
    """Stream the items of a JSON-lines file (``.gz`` too) into ``memory``; see the module docstring.

    ``extract``: graph extraction per batch (default the memory's ``graph.extract_on_add``; a large
    load may say False and run ``omnimem graph build`` afterwards).
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{path} does not exist; pass a JSON-lines file of items")
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    key = _resume_key(path)
    report = BulkReport(resumed_at=int(memory.store.get_meta(key) or 0))
    started = time.perf_counter()
    total = 0
    if progress:  # one quick pass to know how many lines there are
        with _open(path) as f:
            total = sum(1 for _ in f)
    with _open(path) as lines:
        pending: list[tuple[int, Item, Any]] = []
        done = report.resumed_at
        for number, line in enumerate(lines, start=1):
            if number <= report.resumed_at:
                continue
            report.lines += 1
            if line.strip():
                try:
                    item, vector = _parse(line, memory.encoder.dim)
                    pending.append((number, item, vector))
                except (ValueError, OmnimemError) as e:
                    report.failed[number] = str(e)
            if len(pending) >= batch:
                _commit(memory, pending, report, extract)
                done = number
                memory.store.set_meta(key, str(done))
                pending = []
                if progress:
                    progress(number, total)
        if pending:
            _commit(memory, pending, report, extract)
        memory.store.set_meta(key, str(report.resumed_at + report.lines))
    report.seconds = round(time.perf_counter() - started, 2)
    log.info(
        "imported %s: %d added, %d present, %d failed lines", path, report.added, report.present, len(report.failed)
    )
    return report


def _commit(memory: Any, pending: list[tuple[int, Item, Any]], report: BulkReport, extract: bool | None) -> None:
    items = [item for _, item, _ in pending]
    known = {i.id for i in memory.store.get([i.id for i in items]) if i is not None}
    vectors = None
    if all(v is not None for _, _, v in pending):
        vectors = np.stack([v for _, _, v in pending])
    elif any(v is not None for _, _, v in pending):  # some lines bring vectors: encode the others
        from omnimem.memory.inputs import embedding_text

        missing = [n for n, (_, _, v) in enumerate(pending) if v is None]
        encoded = memory.encoder.encode([embedding_text(items[n]) for n in missing], modality="text")
        vectors = np.stack([v if v is not None else encoded[missing.index(n)] for n, (_, _, v) in enumerate(pending)])
    memory.add_items(items, vectors=vectors, extract=extract)
    fresh = {i.id for i in items} - known
    report.added += len(fresh)
    report.present += len(items) - len(fresh)


def _parse(line: str, dim: int) -> tuple[Item, np.ndarray | None]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ConfigError(f"not JSON ({e})") from None
    if not isinstance(row, dict):
        raise ConfigError("a line must be a JSON object with at least 'text'")
    unknown = set(row) - _FIELDS
    if unknown:
        raise ConfigError(f"unknown field(s) {sorted(unknown)}; allowed: {', '.join(sorted(_FIELDS))}")
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("'text' is missing or empty")
    vector = row.pop("vector", None)
    if vector is not None:
        vector = np.asarray(vector, dtype=np.float32)
        if vector.shape != (dim,):
            raise ConfigError(
                f"'vector' has {vector.shape[0] if vector.ndim == 1 else vector.shape} values, the encoder {dim}"
            )
    fields = {k: v for k, v in row.items() if k not in ("timestamp", "event_time")}
    fields["event_time"] = row.get("timestamp", row.get("event_time"))
    return Item.make(**fields), vector


def _resume_key(path: Path) -> str:
    stat = path.stat()
    digest = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return f"import:{digest}"


def _open(path: Path) -> IO[str]:
    return gzip.open(path, "rt", encoding="utf-8") if path.name.endswith(".gz") else open(path, encoding="utf-8")
