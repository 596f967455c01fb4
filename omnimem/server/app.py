"""The REST server: ``create_app(root)`` builds the FastAPI app, ``serve(root, host, port)`` runs it.

    from omnimem.server import create_app, serve
    app = create_app(Path("memories"), api_key="s3cret", allowed_root=Path("inbox"))
    serve(Path("memories"), "127.0.0.1", 8000)            # loopback: the key is optional
    serve(Path("memories"), "0.0.0.0", 8000, api_key=k)   # any other address needs a key

Each memory is a directory under ``root``, named in the URL (``/v1/memories/{name}/...``). Keys:
the single ``api_key`` (every memory, read-write) and the scoped keys of ``root``
(:class:`omnimem.server.keys.KeyStore`, ``omnimem keys add``); see :mod:`omnimem.server.auth` for
the rules and status codes. Library errors become HTTP errors carrying their message: ConfigError
400, CorruptInput 422, NotFound 404, MemoryLocked 409, BackendUnavailable and StorageError 503;
every error answer is ``{"detail": ..., "error": ...}`` except a 422 for a body the request models
reject (FastAPI's list of field errors). The OpenAPI spec is at ``/openapi.json``.
No ``from __future__ import annotations``: FastAPI reads the annotations at runtime.
"""

import ipaddress
import json
import logging
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

from omnimem.errors import (
    BackendUnavailable,
    ConfigError,
    CorruptInput,
    MemoryLocked,
    NotFound,
    OmnimemError,
    StorageError,
)
from omnimem.server.auth import Authenticator
from omnimem.server.keys import KeyStore
from omnimem.server.places import places_of
from omnimem.server.pool import DEFAULT_MAX_OPEN, MemoryPool
from omnimem.server.routes import ServerState, build_router
from omnimem.server.ui import build_ui

__all__ = ["create_app", "serve", "is_loopback", "DEFAULT_MAX_REQUEST_BYTES", "status_for"]

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024  # the largest request body (uploads included), bytes

# most specific first: MemoryLocked is a StorageError, which is an OSError
_STATUS: tuple[tuple[type[OmnimemError], int], ...] = (
    (MemoryLocked, 409),
    (NotFound, 404),
    (CorruptInput, 422),
    (ConfigError, 400),
    (BackendUnavailable, 503),
    (StorageError, 503),
)


def status_for(error: OmnimemError) -> int:
    """The HTTP status of a library error (400 for any other :class:`OmnimemError`)."""
    return next((code for cls, code in _STATUS if isinstance(error, cls)), 400)


