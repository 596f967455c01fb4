"""Crash safety: SIGKILL a writer at random moments; every committed turn survives, none is stored twice.

    .venv/bin/python benchmarks/crash.py [--kills 100] [--fast-kills N] [--memory DIR] [--encoder minilm|hash]
                                         [--graph | --no-graph] [--seed 0]

A writer process opens the memory and adds LoCoMo turns, recombined so they keep coming, as
conversations added in batches (``add_conversation(turns, session=..., start=...)``); each session
repeats a short reply ("Yes.") by the same speaker at several places, which must stay separate
turns. After each batch commits, the writer appends the returned ids and texts to a log and fsyncs
it. The parent SIGKILLs the writer after a random (seeded) delay -- about one kill in seven while it
is still opening the memory -- then reopens the memory itself and checks: the reopen succeeds;
``mem.check()`` is ok; FAISS holds exactly the text vectors SQLite holds; every logged id is there
with its exact text; 5 logged ids per kill are found by ``mem.search(text, k=10, neighbours=False)``; and the store has
no item beyond the logged ones and the batch in flight at the kill (which may or may not have
committed; the restarted writer adds it again, which must be a no-op). Then a new writer continues.

The first ``kills - fast_kills`` kills run with ``--encoder`` (default MiniLM, ``Memory.open(path)``'s
default config, graph extraction on); the ``--fast-kills`` (default: all but 20) use the hash encoder
in a second memory (``<memory>-hash``), because a MiniLM writer takes seconds to start. The baseline,
measured in the same run, is the reopen time after a clean close (``clean_reopen_ms``).
One JSON line; ``lost``, ``duplicates``, ``failed_reopens``, ``check_not_ok``,
``index_out_of_step``, ``search_misses`` and ``repeats_merged`` must be 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from _harness import (
    REPEATS,
    Child,
    Session,
    index_out_of_step,
    locomo_path,
    locomo_sessions,
    open_memory,
    percentile,
    skipped,
    tail,
)

BATCHES_PER_SESSION = 6  # a writer's session is added in this many add_conversation calls
DEFAULT_KILLS = 20  # kills with the default encoder when --fast-kills is not given
SEARCH_SAMPLE = 5  # logged ids looked up with mem.search per kill


# -- the writer's deterministic stream of batches ----------------------------------------------
@dataclass(frozen=True)
class Batch:
    number: int  # 0, 1, 2 ... across restarts of the writer
    session: str  # the session the batch continues
    start: int  # the place of its first turn in that session
    turns: list[dict] = field(hash=False)  # add_conversation turns


def _size(seed: int, number: int) -> int:
    return random.Random(f"{seed}:{number}:size").randint(4, 16)


def batch(sessions: list[Session], seed: int, number: int) -> Batch:
    """Batch ``number``: the same turns every time it is asked for, so a retried batch has the same ids."""
    conv = number // BATCHES_PER_SESSION
    first = conv * BATCHES_PER_SESSION
    start = sum(_size(seed, n) for n in range(first, number))
    crng = random.Random(f"{seed}:{conv}:session")
    src = sessions[crng.randrange(len(sessions))]
    repeat_speaker, repeat_text = src.turns[0][0], crng.choice(REPEATS)
    rng = random.Random(f"{seed}:{number}")
    turns = []
    for place in range(start, start + _size(seed, number)):
        speaker, text = src.turns[place % len(src.turns)]
        if rng.random() < 0.2:  # the same short reply, same speaker, same session: a separate turn each time
            speaker, text = repeat_speaker, repeat_text
        elif rng.random() < 0.6:  # recombined, so turns keep coming after the data runs out
            other = sessions[rng.randrange(len(sessions))]
            text = f"{text} {other.turns[rng.randrange(len(other.turns))][1]}"
        turns.append({"speaker": speaker, "text": text, "timestamp": src.when})
    return Batch(number, f"crash-{seed}-{conv}", start, turns)


def read_log(path: Path) -> list[dict]:
    """The committed batches: complete lines only (a kill may cut the last one)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().split(b"\n"):
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def writer(args: argparse.Namespace) -> None:
    """The child: open, then add batches forever, logging each committed one (fsync'd)."""
    log = Path(args.log)
    if log.exists():  # drop a line cut by the last kill (one truncate: a kill here loses no line)
        os.truncate(log, log.read_bytes().rfind(b"\n") + 1)
    logged = read_log(log)
    number = logged[-1]["b"] + 1 if logged else 0
    sessions = locomo_sessions(locomo_path())
    parent = os.getppid()
    mem = open_memory(args.memory, args.encoder, args.graph)
    print("ready", flush=True)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    while os.getppid() == parent:  # an orphan stops
        spec = batch(sessions, args.seed, number)
        ids = mem.add_conversation(spec.turns, session=spec.session, start=spec.start)
        texts = [t["text"] for t in spec.turns]
        line = {"b": number, "session": spec.session, "ids": ids, "texts": texts}
        os.write(fd, (json.dumps(line) + "\n").encode())
        os.fsync(fd)
        print(f"committed {number}", flush=True)
        number += 1
    mem.close()


