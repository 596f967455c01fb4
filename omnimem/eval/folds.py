"""Honest evaluation: choose settings on one part of the data, report on the other, both ways.

Every default of the search was once chosen on the same data it was reported on. ``--folds`` splits
the questions in two (LoCoMo: by conversation; MuSiQue: by question, alternating), scores every setting
of a small grid of search settings on every question, then for each fold picks the best setting on
the *other* fold and reports it on this one ("held out"), beside the current default's held-out score.
A default should change only when both folds choose the same other setting (``agree``).

GRASP's stages get the same treatment (:func:`stage_report`): each is switched on or off on one fold
and reported on the other, so a stage turns on by default only where both folds choose it (``helps``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from omnimem.config import SearchConfig

__all__ = ["GRID", "grid_configs", "score_grid", "fold_report", "fold_lines", "stage_report", "stage_lines"]

# the search settings tried: how much a turn borrows from its neighbours (and from the question before it,
# when that one asks), what a question gives up, and the dense side's weight
GRID: dict[str, tuple[float, ...]] = {
    "neighbour_weight": (0.0, 0.25, 0.5, 0.75), "answer_weight": (0.5, 0.9), "question_penalty": (0.0, 0.3),
    "dense_weight": (0.5, 1.0, 1.5),
}  # fmt: skip


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


def stage_report(
    rows: Sequence[tuple[int, str, dict[str, float]]], base: Any, k: int, stages: Sequence[str]
) -> dict[str, Any]:
    """Held-out effect of each GRASP stage: switched on or off on one fold, reported on the other.

    ``rows``: ``(fold, category, {system: recall@k})`` per question, systems named as
    :func:`omnimem.eval.grasp.grasp_systems` names them (``grasp``, ``grasp-no-<stage>``,
    ``grasp+<stage>``). Per stage and fold: the choice (on / off) made on the other fold (a tie keeps
    the default), its recall on this fold beside the default's; the means over the two folds; per
    category the held-out recall of the chosen setting and of the default (questions of both folds);
    ``helps``: both folds chose it on; ``agree``: both folds chose the same.
    """
    out: dict[str, Any] = {}
    for stage in stages:
        on_by_default = base.is_on(stage)
        other = f"grasp-no-{stage}" if on_by_default else f"grasp+{stage}"
        if not rows or other not in rows[0][2]:
            continue
        on, off = ("grasp", other) if on_by_default else (other, "grasp")

        def mean(fold: int, system: str) -> float:
            values = [r[system] for f, _, r in rows if f == fold]
            return sum(values) / max(1, len(values))

        folds, chosen = [], {}
        for held in (0, 1):
            tune = 1 - held
            pick_on = mean(tune, on) >= mean(tune, off) if on_by_default else mean(tune, on) > mean(tune, off)
            chosen[held] = on if pick_on else off
            folds.append({
                "reported_on": held, "chosen": "on" if pick_on else "off",
                "tuned_on_effect": round(mean(tune, on) - mean(tune, off), 4),
                f"held_out_recall@{k}": round(mean(held, chosen[held]), 4),
                f"default_held_out_recall@{k}": round(mean(held, "grasp"), 4),
                f"on_recall@{k}": round(mean(held, on), 4), f"off_recall@{k}": round(mean(held, off), 4),
            })  # fmt: skip
        categories: dict[str, dict[str, float]] = {}
        for cat in sorted({c for _, c, _ in rows}):
            sel = [(f, r) for f, c, r in rows if c == cat]
            categories[cat] = {
                f"held_out_recall@{k}": round(sum(r[chosen[f]] for f, r in sel) / len(sel), 4),
                f"default_recall@{k}": round(sum(r["grasp"] for _, r in sel) / len(sel), 4),
                f"on_recall@{k}": round(sum(r[on] for _, r in sel) / len(sel), 4),
                f"off_recall@{k}": round(sum(r[off] for _, r in sel) / len(sel), 4),
                "questions": len(sel),
            }
        out[stage] = {
            "default": "on" if on_by_default else "off", "folds": folds,
            f"held_out_recall@{k}": round(sum(f[f"held_out_recall@{k}"] for f in folds) / 2, 4),
            f"default_held_out_recall@{k}": round(sum(f[f"default_held_out_recall@{k}"] for f in folds) / 2, 4),
            "by_category": categories,
            "agree": folds[0]["chosen"] == folds[1]["chosen"], "helps": all(f["chosen"] == "on" for f in folds),
        }  # fmt: skip
    return out


def stage_lines(report: dict[str, Any] | None) -> list[str]:
    """Report rows of :func:`stage_report` (nothing without it)."""
    if not report:
        return []
    lines = ["GRASP stages on held-out folds (on/off chosen on the other fold; recall on / off, this fold):"]
    for stage, r in report.items():
        key = next(k for k in r if k.startswith("held_out_recall@"))
        at = key.removeprefix("held_out_")
        cells = "; ".join(
            f"fold {f['reported_on']}: {f['chosen']} {f['on_' + at]:.3f}/{f['off_' + at]:.3f}" for f in r["folds"]
        )
        verdict = "helps (both folds on)" if r["helps"] else ("both folds off" if r["agree"] else _split(r["folds"]))
        lines.append(f"  {stage:<11} default {r['default']:<3} held-out {r[key]:.3f} ({cells}) -> {verdict}")
        cats = ", ".join(
            f"{c} {v['on_' + at]:.3f}/{v['off_' + at]:.3f}" for c, v in r["by_category"].items() if c != "all"
        )
        if len(r["by_category"]) > 1:
            lines.append(f"    by category on/off: {cats}")
    return lines


def _split(folds: Sequence[dict[str, Any]]) -> str:
    """Why two folds chose differently: one saw no effect at all (a tie keeps the default), or they disagree."""
    flat = [f["reported_on"] for f in folds if f["tuned_on_effect"] == 0]
    if len(flat) == 1:
        return f"fold {1 - flat[0]} saw no effect, so the default stays"
    return "folds disagree"
