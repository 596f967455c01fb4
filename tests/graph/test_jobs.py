"""The fast graph-construction job: report counts, idempotent, resumable after a kill, parallel, coverage."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from omnimem.graph.jobs import FAST, build_graph, graph_stats
from omnimem.types import Item

TEXTS = [
    "Barack Obama was born in Hawaii.",
    "Obama moved to Chicago and worked as a lawyer.",
    "Alice adopted a cat in Berlin.",
    "Berlin is the capital of Germany.",
    "The museum opened in Paris.",
    "Tolkien wrote The Hobbit in Oxford.",
]


def _open(path, encoder, *, extract_on_add=False):
    import omnimem
    from omnimem.config import GraphConfig, MemoryConfig

    return omnimem.Memory.open(path, encoder=encoder, config=MemoryConfig(graph=GraphConfig(extract_on_add=extract_on_add)))  # fmt: skip


@pytest.fixture
def bare_mem(tmp_path, hash_encoder):
    with _open(tmp_path / "mem", hash_encoder) as memory:
        yield memory


def _dump(mem):
    tables = ["entities", "relations", "triplets", "triplet_sources", "mentions"]
    drop = {"entities": ("created_at",), "triplets": ("recorded_at",)}
    out = {}
    for t in tables:
        cols = [r[1] for r in mem.store.conn.execute(f"PRAGMA table_info({t})") if r[1] not in drop.get(t, ())]
        out[t] = sorted(mem.store.conn.execute(f"SELECT {', '.join(cols)} FROM {t}").fetchall(), key=repr)
    return out


def _add(mem, texts=TEXTS):
    return mem.add_items([Item.make(text=t, speaker="Carol", metadata={"n": k}) for k, t in enumerate(texts)])


def test_report_counts_and_idempotent(bare_mem):
    mem = bare_mem
    _add(mem)
    mem.add_items([Item.make(modality="image", text="", blob="abc")])  # nothing to read
    seen = []
    report = build_graph(mem, batch_size=4, progress=lambda done, total: seen.append((done, total)))
    counts = mem.graph.counts()
    assert report.mode == FAST and report.items == 7 and report.skipped == 1 and report.remaining == 0
    assert (report.entities, report.triplets, report.mentions) == (
        counts["entities"] + counts["merges"], counts["triplets"], counts["mentions"])  # fmt: skip
    assert report.merges == counts["merges"] and report.llm_calls == 0 and report.failures == ()
    assert seen == [(4, 7), (7, 7)]
    assert mem.graph.check_coverage() == []
    before = _dump(mem)
    again = build_graph(mem)
    assert again.items == 0 and again.triplets == 0 and _dump(mem) == before
    stats = graph_stats(mem)
    assert stats["processed"] == {FAST: 7} and stats["pending"] == {FAST: 0} and stats["uncovered_triplets"] == 0
    assert stats["triplets"] == counts["triplets"]


def test_the_fast_job_stores_the_names_of_named_entities(bare_mem):
    mem = bare_mem
    _add(mem)
    build_graph(mem, resolve=False)
    named = {e.id: e.name for e in mem.graph.entities() if e.type != "CONCEPT"}
    stored = mem.graph.embeddings([e.id for e in mem.graph.entities()])
    assert named and stored.keys() == named.keys()  # names, not concepts: what query linking compares
    for eid, name in named.items():
        assert stored[eid] == pytest.approx(mem.encoder.encode([name])[0])


def test_items_extracted_on_add_are_not_read_again(tmp_path, hash_encoder):
    with _open(tmp_path / "m", hash_encoder, extract_on_add=True) as mem:
        _add(mem)
        before = _dump(mem)
        report = build_graph(mem)
        assert report.items == len(TEXTS) and report.skipped == len(TEXTS) and _dump(mem) == before


class _Stop(Exception):
    pass


def test_resumes_after_an_interruption_without_duplicates(tmp_path, hash_encoder):
    with _open(tmp_path / "ref", hash_encoder) as ref:
        _add(ref)
        build_graph(ref, resolve=False)
        expected = _dump(ref)
    with _open(tmp_path / "m", hash_encoder) as mem:
        _add(mem)

        def stop(done, total):
            if done >= 2:
                raise _Stop

        with pytest.raises(_Stop):
            build_graph(mem, batch_size=2, progress=stop, resolve=False)
        assert len(mem.store.progress().pending(FAST)) == len(TEXTS) - 2
        report = build_graph(mem, batch_size=2, resolve=False)
        assert report.items == len(TEXTS) - 2 and mem.store.progress().pending(FAST) == []
        assert _dump(mem) == expected


def test_resumes_after_a_killed_process(tmp_path):
    """A real SIGKILL mid-job: the next run finishes; rows equal those of an uninterrupted run."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {os.getcwd()!r})
        import omnimem
        from omnimem.config import GraphConfig, MemoryConfig
        from omnimem.encoders.hashing import HashEncoder
        from omnimem.graph.jobs import build_graph
        from omnimem.types import Item
        texts = {TEXTS!r}
        config = MemoryConfig(graph=GraphConfig(extract_on_add=False))
        mem = omnimem.Memory.open(sys.argv[1], encoder=HashEncoder(64), config=config)
        mem.add_items([Item.make(text=t, speaker="Carol", metadata={{"n": k}}) for k, t in enumerate(texts)])
        kill = lambda done, total: os.kill(os.getpid(), signal.SIGKILL) if done >= 4 else None
        build_graph(mem, batch_size=2, progress=kill if sys.argv[2] == "kill" else None)
    """)  # fmt: skip
    for name in ("killed", "ref"):
        run = subprocess.run([sys.executable, "-c", script, str(tmp_path / name), "kill" if name == "killed" else "no"], capture_output=True, text=True)  # fmt: skip
        assert run.returncode == (-9 if name == "killed" else 0), run.stderr[-2000:]
    from omnimem.encoders.hashing import HashEncoder

    with _open(tmp_path / "killed", HashEncoder(64)) as mem:
        table = mem.store.progress()
        assert len(table.pending(FAST)) == 2 and table.flagged(FAST)  # resolution is owed
        report = build_graph(mem, batch_size=2)
        assert report.items == 2 and not table.flagged(FAST)
        killed = _dump(mem)
    with _open(tmp_path / "ref", HashEncoder(64)) as ref:
        assert killed == _dump(ref)


def test_parallel_workers_write_the_same_graph(tmp_path, hash_encoder):
    dumps = []
    for workers in (1, 2):
        with _open(tmp_path / f"w{workers}", hash_encoder) as mem:
            _add(mem)
            report = build_graph(mem, workers=workers, batch_size=2)
            assert report.items == len(TEXTS) and report.remaining == 0
            dumps.append(_dump(mem))
    assert dumps[0] == dumps[1]


@pytest.mark.parametrize("modality", ["text", "audio", "video"])
def test_coverage_for_every_modality(bare_mem, modality):
    mem = bare_mem
    span = {} if modality == "text" else {"t_start": 0.0, "t_end": 5.0}
    ids = mem.add_items([Item.make(modality=modality, text=t, episode="ep", **span) for t in TEXTS[:3]])
    build_graph(mem)
    assert mem.graph.check_coverage() == []
    triplets = mem.graph.triplets()
    assert triplets and {s for t in triplets for s in t.sources} <= set(ids)
    modalities = {item.modality for t in triplets for item in mem.store.get(list(t.sources))}
    assert modalities == {modality}
