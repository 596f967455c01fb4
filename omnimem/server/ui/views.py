"""The UI's read-only pages: the memory picker, search and context, the timeline, items, the graph, media.

Each handler starts with :meth:`UI.memory` (a session whose key may read the memory), reads through
the Memory API while holding the memory (``pool.use``), and renders a template. A ``partial=1``
query asks for the results fragment only: the page's script fetches it for search-as-you-type and
for expanding a session, and parses it (no ``innerHTML``); the fragment is the same autoescaped
template the full page includes. No ``from __future__ import annotations``: FastAPI reads the
handlers' annotations at runtime.
"""

import re
from typing import Annotated, Any

from omnimem.errors import NotFound, OmnimemError
from omnimem.server.models import MAX_QUERY, NAME_PATTERN
from omnimem.server.ui.context import UI
from omnimem.server.ui.graphdata import edge_sources, facts_with_history, neighbourhood
from omnimem.server.ui.media import blob_response
from omnimem.server.ui.overview import episode_title
from omnimem.server.ui.render import HERE
from omnimem.types import to_iso

__all__ = ["add_view_routes", "STATIC"]

STATIC = {"ui.css": "text/css", "ui.js": "text/javascript", "graph.js": "text/javascript"}  # the files served
MAX_TURNS = 1_000  # items one expanded session or episode shows
HITS = 20  # search hits shown
_ON_SCREEN = re.compile(r"\[text on screen: (.*?)\]", re.S)


