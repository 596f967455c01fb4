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
