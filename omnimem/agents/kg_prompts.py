"""Prompts and JSON schemas of the M3KG construction agents, batched: several items or concepts per call.

M3KG-RAG (arXiv 2512.20136), "M3KG construction": one system prompt per agent (rewriter, extractor,
triplet inspector, searcher's LLM fallback, selector, refiner, description inspector). Each user
prompt lists its units as ``[1] ...``, ``[2] ...``; answers refer to those numbers (a small model
copies a short number far more reliably than a 32-digit id). Every answer is validated against the
schema here by :func:`omnimem.vlm.structured.generate_json`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["SYSTEM", "SCHEMAS", "rewrite_prompt", "extract_prompt", "inspect_triplets_prompt", "fill_prompt",
           "select_prompt", "refine_prompt", "inspect_descriptions_prompt", "messages", "schema_for"]  # fmt: skip

SYSTEM = {
    "rewrite": (
        "You are the M3KG rewriter. Rewrite each numbered text as knowledge-dense sentences: replace pronouns"
        " and vague words (I, she, it, this place) with the names its context gives (speaker, title,"
        " neighbouring texts). Keep every fact; add none that the text and its context do not state."
    ),
    "extract": (
        "You are the M3KG extractor. For each numbered text, list its facts as triplets: head and tail are"
        " short names or noun phrases, relation is a short verb phrase, sentence is the sentence of the text"
        " the fact comes from."
    ),
    "inspect_triplets": (
        "You are the M3KG triplet inspector. Score each numbered item from 0 to 10: 10 when its triplets"
        " state the text's facts correctly and completely, 0 when they are wrong or missing."
    ),
    "fill": (
        "You are the M3KG searcher. No knowledge source describes these concepts. Describe each numbered"
        " concept in one short encyclopedic sentence, as it is meant in its context."
    ),
    "select": (
        "You are the M3KG selector. Each numbered concept has candidate descriptions; choose the number of"
        " the candidate that fits the concept's context."
    ),
    "refine": (
        "You are the M3KG refiner. Adapt each numbered description to how the concept is mentioned in its"
        " context, in one sentence. Keep what is true of the concept; drop what does not fit."
    ),
    "inspect_descriptions": (
        "You are the M3KG description inspector. Score each numbered description from 0 to 10: 10 when it"
        " is correct for the concept as used in its context, 0 when it is wrong or describes something else."
    ),
}


def _array(key: str, props: dict[str, Any], required: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            key: {"type": "array", "items": {"type": "object", "properties": props, "required": list(required)}}
        },  # fmt: skip
        "required": [key],
    }


_INT = {"type": "integer"}
_STR = {"type": "string"}
_SCORE = {"type": "number", "minimum": 0, "maximum": 10}

SCHEMAS = {
    "rewrite": _array("texts", {"item": _INT, "text": _STR}, ["item", "text"]),
    "extract": _array(
        "triplets",
        {"item": _INT, "head": _STR, "relation": _STR, "tail": _STR, "sentence": _STR},
        ["item", "head", "relation", "tail"],
    ),  # fmt: skip
    "inspect_triplets": _array("scores", {"item": _INT, "score": _SCORE}, ["item", "score"]),
    "fill": _array("descriptions", {"concept": _INT, "description": _STR}, ["concept", "description"]),
    "select": _array("choices", {"concept": _INT, "choice": _INT}, ["concept", "choice"]),
    "refine": _array("descriptions", {"concept": _INT, "description": _STR}, ["concept", "description"]),
    "inspect_descriptions": _array("scores", {"concept": _INT, "score": _SCORE}, ["concept", "score"]),
}


_KEYS = {step: (key := next(iter(schema["properties"])), next(iter(schema["properties"][key]["items"]["properties"]))) for step, schema in SCHEMAS.items()}  # fmt: skip


def schema_for(step: str, units: int, *, per_unit: int = 1) -> dict[str, Any]:
    """``SCHEMAS[step]`` bounded to this call: unit numbers in ``1..units``, at most ``per_unit`` rows each.

    The bounds go into a constrained decoder's grammar too, so a small model cannot run on listing
    units that do not exist.
    """
    key, unit = _KEYS[step]
    schema = json.loads(json.dumps(SCHEMAS[step]))
    array = schema["properties"][key]
    array["maxItems"] = units * per_unit
    array["items"]["properties"][unit] = {"type": "integer", "minimum": 1, "maximum": units}
    return schema


def _q(text: str, chars: int) -> str:
    text = " ".join(text.split())
    return '"' + (text if len(text) <= chars else text[: chars - 3] + "...") + '"'


def messages(step: str, user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM[step]}, {"role": "user", "content": user}]


def rewrite_prompt(units: Sequence[dict[str, Any]], chars: int) -> str:
    """``units``: ``{"text", "context": {"speaker", "title", "before", "after", "modality"}}``."""
    lines = []
    for n, u in enumerate(units, 1):
        ctx = u.get("context") or {}
        parts = [
            f"{k}: {_q(str(ctx[k]), 200)}" for k in ("speaker", "title", "modality", "before", "after") if ctx.get(k)
        ]
        lines.append(f"[{n}] context: {'; '.join(parts) or 'none'}\ntext: {_q(u['text'], chars)}")
    return "Rewrite each text.\n\n" + "\n\n".join(lines)


def extract_prompt(texts: Sequence[str], chars: int) -> str:
    return "Extract the triplets of each text.\n\n" + "\n".join(f"[{n}] {_q(t, chars)}" for n, t in enumerate(texts, 1))


def inspect_triplets_prompt(units: Sequence[tuple[str, Sequence[dict[str, str]]]], chars: int) -> str:
    lines = []
    for n, (text, triplets) in enumerate(units, 1):
        facts = "; ".join(f"({t['head']} | {t['relation']} | {t['tail']})" for t in triplets)
        lines.append(f"[{n}] text: {_q(text, chars)}\ntriplets: {facts}")
    return "Score the triplets of each item.\n\n" + "\n\n".join(lines)


def fill_prompt(concepts: Sequence[dict[str, Any]]) -> str:
    lines = [f"[{n}] {c['name']} -- context: {_q(c['context'], 240)}" for n, c in enumerate(concepts, 1)]
    return "Describe each concept.\n\n" + "\n".join(lines)


def select_prompt(concepts: Sequence[dict[str, Any]]) -> str:
    lines = []
    for n, c in enumerate(concepts, 1):
        options = "\n".join(f"  ({k}) {_q(cand['text'], 200)}" for k, cand in enumerate(c["candidates"], 1))
        lines.append(f"[{n}] {c['name']} -- context: {_q(c['context'], 240)}\ncandidates:\n{options}")
    return "Choose a candidate for each concept.\n\n" + "\n\n".join(lines)


def refine_prompt(concepts: Sequence[dict[str, Any]]) -> str:
    lines = [
        f"[{n}] {c['name']} -- mention: {_q(c['surface'], 80)} -- context: {_q(c['context'], 240)}"
        f"\ndescription: {_q(c['selected'], 300)}"
        for n, c in enumerate(concepts, 1)
    ]
    return "Adapt each description.\n\n" + "\n\n".join(lines)


def inspect_descriptions_prompt(concepts: Sequence[dict[str, Any]]) -> str:
    lines = [
        f"[{n}] {c['name']} -- context: {_q(c['context'], 240)}\ndescription: {_q(c['description'] or '', 300)}"
        for n, c in enumerate(concepts, 1)
    ]
    return "Score each description.\n\n" + "\n\n".join(lines)
