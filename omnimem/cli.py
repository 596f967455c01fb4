"""The ``omnimem`` command: a thin shell over the library; flags mirror the Python kwargs.

    omnimem add MEMORY TEXT [--speaker S] [--timestamp T] [--session S]
    omnimem search MEMORY QUERY [--k 10] [--json]
    omnimem context MEMORY QUERY [--budget 1024] [--session S ...] [--json]   (the packed GRASP context)
    omnimem ingest MEMORY PATH [--ray [ADDRESS]] [--workers N] [--json]   (a file or a folder; progress bar on a terminal)
    omnimem ask MEMORY QUESTION [--budget 1024] [--no-llm] [--json]
    omnimem chat MEMORY [--user NAME]                   (an interactive REPL with memory; reads stdin)
    omnimem video-qa MEMORY VIDEO QUESTION ...
    omnimem check MEMORY [--no-repair] [--json]
    omnimem consolidate MEMORY [--ray [ADDRESS]] [--workers N] [--json]   (progress bar on a terminal)
    omnimem forget MEMORY [ID ...] [--session S] [--speaker S] [--before T]
    omnimem graph build MEMORY [--agentic] [--workers N] [--ray [ADDRESS]] [--json]   (progress bar on a terminal)
    omnimem graph export MEMORY --format graphml|json|html [--entity NAME ...] [--hops 2] -o FILE
    omnimem graph stats MEMORY [--json]
    omnimem serve ROOT [--host 127.0.0.1] [--port 8000] [--api-key KEY] [--allowed-root DIR] [--max-open 16]
                  [--config CONFIG.json]   (the MemoryConfig of the memories it creates)
    omnimem keys add ROOT NAME --memory M [--memory M2 ...] [--read-only]   (prints the key once)
    omnimem keys list ROOT [--json]  |  omnimem keys revoke ROOT NAME   (scoped API keys of the server)
    omnimem export MEMORY FILE  |  omnimem import FILE MEMORY  |  omnimem migrate SOURCE TARGET   (verified copies)
    omnimem import ITEMS.jsonl MEMORY [--batch 512] [--no-extract]   (bulk load, resumable after a crash)
    omnimem eval locomo|musique ...        (same as python -m omnimem.eval)

Output: tables (:mod:`omnimem.cli_render`), coloured on a terminal, plain aligned text when piped or
with ``NO_COLOR`` set (``FORCE_COLOR`` forces colour); ``--json`` is the stable output for scripts.
Progress bars go to stderr, and only when it is a terminal.

Exit codes (also in ``omnimem --help``): 0 success; 1 the command ran but found problems (a check it
could not repair, files ingest could not read, items a graph job or consolidation failed on); 2 bad
input or a library error, as one line ``omnimem: error: ...`` on stderr (``OMNIMEM_DEBUG=1`` re-raises
unexpected errors with their traceback); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from omnimem.errors import ConfigError, OmnimemError

EXIT_OK = 0  # success
EXIT_PROBLEMS = 1  # the command ran but found problems (unrepaired check, failed files or items)
EXIT_ERROR = 2  # bad input or a library error (argparse's usage errors exit 2 too)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)

EPILOG = """\
exit codes:
  0    success
  1    the command ran but found problems: a check it could not repair, files ingest could
       not read, items a graph job or consolidation failed on
  2    bad input or a library error (one line "omnimem: error: ..." on stderr;
       OMNIMEM_DEBUG=1 shows the traceback of an unexpected one)
  130  interrupted (Ctrl-C)

