"""JSON-schema output: extract, repair, validate, and a bounded re-prompting loop.

Backends that can constrain decoding do so (llama.cpp grammars, a server's ``response_format``); the
rest, and small models that still break the format, go through the same path here: take the JSON
value out of the answer (code fences, prose around it), repair the usual breakage (single quotes,
Python literals, trailing commas, unquoted keys, a truncated tail), validate it with ``jsonschema``,
and re-prompt with the validation error a bounded number of times (the "validate + retry" loop of
instructor / outlines' fallback mode).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from omnimem.errors import ConfigError, CorruptInput
from omnimem.vlm.base import Generation, Generator, Message, MessagesLike, as_messages

__all__ = [
    "extract_json",
    "repair_json",
    "parse_json",
    "schema_errors",
    "parse_structured",
    "schema_instruction",
    "generate_json",
]

log = logging.getLogger(__name__)

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)(?:```|$)", re.DOTALL)
_PY_LITERALS = {"True": "true", "False": "false", "None": "null", "true": "true", "false": "false", "null": "null"}
_NUMBER_CHARS = set("0123456789+-.eE")


def extract_json(text: str) -> str | None:
    """The first JSON object or array in ``text`` (inside a code fence if there is one), or ``None``.

    Scans brackets outside strings, so prose after the value is cut off; an unclosed value is
    returned up to the end of the text, for :func:`repair_json` to close.
    """
    fenced = _FENCE.search(text)
    if fenced and re.search(r"[{\[]", fenced.group(1)):
        text = fenced.group(1)
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    depth, quote, escaped = 0, "", False
    for i in range(start, len(text)):
        c = text[i]
        if quote:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return text[start:]


def _read_string(text: str, i: int) -> tuple[str, int]:
    """Read the string quoted by ``text[i]`` -> (its JSON double-quoted form, index after it)."""
    quote, j, parts = text[i], i + 1, []
    while j < len(text):
        c = text[j]
        if c == "\\" and j + 1 < len(text):
            nxt = text[j + 1]
            parts.append("'" if nxt == "'" else c + nxt)
            j += 2
            continue
        if c == quote:
            return '"' + "".join(parts) + '"', j + 1
        parts.append({'"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(c, c))
        j += 1
    return '"' + "".join(parts) + '"', j  # truncated: the repair closes it


def _strip_dangling(out: list[str]) -> None:
    """Drop trailing whitespace and commas (a trailing comma before a closer, or at a cut-off end)."""
    while out and (out[-1].isspace() or out[-1] == ","):
        out.pop()


def repair_json(text: str) -> str:
    """Rewrite almost-JSON into JSON: single-quoted strings, ``True``/``None``, unquoted keys and bare
    words, trailing commas, raw newlines in strings, and a truncated tail (open string, dangling
    key or comma, missing ``}``/``]``). Valid JSON comes back unchanged in meaning."""
    out: list[str] = []
    stack: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            token, i = _read_string(text, i)
            out.append(token)
            continue
        if c in "{[":
            stack.append("}" if c == "{" else "]")
            out.append(c)
        elif c in "}]":
            _strip_dangling(out)
            if stack:
                out.append(stack.pop())
        elif c.isdigit() or c in "+-.":
            j = i
            while j < n and text[j] in _NUMBER_CHARS:
                j += 1
            out.append(text[i:j].lstrip("+"))
            i = j
            continue
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] in "_-"):
                j += 1
            word = text[i:j]
            rest = text[j:].lstrip()
            if rest.startswith(":") or word not in _PY_LITERALS:
                out.append(json.dumps(word))  # an unquoted key, or a bare word used as a string
            else:
                out.append(_PY_LITERALS[word])
            i = j
            continue
        elif c == "/" and text.startswith("//", i):  # a // comment to the end of the line
            while i < n and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    if stack:  # truncated: finish the last member, then close what is open
        _strip_dangling(out)
        if out and out[-1] == ":":
            out.append("null")
        elif stack[-1] == "}" and out and out[-1].startswith('"'):
            prev = next((t for t in reversed(out[:-1]) if not t.isspace()), "")
            if prev in ("{", ","):  # a key with no value
                out.append(":null")
        out.extend(reversed(stack))
    return "".join(out)


def parse_json(text: str) -> Any:
    """The JSON value in a model's answer, repaired if needed; :class:`CorruptInput` if none."""
    candidate = extract_json(text)
    if candidate is None:
        raise CorruptInput(f"no JSON object or array in the answer: {text[:200]!r}")
    try:
        return json.loads(candidate)
    except json.JSONDecodeError:
        pass
    repaired = repair_json(candidate)
    try:
        return json.loads(repaired)
    except json.JSONDecodeError as e:
        raise CorruptInput(f"the answer is not JSON even after repair ({e}): {candidate[:200]!r}") from e


