"""The REST server over a real uvicorn on 127.0.0.1, driven by httpx; and fuzzed from its own spec."""

from __future__ import annotations

import os
import time

import httpx
import pytest
from serverkit import API_KEY, MAX_BYTES, make_app

from omnimem.errors import ConfigError


def _memory(client: httpx.Client, name: str = "m1") -> str:
    assert client.post("/v1/memories", json={"name": name}).status_code == 201
    return f"/v1/memories/{name}"


def test_create_list_and_stats(client):
    base = _memory(client)
    assert client.post("/v1/memories", json={"name": "m1"}).status_code == 400  # taken
    assert client.get("/v1/memories").json() == {"memories": [{"name": "m1", "items": 0}]}
    stats = client.get(base).json()
    assert stats["items"] == 0 and stats["dim"] == 64


def test_add_search_get_and_forget(client):
    base = _memory(client)
    (alice,) = client.post(f"{base}/items", json={"text": "Alice moved to Paris in 2021", "speaker": "Bob"}).json()[
        "ids"
    ]
    turns = [{"speaker": "Carol", "text": "I play the violin"}, {"speaker": "Dan", "text": "I prefer the cello"}]
    ids = client.post(f"{base}/items", json={"turns": turns, "session": "s1"}).json()["ids"]
    assert len(ids) == 2
    later = client.post(f"{base}/items", json={"turns": turns[:1], "session": "s1", "start": 2}).json()["ids"]
    assert later[0] not in ids  # the same words at a later place in the conversation: a new turn
    assert client.post(f"{base}/items", json={"turns": turns[:1], "session": "s1"}).json()["ids"] == ids[:1]

    hits = client.get(f"{base}/search", params={"q": "Paris", "k": 3}).json()["hits"]
    assert hits[0]["id"] == alice and hits[0]["speaker"] == "Bob"
    assert client.get(f"{base}/items/{alice}").json()["text"] == "Alice moved to Paris in 2021"

    forgotten = client.delete(f"{base}/items/{alice}").json()
    assert forgotten["items"] == [alice]
    assert client.get(f"{base}/items/{alice}").status_code == 404
    assert client.delete(f"{base}/items/{alice}").status_code == 404


def test_bad_input_is_a_4xx_with_a_message(client):
    base = _memory(client)
    both = client.post(f"{base}/items", json={"text": "x", "turns": [{"text": "y"}]})
    assert both.status_code == 400 and "exactly one" in both.json()["detail"]
    assert client.post(f"{base}/items", json={"text": "   "}).status_code == 400  # ConfigError from the library
    assert client.get(f"{base}/search", params={"q": "  "}).status_code == 400
    assert client.get(f"{base}/search", params={"q": "x", "k": 0}).status_code == 422
    assert client.get("/v1/memories/nope/search", params={"q": "x"}).status_code == 404
    assert client.get("/v1/memories/..%2Fetc/search", params={"q": "x"}).status_code in (404, 422)
    assert client.post("/v1/memories", json={"name": "../evil"}).status_code == 422
    assert client.get(f"{base}/facts", params={"entity": "Alice", "as_of": "not a date"}).status_code == 400


def test_context_ask_and_chat_without_a_generator(client):
    base = _memory(client)
    client.post(f"{base}/items", json={"text": "Alice moved to Paris in 2021"})
    ctx = client.post(f"{base}/context", json={"query": "Where does Alice live?", "budget_tokens": 64}).json()
    assert ctx["evidence"] and ctx["prompt"].startswith("[E1]")
    ask = client.post(f"{base}/ask", json={"question": "Where does Alice live?"}).json()
    assert ask["answer"] is None and ask["evidence"][0]["text"] == "Alice moved to Paris in 2021"
    chat = client.post(f"{base}/chat", json={"question": "Where is Alice now?", "session": "c1"}).json()
    assert len(chat["ids"]) == 1  # the question; no answer to remember
    assert client.get(base).json()["items"] == 2


def test_chat_turns_are_timed(client):
    base = _memory(client)
    first = client.post(f"{base}/chat", json={"question": "Are you there?", "session": "c1"}).json()["ids"]
    again = client.post(f"{base}/chat", json={"question": "Are you there?", "session": "c1"}).json()["ids"]
    assert first != again and client.get(base).json()["items"] == 2  # the same question twice: two turns
    stamped = client.get(f"{base}/items/{again[0]}").json()["event_time"]
    assert stamped and stamped[:4].isdigit()
    given = client.post(
        f"{base}/chat", json={"question": "Hello?", "session": "c1", "timestamp": "2023-03-02T10:00:00"}
    )
    assert client.get(f"{base}/items/{given.json()['ids'][0]}").json()["event_time"].startswith("2023-03-02T10:00")
    bad = client.post(f"{base}/chat", json={"question": "Hello?", "timestamp": "not a date"})
    assert bad.status_code == 400 and client.get(base).json()["items"] == 3


def test_ask_with_a_scripted_generator(tmp_path):
    from fastapi.testclient import TestClient

    from omnimem.vlm.base import Generation

    class Scripted:
        name = "scripted"

        def generate(self, messages, **_):
            assert "Alice moved to Paris" in messages[-1].content
            return Generation("She lives in Paris [E1].", 10, 5, 0.01)

    with TestClient(make_app(tmp_path, generator=Scripted())) as c:
        base = _memory(c)
        (item,) = c.post(f"{base}/items", json={"text": "Alice moved to Paris in 2021"}).json()["ids"]
        out = c.post(f"{base}/chat", json={"question": "Where does Alice live?", "session": "c1"}).json()
    assert out["answer"] == "She lives in Paris [E1]."
    assert [e["item_id"] for e in out["citations"]] == [item]
    assert len(out["ids"]) == 2  # question and answer remembered


