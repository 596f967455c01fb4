"""Cookie sessions and CSRF tokens of the web UI.

A person signs in with an API key in a POST form. The server checks it with the app's
:class:`~omnimem.server.auth.Authenticator` and keeps, in this process only, a :class:`Session`: the
key's :class:`~omnimem.server.keys.Scope`, which key it was (so revoking the key ends its sessions at
once), a CSRF token and the time of last use. The key itself is not kept. The browser holds only a
random session id (256 bits) in a cookie that is ``HttpOnly`` (no script reads it), ``SameSite=Strict``
(no other site's page sends it), ``Secure`` when the request came over https, and without an expiry
date (it ends with the browser). The table is keyed by the id's SHA-256, so a dump of it doesn't hold
any usable session. A session ends after ``idle_s`` without use, after ``max_age_s`` in any case, and
on sign-out.

CSRF: every state-changing request (a POST) carries the session's token, in the form field ``csrf``
or the ``X-CSRF-Token`` header, compared in constant time; and its ``Origin`` header, when the
browser sends one, must name this server. The sign-in form (there is no session yet) carries a
double-submit token: the same random value in a SameSite=Strict cookie and in a hidden field.

On a server that needs no key (loopback, no keys configured: :attr:`Authenticator.required` is
False) a visitor gets an *open* session at once, for its CSRF token. It ends as soon as the server
starts to need keys.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from omnimem.errors import CorruptInput
from omnimem.server.auth import OPEN, Authenticator
from omnimem.server.keys import ADMIN, Scope

__all__ = [
    "Session",
    "SessionStore",
    "COOKIE",
    "SIGNIN_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SignInNeeded",
    "check_csrf",
    "check_origin",
    "set_cookie",
    "refuse",
]

COOKIE = "omnimem_session"  # holds the random session id
SIGNIN_COOKIE = "omnimem_signin"  # the sign-in form's double-submit token
CSRF_FIELD = "csrf"  # the form field of the CSRF token
CSRF_HEADER = "x-csrf-token"  # the header of the CSRF token, for fetch()
OPEN_KEY = "open"  # Session.key of a session on a server that needs no key
ADMIN_KEY = "api_key"  # Session.key of a session signed in with the server's single api_key


class SignInNeeded(Exception):
    """No live session: the UI answers with the sign-in page."""


@dataclass
class Session:
    """What the server keeps for one signed-in browser."""

    scope: Scope  # what the key may do
    key: str  # the key's public id, or "api_key", or "open"
    csrf: str  # the token every state-changing request carries
    created: float  # clock seconds
    seen: float  # clock seconds of the last request
    jobs: dict[str, Any] = field(default_factory=dict)  # ingest jobs started in this session, by id


class SessionStore:
    """Sessions by the SHA-256 of their id; thread-safe."""

    def __init__(
        self, auth: Authenticator, *, idle_s: float = 30 * 60, max_age_s: float = 12 * 3600,
        max_sessions: int = 10_000, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.auth = auth
        self.idle_s = idle_s  # a session unused this long ends (seconds)
        self.max_age_s = max_age_s  # a session ends this long after sign-in, used or not (seconds)
        self.max_sessions = max_sessions  # past this, the least recently used session ends
        self.clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[bytes, Session] = {}

    # -- life cycle ------------------------------------------------------------------------------
    def sign_in(self, key: str) -> tuple[str, Session]:
        """A new session for the API key ``key``; raises the Authenticator's 401 (or 503) HTTP error."""
        scope = self.auth.scope(key)  # an open server returns its open scope for any key
        if not self.auth.required:
            return self.open_session()
        if scope == ADMIN and self.auth.api_key is not None and hmac.compare_digest(key.encode(), self.auth.api_key.encode()):  # fmt: skip
            return self._new(scope, ADMIN_KEY)
        ids = [k.id for k in self.auth.keys.list() if k.name == scope.name]  # names are unique in a root
        if not ids:  # revoked in between
            raise refuse(401, "wrong or revoked API key")
        return self._new(scope, ids[0])

    def open_session(self) -> tuple[str, Session]:
        """A session on a server that needs no key (its scope: every memory, read-write)."""
        return self._new(OPEN, OPEN_KEY)

    def _new(self, scope: Scope, key: str) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(scope, key, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._drop_expired(now)
            while len(self._sessions) >= self.max_sessions:
                oldest = min(self._sessions, key=lambda h: self._sessions[h].seen)
                del self._sessions[oldest]
            self._sessions[_digest(sid)] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        """The live session of id ``sid`` (its last use set to now), or None."""
        if not sid or len(sid) > 100:
            return None
        now = self.clock()
        with self._lock:
            session = self._sessions.get(_digest(sid))
            if session is None:
                return None
            if now - session.seen > self.idle_s or now - session.created > self.max_age_s:
                del self._sessions[_digest(sid)]
                return None
        if not self._live(session):
            self.end(sid)
            return None
        session.seen = now
        return session

    def end(self, sid: str | None) -> None:
        """End the session of id ``sid`` (sign-out); unknown ids are ignored."""
        if sid:
            with self._lock:
                self._sessions.pop(_digest(sid), None)

    def __len__(self) -> int:
        with self._lock:
            self._drop_expired(self.clock())
            return len(self._sessions)

    def _drop_expired(self, now: float) -> None:
        dead = [h for h, s in self._sessions.items() if now - s.seen > self.idle_s or now - s.created > self.max_age_s]
        for h in dead:
            del self._sessions[h]

    def _live(self, session: Session) -> bool:
        """Whether the key behind ``session`` still works: an open session while the server needs no
        key; a scoped key while the keys file still holds it with the same scope."""
        if session.key == OPEN_KEY:
            return not self.auth.required
        if session.key == ADMIN_KEY:
            return self.auth.api_key is not None
        try:
            keys = self.auth.keys.list()  # re-read only when the file changed
        except CorruptInput:  # an unreadable keys file: fail closed
            return False
        return any(k.id == session.key and k.scope == session.scope for k in keys)

    # -- requests ------------------------------------------------------------------------------
    def current(self, request: Any) -> tuple[str | None, Session | None]:
        """``(session id, session)`` of the request's cookie, or ``(None, None)``."""
        sid = request.cookies.get(COOKIE)
        session = self.get(sid)
        return (sid, session) if session is not None else (None, None)

    def require(self, request: Any) -> Session:
        """The request's live session; on a server that needs no key, a new open one (its cookie set
        by :func:`remember_new`). Raises :class:`SignInNeeded` otherwise."""
        _, session = self.current(request)
        if session is not None:
            return session
        if self.auth.required:
            raise SignInNeeded()
        sid, session = self.open_session()
        request.state.new_session = sid  # the response sets the cookie
        return session


def check_csrf(session: Session, request: Any, token: str | None) -> None:
    """Refuse (403) a state-changing request without the session's CSRF token or from another origin."""
    given = token or request.headers.get(CSRF_HEADER) or ""
    if not hmac.compare_digest(given.encode(), session.csrf.encode()):
        raise refuse(403, "this form has expired or did not come from this page (CSRF token missing or wrong); reload the page and try again")  # fmt: skip
    check_origin(request)


def check_origin(request: Any) -> None:
    """Refuse (403) a request whose ``Origin`` header names another site (browsers send it with POSTs)."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise refuse(403, "this request came from another site; use the UI's own pages")


def set_cookie(response: Any, request: Any, name: str, value: str) -> None:
    """Set an HttpOnly, SameSite=Strict cookie (Secure over https) for the whole site."""
    response.set_cookie(
        name, value, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/"
    )  # no max_age: it ends with the browser; the server ends the session sooner


def remember_new(request: Any, response: Any) -> None:
    """Set the cookie of a session :meth:`SessionStore.require` opened during this request."""
    sid = getattr(request.state, "new_session", None)
    if sid:
        set_cookie(response, request, COOKIE, sid)


def refuse(status: int, detail: str) -> Exception:
    """An HTTP error the UI shows as a page (or JSON to a script)."""
    from fastapi import HTTPException

    return HTTPException(status, detail)


def _digest(sid: str) -> bytes:
    return hashlib.sha256(sid.encode()).digest()
