"""Personas: per speaker, a short extractive profile quoting their most characteristic turns.

Questions about a person ("Would Melanie enjoy Vivaldi?", "What might Caroline's political leaning
be?") are answered by inference from what that person said about themselves over many sessions, not
by one turn like the question. A persona gathers those turns: the speaker's *self-statements* (turns
where they speak of themselves: "I love ...", "I'm a ...", "my ...") and, among them, the most central
ones diversified by maximal marginal relevance (:func:`omnimem.memory.episodes.central_items`, as the
episode summaries pick theirs), each cut to its first sentence. A persona is a retrieval unit that
points to its source turns (:mod:`omnimem.retrieval.focused`: a question naming the speaker nudges the
persona's turns most like the question and puts the profile in the context).

Personas live in the record store's ``meta`` table (``persona:<speaker>``, JSON ``{speaker, summary,
sources, turns, updated_at}``), written by :func:`refresh_personas` (consolidation calls it; so may an
evaluation right after ingest), never inside an add or a query. A persona one of whose turns was
forgotten is ignored by retrieval until the next refresh rewrites it.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omnimem.errors import ConfigError
from omnimem.memory.episodes import _first_sentence, central_items
from omnimem.retrieval.focused import PERSONA_KEY
from omnimem.types import Item, utc_now

if TYPE_CHECKING:  # pragma: no cover
    from omnimem.memory.core import Memory

__all__ = ["PersonaConfig", "refresh_personas", "personas", "self_statement", "INDEX_KEY", "forget_in_personas"]

INDEX_KEY = "personas"  # meta key of the JSON list of speakers with a persona

# first-person statements about oneself: what one is, has, likes, does, plans and believes
_SELF = re.compile(
    r"\b(?:I(?:'m|’m| am| was| have| had| love| like| enjoy| prefer| want| hope| plan| believe| think| feel| care"
    r"| value| always| never| usually| often| used to| grew up| started| decided| learned| wish)|my|me|myself)\b",
    re.I,
)


@dataclass(frozen=True)
class PersonaConfig:
    """How personas are written."""

    items: int = 12  # self-statements quoted per persona
    item_chars: int = 160  # each cut to its first sentence, at most this many characters
    mmr_lambda: float = 0.5  # centrality vs novelty (lower: more topics of the person's life)
    min_turns: int = 5  # speakers with fewer turns get no persona
    max_turns: int = 5_000  # the latest turns of a speaker considered (bounds the cost for long memories)

    def __post_init__(self) -> None:
        if self.items <= 0 or self.item_chars < 20 or self.min_turns <= 0 or self.max_turns <= 0:
            raise ConfigError("persona sizes must be positive (item_chars >= 20)")
        if not 0 <= self.mmr_lambda <= 1:
            raise ConfigError("persona mmr_lambda must be in [0, 1]")


def self_statement(text: str) -> bool:
    """Whether a turn speaks of its speaker (first person)."""
    return bool(_SELF.search(text))


def _turns_by_speaker(memory: Memory, max_turns: int) -> dict[str, list[Item]]:
    store = memory.store
    by_speaker: dict[str, list[Item]] = defaultdict(list)
    nodes = store.nodes(level="episode") + [n for n in store.nodes(level="session") if not n.episode]
    for node in nodes:
        for item in store.get(store.node_item_ids(node, limit=max_turns)):
            if item is not None and item.speaker and item.text.strip():
                by_speaker[item.speaker].append(item)
    return {s: sorted(items, key=lambda i: i.event_time or "")[-max_turns:] for s, items in by_speaker.items()}


def refresh_personas(memory: Memory, *, config: PersonaConfig | None = None) -> int:
    """Rewrite the persona of every speaker with at least ``config.min_turns`` turns; returns how many
    changed. Idempotent: the same turns give the same persona (not rewritten). Speakers whose turns
    are all gone lose theirs.
    """
    from omnimem.memory.core import TEXT_SPACE

    config = config or PersonaConfig()
    store = memory.store
    old = set(json.loads(store.get_meta(INDEX_KEY) or "[]"))
    written: list[str] = []
    changed = 0
    for speaker, items in sorted(_turns_by_speaker(memory, config.max_turns).items()):
        if len(items) < config.min_turns:
            continue
        pool = [i for i in items if self_statement(i.text)] or items
        ids, vectors = store.vectors(TEXT_SPACE, [i.id for i in pool])
        if not len(ids):
            continue
        by_id = {i.id: i for i in pool}
        order = {i.id: n for n, i in enumerate(pool)}
        picks = sorted(
            (ids[p] for p in central_items(vectors, config.items, mmr_lambda=config.mmr_lambda)), key=order.get
        )
        quotes = [_first_sentence(by_id[i].text, config.item_chars) for i in picks]
        persona: dict[str, Any] = {
            "speaker": speaker, "summary": f"About {speaker}: " + " … ".join(quotes), "sources": picks,
            "turns": len(items), "updated_at": utc_now(),
        }  # fmt: skip
        written.append(speaker)
        before = json.loads(store.get_meta(PERSONA_KEY + speaker) or "{}")
        if (before.get("summary"), before.get("sources")) != (persona["summary"], picks):  # idempotent
            store.set_meta(PERSONA_KEY + speaker, json.dumps(persona, ensure_ascii=False, sort_keys=True))
            changed += 1
    for speaker in old - set(written):  # a speaker without turns now: an empty persona is ignored
        store.set_meta(PERSONA_KEY + speaker, json.dumps({"speaker": speaker, "summary": "", "sources": []}))
    store.set_meta(INDEX_KEY, json.dumps(written, ensure_ascii=False))
    return changed + len(old - set(written))


def forget_in_personas(memory: Memory, forgotten: Sequence[str]) -> int:
    """After ``forget``: rewrite the personas from what remains when one of them quoted a forgotten
    item (the old text is overwritten in place; ``forget``'s checkpoint then clears the WAL). Returns
    how many personas were rewritten (0: none quoted them)."""
    gone = set(forgotten)
    if not any(gone & set(p.get("sources", ())) for p in personas(memory).values()):
        return 0
    return refresh_personas(memory)


def personas(memory: Memory) -> dict[str, dict[str, Any]]:
    """Speaker -> persona (``{speaker, summary, sources, turns, updated_at}``) as last refreshed."""
    out = {}
    for speaker in json.loads(memory.store.get_meta(INDEX_KEY) or "[]"):
        raw = memory.store.get_meta(PERSONA_KEY + speaker)
        if raw:
            out[speaker] = json.loads(raw)
    return out
