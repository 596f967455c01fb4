"""Semantic memory: facts (M3KG triplets) with bi-temporal validity, updates that retire, never erase.

Graphiti's bi-temporal model: each fact holds in the world from ``valid_from`` to ``valid_to``
(event times of its evidence) and is known to the memory from ``recorded_at`` until ``retired_at``.
Mem0's operations map onto it: **add** (a new fact), **reinforce** (the same fact read again from
new evidence: one more source), **update** (a contradicting fact supersedes the old one: the old one
gets ``valid_to`` = the new one's ``valid_from`` and ``retired_at`` = now, and stays readable as
history), and **correct** (an explicit correction: the wrong fact is retired and never returned by
"as of" queries; the correction is itself remembered as an item, the new fact's evidence).

Contradictions are found without an LLM for functional relations -- a head holds one value at a time
(lives in, works at, is married to ...) -- and, when a generator is configured, by asking it about
other facts that share head and relation. Every operation is logged in ``fact_events``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omnimem.errors import ConfigError, NotFound
from omnimem.graph.normalize import concept_key
from omnimem.graph.schema import TripletRow
from omnimem.types import to_iso, utc_now

if TYPE_CHECKING:  # pragma: no cover
    from omnimem.memory.core import Memory

__all__ = ["Fact", "FactEvent", "SemanticMemory", "FUNCTIONAL_RELATIONS", "relation_family"]

log = logging.getLogger(__name__)

# Relation families in which a head has one value at a time; phrases as the extractor lemmatises them.
FUNCTIONAL_RELATIONS: dict[str, tuple[str, ...]] = {
    "residence": ("live in", "move to", "reside in", "relocate to", "settle in", "live at", "move into"),
    "employer": ("work at", "work for", "join", "be employ by", "be hire by", "be employ at"),
    "spouse": ("marry", "be marry to", "wed"),
    "role": ("work as", "become", "be promote to"),
}
_FAMILY = {phrase: family for family, phrases in FUNCTIONAL_RELATIONS.items() for phrase in phrases}
_NOT_VALUES = {"DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY"}


def relation_family(relation: str) -> str | None:
    """The functional family of a relation phrase ("moved to" and "live in" are both residence)."""
    return _FAMILY.get(" ".join(relation.lower().split()))


@dataclass(frozen=True)
class Fact:
    """A triplet as the semantic memory reads it: names, validity, status, evidence."""

    id: str  # triplet id
    head: str  # head entity name
    relation: str  # relation phrase
    tail: str  # tail entity name
    sentence: str  # the sentence it was read from
    valid_from: str | None  # ISO-8601: when it became true in the world
    valid_to: str | None  # ISO-8601: when it stopped being true (None: still true, as far as known)
    recorded_at: str | None  # ISO-8601 UTC: when the memory learned it
    retired_at: str | None  # ISO-8601 UTC: when the memory retired it (superseded or corrected)
    sources: tuple[str, ...]  # evidence item ids
    corrected: bool = False  # retired by an explicit correction: it never held

    @property
    def current(self) -> bool:
        return self.retired_at is None

    def __str__(self) -> str:
        span = f"[{(self.valid_from or '…')[:10]} → {(self.valid_to or 'now')[:10]}]"
        return f"{self.head} -{self.relation}-> {self.tail} {span}{'' if self.current else ' (retired)'}"


@dataclass(frozen=True)
class FactEvent:
    """One line of a fact's history."""

    triplet_id: str
    event: str  # "add" | "reinforce" | "supersede" | "superseded" | "correct"
    other_id: str | None  # the other fact of a supersede / correction
    item_id: str | None  # the evidence item that caused it
    at: str  # ISO-8601 UTC
    note: str


