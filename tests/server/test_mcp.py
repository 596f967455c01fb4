"""The MCP server's tools: called in-process through the SDK's client, and over stdio in a subprocess."""

from __future__ import annotations

import sys

import anyio
import pytest

pytest.importorskip("mcp")

from mcp.client import Client  # noqa: E402

from omnimem.server.mcp import create_mcp_server  # noqa: E402


def _structured(result):
    assert not result.is_error, result.content
    return result.structured_content


async def _exercise(target) -> tuple[set[str], dict, dict, dict]:
    with anyio.fail_after(60):
        async with Client(target) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            added = _structured(
                await client.call_tool("add", {"text": "Alice moved to Paris in 2021", "speaker": "Bob"})
            )
            found = _structured(await client.call_tool("search", {"query": "Where did Alice move?", "k": 3}))
            asked = _structured(await client.call_tool("ask", {"question": "Where does Alice live?"}))
            bad = await client.call_tool("search", {"query": "   "})
            assert bad.is_error and "non-empty" in bad.content[0].text
    return tools, added, found, asked


def test_tools_in_process(mem):
    server = create_mcp_server(mem)
    tools, added, found, asked = anyio.run(_exercise, server)
    assert tools == {"search", "add", "ask"}
    assert found["hits"][0]["id"] == added["ids"][0] and found["hits"][0]["speaker"] == "Bob"
    items = [e for e in asked["evidence"] if e["kind"] == "item"]  # GRASP context: facts may come first
    assert asked["answer"] is None and items[0]["item_id"] == added["ids"][0]


def test_ask_with_a_generator(mem):
    from omnimem.vlm.base import Generation

    class Scripted:
        name = "scripted"

        def generate(self, messages, **_):
            return Generation("Paris [E1].", 10, 3, 0.01)

    mem.add("Alice moved to Paris in 2021")
    server = create_mcp_server(mem, generator=Scripted())

    async def ask():
        async with Client(server) as client:
            return _structured(await client.call_tool("ask", {"question": "Where does Alice live?"}))

    out = anyio.run(ask)
    assert out["answer"] == "Paris [E1]." and out["citations"] == ["E1"]


def test_tools_over_stdio(tmp_path, hash_encoder):
    from mcp.client.stdio import StdioServerParameters

    import omnimem

    omnimem.Memory.open(tmp_path / "mem", encoder=hash_encoder).close()  # saved config: the hash encoder
    params = StdioServerParameters(command=sys.executable, args=["-m", "omnimem.server.mcp", str(tmp_path / "mem")])
    tools, added, found, _ = anyio.run(_exercise, params)
    assert tools == {"search", "add", "ask"} and found["hits"][0]["id"] == added["ids"][0]
