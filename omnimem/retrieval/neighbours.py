"""Session-local context: a turn's score borrows from the turns around it.

Evidence in a conversation is spread over adjacent turns: the question lives in one turn, its answer
in the next ("How was camping?" / "It was awesome, we roasted marshmallows ..."), and an image share
sits between a remark and the reply about it. After fusion, each candidate gets
``score + beta * max(score(previous turn), score(next turn))`` within its session, and the
neighbours of the best candidates join the candidates (with no score of their own), so an answer
that shares no word with the question is still found beside the turn that does. Measured on LoCoMo
dev (2 conversations, 302 questions), beta = 0.5 lifts hybrid evidence recall@10 from 0.69 to 0.79.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from omnimem.errors import ConfigError
from omnimem.retrieval.fusion import Fused

__all__ = ["neighbour_smoothing"]

Neighbours = Callable[[Sequence[str]], Mapping[str, tuple[str | None, str | None]]]


def neighbour_smoothing(fused: Sequence[Fused], neighbours: Neighbours, *, beta: float, expand: int) -> list[Fused]:
    """Rescore fused candidates with their session neighbours' scores; best first.

    ``neighbours(ids) -> {id: (previous id | None, next id | None)}``. The neighbours of the top
    ``expand`` candidates become candidates too. Ranks of the original retrievers are kept; a
    candidate added here has the rank ``{"context": 0}``.
    """
    if beta < 0 or expand < 0:
        raise ConfigError("neighbour weight and expansion must be >= 0")
    if beta == 0 or not fused:
        return list(fused)
    score = {f.id: f.score for f in fused}
    entries = {f.id: f for f in fused}
    links = dict(neighbours([f.id for f in fused]))
    for f in fused[:expand]:
        for other in links.get(f.id, (None, None)):
            if other is not None and other not in score:
                score[other] = 0.0
                entries[other] = Fused(other, 0.0, {"context": 0})
    # an added neighbour's own neighbours, read off the candidates' links: whatever precedes or follows
    # it and is a candidate links to it; anything else scores nothing (no second lookup)
    added = {i for i in score if i not in links}
    if added:
        around: dict[str, list[str | None]] = {i: [None, None] for i in added}
        for item_id, (before, after) in links.items():
            if after in around:
                around[after][0] = item_id
            if before in around:
                around[before][1] = item_id
        links.update({i: (b, a) for i, (b, a) in around.items()})
    rescored = []
    for item_id, own in score.items():
        before, after = links.get(item_id, (None, None))
        bonus = max(score.get(before, 0.0) if before else 0.0, score.get(after, 0.0) if after else 0.0)
        entry = entries[item_id]
        rescored.append(Fused(item_id, own + beta * bonus, dict(entry.ranks)))
    return sorted(rescored, key=lambda f: (-f.score, min(f.ranks.values()), f.id))
