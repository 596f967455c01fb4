"""Checks and conversions of what callers hand the Memory facade: texts, filters, the encoder's input."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from omnimem.errors import ConfigError
from omnimem.stores.base import Filters
from omnimem.types import MODALITIES, Item, check_utf8, to_iso

__all__ = ["embedding_text", "query_filters", "clean_text", "conversation_items"]


def embedding_text(item: Item) -> str:
    """What the text encoder sees: the text, prefixed by its heading (speaker or title), if any.

    Conversation turns rarely name their own speaker, while questions about them do; measured on
    LoCoMo dev this lifts dense recall@10 from 0.29 to 0.43 (BM25 indexes the heading column too).
    """
    return f"{item.heading}: {item.text}" if item.heading else item.text


def _tuple(values: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    return (values,) if isinstance(values, str) else tuple(values)


def query_filters(
    query: str, modalities: Sequence[str] | None, sessions: Sequence[str] | None,
    speakers: Sequence[str] | None, since: Any, until: Any,
) -> Filters | None:  # fmt: skip
    """The checked query and filters of a search (``None``: no filter)."""
    if not isinstance(query, str) or not query.strip():
        raise ConfigError("query must be a non-empty string")
    check_utf8(query, "query")
    bad = set(modalities or ()) - set(MODALITIES)
    if bad:
        raise ConfigError(f"unknown modality {sorted(bad)}; use {', '.join(MODALITIES)}")
    filters = Filters(
        modalities=_tuple(modalities), sessions=_tuple(sessions), speakers=_tuple(speakers),
        since=to_iso(since), until=to_iso(until),
    )  # fmt: skip
    return None if filters.is_empty() else filters


def clean_text(text: Any, n: int) -> str:
    if not isinstance(text, str):
        raise ConfigError(f"text {n} must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ConfigError(f"text {n} is empty or whitespace; there is nothing to remember")
    return text


def conversation_items(
    turns: Iterable[Mapping[str, Any]], *, session: str | None, episode: str | None, source: str | None,
    start: int, positional: bool,
) -> list[Item]:  # fmt: skip
    """The items of ``Memory.add_conversation``'s turns, checked. ``positional``: a turn's id carries
    its place (``start`` + its index); a memory from before places gives one only to a repeat."""
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ConfigError(f"start must be an int >= 0 (the first turn's place in the conversation), got {start!r}")
    seen: set[str] = set()
    items = []
    for n, turn in enumerate(turns):
        if not isinstance(turn, Mapping):
            raise ConfigError(f"turn {n} must be a dict with 'speaker' and 'text', got {type(turn).__name__}")
        unknown = set(turn) - {"speaker", "text", "timestamp", "metadata", "id"}
        if unknown:
            raise ConfigError(
                f"turn {n} has unknown key(s) {sorted(unknown)}; allowed: speaker, text, timestamp, metadata, id"
            )
        if "text" not in turn:
            raise ConfigError(f"turn {n} has no 'text'")
        fields = dict(
            modality="text", text=clean_text(turn["text"], n), id=turn.get("id"), speaker=turn.get("speaker"),
            event_time=turn.get("timestamp"), session=session, episode=episode, source=source,
            metadata=turn.get("metadata"),
        )  # fmt: skip
        item = Item.make(**fields, place=start + n if positional else None)
        if not positional and item.id in seen:  # a memory from before places: only a repeat gets one
            item = Item.make(**fields, place=start + n)
        seen.add(item.id)
        items.append(item)
    return items
