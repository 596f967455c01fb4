"""Request and response bodies of the REST API (pydantic), so the OpenAPI spec describes every one.

Field limits (lengths, ranges) are part of the contract: a request outside them is a 422 before
any library code runs. So is, in any request body, a string that cannot be stored as UTF-8 (a lone
surrogate such as ``"\ud800"``, which JSON can spell) and JSON nested more than ``MAX_DEPTH`` deep.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"  # a memory name: one directory under the root, no dots
MAX_TEXT = 100_000  # characters of one text or turn
MAX_QUERY = 2_000  # characters of a query or a question
MAX_DEPTH = 64  # nesting levels of a body's JSON (metadata), as the library allows


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        check_storable(data, cls.__name__)  # on the raw JSON, before any field is validated
        return data


def check_storable(value: Any, what: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``ValueError`` naming the field if ``value`` nests deeper than ``max_depth`` or holds a
    string with a lone surrogate (SQLite stores UTF-8 only). Iterative: no depth can overflow it."""
    stack: list[tuple[Any, int, str]] = [(value, 0, what)]
    while stack:
        node, depth, where = stack.pop()
        if depth > max_depth:
            raise ValueError(f"{where} is nested more than {max_depth} levels deep; flatten it")
        if isinstance(node, dict):
            for key, item in node.items():
                _check_utf8(key, f"a key of {where}")
                stack.append((item, depth + 1, f"{where}.{key}" if depth < 4 else _elided(where)))
        elif isinstance(node, (list, tuple)):
            stack.extend(
                (item, depth + 1, f"{where}[{n}]" if depth < 4 else _elided(where)) for n, item in enumerate(node)
            )
        else:
            _check_utf8(node, where)


def _elided(where: str) -> str:
    return where if where.endswith("...") else f"{where}..."


def _check_utf8(value: Any, where: str) -> None:
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(
                f"{where} holds a lone surrogate ({value[e.start]!r} at character {e.start}) that cannot be stored"
                " as UTF-8; send valid Unicode (decode the source with errors='replace')"
            ) from None


class ErrorOut(BaseModel):
    """Every error answer: what happened and how to fix it."""

    detail: str  # the message (library errors say how to fix them)
    error: str  # the exception class, e.g. "NotFound", "ConfigError", "Unauthorized"


class MemoryCreate(_Body):
    name: str = Field(pattern=NAME_PATTERN, description="directory name under the server root")


class MemoryOut(BaseModel):
    name: str
    items: int = Field(description="items stored")


class MemoryList(BaseModel):
    memories: list[MemoryOut]


class MemoryStats(MemoryOut):
    encoder: str
    dim: int
    graph: dict[str, int] = Field(default_factory=dict, description="graph table counts")


class Turn(_Body):
    speaker: str | None = Field(default=None, max_length=200)
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    timestamp: str | None = Field(default=None, max_length=64, description="ISO-8601 event time")
    metadata: dict[str, Any] | None = None


class ItemsCreate(_Body):
    """Either ``text`` (one item) or ``turns`` (a conversation), not both."""

    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    turns: list[Turn] | None = Field(default=None, min_length=1, max_length=1_000)
    speaker: str | None = Field(default=None, max_length=200)
    timestamp: str | None = Field(default=None, max_length=64, description="ISO-8601 event time")
    session: str | None = Field(default=None, max_length=200)
    episode: str | None = Field(default=None, max_length=200)
    source: str | None = Field(default=None, max_length=1_000)
    metadata: dict[str, Any] | None = None
    start: int = Field(default=0, ge=0, description="turns: the first turn's place in its conversation (a later piece)")


class ItemsOut(BaseModel):
    ids: list[str]


class ItemOut(BaseModel):
    id: str
    modality: str
    text: str
    source: str | None = None
    session: str | None = None
    episode: str | None = None
    speaker: str | None = None
    event_time: str | None = None
    t_start: float | None = None
    t_end: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class HitOut(ItemOut):
    score: float
    retrievers: list[str] = Field(default_factory=list)


class SearchOut(BaseModel):
    query: str
    hits: list[HitOut]


class IngestPath(_Body):
    path: str = Field(min_length=1, max_length=4_096, description="a file or folder under the allowed root")


class IngestOut(BaseModel):
    added: dict[str, int] = Field(description="file -> items written")
    skipped: dict[str, str] = Field(description="file -> why")
    failed: dict[str, str] = Field(description="file -> error message")
    notes: dict[str, str] = Field(default_factory=dict, description="file -> what to know (e.g. its text encoding)")


class ContextIn(_Body):
    query: str = Field(min_length=1, max_length=MAX_QUERY)
    budget_tokens: int = Field(default=1_024, ge=16, le=32_768)


class EvidenceOut(BaseModel):
    id: str = Field(description="citation id shown to the model, e.g. E1")
    item_id: str = Field(description="the memory's id of the item, fact or node")
    kind: str = "item"
    text: str
    score: float = 0.0
    source: str | None = None
    span: list[float] | None = None
    modality: str = "text"


class ContextOut(BaseModel):
    query: str
    evidence: list[EvidenceOut]
    tokens: int
    prompt: str = Field(description="the evidence rendered for a prompt, each line citable as [E<n>]")


class AskIn(_Body):
    question: str = Field(min_length=1, max_length=MAX_QUERY)
    budget_tokens: int = Field(default=1_024, ge=16, le=32_768)
    max_new_tokens: int = Field(default=256, ge=1, le=4_096)


class ChatIn(AskIn):
    session: str | None = Field(default=None, max_length=200, description="the conversation this turn belongs to")
    user: str = Field(default="user", min_length=1, max_length=200, description="speaker name of the question")
    timestamp: str | None = Field(
        default=None, max_length=64, description="ISO-8601 time of the question; default: now"
    )


class AskOut(BaseModel):
    question: str
    answer: str | None = Field(description="null when the server has no generator configured")
    citations: list[EvidenceOut] = Field(description="the evidence the answer cites")
    evidence: list[EvidenceOut]


class ChatOut(AskOut):
    ids: list[str] = Field(description="ids of the remembered turns")


class EntityOut(BaseModel):
    id: str
    name: str
    type: str
    aliases: list[str] = Field(default_factory=list)
    description: str | None = None


class EntitiesOut(BaseModel):
    entities: list[EntityOut]


class FactOut(BaseModel):
    id: str
    head: str
    relation: str
    tail: str
    sentence: str
    valid_from: str | None = None
    valid_to: str | None = None
    recorded_at: str | None = None
    retired_at: str | None = None
    sources: list[str] = Field(default_factory=list)


class FactsOut(BaseModel):
    entity: str
    facts: list[FactOut]


class ForgetOut(BaseModel):
    items: list[str]
    blobs: int
    triplets: int
    entities: int