output: coloured tables on a terminal, plain aligned text when piped or with NO_COLOR=1
(FORCE_COLOR=1 forces colour); --json for scripts; progress bars on stderr, only on a terminal.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnimem", description="Long-term multimodal memory for AI agents.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)

    add = sub.add_parser("add", help="remember a text")
    add.add_argument("memory", help="memory directory (created when missing)")
    add.add_argument("text")
    add.add_argument("--speaker")
    add.add_argument("--timestamp", help="ISO-8601 event time")
    add.add_argument("--session")

    search = sub.add_parser("search", help="search a memory (a table of hits)")
    search.add_argument("memory")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=10)
    search.add_argument("--json", action="store_true", help="one JSON object per hit")

    context = sub.add_parser("context", help="the evidence for a query packed into a token budget (GRASP)")
    context.add_argument("memory")
    context.add_argument("query")
    context.add_argument(
        "--budget", type=int, default=1_024, dest="budget_tokens", metavar="TOKENS", help="default 1024"
    )
    context.add_argument(
        "--session", action="append", dest="sessions", metavar="S", help="only this session (repeatable)"
    )
    context.add_argument("--json", action="store_true", help="the Context as one JSON object")

    ingest = sub.add_parser("ingest", help="remember a file or every file of a folder (by content type)")
    ingest.add_argument("memory")
    ingest.add_argument("path")
    _job_flags(ingest, "read files on")
    ingest.add_argument("--json", action="store_true", help="the report (files added, skipped, failed) as JSON")

    ask = sub.add_parser("ask", help="answer a question from memory with cited evidence (packaged SmolLM2)")
    ask.add_argument("memory")
    ask.add_argument("question")
    ask.add_argument("--budget", type=int, default=1_024, help="evidence token budget")
    ask.add_argument("--no-llm", action="store_true", help="print the evidence only")
    ask.add_argument("--json", action="store_true")

    chat = sub.add_parser("chat", help="chat with memory (REPL; an empty line or Ctrl-D ends it)")
    chat.add_argument("memory")
    chat.add_argument("--user", default="user")
    chat.add_argument("--session", default=None)

    vqa = sub.add_parser("video-qa", help="ask questions about a video (ingested on first use)")
    vqa.add_argument("memory")
    vqa.add_argument("video")
    vqa.add_argument("questions", nargs="+")

    check = sub.add_parser("check", help="check a memory's consistency and repair index drift")
    check.add_argument("memory")
    check.add_argument("--no-repair", action="store_true")
    check.add_argument("--json", action="store_true", help="the report as one JSON object")

    graph = sub.add_parser("graph", help="build, export and inspect the M3KG knowledge graph")
    gsub = graph.add_subparsers(dest="graph_command", required=True)
    gbuild = gsub.add_parser("build", help="extract the graph from every item not yet processed (resumable)")
    gbuild.add_argument("memory")
    gbuild.add_argument("--agentic", action="store_true", help="LLM agents (packaged SmolLM2) instead of spaCy rules")
    gbuild.add_argument("--workers", type=int, default=None, help="parsing processes (default 1), or Ray workers")
    gbuild.add_argument("--ray", nargs="?", const="", metavar="ADDRESS", help=RAY_HELP.format(what="parse batches on"))
    gbuild.add_argument("--json", action="store_true", help="the job report as JSON")
    gexport = gsub.add_parser("export", help="write the graph, or an entity neighbourhood, as GraphML, JSON or HTML")
    gexport.add_argument("memory")
    gexport.add_argument("--format", choices=("graphml", "json", "html"), required=True)
    gexport.add_argument("--entity", action="append", default=[], metavar="NAME")
    gexport.add_argument("--hops", type=int, default=2)
    gexport.add_argument("-o", "--output", required=True)
    gstats = gsub.add_parser("stats", help="graph counts, coverage and job progress")
    gstats.add_argument("memory")
    gstats.add_argument("--json", action="store_true", help="the counts as JSON")

    consolidate = sub.add_parser("consolidate", help="episodic -> semantic: graph, facts, duplicates, summaries")
    consolidate.add_argument("memory")
    _job_flags(consolidate, "parse the graph step on")
    consolidate.add_argument("--json", action="store_true", help="what each step changed, as JSON")

    forget = sub.add_parser("forget", help="privacy delete: items and everything derived only from them")
    forget.add_argument("memory")
    forget.add_argument("ids", nargs="*")
    forget.add_argument("--session", action="append", dest="sessions")
    forget.add_argument("--speaker", action="append", dest="speakers")
    forget.add_argument("--before", help="ISO-8601: items whose event time is earlier")

    serve = sub.add_parser("serve", help="REST server over the memories under ROOT (OpenAPI at /docs)")
    serve.add_argument("root")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key", default=os.environ.get("OMNIMEM_API_KEY"), help="default: $OMNIMEM_API_KEY")
    serve.add_argument("--allowed-root", help="ingest-by-path is confined to this directory")
    serve.add_argument("--max-open", type=int, default=16, help="memories kept open at once (default: 16)")
    serve.add_argument(
        "--config", help="a MemoryConfig JSON (encoder, GRASP stages ...) for the memories the server creates;"
        " existing memories keep their own saved config",
    )  # fmt: skip

    keys = sub.add_parser("keys", help="scoped API keys of a server ROOT: add (printed once), list, revoke")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kadd = ksub.add_parser("add", help="add a key for some memories and print it (it is not stored: copy it now)")
    kadd.add_argument("root")
    kadd.add_argument("name", help="a label for the key, e.g. alice-laptop")
    kadd.add_argument("--memory", action="append", dest="memories", required=True,
                      help="a memory the key may use ('*': every memory); repeat for more")  # fmt: skip
    kadd.add_argument("--read-only", action="store_true", help="search and read only (default: read-write)")
    klist = ksub.add_parser("list", help="the keys: name, memories, rights, created (never the keys themselves)")
    klist.add_argument("root")
    klist.add_argument("--json", action="store_true")
    krevoke = ksub.add_parser("revoke", help="delete a key; running servers refuse it at once")
    krevoke.add_argument("root")
    krevoke.add_argument("name")

    export = sub.add_parser("export", help="write a whole memory to a JSON-lines file (.gz: compressed)")
    export.add_argument("memory", help="a memory directory or a postgresql:// URL")
    export.add_argument("file")
    export.add_argument("--json", action="store_true", help="the counts and checksum as JSON")
    load = sub.add_parser(
        "import", help="load a JSON-lines file of items (resumable), or create a memory from an export file"
    )
    load.add_argument("file", help="items, one JSON object per line ({text, speaker?, ..., vector?}), or an export")
    load.add_argument("memory", help="a memory directory or a postgresql:// URL (new, for an export)")
    load.add_argument("--batch", type=int, default=512, help="items per transaction (default 512)")
    load.add_argument("--no-extract", action="store_true", help="no graph extraction now (run 'graph build' later)")
    load.add_argument("--json", action="store_true", help="the report as JSON")
    migrate = sub.add_parser("migrate", help="copy a whole memory to another backend, verified (counts, checksum)")
    migrate.add_argument("source", help="a memory directory or a postgresql:// URL")
    migrate.add_argument("target", help="a new memory directory or a postgresql:// URL")
    migrate.add_argument("--json", action="store_true", help="the verified counts and checksum as JSON")

    sub.add_parser("eval", help="retrieval evaluations (see python -m omnimem.eval --help)", add_help=False)
    return parser


