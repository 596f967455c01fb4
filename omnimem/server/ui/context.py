"""What every UI handler shares, and the two checks each one starts with.

:meth:`UI.session` finds the request's session (or asks for a sign-in) and hands its scope to the
API's own :func:`~omnimem.server.auth.authorize`, which :meth:`UI.memory` then calls: the UI answers
a memory outside the key's scope exactly as the REST API does (404, as if it did not exist) and a
change a read-only key may not make with 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omnimem.server.auth import authorize
from omnimem.server.paths import check_name
from omnimem.server.routes import ServerState
from omnimem.server.ui.media import MediaFiles
from omnimem.server.ui.overview import Overviews
from omnimem.server.ui.render import Pages
from omnimem.server.ui.sessions import Session, SessionStore, check_csrf

__all__ = ["UI"]


@dataclass
class UI:
    """The web UI's shared parts."""

    state: ServerState  # the REST server's pool of memories and settings
    pages: Pages  # the templates
    sessions: SessionStore  # signed-in browsers
    overviews: Overviews  # memory summaries, cached until a memory changes
    media: MediaFiles  # confined source files for the players
    jobs: Any  # ingest jobs (omnimem.server.ui.actions.Jobs)

    @property
    def pool(self) -> Any:
        return self.state.pool

    @property
    def auth_required(self) -> bool:
        """Whether the UI needs a sign-in (the server needs keys)."""
        return self.sessions.auth.required

    def session(self, request: Any) -> Session:
        """The request's session; raises SignInNeeded when there is none (and a key is needed)."""
        session = self.sessions.require(request)
        request.state.scope = session.scope  # what authorize() reads
        request.state.ui_session = session
        return session

    def memory(self, request: Any, name: str, *, write: bool = False) -> Session:
        """The session, once its key may read (``write``: change) memory ``name``."""
        session = self.session(request)
        check_name(name)
        authorize(request, name, write=write)
        return session

    def change(self, request: Any, name: str, csrf: str | None) -> Session:
        """The session of a request that changes memory ``name``: a read-write key, and the session's
        CSRF token in the form field ``csrf`` or the ``X-CSRF-Token`` header."""
        session = self.memory(request, name, write=True)
        check_csrf(session, request, csrf)
        return session

    def post(self, request: Any, csrf: str | None, name: str | None = None) -> Session:
        """The session of any other POST (sign-out; ask, which may read ``name``), CSRF-checked."""
        session = self.memory(request, name) if name is not None else self.session(request)
        check_csrf(session, request, csrf)
        return session
