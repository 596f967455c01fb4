"""What `omnimem` prints: tables (plain when piped, coloured with FORCE_COLOR), `--json`, the
`context` command, documented commands, and exit codes 2 and 130 with one line on stderr."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from omnimem import cli
from omnimem.cli import main
from omnimem.cli_render import span_text, write_hits, write_table

ANSI = "\x1b["
FOOTER = re.compile(r"^(\d+) entries, (\d+)/(\d+) tokens, (\d+) dropped$", re.M)


@pytest.fixture(scope="module")
def memory_path(tmp_path_factory) -> str:
    """One hash-encoder memory shared by the read-only tests (adding runs spaCy: do it once)."""
    from omnimem import Memory
    from omnimem.encoders.hashing import HashEncoder

    path = tmp_path_factory.mktemp("cli") / "m"
    with Memory.open(path, encoder=HashEncoder(64)) as mem:
        mem.add("Alice moved to Berlin in March.", speaker="Alice", timestamp="2023-03-02T10:00:00", session="s1")
        mem.add("Bob adopted a cat called Pixel.", speaker="Bob", session="s1")
        mem.add("The ferry to the lighthouse was late on Tuesday.", speaker="Carol", session="s2")
    return str(path)


@pytest.fixture
def plain(monkeypatch):
    """Output as a pipe sees it, whatever the environment running the tests sets."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def colour(monkeypatch):
    for name in ("TTY_COMPATIBLE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "200")


def test_search_prints_a_plain_table_when_piped(memory_path, capsys, plain):
    assert main(["search", memory_path, "Where does Alice live?", "--json"]) == 0
    best = json.loads(capsys.readouterr().out.splitlines()[0])
    assert main(["search", memory_path, "Where does Alice live?"]) == 0
    out = capsys.readouterr().out
    assert ANSI not in out
    header, first = out.splitlines()[:2]
    assert header.split() == ["#", "score", "id", "modality", "speaker/source", "time", "text"]
    assert first.split()[:5] == ["1", f"{best['score']:.3f}", best["id"][:12], "text", "Alice"]
    assert "2023-03-02 10:00" in first and first.endswith("Alice moved to Berlin in March.")


def test_search_is_coloured_with_force_color(memory_path, capsys, colour):
    assert main(["search", memory_path, "Berlin"]) == 0
    out = capsys.readouterr().out
    assert ANSI in out and "Alice moved to Berlin in March." in out


def test_no_color_wins_over_force_color(memory_path, capsys, colour, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["search", memory_path, "Berlin"]) == 0
    out = capsys.readouterr().out
    assert ANSI not in out and "Alice moved to Berlin in March." in out


def test_search_json_is_one_object_per_hit(memory_path, capsys, colour):
    assert main(["search", memory_path, "cat", "--k", "2", "--json"]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(hits) == 2 and {"id", "score", "text", "retrievers"} <= set(hits[0])


def test_context_table_footer_and_json(memory_path, capsys, plain):
    assert main(["context", memory_path, "Where does Alice live?", "--budget", "48"]) == 0
    out = capsys.readouterr().out
    assert ANSI not in out and out.splitlines()[1].startswith("E1 ")
    entries, tokens, budget, dropped = map(int, FOOTER.search(out).groups())
    assert budget == 48 and 0 < tokens <= budget and entries == len(out.splitlines()) - 2
    assert main(["context", memory_path, "Where does Alice live?", "--budget", "48", "--json"]) == 0
    ctx = json.loads(capsys.readouterr().out)
    assert len(ctx["entries"]) == entries and ctx["budget_tokens"] == 48 and ctx["dropped"] == dropped
    assert sum(e["tokens"] for e in ctx["entries"]) == tokens


def test_context_session_filter(memory_path, capsys):
    assert main(["context", memory_path, "lighthouse ferry", "--session", "s2", "--json"]) == 0
    items = [e for e in json.loads(capsys.readouterr().out)["entries"] if e["kind"] == "item"]
    assert items and all(e["metadata"].get("session") == "s2" for e in items)


def test_ask_shows_the_evidence_table(memory_path, capsys, plain):
    assert main(["ask", memory_path, "Where does Alice live?", "--no-llm"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["E", "kind", "score"] and "Alice moved to Berlin" in out


def test_reports_are_key_value_tables_and_json_on_request(memory_path, capsys, plain):
    assert main(["check", memory_path, "--no-repair"]) == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert rows["ok"] == "yes" and rows["indexes.text.size"] == "3" and rows["database"] == "none"
    assert main(["check", memory_path, "--no-repair", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["graph", "stats", memory_path]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and re.search(r"^items\s+3$", out, re.M)


def test_ctrl_c_exits_130_with_one_line(memory_path, capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_search", interrupted)
    assert main(["search", memory_path, "x"]) == 130
    assert capsys.readouterr().err == "omnimem: interrupted\n"


def test_an_unexpected_error_is_one_line_unless_debugging(memory_path, capsys, monkeypatch):
    def broken(args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli, "_context", broken)
    monkeypatch.delenv("OMNIMEM_DEBUG", raising=False)
    assert main(["context", memory_path, "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("omnimem: error: RuntimeError: boom") and err.count("\n") == 1
    monkeypatch.setenv("OMNIMEM_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["context", memory_path, "x"])


def test_library_errors_print_omnimem_error(tmp_path, capsys):
    assert main(["context", str(tmp_path / "absent"), "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("omnimem: error: ") and "no memory" in err and err.count("\n") == 1


def test_every_command_is_documented():
    subparsers = next(a for a in cli._parser()._actions if a.choices and "search" in a.choices)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in subparsers.choices:
        assert f"omnimem {name}" in cli.__doc__, name
        assert f"omnimem {name}" in readme, name
    assert "130" in cli._parser().format_help()


def test_spans_and_cutting_to_the_terminal(monkeypatch, plain):
    from omnimem.types import Hit

    assert span_text(65.2, 3725) == "00:01:05-01:02:05" and span_text(None) == ""
    hit = Hit(id="a" * 32, score=0.5, text="word " * 40, modality="video", source="/data/talks/keynote.mp4",
              t_start=65.0, t_end=71.5)  # fmt: skip
    out = io.StringIO()
    write_hits([hit], file=out)
    row = out.getvalue().splitlines()[1]
    assert "keynote.mp4" in row and "00:01:05-00:01:11" in row and row.endswith("word")  # piped: not cut

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    out = Terminal()
    write_hits([hit], file=out)
    lines = out.getvalue().splitlines()
    assert ANSI not in out.getvalue() and max(map(len, lines)) <= 100 and lines[1].endswith("word…")
    out = Terminal()
    write_table([], [], footer="nothing", file=out)
    assert out.getvalue() == "nothing\n"
