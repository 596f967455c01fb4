"""A whole memory copied between backends: export / import / migrate, verified by counts and checksum."""

from __future__ import annotations

import json

import pytest
from PIL import Image

import omnimem
from omnimem.errors import ConfigError, CorruptInput
from omnimem.memory.transfer import export_memory, import_memory, migrate_memory, text_checksum


def _rich_memory(path, encoder):
    """Items in sessions, a repeated turn, an image blob, graph, facts and their history, a summary,
    access statistics, an archived item."""
    config = omnimem.MemoryConfig(media=omnimem.config.MediaConfig(ocr=False))
    mem = omnimem.Memory.open(path, encoder=encoder, config=config)
    mem.add_conversation(
        [
            {"speaker": "Alice", "text": "I moved to Berlin in March.", "timestamp": "2023-03-02"},
            {"speaker": "Bob", "text": "Yes."},
            {"speaker": "Alice", "text": "I work at Acme now.", "timestamp": "2023-03-03"},
            {"speaker": "Bob", "text": "Yes."},
        ],
        session="s1",
        episode="chat",
    )
    mem.add("Alice moved to Lisbon in 2024.", speaker="Alice", timestamp="2024-06-01", session="s2", episode="chat")
    mem.add_image(Image.new("RGB", (16, 16), (9, 8, 7)), caption="Alice at the harbour")
    (old,) = mem.add("An old remark about the weather", timestamp="2001-01-01")
    mem.consolidate()
    mem.search("Where does Alice live?", k=3)
    mem.prune(omnimem.memory.forgetting.ForgetPolicy(min_age_days=1_000), now="2026-01-01")
    return mem


def _snapshot(mem):
    items = sorted((i.id, i.text, i.session, i.speaker, i.blob) for i in mem.store.get(list(mem.store.ids())))
    return {
        "items": items,
        "order": list(mem.store.ids()),
        "graph": mem.graph.counts(),
        "facts": sorted(str(f) for f in mem.facts("Alice", include_retired=True)),
        "history": {f.id: len(mem.fact_history(f.id)) for f in mem.facts("Alice", include_retired=True)},
        "summaries": sorted(n.summary for n in mem.store.nodes()),
        "archived": [a[0] for a in mem.store.archived()],
        "checksum": text_checksum(mem),
    }


def test_export_then_import_copies_everything(tmp_path, hash_encoder):
    with _rich_memory(tmp_path / "a", hash_encoder) as mem:
        before = _snapshot(mem)
        blob = next(i.blob for i in mem.store.get(list(mem.store.ids())) if i.blob)
        trailer = export_memory(mem, tmp_path / "a.jsonl.gz")
        hits = [h.id for h in mem.search("Where does Alice live?", k=3, retrievers=("dense",))]
    assert trailer["counts"]["items"] == len(before["items"]) and trailer["counts"]["blobs"] == 1
    assert trailer["checksum"] == before["checksum"]
    import_memory(tmp_path / "a.jsonl.gz", tmp_path / "b", encoder=hash_encoder)
    with omnimem.Memory.open(tmp_path / "b") as copy:
        assert _snapshot(copy) == before
        assert blob in copy.blobs
        assert [h.id for h in copy.search("Where does Alice live?", k=3, retrievers=("dense",))] == hits
        assert copy.check()["ok"]


def test_migrate_copies_directly_and_refuses_a_full_target(tmp_path, hash_encoder):
    with _rich_memory(tmp_path / "a", hash_encoder) as mem:
        before = _snapshot(mem)
    trailer = migrate_memory(tmp_path / "a", tmp_path / "b", encoder=hash_encoder)
    assert trailer["checksum"] == before["checksum"]
    with omnimem.Memory.open(tmp_path / "b") as copy:
        assert _snapshot(copy) == before
    with pytest.raises(ConfigError, match="already holds"):
        migrate_memory(tmp_path / "a", tmp_path / "b", encoder=hash_encoder)


def test_a_damaged_export_is_refused_naming_the_line(tmp_path, hash_encoder):
    with _rich_memory(tmp_path / "a", hash_encoder) as mem:
        export_memory(mem, tmp_path / "a.jsonl")
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    (tmp_path / "cut.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # no trailer
    with pytest.raises(CorruptInput, match="cut short"):
        import_memory(tmp_path / "cut.jsonl", tmp_path / "b", encoder=hash_encoder)
    (tmp_path / "bad.jsonl").write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(CorruptInput, match="line 2"):
        import_memory(tmp_path / "bad.jsonl", tmp_path / "c", encoder=hash_encoder)
    (tmp_path / "other.jsonl").write_text(json.dumps({"hello": 1}) + "\n")
    with pytest.raises(CorruptInput, match="not an omnimem memory export"):
        import_memory(tmp_path / "other.jsonl", tmp_path / "d", encoder=hash_encoder)
