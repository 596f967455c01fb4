"""The UI's forms: sign-in and sign-out, ask (streamed), add a note, upload to ingest, forget.

Every POST is CSRF-checked (:func:`~omnimem.server.ui.sessions.check_csrf`); those that change a
memory also need a read-write key (:meth:`UI.change`). Each works as a plain HTML form, and the
page's script enhances two of them: *ask* is read as a stream of JSON lines (``Accept:
application/x-ndjson``: the evidence, then the answer's pieces as the generator's ``stream`` yields
them, then the citations), *upload* answers with a job to poll for progress (``Accept:
application/json``). Forgetting takes two steps: a preview that counts what will go, then a
confirmation that names that count and is refused if the selection changed meanwhile. No
``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.
"""

import hmac
import json
import logging
import secrets
from collections.abc import Iterator
from typing import Annotated, Any

from omnimem.errors import ConfigError, NotFound
from omnimem.server.answering import EvidenceRow, answer
from omnimem.server.models import MAX_QUERY, MAX_TEXT, NAME_PATTERN
from omnimem.server.routes import _save_upload
from omnimem.server.ui.context import UI
from omnimem.server.ui.sessions import COOKIE, SIGNIN_COOKIE, set_cookie

__all__ = ["add_action_routes", "FORGET_BY", "PREVIEW_ITEMS"]

log = logging.getLogger(__name__)

FORGET_BY = ("speaker", "session", "episode", "item")  # what a forget may select by
PREVIEW_ITEMS = 20  # items a forget preview lists


