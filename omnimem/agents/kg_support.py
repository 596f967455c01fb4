"""What the agentic M3KG builder is made of besides its graph: config, knowledge base, counted LLM calls,
item contexts.

M3KG-RAG (arXiv 2512.20136), "M3KG construction": the rewriter reads an item with its own context
(:func:`item_contexts`); the searcher looks concepts up in a local knowledge base
(:class:`KnowledgeBase`, a JSONL file of ``{name, description}``); every agent talks to the LLM
through :class:`LLMCalls`, which validates against a JSON schema, counts calls per step, and turns
a bad answer into a logged failure instead of a crash.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnimem.errors import ConfigError, CorruptInput, NotFound, OmnimemError
from omnimem.graph.normalize import concept_key
from omnimem.types import Item
from omnimem.vlm.base import Generation, Generator
from omnimem.vlm.structured import generate_json, parse_json, schema_errors

__all__ = ["KGAgentConfig", "KnowledgeBase", "LLMCalls", "item_contexts", "salvage_rows", "DESCRIBE"]

log = logging.getLogger(__name__)

DESCRIBE = ("named", "all", "none")  # which concepts get descriptions
_NOT_DESCRIBED = frozenset({"DATE", "TIME", "CARDINAL", "ORDINAL", "PERCENT", "QUANTITY", "MONEY"})


@dataclass(frozen=True)
class KGAgentConfig:
    """How the agentic builder batches, reflects and describes."""

    items_per_call: int = 4  # items per rewriter / extractor / triplet-inspector call
    concepts_per_call: int = 8  # concepts per searcher / selector / refiner / description-inspector call
    rewrite: bool = True  # run the rewriter (off: extract from the item's own text)
    describe: str = "named"  # which concepts get descriptions: "named" (entities), "all", "none"
    max_concepts: int = 32  # at most this many concepts described per batch of items
    min_score: float = 6.0  # inspector score (0-10) below which a step is re-run
    max_retries: int = 1  # inspector re-runs per step (then: fall back / keep the source text)
    json_retries: int = 1  # re-prompts of one malformed answer (generate_json retries)
    tokens_per_unit: int = 96  # answer tokens budgeted per item or concept in one call
    max_new_tokens: int = 768  # cap on answer tokens of one call
    max_triplets: int = 8  # at most this many triplets per item in one extractor answer
    temperature: float = 0.0  # sampling temperature (0 = greedy)
    max_text_chars: int = 1200  # characters of an item's text shown to the LLM
    context_window: int = 1  # neighbouring items of the same session / episode shown to the rewriter, each side
    llm_confidence: float = 0.7  # confidence of an LLM triplet whose ends appear in the item's text
    checkpoint: str | None = None  # LangGraph SQLite checkpoint file; None: <memory>/kg_agent.ckpt.sqlite

    def __post_init__(self) -> None:
        if self.items_per_call < 1 or self.concepts_per_call < 1:
            raise ConfigError("items_per_call and concepts_per_call must be >= 1")
        if self.describe not in DESCRIBE:
            raise ConfigError(f"describe must be one of {', '.join(DESCRIBE)}, got {self.describe!r}")
        if not 0 <= self.min_score <= 10:
            raise ConfigError(f"min_score must be in [0, 10], got {self.min_score}")
        if self.max_retries < 0 or self.json_retries < 0 or self.max_concepts < 0 or self.context_window < 0:
            raise ConfigError("max_retries, json_retries, max_concepts and context_window must be >= 0")
        if self.max_triplets < 1:
            raise ConfigError(f"max_triplets must be >= 1, got {self.max_triplets}")
        if self.tokens_per_unit < 8 or self.max_new_tokens < self.tokens_per_unit:
            raise ConfigError("tokens_per_unit must be >= 8 and max_new_tokens >= tokens_per_unit")
        if self.temperature < 0 or self.max_text_chars < 50:
            raise ConfigError("temperature must be >= 0 and max_text_chars >= 50")
        if not 0 < self.llm_confidence <= 1:
            raise ConfigError(f"llm_confidence must be in (0, 1], got {self.llm_confidence}")

    def describes(self, type_: str) -> bool:
        if self.describe == "none" or type_ in _NOT_DESCRIBED:
            return False
        return self.describe == "all" or type_ != "CONCEPT"


class KnowledgeBase:
    """Concept name -> descriptions (several for a homonym: "bank" the river side and the lender)."""

    def __init__(self, entries: Mapping[str, str | Sequence[str]] | None = None) -> None:
        self._by_key: dict[str, list[str]] = defaultdict(list)
        for name, descriptions in (entries or {}).items():
            for text in [descriptions] if isinstance(descriptions, str) else descriptions:
                self.add(name, text)

    def add(self, name: str, description: str) -> None:
        key, text = concept_key(name), " ".join(str(description).split())
        if key and text and text not in self._by_key[key]:
            self._by_key[key].append(text)

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike[str]) -> KnowledgeBase:
        """Read one ``{"name": ..., "description": ...}`` object per line (blank lines skipped)."""
        kb = cls()
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError as e:
            raise NotFound(f"knowledge base {path} does not exist; pass a JSONL file of {{name, description}}") from e
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                kb.add(row["name"], row["description"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise CorruptInput(
                    f'{path}:{n} is not a {{"name": ..., "description": ...}} JSON object ({e}); fix or drop the line'
                ) from e
        return kb

    @classmethod
    def coerce(cls, kb: KnowledgeBase | Mapping[str, Any] | str | os.PathLike[str] | None) -> KnowledgeBase:
        if kb is None:
            return cls()
        if isinstance(kb, KnowledgeBase):
            return kb
        if isinstance(kb, Mapping):
            return cls(kb)
        if isinstance(kb, (str, os.PathLike)):
            return cls.from_jsonl(kb)
        raise ConfigError(f"kb must be a KnowledgeBase, a dict or a JSONL path, got {type(kb).__name__}")

    def lookup(self, name: str) -> list[str]:
        return list(self._by_key.get(concept_key(name), ()))

    def __len__(self) -> int:
        return sum(map(len, self._by_key.values()))


class _Counted:
    """A generator proxy that counts calls (and serialises them behind a lock shared by workers)."""

    def __init__(self, generator: Generator, counter: Counter, step: str, lock: threading.Lock | None) -> None:
        self.name = getattr(generator, "name", "generator")
        self._generator, self._counter, self._step, self._lock = generator, counter, step, lock
        self.last_text = ""  # the latest answer, for salvaging its valid rows

    def generate(self, messages: Any, **options: Any) -> Generation:
        self._counter[self._step] += 1
        if self._lock is None:
            gen = self._generator.generate(messages, **options)
        else:
            with self._lock:
                gen = self._generator.generate(messages, **options)
        self.last_text = gen.text
        return gen


class LLMCalls:
    """Schema-validated LLM calls of the agents: counted per step, failures logged with the items' ids."""

    def __init__(self, generator: Generator, config: KGAgentConfig) -> None:
        self.generator = generator
        self.config = config
        # one local model is not thread-safe; a generator that is says so with `thread_safe = True`
        self.lock = None if getattr(generator, "thread_safe", False) else threading.Lock()

    def json(self, step: str, messages: Any, schema: Mapping[str, Any], *, units: int, ids: Sequence[str], calls: Counter, failures: list[dict[str, str]]) -> Any:  # fmt: skip
        """The parsed answer, or ``None`` after a bad one (logged, and a failure per id in ``failures``)."""
        cfg = self.config
        tokens = min(cfg.max_new_tokens, cfg.tokens_per_unit * max(1, units) + 32)
        before = calls[step]
        proxy = _Counted(self.generator, calls, step, self.lock)
        try:
            gen = generate_json(proxy, messages, schema, cfg.json_retries, max_new_tokens=tokens, temperature=cfg.temperature)  # fmt: skip
        except OmnimemError as e:  # CorruptInput after the retries, ConfigError for a prompt over n_ctx
            salvaged = salvage_rows(proxy.last_text, schema)
            if salvaged is not None:
                log.warning("M3KG %s: kept the valid rows of an invalid answer for item(s) %s: %s", step, ", ".join(ids), e)  # fmt: skip
                return salvaged
            log.warning("M3KG %s: bad model answer for item(s) %s: %s", step, ", ".join(ids), e)
            failures.extend({"item": i, "step": step, "message": str(e)} for i in ids)
            return None
        if calls[step] - before > 1:
            log.info("M3KG %s: valid answer after %d attempts for item(s) %s", step, calls[step] - before, ", ".join(ids))  # fmt: skip
        return gen.parsed


