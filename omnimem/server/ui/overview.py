"""What the UI shows about a memory as a whole: its size, modalities, speakers, sessions, last activity.

The Memory API has no call for counts by modality or the list of speakers, so :class:`Overviews`
reads them off the items (in batches, at most ``max_items``) and keeps the result until the memory
changes: the stamp is the item count and the versions of the episodic nodes, which every add,
update and delete of an item bumps. A library call (``Memory.stats()``) would make this O(1).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Overview", "Overviews", "episode_title", "BATCH"]

BATCH = 500  # items read at a time


@dataclass(frozen=True)
class Overview:
    """One memory at a glance."""

    name: str  # the memory's name under the server root
    items: int  # items stored
    modalities: dict[str, int]  # modality -> items (over the first ``scanned`` items)
    speakers: tuple[str, ...]  # distinct speakers, sorted
    sessions: int  # session nodes of the episodic tree
    episodes: int  # episode nodes
    first_time: str | None  # ISO-8601, the earliest event time
    last_time: str | None  # ISO-8601, the latest event time
    last_activity: str | None  # ISO-8601 UTC, the last item remembered or change of an episode or session
    scanned: int  # items the counts were read from (< items when the memory is larger than the scan limit)
    graph: dict[str, int] = field(default_factory=dict)  # entities, triplets ...

    @property
    def partial(self) -> bool:
        return self.scanned < self.items


class Overviews:
    """Overviews of the memories of one server, kept until each memory changes."""

    def __init__(self, *, max_items: int = 50_000) -> None:
        self.max_items = max_items  # items read for the modality and speaker counts
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple, Overview]] = {}

    def of(self, name: str, mem: Any) -> Overview:
        """The overview of memory ``name`` (open as ``mem``)."""
        nodes = mem.store.nodes()  # spans and counts only: no summary is refreshed here
        stamp = (len(mem), tuple(sorted((n.id, n.version) for n in nodes)))
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        modalities: Counter[str] = Counter()
        speakers: set[str] = set()
        latest: list[str] = [n.updated_at for n in nodes if n.updated_at]
        scanned = 0
        batch: list[str] = []
        for item_id in mem.store.ids():
            batch.append(item_id)
            if len(batch) == BATCH:
                scanned += _count(mem, batch, modalities, speakers, latest)
                batch = []
            if scanned + len(batch) >= self.max_items:
                break
        scanned += _count(mem, batch, modalities, speakers, latest)
        times = [t for n in nodes for t in (n.first_time, n.last_time) if t]
        overview = Overview(
            name=name, items=stamp[0], modalities=dict(modalities.most_common()), speakers=tuple(sorted(speakers)),
            sessions=sum(n.level == "session" for n in nodes), episodes=sum(n.level == "episode" for n in nodes),
            first_time=min(times, default=None), last_time=max(times, default=None),
            last_activity=max(latest, default=None), scanned=scanned,
            graph=mem.graph.counts(),
        )  # fmt: skip
        with self._lock:
            self._cache[name] = (stamp, overview)
        return overview


def _count(mem: Any, ids: list[str], modalities: Counter[str], speakers: set[str], latest: list[str]) -> int:
    items = [i for i in mem.store.get(ids) if i is not None] if ids else []
    for item in items:
        modalities[item.modality] += 1
        if item.speaker:
            speakers.add(item.speaker)
    stamps = [i.ingest_time for i in items if i.ingest_time]
    if stamps:
        latest.append(max(stamps))
    return len(ids)


def episode_title(node: Any, sample: Any = None) -> str:
    """How the UI names an episode node: the name of the file it was read from, else its episode id."""
    if not node.episode:
        return "Outside any episode"
    if sample is not None and sample.source and node.episode.startswith("file:"):
        return sample.source.replace("\\", "/").rsplit("/", 1)[-1]
    return node.episode
