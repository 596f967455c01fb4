"""Two real ``omnimem serve`` processes on one PostgreSQL database serve the same memories: what one
writes the other reads at once, an add posted to both is stored once, a forget through one is gone
from the other, and both list the same memories.

The memories are created in this process with the hash encoder and no graph extraction, so their
saved configs make both servers open them with the hash encoder (``omnimem serve`` itself has no
encoder option; a memory created through it would load MiniLM).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from serverkit import fast_config, free_port

pytest.importorskip("psycopg")

httpx = pytest.importorskip("httpx")

MEMORIES = ("shared", "other")  # created before the servers start, in this order


def with_params(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query + list(params.items())), ""))


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@contextmanager
def serve_process(url: str, log: Path) -> Iterator[str]:
    """``omnimem serve URL`` as an OS process on a free loopback port; its base URL once /healthz answers."""
    port = free_port()
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "omnimem.cli", "serve", url, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"omnimem serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"omnimem serve did not answer within 120 s: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Pair:
    a: httpx.Client  # a client of server A
    b: httpx.Client  # a client of server B, another process on the same database


@pytest.fixture(scope="module")
def database(pg_server, tmp_path_factory) -> Iterator[str]:
    """A fresh database (with pgvector) on the session's server, its URL with ``files=`` a local folder."""
    import psycopg

    name = f"two_servers_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(pg_server, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    yield with_params(url, files=str(tmp_path_factory.mktemp("files")))
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def pair(database, tmp_path_factory) -> Iterator[Pair]:
    from omnimem import Memory
    from omnimem.encoders.hashing import HashEncoder

    for name in MEMORIES:
        with Memory.open(with_params(database, schema=name), encoder=HashEncoder(64), config=fast_config()):
            pass
    logs = tmp_path_factory.mktemp("logs")
    with ExitStack() as stack:
        a = stack.enter_context(serve_process(database, logs / "a.log"))
        b = stack.enter_context(serve_process(database, logs / "b.log"))
        clients = [stack.enter_context(httpx.Client(base_url=base, timeout=60)) for base in (a, b)]
        yield Pair(*clients)


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def search(client, q: str, k: int = 10) -> list[str]:
    return [h["id"] for h in ok(client.get("/v1/memories/shared/search", params={"q": q, "k": k}))["hits"]]


def count(client, name: str = "shared") -> int:
    return ok(client.get(f"/v1/memories/{name}"))["items"]


def test_the_servers_are_two_processes_on_one_database(pair):
    assert pair.a.base_url != pair.b.base_url
    for client in (pair.a, pair.b):
        stats = ok(client.get("/v1/memories/shared"))
        assert stats["encoder"] == "hash" and stats["dim"] == 64  # the saved config decided


def test_an_add_through_one_server_is_found_through_the_other_at_once(pair):
    search(pair.b, "lighthouse")  # B has the memory open before A writes: no reopen hides staleness
    before = count(pair.b)
    text = "Marisol the lighthouse keeper paints orcas on driftwood every Sunday."
    (item,) = ok(pair.a.post("/v1/memories/shared/items", json={"text": text, "session": "one"}), 201)["ids"]
    assert item in search(pair.b, "lighthouse keeper Marisol paints orcas")  # no restart, no delay
    assert ok(pair.b.get(f"/v1/memories/shared/items/{item}"))["text"] == text
    assert count(pair.b) == count(pair.a) == before + 1


def test_the_same_conversation_posted_to_both_servers_at_once_is_stored_once(pair):
    before = count(pair.a)
    turns = [
        {"speaker": "Ana" if n % 2 else "Ben", "text": f"Turn {n} about the glacier hike {n % 5}."} for n in range(40)
    ]
    turns += [{"speaker": "Ana", "text": "Yes."}, {"speaker": "Ana", "text": "Yes."}]  # one speaker, twice: two turns
    clients = [pair.a, pair.b, pair.a, pair.b]  # two requests on each server, all at once
    sessions = ["glacier-1", "glacier-2", "glacier-3"]  # a round each: three chances to collide
    start, got, failures = threading.Barrier(len(clients)), {}, []

    def post(n: int) -> None:
        for session in sessions:
            start.wait()
            try:
                body = {"turns": turns, "session": session}
                got[session, n] = ok(clients[n].post("/v1/memories/shared/items", json=body), 201)["ids"]
            except BaseException as e:  # reported below: an assert in a thread would be lost
                failures.append(e)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    for session in sessions:  # every request got the same ids: 42 turns, the "Yes." twice
        ids = got[session, 0]
        assert len(set(ids)) == len(turns) and all(got[session, n] == ids for n in range(len(clients)))
    assert count(pair.a) == count(pair.b) == before + len(sessions) * len(turns)
    prefix = ok(pair.b.post("/v1/memories/shared/items", json={"turns": turns[:10], "session": sessions[0]}), 201)
    assert prefix["ids"] == got[sessions[0], 0][:10]  # the conversation so far again: a no-op
    assert count(pair.a) == before + len(sessions) * len(turns)


def test_a_forget_through_one_server_is_gone_from_the_others_search(pair):
    text = "The violet submarine docked at Quillhaven harbour at dawn."
    (item,) = ok(pair.a.post("/v1/memories/shared/items", json={"text": text}), 201)["ids"]
    query = "violet submarine Quillhaven harbour"
    assert search(pair.a, query)[0] == item and search(pair.b, query)[0] == item
    before = count(pair.a)
    assert ok(pair.b.delete(f"/v1/memories/shared/items/{item}"))["items"] == [item]
    assert item not in search(pair.a, query, k=100)  # at once, in the other process
    assert pair.a.get(f"/v1/memories/shared/items/{item}").status_code == 404
    assert count(pair.a) == count(pair.b) == before - 1
    assert pair.a.delete(f"/v1/memories/shared/items/{item}").status_code == 404  # nothing left to forget


def test_both_servers_list_the_same_memories(pair):
    ok(pair.a.post("/v1/memories/other/items", json={"text": "A note in the other memory."}), 201)
    lists = [ok(client.get("/v1/memories"))["memories"] for client in (pair.a, pair.b)]
    assert lists[0] == lists[1]
    assert sorted(m["name"] for m in lists[0]) == sorted(MEMORIES)
    taken = pair.b.post("/v1/memories", json={"name": "shared"})  # made elsewhere: B knows it exists
    assert taken.status_code == 400 and "already exists" in taken.json()["detail"]
