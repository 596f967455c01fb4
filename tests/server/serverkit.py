"""Helpers of the server tests: an app over a temporary root, and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

API_KEY = "test-key-0123456789"
MAX_BYTES = 64 * 1024  # the request-size limit of the live servers


def fast_config():
    """A MemoryConfig without graph extraction on add (no spaCy): the server tests test plumbing."""
    from omnimem.config import GraphConfig, MemoryConfig

    return MemoryConfig(graph=GraphConfig(extract_on_add=False))


def make_app(tmp_path: Path, **options):
    from omnimem.encoders.hashing import HashEncoder
    from omnimem.server.app import create_app

    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    options.setdefault("allowed_root", inbox)
    return create_app(tmp_path / "memories", encoder=HashEncoder(64), config=fast_config(), **options)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str  # http://127.0.0.1:PORT
    root: Path  # the memories' root
    inbox: Path  # the allowed root of ingest-by-path


@contextmanager
def live_server(tmp_path: Path, **options) -> Iterator[LiveServer]:
    """A uvicorn server on a free loopback port in a background thread; stopped on exit."""
    import uvicorn

    app = make_app(tmp_path, max_request_bytes=MAX_BYTES, **options)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the test server did not start within 20 s")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", tmp_path / "memories", tmp_path / "inbox")
    finally:
        server.should_exit = True
        thread.join(timeout=20)
