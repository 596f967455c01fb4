"""The GRASP system in the evaluations: systems, report lines, and both commands on the dev data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from omnimem.eval.grasp import grasp_lines, grasp_systems
from omnimem.retrieval.context import STAGES


def test_grasp_systems_and_ablation_names():
    assert grasp_systems(False, False) == {}
    assert list(grasp_systems(True, False)) == ["grasp"]
    systems = grasp_systems(True, True)
    assert len(systems) == 1 + len(STAGES) and "grasp-no-hop2" in systems and "grasp+ppr" in systems
    assert systems["grasp+ppr"].ppr and not systems["grasp-no-hop2"].hop2 and systems["grasp-no-tau"].tau == ()


def test_grasp_lines_report_recall_context_and_tokens():
    result = {"grasp_recall@5": 0.5, "grasp_context_recall": 0.4, "grasp_tokens": 100.0, "full_tokens": 2000.0}
    lines = grasp_lines({**result, "grasp_query_ms_p50": 12.0}, [5])
    assert lines[0].startswith("grasp") and "0.500" in lines[0] and "100 tokens" in lines[0]
    assert "20.0x fewer" in lines[1]


def _run(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "omnimem.eval", *args, "--json"], capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.data
def test_musique_with_grasp_on_a_quick_corpus(data_dir):
    result = _run(
        "musique", "--qa", str(data_dir / "musique" / "musique_qa_train100.json"),
        "--corpus", str(data_dir / "musique" / "musique_train_corpus.json"),
        "--limit", "3", "--question-corpus", "--grasp", "--budget", "512",
    )  # fmt: skip
    assert result["questions"] == 3 and result["passages"] == 60
    assert 0.0 <= result["grasp_recall@5"] <= 1.0 and result["grasp_recall@5"] >= result["bm25_recall@5"]
    assert 0 < result["grasp_tokens"] <= 512 < result["full_tokens"]
    assert result["grasp_context_recall_with_facts"] >= result["grasp_context_recall"]  # facts counted separately


@pytest.mark.slow
@pytest.mark.data
def test_locomo_with_grasp_hands_the_model_ten_times_fewer_tokens(data_dir):
    result = _run(
        "locomo", "--data", str(data_dir / "locomo" / "locomo_dev.json"), "--limit", "1", "--questions", "25",
        "--grasp", "--budget", "512",
    )  # fmt: skip
    assert result["conversations"] == 1 and 0 < result["questions"] <= 25
    assert result["grasp_recall@10"] >= result["bm25_recall@10"]
    assert result["full_tokens"] / result["grasp_tokens"] >= 10
    assert all("grasp_recall@10" in values for values in result["by_category"].values())
