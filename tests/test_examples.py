"""Every example runs, and says what its docstring promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(name, *args):
    out = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_every_example_has_a_run_command_in_its_docstring():
    for path in sorted(EXAMPLES.glob("[0-9][0-9]_*.py")):
        assert f"examples/{path.name}" in path.read_text().split('"""')[1], path.name


@pytest.mark.slow
def test_quickstart(tmp_path):
    out = _run("01_quickstart.py", str(tmp_path / "m"))
    assert "Where does Alice live? -> [D1:1] Alice: Alice moved to Berlin in March." in out
    assert "What pet does Bob have? -> [D1:2] Bob: I adopted a grey cat called Pixel." in out
    assert "4 memories" in out


@pytest.mark.slow
def test_images(tmp_path):
    out = _run("02_images.py", str(tmp_path / "m"))
    assert "sign, text read by OCR:" in out and "OPEN 24 HOURS" in out.replace("0PEN", "OPEN")
    assert "-> photo" in out and "24 hours' -> sign" in out


@pytest.mark.slow
def test_audio(tmp_path):
    out = _run("03_audio.py", str(tmp_path / "m"))
    assert "skipped:" in out or ("transcript segment(s)" in out and "-> [" in out)


@pytest.mark.slow
def test_video_qa(tmp_path):
    import re

    out = _run("04_video_qa.py", str(tmp_path / "m"))
    if "skipped:" not in out:
        assert out.count("Q: ") == 2 and "ingest -> coarse -> fine -> answer" in out
        # SmolLM2's words vary between CPU kernels: an answer line is there, whatever it says
        assert re.search(r"^A: ", out, re.M)


@pytest.mark.slow
def test_knowledge_graph(tmp_path):
    import re

    out = _run("05_knowledge_graph.py", str(tmp_path))
    assert re.search(r"passages -> [1-9]\d* entities, [1-9]\d* triplets", out)
    assert (tmp_path / "graph.html").stat().st_size > 1000 and f"wrote {tmp_path / 'graph.html'}" in out


@pytest.mark.slow
def test_chat_memory(tmp_path):
    out = _run("06_chat_memory.py", str(tmp_path / "m"))
    assert "[alice/2024-05-06] alice: My sister Maya" in out and "[alice/2024-05-08] assistant: " in out
    assert "earlier session's fact in memory: My sister Maya lives in Lisbon" in out


@pytest.mark.slow
def test_langgraph_store_example(tmp_path):
    out = _run("07_langgraph_store.py", str(tmp_path / "m"))
    assert "recalled: ['I adopted a cat named Miso'" in out
    assert "Pixel" not in out  # bob's namespace stays apart
