"""The ``/v1`` endpoints: thin handlers that call the library and convert its results to the models.

Handlers are plain ``def`` functions: FastAPI runs them in its threadpool, and the pool's per-memory
lock keeps one operation per memory at a time. Every route that names a memory takes it through a
dependency that calls :func:`~omnimem.server.auth.authorize` (``readable``: read rights,
``writable``: read-write), so the key's scope is checked before anything else runs. No
``from __future__ import annotations`` here: FastAPI reads the handlers' annotations at runtime.
"""

import hashlib
import os
import re
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from omnimem.errors import ConfigError, NotFound
from omnimem.server import models as m
from omnimem.server.answering import Answer, EvidenceRow, answer, render, retrieve
from omnimem.server.auth import authorize, authorize_create, scope_of_request
from omnimem.server.paths import confine
from omnimem.server.pool import MemoryPool
from omnimem.types import to_iso, utc_now
from omnimem.vlm.base import estimate_tokens

__all__ = ["build_router", "ServerState"]

_CHUNK = 1 << 20  # bytes read from an upload at a time


class ServerState:
    """What the handlers share: the pool of memories and the server's settings."""

    def __init__(self, pool: MemoryPool, *, allowed_root: Path | None, max_request_bytes: int, generator: Any) -> None:
        self.pool = pool
        self.allowed_root = allowed_root  # ingest-by-path is confined here; None disables it
        self.max_request_bytes = max_request_bytes  # the largest request body, uploads included
        self.generator = generator  # an omnimem.vlm Generator for /ask and /chat, or None


def build_router(state: ServerState, authenticate: Any) -> Any:
    """The ``/v1`` router over ``state``; ``authenticate`` (a dependency) runs before every handler
    and leaves the key's scope on ``request.state.scope``."""
    from fastapi import APIRouter, Depends

    errors = {code: {"model": m.ErrorOut} for code in (400, 401, 403, 404, 409, 413, 503)}
    router = APIRouter(prefix="/v1", dependencies=[Depends(authenticate)], responses=errors)
    readable, writable = _access(write=False), _access(write=True)
    _memory_routes(router, state, readable)
    _item_routes(router, state, readable, writable)
    _ingest_routes(router, state, writable)
    _retrieval_routes(router, state, readable, writable)
    _graph_routes(router, state, readable)
    return router


def _access(*, write: bool) -> Any:
    """``name: <this>`` in a handler: the memory name from the path, once the key may read (or change) it."""
    from fastapi import Depends, Request
    from fastapi import Path as PathParam

    def check(request: Request, name: str = PathParam(pattern=m.NAME_PATTERN, description="memory name")) -> str:
        authorize(request, name, write=write)
        return name

    check.__name__ = "writable_memory" if write else "readable_memory"
    check.write = write  # type: ignore[attr-defined]  # what the route test checks
    return Annotated[str, Depends(check)]


def _memory_routes(router: Any, state: ServerState, readable: Any) -> None:
    from fastapi import Request

    pool = state.pool

    @router.get("/memories", response_model=m.MemoryList, tags=["memories"])
    def list_memories(request: Request) -> m.MemoryList:
        """The memories under the server root that the key may see."""
        scope = scope_of_request(request)
        out = []
        for name in pool.names():
            if scope.can_read(name):
                with pool.use(name, write=False) as mem:
                    out.append(m.MemoryOut(name=name, items=len(mem)))
        return m.MemoryList(memories=out)

    @router.post("/memories", response_model=m.MemoryOut, status_code=201, tags=["memories"])
    def create_memory(body: m.MemoryCreate, request: Request) -> m.MemoryOut:
        """Create an empty memory (400 if the name is taken; 403 unless the key may write that name)."""
        authorize_create(request, body.name)
        pool.create(body.name)
        return m.MemoryOut(name=body.name, items=0)

    @router.get("/memories/{name}", response_model=m.MemoryStats, tags=["memories"])
    def memory_stats(name: readable) -> m.MemoryStats:
        """Item count, encoder and graph counts of one memory."""
        with pool.use(name, write=False) as mem:
            return m.MemoryStats(
                name=name, items=len(mem), encoder=mem.encoder.name, dim=mem.encoder.dim, graph=mem.graph.counts()
            )


def _item_out(item: Any) -> dict[str, Any]:
    fields = set(m.ItemOut.model_fields)
    return {k: v for k, v in asdict(item).items() if k in fields}


