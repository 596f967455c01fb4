"""Honest evaluation: choose settings on one part of the data, report on the other, both ways.

Every default of the search was once chosen on the same data it was reported on. ``--folds`` splits
the questions in two (LoCoMo: by conversation; MuSiQue: by question, alternating), scores every setting
of a small grid of search settings on every question, then for each fold picks the best setting on
the *other* fold and reports it on this one ("held out"), beside the current default's held-out score.
A default should change only when both folds choose the same other setting (``agree``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from omnimem.config import SearchConfig

__all__ = ["GRID", "grid_configs", "score_grid", "fold_report", "fold_lines"]

# the search settings tried: how much a turn borrows from its neighbours, and the dense side's weight
GRID: dict[str, tuple[float, ...]] = {"neighbour_weight": (0.0, 0.25, 0.5, 0.75), "dense_weight": (0.5, 1.0, 1.5)}


def grid_configs(base: SearchConfig) -> dict[str, SearchConfig]:
    """Name (``neighbour_weight=0.5,dense_weight=1.0``) -> the config with those settings."""
    out = {}
    for values in itertools.product(*GRID.values()):
        settings = dict(zip(GRID, values))
        out[",".join(f"{k}={v}" for k, v in settings.items())] = dataclasses.replace(base, **settings)
    return out


def score_grid(mem: Any, question: str, gold: Sequence[str], k: int, key_of: Callable[[Any], str]) -> dict[str, float]:
    """Recall@k of ``question`` under every grid setting (the memory's search config swapped in turn)."""
    config = mem.config
    scores = {}
    try:
        for name, search in grid_configs(config.search).items():
            mem.config = dataclasses.replace(config, search=search)
            hits = mem.search(question, k=k)
            found = [key_of(h) for h in hits]
            scores[name] = len(set(found[:k]) & set(gold)) / len(gold)
    finally:
        mem.config = config
    return scores


def fold_report(rows: Sequence[tuple[int, dict[str, float]]], default: SearchConfig, k: int) -> dict[str, Any]:
    """``rows``: ``(fold 0 or 1, {setting: recall@k})`` per question. Per fold: the setting chosen on the
    other fold, its held-out recall and the default's; their means; whether the two folds agree."""
    default_name = ",".join(f"{key}={getattr(default, key)}" for key in GRID)
    means = {
        fold: {s: sum(r[s] for f, r in rows if f == fold) / max(1, sum(1 for f, _ in rows if f == fold)) for s in rows[0][1]}
        for fold in (0, 1)
    }  # fmt: skip
    folds = []
    for held in (0, 1):
        tune = means[1 - held]
        chosen = max(tune, key=lambda s: (round(tune[s], 6), s == default_name))
        folds.append({
            "tuned_on": 1 - held, "reported_on": held, "chosen": chosen,
            f"held_out_recall@{k}": round(means[held][chosen], 4),
            f"default_held_out_recall@{k}": round(means[held].get(default_name, float("nan")), 4),
            "questions": sum(1 for f, _ in rows if f == held),
        })  # fmt: skip
    return {
        "grid": {key: list(v) for key, v in GRID.items()}, "default": default_name, "folds": folds,
        f"held_out_recall@{k}": round(sum(f[f"held_out_recall@{k}"] for f in folds) / 2, 4),
        f"default_held_out_recall@{k}": round(sum(f[f"default_held_out_recall@{k}"] for f in folds) / 2, 4),
        "agree": folds[0]["chosen"] == folds[1]["chosen"],
    }  # fmt: skip


def fold_lines(folds: dict[str, Any] | None) -> list[str]:
    """Report rows of :func:`fold_report` (nothing without it)."""
    if not folds:
        return []
    key = next(k for k in folds if k.startswith("held_out_recall@"))
    lines = [f"held-out folds (settings chosen on the other fold; default {folds['default']}):"]
    for f in folds["folds"]:
        lines.append(
            f"  fold {f['reported_on']}: chose {f['chosen']} -> {f[key]:.3f}, default {f['default_' + key]:.3f}"
            f" ({f['questions']} questions)"
        )
    agree = "agree" if folds["agree"] else "disagree: keep the default"
    lines.append(f"  mean held-out {folds[key]:.3f}, default {folds['default_' + key]:.3f}; the folds {agree}")
    return lines