def create_app(
    root: Path | str, *, api_key: str | None = None, allowed_root: Path | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, generator: Any = None, encoder: Any = None,
    config: Any = None, max_open: int = DEFAULT_MAX_OPEN, require_key: bool = False,
) -> Any:  # fmt: skip
    """The FastAPI app serving the memories under ``root``.

    ``api_key``: an admin key (every memory, read-write); the scoped keys in ``root``'s keys file
    (``omnimem keys add``) work beside it. With either, every ``/v1`` request needs a key
    (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``); ``require_key`` asks for one even when
    none is configured. ``allowed_root``: the folder ingest-by-path may read (None disables it).
    ``max_request_bytes``: larger requests get 413. ``generator``: an ``omnimem.vlm`` Generator that
    answers ``/ask`` and ``/chat`` (None: they return the evidence with ``answer: null``).
    ``encoder`` / ``config``: the Encoder and MemoryConfig used to open and create memories -- for
    tests (a ``HashEncoder``) and custom setups; by default each memory's saved config decides, and
    memories naming the same encoder share one. ``max_open``: memories kept open at once.
    """
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    if isinstance(max_request_bytes, bool) or not isinstance(max_request_bytes, int) or max_request_bytes <= 0:
        raise ConfigError(f"max_request_bytes must be a positive int, got {max_request_bytes!r}")
    places = places_of(root)  # memory directories under a folder, or the schemas of a PostgreSQL database
    keys = KeyStore(places.home)
    keys.list()  # an unreadable keys file fails here, not on the first request
    auth = Authenticator(keys, api_key=api_key, require_key=require_key)
    pool = MemoryPool(places, encoder=encoder, config=config, max_open=max_open)
    state = ServerState(
        pool, allowed_root=Path(allowed_root) if allowed_root is not None else None,
        max_request_bytes=max_request_bytes, generator=generator,
    )  # fmt: skip

    @asynccontextmanager
    async def lifespan(_: Any):
        yield
        pool.close()

    app = FastAPI(
        title="omnimem", version=_version(), lifespan=lifespan,
        description="Long-term multimodal memory for AI agents: add, ingest, search, ask, chat, graph queries.",
    )  # fmt: skip
    app.state.omnimem = state
    app.state.auth = auth  # the key check other front ends (a web UI) reuse, with auth.authorize
    app.include_router(build_router(state, auth.dependency()))
    app.include_router(build_ui(state, auth))  # the web UI at / (omnimem.server.ui), on the same keys
    app.add_exception_handler(OmnimemError, _library_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(BodyLimit, max_bytes=max_request_bytes)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness probe (no auth)."""
        return {"status": "ok"}

    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("omnimem")
    except PackageNotFoundError:
        return "0.0.0"


async def _library_error(_: Any, error: Exception) -> Any:
    from fastapi.responses import JSONResponse

    status = status_for(error) if isinstance(error, OmnimemError) else 400
    if status >= 500:
        log.warning("request failed: %s", error)
    return JSONResponse({"detail": str(error), "error": type(error).__name__}, status_code=status)


async def _validation_error(_: Any, error: Any) -> Any:
    """422 for a body or parameter the request models reject: where and why, never the input echoed
    back (it may be megabytes, nested past what JSON encoders recurse into, or not valid UTF-8)."""
    from fastapi.responses import JSONResponse

    fields = [
        {
            "loc": [_printable(part) for part in e.get("loc", ())],
            "msg": _printable(e.get("msg", "")),
            "type": e.get("type", ""),
        }
        for e in error.errors()
    ]
    return JSONResponse({"detail": fields, "error": "ValidationError"}, status_code=422)


def _printable(value: Any) -> Any:
    """``value`` with what UTF-8 cannot hold (lone surrogates) escaped; ints (list indexes) as they are."""
    if isinstance(value, int):
        return value
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


async def _http_error(_: Any, error: Any) -> Any:
    """FastAPI's HTTP errors (401, 403, 404 of an unknown route ...) in the shape of :class:`ErrorOut`."""
    from fastapi.responses import JSONResponse

    try:
        name = HTTPStatus(error.status_code).phrase.replace(" ", "")
    except ValueError:
        name = "HTTPError"
    return JSONResponse(
        {"detail": error.detail, "error": name}, status_code=error.status_code, headers=getattr(error, "headers", None)
    )


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._reject(send)
                return
            await self.app(scope, receive, send)
            return
        messages, size = [], 0  # no declared length (chunked): buffer up to the limit, then replay
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._reject(send)
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        await self.app(scope, _replay(messages, receive), send)

    async def _reject(self, send: Any) -> None:
        body = json.dumps(
            {"detail": f"request body over the limit of {self.max_bytes} bytes; send less", "error": "TooLarge"}
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[dict], receive: Any) -> Any:
    pending = list(messages)

    async def replay() -> dict:
        return pending.pop(0) if pending else await receive()

    return replay


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    root: Path | str, host: str = "127.0.0.1", port: int = 8000, *, api_key: str | None = None,
    allowed_root: Path | None = None, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    generator: Any = None, encoder: Any = None, config: Any = None, max_open: int = DEFAULT_MAX_OPEN,
    log_level: str = "info",
) -> None:  # fmt: skip
    """Run the server with uvicorn until interrupted.

    Refuses (:class:`ConfigError`) to bind anything but a loopback address without a key: an
    ``api_key`` or at least one scoped key in ``root``'s keys file. On such an address every request
    needs a key for the server's whole life, even if every scoped key is revoked.
    """
    public = not is_loopback(host)
    if public and not api_key and not len(KeyStore(places_of(root).home)):
        raise ConfigError(
            f"refusing to serve on {host!r} without an API key: anyone who can reach it could read and"
            " delete memories. Pass api_key=... (omnimem serve --api-key), add a scoped key"
            " (omnimem keys add ROOT NAME --memory M), or bind 127.0.0.1"
        )
    try:
        import uvicorn
    except ImportError as e:
        from omnimem.errors import missing_extra

        raise missing_extra("uvicorn", "server") from e
    app = create_app(
        root, api_key=api_key, allowed_root=allowed_root, max_request_bytes=max_request_bytes,
        generator=generator, encoder=encoder, config=config, max_open=max_open, require_key=public,
    )  # fmt: skip
    log.info("serving %s on http://%s:%d", root, host, port)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