class SemanticMemory:
    """Applies fact operations to one memory's graph and answers "what was true then"."""

    def __init__(self, memory: Memory, *, generator: Any = None) -> None:
        self.memory = memory
        self.generator = generator
        self.log = memory.facts_log  # the store's FactLog: every operation on a fact
        self._retired: set[str] = set()  # facts the running observe call retired

    # -- operations --------------------------------------------------------------------------
    def observe(self, item_ids: Sequence[str]) -> dict[str, int]:
        """Log add / reinforce for the facts read from these new items, then settle contradictions."""
        counts = {"add": 0, "reinforce": 0, "supersede": 0}
        triplets = self.memory.graph.triplets(item_ids=list(item_ids))
        known = self.log.logged([t.id for t in triplets])
        now = utc_now()
        fresh: list[TripletRow] = []
        events = []
        for t in triplets:
            new_sources = [s for s in t.sources if s in set(item_ids)]
            if t.id in known:
                events += [(t.id, "reinforce", None, source, now) for source in new_sources]
                counts["reinforce"] += len(new_sources)
            else:
                events.append((t.id, "add", None, new_sources[0] if new_sources else None, now))
                counts["add"] += 1
                fresh.append(t)
        self.log.log(events)
        self._retired = set()  # facts this call retires (a later fresh fact's rows may predate it)
        for t in fresh:
            if t.id not in self._retired:
                counts["supersede"] += self._settle(t)
        return counts

    def correct(self, fact_id: str, *, tail: str | None = None, note: str = "", timestamp: Any = None) -> Fact | None:
        """Retire a wrong fact for good; with ``tail``, remember the corrected fact in its place.

        The correction is stored as an item (its text says what was corrected), which is the new
        fact's evidence: every fact keeps a source. Returns the new fact, or None without ``tail``.
        """
        old = self.get(fact_id)
        now = utc_now()
        new_fact = None
        if tail is not None:
            if not isinstance(tail, str) or not tail.strip():
                raise ConfigError("the corrected tail must be a non-empty string")
            text = f"Correction: {old.head} {old.relation} {tail.strip()} (not {old.tail})."
            (item_id,) = self.memory.add(text, timestamp=timestamp, metadata={"correction_of": fact_id})
            new_fact = self._write_correction(old, tail.strip(), item_id, timestamp)
        with self.memory.store.transaction():  # retired and logged together
            self.memory.graph.retire(fact_id, now)
            self.log.log([(fact_id, "correct", new_fact.id if new_fact else None, None, now, note)])
        return new_fact

    def _write_correction(self, old: Fact, tail: str, item_id: str, timestamp: Any) -> Fact:
        from omnimem.graph.schema import EntityRow

        head_row = self.memory.graph.get_entity(self._row(old.id).head)
        tail_row = EntityRow.make(tail, "CONCEPT" if tail.islower() else "ENTITY", [tail])
        row = TripletRow.make(
            head_row.id, old.relation, tail_row.id, f"{old.head} {old.relation} {tail}", 1.0, [item_id],
            valid_from=to_iso(timestamp) or old.valid_from,
        )  # fmt: skip
        self.memory.graph.write([tail_row], [], [row])
        self.observe([item_id])
        return self.get(row.id)

    def _settle(self, new: TripletRow) -> int:
        """Retire the facts ``new`` contradicts (or let ``new`` be superseded if it is older)."""
        rivals = {t.id: t for t in self._rivals(new) if t.retired_at is None}  # once each, however found
        retired = 0
        for old in rivals.values():
            if old.id in self._retired:
                continue  # retired earlier in this batch (a row read before that)
            newer, older = (new, old) if (new.valid_from or "9999") >= (old.valid_from or "") else (old, new)
            if older.valid_from and newer.valid_from and older.valid_from == newer.valid_from and older is new:
                newer, older = new, old  # same day: the later-learned fact wins
            self._supersede(older, newer)
            retired += 1
        return retired

    def _rivals(self, new: TripletRow) -> list[TripletRow]:
        """Active facts of the same head that ``new`` may contradict (cheap: filtered in SQL)."""
        family = relation_family(new.relation)
        if family is None and self.generator is None:
            return []  # only functional relations are checked without an LLM
        graph = self.memory.graph
        head, tail = graph.get_entity(new.head), graph.get_entity(new.tail)
        if tail.type in _NOT_VALUES:
            return []
        same_head = [e.id for e in graph.find_entities(head.name)] or [new.head]
        relations = list(FUNCTIONAL_RELATIONS[family]) if family is not None else [new.relation]
        rows = graph.active_triplets(heads=same_head, relations=relations, exclude=new.id)
        tail_key = concept_key(tail.name)
        rival_ids = []
        for tid, _, _, other, _ in rows:
            other_tail = graph.get_entity(other)
            if concept_key(other_tail.name) != tail_key and other_tail.type not in _NOT_VALUES:
                rival_ids.append(tid)
        if not rival_ids:
            return []
        rivals = [t for t in graph.triplets(entity_ids=same_head) if t.id in set(rival_ids)]
        if family is None:  # the generator decides
            rivals = [t for t in rivals if self._llm_contradicts(new, t)]
        return rivals

    def _llm_contradicts(self, a: TripletRow, b: TripletRow) -> bool:
        from omnimem.vlm.structured import generate_json

        schema = {"type": "object", "properties": {"contradicts": {"type": "boolean"}}, "required": ["contradicts"]}
        question = (
            f'Fact A: "{a.sentence}"\nFact B: "{b.sentence}"\n'
            "Can both facts be true at the same time? Answer contradicts=true if they cannot."
        )
        try:
            answer = generate_json(self.generator, [{"role": "user", "content": question}], schema, retries=1)
            return bool(answer.parsed.get("contradicts"))
        except Exception as e:  # a model failure keeps both facts (never retire on a guess)
            log.warning("contradiction check of %s vs %s failed: %s", a.id, b.id, e)
            return False

    def _supersede(self, older: TripletRow, newer: TripletRow) -> None:
        now = utc_now()
        self._retired.add(older.id)
        with self.memory.store.transaction():  # retired and logged together
            self.memory.graph.retire(older.id, now, valid_to=newer.valid_from)
            self.log.log([(older.id, "superseded", newer.id, None, now), (newer.id, "supersede", older.id, None, now)])

    # -- reading -----------------------------------------------------------------------------
    def facts(
        self, entity: str, *, as_of: Any = None, known_at: Any = None, include_retired: bool = False
    ) -> list[Fact]:
        """Facts whose head or tail is ``entity`` (a name), best current knowledge by default.

        ``as_of``: the facts that held in the world at that time (valid time), superseded ones
        included, corrected ones never. ``known_at``: what the memory believed at that time
        (transaction time). ``include_retired``: the whole history.
        """
        ids = [e.id for e in self.memory.graph.find_entities(entity)]
        if not ids:
            return []
        corrected = self._corrected()
        out = []
        for t in self.memory.graph.triplets(entity_ids=ids):
            fact = self._fact(t, t.id in corrected)
            if include_retired:
                out.append(fact)
            elif as_of is not None:
                when = to_iso(as_of)
                if (
                    not fact.corrected
                    and (fact.valid_from or "") <= when
                    and (fact.valid_to is None or when < fact.valid_to)
                ):
                    out.append(fact)
            elif known_at is not None:
                when = to_iso(known_at)
                if (fact.recorded_at or "") <= when and (fact.retired_at is None or when < fact.retired_at):
                    out.append(fact)
            elif fact.current:
                out.append(fact)
        return sorted(out, key=lambda f: (f.valid_from or "", f.recorded_at or "", f.id))

    def history(self, fact_id: str) -> list[FactEvent]:
        """Every operation on one fact, oldest first."""
        return [FactEvent(*r) for r in self.log.history(fact_id)]

    def get(self, fact_id: str) -> Fact:
        return self._fact(self._row(fact_id), fact_id in self._corrected())

    def _row(self, fact_id: str) -> TripletRow:
        head = self.memory.graph.head_of(fact_id)
        if head is None:
            raise NotFound(f"no fact with id {fact_id!r}")
        return next(t for t in self.memory.graph.triplets(entity_ids=[head]) if t.id == fact_id)

    def _fact(self, t: TripletRow, corrected: bool) -> Fact:
        graph = self.memory.graph
        return Fact(
            t.id, graph.get_entity(t.head).name, t.relation, graph.get_entity(t.tail).name, t.sentence,
            t.valid_from, t.valid_to, t.recorded_at, t.retired_at, t.sources, corrected,
        )  # fmt: skip

    def _corrected(self) -> set[str]:
        return self.log.corrected()
