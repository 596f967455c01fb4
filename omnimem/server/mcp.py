"""An MCP server exposing one memory's ``search``, ``add`` and ``ask`` as tools.

    python -m omnimem.server.mcp MEMORY_DIR          # stdio transport, for MCP clients (Claude, IDEs)

In Python: ``create_mcp_server(mem, generator=...)`` returns the SDK's server object (``MCPServer``
in mcp 2.x, ``FastMCP`` in 1.x); ``run_mcp(path)`` opens the memory and serves it over stdio. Tool
calls share one lock, so a client's concurrent calls never run two operations on the memory at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from omnimem.errors import OmnimemError, missing_extra
from omnimem.server.answering import answer, retrieve

__all__ = ["create_mcp_server", "run_mcp", "main"]

log = logging.getLogger(__name__)

_HIT_FIELDS = ("id", "score", "text", "modality", "source", "session", "speaker", "event_time", "t_start", "t_end")


def _sdk() -> tuple[Any, type[Exception]]:
    """The SDK's server class and the error a tool raises to report a failure to the client."""
    try:
        from mcp.server.mcpserver import MCPServer  # mcp >= 2
        from mcp.server.mcpserver.exceptions import ToolError
    except ImportError:
        try:
            from mcp.server.fastmcp import FastMCP as MCPServer  # mcp 1.x
            from mcp.server.fastmcp.exceptions import ToolError
        except ImportError as e:
            raise missing_extra("mcp", "mcp") from e
    return MCPServer, ToolError


def create_mcp_server(mem: Any, *, generator: Any = None, name: str = "omnimem") -> Any:
    """An MCP server with the tools ``search``, ``add`` and ``ask`` over ``mem``.

    ``generator`` (an ``omnimem.vlm`` Generator) writes ``ask``'s answer; without one ``ask`` returns
    the evidence and ``answer: null`` so the calling model can answer from it.
    """
    server_class, tool_error = _sdk()
    server = server_class(name, instructions="Long-term memory: search it, add to it, ask it questions.")
    lock = threading.Lock()

    @contextmanager
    def guarded() -> Iterator[None]:
        """Hold the memory; a library error reaches the client as the tool's error text."""
        with lock:
            try:
                yield
            except OmnimemError as e:
                raise tool_error(f"{type(e).__name__}: {e}") from e

    @server.tool()
    def search(query: str, k: int = 10) -> dict[str, Any]:
        """Search the memory; returns the k best matching items, best first."""
        with guarded():
            hits = mem.search(query, k=k)
        return {"hits": [{f: getattr(h, f) for f in _HIT_FIELDS} for h in hits]}

    @server.tool()
    def add(text: str, speaker: str | None = None, session: str | None = None, timestamp: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Remember a text (a fact, a note, a conversation turn); returns its id."""
        with guarded():
            ids = mem.add(text, speaker=speaker, session=session, timestamp=timestamp)
        return {"ids": ids}

    @server.tool()
    def ask(question: str, budget_tokens: int = 1024) -> dict[str, Any]:
        """Answer a question from the memory, citing evidence as [E1], [E2] ...; answer is null when
        the server has no generator (answer from the evidence yourself)."""
        with guarded():
            rows = retrieve(mem, question, budget_tokens=budget_tokens)
            result = answer(generator, question, rows)
        return {
            "answer": result.answer,
            "citations": [c.id for c in result.citations],
            "evidence": [asdict(e) for e in result.evidence],
        }

    return server


def run_mcp(path: str | Path, *, generator: Any = None, encoder: Any = None) -> None:
    """Serve the memory at ``path`` (created when missing) over stdio until the client disconnects."""
    from omnimem.memory import Memory

    with Memory.open(path, encoder=encoder) as mem:
        create_mcp_server(mem, generator=generator).run("stdio")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omnimem.server.mcp", description=__doc__.splitlines()[0])
    parser.add_argument("memory", help="memory directory (created when missing)")
    parser.add_argument("--generator", help="a generator name for ask, e.g. smollm2 (default: none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)  # stdout carries the protocol
    generator = None
    if args.generator:
        from omnimem.vlm import create_generator

        generator = create_generator(args.generator)
    run_mcp(args.memory, generator=generator)
    return 0


if __name__ == "__main__":
    sys.exit(main())
