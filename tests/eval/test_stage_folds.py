"""Held-out stage choices: a stage is chosen on one fold and reported on the other."""

from __future__ import annotations

from omnimem.eval.folds import stage_lines, stage_report
from omnimem.eval.grasp import grasp_systems
from omnimem.retrieval.context import GraspConfig

OFF = GraspConfig(temporal=False)  # the base the rows describe: temporal off, hop2 on


def _rows(effect_fold0: float, effect_fold1: float) -> list:
    """Two questions per fold; ``grasp+temporal`` adds the fold's effect, ``grasp-no-hop2`` costs 0.1."""
    rows = []
    for fold, effect in ((0, effect_fold0), (1, effect_fold1)):
        for cat in ("temporal", "single-hop"):
            rows.append((fold, cat, {"grasp": 0.5, "grasp+temporal": 0.5 + effect, "grasp-no-hop2": 0.4}))
    return rows


def test_a_stage_that_helps_on_both_folds_is_chosen_on_both():
    report = stage_report(_rows(0.2, 0.1), OFF, 10, ["temporal", "hop2", "ppr"])
    assert set(report) == {"temporal", "hop2"}  # no rows for ppr: left out
    t = report["temporal"]
    assert t["helps"] and t["agree"] and t["default"] == "off"
    assert [f["chosen"] for f in t["folds"]] == ["on", "on"]
    assert t["folds"][0]["held_out_recall@10"] == 0.7 and t["folds"][1]["held_out_recall@10"] == 0.6
    assert t["held_out_recall@10"] == 0.65 and t["default_held_out_recall@10"] == 0.5
    assert t["by_category"]["temporal"]["on_recall@10"] == 0.65
    h = report["hop2"]
    assert h["default"] == "on" and h["helps"] and h["held_out_recall@10"] == 0.5
    lines = stage_lines(report)
    assert "helps (both folds on)" in lines[1] and stage_lines(None) == []


def test_a_stage_the_folds_disagree_on_keeps_its_held_out_cost():
    t = stage_report(_rows(0.2, -0.1), OFF, 10, ["temporal"])["temporal"]
    assert not t["agree"] and not t["helps"]
    # fold 0 is reported with the choice of fold 1 (off), fold 1 with fold 0's (on): it costs 0.1 there
    assert [f["chosen"] for f in t["folds"]] == ["off", "on"] and t["held_out_recall@10"] == 0.45
    assert "folds disagree" in stage_lines({"temporal": t})[1]


def test_a_stage_one_fold_cannot_tell_apart_keeps_the_default_and_says_why():
    t = stage_report(_rows(0.2, 0.0), OFF, 10, ["temporal"])["temporal"]
    # fold 1 sees no effect: the tie keeps the default (off) for fold 0; fold 0's choice (on) is neutral on fold 1
    assert [f["chosen"] for f in t["folds"]] == ["off", "on"] and not t["helps"]
    assert "fold 1 saw no effect, so the default stays" in stage_lines({"temporal": t})[1]


def test_ablation_has_a_system_per_stage():
    systems = grasp_systems(True, True)
    assert not systems["grasp-no-temporal"].is_on("temporal")  # on by default since the held-out folds agreed
    assert not systems["grasp-no-voice"].is_on("voice")
    for stage in ("speaker", "questions", "entities", "units", "personas", "dense2"):
        assert systems[f"grasp+{stage}"].is_on(stage)