RAY_HELP = (
    "{what} a Ray cluster: no ADDRESS starts a local one, 'auto' joins this machine's, ray://HOST:10001"
    " or HOST:6379 joins that one (pip install 'omnimem[ray]')"
)


def _job_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--ray", nargs="?", const="", metavar="ADDRESS", help=RAY_HELP.format(what=what))
    parser.add_argument(
        "--workers", type=int, default=None,
        help="workers (Ray: default the cluster's CPUs; without --ray, N > 1 spawns N local processes)",
    )  # fmt: skip


@contextmanager
def _executor(args: argparse.Namespace) -> Iterator[Any]:
    """The executor the job flags ask for (None: the job runs in this process, as before)."""
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if args.ray is not None:
        from omnimem.executors_ray import RayExecutor

        with RayExecutor(args.ray or None, num_workers=args.workers) as executor:
            yield executor
    elif args.workers is not None and args.workers > 1:
        from omnimem.executors import InProcessExecutor

        yield InProcessExecutor(args.workers)
    else:
        yield None


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (see the module docstring). Errors never print a traceback."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["eval"]:
            from omnimem.eval.__main__ import main as eval_main

            return eval_main(argv[1:])
        args = _parser().parse_args(argv)
        logging.basicConfig(level=logging.WARNING)
        commands = {
            "add": _add, "search": _search, "context": _context, "ingest": _ingest, "ask": _ask, "chat": _chat,
            "video-qa": _video_qa, "check": _check, "graph": _graph, "consolidate": _consolidate,
            "forget": _forget, "serve": _serve, "keys": _keys, "export": _export, "import": _import,
            "migrate": _migrate,
        }  # fmt: skip
        return commands[args.command](args)
    except KeyboardInterrupt:
        newline = "\n" if sys.stderr.isatty() else ""  # past a progress bar or the terminal's ^C
        print(f"{newline}omnimem: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (OmnimemError, OSError) as e:
        _error(str(e))
        return EXIT_ERROR
    except Exception as e:  # a bug or a dependency's error: still one line, unless asked for the traceback
        if os.environ.get("OMNIMEM_DEBUG"):
            raise
        _error(f"{type(e).__name__}: {e} (OMNIMEM_DEBUG=1 shows the traceback)")
        return EXIT_ERROR


def _error(message: str) -> None:
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"omnimem: error: {first}", file=sys.stderr)


def _progress() -> bool | None:
    """What the library's jobs take as ``progress``: None draws their tqdm bar (stderr is a
    terminal), False draws nothing (piped, redirected, under a script)."""
    return None if sys.stderr.isatty() else False


def _print_json(value: Any, *, indent: int | None = None) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=indent))


def _add(args: argparse.Namespace) -> int:
    from omnimem.memory import Memory

    with Memory.open(args.memory) as mem:
        (item_id,) = mem.add(args.text, speaker=args.speaker, timestamp=args.timestamp, session=args.session)
    print(item_id)
    return EXIT_OK


