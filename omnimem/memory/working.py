"""Working memory: the token-budgeted buffer of the current conversation (MemGPT's main context,
MIRIX's working memory). Turns enter the buffer; when it exceeds its budget the oldest turns spill
into long-term (episodic) memory, in order, as one session; ``flush`` (or leaving the ``with``
block) spills the rest. What the buffer holds is what a prompt shows verbatim; everything spilled
is reached through search.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omnimem.errors import ConfigError
from omnimem.types import to_iso, utc_now

if TYPE_CHECKING:  # pragma: no cover
    from omnimem.memory.core import Memory

__all__ = ["Turn", "WorkingMemory", "estimate_tokens"]


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (~4 characters or 0.75 words per token), for when no tokenizer is given."""
    return max(1, round(max(len(text) / 4, len(text.split()) / 0.75)))


@dataclass(frozen=True)
class Turn:
    speaker: str | None  # who said it
    text: str  # what was said
    timestamp: str  # ISO-8601
    tokens: int  # its size under the buffer's token counter


class WorkingMemory:
    """A bounded buffer of recent turns that spills into ``memory`` (session ``session``)."""

    def __init__(
        self, memory: Memory, *, budget_tokens: int = 1_024, session: str | None = None, episode: str | None = None,
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:  # fmt: skip
        if budget_tokens <= 0:
            raise ConfigError(f"budget_tokens must be positive, got {budget_tokens}")
        self.memory = memory
        self.budget_tokens = budget_tokens
        self.session = session or f"session-{utc_now()}"
        self.episode = episode
        self.count_tokens = count_tokens or estimate_tokens
        self.turns: deque[Turn] = deque()
        self.spilled: list[str] = []  # ids of the items written so far

    @property
    def tokens(self) -> int:
        return sum(t.tokens for t in self.turns)

    def append(self, text: str, *, speaker: str | None = None, timestamp: Any = None) -> list[str]:
        """Add a turn; returns the ids of turns that spilled to long-term memory because of it."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("a turn needs non-empty text")
        turn = Turn(speaker, text, to_iso(timestamp) or utc_now(), self.count_tokens(f"{speaker or ''}: {text}"))
        self.turns.append(turn)
        spill = []
        while self.tokens > self.budget_tokens and len(self.turns) > 1:
            spill.append(self.turns.popleft())
        return self._write(spill)

    def flush(self) -> list[str]:
        """Spill every buffered turn to long-term memory; returns their ids."""
        spill = list(self.turns)
        self.turns.clear()
        return self._write(spill)

    def render(self) -> str:
        """The buffer as prompt text, oldest first."""
        return "\n".join(f"{t.speaker}: {t.text}" if t.speaker else t.text for t in self.turns)

    def _write(self, turns: list[Turn]) -> list[str]:
        if not turns:
            return []
        ids = self.memory.add_conversation(
            [{"speaker": t.speaker, "text": t.text, "timestamp": t.timestamp} for t in turns],
            session=self.session, episode=self.episode,
        )  # fmt: skip
        self.spilled += ids
        return ids

    def __enter__(self) -> WorkingMemory:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.flush()
