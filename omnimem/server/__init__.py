"""Network interfaces over the library: the REST server (FastAPI) and the MCP server.

``create_app(root, ...)`` / ``serve(root, host, port, ...)`` live in :mod:`omnimem.server.app`;
``create_mcp_server(mem, ...)`` / ``run_mcp(path)`` in :mod:`omnimem.server.mcp`; the scoped API keys
(``KeyStore(root)``) in :mod:`omnimem.server.keys`, their checks in :mod:`omnimem.server.auth`. They are imported
lazily so ``import omnimem.server`` needs neither FastAPI nor the MCP SDK
(``pip install 'omnimem[server]'``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve", "create_mcp_server", "run_mcp", "KeyStore"]

_LAZY = {
    "create_app": "omnimem.server.app",
    "serve": "omnimem.server.app",
    "create_mcp_server": "omnimem.server.mcp",
    "run_mcp": "omnimem.server.mcp",
    "KeyStore": "omnimem.server.keys",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'omnimem.server' has no attribute {name!r}")
