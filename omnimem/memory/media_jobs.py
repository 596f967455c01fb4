"""Folder ingest on an executor (:mod:`omnimem.executors`): files are read on workers, written here.

What costs (decoding, speech, OCR, keyframes, embeddings, spaCy extraction) is independent per
file, so it runs on the executor's workers: each worker runs the ordinary
:class:`~omnimem.memory.media.MediaIngestor` against a stand-in memory that keeps what a file would
write -- items, their vectors per space, blobs as bytes, graph extractions -- and sends it back. No
worker opens the memory. This process (the driver) is the one writer: it writes each file's blobs,
then its items and vectors in one transaction (as ``Memory.ingest`` does), then its graph rows, in
the folder's order, so the memory holds what an ingest in one process would write.

Resumable: a file already stored from its path (an item from it with the file's episode
``file:<digest>``, or, an image, holding its bytes as its blob) is skipped before any worker sees it,
so a killed job re-run reads only what it had not written. A bad file is the worker's to report (``failed``, never retried);
a worker that dies reading a file is retried by the executor (Ray: ``max_retries``), then the file
is reported failed and the job goes on with the next files.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omnimem.errors import ConfigError, NotFound
from omnimem.executors import Executor, WorkerLost
from omnimem.memory.inputs import embedding_text
from omnimem.memory.media import IngestReport, MediaIngestor, _files, file_digest, image_suffix
from omnimem.types import Item

if TYPE_CHECKING:  # pragma: no cover
    from omnimem.config import MemoryConfig
    from omnimem.memory.core import Memory

__all__ = ["ingest_with", "IngestSpec", "PreparedFile", "prepare_files"]

log = logging.getLogger(__name__)

FileProgress = Callable[[int, int], None]  # (files done, files to read)
_SELECT_CHUNK = 500  # paths per look-up of stored images


@dataclass(frozen=True)
class IngestSpec:
    """What a worker needs to read files as the memory would (picklable: it travels to the workers)."""

    config: MemoryConfig  # the memory's config (media options, graph extraction, spaCy model)
    encoder: Any  # the memory's text encoder (the object itself: the vectors are the ones it would make)
    image_encoder: Any = None  # the memory's image encoder, or None (no image space)
    cwd: str = ""  # the driver's working directory: a relative path given to ingest means the same file there


@dataclass
class PreparedFile:
    """One file as a worker read it: what the driver writes, or why there is nothing to write."""

    path: str  # the file, as the report names it
    outcome: str  # "added", "skipped" or "failed"
    reason: str = ""  # why skipped or failed (the message the in-process ingest gives)
    note: str = ""  # what to know about an added file (its text encoding)
    items: list[Item] = field(default_factory=list)  # in the order the file's one write would store them
    text_vectors: np.ndarray | None = None  # (len(items), dim) text-space vectors, zero rows for empty text
    vectors: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)  # other spaces (image)
    blobs: list[tuple[bytes, str]] = field(default_factory=list)  # (bytes, suffix) to store first
    extractions: dict[str, Any] = field(default_factory=dict)  # item id -> spaCy Extraction (graph.extract_on_add)


# -- the worker side -----------------------------------------------------------------------------


class _Blobs:
    """Keeps blobs as bytes; addresses exactly as the blob stores compute them (sha256 + suffix)."""

    def __init__(self) -> None:
        self.kept: list[tuple[bytes, str]] = []

    def put(self, data: bytes, *, suffix: str = "") -> str:
        suffix = suffix.lower()
        if suffix and not re.fullmatch(r"\.[a-z0-9]{1,10}", suffix):
            raise ConfigError(f"blob suffix must look like '.jpg', got {suffix!r}")
        self.kept.append((bytes(data), suffix))
        return hashlib.sha256(data).hexdigest() + suffix


class _Nothing:
    """A store that holds nothing: the driver skips stored files before a worker sees them."""

    def has_episode(self, episode: str) -> bool:
        return False

    def timeline(self, **_: Any) -> list[str]:
        return []


class _Kept:
    """Stands in for the Memory inside a worker: keeps what one file's ingest would write."""

    def __init__(self, spec: IngestSpec) -> None:
        self.config = spec.config
        self.encoder = spec.encoder
        self.image_encoder = spec.image_encoder
        self.store = _Nothing()
        self.reset()

    def reset(self) -> None:
        self.blobs = _Blobs()
        self.items: dict[str, Item] = {}
        self.text: dict[str, np.ndarray] = {}
        self.vectors: dict[str, tuple[list[str], list[np.ndarray]]] = {}

    def _add(self, items: list[Item], vectors: dict[str, tuple[list[str], Any]] | None = None, **_: Any) -> list[str]:
        """What ``Memory._add`` would store: the new items, their text embedded in one batch, ``vectors``."""
        fresh = [it for it in {it.id: it for it in items}.values() if it.id not in self.items]
        embedded = [it for it in fresh if it.text.strip()]
        if embedded:
            encoded = self.encoder.encode([embedding_text(it) for it in embedded], modality="text")
            self.text.update(zip((it.id for it in embedded), encoded))
        self.items.update((it.id, it) for it in fresh)
        for space, (ids, array) in (vectors or {}).items():
            kept = self.vectors.setdefault(space, ([], []))
            kept[0].extend(ids)
            kept[1].append(np.asarray(array, dtype=np.float32))
        return [it.id for it in items]

    def get(self, id: str) -> Item:
        return self.items[id]

    def __len__(self) -> int:
        return len(self.items)


