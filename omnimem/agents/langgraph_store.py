"""A LangGraph ``BaseStore`` backed by an omnimem :class:`~omnimem.memory.Memory`.

An existing LangGraph agent changes one line to get omnimem's long-term memory::

    graph = builder.compile(store=OmnimemStore(mem))   # was: store=InMemoryStore()

Each ``(namespace, key)`` is one omnimem item: its text is the value's text fields (so it is
embedded, BM25-indexed and searchable next to everything else in the memory), its ``session`` is the
namespace joined with ``/`` and its metadata keeps the value's JSON, the namespace, the key and the
timestamps. ``search(query=...)`` goes through :meth:`Memory.search` (dense + BM25) restricted to the
sessions of the namespace prefix (so a namespace's recall does not fall as other namespaces grow),
then ``filter`` on the values; ``search`` without a query lists by most recently updated.

This module imports langgraph when imported: import it only where the ``agents`` extra is installed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from omnimem.errors import ConfigError, missing_extra

try:
    from langgraph.store.base import (  # noqa: TID253 - this module is the langgraph adapter
        BaseStore,
        GetOp,
        Item,
        ListNamespacesOp,
        MatchCondition,
        PutOp,
        Result,
        SearchItem,
        SearchOp,
    )
except ImportError as e:  # pragma: no cover - depends on the environment
    raise missing_extra("langgraph", "agents") from e

__all__ = ["OmnimemStore"]

SOURCE = "langgraph"  # the ``source`` of every item this store writes
_META = "langgraph"  # the metadata key holding namespace, key, value and timestamps
_TEXT_FIELDS = ("text", "content", "memory", "summary", "description", "title", "name", "note")


class OmnimemStore(BaseStore):
    """LangGraph's key-value + search store over an omnimem ``Memory`` (which stays the caller's to close)."""

    supports_ttl = False  # omnimem forgets by policy (Memory.prune), not by per-item TTL

    def __init__(self, memory: Any, *, search_pool: int = 50) -> None:
        if isinstance(search_pool, bool) or not isinstance(search_pool, int) or search_pool < 1:
            raise ConfigError(f"search_pool must be a positive int, got {search_pool!r}")
        self.memory = memory
        self.search_pool = search_pool  # hits fetched from Memory.search before namespace filtering
        self._lock = threading.RLock()  # one batch at a time: abatch runs batches in worker threads

    # -- the two required methods --------------------------------------------------------------
    def batch(self, ops: Iterable[Any]) -> list[Result]:
        """Run ``ops`` in order; one result per op (``None`` for puts)."""
        with self._lock:
            return [self._run(op) for op in ops]

    async def abatch(self, ops: Iterable[Any]) -> list[Result]:
        ops = list(ops)
        return await asyncio.get_running_loop().run_in_executor(None, self.batch, ops)

    def _run(self, op: Any) -> Result:
        if isinstance(op, GetOp):
            return self._get(op.namespace, op.key)
        if isinstance(op, PutOp):
            return self._put(op)
        if isinstance(op, SearchOp):
            return self._search(op)
        if isinstance(op, ListNamespacesOp):
            return self._list_namespaces(op)
        raise ConfigError(
            f"unknown store operation {type(op).__name__}; use GetOp, PutOp, SearchOp or ListNamespacesOp"
        )

    # -- operations ------------------------------------------------------------------------------
    def _get(self, namespace: tuple[str, ...], key: str) -> Item | None:
        found = self.memory.store.get([item_id(namespace, key)])[0]
        return _to_item(found.metadata) if found is not None else None

    def _put(self, op: PutOp) -> None:
        namespace, key, value = tuple(op.namespace), op.key, op.value
        id = item_id(namespace, key)
        existing = self.memory.store.get([id])[0]
        if value is None:
            if existing is not None:
                self.memory.forget(id)
            return None
        if not isinstance(value, Mapping):
            raise ConfigError(f"a store value must be a dict, got {type(value).__name__}")
        now = datetime.now(timezone.utc).isoformat()
        created = existing.metadata.get(_META, {}).get("created_at", now) if existing is not None else now
        meta = {
            _META: {
                "namespace": list(namespace),
                "key": key,
                "value": dict(value),
                "created_at": created,
                "updated_at": now,
            }
        }
        text = value_text(value, op.index)
        if existing is not None:
            self.memory.update(id, text=text, metadata=meta)
        else:
            self.memory.add(text, id=id, session=_session(namespace), source=SOURCE, metadata=meta)
        return None

    def _search(self, op: SearchOp) -> list[SearchItem]:
        prefix = tuple(op.namespace_prefix)
        wanted = op.offset + op.limit
        if not op.query:
            rows = [(meta, None) for meta in self._all()]
            rows.sort(key=lambda r: r[0][_META]["updated_at"], reverse=True)
            return self._keep(rows, prefix, op.filter)[op.offset : wanted]
        sessions = self._sessions(prefix)  # the namespace is a filter inside the search, not after it
        if not sessions:
            return []
        k = max(self.search_pool, 4 * wanted)
        while True:
            hits = self.memory.search(op.query, k=k, sessions=sessions)
            out = self._keep([(h.metadata, h.score) for h in hits if h.source == SOURCE], prefix, op.filter)
            if len(out) >= wanted or len(hits) < k:
                return out[op.offset : wanted]
            k *= 4  # value filters dropped too many: look further down the same namespaces

    @staticmethod
    def _keep(rows: list[tuple[Any, float | None]], prefix: tuple[str, ...], where: Any) -> list[SearchItem]:
        out = []
        for meta, score in rows:
            data = meta.get(_META)
            if not data or tuple(data["namespace"][: len(prefix)]) != prefix:
                continue
            if where and not all(_matches(data["value"].get(k), v) for k, v in where.items()):
                continue
            out.append(_to_item(meta, score, search=True))
        return out

    def _sessions(self, prefix: tuple[str, ...]) -> list[str]:
        """The omnimem sessions of the namespaces under ``prefix``."""
        return self.memory.store.session_names(source=SOURCE, prefix=_session(prefix) if prefix else None)

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        spaces = {tuple(meta[_META]["namespace"]) for meta in self._all()}
        if op.match_conditions:
            spaces = {ns for ns in spaces if all(_ns_matches(c, ns) for c in op.match_conditions)}
        if op.max_depth is not None:
            spaces = {ns[: op.max_depth] for ns in spaces}
        return sorted(spaces)[op.offset : op.offset + op.limit]

    def _all(self) -> list[dict[str, Any]]:
        """Metadata of every item this store wrote."""
        items = self.memory.store.get(self.memory.store.select(sources=[SOURCE]))
        return [i.metadata for i in items if i is not None and _META in i.metadata]


def item_id(namespace: Sequence[str], key: str) -> str:
    """The omnimem item id of ``(namespace, key)``: stable, so a put overwrites in place."""
    digest = hashlib.sha256(json.dumps([list(namespace), key], ensure_ascii=False).encode()).hexdigest()
    return f"lg-{digest[:32]}"


def value_text(value: Mapping[str, Any], index: Any = None) -> str:
    """The searchable text of a value: the fields ``index`` names (dotted paths), else its usual text
    fields, else every string in it, else its JSON."""
    if isinstance(index, (list, tuple)) and index:
        parts = [_text_at(value, path) for path in index]
    else:
        parts = [str(value[f]) for f in _TEXT_FIELDS if isinstance(value.get(f), (str, int, float))]
        if not parts:
            parts = [v for v in value.values() if isinstance(v, str)]
    text = "\n".join(p for p in parts if p and p.strip())
    return text or json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _text_at(value: Any, path: str) -> str:
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, list) and part == "*":
            return " ".join(str(v) for v in value)
        else:
            return ""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _session(namespace: Sequence[str]) -> str:
    return "langgraph:" + "/".join(namespace)


def _to_item(meta: Mapping[str, Any], score: float | None = None, *, search: bool = False) -> Any:
    """A LangGraph ``Item`` (``SearchItem`` with its score for searches) from an item's metadata."""
    data = meta[_META]
    fields = dict(
        namespace=tuple(data["namespace"]), key=data["key"], value=data["value"],
        created_at=datetime.fromisoformat(data["created_at"]), updated_at=datetime.fromisoformat(data["updated_at"]),
    )  # fmt: skip
    return SearchItem(**fields, score=score) if search else Item(**fields)


def _matches(actual: Any, wanted: Any) -> bool:
    """LangGraph's filter semantics: equality, nested dicts, or ``{"$gt": 3}``-style operators."""
    if isinstance(wanted, Mapping):
        if any(str(k).startswith("$") for k in wanted):
            return all(_compare(actual, op, v) for op, v in wanted.items())
        return isinstance(actual, Mapping) and all(_matches(actual.get(k), v) for k, v in wanted.items())
    return actual == wanted


def _compare(actual: Any, op: str, value: Any) -> bool:
    if op == "$eq":
        return actual == value
    if op == "$ne":
        return actual != value
    if op not in ("$gt", "$gte", "$lt", "$lte"):
        raise ConfigError(f"unsupported filter operator {op!r}; use $eq, $ne, $gt, $gte, $lt or $lte")
    try:
        a, b = float(actual), float(value)
    except (TypeError, ValueError):
        return False
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def _ns_matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    part = namespace[: len(path)] if condition.match_type == "prefix" else namespace[len(namespace) - len(path) :]
    return all(p == "*" or p == n for p, n in zip(path, part))
