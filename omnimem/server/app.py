"""The REST server: ``create_app(root)`` builds the FastAPI app, ``serve(root, host, port)`` runs it.

    from omnimem.server import create_app, serve
    app = create_app(Path("memories"), api_key="s3cret", allowed_root=Path("inbox"))
    serve(Path("memories"), "127.0.0.1", 8000)            # loopback: the key is optional
    serve(Path("memories"), "0.0.0.0", 8000, api_key=k)   # any other address needs a key

Each memory is a directory under ``root``, named in the URL (``/v1/memories/{name}/...``). Library
errors become HTTP errors carrying their message: ConfigError 400, CorruptInput 422, NotFound 404,
MemoryLocked 409, BackendUnavailable and StorageError 503. The OpenAPI spec is at ``/openapi.json``.
No ``from __future__ import annotations``: FastAPI reads the annotations at runtime.
"""

import ipaddress
import json
import logging
import secrets
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from omnimem.errors import (
    BackendUnavailable,
    ConfigError,
    CorruptInput,
    MemoryLocked,
    NotFound,
    OmnimemError,
    StorageError,
)
from omnimem.server.pool import MemoryPool
from omnimem.server.routes import ServerState, build_router

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
    root: Path, *, api_key: str | None = None, allowed_root: Path | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, generator: Any = None, encoder: Any = None,
    config: Any = None,
) -> Any:  # fmt: skip
    """The FastAPI app serving the memories under ``root``.

    ``api_key``: required on every ``/v1`` request (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``)
    when set. ``allowed_root``: the folder ingest-by-path may read (None disables it).
    ``max_request_bytes``: larger requests get 413. ``generator``: an ``omnimem.vlm`` Generator that
    answers ``/ask`` and ``/chat`` (None: they return the evidence with ``answer: null``).
    ``encoder`` / ``config``: the Encoder and MemoryConfig used to open and create memories -- for
    tests (a ``HashEncoder``) and custom setups; by default each memory's saved config decides.
    """
    from fastapi import FastAPI

    if api_key is not None and (not isinstance(api_key, str) or len(api_key) < 8):
        raise ConfigError(
            "api_key must be a string of at least 8 characters; generate one with secrets.token_urlsafe()"
        )
    if isinstance(max_request_bytes, bool) or not isinstance(max_request_bytes, int) or max_request_bytes <= 0:
        raise ConfigError(f"max_request_bytes must be a positive int, got {max_request_bytes!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    pool = MemoryPool(root, encoder=encoder, config=config)
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
    app.include_router(build_router(state, _auth_dependencies(api_key)))
    app.add_exception_handler(OmnimemError, _library_error)
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


def _auth_dependencies(api_key: str | None) -> list[Any]:
    """The dependency that checks the key (Bearer or X-API-Key), or none when no key is configured."""
    if api_key is None:
        return []
    from fastapi import Depends, HTTPException, Security
    from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

    header = APIKeyHeader(name="X-API-Key", auto_error=False)
    bearer = HTTPBearer(auto_error=False)

    def check_key(
        x_api_key: Annotated[str | None, Security(header)] = None,
        auth: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
    ) -> None:
        given = x_api_key or (auth.credentials if auth is not None else None)
        if not given or not secrets.compare_digest(given.encode(), api_key.encode()):
            raise HTTPException(
                401, "missing or wrong API key; send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip

    return [Depends(check_key)]


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
    root: Path, host: str = "127.0.0.1", port: int = 8000, *, api_key: str | None = None,
    allowed_root: Path | None = None, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    generator: Any = None, encoder: Any = None, config: Any = None, log_level: str = "info",
) -> None:  # fmt: skip
    """Run the server with uvicorn until interrupted.

    Refuses (:class:`ConfigError`) to bind anything but a loopback address without an ``api_key``.
    """
    if not is_loopback(host) and not api_key:
        raise ConfigError(
            f"refusing to serve on {host!r} without an API key: anyone who can reach it could read and"
            " delete memories. Pass api_key=... (omnimem serve --api-key), or bind 127.0.0.1"
        )
    try:
        import uvicorn
    except ImportError as e:
        from omnimem.errors import missing_extra

        raise missing_extra("uvicorn", "server") from e
    app = create_app(
        root, api_key=api_key, allowed_root=allowed_root, max_request_bytes=max_request_bytes,
        generator=generator, encoder=encoder, config=config,
    )  # fmt: skip
    log.info("serving %s on http://%s:%d", root, host, port)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
