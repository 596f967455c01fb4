"""Quickstart: remember a few facts and a conversation, search them, reopen the memory.

    .venv/bin/python examples/01_quickstart.py [MEMORY_DIR]

Runs offline on the packaged all-MiniLM-L6-v2 encoder, SQLite and FAISS.
"""

import sys
import tempfile
from pathlib import Path

import omnimem

path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "quickstart"

with omnimem.Memory.open(path) as mem:
    mem.add(
        "Alice moved to Berlin in March.",
        speaker="Alice", timestamp="2023-03-02T10:00:00", session="s1", metadata={"dia_id": "D1:1"},
    )  # fmt: skip
    mem.add_conversation(
        [
            {"speaker": "Bob", "text": "I adopted a grey cat called Pixel.", "metadata": {"dia_id": "D1:2"}},
            {"speaker": "Alice", "text": "Berlin is so cold in March!", "metadata": {"dia_id": "D1:3"}},
            {"speaker": "Bob", "text": "I'm training for the Lisbon half marathon.", "metadata": {"dia_id": "D1:4"}},
        ],
        session="s1",
    )
    for question in ["Where does Alice live?", "What pet does Bob have?"]:
        best = mem.search(question, k=1)[0]
        print(f"{question} -> [{best.metadata['dia_id']}] {best.speaker}: {best.text}")

# Reopening needs no arguments: config.json names the encoder that built the memory.
with omnimem.Memory.open(path) as mem:
    print(f"{len(mem)} memories in {path}")