def _search(args: argparse.Namespace) -> int:
    from omnimem.memory import Memory

    with Memory.open(args.memory, create=False) as mem:
        hits = mem.search(args.query, k=args.k)
    if args.json:
        for hit in hits:
            _print_json(asdict(hit))
    else:
        from omnimem.cli_render import write_hits

        write_hits(hits)
    return EXIT_OK


def _context(args: argparse.Namespace) -> int:
    from omnimem.memory import Memory

    with Memory.open(args.memory, create=False) as mem:
        ctx = mem.context(args.query, budget_tokens=args.budget_tokens, sessions=args.sessions)
    if args.json:
        print(ctx.to_json())
    else:
        from omnimem.cli_render import write_context

        write_context(ctx)
    return EXIT_OK


def _ingest(args: argparse.Namespace) -> int:
    from omnimem.memory import Memory

    with Memory.open(args.memory) as mem, _executor(args) as executor:
        report = mem.ingest(args.path, progress=_progress(), executor=executor)
    if args.json:
        files = {"added": report.added, "skipped": report.skipped, "failed": report.failed}
        counts = {k: len(v) for k, v in files.items()} | {"items": sum(report.added.values())}
        _print_json(files | {"notes": report.notes, "counts": counts})
    else:
        print(report)
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _serve(args: argparse.Namespace) -> int:
    from omnimem.config import load_config
    from omnimem.server import serve

    allowed = Path(args.allowed_root) if args.allowed_root else None
    config = load_config(args.config) if args.config else None
    serve(
        _root(args.root), host=args.host, port=args.port, api_key=args.api_key, allowed_root=allowed,
        max_open=args.max_open, config=config,
    )  # fmt: skip
    return EXIT_OK


def _root(root: str) -> str | Path:
    """A server root: a folder of memory directories, or a postgresql:// database URL."""
    return root if root.startswith(("postgresql://", "postgres://")) else Path(root)


def _keys(args: argparse.Namespace) -> int:
    from omnimem.server.keys import READ, READ_WRITE, KeyStore
    from omnimem.server.places import places_of

    store = KeyStore(places_of(_root(args.root)).home)
    if args.keys_command == "add":
        plain = store.create(args.name, memories=args.memories, rights=READ if args.read_only else READ_WRITE)
        print(plain)
        print(f"omnimem: key {args.name!r} created; it is shown only now, store it safely", file=sys.stderr)
    elif args.keys_command == "revoke":
        store.revoke(args.name)
        print(f"omnimem: key {args.name!r} revoked", file=sys.stderr)
    elif args.json:
        _print_json([asdict(k) for k in store.list()], indent=2)
    else:
        from omnimem.cli_render import Column, write_table

        columns = [Column("name"), Column("memories", flex=True), Column("rights"), Column("created")]
        rows = [[k.name, ", ".join(k.memories), k.rights, k.created_at[:19]] for k in store.list()]
        write_table(columns, rows, footer=f"{len(rows)} key(s) in {store.path}")
    return EXIT_OK


def _consolidate(args: argparse.Namespace) -> int:
    from omnimem.memory import Memory

    with Memory.open(args.memory, create=False) as mem, _executor(args) as executor:
        report = mem.consolidate(progress=_progress(), executor=executor)
    _print_report(report, args.json, indent=2)
    return EXIT_PROBLEMS if report.get("failures") else EXIT_OK


def _forget(args: argparse.Namespace) -> int:
    from omnimem.memory import Memory

    with Memory.open(args.memory, create=False) as mem:
        report = mem.forget(args.ids or None, sessions=args.sessions, speakers=args.speakers, before=args.before)
    _print_json(asdict(report))
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from omnimem.memory import Memory
    from omnimem.memory.transfer import export_memory

    with Memory.open(args.memory, create=False) as mem, _bar("export", len(mem)) as bar:
        trailer = export_memory(mem, args.file, progress=bar)
    _print_report({"file": args.file, **trailer["counts"], "checksum": trailer["checksum"]}, args.json, indent=2)
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    from omnimem.memory.bulk import import_items, is_export
    from omnimem.memory.transfer import import_memory

    if is_export(args.file):
        with _bar("import", None) as bar:
            trailer = import_memory(args.file, args.memory, progress=bar)
        _print_report(
            {"memory": args.memory, **trailer["counts"], "checksum": trailer["checksum"]}, args.json, indent=2
        )
        return EXIT_OK
    from omnimem.memory import Memory

    with Memory.open(args.memory) as mem, _bar("import", None) as bar:
        report = import_items(
            mem, args.file, batch=args.batch, extract=False if args.no_extract else None, progress=bar
        )
    out = asdict(report) | {
        "items_per_s": round(report.items_per_s, 1),
        "failed": {str(k): v for k, v in report.failed.items()},
    }
    _print_report(out, args.json, indent=2)
    return EXIT_PROBLEMS if report.failed else EXIT_OK