class _IngestWorker:
    """One worker: its models load once (speech, OCR, spaCy), then files are read one by one."""

    def __init__(self, spec: IngestSpec) -> None:
        if spec.cwd and os.path.isdir(spec.cwd) and os.getcwd() != spec.cwd:
            os.chdir(spec.cwd)  # a worker process of its own (Ray starts actors elsewhere): paths as given
        self.memory = _Kept(spec)
        self.media = MediaIngestor(self.memory)  # the worker's models, loaded on first use
        self.extract_on_add = spec.config.graph.extract_on_add
        self._extractor: Any = None

    def __call__(self, batch: Sequence[tuple[str, bool]]) -> list[PreparedFile]:
        return [self.read(Path(path), named=named) for path, named in batch]

    def read(self, path: Path, *, named: bool) -> PreparedFile:
        key = str(path)
        memory, report = self.memory, IngestReport()
        memory.reset()
        self.media._attempt(path, report, False, named=named)
        if key in report.failed:
            return PreparedFile(key, "failed", report.failed[key])
        if key in report.skipped:
            return PreparedFile(key, "skipped", report.skipped[key])
        items = list(memory.items.values())
        dim = memory.encoder.dim
        text = np.stack([memory.text.get(it.id, np.zeros(dim, np.float32)) for it in items]).astype(np.float32)
        vectors = {space: (ids, np.concatenate(arrays)) for space, (ids, arrays) in memory.vectors.items()}
        return PreparedFile(
            key, "added", note=report.notes.get(key, ""), items=items, text_vectors=text, vectors=vectors,
            blobs=memory.blobs.kept, extractions=self._extract(items) if self.extract_on_add else {},
        )  # fmt: skip

    def _extract(self, items: list[Item]) -> dict[str, Any]:
        todo = [it for it in items if it.text.strip()]
        if not todo:
            return {}
        if self._extractor is None:
            from omnimem.graph.extract import SpacyExtractor

            self._extractor = SpacyExtractor.from_pretrained(self.memory.config.graph.spacy_model)
        found = self._extractor.extract([it.text for it in todo], speakers=[it.speaker for it in todo])
        return {it.id: extraction for it, extraction in zip(todo, found)}


def prepare_files(spec: IngestSpec) -> Callable[[Sequence[tuple[str, bool]]], list[PreparedFile]]:
    """An executor's ``make_fn`` for ingest: batches of ``(path, named on its own)`` -> prepared files."""
    return _IngestWorker(spec)


# -- the driver side -----------------------------------------------------------------------------


def ingest_with(
    memory: Memory, path: str | os.PathLike[str], executor: Executor, *, recursive: bool = True,
    progress: FileProgress | bool | None = None,
) -> IngestReport:  # fmt: skip
    """``Memory.ingest`` with the files read on ``executor``'s workers; the same report and items.

    ``progress``: a ``(files done, files to read)`` callback, None for a tqdm bar when stderr is a
    terminal (True: always), False for nothing. Storage errors stop the job (as in one process);
    what was written stays and a re-run skips it.
    """
    root = Path(path)
    if not root.exists() and not root.is_symlink():
        raise NotFound(f"{root} does not exist; check the path")
    report = IngestReport()
    single = not root.is_dir()
    files = [root] if single else _files(root, recursive, report)
    hidden = {f for f in files if f.name.startswith(".") and not single}
    for file in sorted(hidden):
        report.skipped[str(file)] = "hidden file"
    files = [f for f in files if f not in hidden]
    stored = _stored(memory, files)
    for file in stored:
        report.skipped[str(file)] = "already in memory"
    todo = [f for f in files if f not in stored]
    spec = IngestSpec(memory.config, memory.encoder, memory.image_encoder, cwd=os.getcwd())
    make_fn = functools.partial(prepare_files, spec)
    bar = _Bar(progress, len(todo))
    try:
        while todo:
            try:
                for (prepared,) in executor.map_batches(make_fn, ([(str(f), single)] for f in todo)):  # a file a batch
                    _write(memory, prepared, report)
                    bar.update()
                todo = []
            except WorkerLost as e:  # that file killed its worker every time: report it, go on after it
                lost = str(todo[e.index])
                report.failed[lost] = (
                    f"{lost}: reading it killed the worker ({e}); check the file, or give workers more memory"
                )
                log.warning("ingest: %s", report.failed[lost])
                bar.update()
                todo = todo[e.index + 1 :]
    finally:
        bar.close()
    return report