def salvage_rows(text: str, schema: Mapping[str, Any]) -> dict[str, list] | None:
    """The rows of an ``{key: [rows]}`` answer that each validate (a truncated or partly wrong answer
    of a small model); ``None`` when none does."""
    try:
        value = parse_json(text)
    except CorruptInput:
        return None
    (key,) = schema["properties"]
    rows = value.get(key) if isinstance(value, dict) else None
    if not isinstance(rows, list):
        return None
    row_schema = schema["properties"][key]["items"]
    kept = [row for row in rows if not schema_errors(row, row_schema)]
    return {key: kept} if kept else None


def item_contexts(store: Any, items: Sequence[Item], window: int) -> dict[str, dict[str, Any]]:
    """Each item's own context for the rewriter: speaker, title, modality and its neighbours' texts.

    Neighbours are the items of the same session (else episode) just before and after it in time,
    ``window`` each side.
    """
    out: dict[str, dict[str, Any]] = {}
    groups: dict[tuple[str, str], list[str]] = {}
    for item in items:
        ctx: dict[str, Any] = {"modality": item.modality if item.modality != "text" else None}
        ctx["speaker"] = item.speaker
        ctx["title"] = item.metadata.get("title") or None
        out[item.id] = ctx
        if window and (item.session or item.episode):
            key = ("session", item.session) if item.session else ("episode", item.episode)
            if key not in groups:
                groups[key] = store.in_order(**{key[0]: key[1]})
            rows = groups[key]
            pos = next((k for k, r in enumerate(rows) if r[0] == item.id), None)
            if pos is not None:
                ctx["before"] = " / ".join(r[1] for r in rows[max(0, pos - window) : pos] if r[1]) or None
                ctx["after"] = " / ".join(r[1] for r in rows[pos + 1 : pos + 1 + window] if r[1]) or None
    return out
