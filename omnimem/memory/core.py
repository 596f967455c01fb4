"""The ``Memory`` facade: the public Python API over the stores, the encoder and retrieval.

A memory is a directory::

    memory.db          SQLite (WAL): items, vectors per space, FTS5 -- the source of truth
    index/text.faiss   the text space's FAISS index (+ .ids.json), derived, rebuilt when needed
    blobs/             content-addressed media
    config.json        the MemoryConfig that built it, so ``Memory.open(path)`` needs no arguments
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from omnimem.config import GraspConfig, MemoryConfig
from omnimem.encoders import Encoder, create_encoder
from omnimem.errors import ConfigError, NotFound
from omnimem.graph.builder import GraphBuilder
from omnimem.graph.extract import Extraction
from omnimem.memory import pipeline as graph_step
from omnimem.memory.episodes import EpisodicMemory
from omnimem.memory.forgetting import ForgetPolicy, ForgetReport, Forgetting
from omnimem.memory.inputs import clean_text, conversation_items, embedding_text, query_filters
from omnimem.memory.jobs import JobRunner
from omnimem.memory.locations import IMAGE_SPACE, TEXT_SPACE, open_parts
from omnimem.memory.media import IngestReport, MediaIngestor
from omnimem.memory.pipeline import GRAPH_JOB, ExtractionQueue, extract_committed, fast_builder, owed_items, reads_graph
from omnimem.memory.query_media import read_query_media
from omnimem.memory.semantic import Fact, FactEvent, SemanticMemory
from omnimem.memory.working import WorkingMemory
from omnimem.retrieval.context import Context
from omnimem.retrieval.hybrid import bm25_later, hybrid_search
from omnimem.retrieval.pipeline import retrieve_context
from omnimem.retrieval.threads import query_threads
from omnimem.stores.base import BlobStore, FactLog, GraphStore, RecordStore
from omnimem.stores.nodes import Node
from omnimem.types import Hit, Item, to_iso, utc_now

__all__ = ["Memory", "TEXT_SPACE", "IMAGE_SPACE"]

log = logging.getLogger(__name__)

OWED_GRACE_S = 60.0  # a later add catches up extraction owed on items at least this old (seconds)


class Memory:
    """Long-term memory in one directory. Open with :meth:`Memory.open`; use as a context manager."""

    def __init__(
        self, path: Path, config: MemoryConfig, store: RecordStore, encoder: Encoder,
        indexes: dict[str, Any], blobs: BlobStore, image_encoder: Encoder | None = None,
        generator: Any = None,
    ) -> None:  # fmt: skip
        self.path = path
        self.image_encoder = image_encoder
        self._media: MediaIngestor | None = None
        self._clap: Encoder | None = None  # the audio-text model, loaded on the first query with audio
        self.location = str(path)  # how messages name the memory: its directory, or its URL without password
        self.created = False  # whether Memory.open created it (set there)
        self._graph = store.graph_store()
        self._facts_log = store.fact_log()
        self._builder: GraphBuilder | None = None
        self.config = config
        self._extraction = ExtractionQueue(self._extract_batch, config.graph, name=f"omnimem-graph-{path.name}")
        self.store = store
        self.encoder = encoder
        self.indexes = indexes
        self.blobs = blobs
        self._closed = False
        self.generator = generator  # an omnimem.vlm Generator for summaries and fact checks, or None
        self.episodic = EpisodicMemory(self, generator=generator)
        self.semantic = SemanticMemory(self, generator=generator)
        self.forgetting = Forgetting(self)
        self.jobs = JobRunner(f"omnimem-jobs-{path.name}")  # background jobs (consolidation)

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, config: MemoryConfig | None = None,
        encoder: Encoder | None = None, image_encoder: Encoder | None = None, generator: Any = None,
        create: bool = True,
    ) -> Memory:  # fmt: skip
        """Create or reopen the memory in directory ``path``, or at a ``postgresql://...?schema=NAME`` URL.

        A new memory uses ``config`` (default: :class:`MemoryConfig`) and ``encoder`` (default: the
        one ``config.encoder`` names). A reopened one uses its saved ``config.json``; a given config
        may change search and index settings, never the encoder, and a given encoder must be the
        one that built it. ``image_encoder`` (a CLIP-like encoder of text and images) adds an
        image embedding space; ``config.media`` may name one to build instead. ``generator`` (an
        ``omnimem.vlm`` Generator) writes episode summaries; without one they are extractive.
        """
        parts = open_parts(path, config=config, encoder=encoder, image_encoder=image_encoder, create=create)
        memory = cls(parts.root, parts.config, parts.store, parts.encoder, parts.indexes, parts.blobs, parts.image_encoder, generator)  # fmt: skip
        memory.location = parts.display
        memory.created = parts.created  # this open created it (no other process did first)
        return memory

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Finish queued graph extraction, write pending index changes and close the database. Safe to call twice."""
        if self._closed:
            return
        self.jobs.close()  # a running consolidation finishes first (it needs the memory open)
        self._extraction.close()  # so does the graph extraction of every add made before
        self._closed = True
        try:
            for index in self.indexes.values():
                index.close()
        finally:
            self.store.close()

    def __len__(self) -> int:
        self._check_open()
        return len(self.store)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self)} items"
        return f"Memory({str(self.path)!r}, {state}, encoder={self.encoder.name!r})"

    # -- writing -----------------------------------------------------------------------------
    def add(
        self, text: str | Sequence[str], *, speaker: str | None = None, timestamp: Any = None,
        session: str | None = None, episode: str | None = None, source: str | None = None,
        metadata: Mapping[str, Any] | None = None, modality: str = "text", id: str | None = None,
    ) -> list[str]:  # fmt: skip
        """Remember one text (or a list of texts sharing the other fields); returns their ids.

        Adding the same thing twice is a no-op that returns the same id.
        """
        texts = [text] if isinstance(text, str) else text
        if not isinstance(texts, Sequence) or isinstance(texts, (bytes, bytearray)):
            raise ConfigError(f"text must be a str or a list of str, got {type(text).__name__}")
        if id is not None and len(texts) != 1:
            raise ConfigError("id= can only be given when adding a single text")
        items = [
            Item.make(
                modality=modality,
                text=clean_text(t, n),
                id=id,
                speaker=speaker,
                event_time=timestamp,
                session=session,
                episode=episode,
                source=source,
                metadata=metadata,
            )  # fmt: skip
            for n, t in enumerate(texts)
        ]
        return self.add_items(items)

    def add_conversation(
        self, turns: Iterable[Mapping[str, Any]], *, session: str | None = None, episode: str | None = None,
        source: str | None = None, start: int = 0,
    ) -> list[str]:  # fmt: skip
        """Remember a list of turns ``{speaker, text, timestamp?, metadata?}`` in one transaction.

        A turn's id carries its place in the conversation (``start`` + its index in ``turns``), so
        one speaker saying "Yes." twice keeps both turns, and adding the same conversation again is a
        no-op. A caller that adds a long conversation in pieces passes each piece's ``start``.
        """
        items = conversation_items(
            turns, session=session, episode=episode, source=source, start=start,
            positional=self.store.turn_ids == "place",
        )  # fmt: skip
        return self.add_items(items)

    @contextmanager
    def bulk(self) -> Iterator[Memory]:
        """A bulk load: vector indexes write a new base segment only when the vectors held in memory
        since the last reach half the base (and at least 256 MB), and one when it ends (a load of a
        million items would otherwise rewrite its index at every tenth of growth, or hold it all twice)."""
        self._check_open()
        held = [ix for ix in self.indexes.values() if hasattr(ix, "defer")]
        for index in held:
            index.defer(True)
        try:
            yield self
        finally:
            for index in held:
                index.defer(False)
            if hasattr(self.store, "checkpoint"):  # SQLite: the load's WAL into the database file
                self.store.checkpoint()

    def add_items(
        self, items: Iterable[Item], *, vectors: np.ndarray | None = None, extract: bool | None = None
    ) -> list[str]:
        """Remember prepared :class:`Item` objects in one transaction; returns their ids in order.

        ``vectors``: their text-space embeddings, precomputed (float32 ``(len(items), dim)``, rows
        L2-normalised here): nothing is encoded. ``extract``: build their graph links now (default
        ``config.graph.extract_on_add``); a bulk load may say False and run ``omnimem graph build`` later.
        """
        items = list(items)
        if vectors is not None:
            vectors = np.asarray(vectors, dtype=np.float32)
            if vectors.ndim != 2 or vectors.shape != (len(items), self.encoder.dim):
                raise ConfigError(
                    f"vectors must have shape ({len(items)}, {self.encoder.dim}) to match the items and the"
                    f" encoder, got {vectors.shape}"
                )
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            if not np.all(np.isfinite(vectors)) or np.any(norms == 0):
                raise ConfigError("vectors must be finite and non-zero; recompute them with the memory's encoder")
            vectors = vectors / norms
        return self._add(items, text_vectors=vectors, extract=extract)

    def _add(
        self, items: list[Item], vectors: Mapping[str, tuple[list[str], Any]] | None = None, *,
        text_vectors: np.ndarray | None = None, extract: bool | None = None,
    ) -> list[str]:  # fmt: skip
        """Store ``items`` (their text embedded here, unless ``text_vectors`` holds it) and ready
        ``vectors`` of other spaces, atomically."""
        self._check_open()
        for n, item in enumerate(items):
            if not isinstance(item, Item):
                raise ConfigError(f"add_items expects Item objects; element {n} is {type(item).__name__}")
        known = {i for i, found in zip((it.id for it in items), self.store.get([it.id for it in items])) if found}
        fresh = list({it.id: it for it in items if it.id not in known}.values())
        if not fresh:
            return [it.id for it in items]
        embedded = [it for it in fresh if it.text.strip()]
        jobs = (GRAPH_JOB,) if (self.config.graph.extract_on_add if extract is None else extract) else ()
        background = bool(jobs) and self.config.graph.extract_in_background and not self._extraction.inline()
        parse = None
        if text_vectors is not None:
            row = {it.id: n for n, it in enumerate(items)}
            encoded = text_vectors[[row[it.id] for it in embedded]]
        else:  # an inline graph step parses while this thread encodes; a background worker parses beside it
            parse = graph_step.Parse(lambda: self.builder, embedded) if jobs and not background and embedded else None
            busy = parse.busy if parse is not None else self._extraction.active
            encoded = graph_step.encode_beside(self.encoder, [embedding_text(it) for it in embedded], busy)
        spaces = {TEXT_SPACE: ([it.id for it in embedded], encoded)}
        for space, value in (vectors or {}).items():
            if space not in self.indexes:
                raise ConfigError(f"this memory has no {space!r} space; open it with the encoder for it")
            spaces[space] = value
        befores = {space: self.indexes[space].generation for space in spaces}
        added = set(self.store.add(fresh, spaces, jobs=jobs))
        for space, (ids, array) in spaces.items():
            rows = [n for n, i in enumerate(ids) if i in added]
            self.indexes[space].applied([ids[n] for n in rows], array[rows], befores[space])
        if background:
            self._extraction.submit([it for it in fresh if it.id in added])  # extracted while the caller goes on
        elif jobs:
            self._extract_batch([it for it in fresh if it.id in added], parse.result() if parse is not None else None)
        return [it.id for it in items]

    # -- the knowledge graph (omnimem.graph) -------------------------------------------------
    @property
    def graph(self) -> GraphStore:
        """The M3KG, in the same database. Reading it first waits for the graph extraction of this
        process's adds (:mod:`omnimem.memory.pipeline`), so a caller reads its own writes."""
        self._extraction.settle()
        return self._graph

    @property
    def facts_log(self) -> FactLog:
        """Every operation on a fact; like :attr:`graph`, read after this process's queued extraction."""
        self._extraction.settle()
        return self._facts_log

    @property
    def builder(self) -> GraphBuilder:
        """The fast (no-LLM) graph builder (:func:`omnimem.memory.pipeline.fast_builder`); spaCy loads on first use."""
        if self._builder is None:
            self._builder = fast_builder(self._graph, self.encoder, self.config.graph)
        return self._builder

    def _extract_batch(self, items: list[Item], parsed: Mapping[str, Extraction] | None = None) -> None:
        """The graph step of an add (here or on the worker): extract (``parsed``: the items parsed
        already, :class:`~omnimem.memory.pipeline.Parse`), then catch up what is owed on older items."""
        self._extract(items, parsed)
        self.catch_up(older_than_s=OWED_GRACE_S)

    def _extract(self, items: list[Item], parsed: Mapping[str, Extraction] | None = None) -> None:
        """Graph rows for newly added (committed) items, best effort; never loses an item
        (:func:`omnimem.memory.pipeline.extract_committed`)."""
        extract_committed(self, items, parsed)

    @reads_graph
    def catch_up(self, *, older_than_s: float = 0.0, limit: int = 256) -> int:
        """Run graph extraction owed on items whose add committed but whose extraction never ran (a
        process killed in between); returns how many items it processed. ``older_than_s``: leave items
        stored more recently alone (another process may be extracting them right now); items this
        process has queued for extraction are left to its worker."""
        self._check_open()
        owed = owed_items(self, older_than_s=older_than_s, limit=limit)
        if owed:
            log.info("catching up graph extraction on %d item(s) a crash left without it", len(owed))
            self._extract(owed)
        return len(owed)

    # -- semantic memory: facts over time (omnimem.memory.semantic) --------------------------
    @reads_graph
    def facts(
        self, entity: str, *, as_of: Any = None, known_at: Any = None, include_retired: bool = False
    ) -> list[Fact]:
        """Facts about ``entity``: current ones, or those true ``as_of`` a time, or known at a time."""
        self._check_open()
        return self.semantic.facts(entity, as_of=as_of, known_at=known_at, include_retired=include_retired)

    @reads_graph
    def correct(self, fact_id: str, *, tail: str | None = None, note: str = "", timestamp: Any = None) -> Fact | None:
        """Retire a wrong fact (kept as history); with ``tail``, remember the right one instead."""
        self._check_open()
        return self.semantic.correct(fact_id, tail=tail, note=note, timestamp=timestamp)

    @reads_graph
    def fact_history(self, fact_id: str) -> list[FactEvent]:
        """Every operation on a fact: add, reinforce, supersede(d), correct."""
        self._check_open()
        return self.semantic.history(fact_id)

    # -- media (omnimem.memory.media) --------------------------------------------------------
    @property
    def media(self) -> MediaIngestor:
        """The media ingestor; its OCR, speech and video models load on first use."""
        if self._media is None:
            self._media = MediaIngestor(self)
        return self._media

    def add_image(self, image: Any, caption: str | None = None, **fields: Any) -> list[str]:
        """Remember an image (path, PIL image or array) with its caption and the text read in it."""
        return self.media.add_image(image, caption=caption, **fields)

    def add_audio(self, path: str | os.PathLike[str], **fields: Any) -> list[str]:
        """Remember an audio file as time-stamped transcript segments (one episode per file)."""
        return self.media.add_audio(path, **fields)

    def add_video(self, path: str | os.PathLike[str], **fields: Any) -> list[str]:
        """Remember a video as segments with keyframes, transcript and on-screen text."""
        return self.media.add_video(path, **fields)

    def ingest(self, path: str | os.PathLike[str], *, executor: Any = None, **options: Any) -> IngestReport:
        """Remember a file or every file of a folder, by content; reports what worked and what failed.

        ``executor`` (:mod:`omnimem.executors`, e.g. ``RayExecutor()``): the files are read on its
        workers (decoding, speech, OCR, keyframes, embeddings, graph extraction) and written here
        (:func:`omnimem.memory.media_jobs.ingest_with`); ``progress`` then counts files.
        """
        if executor is not None:
            from omnimem.memory.media_jobs import ingest_with

            self._check_open()
            return ingest_with(self, path, executor, **options)
        return self.media.ingest(path, **options)

    def update(
        self, id: str, *, text: str | None = None, metadata: Mapping[str, Any] | None = None, **fields: Any
    ) -> Item:
        """Change a stored item in place (its id stays); a new text is re-embedded and re-indexed."""
        item = self.get(id)
        changes: dict[str, Any] = dict(fields)
        if "timestamp" in changes:
            changes["event_time"] = changes.pop("timestamp")
        if "event_time" in changes:
            changes["event_time"] = to_iso(changes["event_time"])
        bad = set(changes) - {"speaker", "event_time", "session", "episode", "source", "t_start", "t_end"}
        if bad:
            raise ConfigError(f"cannot update field(s) {sorted(bad)}")
        if text is not None:
            changes["text"] = clean_text(text, 0)
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise ConfigError(f"metadata must be a dict, got {type(metadata).__name__}")
            changes["metadata"] = dict(metadata)
        new = dataclasses.replace(item, **changes)
        index = self.indexes[TEXT_SPACE]
        before = index.generation
        if embedding_text(new) != embedding_text(item):
            vector = self.encoder.encode([embedding_text(new)], modality="text")
            self.store.update(new, {TEXT_SPACE: ([new.id], vector)})
            index.applied([new.id], vector, before)
        else:
            self.store.update(new)
        return new

    @reads_graph
    def delete(self, ids: str | Sequence[str]) -> int:
        """Delete items from SQLite, FTS and every vector index; returns how many existed."""
        self._check_open()
        ids = [ids] if isinstance(ids, str) else list(ids)
        befores = {space: index.generation for space, index in self.indexes.items()}
        with self.store.transaction():  # the items and their graph links go together, or neither
            deleted = self.store.delete(ids)
            if deleted:
                self._graph.delete_item_links(deleted)
        for space, index in self.indexes.items():
            index.applied(deleted, None, befores[space])
        return len(deleted)

    @reads_graph
    def consolidate(self, *, resolve: bool = True, progress: Any = False, executor: Any = None) -> dict[str, Any]:
        """Episodic -> semantic: graph for new items, facts observed, duplicates merged, summaries
        refreshed (:mod:`omnimem.memory.consolidate`). Idempotent; run it as a job (see
        :meth:`consolidate_in_background`), never on a user's turn. ``executor``
        (:mod:`omnimem.executors`, e.g. ``RayExecutor()``) parses the graph step on its workers."""
        self._check_open()
        from omnimem.memory.consolidate import consolidate

        return consolidate(self, resolve=resolve, progress=progress, executor=executor)

    def consolidate_in_background(self, *, resolve: bool = True) -> Future:
        """Start :meth:`consolidate` on this memory's job thread and return at once; the future holds
        its report. A consolidation already waiting or running is returned instead of a second one."""
        self._check_open()
        return self.jobs.submit("consolidate", lambda: self.consolidate(resolve=resolve))

    def working(
        self, *, budget_tokens: int = 1_024, session: str | None = None, episode: str | None = None,
        count_tokens: Any = None,
    ) -> WorkingMemory:  # fmt: skip
        """A token-budgeted buffer of the current conversation that spills into this memory."""
        self._check_open()
        return WorkingMemory(
            self, budget_tokens=budget_tokens, session=session, episode=episode, count_tokens=count_tokens
        )

    def search_image(self, image: Any, k: int = 10) -> list[Hit]:
        """Images and keyframes that look like ``image`` (a path, PIL image or array), best first.

        Needs an image encoder (``Memory.open(..., image_encoder=...)`` or ``config.media``).
        """
        self._check_open()
        if self.image_encoder is None:
            raise ConfigError(
                f"{self.path} has no image space; open it with image_encoder=... (a CLIP-like encoder) to search by image"
            )
        vector = self.image_encoder.encode([image], modality="image")
        pairs = self.indexes[IMAGE_SPACE].search(vector, k)[0]
        items = self.store.get([i for i, _ in pairs])
        return [
            Hit.from_item(item, score, ("image",), {"image": rank})
            for rank, ((_, score), item) in enumerate(zip(pairs, items), start=1)
            if item is not None
        ]

    # -- forgetting (omnimem.memory.forgetting) ----------------------------------------------
    @reads_graph
    def forget(
        self, ids: str | Sequence[str] | None = None, *, sessions: Sequence[str] | None = None,
        episodes: Sequence[str] | None = None, speakers: Sequence[str] | None = None,
        sources: Sequence[str] | None = None, before: Any = None,
    ) -> ForgetReport:  # fmt: skip
        """Privacy delete: items (by id or filter) and everything derived only from them, everywhere."""
        self._check_open()
        if ids is None:
            ids = self.forgetting.select(
                sessions=sessions, episodes=episodes, speakers=speakers, sources=sources, before=before
            )
        return self.forgetting.forget([ids] if isinstance(ids, str) else list(ids))

    @reads_graph
    def prune(self, policy: ForgetPolicy | None = None, *, now: Any = None) -> ForgetReport:
        """Archive (never drop) items whose decay score is under the policy's threshold."""
        self._check_open()
        return self.forgetting.prune(policy, now=now)

    @reads_graph
    def restore(self, ids: str | Sequence[str]) -> list[Item]:
        """Bring archived items back."""
        self._check_open()
        return self.forgetting.restore([ids] if isinstance(ids, str) else list(ids))

    # -- reading -----------------------------------------------------------------------------
    def get(self, id: str) -> Item:
        """The item with this id; raises :class:`~omnimem.errors.NotFound`."""
        self._check_open()
        item = self.store.get([id])[0]
        if item is None:
            raise NotFound(f"no item with id {id!r} in {self.path}")
        return item

    def search(
        self, query: str, k: int = 10, *, modalities: Sequence[str] | None = None,
        sessions: Sequence[str] | None = None, speakers: Sequence[str] | None = None,
        since: Any = None, until: Any = None, retrievers: Sequence[str] = ("dense", "bm25", "image"),
        neighbours: bool = True,
    ) -> list[Hit]:  # fmt: skip
        """The k items that best match ``query``, best first.

        Retrievers: "dense" (text space), "bm25" (FTS5) and "image" (text-to-image search in the
        image space, used only when the memory has one), fused as ``config.search`` says; with
        ``neighbours`` a turn also borrows from the adjacent turns of its session.
        """
        self._check_open()
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
            raise ConfigError(f"k must be a positive int, got {k!r}")
        unknown = set(retrievers) - {"dense", "bm25", "image"}
        if unknown or not retrievers:
            raise ConfigError(f"unknown retriever(s) {sorted(unknown)}; use 'dense', 'bm25' and/or 'image'")
        filters = query_filters(query, modalities, sessions, speakers, since, until)
        with query_threads():  # one OpenMP / BLAS thread: see omnimem.retrieval.threads
            lexical = "bm25" in retrievers and self.config.search.bm25_weight > 0  # started before the encoding
            bm25 = bm25_later(self.store, query, self.config.search.candidates, filters) if lexical else False
            dense = {}
            if "dense" in retrievers:
                dense["dense"] = (self.indexes[TEXT_SPACE].search, self.encoder.encode([query], modality="text")[0])
            if "image" in retrievers and self.image_encoder is not None:
                vector = self.image_encoder.encode([query], modality="text")[0]
                dense["image"] = (self.indexes[IMAGE_SPACE].search, vector)
            hits = hybrid_search(
                query, store=self.store, dense=dense, k=k, config=self.config.search,
                filters=filters, bm25=bm25, neighbours=neighbours,
            )  # fmt: skip
        if self.config.store.track_access and hits:
            self.store.touch_access([h.id for h in hits], utc_now())
        return hits

    @reads_graph
    def context(
        self, query: str, *, budget_tokens: int | None = None, image: Any = None, audio: Any = None,
        video: str | os.PathLike[str] | None = None, modalities: Sequence[str] | None = None, sessions: Sequence[str] | None = None,
        speakers: Sequence[str] | None = None, since: Any = None, until: Any = None,
        config: GraspConfig | None = None, count_tokens: Callable[[str], int] | None = None, reranker: Any = None,
    ) -> Context:  # fmt: skip
        """The evidence for ``query`` packed into ``budget_tokens`` (default ``config.grasp.budget_tokens``).

        GRASP retrieval (M3KG-RAG, "Modality-wise retrieval + GRASP"; :func:`omnimem.retrieval.retrieve_context`):
        per-space candidates, a second multi-hop round, grounding, reranking, redundancy pruning and packing
        by utility per token. ``image``: the query's image (path, PIL image or frames). ``audio``: the
        query's audio (a file path or 16 kHz float32 samples), transcribed with the memory's transcriber,
        searched as text and used to ground facts: those neither heard in the transcript nor, with
        ``config.media.audio_text_model`` (CLAP), close to the audio are dropped. ``video``: a query video,
        read as a few of its frames (``image``) and its audio track (``audio``). ``config``: a
        :class:`GraspConfig` for this call (default ``self.config.grasp``). ``count_tokens``: the model's
        counter (default an estimate). Filters as in :meth:`search`.
        """
        self._check_open()
        filters = query_filters(query, modalities, sessions, speakers, since, until)
        asked = read_query_media(self.media, image, audio, video)  # query_media.py
        ctx = retrieve_context(
            self, query, budget_tokens=budget_tokens, config=config or self.config.grasp, image=asked.image,
            count_tokens=count_tokens, reranker=reranker, filters=filters, audio_text=asked.heard, audio=asked.audio,
            audio_encoder=self._audio_text_encoder() if asked.audio is not None else None,
        )  # fmt: skip
        if self.config.store.track_access and ctx.entries:
            self.store.touch_access(list(dict.fromkeys(i for e in ctx.entries for i in e.item_ids)), utc_now())
        return ctx

    def _audio_text_encoder(self) -> Encoder | None:
        """The configured audio-text model (``config.media.audio_text_model``, CLAP), loaded once."""
        path = self.config.media.audio_text_model
        if path and self._clap is None:
            self._clap = create_encoder("hf_clap", model=path)
        return self._clap if path else None

    # -- the episodic tree (omnimem.memory.episodes) ----------------------------------------
    def episodes(
        self, level: str | None = None, *, episode: str | None = None, since: Any = None, until: Any = None
    ) -> list[Node]:
        """Sessions and episodes (with spans and summaries) overlapping ``[since, until)``, in time order."""
        self._check_open()
        return self.episodic.nodes(level, episode=episode, since=since, until=until)

    def timeline(
        self, episode: Node | str, *, t_start: float | None = None, t_end: float | None = None, since: Any = None,
        until: Any = None,
    ) -> list[Item]:  # fmt: skip
        """Items of one episode (an id, or a node of :meth:`episodes` or its id) inside a media span
        (seconds) and/or an event-time range, in order."""
        self._check_open()
        return self.episodic.timeline(episode, t_start=t_start, t_end=t_end, since=since, until=until)

    # -- maintenance -------------------------------------------------------------------------
    @reads_graph
    def check(self, *, repair: bool = True) -> dict[str, Any]:
        """Check SQLite, FTS, each vector index and the graph's links against the items; repair what drifted.

        Returns ``{"ok": bool, "database": [...problems], "indexes": {space: {...}}, "graph": {...}}``;
        a database too damaged to read is ``{"ok": False, "database": [what failed]}``, never an exception.
        """
        self._check_open()
        from omnimem.memory.maintenance import check_memory

        return check_memory(self, repair=repair)

    def rebuild_indexes(self) -> None:
        """Rebuild every vector index from the vectors stored in SQLite."""
        self._check_open()
        for index in self.indexes.values():
            index.rebuild()

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError(f"memory {self.path} is closed; open it again with Memory.open")