def add_action_routes(router: Any, ui: UI) -> None:
    from fastapi import File, Form, Request, UploadFile
    from fastapi import Path as PathParam
    from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse

    pool, pages, sessions = ui.pool, ui.pages, ui.sessions
    memory_name = PathParam(pattern=NAME_PATTERN, description="memory name")

    # -- signing in and out ----------------------------------------------------------------------
    def signin_page(request: Any, *, error: str = "", next: str = "/", status: int = 200) -> Any:
        token = secrets.token_urlsafe(24)
        response = pages.page(
            request, "signin.html", status=status, error=error, token=token, next=_safe(next),
            idle_minutes=round(sessions.idle_s / 60),
        )  # fmt: skip
        set_cookie(response, request, SIGNIN_COOKIE, token)
        return response

    @router.get("/signin")
    def signin_form(request: Request, next: str = "/") -> Any:
        if not ui.auth_required or sessions.current(request)[1] is not None:
            return RedirectResponse(_safe(next), status_code=303)
        return signin_page(request, next=next)

    @router.post("/signin")
    def signin(
        request: Request, key: str = Form("", max_length=500), token: str = Form("", max_length=100),
        next: str = Form("/", max_length=2_000),
    ) -> Any:  # fmt: skip
        from starlette.exceptions import HTTPException

        expected = request.cookies.get(SIGNIN_COOKIE, "")
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            return signin_page(request, error="The sign-in form expired; enter the key again.", next=next, status=403)
        try:
            sid, _ = sessions.sign_in(key.strip())
        except HTTPException as e:
            message = "Wrong or revoked key." if e.status_code == 401 else str(e.detail)
            return signin_page(request, error=message, next=next, status=e.status_code)
        sessions.end(request.cookies.get(COOKIE))  # a new id at every sign-in: no session fixation
        response = RedirectResponse(_safe(next), status_code=303)
        set_cookie(response, request, COOKIE, sid)
        response.delete_cookie(SIGNIN_COOKIE, path="/")
        return response

    @router.post("/signout")
    def signout(request: Request, csrf: str = Form("", max_length=100)) -> Any:
        ui.post(request, csrf)
        sessions.end(request.cookies.get(COOKIE))
        response = RedirectResponse("/signin" if ui.auth_required else "/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        request.state.new_session = None
        return response

    # -- ask ---------------------------------------------------------------------------------------
    @router.post("/m/{name}/ask")
    def ask(
        request: Request, name: str = memory_name, question: str = Form(min_length=1, max_length=MAX_QUERY),
        budget: int = Form(1_024, ge=16, le=32_768), csrf: str = Form("", max_length=100),
    ) -> Any:  # fmt: skip
        ui.post(request, csrf, name)
        with pool.use(name) as mem:
            ctx = mem.context(question.strip(), budget_tokens=budget)
        rows = evidence_rows(ctx)
        if "application/x-ndjson" in request.headers.get("accept", ""):
            lines = _stream_answer(ui.state.generator, question.strip(), rows, name)
            return StreamingResponse(lines, media_type="application/x-ndjson")
        result = answer(ui.state.generator, question.strip(), [r for r, _ in rows])
        return pages.page(
            request, "answer.html", active="search", name=name, question=question.strip(), result=result,
            rows=rows, ctx=ctx, no_model=ui.state.generator is None,
        )  # fmt: skip

    # -- change ------------------------------------------------------------------------------------
    @router.get("/m/{name}/change")
    def change_page(request: Request, name: str = memory_name) -> Any:
        session = ui.memory(request, name)
        with pool.use(name) as mem:
            overview = ui.overviews.of(name, mem)
        jobs = [j for j in session.jobs.values() if j.memory == name]
        return pages.page(request, "change.html", active="change", name=name, overview=overview, jobs=jobs)

    @router.post("/m/{name}/add")
    def add_note(
        request: Request, name: str = memory_name, text: str = Form(min_length=1, max_length=MAX_TEXT),
        speaker: str = Form("", max_length=200), session: str = Form("", max_length=200),
        timestamp: str = Form("", max_length=64), csrf: str = Form("", max_length=100),
    ) -> Any:  # fmt: skip
        ui.change(request, name, csrf)
        if not text.strip():
            raise ConfigError("the note is empty; write something to remember")
        with pool.use(name) as mem:
            (item_id,) = mem.add(
                text, speaker=speaker.strip() or None, session=session.strip() or None,
                timestamp=timestamp.strip() or None, source="web UI",
            )  # fmt: skip
        return RedirectResponse(f"/m/{name}/item?id={_quote(item_id)}&added=1", status_code=303)

    @router.post("/m/{name}/ingest")
    def ingest(
        request: Request, file: Annotated[list[UploadFile], File(description="files to remember")],
        name: str = memory_name, csrf: str = Form("", max_length=100),
    ) -> Any:  # fmt: skip
        session = ui.change(request, name, csrf)
        uploads = [f for f in file if f.filename]
        if not uploads:
            raise ConfigError("choose at least one file to upload")
        with pool.use(name) as mem:
            folder = mem.path / "uploads"
        saved = {
            str(_save_upload(f, folder, ui.state.max_request_bytes)): (f.filename or "upload")[:200] for f in uploads
        }
        if "application/json" in request.headers.get("accept", ""):
            job = ui.jobs.start(session, name, saved)
            return JSONResponse({"job": job.id, "status": f"/m/{name}/jobs/{job.id}"}, status_code=202)
        job = ui.jobs.run(_job_for(session, name, saved))  # no script: remember it now, then show the report
        return pages.page(request, "report.html", active="change", name=name, job=job)

    @router.get("/m/{name}/jobs/{job_id}")
    def job_status(request: Request, name: str = memory_name, job_id: str = PathParam(max_length=64)) -> Any:
        session = ui.memory(request, name, write=True)
        job = session.jobs.get(job_id)
        if job is None or job.memory != name:
            raise NotFound(f"no ingest job {job_id!r} of this session")
        return JSONResponse(job.to_json())

    @router.post("/m/{name}/forget/preview")
    def forget_preview(
        request: Request, name: str = memory_name, by: str = Form(pattern="^(speaker|session|episode|item)$"),
        value: str = Form(min_length=1, max_length=1_000), csrf: str = Form("", max_length=100),
    ) -> Any:  # fmt: skip
        ui.change(request, name, csrf)
        with pool.use(name) as mem:
            ids = _select(mem, by, value.strip())
            sample = [i for i in mem.store.get(ids[:PREVIEW_ITEMS]) if i is not None]
        return pages.page(
            request, "forget.html", active="change", name=name, by=by, value=value.strip(), count=len(ids),
            sample=sample, changed=False,
        )  # fmt: skip

    @router.post("/m/{name}/forget")
    def forget(
        request: Request, name: str = memory_name, by: str = Form(pattern="^(speaker|session|episode|item)$"),
        value: str = Form(min_length=1, max_length=1_000), expected: int = Form(ge=0),
        csrf: str = Form("", max_length=100),
    ) -> Any:  # fmt: skip
        ui.change(request, name, csrf)
        with pool.use(name) as mem:
            ids = _select(mem, by, value.strip())
            if len(ids) != expected:  # the memory changed since the preview: confirm again
                sample = [i for i in mem.store.get(ids[:PREVIEW_ITEMS]) if i is not None]
                return pages.page(
                    request, "forget.html", status=409, active="change", name=name, by=by, value=value.strip(),
                    count=len(ids), sample=sample, changed=True,
                )  # fmt: skip
            report = mem.forget(ids) if ids else None
        log.info("UI forget in %s by %s: %d item(s)", name, by, len(ids))
        return pages.page(request, "forgotten.html", active="change", name=name, by=by, value=value.strip(), report=report)  # fmt: skip


def _job_for(session: Any, name: str, files: dict[str, str]) -> Any:
    from omnimem.server.ui.jobs import Job

    job = Job(secrets.token_urlsafe(16), name, files)
    session.jobs[job.id] = job
    return job


def _select(mem: Any, by: str, value: str) -> list[str]:
    """Ids of the items a forget by ``by`` = ``value`` removes (an unknown item id selects nothing)."""
    if by not in FORGET_BY:
        raise ConfigError(f"forget by one of {', '.join(FORGET_BY)}")
    if by == "item":
        return [value] if mem.store.get([value])[0] is not None else []
    return mem.forgetting.select(**{f"{by}s": [value]})


def evidence_rows(ctx: Any) -> list[tuple[EvidenceRow, Any]]:
    """``(EvidenceRow, ContextEntry)`` per context entry, cited ``E1``, ``E2`` ... as the prompt cites them."""
    rows = []
    for n, e in enumerate(ctx.entries, start=1):
        row = EvidenceRow(
            id=f"E{n}", item_id=e.id, text=e.text, kind=e.kind, score=float(e.score), source=e.source,
            span=tuple(e.span) if e.span is not None else None, modality=e.modality,
        )  # fmt: skip
        rows.append((row, e))
    return rows


def _evidence_json(row: EvidenceRow, entry: Any, name: str) -> dict[str, Any]:
    target = entry.id if entry.kind in ("item", "frame") else (entry.item_ids[0] if entry.item_ids else None)
    return {
        "id": row.id,
        "kind": row.kind,
        "text": row.text,
        "tokens": entry.tokens,
        "modality": row.modality,
        "span": list(row.span) if row.span else None,
        "retrievers": list(entry.retrievers),
        "href": f"/m/{name}/item?id={_quote(target)}" if target else None,
        "media": f"/m/{name}/media?id={_quote(entry.id)}"
        if entry.kind == "item" and row.modality in ("audio", "video")
        else None,  # fmt: skip
    }


def _stream_answer(generator: Any, question: str, rows: list[tuple[EvidenceRow, Any]], name: str) -> Iterator[str]:
    """JSON lines: ``evidence``, then ``token`` pieces, then ``done`` (or ``no_model`` / ``error``)."""
    from omnimem.server.answering import _GENERATE  # local backends (llama.cpp) are not thread-safe
    from omnimem.vlm.prompts import Evidence, answer_messages, cited_ids

    yield _line({"type": "evidence", "evidence": [_evidence_json(r, e, name) for r, e in rows]})
    if generator is None:
        yield _line({"type": "no_model"})
        return
    shown = [Evidence(id=r.id, text=r.text, source=r.source, span=r.span, score=r.score) for r, _ in rows]
    messages = answer_messages(question, shown)
    pieces: list[str] = []
    try:
        with _GENERATE:
            stream = getattr(generator, "stream", None)
            if stream is None:  # a generator without streaming: one piece
                pieces.append(generator.generate(messages).text)
                yield _line({"type": "token", "text": pieces[-1]})
            else:
                for piece in stream(messages):
                    pieces.append(piece)
                    yield _line({"type": "token", "text": piece})
    except Exception as e:  # the page says so instead of hanging on a broken stream
        log.warning("streamed answer failed: %s", e)
        yield _line({"type": "error", "message": f"the model failed: {e}"})
        return
    text = "".join(pieces).strip()
    known = {r.id for r, _ in rows}
    yield _line({"type": "done", "answer": text, "citations": [c for c in cited_ids(text) if c in known]})


def _line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


def _quote(value: str | None) -> str:
    from urllib.parse import quote

    return quote(value or "", safe="")


def _safe(target: str) -> str:
    """``target`` if it is a path on this site (no open redirect), else ``/``."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or any(ord(c) < 32 for c in target):
        return "/"
    return target
