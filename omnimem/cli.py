"""The ``omnimem`` command: a thin shell over the library; flags mirror the Python kwargs.

    omnimem add MEMORY TEXT [--speaker S] [--timestamp T] [--session S]
    omnimem search MEMORY QUERY [--k 10] [--json]
    omnimem ingest MEMORY PATH [--json]                 (a file or a folder; progress bar on a terminal)
    omnimem ask MEMORY QUESTION [--budget 1024] [--no-llm] [--json]
    omnimem chat MEMORY [--user NAME]                   (an interactive REPL with memory; reads stdin)
    omnimem video-qa MEMORY VIDEO QUESTION ...
    omnimem check MEMORY [--no-repair] [--json]
    omnimem consolidate MEMORY
    omnimem forget MEMORY [ID ...] [--session S] [--speaker S] [--before T]
    omnimem graph build MEMORY [--agentic] [--workers N]
    omnimem graph export MEMORY --format graphml|json|html [--entity NAME ...] [--hops 2] -o FILE
    omnimem graph stats MEMORY
    omnimem serve ROOT [--host 127.0.0.1] [--port 8000] [--api-key KEY] [--allowed-root DIR]
    omnimem eval locomo|musique ...        (same as python -m omnimem.eval)

Exit codes: 0 success, 1 a check found problems it could not repair, 2 bad input or a library error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path

from omnimem.errors import OmnimemError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omnimem", description="Long-term multimodal memory for AI agents.")
    sub = parser.add_subparsers(dest="command", required=True)

    add = sub.add_parser("add", help="remember a text")
    add.add_argument("memory", help="memory directory (created when missing)")
    add.add_argument("text")
    add.add_argument("--speaker")
    add.add_argument("--timestamp", help="ISO-8601 event time")
    add.add_argument("--session")

    search = sub.add_parser("search", help="search a memory")
    search.add_argument("memory")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=10)
    search.add_argument("--json", action="store_true", help="one JSON object per hit")

    ingest = sub.add_parser("ingest", help="remember a file or every file of a folder (by content type)")
    ingest.add_argument("memory")
    ingest.add_argument("path")
    ingest.add_argument("--json", action="store_true")

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
    check.add_argument("--json", action="store_true")

    graph = sub.add_parser("graph", help="build, export and inspect the M3KG knowledge graph")
    gsub = graph.add_subparsers(dest="graph_command", required=True)
    gbuild = gsub.add_parser("build", help="extract the graph from every item not yet processed (resumable)")
    gbuild.add_argument("memory")
    gbuild.add_argument("--agentic", action="store_true", help="LLM agents (packaged SmolLM2) instead of spaCy rules")
    gbuild.add_argument("--workers", type=int, default=1)
    gexport = gsub.add_parser("export", help="write the graph, or an entity neighbourhood, as GraphML, JSON or HTML")
    gexport.add_argument("memory")
    gexport.add_argument("--format", choices=("graphml", "json", "html"), required=True)
    gexport.add_argument("--entity", action="append", default=[], metavar="NAME")
    gexport.add_argument("--hops", type=int, default=2)
    gexport.add_argument("-o", "--output", required=True)
    gstats = gsub.add_parser("stats", help="graph counts, coverage and job progress")
    gstats.add_argument("memory")

    consolidate = sub.add_parser("consolidate", help="episodic -> semantic: graph, facts, duplicates, summaries")
    consolidate.add_argument("memory")

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

    sub.add_parser("eval", help="retrieval evaluations (see python -m omnimem.eval --help)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["eval"]:
        from omnimem.eval.__main__ import main as eval_main

        return eval_main(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from omnimem.memory import Memory

    try:
        if args.command == "add":
            with Memory.open(args.memory) as mem:
                (item_id,) = mem.add(args.text, speaker=args.speaker, timestamp=args.timestamp, session=args.session)
                print(item_id)
            return 0
        if args.command == "search":
            with Memory.open(args.memory, create=False) as mem:
                for hit in mem.search(args.query, k=args.k):
                    if args.json:
                        print(json.dumps(asdict(hit), ensure_ascii=False))
                    else:
                        who = f"{hit.speaker}: " if hit.speaker else ""
                        print(f"{hit.score:.3f}  {hit.id[:12]}  {who}{hit.text}")
            return 0
        if args.command == "graph":
            return _graph(args)
        if args.command == "ingest":
            with Memory.open(args.memory) as mem:
                report = mem.ingest(args.path)
            if args.json:
                print(json.dumps({"added": report.added, "skipped": report.skipped, "failed": report.failed}))
            else:
                print(report)
            return 0 if report.ok else 1
        if args.command == "ask":
            return _ask(args)
        if args.command == "chat":
            return _chat(args)
        if args.command == "video-qa":
            return _video_qa(args)
        if args.command == "serve":
            from omnimem.server import serve

            allowed = Path(args.allowed_root) if args.allowed_root else None
            serve(Path(args.root), host=args.host, port=args.port, api_key=args.api_key, allowed_root=allowed)
            return 0
        if args.command == "consolidate":
            with Memory.open(args.memory, create=False) as mem:
                print(json.dumps(mem.consolidate(progress=None), indent=2))
            return 0
        if args.command == "forget":
            with Memory.open(args.memory, create=False) as mem:
                ids = args.ids or None
                report = mem.forget(ids, sessions=args.sessions, speakers=args.speakers, before=args.before)
                print(json.dumps({"items": report.items, "blobs": report.blobs, "triplets": report.triplets}))
            return 0
        if args.command == "check":
            with Memory.open(args.memory, create=False) as mem:
                report = mem.check(repair=not args.no_repair)
            print(json.dumps(report, indent=None if args.json else 2))
            return 0 if report["ok"] else 1
    except OmnimemError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 2  # pragma: no cover - argparse rejects unknown commands first


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
        print(json.dumps(asdict(result), ensure_ascii=False))
        return 0
    if result.answer is not None:
        print(f"A: {result.answer}")
    for e in result.evidence:
        span = f" {e.span[0]:.1f}-{e.span[1]:.1f}s" if e.span else ""
        print(f"  [{e.id}] ({e.kind}{span}) {e.text}")
    return 0


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
    return 0


def _video_qa(args: argparse.Namespace) -> int:
    from omnimem.agents.video_qa import ask_video, build_video_qa_agent
    from omnimem.memory import Memory

    with Memory.open(args.memory) as mem:
        app = build_video_qa_agent(mem, _generator())
        for question in args.questions:
            state = ask_video(app, question, video=args.video)
            print(f"Q: {question}\nA: {state.get('answer', '')}", flush=True)
    return 0


def _graph(args: argparse.Namespace) -> int:
    from omnimem.memory import Memory

    with Memory.open(args.memory, create=False) as mem:
        if args.graph_command == "build":
            from omnimem.agents.kg_build import build_graph

            report = build_graph(mem, agentic=args.agentic, workers=args.workers)
            print(json.dumps(report.to_dict(), indent=2))
            return 0 if not report.failures else 1
        if args.graph_command == "export":
            from omnimem.graph.export import export_graph

            path = export_graph(mem.graph, format=args.format, output=args.output, entity=args.entity, hops=args.hops)
            print(path)
            return 0
        from omnimem.graph.jobs import graph_stats

        print(json.dumps(graph_stats(mem), indent=2))
        return 0


if __name__ == "__main__":
    sys.exit(main())