def _migrate(args: argparse.Namespace) -> int:
    from omnimem.memory.transfer import migrate_memory

    with _bar("migrate", None) as bar:
        trailer = migrate_memory(args.source, args.target, progress=bar)
    _print_report({"memory": args.target, **trailer["counts"], "checksum": trailer["checksum"]}, args.json, indent=2)
    return EXIT_OK


@contextmanager
def _bar(desc: str, total: int | None) -> Iterator[Any]:
    """A ``(done, total)`` callback drawing a tqdm bar on a terminal (nothing when piped)."""
    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="item", file=sys.stderr) as shown:

        def update(done: int, all_: int) -> None:
            shown.total = all_
            shown.update(done - shown.n)

        yield update


def _check(args: argparse.Namespace) -> int:
    from omnimem.memory import Memory

    with Memory.open(args.memory, create=False) as mem:
        report = mem.check(repair=not args.no_repair)
    _print_report(report, args.json)
    return EXIT_OK if report["ok"] else EXIT_PROBLEMS


def _print_report(report: dict[str, Any], as_json: bool, *, indent: int | None = None) -> None:
    if as_json:
        _print_json(report, indent=indent)
    else:
        from omnimem.cli_render import write_report

        write_report(report)


def _generator(disabled: bool = False):
    if disabled:
        return None
    from omnimem.vlm import create_generator

    return create_generator("smollm2")


def _ask(args: argparse.Namespace) -> int:
    from omnimem.memory import Memory
    from omnimem.server.answering import answer, retrieve

    with Memory.open(args.memory, create=False) as mem:
        result = answer(_generator(args.no_llm), args.question, retrieve(mem, args.question, budget_tokens=args.budget))
    if args.json:
        _print_json(asdict(result))
        return EXIT_OK
    if result.answer is not None:
        print(f"A: {result.answer}\n")
    from omnimem.cli_render import write_evidence

    write_evidence(result.evidence)
    return EXIT_OK


def _chat(args: argparse.Namespace) -> int:
    from omnimem.agents.chat import build_chat_agent, chat
    from omnimem.memory import Memory

    with Memory.open(args.memory) as mem:
        app = build_chat_agent(mem, _generator())
        interactive = sys.stdin.isatty()
        while True:
            if interactive:
                print(f"{args.user}> ", end="", flush=True)
            line = sys.stdin.readline()
            if not line or not line.strip():
                break
            state = chat(app, args.user, line.strip(), session=args.session)
            print(f"assistant: {state.get('answer', '')}", flush=True)
    return EXIT_OK


def _video_qa(args: argparse.Namespace) -> int:
    from omnimem.agents.video_qa import ask_video, build_video_qa_agent
    from omnimem.memory import Memory

    with Memory.open(args.memory) as mem:
        app = build_video_qa_agent(mem, _generator())
        for question in args.questions:
            state = ask_video(app, question, video=args.video)
            print(f"Q: {question}\nA: {state.get('answer', '')}", flush=True)
    return EXIT_OK


def _graph(args: argparse.Namespace) -> int:
    from omnimem.memory import Memory

    with Memory.open(args.memory, create=False) as mem:
        if args.graph_command == "build" and args.ray is not None:  # the fast job's batches on Ray
            if args.agentic:
                raise ConfigError("--ray runs the fast (spaCy) job; the agentic job runs in threads (--workers N)")
            from omnimem.graph.jobs import build_graph as build_fast

            with _executor(args) as executor:
                report = build_fast(mem, progress=_progress(), executor=executor)
        elif args.graph_command == "build":
            from omnimem.agents.kg_build import build_graph

            report = build_graph(mem, agentic=args.agentic, workers=args.workers or 1, progress=_progress())
        if args.graph_command == "build":
            _print_report(report.to_dict(), args.json, indent=2)
            return EXIT_PROBLEMS if report.failures else EXIT_OK
        if args.graph_command == "export":
            from omnimem.graph.export import export_graph

            path = export_graph(mem.graph, format=args.format, output=args.output, entity=args.entity, hops=args.hops)
            print(path)
            return EXIT_OK
        from omnimem.graph.jobs import graph_stats

        stats = graph_stats(mem)
    _print_report(stats, args.json, indent=2)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
