"""Scoped API keys: the key store, the scope every /v1 route enforces, ``serve`` and ``omnimem keys``."""

from __future__ import annotations

import json
import os
import stat

import httpx
import pytest
from serverkit import API_KEY, live_server, make_app

from omnimem.cli import main
from omnimem.errors import ConfigError, CorruptInput, NotFound
from omnimem.server.keys import ADMIN, READ, READ_WRITE, KeyStore, Scope, keys_path


# -- the store ------------------------------------------------------------------------------------
def test_a_key_is_stored_hashed_and_verifies_to_its_scope(tmp_path):
    store = KeyStore(tmp_path)
    plain = store.create("alice-phone", memories=["alice"], rights=READ)
    assert store.verify(plain) == Scope("alice-phone", ("alice",), READ)
    on_disk = keys_path(tmp_path).read_text()
    secret = plain.split("_", 2)[2]
    assert plain not in on_disk and secret not in on_disk
    (record,) = json.loads(on_disk)["keys"]
    assert record["kdf"]["name"] == "scrypt" and len(bytes.fromhex(record["salt"])) == 16
    assert stat.S_IMODE(os.stat(keys_path(tmp_path)).st_mode) == 0o600
    assert store.verify(plain[:-1] + ("A" if plain[-1] != "A" else "B")) is None  # one character off
    assert store.verify("omk_000000000000_" + secret) is None  # unknown id
    assert store.verify("not a key") is None and store.verify("") is None


def test_same_memories_two_keys_have_two_salts(tmp_path):
    store = KeyStore(tmp_path)
    store.create("a", memories=["m"])
    store.create("b", memories=["m"])
    salts = {r["salt"] for r in json.loads(keys_path(tmp_path).read_text())["keys"]}
    assert len(salts) == 2


def test_list_and_revoke(tmp_path):
    store = KeyStore(tmp_path)
    plain = store.create("ops", memories=["*"], rights=READ_WRITE)
    store.create("bob", memories=["bob", "shared"])
    listed = store.list()
    assert [(k.name, k.memories, k.rights) for k in listed] == [
        ("ops", ("*",), READ_WRITE),
        ("bob", ("bob", "shared"), READ),
    ]
    assert not hasattr(listed[0], "hash")
    other_process = KeyStore(tmp_path)  # a CLI revoking while a server runs
    other_process.revoke("ops")
    assert store.verify(plain) is None and [k.name for k in store.list()] == ["bob"]
    with pytest.raises(NotFound, match="no key named 'ops'.*bob"):
        store.revoke("ops")


@pytest.mark.parametrize(
    ("name", "memories", "rights", "message"),
    [
        ("bad name!", ["m"], READ, "invalid key name"),
        ("k", [], READ, "at least one memory"),
        ("k", "alice", READ, "list of memory names"),
        ("k", ["../etc"], READ, "invalid memory name"),
        ("k", ["m"], "admin", "rights must be"),
    ],
)
def test_create_rejects_bad_arguments(tmp_path, name, memories, rights, message):
    with pytest.raises(ConfigError, match=message):
        KeyStore(tmp_path).create(name, memories=memories, rights=rights)
    assert not keys_path(tmp_path).exists() or KeyStore(tmp_path).list() == []


def test_duplicate_name_and_corrupt_file(tmp_path):
    store = KeyStore(tmp_path)
    store.create("k", memories=["m"])
    with pytest.raises(ConfigError, match="exists"):
        store.create("k", memories=["m"])
    keys_path(tmp_path).write_text("{not json")
    with pytest.raises(CorruptInput, match="keys file"):
        KeyStore(tmp_path).list()
    served = keys_path(tmp_path / "memories")
    served.parent.mkdir(parents=True)
    served.write_text(json.dumps({"version": 1, "keys": [{"name": "k"}]}))
    with pytest.raises(CorruptInput, match="malformed key record"):
        make_app(tmp_path)  # a server does not start on a keys file it cannot read


def test_scope_rules():
    alice_ro = Scope("k", ("alice",), READ)
    assert alice_ro.can_read("alice") and not alice_ro.can_write("alice") and not alice_ro.can_read("bob")
    assert ADMIN.can_write("anything") and Scope("k", ("*",), READ).can_read("x")
    with pytest.raises(ConfigError, match="rights"):
        Scope("k", ("a",), "write")


