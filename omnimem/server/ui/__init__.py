"""A web UI for the memories of a server: ``omnimem serve ROOT``, then open http://127.0.0.1:8000/.

What a person can do in it: pick a memory (those the key may see) and see its size, modalities,
sessions and last activity; search it as they type (each hit with its score, speaker, time,
modality and the retrievers that found it); switch to the context a model would get (GRASP:
``Memory.context``, entries with their token counts against the budget, facts and summaries, the
items each rests on); ask, with the answer streamed and each citation a link to its evidence;
browse the timeline (episodes and sessions with their summaries, expanded to their turns, filtered
by speaker and date); play video and audio from a segment's start (keyframe strips, transcripts,
text on screen); explore an entity's neighbourhood in the knowledge graph (expand a node, open an
edge's evidence) and its facts over time; and change the memory: add a note, upload files to
ingest with a progress view and the failure report, forget by item, speaker, session or episode
after a confirmation that counts what will go.

What we chose, and why:

- **Server-rendered pages** (Jinja2 templates, autoescaped) **and a little vanilla JavaScript**
  (``static/ui.js``, ``static/graph.js``) for what a page cannot do alone: search-as-you-type,
  reading the streamed answer, expanding graph nodes, upload progress, lazy session expansion. Every
  page works as plain HTML forms and links; the scripts only enhance them. No framework, no build
  step, no Node toolchain: the UI is a few files of package data, ships in the wheel, and works
  offline (every script, style and font comes from the package; the system font stack).
- **The API's security, not a second one.** The UI signs in with the same scoped API keys
  (:mod:`omnimem.server.ui.sessions`: a random session id in an HttpOnly, SameSite=Strict cookie,
  mapped in the server to the key's scope, ended after idle time or on sign-out, and at once when
  the key is revoked) and checks every memory with the API's own
  :func:`~omnimem.server.auth.authorize`: a key sees in the picker only the memories it may read,
  and another memory's URL answers 404 as the API does. Every POST carries a per-session CSRF token
  and is refused from another origin; scripts render data with ``textContent`` only; pages carry a
  Content-Security-Policy that runs no inline script. A loopback server with no keys needs no
  sign-in, like the API.
- **Media are confined** (:mod:`omnimem.server.ui.media`): a player gets an item's source file only
  if it is the very file the memory ingested (its SHA-256 matches the item's episode), served with
  HTTP range requests so that players can seek; blobs come from the memory's own blob store.
- **The library as it is.** Handlers call the Memory API through the server's pool, as the REST
  routes do; ``/v1`` is untouched and the UI's routes stay out of the OpenAPI spec.

Layout: :mod:`.views` (read-only pages), :mod:`.actions` (forms), :mod:`.media`, :mod:`.sessions`,
:mod:`.render` (templates, security headers, error pages), :mod:`.graphdata`, :mod:`.overview`,
:mod:`.jobs`; ``templates/`` and ``static/``. No ``from __future__ import annotations`` in the modules
that define handlers: FastAPI reads their annotations at runtime.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_ui"]


def build_ui(state: Any, auth: Any, *, idle_s: float = 30 * 60) -> Any:
    """The UI's router over the REST server's ``state`` (pool, settings, generator) and ``auth`` (the
    app's :class:`~omnimem.server.auth.Authenticator`). ``idle_s``: a session unused this long ends."""
    from fastapi import APIRouter

    from omnimem.server.ui.actions import add_action_routes
    from omnimem.server.ui.context import UI
    from omnimem.server.ui.jobs import Jobs
    from omnimem.server.ui.media import MediaFiles
    from omnimem.server.ui.overview import Overviews
    from omnimem.server.ui.render import Pages, ui_route_class
    from omnimem.server.ui.sessions import SessionStore
    from omnimem.server.ui.views import add_view_routes

    pages = Pages()
    ui = UI(state, pages, SessionStore(auth, idle_s=idle_s), Overviews(), MediaFiles(), Jobs(state.pool))
    router = APIRouter(include_in_schema=False, route_class=ui_route_class(pages))
    add_view_routes(router, ui)
    add_action_routes(router, ui)
    router.ui = ui  # type: ignore[attr-defined]  # for tests and embedding
    return router