def _stored(memory: Memory, files: list[Path]) -> set[Path]:
    """The files already read from this path: an item whose source is the path holds the file's
    episode (``file:<digest>``: audio, video, text) or the file's bytes as its blob (an image).
    Unreadable files are left to the workers, whose error message names the problem."""
    digests: dict[Path, str] = {}
    for file in files:
        try:
            if file.is_file() and file.stat().st_size:
                digests[file] = file_digest(file)
        except OSError:
            continue
    paths = [str(f) for f in digests]
    held: set[tuple[str | None, str | None]] = set()
    for k in range(0, len(paths), _SELECT_CHUNK):
        for item in memory.store.get(memory.store.select(sources=paths[k : k + _SELECT_CHUNK])):
            if item is not None:
                held |= {(item.source, item.episode), (item.source, item.blob)}
    return {
        f for f, digest in digests.items()
        if (str(f), f"file:{digest[:24]}") in held or (str(f), digest + image_suffix(f)) in held
    }  # fmt: skip


def _write(memory: Memory, prepared: PreparedFile, report: IngestReport) -> None:
    """Write one prepared file as ``MediaIngestor`` would: blobs, then its items in one transaction,
    then its graph rows (``graph.extract_on_add``)."""
    key = prepared.path
    if prepared.outcome == "failed":  # the worker logged it
        report.failed[key] = prepared.reason
        return
    if prepared.outcome == "skipped":
        report.skipped[key] = prepared.reason
        return
    media = next((it for it in prepared.items if it.modality in ("audio", "video")), None)
    if media is not None and memory.store.has_episode(media.episode):  # the same bytes, stored from elsewhere
        report.skipped[key] = "already in memory"  # (``add_audio`` / ``add_video`` return those items)
        return
    for data, suffix in prepared.blobs:
        memory.blobs.put(data, suffix=suffix)
    ids = [it.id for it in prepared.items]
    known = {i for i, found in zip(ids, memory.store.get(ids)) if found is not None}
    before = len(memory)
    memory._add(prepared.items, prepared.vectors, text_vectors=prepared.text_vectors, extract=False)
    written = len(memory) - before
    if not written:
        report.skipped[key] = "already in memory"
        return
    report.added[key] = written
    if prepared.note:
        report.notes[key] = prepared.note
    fresh = [it for it in prepared.items if it.id not in known]
    if prepared.extractions and fresh:
        _write_graph(memory, fresh, prepared.extractions)


class _Extracted:
    """The extractor interface over extractions a worker made: ``extract`` looks them up."""

    def __init__(self, items: list[Item], extractions: dict[str, Any]) -> None:
        self.found = {(it.text, it.speaker): extractions[it.id] for it in items if it.id in extractions}

    def extract(self, texts: Sequence[str], *, speakers: Sequence[str | None] | None = None) -> list[Any]:
        return [self.found[key] for key in zip(texts, speakers or [None] * len(texts))]


def _write_graph(memory: Memory, items: list[Item], extractions: dict[str, Any]) -> None:
    """The graph rows of newly written items, as ``Memory`` writes them on add (the memory's builder
    with the workers' extractions). Best effort, as on add: the items are committed; a failure leaves
    them for ``omnimem graph build`` (or ``consolidate``), which reads every item without links."""
    from omnimem.graph.builder import GraphBuilder

    encoder = memory.encoder
    builder = GraphBuilder(
        memory.graph, _Extracted(items, extractions), embed=lambda texts: encoder.encode(list(texts), modality="text")
    )
    try:
        builder.add_items(items)
        memory.semantic.observe([it.id for it in items])
    except Exception as e:  # noqa: BLE001 - the items are committed: extraction is best effort
        log.warning("graph rows of %d item(s) not written (%s); run 'omnimem graph build' to retry", len(items), e)


class _Bar:
    """Files done: a callback, a tqdm bar on a terminal, or nothing."""

    def __init__(self, progress: FileProgress | bool | None, total: int) -> None:
        self.callback = progress if callable(progress) else None
        self.done, self.total, self.tqdm = 0, total, None
        if self.callback is None and total and (progress is True or (progress is None and sys.stderr.isatty())):
            from tqdm import tqdm

            self.tqdm = tqdm(total=total, desc="ingest", unit="file")

    def update(self) -> None:
        self.done += 1
        if self.tqdm is not None:
            self.tqdm.update(1)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.tqdm is not None:
            self.tqdm.close()
