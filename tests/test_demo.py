"""The README's main job (`python -m omnimem.demo`) runs and cites its evidence."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_on_the_bundled_sample(tmp_path):
    env = {**os.environ, "OMNIMEM_DATA": str(tmp_path / "absent")}
    cmd = [sys.executable, "-m", "omnimem.demo", "--memory", str(tmp_path / "m")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "bundled sample conversation" in out.stdout
    answer = out.stdout.split("Q: Where does Ana live now?")[1].split("Q:")[0]
    shown = [line for line in answer.split("\n") if line.strip().startswith(("E1.", "E2."))]
    assert any("[session_1:1 | Ana | 2024-03-02] I finally moved to Lisbon" in line for line in shown)
    assert "fact: <Ana> -move to-> <Lisbon>" in answer  # the graph fact rides along
    assert answer.split("\n")[1].startswith("A: ")  # SmolLM2 answered (its words vary between CPU kernels)
    again = subprocess.run([*cmd, "--no-llm"], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert "(0 new" in again.stdout  # a second run adds nothing twice


@pytest.mark.slow
@pytest.mark.data
def test_demo_on_locomo(tmp_path, data_dir):
    env = {**os.environ, "OMNIMEM_DATA": str(data_dir)}
    cmd = [sys.executable, "-m", "omnimem.demo", "--memory", str(tmp_path / "m"), "--questions", "2", "--no-llm"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    assert "LoCoMo conversation 1" in out.stdout
    assert "[D1:3 | Caroline | 2023-05-08]" in out.stdout  # the gold evidence of the first question
