"""Episodic memory as a tree of time scales: items -> sessions (scenes) -> episodes.

WorldMM keeps episodic memory at several temporal scales and HippoMM consolidates segments into
events; here the tree's nodes live in SQLite (``omnimem.stores.nodes``), their spans and counts kept
exact by the item transactions, and this module writes their summaries:

- *extractive* (default, no LLM): the most central items of the node -- cosine to the centroid of
  their text vectors, diversified by maximal marginal relevance (Carbonell & Goldstein, 1998) -- in
  time order, each cut to its first sentence;
- *LLM-written* when a generator is given: the central items are the evidence of a short prompt.

Summaries are refreshed lazily (when nodes are read) or by the consolidation job, never inside an add.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from omnimem.errors import ConfigError, MemoryLocked, NotFound
from omnimem.stores.nodes import Node
from omnimem.types import Item, to_iso

if TYPE_CHECKING:  # pragma: no cover
    from omnimem.memory.core import Memory

__all__ = ["SummaryConfig", "EpisodicMemory", "central_items"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SummaryConfig:
    """How node summaries are written."""

    session_items: int = 3  # central items quoted in a session summary
    episode_items: int = 5  # central items quoted in an episode summary
    item_chars: int = 160  # each quoted item is cut to its first sentence, at most this many chars
    mmr_lambda: float = 0.7  # centrality vs novelty in MMR (1.0 = centrality only)
    max_items: int = 2_000  # the latest items considered for one node (bounds the cost of big episodes)

    def __post_init__(self) -> None:
        if self.session_items <= 0 or self.episode_items <= 0 or self.item_chars < 20:
            raise ConfigError("summary sizes must be positive (item_chars >= 20)")
        if not 0 <= self.mmr_lambda <= 1:
            raise ConfigError("summary mmr_lambda must be in [0, 1]")


def central_items(vectors: np.ndarray, k: int, *, mmr_lambda: float = 0.7) -> list[int]:
    """Row indices of the ``k`` most central rows of ``vectors`` (float32 (n, d), unit rows), by MMR.

    Centrality is the cosine to the normalised centroid; each pick trades it against the maximum
    cosine to rows already picked. Returned in pick order (most central first).
    """
    n = len(vectors)
    if n == 0 or k <= 0:
        return []
    centroid = vectors.mean(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
    centrality = vectors @ centroid
    picked: list[int] = []
    redundancy = np.full(n, -np.inf if mmr_lambda < 1 else 0.0)
    for _ in range(min(k, n)):
        score = mmr_lambda * centrality - (1 - mmr_lambda) * np.where(np.isfinite(redundancy), redundancy, 0.0)
        score[picked] = -np.inf
        best = int(np.argmax(score))
        picked.append(best)
        redundancy = np.maximum(np.where(np.isfinite(redundancy), redundancy, -1.0), vectors @ vectors[best])
    return picked


def _first_sentence(text: str, limit: int) -> str:
    text = " ".join(text.split())
    match = re.search(r"(?<=[.!?])\s", text)
    sentence = text[: match.start()] if match and match.start() > 20 else text
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def _quote(item: Item, limit: int) -> str:
    """``"Speaker: first sentence"`` (the title for a passage; no prefix when it has neither)."""
    who = item.speaker or item.metadata.get("title")
    text = _first_sentence(item.text, limit)
    return f"{who}: {text}" if who else text


class EpisodicMemory:
    """Reads the episodic tree of one memory and keeps its summaries fresh."""

    def __init__(self, memory: Memory, *, config: SummaryConfig | None = None, generator: Any = None) -> None:
        self.memory = memory
        self.config = config or SummaryConfig()
        self.generator = generator

    # -- reading -----------------------------------------------------------------------------
    def nodes(
        self, level: str | None = None, *, episode: str | None = None, since: Any = None, until: Any = None,
        refresh: bool = True,
    ) -> list[Node]:  # fmt: skip
        """Sessions and/or episodes whose event-time span overlaps ``[since, until)``, in time order."""
        if level not in (None, "session", "episode"):
            raise ConfigError(f"level must be 'session', 'episode' or None, got {level!r}")
        query = dict(level=level, episode=episode, since=to_iso(since), until=to_iso(until))
        found = self.memory.store.nodes(**query)
        if not refresh or not any(n.dirty for n in found):
            return found
        fresh = {n.id: (n, *self.summarize(n)) for n in found if n.dirty}
        try:  # kept for the next reader, unless a writer holds the lock now: a read never waits for one
            with self.memory.store.transaction(wait=False):
                for node, summary, kind, sources in fresh.values():
                    self.memory.store.set_summary(node, summary, kind, sources)
        except MemoryLocked:
            log.debug("summaries of %d node(s) computed but not saved: the memory is being written", len(fresh))
        return [
            replace(n, summary=fresh[n.id][1], summary_kind=fresh[n.id][2], dirty=False) if n.id in fresh else n
            for n in found
        ]

    def timeline(
        self, episode: Node | str, *, t_start: float | None = None, t_end: float | None = None, since: Any = None,
        until: Any = None,
    ) -> list[Item]:  # fmt: skip
        """The items of ``episode`` within a media span (seconds) and/or an event-time range, in order.

        ``episode``: an episode id, or a :class:`Node` from :meth:`nodes` or its id (``"episode:<id>"``,
        ``"session:<episode>/<session>"``: that session's items only).
        ``timeline(video_episode, t_start=3600, t_end=7200)`` is "the second hour of the video".
        """
        if isinstance(episode, str) and episode.startswith(("episode:", "session:")):
            nodes = self.memory.store.nodes(ids=[episode])
            if not nodes:
                raise NotFound(f"no episode or session node {episode!r}; list them with mem.episodes()")
            episode = nodes[0]
        if isinstance(episode, Node):
            scope = {"episode": episode.episode, "session": episode.session}
        elif isinstance(episode, str):
            scope = {"episode": episode}
        else:
            raise ConfigError(
                f"episode must be an episode id, a node id or a Node from mem.episodes(), got {type(episode).__name__}"
            )
        ids = self.memory.store.timeline(
            **scope, t_start=None if t_start is None else float(t_start), t_end=None if t_end is None else float(t_end),
            since=to_iso(since), until=to_iso(until),
        )  # fmt: skip
        return [item for item in self.memory.store.get(ids) if item is not None]

    # -- writing summaries -------------------------------------------------------------------
    def refresh(self, nodes: list[Node] | None = None) -> int:
        """Rewrite the summaries of ``nodes`` (default: every dirty node), sessions before episodes."""
        nodes = self.memory.store.nodes(dirty=True) if nodes is None else nodes
        done = 0
        for node in sorted(nodes, key=lambda n: n.level != "session"):
            self.memory.store.set_summary(node, *self.summarize(node))
            done += 1
        return done

    def summarize(self, node: Node) -> tuple[str, str, list[str]]:
        """``(summary, kind, item ids it quotes)`` of one node from its items; kind is "extractive" or "llm"."""
        k = self.config.session_items if node.level == "session" else self.config.episode_items
        ids = self.memory.store.node_item_ids(node, limit=self.config.max_items)
        items = [i for i in self.memory.store.get(ids) if i is not None and i.text.strip()]
        if not items:
            return "", "extractive", []
        from omnimem.memory.core import TEXT_SPACE

        with_vectors, vectors = self.memory.store.vectors(TEXT_SPACE, [i.id for i in items])
        by_id = {i.id: i for i in items}
        order = {i.id: n for n, i in enumerate(items)}
        picks = central_items(vectors, k * (3 if self.generator else 1), mmr_lambda=self.config.mmr_lambda)
        chosen = sorted((by_id[with_vectors[p]] for p in picks), key=lambda i: order[i.id])
        if self.generator is not None:
            text = self._llm_summary(node, chosen)
            if text:
                return text, "llm", [i.id for i in chosen]
        quotes = [_quote(i, self.config.item_chars) for i in chosen[:k]]
        return " … ".join(quotes), "extractive", [i.id for i in chosen[:k]]

    def _llm_summary(self, node: Node, items: list[Item]) -> str:
        listing = "\n".join(f"[E{n + 1}] {_quote(i, 10_000)}" for n, i in enumerate(items))
        messages = [
            {
                "role": "system",
                "content": "You summarise conversations and recordings in two or three plain sentences.",
            },
            {"role": "user", "content": f"Summarise what happens in this {node.level}:\n{listing}\nSummary:"},
        ]
        try:
            return self.generator.generate(messages, max_new_tokens=120, temperature=0.0).text.strip()
        except Exception as e:  # a model failure must not lose the extractive summary
            log.warning("LLM summary of %s failed (%s); keeping the extractive one", node.id, e)
            return ""
