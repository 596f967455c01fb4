"""Project-level promises: the README's commands, CI calling them, a light `import omnimem`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.strip().splitlines()]


def test_readme_starts_with_the_two_setup_commands():
    head = (ROOT / "README.md").read_text().split("\n\n", 2)[1]
    assert head.startswith("```bash")
    assert _readme_commands() == ["make demo", "make test"]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = _readme_commands()[1]
    assert any(line.strip() == test_command for line in ci.splitlines())


def test_import_is_light():
    code = "import sys, omnimem; print(sorted(m for m in ('torch', 'faiss', 'transformers', 'sentence_transformers', 'spacy', 'langgraph', 'av') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_docs_stand_alone():
    """Every relative link in the README and DESIGN.md points to a file of this repository."""
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:100]  # pyproject declares Apache-2.0
    for doc in ("README.md", "DESIGN.md"):
        for target in re.findall(r"\]\(([^)#]+)\)", (ROOT / doc).read_text()):
            if "://" in target:
                continue
            path = (ROOT / target).resolve()
            assert path.is_relative_to(ROOT) and path.exists(), f"{doc} links {target}, which the repository lacks"


SQL = re.compile(
    r"^\s*(SELECT\s.+\sFROM\s|INSERT\s+(OR\s+\w+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|"
    r"CREATE\s+(TABLE|INDEX|UNIQUE|VIRTUAL)\s|DROP\s+(TABLE|INDEX)\s|ALTER\s+TABLE\s|PRAGMA\s|BEGIN(\s|$)|WITH\s+\w+\s+AS\s)",
    re.S,
)


def test_no_sql_outside_the_stores():
    """The storage boundary (DESIGN.md section 3): only omnimem/stores speaks SQL or opens a database."""
    import ast

    found = []
    for path in sorted((ROOT / "omnimem").rglob("*.py")):
        rel = path.relative_to(ROOT / "omnimem")
        if rel.parts[0] == "stores":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(n and n.split(".")[0] in ("sqlite3", "sqlite_utils", "psycopg", "psycopg_pool") for n in names):
                    found.append(f"{rel}:{node.lineno} imports a database driver")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value):
                found.append(f"{rel}:{node.lineno} {node.value[:60]!r}")
            elif (
                isinstance(node, ast.Attribute)
                and node.attr in ("read", "execute", "executemany")
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "store"
            ):
                found.append(f"{rel}:{node.lineno} runs SQL through .store.{node.attr}")
    assert found == [], "\n".join(found)
