"""Checks and conversions of what callers hand the Memory facade: texts, filters, the encoder's input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omnimem.errors import ConfigError
from omnimem.stores.base import Filters
from omnimem.types import MODALITIES, Item, check_utf8, to_iso

__all__ = ["embedding_text", "query_filters", "clean_text"]


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
