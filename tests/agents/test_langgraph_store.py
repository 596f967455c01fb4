"""OmnimemStore against LangGraph's store semantics, and inside a compiled StateGraph."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("langgraph")

from langgraph.store.base import BaseStore, Item, SearchItem  # noqa: E402

from omnimem.agents.langgraph_store import OmnimemStore, item_id, value_text  # noqa: E402


@pytest.fixture
def store(bare_mem):
    return OmnimemStore(bare_mem)


def test_put_get_overwrite_delete(store, bare_mem):
    ns = ("users", "alice")
    store.put(ns, "prefs", {"text": "Alice likes green tea", "level": 3})
    got = store.get(ns, "prefs")
    assert isinstance(got, Item) and got.value == {"text": "Alice likes green tea", "level": 3}
    assert got.namespace == ns and got.key == "prefs"
    assert store.get(ns, "other") is None and store.get(("users", "bob"), "prefs") is None

    store.put(ns, "prefs", {"text": "Alice switched to coffee"})
    again = store.get(ns, "prefs")
    assert again.value == {"text": "Alice switched to coffee"}
    assert again.created_at == got.created_at and again.updated_at >= got.updated_at
    assert len(bare_mem) == 1 and bare_mem.get(item_id(ns, "prefs")).text == "Alice switched to coffee"

    store.delete(ns, "prefs")
    assert store.get(ns, "prefs") is None and len(bare_mem) == 0
    store.delete(ns, "prefs")  # deleting what is gone is a no-op, as in InMemoryStore


def test_search_by_query_prefix_and_filter(store, bare_mem):
    store.put(("users", "alice"), "m1", {"text": "Alice moved to Paris", "kind": "fact", "n": 1})
    store.put(("users", "alice"), "m2", {"text": "Alice plays the violin", "kind": "hobby", "n": 5})
    store.put(("users", "bob"), "m1", {"text": "Bob moved to Berlin", "kind": "fact", "n": 2})
    bare_mem.add("An unrelated note about Paris that LangGraph never wrote")

    hits = store.search(("users",), query="moved to Paris")
    assert isinstance(hits[0], SearchItem) and hits[0].key == "m1" and hits[0].namespace == ("users", "alice")
    assert hits[0].score is not None
    assert all(h.namespace[0] == "users" for h in hits) and len(hits) == 3  # the raw note is not a store item

    assert [h.namespace for h in store.search(("users", "bob"), query="moved")] == [("users", "bob")]
    assert [h.key for h in store.search(("users",), filter={"kind": "hobby"})] == ["m2"]
    assert {h.value["n"] for h in store.search(("users",), filter={"n": {"$gte": 2}})} == {2, 5}
    assert len(store.search(("users",), limit=2)) == 2
    assert len(store.search(("users",), limit=2, offset=2)) == 1
    newest = store.search(("users",))[0]
    assert (newest.namespace, newest.key) == (("users", "bob"), "m1")  # listing: most recent first


def test_a_namespace_keeps_its_recall_as_other_namespaces_grow(bare_mem):
    store = OmnimemStore(bare_mem, search_pool=10)
    store.put(("users", "alice"), "tea", {"text": "Alice drinks green tea every morning"})
    store.put(("users", "Alice2"), "x", {"text": "green tea"})  # a prefix of another name is another namespace
    for n in range(300):  # another tenant's memories, all closer to the query than Alice's one item
        store.put(("users", "bob"), f"m{n}", {"text": f"green tea note number {n} green tea"})
    hits = store.search(("users", "alice"), query="green tea", limit=5)
    assert [(h.namespace, h.key) for h in hits] == [(("users", "alice"), "tea")]
    assert store.search(("users", "ALICE"), query="green tea") == []  # namespaces are case-sensitive
    assert store.search(("nobody",), query="green tea") == []


def test_list_namespaces(store):
    for ns in [("a", "b", "c"), ("a", "b", "d"), ("a", "x"), ("z",)]:
        store.put(ns, "k", {"text": "t " + "/".join(ns)})
    assert store.list_namespaces() == [("a", "b", "c"), ("a", "b", "d"), ("a", "x"), ("z",)]
    assert store.list_namespaces(prefix=("a", "b")) == [("a", "b", "c"), ("a", "b", "d")]
    assert store.list_namespaces(suffix=("d",)) == [("a", "b", "d")]
    assert store.list_namespaces(prefix=("a", "*", "c")) == [("a", "b", "c")]
    assert store.list_namespaces(max_depth=2) == [("a", "b"), ("a", "x"), ("z",)]
    assert store.list_namespaces(limit=1, offset=1) == [("a", "b", "d")]


def test_async_twins(store):
    async def go():
        await store.aput(("ns",), "k", {"content": "the async path works"})
        got = await store.aget(("ns",), "k")
        found = await store.asearch(("ns",), query="async path")
        spaces = await store.alist_namespaces()
        await store.adelete(("ns",), "k")
        return got, found, spaces, await store.aget(("ns",), "k")

    got, found, spaces, gone = asyncio.run(go())
    assert got.value == {"content": "the async path works"} and found[0].key == "k"
    assert spaces == [("ns",)] and gone is None


def test_value_text_and_index_fields():
    assert value_text({"text": "hello", "other": "x"}) == "hello"
    assert value_text({"a": "one", "b": 2}) == "one"
    assert value_text({"n": 1}) == '{"n": 1}'
    assert value_text({"doc": {"title": "T", "body": "B"}}, ["doc.body"]) == "B"


def test_a_state_graph_reads_and_writes_through_the_store(store):
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        user: str
        message: str
        recalled: list[str]

    def remember_and_recall(state: State, *, store: BaseStore) -> dict:
        ns = ("memories", state["user"])
        recalled = [h.value["text"] for h in store.search(ns, query=state["message"], limit=3)]
        store.put(ns, f"m{len(store.search(ns, limit=100))}", {"text": state["message"]})
        return {"recalled": recalled}

    builder = StateGraph(State)
    builder.add_node("remember_and_recall", remember_and_recall)
    builder.add_edge(START, "remember_and_recall")
    builder.add_edge("remember_and_recall", END)
    graph = builder.compile(store=store)  # the one line an existing agent changes

    graph.invoke({"user": "alice", "message": "I adopted a cat named Miso", "recalled": []})
    graph.invoke({"user": "bob", "message": "My cat is called Pixel", "recalled": []})
    out = graph.invoke({"user": "alice", "message": "What is my cat called?", "recalled": []})
    assert out["recalled"] == ["I adopted a cat named Miso"]  # bob's cat stays in bob's namespace
    assert store.list_namespaces(prefix=("memories",)) == [("memories", "alice"), ("memories", "bob")]