def test_graph_queries(client):
    base = _memory(client)
    assert client.get(f"{base}/graph/entities", params={"name": "Alice"}).json() == {"entities": []}
    assert client.get(f"{base}/facts", params={"entity": "Alice"}).json() == {"entity": "Alice", "facts": []}


def test_ingest_upload(client):
    base = _memory(client)
    files = {"file": ("notes.txt", b"Carol plays the violin on Sundays.", "text/plain")}
    report = client.post(f"{base}/ingest", files=files).json()
    assert list(report["added"].values()) == [1] and not report["failed"]
    hits = client.get(f"{base}/search", params={"q": "violin"}).json()["hits"]
    assert "violin" in hits[0]["text"]


def test_ingest_path_confined_to_the_allowed_root(client, server, tmp_path):
    base = _memory(client)
    (server.inbox / "inside.txt").write_text("Dan collects stamps.")
    ok = client.post(f"{base}/ingest/path", json={"path": "inside.txt"})
    assert ok.status_code == 200 and list(ok.json()["added"].values()) == [1]

    secret = tmp_path / "secret.txt"
    secret.write_text("the launch code is 1234")
    (server.inbox / "link.txt").symlink_to(secret)
    (server.inbox / "dir").mkdir()
    (server.inbox / "dir" / "sneaky.txt").symlink_to(secret)
    for path in ("../secret.txt", str(secret), "link.txt", "dir", "/etc/passwd", "a/../../secret.txt"):
        refused = client.post(f"{base}/ingest/path", json={"path": path})
        assert refused.status_code == 400, (path, refused.text)
        assert "outside the allowed root" in refused.json()["detail"]
    assert client.post(f"{base}/ingest/path", json={"path": "missing.txt"}).status_code == 404
    hits = client.get(f"{base}/search", params={"q": "launch code"}).json()["hits"]
    assert [h["text"] for h in hits] == ["Dan collects stamps."]


def test_request_size_limit(client):
    base = _memory(client)
    big = client.post(f"{base}/items", json={"text": "x " * MAX_BYTES})
    assert big.status_code == 413
    upload = client.post(f"{base}/ingest", files={"file": ("big.txt", b"y" * (MAX_BYTES + 1))})
    assert upload.status_code == 413

    def chunks():  # no Content-Length: the limit applies to what is streamed
        for _ in range(MAX_BYTES // 1024 + 2):
            yield b" " * 1024

    streamed = client.post(f"{base}/items", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert client.get(base).json()["items"] == 0


def test_auth_required_when_configured(keyed_server):
    with httpx.Client(base_url=keyed_server.url, timeout=30) as c:
        assert c.get("/v1/memories").status_code == 401
        assert c.get("/v1/memories", headers={"X-API-Key": "wrong-key-123"}).status_code == 401
        assert c.get("/v1/memories", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
        created = c.post("/v1/memories", json={"name": "m1"}, headers={"X-API-Key": API_KEY})
        assert created.status_code == 201
        assert c.get("/healthz").status_code == 200  # the probe stays open


def test_serve_refuses_a_public_address_without_a_key(tmp_path, monkeypatch):
    from omnimem.server import app as server_app

    with pytest.raises(ConfigError, match="API key"):
        server_app.serve(tmp_path, "0.0.0.0", 0)
    with pytest.raises(ConfigError, match="API key"):
        server_app.serve(tmp_path, "192.168.1.10", 0)
    started = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: started.append(kw))
    server_app.serve(tmp_path / "a", "0.0.0.0", 0, api_key=API_KEY)
    server_app.serve(tmp_path / "b", "127.0.0.1", 0)
    server_app.serve(tmp_path / "c", "::1", 0)
    assert [kw["host"] for kw in started] == ["0.0.0.0", "127.0.0.1", "::1"]
    assert server_app.is_loopback("localhost") and not server_app.is_loopback("example.com")


def test_memories_are_closed_on_shutdown(tmp_path):
    from fastapi.testclient import TestClient

    app = make_app(tmp_path)
    with TestClient(app) as c:
        _memory(c)
        pool = app.state.omnimem.pool
        (slot,) = pool._slots.values()
    assert slot.memory._closed and not pool._slots


def test_create_app_validates_its_arguments(tmp_path):
    with pytest.raises(ConfigError, match="api_key"):
        make_app(tmp_path, api_key="short")
    with pytest.raises(ConfigError, match="max_request_bytes"):
        make_app(tmp_path, max_request_bytes=0)


# -- fuzzing from the OpenAPI spec ---------------------------------------------------------------
FUZZ_EXAMPLES = int(os.environ.get("OMNIMEM_FUZZ_EXAMPLES", "25"))  # examples per operation
FUZZ_BUDGET_S = 60.0  # stop starting new operations past this


def test_fuzz_every_operation_without_server_errors(tmp_path):
    """schemathesis cases for every operation of the app's own spec, on the in-process ASGI app."""
    schemathesis = pytest.importorskip("schemathesis")
    from fastapi.testclient import TestClient
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    app = make_app(tmp_path)
    with TestClient(app) as c:  # a few memories the fuzzer may hit by name; other names are 404s
        for name in ("m1", "0", "A"):
            c.post("/v1/memories", json={"name": name})
            c.post(f"/v1/memories/{name}/items", json={"text": "Alice moved to Paris in 2021"})
        (tmp_path / "inbox" / "a.txt").write_text("hello")
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 13
        start = time.monotonic()
        for operation in operations:
            if time.monotonic() - start > FUZZ_BUDGET_S:
                pytest.fail(f"fuzzing ran past its {FUZZ_BUDGET_S} s budget before {operation.label}")

            @given(case=operation.as_strategy())
            @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def run(case):
                case.call_and_validate(checks=[not_a_server_error])

            run()
