"""Chat with long-term memory: a LangGraph ``StateGraph`` over a ``Memory`` and a ``Generator``.

One graph run per user message::

    recall -> answer -> write --(every N turns)--> consolidate (starts the job, does not wait)
                          |
                         END

- *recall*: the working buffer (the thread's recent turns, verbatim), the episodic summaries of the
  sessions the hits come from, the semantic facts of entities named in the question, and GRASP's
  evidence (``mem.context``: items and graph facts), packed into the token budget
  (:func:`omnimem.agents._recall._recall`);
- *answer*: the generator answers citing ``[E2]``-style ids; ``citations`` maps them back to item
  ids (``W`` = a buffered turn, ``S`` = a session summary, ``E`` = a retrieved item, ``K`` = a graph fact);
- *write*: the user and assistant turns go to memory (``add_conversation``) in the user's namespace;
- *consolidate*: every ``consolidate_every`` turns of a thread, ``Memory.consolidate_in_background()``:
  a job on the memory's own thread, never run inside a user's turn.

Namespaces: the state's ``user`` is the memory's ``episode`` (``user:<name>``); a user's sessions
(one per day by default) all sit under it, so one user's facts stay together across days and apart
from another user's. State is checkpointed (thread = user + session by default) so a crashed turn
resumes at the node it was in.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any, TypedDict

from omnimem.agents._recall import _recall, cite, compile_graph, question_words, state_graph, stream_updates
from omnimem.errors import ConfigError
from omnimem.memory.working import estimate_tokens
from omnimem.types import to_iso, utc_now
from omnimem.vlm.compress import CompressionConfig
from omnimem.vlm.prompts import Evidence, Triplet

__all__ = ["ChatConfig", "ChatState", "build_chat_agent", "chat", "user_episode", "chat_thread"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ChatConfig:
    """How the chat agent recalls, answers and consolidates."""

    budget_tokens: int = 1_536  # the whole answer prompt, in the generator's tokens
    k: int = 6  # search hits recalled per message
    summaries: int = 2  # episodic summaries (of the hits' sessions) shown at most
    max_facts: int = 8  # semantic facts about entities in the question shown at most
    buffer_tokens: int = 256  # working memory: recent turns of the thread kept verbatim (estimated tokens)
    max_new_tokens: int = 128  # answer length cap, in tokens
    consolidate_every: int = 10  # user turns of a thread between background consolidations; 0 = never
    assistant: str = "assistant"  # the speaker name of the agent's own turns in memory
    checkpoint: str | None = None  # SQLite checkpoint path; None = <memory>/chat_agent.ckpt.sqlite
    compression: CompressionConfig = CompressionConfig(
        min_utility=-1.0, family="none"
    )  # packing; token_budget is overridden

    def __post_init__(self) -> None:
        if self.budget_tokens < 64 or self.max_new_tokens < 1:
            raise ConfigError("budget_tokens must be >= 64 and max_new_tokens >= 1")
        if self.k < 1 or self.summaries < 0 or self.max_facts < 0 or self.buffer_tokens < 0:
            raise ConfigError("k must be >= 1; summaries, max_facts and buffer_tokens >= 0")
        if self.consolidate_every < 0:
            raise ConfigError(f"consolidate_every must be >= 0 (0 = never), got {self.consolidate_every}")
        if not self.assistant.strip():
            raise ConfigError("assistant (the agent's speaker name) must be non-empty")


class ChatState(TypedDict, total=False):
    """One thread's state (plain JSON-like values, so the checkpointer can store it)."""

    user: str  # input: who is talking (the namespace)
    message: str  # input: what they said
    session: str  # input, optional: the session id (default "<user>/<YYYY-MM-DD>" of the timestamp)
    timestamp: str  # input, optional: ISO-8601 time of the message (default now)
    buffer: list[dict]  # working memory: recent turns {speaker, text, timestamp, id}
    recall: dict  # {messages, sources, prompt_tokens}: the packed prompt
    answer: str  # the generator's answer
    citations: list[dict]  # [{id: "E2", item: <item id or node id>}] the answer cites
    written: list[str]  # item ids of the turns written this run
    turns: int  # user turns answered in this thread
    consolidated: dict  # {"started_at_turn": n}: when this thread last started a background consolidation


def user_episode(user: str) -> str:
    """The memory episode that holds a user's conversations."""
    return f"user:{user}"


def chat_thread(user: str, session: str) -> str:
    """The default checkpoint thread of a user's session."""
    return f"chat:{user}:{session}"


def _session(state: ChatState) -> str:
    return state.get("session") or f"{state['user']}/{(state.get('timestamp') or utc_now())[:10]}"