def _item_routes(router: Any, state: ServerState, readable: Any, writable: Any) -> None:
    from fastapi import Path as PathParam

    pool = state.pool
    id_param = PathParam(min_length=1, max_length=200, description="item id")

    @router.post("/memories/{name}/items", response_model=m.ItemsOut, status_code=201, tags=["items"])
    def add_items(body: m.ItemsCreate, name: writable) -> m.ItemsOut:
        """Remember one text (``text``) or a conversation (``turns``); adding the same twice is a no-op."""
        if (body.text is None) == (body.turns is None):
            raise ConfigError("give exactly one of 'text' (one item) or 'turns' (a conversation)")
        with pool.use(name) as mem:
            if body.text is not None:
                ids = mem.add(
                    body.text, speaker=body.speaker, timestamp=body.timestamp, session=body.session,
                    episode=body.episode, source=body.source, metadata=body.metadata,
                )  # fmt: skip
            else:
                turns = [t.model_dump(exclude_none=True) for t in body.turns or []]
                ids = mem.add_conversation(
                    turns, session=body.session, episode=body.episode, source=body.source, start=body.start
                )
        return m.ItemsOut(ids=ids)

    @router.get("/memories/{name}/items/{item_id}", response_model=m.ItemOut, tags=["items"])
    def get_item(name: readable, item_id: str = id_param) -> m.ItemOut:
        """One stored item."""
        with pool.use(name, write=False) as mem:
            return m.ItemOut(**_item_out(mem.get(item_id)))

    @router.delete("/memories/{name}/items/{item_id}", response_model=m.ForgetOut, tags=["items"])
    def forget_item(name: writable, item_id: str = id_param) -> m.ForgetOut:
        """Privacy delete: the item and everything derived only from it, everywhere."""
        with pool.use(name) as mem:
            report = mem.forget(item_id)
        if not report.items:
            raise NotFound(f"no item with id {item_id!r} in memory {name!r}")
        return m.ForgetOut(**asdict(report))


def _ingest_routes(router: Any, state: ServerState, writable: Any) -> None:
    from fastapi import File, UploadFile

    pool = state.pool

    @router.post("/memories/{name}/ingest", response_model=m.IngestOut, tags=["ingest"])
    def ingest_upload(
        file: Annotated[UploadFile, File(description="a text, image, audio or video file")], name: writable
    ) -> m.IngestOut:
        """Remember an uploaded file (kept under the memory's ``uploads/`` folder as its source)."""
        with pool.use(name) as mem:
            path = _save_upload(file, mem.path / "uploads", state.max_request_bytes)
            report = mem.ingest(path)
        return m.IngestOut(added=report.added, skipped=report.skipped, failed=report.failed, notes=report.notes)

    @router.post("/memories/{name}/ingest/path", response_model=m.IngestOut, tags=["ingest"])
    def ingest_path(body: m.IngestPath, name: writable) -> m.IngestOut:
        """Remember a file or folder under the server's allowed root (no traversal, no symlinks out)."""
        path = confine(body.path, state.allowed_root)
        with pool.use(name) as mem:
            report = mem.ingest(path)
        return m.IngestOut(added=report.added, skipped=report.skipped, failed=report.failed, notes=report.notes)


def _safe_filename(name: str | None) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name or "").name).lstrip(".")[-100:]
    return base or "upload"


