"""Hostile input over REST is a 4xx naming the problem, never a 500, and leaves the memory intact."""

from __future__ import annotations

import os

import httpx
import pytest

TEXT = "Alice moved to Paris in 2021"


@pytest.fixture
def base(client: httpx.Client) -> str:
    """A memory with one item."""
    assert client.post("/v1/memories", json={"name": "m1"}).status_code == 201
    assert client.post("/v1/memories/m1/items", json={"text": TEXT}).status_code == 201
    return "/v1/memories/m1"


def _intact(client: httpx.Client, base: str) -> None:
    assert client.get(base).json()["items"] == 1
    hits = client.get(f"{base}/search", params={"q": "Paris"}).json()["hits"]
    assert [h["text"] for h in hits] == [TEXT]


def _raw(client: httpx.Client, url: str, body: str) -> httpx.Response:
    """POST ``body`` as it is: JSON escapes (a lone surrogate) and nesting no JSON encoder would write."""
    return client.post(url, content=body.encode(), headers={"content-type": "application/json"})


def test_symlink_loops_in_ingest_path(client, server, base):
    loops = server.inbox / "loops"
    loops.mkdir()
    (loops / "note.txt").write_text("Bob keeps bees.")
    os.symlink("b", loops / "a")
    os.symlink("a", loops / "b")
    os.symlink("self", server.inbox / "self")
    for path in ("loops", "loops/a", "self", str(server.inbox / "self")):
        refused = client.post(f"{base}/ingest/path", json={"path": path})
        assert refused.status_code == 400, (path, refused.text)
        assert "symlink loop" in refused.json()["detail"] and refused.json()["error"] == "ConfigError"
    _intact(client, base)


def test_a_4000_character_path(client, base):
    for path in ("x" * 4_000, "d/" * 2_000):  # one name too long; a deep path that does not exist
        refused = client.post(f"{base}/ingest/path", json={"path": path})
        assert refused.status_code in (400, 404), refused.text
        detail = refused.json()["detail"]
        assert "4000 characters" in detail and len(detail) < 400  # the path is cut in the message
    assert "too long" in client.post(f"{base}/ingest/path", json={"path": "x" * 4_000}).json()["detail"]
    _intact(client, base)


@pytest.mark.parametrize("field", ["metadata", "turns"])
def test_metadata_nested_500_deep(client, base, field):
    deep: dict = {"leaf": 1}
    for _ in range(500):
        deep = {"a": deep}
    body = (
        {"text": "deep", "metadata": deep} if field == "metadata" else {"turns": [{"text": "deep", "metadata": deep}]}
    )
    refused = client.post(f"{base}/items", json=body)
    assert refused.status_code in (400, 422), refused.text
    assert "nested more than" in refused.text and "flatten" in refused.text
    _intact(client, base)


def test_json_nested_past_the_parser(client, base):
    body = '{"text": "deep", "metadata": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}"
    refused = _raw(client, f"{base}/items", body)
    assert refused.status_code in (400, 422), refused.text[:300]
    _intact(client, base)


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("items", '{"text": "bad \\ud800 text"}'),
        ("items", '{"text": "ok", "metadata": {"note": "\\udfff"}}'),
        ("items", '{"text": "ok", "metadata": {"k\\ud800": 1}}'),
        ("items", '{"turns": [{"speaker": "A", "text": "bad \\ud800"}]}'),
        ("items", '{"text": "ok", "speaker": "\\ud800"}'),
        ("chat", '{"question": "bad \\ud800 question"}'),
        ("ask", '{"question": "bad \\ud800 question"}'),
        ("context", '{"query": "bad \\ud800 query"}'),
    ],
)
def test_a_lone_surrogate(client, base, route, body):
    refused = _raw(client, f"{base}/{route}", body)
    assert refused.status_code in (400, 422), refused.text
    assert "lone surrogate" in refused.text and "UTF-8" in refused.text
    _intact(client, base)
