"""A query's work does not grow with the graph: one text-encoder call (two with the second hop and the
bridge query, or for a name the graph does not know), and graph reads only around the entities it
touches (no read of every entity, root or triplet)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

import omnimem
from omnimem.encoders.hashing import HashEncoder
from omnimem.retrieval.context import GraspConfig
from omnimem.retrieval.grounding import NameIndex

TEXTS = [
    "Steve Hillage recorded the album Green in 1978.",
    "Miquette Giraudy lives with Steve Hillage in London.",
    "The album Red was recorded by King Crimson in London.",
    "Robert Fripp founded King Crimson in 1968.",
]
QUERY = "What did the Hillage band record in London?"  # "Hillage": a name no entity has as key or alias


class CountingEncoder:
    """The hash encoder, recording the texts of every ``encode`` call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    def encode(self, inputs: Sequence[Any], *, modality: str = "text") -> np.ndarray:
        self.calls.append(list(inputs))
        return self.inner.encode(inputs, modality=modality)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def counted(tmp_path):
    encoder = CountingEncoder(HashEncoder(64))
    with omnimem.Memory.open(tmp_path / "m", encoder=encoder) as mem:
        mem.add(TEXTS)
        yield mem, encoder


def test_the_builder_stores_the_names_of_named_entities(counted):
    mem, _ = counted
    hillage = mem.graph.find_entities("Steve Hillage")[0]
    stored = mem.graph.embeddings([hillage.id])
    np.testing.assert_allclose(stored[hillage.id], mem.encoder.encode(["Steve Hillage"])[0], atol=1e-6)
    concepts = [e.id for e in mem.graph.entities() if e.type == "CONCEPT"]
    assert concepts and mem.graph.embeddings(concepts) == {}  # query linking never embeds concepts


def test_a_context_query_makes_at_most_two_encoder_calls(counted):
    mem, encoder = counted
    encoder.calls.clear()
    ctx = mem.context(QUERY, budget_tokens=400)  # a fresh encoder object: an empty NameIndex, as in a new process
    assert ctx.items
    assert len(encoder.calls) == 2, encoder.calls
    # the query; then the bridge query (the question's words the top item lacks, then the names it
    # mentions) and the one name no key or alias links, in one call (the second hop sums stored vectors)
    assert encoder.calls[0] == [QUERY]
    bridge, name = encoder.calls[1]
    assert bridge == "What did the band record Miquette Giraudy Steve Hillage" and name == "Hillage"
    names = NameIndex.cached(encoder)
    hillage = mem.graph.find_entities("Steve Hillage")[0]
    assert hillage.id in names.vectors  # the nearby names were compared: read from the graph, not encoded
    encoder.calls.clear()
    mem.context(QUERY, config=GraspConfig(hop2=False), budget_tokens=400)
    assert encoder.calls == [[QUERY], [bridge, "Hillage"]]  # the same without the second hop
    encoder.calls.clear()
    mem.context(QUERY, config=GraspConfig(hop2_vectors="encode"), budget_tokens=400)
    joint, *rest = encoder.calls[1]  # an encoded joint query joins the same call
    assert len(encoder.calls) == 2 and joint.startswith(QUERY) and rest == [bridge, "Hillage"]
    encoder.calls.clear()
    mem.context(QUERY, config=GraspConfig(hop2=False, bridge=False), budget_tokens=400)
    assert encoder.calls == [[QUERY], ["Hillage"]]  # nor the bridge query without the bridge: only that name
    encoder.calls.clear()
    mem.context(
        "What did Steve Hillage record in London?", config=GraspConfig(hop2=False, bridge=False), budget_tokens=400
    )
    assert len(encoder.calls) == 1  # every name the query has linked by key: the query alone


@pytest.mark.parametrize(
    "config", [GraspConfig(), GraspConfig(ppr=True, hop2_vectors="encode")], ids=["default", "ppr"]
)
def test_a_context_query_reads_no_whole_graph_table(counted, monkeypatch, config):
    mem, _ = counted
    mem.graph.merge(
        mem.graph.find_entities("Steve Hillage")[0].id,
        mem.graph.find_entities("Miquette Giraudy")[0].id,
        reason="a merge, so that roots matter",
    )
    graph = mem.graph

    def refuse(name: str, method: Any) -> Any:
        def bounded(*args: Any, **kwargs: Any) -> Any:
            if not args and not any(v is not None for v in kwargs.values() if not isinstance(v, bool)):
                raise AssertionError(f"a query called {name}() over the whole graph")
            return method(*args, **kwargs)

        return bounded

    monkeypatch.setattr(graph, "roots", lambda: pytest.fail("a query called roots()"))
    for name in ("entities", "triplets", "mentions"):
        monkeypatch.setattr(graph, name, refuse(name, getattr(graph, name)))
    ctx = mem.context(QUERY, config=config, budget_tokens=400)
    assert ctx.items and ctx.timings_ms["linking"] >= 0