class _Nodes:
    def __init__(self, memory: Any, generator: Any, config: ChatConfig) -> None:
        self.mem, self.gen, self.cfg = memory, generator, config

    def _facts(self, question: str, episode: str) -> list[Triplet]:
        """Current facts about entities the question names, from this user's items only."""
        seen, out = set(), []
        for name in question_words(question):
            for fact in self.mem.facts(name):
                if fact.id in seen or len(out) >= self.cfg.max_facts:
                    continue
                seen.add(fact.id)
                owners = [i for i in self.mem.store.get(list(fact.sources)) if i is not None]
                if any(i.episode == episode for i in owners):
                    out.append(Triplet(fact.head, fact.relation, fact.tail))
        return out

    def _summaries(self, hits: list[Any], episode: str) -> list[Evidence]:
        if not self.cfg.summaries:
            return []
        wanted = list(dict.fromkeys(h.session for h in hits if h.session))[: self.cfg.summaries]
        nodes = {n.session: n for n in self.mem.episodes("session", episode=episode) if n.session in wanted}
        out = []
        for n, session in enumerate(wanted, start=1):
            node = nodes.get(session)
            if node is not None and node.summary.strip():
                when = (node.first_time or "")[:10]
                text = f"Summary of session {session}{f' ({when})' if when else ''}: {node.summary}"
                out.append(Evidence(id=f"S{n}", text=text, metadata={"item": node.id}))
        return out

    def recall(self, state: ChatState) -> dict:
        user, message = state.get("user"), state.get("message")
        if not isinstance(user, str) or not user.strip() or not isinstance(message, str) or not message.strip():
            raise ConfigError("the chat state needs a non-empty 'user' and 'message'; invoke with {'user': ..., 'message': ...}")  # fmt: skip
        episode = user_episode(user)
        sessions = [n.session for n in self.mem.episodes("session", episode=episode) if n.session]
        buffer = state.get("buffer") or []
        context = [
            Evidence(id=f"W{n}", text=f"{t['speaker']}: {t['text']}", metadata={"item": t["id"], "time": t["timestamp"]})
            for n, t in enumerate(buffer, start=1)
        ]  # fmt: skip
        packed = _recall(
            self.mem, message, self.cfg.budget_tokens, count_tokens=self.gen.count_tokens, k=self.cfg.k,
            sessions=sessions, context=context, triplets=self._facts(message, episode), config=self.cfg.compression,
            exclude=[t["id"] for t in buffer], expand=lambda hits: (self._summaries(hits, episode), []),
            grasp=dataclasses.replace(self.mem.config.grasp, summaries=False),  # the hits' sessions' summaries instead
        )  # fmt: skip
        log.debug("chat recall for %s: %d tokens, %d sources", user, packed.prompt_tokens, len(packed.sources))
        return {"recall": {"messages": packed.messages, "sources": packed.sources, "prompt_tokens": packed.prompt_tokens}}  # fmt: skip

    def answer(self, state: ChatState) -> dict:
        recall = state["recall"]
        text = self.gen.generate(recall["messages"], max_new_tokens=self.cfg.max_new_tokens).text.strip()
        return {"answer": text, "citations": cite(text, recall["sources"])}

    def write(self, state: ChatState) -> dict:
        user, when = state["user"], to_iso(state.get("timestamp")) or utc_now()
        turns = [
            {"speaker": user, "text": state["message"].strip(), "timestamp": when},
            {"speaker": self.cfg.assistant, "text": state["answer"] or "(no answer)", "timestamp": when},
        ]
        ids = self.mem.add_conversation(
            turns, session=_session(state), episode=user_episode(user), start=2 * (state.get("turns") or 0)
        )
        buffer = [*(state.get("buffer") or []), *({**t, "id": i} for t, i in zip(turns, ids))]
        while buffer and sum(estimate_tokens(f"{t['speaker']}: {t['text']}") for t in buffer) > self.cfg.buffer_tokens:
            buffer.pop(0)
        return {"written": ids, "buffer": buffer, "turns": (state.get("turns") or 0) + 1}

    def consolidate(self, state: ChatState) -> dict:
        """Start consolidation on the memory's job thread; the turn does not wait for it."""
        self.mem.consolidate_in_background()
        log.info("chat: consolidation started after %d turns", state.get("turns", 0))
        return {"consolidated": {"started_at_turn": state.get("turns", 0)}}

    def route(self, state: ChatState) -> str:
        every = self.cfg.consolidate_every
        return "consolidate" if every and state.get("turns", 0) % every == 0 else "end"


def build_chat_agent(memory: Any, generator: Any, *, config: ChatConfig | None = None, checkpointer: Any = None) -> Any:
    """The compiled chat graph. Invoke / stream it with ``{"user", "message", "session"?, "timestamp"?}``
    and a ``thread_id`` (see :func:`chat`); the result has ``answer``, ``citations`` and ``written``.

    ``checkpointer``: a LangGraph checkpointer; default a SQLite one at ``config.checkpoint`` (or
    ``<memory>/chat_agent.ckpt.sqlite``).
    """
    StateGraph, START, END = state_graph()
    cfg = config or ChatConfig()
    nodes = _Nodes(memory, generator, cfg)
    graph = StateGraph(ChatState)
    for name in ("recall", "answer", "write", "consolidate"):
        graph.add_node(name, getattr(nodes, name))
    graph.add_edge(START, "recall")
    graph.add_edge("recall", "answer")
    graph.add_edge("answer", "write")
    graph.add_conditional_edges("write", nodes.route, {"consolidate": "consolidate", "end": END})
    graph.add_edge("consolidate", END)
    return compile_graph(graph, memory, checkpointer, cfg.checkpoint, "chat_agent.ckpt.sqlite")


def chat(
    app: Any, user: str, message: str, *, session: str | None = None, timestamp: Any = None,
    thread: str | None = None, on_step: Callable[[str, dict], None] | None = None,
) -> dict:  # fmt: skip
    """Say ``message`` as ``user``; returns the thread's state after the answer (``answer``, ``citations``).

    A turn of this thread that crashed half-way is first resumed from its checkpoint; ``on_step``
    receives each node's update as it streams.
    """
    when = to_iso(timestamp) or utc_now()
    session = session or f"{user}/{when[:10]}"
    config = {"configurable": {"thread_id": thread or chat_thread(user, session)}}
    snapshot = app.get_state(config)
    if snapshot.next:
        log.info("chat: resuming thread %s at %s", config["configurable"]["thread_id"], ", ".join(snapshot.next))
        state = stream_updates(app, None, config, on_step, "chat")
        if snapshot.values.get("message") == message:
            return state
    return stream_updates(
        app, {"user": user, "message": message, "session": session, "timestamp": when}, config, on_step, "chat"
    )
