"""An existing LangGraph agent gets omnimem as its long-term store by changing one line.

    .venv/bin/python examples/07_langgraph_store.py [MEMORY_DIR]

``builder.compile(store=OmnimemStore(mem))``: the node below reads and writes through LangGraph's own
``BaseStore`` API; omnimem keeps the values (searchable by meaning, per namespace) on disk.
"""

import sys
import tempfile
from pathlib import Path
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore

import omnimem
from omnimem.agents.langgraph_store import OmnimemStore


class State(TypedDict):
    user: str
    message: str
    recalled: list[str]


def remember_and_recall(state: State, *, store: BaseStore) -> dict:
    namespace = ("memories", state["user"])
    recalled = [hit.value["text"] for hit in store.search(namespace, query=state["message"], limit=2)]
    store.put(namespace, f"m{len(store.search(namespace, limit=1000))}", {"text": state["message"]})
    return {"recalled": recalled}


path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "langgraph-store"
with omnimem.Memory.open(path) as mem:
    builder = StateGraph(State)
    builder.add_node("remember_and_recall", remember_and_recall)
    builder.add_edge(START, "remember_and_recall")
    builder.add_edge("remember_and_recall", END)
    graph = builder.compile(store=OmnimemStore(mem))  # the one line

    for user, message in [
        ("alice", "I adopted a cat named Miso"),
        ("bob", "My cat is called Pixel"),
        ("alice", "I'm learning to play the cello"),
    ]:
        graph.invoke({"user": user, "message": message, "recalled": []})
    out = graph.invoke({"user": "alice", "message": "What is my cat called?", "recalled": []})
    print(f"alice asks 'What is my cat called?' -> recalled: {out['recalled']}")
    print(f"{len(mem)} values stored in {path}")
