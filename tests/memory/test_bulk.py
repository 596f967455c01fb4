"""Bulk loading a JSON-lines file of items: batches, precomputed vectors, bad lines, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import omnimem
from omnimem.errors import ConfigError
from omnimem.memory.bulk import import_items


def _write(path, n, *, vectors=None, bad=()):
    with open(path, "w") as f:
        for i in range(n):
            row = {"text": f"note {i} about topic {i % 13}", "speaker": f"s{i % 3}", "session": f"day{i // 50}"}
            if vectors is not None:
                row["vector"] = vectors[i].tolist()
            f.write(("{not json" if i in bad else json.dumps(row)) + "\n")


def test_import_items_with_and_without_vectors_and_bad_lines(tmp_path, hash_encoder):
    config = omnimem.MemoryConfig(graph=omnimem.config.GraphConfig(extract_on_add=False))
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, hash_encoder.dim)).astype(np.float32)
    _write(tmp_path / "with.jsonl", 300, vectors=vectors, bad=(7, 150))
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, config=config) as mem:
        report = import_items(mem, tmp_path / "with.jsonl", batch=64)
        assert report.added == 298 and sorted(report.failed) == [8, 151] and "not JSON" in report.failed[8]
        hit = mem.search("anything", k=1, retrievers=("dense",))  # vectors were taken, not recomputed
        (found,) = mem.store.vectors("text", [hit[0].id])[1]
        i = int(mem.get(hit[0].id).text.split()[1])
        assert np.allclose(found, vectors[i] / np.linalg.norm(vectors[i]), atol=1e-6)
        again = import_items(mem, tmp_path / "with.jsonl", batch=64)  # a finished import resumes at its end
        assert again.resumed_at == 300 and again.added == 0
        _write(tmp_path / "plain.jsonl", 120)
        plain = import_items(mem, tmp_path / "plain.jsonl")
        assert plain.added == 1 and plain.present == 119  # the same items; only line 8's was missing
        assert len(mem) == 299
        with pytest.raises(ConfigError, match="batch"):
            import_items(mem, tmp_path / "plain.jsonl", batch=0)


KILLED = textwrap.dedent(
    """
    import sys, time, omnimem
    from omnimem.encoders.hashing import HashEncoder
    from omnimem.memory.bulk import import_items
    cfg = omnimem.MemoryConfig(graph=omnimem.config.GraphConfig(extract_on_add=False))
    with omnimem.Memory.open(sys.argv[1], encoder=HashEncoder(64), config=cfg) as mem:
        import_items(mem, sys.argv[2], batch=100, progress=lambda done, total: (print(done, flush=True), time.sleep(0.05)))
    """
)


def test_an_import_killed_half_way_resumes_where_it_stopped(tmp_path, hash_encoder):
    _write(tmp_path / "items.jsonl", 3_000)
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path / "m"), str(tmp_path / "items.jsonl")], stdout=subprocess.PIPE, text=True)  # fmt: skip
    seen = []
    while len(seen) < 5:
        line = proc.stdout.readline()
        assert line, "the importer ended before it could be killed"
        seen.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with omnimem.Memory.open(tmp_path / "m") as mem:
        before = len(mem)
        assert before >= seen[-1] and before % 100 == 0  # whole batches only
        started = time.perf_counter()
        report = import_items(mem, tmp_path / "items.jsonl", batch=100)
        assert report.resumed_at >= seen[-1] and report.resumed_at + report.lines == 3_000
        assert len(mem) == 3_000 and report.added == 3_000 - before
        assert time.perf_counter() - started < 60
        assert mem.check()["ok"]


def test_a_bulk_load_leaves_its_wal_in_the_database(tmp_path, hash_encoder):
    from omnimem.types import Item

    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder) as mem:
        with mem.bulk():
            mem.add_items([Item.make(text=f"bulk note {i} about topic {i % 7}") for i in range(2_000)], extract=False)
            assert (tmp_path / "m" / "memory.db-wal").stat().st_size > 0  # the load is in the WAL
        assert (tmp_path / "m" / "memory.db-wal").stat().st_size == 0  # checkpointed and truncated
        assert len(mem) == 2_000 and mem.search("bulk note 5 about topic 5", k=1)[0].text == "bulk note 5 about topic 5"