def add_view_routes(router: Any, ui: UI) -> None:
    from fastapi import Path as PathParam
    from fastapi import Query, Request
    from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

    pool, pages = ui.pool, ui.pages
    memory_name = PathParam(pattern=NAME_PATTERN, description="memory name")

    @router.get("/ui/static/{file}")
    def static(file: str) -> Any:
        if file not in STATIC:
            raise NotFound(f"no UI file {file[:80]!r}")
        return FileResponse(HERE / "static" / file, media_type=STATIC[file])

    @router.get("/")
    def picker(request: Request) -> Any:
        session = ui.session(request)
        rows, failed = [], {}
        for name in pool.names():
            if not session.scope.can_read(name):
                continue
            try:
                with pool.use(name) as mem:
                    rows.append(ui.overviews.of(name, mem))
            except OmnimemError as e:  # one broken memory must not hide the others
                failed[name] = str(e)
        return pages.page(request, "picker.html", memories=rows, failed=failed)

    @router.get("/m/{name}")
    def memory_home(request: Request, name: str = memory_name) -> Any:
        ui.memory(request, name)
        return RedirectResponse(f"/m/{name}/search", status_code=303)

    @router.get("/m/{name}/search")
    def search(
        request: Request, name: str = memory_name, q: str = Query("", max_length=MAX_QUERY),
        view: str = Query("hits", pattern="^(hits|context)$"), budget: int = Query(1_024, ge=16, le=32_768),
        modality: str = Query("", pattern="^(|text|image|audio|video)$"), partial: bool = False,
    ) -> Any:  # fmt: skip
        ui.memory(request, name)
        query, hits, ctx = q.strip(), [], None
        modalities = [modality] if modality else None
        with pool.use(name) as mem:
            overview = ui.overviews.of(name, mem)
            if query and view == "context":
                ctx = mem.context(query, budget_tokens=budget, modalities=modalities)
            elif query:
                hits = mem.search(query, k=HITS, modalities=modalities)
        context = dict(name=name, q=query, view=view, budget=budget, modality=modality, hits=hits, ctx=ctx)
        if partial:
            return pages.page(request, "_results.html", **context)
        return pages.page(request, "search.html", active="search", overview=overview, **context)

    @router.get("/m/{name}/timeline")
    def timeline(
        request: Request, name: str = memory_name, speaker: str = Query("", max_length=200),
        since: str = Query("", max_length=64), until: str = Query("", max_length=64),
    ) -> Any:  # fmt: skip
        ui.memory(request, name)
        window = {"since": to_iso(since or None), "until": to_iso(until or None)}  # a bad date is a 400
        with pool.use(name) as mem:
            overview = ui.overviews.of(name, mem)
            groups = _episode_groups(mem, speaker, window)
        return pages.page(
            request, "timeline.html", active="timeline", name=name, overview=overview, groups=groups,
            speaker=speaker, since=since, until=until,
        )  # fmt: skip

    @router.get("/m/{name}/node")
    def node(
        request: Request, name: str = memory_name, id: str = Query("", max_length=1_000),
        speaker: str = Query("", max_length=200), since: str = Query("", max_length=64),
        until: str = Query("", max_length=64), partial: bool = False,
    ) -> Any:  # fmt: skip
        ui.memory(request, name)
        window = {"since": to_iso(since or None), "until": to_iso(until or None)}
        with pool.use(name) as mem:
            found = mem.store.nodes(ids=[id]) if id else []
            if id and not found:
                raise NotFound(f"no session or episode {id[:200]!r} in memory {name!r}")
            items = mem.timeline(found[0] if found else "", **window)
        if speaker:
            items = [i for i in items if i.speaker == speaker]
        turns = [i for i in items if i.modality not in ("audio", "video") and not i.metadata.get("keyframe")]
        here = found[0] if found else None
        title = "Items outside any episode" if here is None else (
            episode_title(here, items[0] if items else None) if here.level == "episode" else f"Session {here.session}"
        )  # fmt: skip
        context = dict(
            name=name, node=here, title=title, turns=turns[:MAX_TURNS], more=max(0, len(turns) - MAX_TURNS),
            media=_media_view(items), speaker=speaker,
        )  # fmt: skip
        return pages.page(request, "_node.html" if partial else "node.html", active="timeline", **context)

    @router.get("/m/{name}/item")
    def item(
        request: Request, name: str = memory_name, id: str = Query(min_length=1, max_length=1_000), added: bool = False
    ) -> Any:
        ui.memory(request, name)
        with pool.use(name) as mem:
            found = mem.get(id)
            triplets = mem.graph.triplets(item_ids=[id])
            names = {e.id: e.name for e in mem.graph.entities(sorted({x for t in triplets for x in (t.head, t.tail)}))}
            session_node = (
                mem.store.nodes(ids=[f"session:{found.episode or ''}/{found.session}"]) if found.session else []
            )
        return pages.page(
            request, "item.html", active="", name=name, item=found, media=_media_view([found]), triplets=triplets,
            names=names, session_node=session_node[0] if session_node else None, added=added,
        )  # fmt: skip

    @router.get("/m/{name}/media")
    def media(request: Request, name: str = memory_name, id: str = Query(min_length=1, max_length=1_000)) -> Any:
        ui.memory(request, name)
        with pool.use(name) as mem:
            found = mem.get(id)
        return ui.media.response(found)

    @router.get("/m/{name}/blob")
    def blob(request: Request, name: str = memory_name, address: str = Query(min_length=64, max_length=80)) -> Any:
        ui.memory(request, name)
        with pool.use(name) as mem:
            return blob_response(mem, address)

    @router.get("/m/{name}/graph")
    def graph(
        request: Request, name: str = memory_name, entity: str = Query("", max_length=500),
        id: str = Query("", max_length=200),
    ) -> Any:  # fmt: skip
        ui.memory(request, name)
        entity = entity.strip()
        with pool.use(name) as mem:
            overview = ui.overviews.of(name, mem)
            matches = mem.graph.find_entities(entity) if entity else (mem.graph.entities([id]) if id else [])
            chosen = next((e for e in matches if e.id == id), matches[0] if matches else None)
            hood = neighbourhood(mem.graph, chosen.id) if chosen else None
            facts = facts_with_history(mem, chosen.name) if chosen else []
            suggestions = [] if chosen else _best_connected(mem.graph)
        return pages.page(
            request, "graph.html", active="graph", name=name, overview=overview, entity=entity, matches=matches,
            chosen=chosen, hood=hood, facts=facts, suggestions=suggestions,
        )  # fmt: skip

    @router.get("/m/{name}/graph/data")
    def graph_data(request: Request, name: str = memory_name, id: str = Query(min_length=1, max_length=200)) -> Any:
        ui.memory(request, name)
        with pool.use(name) as mem:
            return JSONResponse(neighbourhood(mem.graph, id))

    @router.get("/m/{name}/graph/edge")
    def graph_edge(request: Request, t: Annotated[list[str], Query(max_length=200)], name: str = memory_name) -> Any:
        ui.memory(request, name)
        with pool.use(name) as mem:
            return JSONResponse({"items": edge_sources(mem, [x[:200] for x in t])})


