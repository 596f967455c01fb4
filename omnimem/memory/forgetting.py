"""Forgetting: decay scores, a privacy-complete ``forget``, and a prune job that archives.

- *decay* (MemoryBank's Ebbinghaus curve, Zhong et al. 2024; Mem0/MemOS decay by age and use):
  ``score = importance * 0.5 ** (age_days / half_life_days) * (1 + access_weight * ln(1 + accesses))``
  with the age taken from the event time (else the ingest time) and accesses counted on search hits.
- *forget* removes items and everything derived only from them: the row and its full-text entry,
  its vectors in SQLite and in every FAISS index (whose files are rewritten at once), its graph
  mentions, its facts left without evidence and their history, its node in the episodic tree, its
  media blobs no other item uses, any archived copy; SQLite's ``secure_delete`` zeroes the freed
  pages and the WAL is checkpointed, so its text is no longer anywhere on disk.
- *prune* archives (never drops) items scoring under the policy's threshold; ``restore`` undoes it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omnimem.errors import ConfigError
from omnimem.memory.personas import forget_in_personas
from omnimem.memory.scrub import drop_sources, scrub_checkpoints
from omnimem.types import Item, to_iso, utc_now

if TYPE_CHECKING:  # pragma: no cover
    from omnimem.memory.core import Memory

__all__ = ["ForgetPolicy", "ForgetReport", "Forgetting", "decay_score", "blob_addresses"]


@dataclass(frozen=True)
class ForgetPolicy:
    """When an item is weak enough to archive."""

    half_life_days: float = 90.0  # age at which the recency factor halves, days
    access_weight: float = 0.5  # weight of ln(1 + accesses) in the score
    threshold: float = 0.05  # prune archives items scoring below this
    min_age_days: float = 30.0  # items younger than this are never pruned, days

    def __post_init__(self) -> None:
        if self.half_life_days <= 0 or self.access_weight < 0 or self.threshold < 0 or self.min_age_days < 0:
            raise ConfigError("forget policy values must be positive (half_life_days > 0)")


def decay_score(age_days: float, accesses: int, importance: float, policy: ForgetPolicy) -> float:
    """The retention score of one item (higher = keep); see the module docstring."""
    recency = 0.5 ** (max(age_days, 0.0) / policy.half_life_days)
    return importance * recency * (1.0 + policy.access_weight * math.log1p(max(accesses, 0)))


@dataclass
class ForgetReport:
    """What a forget or prune did."""

    items: list[str] = field(default_factory=list)  # item ids removed (forget) or archived (prune)
    blobs: int = 0  # media blobs deleted
    triplets: int = 0  # facts deleted because no evidence was left
    entities: int = 0  # entities deleted because nothing mentioned them any more
    files: int = 0  # files inside the memory directory (uploads) deleted with the items read from them
    threads: int = 0  # agent checkpoint threads deleted because they quoted a forgotten item
    wal_truncated: bool = True  # False: a reader of another process kept the WAL (the next checkpoint clears it)


class Forgetting:
    """Decay, forget and prune for one memory."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    # -- forget ------------------------------------------------------------------------------
    def select(
        self, *, sessions: Sequence[str] | None = None, episodes: Sequence[str] | None = None,
        speakers: Sequence[str] | None = None, sources: Sequence[str] | None = None, before: Any = None,
    ) -> list[str]:  # fmt: skip
        """Ids of items matching every given filter (``before``: event time earlier than it)."""
        fields = {"sessions": sessions, "episodes": episodes, "speakers": speakers, "sources": sources}
        fields = {k: ([v] if isinstance(v, str) else list(v)) for k, v in fields.items() if v is not None}
        if not fields and before is None:
            raise ConfigError("forget needs ids or at least one filter (sessions, episodes, speakers, sources, before)")
        return self.memory.store.select(**fields, before=to_iso(before))

    def forget(self, ids: Sequence[str]) -> ForgetReport:
        """Remove items and everything derived only from them, from every store, index and file."""
        memory, store = self.memory, self.memory.store
        wanted = list(dict.fromkeys(ids))
        items = [i for i in store.get(wanted) if i is not None]
        archived = store.archived_items(wanted)
        items += [i for i in archived if i.id not in {x.id for x in items}]
        report = ForgetReport(items=[i.id for i in items])
        before = memory.graph.counts()
        blobs = {address for item in items for address in blob_addresses(item)}
        memory.delete(report.items)
        forget_in_personas(memory, report.items)  # a persona quoting them is rewritten from what remains
        after = memory.graph.counts()
        report.triplets = before.get("triplets", 0) - after.get("triplets", 0)
        report.entities = before.get("entities", 0) - after.get("entities", 0)
        for address in blobs - store.blobs_in_use(list(blobs)):
            report.blobs += memory.blobs.delete(address)
        with store.transaction():
            memory.facts_log.prune()  # the history of facts that went with their evidence
            store.drop_archived([i.id for i in archived])
        for index in memory.indexes.values():  # the old index files still hold the vectors
            index.save()
        sources = [i.source for i in items if i.source]
        report.files = drop_sources(memory.path, sources, store.sources_in_use(sources))
        report.threads = scrub_checkpoints(
            memory.path, report.items, [i.text for i in items], timeout=store.busy_timeout
        )
        report.wal_truncated = store.purge()
        return report

    # -- decay and prune ---------------------------------------------------------------------
    def scores(
        self, ids: Sequence[str] | None = None, *, policy: ForgetPolicy | None = None, now: Any = None
    ) -> dict[str, float]:
        """The retention score of each item (all items by default)."""
        policy = policy or ForgetPolicy()
        ids = list(self.memory.store.ids()) if ids is None else list(ids)
        today = _parse(to_iso(now) if now is not None else utc_now())
        stats = self.memory.store.stats(ids)
        out = {}
        for item in self.memory.store.get(ids):
            if item is None:
                continue
            accesses, last_access, importance = stats.get(item.id, (0, None, 1.0))
            born = _parse(item.event_time or item.ingest_time or utc_now())
            seen = _parse(last_access) if last_access else born
            age = (today - max(born, seen)).total_seconds() / 86_400
            out[item.id] = decay_score(age, accesses, importance, policy)
        return out

    def prune(self, policy: ForgetPolicy | None = None, *, now: Any = None) -> ForgetReport:
        """Archive every item older than ``min_age_days`` whose score is under ``threshold``."""
        policy = policy or ForgetPolicy()
        today = _parse(to_iso(now) if now is not None else utc_now())
        scores = self.scores(policy=policy, now=now)
        weak = []
        for item in self.memory.store.get([i for i, s in scores.items() if s < policy.threshold]):
            if item is not None:
                born = _parse(item.event_time or item.ingest_time or utc_now())
                if (today - born).total_seconds() / 86_400 >= policy.min_age_days:
                    weak.append(item.id)
        befores = {space: index.generation for space, index in self.memory.indexes.items()}
        moved = self.memory.store.archive(weak, reason=f"decay score < {policy.threshold}")
        for space, index in self.memory.indexes.items():
            index.applied(moved, None, befores[space])
        if moved:
            self.memory.graph.delete_item_links(moved)
        return ForgetReport(items=moved)

    def restore(self, ids: Sequence[str]) -> list[Item]:
        """Bring archived items back into every store and index (and the graph)."""
        restored = self.memory.store.restore(ids)
        for index in self.memory.indexes.values():
            index.refresh(force=True)
        if restored and self.memory.config.graph.extract_on_add:
            self.memory._extract(restored)
        return restored


def _parse(iso: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(iso)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def blob_addresses(item: Item) -> list[str]:
    """The media blobs an item holds: its own and its keyframes'."""
    out = [item.blob] if item.blob else []
    out += [k["blob"] for k in item.metadata.get("keyframes", []) if isinstance(k, dict) and "blob" in k]
    return out
