"""Who may call the ``/v1`` routes, and on which memories.

A request carries a key in a header only, ``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` (never
in the URL, where logs and proxies keep it). :class:`Authenticator` turns it into a
:class:`~omnimem.server.keys.Scope`: the server's single ``api_key`` is the admin scope (every memory,
read-write); a scoped key of the root's :class:`~omnimem.server.keys.KeyStore` has its own.
:func:`authorize` then checks one memory against the scope; every route that names a memory calls
it (through the route dependencies), and so will any other front end (a web UI).

Status codes:
    401  no key, or not a live one (a revoked key stops working at once)
    404  a memory the key may not see: the same answer as a memory that does not exist, so a key
         learns nothing about the memories of others
    403  a change to a memory the key may only read, or creating a memory outside its scope
    503  the keys file cannot be read (the server fails closed)

Keys are needed when the server has an ``api_key``, when ``require_key`` is set (a public bind), or
as soon as the root has a keys file; from then on the server never answers without one, even if
the file is deleted. No ``from __future__ import annotations``: FastAPI reads the dependency's
annotations at runtime.
"""

import hmac
import threading
from typing import Annotated, Any

from omnimem.errors import ConfigError, CorruptInput, NotFound
from omnimem.server.keys import ADMIN, ALL, READ_WRITE, KeyStore, Scope

__all__ = ["Authenticator", "authorize", "authorize_create", "scope_of_request", "OPEN", "KEY_HINT"]

OPEN = Scope("open", (ALL,), READ_WRITE)  # no key needed: a loopback server with no keys configured
KEY_HINT = "send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"


class Authenticator:
    """The keys a server accepts: its ``api_key`` (admin) and the scoped keys in ``keys``."""

    def __init__(self, keys: KeyStore, *, api_key: str | None = None, require_key: bool = False) -> None:
        if api_key is not None and (not isinstance(api_key, str) or len(api_key) < 8):
            raise ConfigError(
                "api_key must be a string of at least 8 characters; generate one with secrets.token_urlsafe()"
            )
        self.keys = keys
        self.api_key = api_key
        self._required = require_key or api_key is not None or keys.exists()  # once True, stays True
        self._lock = threading.Lock()

    @property
    def required(self) -> bool:
        """Whether requests need a key (latched: a server that has seen keys never opens up again)."""
        if not self._required and self.keys.exists():
            with self._lock:
                self._required = True
        return self._required

    def scope(self, given: str | None) -> Scope:
        """The scope of the key ``given`` (None: no key sent); raises a 401 (or 503) HTTP error."""
        if not self.required:
            return OPEN
        if given:
            if self.api_key is not None and hmac.compare_digest(given.encode(), self.api_key.encode()):
                return ADMIN
            try:
                scope = self.keys.verify(given)
            except CorruptInput as e:
                raise _http(503, f"the server cannot check keys: {e}") from e
            if scope is not None:
                return scope
            raise _http(401, f"wrong or revoked API key; {KEY_HINT}", headers={"WWW-Authenticate": "Bearer"})
        raise _http(401, f"missing API key; {KEY_HINT}", headers={"WWW-Authenticate": "Bearer"})

    def dependency(self) -> Any:
        """A FastAPI dependency: reads the key headers, stores the scope on ``request.state.scope``."""
        from fastapi import Request, Security
        from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

        header = APIKeyHeader(name="X-API-Key", auto_error=False)
        bearer = HTTPBearer(auto_error=False)

        def authenticate(
            request: Request,
            x_api_key: Annotated[str | None, Security(header)] = None,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
        ) -> Scope:
            given = x_api_key or (credentials.credentials if credentials is not None else None)
            request.state.scope = scope = self.scope(given)
            return scope

        return authenticate


def scope_of_request(request: Any) -> Scope:
    """The scope :meth:`Authenticator.dependency` found for ``request``; a 401 if it never ran."""
    scope = getattr(request.state, "scope", None)
    if not isinstance(scope, Scope):  # a route mounted without the dependency: fail closed
        raise _http(401, f"this route is not authenticated; {KEY_HINT}")
    return scope


def authorize(request: Any, memory: str, *, write: bool) -> Scope:
    """Check that the request's key may read (``write=False``) or change (``write=True``) ``memory``.

    Raises :class:`NotFound` (404) for a memory the key may not see and a 403 HTTP error for a
    change the key may not make; returns the scope.
    """
    scope = scope_of_request(request)
    if not scope.can_read(memory):
        raise NotFound(f"no memory named {memory!r}; create it with POST /v1/memories")
    if write and not scope.can_write(memory):
        raise _http(403, f"key {scope.name!r} may only read memory {memory!r}; use a read-write key to change it")
    return scope


def authorize_create(request: Any, memory: str) -> Scope:
    """Check that the request's key may create ``memory`` (read-write on that name); a 403 otherwise.

    Checked before the name's existence, so the answer says nothing about memories the key cannot see.
    """
    scope = scope_of_request(request)
    if not scope.can_write(memory):
        raise _http(
            403, f"key {scope.name!r} may not create memory {memory!r}; use a read-write key whose scope names it"
        )
    return scope


def _http(status: int, detail: str, headers: dict[str, str] | None = None) -> Exception:
    from fastapi import HTTPException

    return HTTPException(status, detail, headers=headers)