# -- the server -----------------------------------------------------------------------------------
def _headers(key: str, bearer: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if bearer else {"X-API-Key": key}


@pytest.fixture
def scoped(tmp_path):
    """A live server with an admin key, memories alice and bob (one item each) and three scoped keys."""
    store = KeyStore(tmp_path / "memories")
    keys = {
        "alice_rw": store.create("alice-rw", memories=["alice"], rights=READ_WRITE),
        "alice_ro": store.create("alice-ro", memories=["alice"], rights=READ),
        "new_rw": store.create("new-rw", memories=["fresh"], rights=READ_WRITE),
    }
    with live_server(tmp_path, api_key=API_KEY) as live, httpx.Client(base_url=live.url, timeout=30) as c:
        admin = _headers(API_KEY)
        for name in ("alice", "bob"):
            assert c.post("/v1/memories", json={"name": name}, headers=admin).status_code == 201
            c.post(f"/v1/memories/{name}/items", json={"text": f"{name} likes tea"}, headers=admin)
        yield c, keys, store


def test_a_key_sees_only_its_memories(scoped):
    c, keys, _ = scoped
    alice = _headers(keys["alice_rw"], bearer=True)
    assert [m["name"] for m in c.get("/v1/memories", headers=alice).json()["memories"]] == ["alice"]
    assert c.get("/v1/memories/alice/search", params={"q": "tea"}, headers=alice).status_code == 200
    hidden = c.get("/v1/memories/bob/search", params={"q": "tea"}, headers=alice)
    absent = c.get("/v1/memories/nobody/search", params={"q": "tea"}, headers=alice)
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json()["detail"].replace("bob", "X") == absent.json()["detail"].replace("nobody", "X")
    assert c.post("/v1/memories/bob/items", json={"text": "x"}, headers=alice).status_code == 404
    assert len(c.get("/v1/memories", headers=_headers(API_KEY)).json()["memories"]) == 2  # the admin key


def test_a_read_only_key_cannot_write(scoped):
    c, keys, _ = scoped
    ro = _headers(keys["alice_ro"])
    assert c.get("/v1/memories/alice", headers=ro).json()["items"] == 1
    assert c.post("/v1/memories/alice/ask", json={"question": "what does alice like?"}, headers=ro).status_code == 200
    refused = c.post("/v1/memories/alice/items", json={"text": "ro was here"}, headers=ro)
    assert refused.status_code == 403 and "read-write" in refused.json()["detail"]
    assert refused.json()["error"] == "Forbidden"
    assert c.post("/v1/memories/alice/chat", json={"question": "hi"}, headers=ro).status_code == 403
    assert c.get("/v1/memories/alice", headers=ro).json()["items"] == 1


def test_creating_needs_write_rights_on_that_name(scoped):
    c, keys, _ = scoped
    assert c.post("/v1/memories", json={"name": "fresh"}, headers=_headers(keys["alice_rw"])).status_code == 403
    taken = c.post("/v1/memories", json={"name": "bob"}, headers=_headers(keys["alice_rw"]))
    assert taken.status_code == 403 and "exists" not in taken.json()["detail"]  # no existence leak
    assert c.post("/v1/memories", json={"name": "alice"}, headers=_headers(keys["alice_ro"])).status_code == 403
    assert c.post("/v1/memories", json={"name": "fresh"}, headers=_headers(keys["new_rw"])).status_code == 201


def test_revoked_missing_and_url_keys_are_refused(scoped):
    c, keys, store = scoped
    alice = _headers(keys["alice_rw"])
    assert c.get("/v1/memories", headers=alice).status_code == 200
    store.revoke("alice-rw")
    assert c.get("/v1/memories", headers=alice).status_code == 401
    assert c.get("/v1/memories").status_code == 401
    for param in ("api_key", "key", "token"):  # a key in the URL is never read
        assert c.get("/v1/memories", params={param: keys["alice_ro"]}).status_code == 401


def test_every_memory_route_checks_the_scope(tmp_path):
    """Each route naming a memory: 404 for a key that cannot see it; 403 on a write for a read-only key."""
    from fastapi.testclient import TestClient

    from omnimem.server.routes import build_router

    store = KeyStore(tmp_path / "memories")
    ro, other = store.create("ro", memories=["m1"]), store.create("other", memories=["zz"], rights=READ_WRITE)
    app = make_app(tmp_path, api_key=API_KEY)
    routes = [r for r in build_router(app.state.omnimem, app.state.auth.dependency()).routes if "{name}" in r.path]
    served = {
        (method.upper(), path) for path, ops in app.openapi()["paths"].items() if "{name}" in path for method in ops
    }
    assert {(method, r.path) for r in routes for method in r.methods} == served and len(served) >= 12
    writes = set()
    for route in routes:
        (check,) = [d.call for d in route.dependant.dependencies if hasattr(d.call, "write")]
        if check.write:
            writes |= {(method, route.path) for method in route.methods}
    assert writes == {
        ("POST", "/v1/memories/{name}/items"), ("DELETE", "/v1/memories/{name}/items/{item_id}"),
        ("POST", "/v1/memories/{name}/ingest"), ("POST", "/v1/memories/{name}/ingest/path"),
        ("POST", "/v1/memories/{name}/chat"),
    }  # fmt: skip
    with TestClient(app) as c:
        c.post("/v1/memories", json={"name": "m1"}, headers=_headers(API_KEY))
        for route in routes:
            path = route.path.replace("{name}", "m1").replace("{item_id}", "x")
            for method in route.methods:
                hidden = c.request(method, path, headers=_headers(other), json={})
                assert hidden.status_code == 404, (method, path, hidden.text)
                if (method, route.path) in writes:
                    assert c.request(method, path, headers=_headers(ro), json={}).status_code == 403, (method, path)


def test_serve_counts_scoped_keys_and_stays_closed(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from omnimem.server import app as server_app

    root = tmp_path / "memories"
    with pytest.raises(ConfigError, match="keys add"):
        server_app.serve(root, "0.0.0.0", 0)
    store = KeyStore(root)
    plain = store.create("k", memories=["*"], rights=READ_WRITE)
    started = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: started.append(app))
    server_app.serve(root, "0.0.0.0", 0)
    store.revoke("k")
    with TestClient(started[0]) as c:  # every key revoked: a public server answers nobody
        assert c.get("/v1/memories").status_code == 401
        assert c.get("/v1/memories", headers=_headers(plain)).status_code == 401


def test_a_loopback_server_closes_once_a_key_is_added(tmp_path):
    from fastapi.testclient import TestClient

    app = make_app(tmp_path)
    with TestClient(app) as c:
        assert c.get("/v1/memories").status_code == 200
        plain = KeyStore(tmp_path / "memories").create("k", memories=["*"])
        assert c.get("/v1/memories").status_code == 401
        assert c.get("/v1/memories", headers=_headers(plain)).status_code == 200
        os.remove(keys_path(tmp_path / "memories"))
        assert c.get("/v1/memories").status_code == 401  # latched: deleting the file does not open it up


# -- the CLI --------------------------------------------------------------------------------------
def test_keys_cli(tmp_path, capsys):
    root = str(tmp_path)
    assert main(["keys", "add", root, "laptop", "--memory", "alice", "--memory", "bob", "--read-only"]) == 0
    out, err = capsys.readouterr()
    plain = out.strip()
    assert KeyStore(tmp_path).verify(plain) == Scope("laptop", ("alice", "bob"), READ) and "only now" in err
    assert main(["keys", "add", root, "ops", "--memory", "*"]) == 0
    capsys.readouterr()
    assert main(["keys", "list", root, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(k["name"], k["rights"]) for k in listed] == [("laptop", READ), ("ops", READ_WRITE)]
    assert main(["keys", "list", root]) == 0
    table = capsys.readouterr().out
    assert "laptop" in table and "alice, bob" in table and plain not in table
    assert main(["keys", "revoke", root, "laptop"]) == 0
    assert KeyStore(tmp_path).verify(plain) is None
    capsys.readouterr()
    assert main(["keys", "revoke", root, "laptop"]) == 2
    assert "no key named 'laptop'" in capsys.readouterr().err
    assert main(["keys", "add", root, "x", "--memory", "../etc"]) == 2