def _validator(schema: Mapping[str, Any]) -> Any:
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise ConfigError(f"json_schema is not a valid JSON schema: {e.message}") from e
    return cls(schema)


def schema_errors(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """Human-readable validation errors of ``value`` against ``schema`` (empty when it is valid)."""
    errors = sorted(_validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]


def parse_structured(text: str, schema: Mapping[str, Any] | None) -> Any | None:
    """What backends put in ``Generation.parsed``: the value if it parses and validates, else ``None``."""
    try:
        value = parse_json(text)
    except CorruptInput:
        return None
    if schema is not None and schema_errors(value, schema):
        return None
    return value


def schema_instruction(schema: Mapping[str, Any]) -> str:
    """The sentence appended to the last user turn so unconstrained models know the format."""
    return "Answer with only a JSON value that matches this JSON schema, no prose:\n" + json.dumps(schema)


def _with_instruction(messages: list[Message], schema: Mapping[str, Any]) -> list[Message]:
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    if last_user < 0:
        return [*messages, Message("user", schema_instruction(schema))]
    out = list(messages)
    out[last_user] = Message("user", messages[last_user].content + "\n\n" + schema_instruction(schema))
    return out


def generate_json(
    generator: Generator,
    messages: MessagesLike,
    schema: Mapping[str, Any],
    retries: int = 2,
    *,
    images: Sequence[Any] = (),
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    instruct: bool = True,
) -> Generation:
    """Generate a value that validates against ``schema``, re-prompting with the error on failure.

    Makes at most ``retries + 1`` calls; the returned :class:`Generation` has ``parsed`` set, and
    its token counts and latency summed over every attempt. After the last failed attempt it raises
    :class:`CorruptInput` (the bad answers are logged at WARNING). ``instruct`` appends the schema to
    the last user turn, which unconstrained backends need.
    """
    if retries < 0:
        raise ConfigError(f"retries must be >= 0, got {retries}")
    _validator(schema)  # a bad schema is the caller's bug: fail before spending tokens
    history = as_messages(messages)
    prompt = _with_instruction(history, schema) if instruct else history
    tokens_in = tokens_out = 0
    latency = 0.0
    error = ""
    for attempt in range(retries + 1):
        gen = generator.generate(
            prompt, images=images, max_new_tokens=max_new_tokens, temperature=temperature, json_schema=schema
        )
        tokens_in, tokens_out, latency = tokens_in + gen.tokens_in, tokens_out + gen.tokens_out, latency + gen.latency_s
        try:
            value = gen.parsed if gen.parsed is not None else parse_json(gen.text)
            problems = schema_errors(value, schema)
            error = "; ".join(problems[:5])
        except CorruptInput as e:
            problems, error = ["unparseable"], str(e)
        if not problems:
            return dataclasses.replace(gen, parsed=value, tokens_in=tokens_in, tokens_out=tokens_out, latency_s=latency)
        log.warning("structured output attempt %d/%d invalid (%s); answer was: %r", attempt + 1, retries + 1,
                    error, gen.text)  # fmt: skip
        prompt = [
            *prompt,
            Message("assistant", gen.text),
            Message("user", f"That answer is invalid: {error}. Reply with only the corrected JSON."),
        ]
    raise CorruptInput(
        f"no valid JSON for the schema after {retries + 1} attempts (last error: {error}); raise retries,"
        " use a larger model, or a backend with constrained decoding (llama.cpp, a server with response_format)"
    )