# -- the parent ------------------------------------------------------------------------------
@dataclass
class Tally:
    kills: int = 0
    kills_default_encoder: int = 0
    kills_during_open: int = 0
    committed_ids: int = 0
    failed_reopens: int = 0
    check_not_ok: int = 0
    index_out_of_step: int = 0
    index_rebuilds: int = 0
    index_syncs: int = 0
    searches: int = 0
    search_misses: int = 0
    inflight_committed: int = 0
    repeats_merged: int = 0
    child_errors: int = 0
    inflight_ids: set = field(default_factory=set)  # committed but not logged when the writer was killed
    pending: dict = field(default_factory=dict)  # batch number -> its ids committed before a kill, not yet logged
    graph_linked: dict = field(default_factory=dict)  # "logged" / "inflight" -> [items with graph links, items]
    lost: set = field(default_factory=set)
    duplicates: set = field(default_factory=set)
    reopen_ms: list = field(default_factory=list)
    clean_reopen_ms: list = field(default_factory=list)
    errors: list = field(default_factory=list)


def verify(location: str, encoder: str, graph: bool, model, log: Path, sessions, seed, baseline, rng, t: Tally):
    """Reopen after a kill and check every promise; returns the loaded encoder to reuse."""
    t0 = time.perf_counter()
    try:
        mem = open_memory(location, encoder, graph, model=model)
    except Exception as e:  # the reopen itself must never fail
        t.failed_reopens += 1
        t.errors.append(f"reopen: {type(e).__name__}: {e}")
        return model
    t.reopen_ms.append(1000 * (time.perf_counter() - t0))
    with mem:
        t.index_rebuilds += sum(ix.last_report.rebuilt for ix in mem.indexes.values())
        t.index_syncs += any(ix.last_report.changed for ix in mem.indexes.values())
        t.index_out_of_step += index_out_of_step(mem) > 0
        report = mem.check()
        if not report["ok"]:
            t.check_not_ok += 1
            t.errors.append(f"check: {report}")
        batches = read_log(log)
        logged = {i: text for b in batches for i, text in zip(b["ids"], b["texts"])}
        items = mem.store.get(list(logged))
        t.lost |= {i for (i, text), item in zip(logged.items(), items) if item is None or item.text != text}
        # Beyond the logged ids, only turns of the batch in flight at the kill may be there; once a
        # restarted writer has logged that batch, its ids must be the ones it had committed before.
        number = batches[-1]["b"] + 1 if batches else 0
        spec = batch(sessions, seed, number)
        extra = set(mem.store.ids()) - baseline - set(logged)
        extra_items = [it for it in mem.store.get(sorted(extra)) if it is not None]
        texts = {turn["text"] for turn in spec.turns}
        inflight = {it.id for it in extra_items if it.session == spec.session and it.text in texts}
        t.duplicates |= {(log.name, it.id) for it in extra_items if it.id not in inflight}
        if len(inflight) > len(spec.turns):
            t.duplicates |= {(log.name, i) for i in inflight}
        for earlier in [b for b in t.pending if b < number]:
            t.duplicates |= {(log.name, i) for i in t.pending.pop(earlier) - set(logged)}
        if inflight:
            t.pending[number] = inflight
            t.inflight_committed += 1
            t.inflight_ids |= inflight
        counts = Counter(logged.values())
        unique = sorted(i for i, text in logged.items() if counts[text] == 1)
        for i in rng.sample(unique, min(SEARCH_SAMPLE, len(unique))):
            t.searches += 1
            # the indexes hold it: its own text finds it (no session smoothing, which may rank the answers
            # of like questions above a question turn)
            if i not in {h.id for h in mem.search(logged[i], k=10, neighbours=False)}:
                t.search_misses += 1
        return mem.encoder