def _episode_groups(mem: Any, speaker: str, window: dict[str, Any]) -> list[dict[str, Any]]:
    """Episodes in time order, each with its sessions; what has no episode comes last as one group."""
    episodes = mem.episodes("episode", **window)
    sessions = mem.episodes("session", **window)
    keep = None
    if speaker:  # only the sessions and episodes where this speaker says something
        items = [i for i in mem.store.get(mem.store.select(speakers=[speaker])) if i is not None]
        keep = {(i.episode or "", i.session) for i in items}
    by_parent: dict[str, list[Any]] = {}
    for s in sessions:
        if keep is None or (s.episode, s.session) in keep:
            by_parent.setdefault(s.parent or "", []).append(s)
    groups = []
    for ep in episodes:
        children = by_parent.pop(ep.id, [])
        if keep is not None and not children and not any(e == ep.episode for e, _ in keep):
            continue
        sample = _sample_item(mem, ep)
        kind = _kind(sample)
        groups.append({"node": ep, "title": episode_title(ep, sample), "kind": kind, "sessions": children})
    loose = by_parent.pop("", [])
    if loose or (keep is None and mem.store.timeline(episode="")) or (keep is not None and any(not e for e, _ in keep)):
        groups.append({"node": None, "title": "Outside any episode", "kind": "text", "sessions": loose})
    return groups


def _sample_item(mem: Any, node: Any) -> Any:
    ids = mem.store.node_item_ids(node, limit=1)
    found = mem.store.get(ids) if ids else []
    return found[0] if found else None


def _kind(item: Any) -> str:
    """``video``, ``audio``, ``image`` or ``text``: what an episode holds, judged from one of its items."""
    if item is None:
        return "text"
    if item.modality == "image" and item.metadata.get("keyframe"):
        return "video"
    return item.modality


def _media_view(items: list[Any]) -> dict[str, Any] | None:
    """What a media episode shows: its segments (with transcript and on-screen text) and keyframe strip."""
    segments = [i for i in items if i.modality in ("video", "audio")]
    if not segments:
        return None
    rows = []
    for seg in segments:
        transcript = seg.metadata.get("transcript")
        phrases = transcript if isinstance(transcript, list) else []
        spoken = transcript if isinstance(transcript, str) else " ".join(p.get("text", "") for p in phrases)
        on_screen = " / ".join(m.strip() for m in _ON_SCREEN.findall(seg.text) if m.strip())
        rows.append({"item": seg, "spoken": spoken, "phrases": phrases, "on_screen": on_screen})
    keyframes = [
        {"blob": k["blob"], "t": k.get("t", seg.t_start or 0.0), "segment": seg.id}
        for seg in segments
        for k in seg.metadata.get("keyframes", [])
        if isinstance(k, dict) and k.get("blob")
    ]
    first = segments[0]
    return {"kind": first.modality, "player_item": first.id, "segments": rows, "keyframes": keyframes}


def _best_connected(graph: Any, limit: int = 30, scan: int = 2_000) -> list[Any]:
    """Up to ``limit`` entities with the most mentions, among the first ``scan`` (suggestions to start from)."""
    entities = graph.entities()[:scan]
    degree = graph.mention_counts([e.id for e in entities]) if entities else {}
    return sorted(entities, key=lambda e: (-degree.get(e.id, 0), e.name))[:limit]
