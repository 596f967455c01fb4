"""Fixtures of the server tests: live uvicorn servers on 127.0.0.1 and an httpx client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serverkit import API_KEY, LiveServer, live_server  # noqa: E402


@pytest.fixture
def server(tmp_path) -> Iterator[LiveServer]:
    with live_server(tmp_path) as live:
        yield live


@pytest.fixture
def keyed_server(tmp_path) -> Iterator[LiveServer]:
    with live_server(tmp_path, api_key=API_KEY) as live:
        yield live


@pytest.fixture
def client(server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c