def run_phase(script: str, args, location: str, encoder: str, kills: int, work: Path, rng, sessions, t: Tally):
    log, err = work / f"{Path(location).name}-{encoder}.jsonl", work / "writer.stderr"
    with open_memory(location, encoder, args.graph) as mem:  # creates it; a reused one keeps its items
        baseline, model = set(mem.store.ids()), mem.encoder
    flags = ["--memory", location, "--encoder", encoder, "--graph" if args.graph else "--no-graph"]
    flags += ["--log", str(log), "--seed", str(args.seed)]
    startup = warmup = None  # seconds to open; seconds from open to the first commit
    period = 1.0  # seconds per batch, measured
    done = 0
    while done < kills:
        child, during_open, mode = Child(script, ["--role", "writer", *flags], err), False, rng.random()
        if mode < 0.15 and startup is not None:  # while it opens the memory
            during_open = True
            child.wait(lambda: False, rng.uniform(0, startup))
        elif mode < 0.3 and warmup is not None:  # during its first batch (models load lazily)
            if child.wait(lambda c=child: c.first("ready") is not None, 600):
                child.wait(lambda: False, rng.uniform(0, warmup))
        elif child.wait(lambda c=child: bool(c.times("committed")), 600):  # while it writes
            child.wait(lambda: False, rng.uniform(0, 4 * period))
        ready, commits = child.first("ready"), child.times("committed")
        if child.dead or child.proc.poll() is not None or not (during_open or ready):
            child.kill()  # it exited on its own or hung: a bug worth reporting, not a kill
            t.child_errors += 1
            t.errors.append(f"writer exited with {child.proc.returncode}: {tail(err)}")
            if t.child_errors >= 5:
                break
            continue
        child.kill()
        if ready is not None:
            startup = ready - child.spawned
            if commits:
                warmup = commits[0] - ready
            if len(commits) >= 3:
                period = (commits[-1] - commits[0]) / (len(commits) - 1)
        done += 1
        t.kills += 1
        t.kills_during_open += during_open
        t.kills_default_encoder += encoder == "minilm"
        model = verify(location, encoder, args.graph, model, log, sessions, args.seed, baseline, rng, t)
        if t.failed_reopens:
            break
    batches = read_log(log)
    t.repeats_merged += sum(len(b["ids"]) - len(set(b["ids"])) for b in batches)
    t.committed_ids += len({i for b in batches for i in b["ids"]})
    t0 = time.perf_counter()  # the same-run baseline: reopening after a clean close
    with open_memory(location, encoder, args.graph, model=model) as mem:
        t.clean_reopen_ms.append(1000 * (time.perf_counter() - t0))
        if args.graph:  # a batch killed after its commit but before its graph extraction, then added again
            inflight = t.inflight_ids & set(mem.store.ids())
            for name, ids in (("logged", {i for b in batches for i in b["ids"]} - inflight), ("inflight", inflight)):
                linked = t.graph_linked.setdefault(name, [0, 0])
                linked[0] += len(mem.graph.items_with_links(sorted(ids)))
                linked[1] += len(ids)
    t.inflight_ids, t.pending = set(), {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument(
        "--fast-kills", type=int, default=None, help=f"kills with the hash encoder (default: all but {DEFAULT_KILLS})"
    )
    parser.add_argument("--memory", default=None, help="memory location (default: a temporary directory)")
    parser.add_argument("--encoder", default="minilm", help="encoder of the first kills: minilm (default) or hash")
    parser.add_argument("--graph", action=argparse.BooleanOptionalAction, default=True, help="graph extraction on add")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--role", choices=["parent", "writer"], default="parent", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "writer":
        return writer(args)
    data = locomo_path()
    if data is None:
        return skipped("crash", "LoCoMo data absent (set OMNIMEM_DATA or place it at ../shared/data)")
    sessions, rng, t = locomo_sessions(data), random.Random(args.seed), Tally()
    fast = 0 if args.encoder == "hash" else args.fast_kills
    fast = max(0, args.kills - DEFAULT_KILLS) if fast is None else min(fast, args.kills)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="omnimem-crash-") as tmp:
        work = Path(tmp)
        base = args.memory or str(work / "memory")
        plan = [(base, args.encoder, args.kills - fast), (f"{base}-hash", "hash", fast)]
        for location, encoder, kills in plan:
            if kills and not t.failed_reopens and t.child_errors < 5:
                run_phase(os.path.abspath(__file__), args, location, encoder, kills, work, rng, sessions, t)
    out = {
        "bench": "crash",
        "kills": t.kills,
        "kills_default_encoder": t.kills_default_encoder,
        "kills_during_open": t.kills_during_open,
        "committed_ids": t.committed_ids,
        "lost": len(t.lost),
        "duplicates": len(t.duplicates),
        "failed_reopens": t.failed_reopens,
        "check_not_ok": t.check_not_ok,
        "index_out_of_step": t.index_out_of_step,
        "index_rebuilds": t.index_rebuilds,
        "index_syncs": t.index_syncs,
        "searches": t.searches,
        "search_misses": t.search_misses,
        "repeats_merged": t.repeats_merged,
        "inflight_committed": t.inflight_committed,
        "child_errors": t.child_errors,
        **{f"graph_linked_share_{k}": round(a / n, 3) if n else None for k, (a, n) in t.graph_linked.items()},
        "reopen_ms_p50": percentile(t.reopen_ms, 0.5),
        "reopen_ms_p95": percentile(t.reopen_ms, 0.95),
        "clean_reopen_ms": percentile(t.clean_reopen_ms, 0.5),
        "encoder": args.encoder,
        "graph": args.graph,
        "seed": args.seed,
        "seconds": round(time.perf_counter() - started, 1),
        "errors": t.errors[:5],
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
