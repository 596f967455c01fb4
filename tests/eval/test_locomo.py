"""LoCoMo evaluation: parsing helpers on fixtures, and the real command on the dev file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from omnimem.eval.locomo import _session_time, conversation_turns, parse_evidence


def test_parse_evidence_is_lenient_and_drops_unknown_ids():
    known = {"D8:6", "D9:17", "D11:26", "D30:5", "D1:3"}
    assert parse_evidence(["D8:6; D9:17"], known) == ["D8:6", "D9:17"]
    assert parse_evidence(["D:11:26"], known) == ["D11:26"]
    assert parse_evidence(["D30:05"], known) == ["D30:5"]
    assert parse_evidence(["D1:3", "D1:3", "D99:1", "nonsense"], known) == ["D1:3"]


def test_session_time_parses_locomo_dates():
    assert _session_time("1:56 pm on 8 May, 2023") == "2023-05-08T13:56:00"
    assert _session_time("10:37 am on 27 June, 2023") == "2023-06-27T10:37:00"
    assert _session_time("someday") is None


def test_conversation_turns_keep_ids_dates_and_captions():
    sample = {
        "conversation": {
            "speaker_a": "A", "speaker_b": "B",
            "session_2_date_time": "1:00 pm on 2 May, 2023",
            "session_2": [{"speaker": "B", "dia_id": "D2:1", "text": "later"}],
            "session_1_date_time": "1:56 pm on 1 May, 2023",
            "session_1": [
                {"speaker": "A", "dia_id": "D1:1", "text": "look", "blip_caption": "a photo of a dog"},
            ],
        }
    }  # fmt: skip
    sessions = list(conversation_turns(sample))
    assert [s for s, _, _ in sessions] == ["session_1", "session_2"]
    turn = sessions[0][2][0]
    assert turn["text"] == "look [shares an image: a photo of a dog]"
    assert turn["metadata"] == {"dia_id": "D1:1"} and turn["timestamp"] == "2023-05-01T13:56:00"


@pytest.mark.slow
@pytest.mark.data
def test_locomo_dev_hybrid_beats_both_baselines(data_dir):
    path = data_dir / "locomo" / "locomo_dev.json"
    out = subprocess.run(
        [sys.executable, "-m", "omnimem.eval", "locomo", "--data", str(path), "--json"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["questions"] == 302 and result["conversations"] == 2
    assert result["recall@10"] > result["bm25_recall@10"]
    assert result["recall@10"] > result["dense_recall@10"]
    assert set(result["by_category"]) == {"multi-hop", "temporal", "open-domain", "single-hop", "adversarial"}
    assert "omnimem hybrid" in out.stdout


def test_bad_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = subprocess.run(
        [sys.executable, "-m", "omnimem.eval", "locomo", "--data", str(bad), "--encoder", "hash"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2 and "bad.json" in out.stderr


@pytest.mark.slow
@pytest.mark.data
def test_folds_baselines_and_the_adversarial_split_are_reported(data_dir):
    from omnimem.encoders.hashing import HashEncoder
    from omnimem.eval.folds import GRID
    from omnimem.eval.locomo import evaluate_locomo

    result = evaluate_locomo(data_dir / "locomo" / "locomo_dev.json", encoder=HashEncoder(64), questions=12, folds=True)
    for prefix in ("", "bm25_", "dense_", "bm25+neighbours_", "dense+neighbours_"):
        assert 0.0 <= result[f"{prefix}recall@10"] <= 1.0
    plain = result["without_adversarial"]
    assert plain["questions"] == result["questions"] - result["by_category"].get("adversarial", {}).get("questions", 0)
    assert result["skipped_questions"] >= 0
    folds = result["folds"]
    assert [f["reported_on"] for f in folds["folds"]] == [0, 1] and isinstance(folds["agree"], bool)
    assert len(folds["grid"]["neighbour_weight"]) == len(GRID["neighbour_weight"])
    for fold in folds["folds"]:  # the setting was chosen on the other fold, so it may lose on this one
        assert 0.0 <= fold["held_out_recall@10"] <= 1.0 and fold["questions"] > 0