def _save_upload(upload: Any, folder: Path, limit: int) -> Path:
    """Write ``upload`` to ``folder/<sha256 prefix>-<name>``; 413 past ``limit`` bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := upload.file.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                digest.update(chunk)
                out.write(chunk)
        target = folder / f"{digest.hexdigest()[:16]}-{_safe_filename(upload.filename)}"
        os.replace(tmp, target)
        return target
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _too_large(limit: int) -> Exception:
    from fastapi import HTTPException

    return HTTPException(413, f"request body over the limit of {limit} bytes; send a smaller file")


def _evidence_out(rows: list[EvidenceRow]) -> list[m.EvidenceOut]:
    return [m.EvidenceOut(**{**asdict(r), "span": list(r.span) if r.span else None}) for r in rows]


def _answer_fields(result: Answer) -> dict[str, Any]:
    return dict(
        question=result.question, answer=result.answer, citations=_evidence_out(result.citations),
        evidence=_evidence_out(result.evidence),
    )  # fmt: skip


def _retrieval_routes(router: Any, state: ServerState, readable: Any, writable: Any) -> None:
    from fastapi import Query

    pool = state.pool

    @router.get("/memories/{name}/search", response_model=m.SearchOut, tags=["retrieval"])
    def search(
        name: readable, q: str = Query(min_length=1, max_length=m.MAX_QUERY), k: int = Query(10, ge=1, le=100)
    ) -> m.SearchOut:
        """The k items that best match ``q``, best first (dense + BM25, fused)."""
        with pool.use(name, write=False) as mem:
            hits = mem.search(q, k=k)
        out = [m.HitOut(**{**_item_out(h), "retrievers": list(h.retrievers), "score": h.score}) for h in hits]
        return m.SearchOut(query=q, hits=out)

    @router.post("/memories/{name}/context", response_model=m.ContextOut, tags=["retrieval"])
    def context(body: m.ContextIn, name: readable) -> m.ContextOut:
        """Token-budgeted, citable evidence for a prompt."""
        with pool.use(name, write=False) as mem:
            rows = retrieve(mem, body.query, budget_tokens=body.budget_tokens)
        tokens = sum(estimate_tokens(r.text) for r in rows)
        return m.ContextOut(query=body.query, evidence=_evidence_out(rows), tokens=tokens, prompt=render(rows))

    @router.post("/memories/{name}/ask", response_model=m.AskOut, tags=["retrieval"])
    def ask(body: m.AskIn, name: readable) -> m.AskOut:
        """Retrieve, then answer with citations (``answer`` is null without a configured generator)."""
        with pool.use(name, write=False) as mem:
            rows = retrieve(mem, body.question, budget_tokens=body.budget_tokens)
        result = answer(state.generator, body.question, rows, max_new_tokens=body.max_new_tokens)
        return m.AskOut(**_answer_fields(result))

    @router.post("/memories/{name}/chat", response_model=m.ChatOut, tags=["retrieval"])
    def chat(body: m.ChatIn, name: writable) -> m.ChatOut:
        """One chat turn: ``ask``, then remember the question (and the answer) in ``session``, timed
        ``timestamp`` (default: now), so the same question asked twice is two turns."""
        asked = to_iso(body.timestamp) or utc_now()  # a bad time is a 400 before any work
        with pool.use(name, write=False) as mem:
            rows = retrieve(mem, body.question, budget_tokens=body.budget_tokens)
        result = answer(state.generator, body.question, rows, max_new_tokens=body.max_new_tokens)
        turns = [{"speaker": body.user, "text": body.question, "timestamp": asked}]
        if result.answer:
            answered = asked if body.timestamp is not None else utc_now()
            turns.append({"speaker": "assistant", "text": result.answer, "timestamp": answered})
        with pool.use(name) as mem:
            ids = mem.add_conversation(turns, session=body.session)
        return m.ChatOut(**_answer_fields(result), ids=ids)


def _graph_routes(router: Any, state: ServerState, readable: Any) -> None:
    from fastapi import Query

    pool = state.pool

    @router.get("/memories/{name}/graph/entities", response_model=m.EntitiesOut, tags=["graph"])
    def entities(name: readable, q: str = Query(alias="name", min_length=1, max_length=500)) -> m.EntitiesOut:
        """The knowledge-graph entities with this name (any type, merges resolved)."""
        with pool.use(name, write=False) as mem:
            rows = mem.graph.find_entities(q)
        return m.EntitiesOut(entities=[m.EntityOut(**{**asdict(r), "aliases": list(r.aliases)}) for r in rows if r.id])

    @router.get("/memories/{name}/facts", response_model=m.FactsOut, tags=["graph"])
    def facts(
        name: readable,
        entity: str = Query(min_length=1, max_length=500),
        as_of: str | None = Query(None, max_length=64, description="ISO-8601: the facts true at that time"),
    ) -> m.FactsOut:
        """Facts about an entity: the current ones, or those that held ``as_of`` a time."""
        when = to_iso(as_of)  # a bad time is a 400 even when the entity has no facts
        with pool.use(name, write=False) as mem:
            found = mem.facts(entity, as_of=when)
        fields = set(m.FactOut.model_fields)
        out = [m.FactOut(**{k: v for k, v in asdict(f).items() if k in fields}) for f in found]
        return m.FactsOut(entity=entity, facts=out)
