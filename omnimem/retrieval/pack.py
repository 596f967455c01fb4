"""Redundancy pruning and token-budgeted packing of the evidence.

M3KG-RAG (arXiv 2512.20136), section "GRASP", step (c) *redundancy pruning*: near-duplicate pieces
collapse into one, the better-sourced one kept (an item over a fact, a fact with more source items,
then the higher score). DESIGN.md "Compressed context": text evidence is packed into the token
budget by utility per token (the greedy approximation of the 0/1 knapsack; Carbonell & Goldstein's
MMR is the alternative when near-duplicates are not exact enough to collapse).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from omnimem.errors import ConfigError
from omnimem.retrieval.context import ContextEntry

__all__ = ["collapse_duplicates", "jaccard_at_least", "pack_budget", "token_set_similarity"]

_WORD = re.compile(r"\w+")
_KIND_RANK = {"item": 0, "frame": 0, "fact": 1, "summary": 2}  # lower = better-sourced


def token_set_similarity(a: str, b: str) -> float:
    """Jaccard similarity of the lower-cased word sets (a vector-free near-duplicate test)."""
    return _jaccard(_words(a), _words(b))


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def _jaccard(x: frozenset[str], y: frozenset[str]) -> float:
    union = len(x | y)
    return len(x & y) / union if union else 1.0


def jaccard_at_least(x: frozenset[str], y: frozenset[str], bound: float) -> bool:
    """Whether ``_jaccard(x, y) >= bound``; sets whose sizes differ by more than the bound allows are
    answered from their sizes alone (the Jaccard index is at most the smaller size over the larger)."""
    small, large = (len(x), len(y)) if len(x) <= len(y) else (len(y), len(x))
    if large and small / large < bound:
        return False
    common = len(x & y)
    union = small + large - common
    return (common / union if union else 1.0) >= bound


def _better(a: ContextEntry, b: ContextEntry) -> bool:
    """Whether ``a`` is better-sourced than ``b``."""
    key = lambda e: (_KIND_RANK[e.kind], -len(e.item_ids), -e.score)  # noqa: E731
    return key(a) < key(b)


def collapse_duplicates(
    entries: Sequence[ContextEntry], vectors: np.ndarray | None = None, *, threshold: float = 0.92,
    lexical_threshold: float = 0.8,
) -> list[ContextEntry]:  # fmt: skip
    """Collapse near-duplicates: pairs with cosine >= ``threshold`` (when ``vectors`` (n, d), unit rows,
    are given) or word-set Jaccard >= ``lexical_threshold`` keep only the better-sourced one.

    Order is kept (the survivor takes the first position of its group). O(n^2) over a few dozen entries.
    """
    if not 0.0 <= threshold <= 1.0 or not 0.0 <= lexical_threshold <= 1.0:
        raise ConfigError("duplicate thresholds must be in [0, 1]")
    n = len(entries)
    if vectors is not None and len(vectors) != n:
        raise ConfigError(f"got {len(vectors)} vectors for {n} entries")
    sims = vectors @ vectors.T if vectors is not None and n else None
    words = [_words(e.text) for e in entries]  # once per entry, not once per pair
    winner = list(range(n))  # index of the entry that stands for each position
    kept: list[int] = []
    for k in range(n):
        for j in kept:
            near = sims is not None and sims[j, k] >= threshold
            if near or jaccard_at_least(words[j], words[k], lexical_threshold):
                if _better(entries[k], entries[winner[j]]):
                    winner[j] = k
                break
        else:
            kept.append(k)
    return [entries[winner[j]] for j in kept]


def pack_budget(
    entries: Sequence[ContextEntry], budget: int, count_tokens: Callable[[str], int]
) -> tuple[list[ContextEntry], int]:
    """Greedy knapsack: take entries by ``score / tokens`` (then score) while they fit ``budget``.

    Returns the chosen entries (with ``tokens`` set) in their input order, and how many did not
    fit. An entry costs its text's tokens plus one for the line break and its ``[E<n>]`` label.
    """
    if budget <= 0:
        raise ConfigError(f"budget_tokens must be positive, got {budget}")
    costed = [e.__class__(**{**e.__dict__, "tokens": int(count_tokens(e.text)) + 1}) for e in entries]
    order = sorted(range(len(costed)), key=lambda k: (-costed[k].score / costed[k].tokens, -costed[k].score, k))
    spent, chosen = 0, set()
    for k in order:
        if costed[k].score > 0 and spent + costed[k].tokens <= budget:
            chosen.add(k)
            spent += costed[k].tokens
    return [costed[k] for k in range(len(costed)) if k in chosen], len(costed) - len(chosen)
