"""The `omnimem` command: add, search, check, eval, and meaningful exit codes."""

from __future__ import annotations

import json

import pytest

from omnimem.cli import main
from omnimem.config import GraspConfig, MemoryConfig


def _hash_memory(tmp_path):
    from omnimem import Memory
    from omnimem.encoders.hashing import HashEncoder

    Memory.open(tmp_path / "m", encoder=HashEncoder(64)).close()
    return str(tmp_path / "m")


def test_add_search_check(tmp_path, capsys):
    path = _hash_memory(tmp_path)
    assert main(["add", path, "Alice moved to Berlin", "--speaker", "Alice", "--timestamp", "2023-03-02"]) == 0
    item_id = capsys.readouterr().out.strip()
    assert main(["search", path, "Berlin", "--json"]) == 0
    hit = json.loads(capsys.readouterr().out.splitlines()[0])
    assert hit["id"] == item_id and hit["speaker"] == "Alice"
    assert main(["check", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    path = _hash_memory(tmp_path)
    assert main(["add", path, "   "]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "absent"), "x"]) == 2
    assert "no memory" in capsys.readouterr().err


def test_eval_is_forwarded(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[]x")
    assert main(["eval", "locomo", "--data", str(bad), "--encoder", "hash"]) == 2


def test_graph_build_stats_export(tmp_path, capsys):
    path = _hash_memory(tmp_path)
    assert main(["add", path, "Alice moved to Berlin in March.", "--speaker", "Alice"]) == 0
    capsys.readouterr()
    assert main(["graph", "build", path, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["failures"] == []
    assert main(["graph", "stats", path, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["uncovered_triplets"] == 0 and stats["entities"] >= 2
    out = tmp_path / "g.html"
    assert main(["graph", "export", path, "--format", "html", "--entity", "Berlin", "-o", str(out)]) == 0
    assert "Berlin" in out.read_text() and "http://" not in out.read_text().replace("http://www.w3.org", "")


def test_consolidate_and_forget(tmp_path, capsys):
    path = _hash_memory(tmp_path)
    main(["add", path, "Bob lives in Oslo.", "--speaker", "Bob", "--session", "s1"])
    main(["add", path, "Eve's secret code is 4471.", "--speaker", "Eve", "--session", "s2"])
    capsys.readouterr()
    assert main(["consolidate", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["failures"] == 0
    assert main(["forget", path, "--speaker", "Eve"]) == 0
    assert len(json.loads(capsys.readouterr().out)["items"]) == 1
    assert main(["forget", path]) == 2  # neither ids nor a filter


def test_serve_refuses_a_public_address_without_a_key(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OMNIMEM_API_KEY", raising=False)
    assert main(["serve", str(tmp_path), "--host", "0.0.0.0", "--api-key", ""]) == 2
    assert "api" in capsys.readouterr().err.lower()


def test_serve_creates_memories_with_the_given_config(tmp_path, capsys, monkeypatch):
    import omnimem.server

    seen = {}
    monkeypatch.setattr(omnimem.server, "serve", lambda root, **kw: seen.update(kw, root=root))
    config = MemoryConfig(grasp=GraspConfig(questions=True, speaker=True))
    (tmp_path / "server.json").write_text(config.to_json())
    assert main(["serve", str(tmp_path / "root"), "--config", str(tmp_path / "server.json")]) == 0
    assert seen["config"] == config and seen["root"] == tmp_path / "root"
    assert main(["serve", str(tmp_path / "root")]) == 0 and seen["config"] is None  # the defaults
    (tmp_path / "bad.json").write_text('{"grasp": {"questions": true,')
    assert main(["serve", str(tmp_path / "root"), "--config", str(tmp_path / "bad.json")]) == 2
    assert "bad.json" in capsys.readouterr().err


def test_ingest_and_ask_without_llm(tmp_path, capsys):
    path = _hash_memory(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "trip.md").write_text("We visited the lighthouse on Tuesday.\n\nThe ferry was late.")
    (tmp_path / "docs" / "junk.bin").write_bytes(bytes(range(256)))
    assert main(["ingest", path, str(tmp_path / "docs"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["added"]) == [str(tmp_path / "docs" / "trip.md")] and report["failed"] == {}
    assert main(["ask", path, "When did we visit the lighthouse?", "--no-llm", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["answer"] is None and "lighthouse" in result["evidence"][0]["text"]


@pytest.mark.slow
def test_chat_repl_through_stdin(tmp_path):
    import subprocess
    import sys

    path = _hash_memory(tmp_path)
    script = "My cat is called Pixel.\nWhat is my cat called?\n\n"
    out = subprocess.run(
        [sys.executable, "-m", "omnimem.cli", "chat", path, "--user", "ana"],
        input=script, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("assistant: ") == 2
    from omnimem import Memory

    with Memory.open(path) as mem:
        assert any("Pixel" in mem.get(i).text for i in mem.store.ids())  # the turns were written back


def test_ingest_of_a_garbage_mp3_is_a_failure_exit_1(tmp_path, capsys):
    path = _hash_memory(tmp_path)
    garbage = tmp_path / "song.mp3"
    garbage.write_bytes(bytes(range(256)) * 8)  # named like audio, holds no audio
    assert main(["ingest", path, str(garbage)]) == 1
    out = capsys.readouterr().out
    assert "failed 1" in out and f"failed {garbage}: {garbage} is named like an audio file" in out


def test_ingest_goes_on_past_bad_files_and_exits_1(tmp_path, capsys):
    path = _hash_memory(tmp_path)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "trip.md").write_text("We visited the lighthouse on Tuesday.")
    (docs / "broken.jpg").write_bytes(b"\x00" * 300)
    (docs / "empty.mp4").write_bytes(b"")
    (docs / "notes.txt").write_bytes("Réunion à Zürich".encode("latin-1"))
    (docs / "loop").symlink_to(docs / "loop")
    assert main(["ingest", path, str(docs), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert set(report["added"]) == {str(docs / "trip.md"), str(docs / "notes.txt")}
    assert set(report["failed"]) == {str(docs / n) for n in ("broken.jpg", "empty.mp4", "loop")}
    assert all(name in why for name, why in report["failed"].items())
    assert "cp1252" in report["notes"][str(docs / "notes.txt")]
    assert main(["search", path, "lighthouse", "--json"]) == 0  # the memory kept the good files
    assert "lighthouse" in json.loads(capsys.readouterr().out.splitlines()[0])["text"]


def test_export_import_and_migrate_verify_the_copy(tmp_path, capsys):
    path = _hash_memory(tmp_path)
    assert main(["add", path, "Alice moved to Berlin", "--speaker", "Alice"]) == 0
    capsys.readouterr()
    assert main(["export", path, str(tmp_path / "m.jsonl.gz"), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["items"] == 1 and len(exported["checksum"]) == 64
    assert main(["import", str(tmp_path / "m.jsonl.gz"), str(tmp_path / "copy"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checksum"] == exported["checksum"]
    assert main(["migrate", path, str(tmp_path / "copy2"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checksum"] == exported["checksum"]
    assert main(["migrate", path, str(tmp_path / "copy2")]) == 2  # the target is not empty
    assert "already holds" in capsys.readouterr().err
