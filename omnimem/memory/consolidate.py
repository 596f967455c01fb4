"""Consolidation: the job that turns episodic memory into semantic memory (HippoMM's consolidation,
MemOS / Mem0 background jobs) -- never run inside a query or an add.

Steps, each idempotent and resumable on its own:
1. *graph*: the fast extractor over every item not yet in the graph (``omnimem.graph.jobs``), with
   entity resolution of the new entities;
2. *facts*: facts not yet seen by the semantic memory are observed (add / reinforce / supersede);
3. *duplicates*: after entity merges, facts with the same canonical head, relation and tail become
   one (the survivor keeps every source, the others are removed, the merge is logged);
4. *summaries*: every dirty session and episode summary is rewritten, and the speakers' personas
   (:mod:`omnimem.memory.personas`).
A second run right after the first changes nothing.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from omnimem.types import utc_now

if TYPE_CHECKING:  # pragma: no cover
    from omnimem.executors import Executor
    from omnimem.memory.core import Memory

__all__ = ["consolidate"]


def consolidate(
    memory: Memory, *, resolve: bool = True, progress: Any = False, executor: Executor | None = None
) -> dict[str, Any]:
    """Run the consolidation steps; returns what each changed (all zeros on a no-op run).

    ``executor`` (:mod:`omnimem.executors`, e.g. a Ray cluster) parses the graph step's batches on
    its workers; everything else (resolution, facts, duplicates, summaries) runs here.
    """
    from omnimem.graph.jobs import build_graph
    from omnimem.memory.personas import refresh_personas

    started = time.perf_counter()
    while memory.catch_up(limit=500):  # extraction owed on items a crash interrupted
        pass
    job = build_graph(memory, resolve=resolve, progress=progress, executor=executor)
    observed = _observe_unseen(memory)
    merged = _merge_duplicate_facts(memory)
    summaries = memory.episodic.refresh()
    speakers = refresh_personas(memory)  # per-speaker profiles (omnimem.memory.personas)
    return {
        "graph_items": job.items - job.skipped, "triplets": job.triplets, "entity_merges": job.merges,
        "facts_observed": observed, "facts_merged": merged, "summaries": summaries, "personas": speakers,
        "failures": len(job.failures), "seconds": round(time.perf_counter() - started, 2),
    }  # fmt: skip


def _observe_unseen(memory: Memory) -> int:
    items = memory.facts_log.unseen_items()
    if not items:
        return 0
    return memory.semantic.observe(items)["add"]


def _merge_duplicate_facts(memory: Memory) -> int:
    """After entity merges, facts with the same canonical head, relation and tail become one: the
    earliest recorded survives with every source, the merge is logged."""
    roots = memory.graph.roots()
    groups: dict[tuple[str, str, str], list[tuple[str, str]]] = defaultdict(list)
    for tid, head, relation, tail, recorded in memory.graph.active_triplets():
        groups[(roots.get(head, head), relation, roots.get(tail, tail))].append((recorded or "", tid))
    pairs = [(members[0][1], tid) for members in map(sorted, groups.values()) for _, tid in members[1:]]
    if not pairs:
        return 0
    now = utc_now()
    with memory.store.transaction():  # moved, dropped and logged together
        merged = memory.graph.collapse(pairs)
        memory.facts_log.log([(keep, "merge", drop, None, now) for keep, drop in pairs])
    return merged
