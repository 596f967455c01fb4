"""Long-video QA: a LangGraph ``StateGraph`` that ingests a video once and answers with timestamps.

One graph run per question::

    ingest -> coarse -> fine -> answer --(no answer, rounds left)--> fine
                                  |
                                 END

- *ingest*: ``Memory.add_video`` when the state names a video (a no-op returning its segments
  when the memory already holds it); the video's episode id goes to the state;
- *coarse*: the episodic tree, top down: the episode summary, then its sessions (one per segment);
- *fine*: search restricted to the sessions not yet shown, pruned to hits near the best score, each
  segment's keyframes (``metadata["keyframes"]`` blobs) offered as frames; everything packed into
  the token budget, frames within the visual-token budget (:func:`omnimem.agents._recall._recall`);
- *answer*: cited ``[E2]`` ids become ``[HH:MM:SS-HH:MM:SS]`` spans. When the model says the
  evidence does not contain the answer (:func:`omnimem.vlm.prompts.is_no_answer`), *fine* runs
  again on the next-best segments, at most ``max_rounds`` times (WorldMM's iterative retrieval).

State is checkpointed (thread = video + question by default) so a crashed run resumes.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from typing import Any, TypedDict

from omnimem.agents._recall import _recall, cite, compile_graph, hms, span_label, state_graph, stream_updates
from omnimem.errors import ConfigError
from omnimem.types import content_id
from omnimem.vlm.compress import VISUAL_FAMILIES, CompressionConfig
from omnimem.vlm.prompts import Evidence, is_no_answer

__all__ = ["VideoQAConfig", "VideoQAState", "build_video_qa_agent", "ask_video", "video_thread"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class VideoQAConfig:
    """How the video QA agent retrieves, picks frames and answers."""

    budget_tokens: int = 1_536  # the whole answer prompt (text + image tokens), in the generator's tokens
    visual_family: str = "none"  # how frames are sent: "qwen2-vl" / "llava" for a VLM; "none" for a text-only model
    visual_token_budget: int = 768  # image tokens of the kept keyframes at most
    max_frames: int = 4  # keyframes sent at most
    k: int = 4  # segments retrieved per round
    prune: float = 0.5  # keep segments scoring >= this share of the round's best (0 = keep all k)
    max_rounds: int = 2  # retrieval rounds at most (1 = no retry when the evidence is insufficient)
    max_new_tokens: int = 96  # answer length cap, in tokens
    checkpoint: str | None = None  # SQLite checkpoint path; None = <memory>/video_qa.ckpt.sqlite

    def __post_init__(self) -> None:
        if self.visual_family not in VISUAL_FAMILIES:
            raise ConfigError(f"unknown visual_family {self.visual_family!r}; use one of {', '.join(VISUAL_FAMILIES)}")
        if self.budget_tokens < 64 or self.visual_token_budget < 0 or self.max_frames < 0:
            raise ConfigError("budget_tokens must be >= 64; visual_token_budget and max_frames >= 0")
        if self.k < 1 or self.max_rounds < 1 or self.max_new_tokens < 1:
            raise ConfigError("k, max_rounds and max_new_tokens must be >= 1")
        if not 0.0 <= self.prune <= 1.0:
            raise ConfigError(f"prune is a share of the best score in [0, 1], got {self.prune}")


class VideoQAState(TypedDict, total=False):
    """One question's state (plain JSON-like values, so the checkpointer can store it)."""

    video: str  # input, optional: a video file path (ingested unless already in memory)
    episode: str  # input, optional when video is given: the video's episode id in memory
    question: str  # input: the question
    summary: dict  # {text, node}: the episode summary (coarse level)
    sessions: list[str]  # the video's sessions (segments), in time order
    seen: list[str]  # segment item ids shown in earlier rounds
    round: int  # retrieval rounds run
    recall: dict  # {messages, images, sources, spans, prompt_tokens, visual_tokens}: the packed prompt
    raw: str  # the generator's answer, with evidence ids
    answer: str  # the answer with cited ids replaced by [HH:MM:SS-HH:MM:SS]
    timestamps: list[list[float]]  # [t_start, t_end] seconds of the cited segments
    citations: list[dict]  # [{id, item}] the answer cites
    insufficient: bool  # the model said the evidence does not contain the answer


def video_thread(source: str, question: str) -> str:
    """The default checkpoint thread of a question about a video (or episode)."""
    return "video-qa-" + content_id({"video": source, "question": question})


class _Nodes:
    def __init__(self, memory: Any, generator: Any, config: VideoQAConfig) -> None:
        self.mem, self.gen, self.cfg = memory, generator, config
        self.compression = CompressionConfig(
            min_utility=-1.0, family=config.visual_family, visual_share=1.0,
            visual_token_budget=config.visual_token_budget, max_frames=config.max_frames,
        )  # fmt: skip

    def ingest(self, state: VideoQAState) -> dict:
        if not (state.get("question") or "").strip():
            raise ConfigError("the video QA state needs a non-empty 'question'")
        episode = state.get("episode")
        if state.get("video"):
            ids = self.mem.add_video(state["video"])
            episode = self.mem.get(ids[0]).episode
        if not episode:
            raise ConfigError("name a video ('video': path) or the episode of one already in memory ('episode': id)")
        return {"episode": episode, "seen": [], "round": 0}

    def coarse(self, state: VideoQAState) -> dict:
        episode = state["episode"]
        top = self.mem.episodes("episode", episode=episode)
        sessions = [n.session for n in self.mem.episodes("session", episode=episode) if n.session]
        if not sessions:
            raise ConfigError(f"episode {episode!r} holds no segments; ingest the video first ('video': path)")
        summary = {"text": top[0].summary, "node": top[0].id} if top and top[0].summary.strip() else {}
        return {"summary": summary, "sessions": sessions}

    def _frames(self, hits: list[Any], first: int) -> list[Evidence]:
        if self.cfg.visual_family == "none" or not self.cfg.max_frames:
            return []
        out = []
        for n, hit in enumerate(hits, start=first):
            for kf in (hit.metadata or {}).get("keyframes", []):
                path = self.mem.blobs.path(kf["blob"])
                out.append(Evidence(
                    id=f"F{len(out) + 1}", text=f"keyframe at {hms(kf['t'])} of [E{n}]", modality="frame",
                    image=str(path), span=(hit.t_start, hit.t_end), score=hit.score, metadata={"item": hit.id},
                ))  # fmt: skip
        return out

    def fine(self, state: VideoQAState) -> dict:
        summary = state.get("summary") or {}
        context = [Evidence(id="V1", text=f"Whole video: {summary['text']}", metadata={"item": summary["node"]})] if summary else []  # fmt: skip
        packed = _recall(
            self.mem, state["question"], self.cfg.budget_tokens, count_tokens=self.gen.count_tokens, k=self.cfg.k,
            sessions=state["sessions"], modalities=["video"], context=context, config=self.compression,
            exclude=state.get("seen") or [], prune=self.cfg.prune, expand=lambda hits: (self._frames(hits, 1), []),
        )  # fmt: skip
        shown = [item for eid, item in packed.sources.items() if eid.startswith("E")]
        log.debug("video QA round %d: segments %s, %d frames", state.get("round", 0) + 1, shown, len(packed.images))
        return {
            "recall": dataclasses.asdict(packed), "round": state.get("round", 0) + 1,
            "seen": [*(state.get("seen") or []), *shown],
        }  # fmt: skip

    def answer(self, state: VideoQAState) -> dict:
        recall = state["recall"]
        images = recall["images"] if self.cfg.visual_family != "none" else []
        raw = self.gen.generate(recall["messages"], images=images, max_new_tokens=self.cfg.max_new_tokens).text.strip()
        citations = cite(raw, recall["sources"])
        spans = [recall["spans"][c["id"]] for c in citations if c["id"] in recall["spans"]]
        insufficient = is_no_answer(raw)
        if not spans and not insufficient:  # an uncited answer: point at the best segment shown
            best = next((eid for eid in recall["spans"] if eid.startswith("E")), None)
            spans = [recall["spans"][best]] if best else []
        answer = re.sub(r"\[([^\[\]\n]{1,200})\]", lambda m: _label(m, recall["spans"]), raw)
        if spans and not any(span_label(s) in answer for s in spans):
            answer = f"{answer} {span_label(spans[0])}"
        spans = [list(s) for s in dict.fromkeys(tuple(s) for s in spans)]
        return {"raw": raw, "answer": answer, "timestamps": spans, "citations": citations, "insufficient": insufficient}  # fmt: skip

    def route(self, state: VideoQAState) -> str:
        shown = any(eid.startswith("E") for eid in state["recall"]["sources"])  # this round found new segments
        more = shown and len(state.get("seen") or []) < len(state["sessions"])
        return "fine" if state.get("insufficient") and state["round"] < self.cfg.max_rounds and more else "end"


def _label(match: re.Match, spans: dict[str, list[float]]) -> str:
    parts = [p.strip() for p in match.group(1).split(",")]
    labels = [span_label(spans[p]) for p in parts if p in spans]
    return " ".join(dict.fromkeys(labels)) if labels else match.group(0)


def build_video_qa_agent(
    memory: Any, generator: Any, *, config: VideoQAConfig | None = None, checkpointer: Any = None
) -> Any:
    """The compiled video QA graph. Invoke / stream it with ``{"question", "video"?, "episode"?}`` and a
    ``thread_id`` (see :func:`ask_video`); the result has ``answer`` (with ``[HH:MM:SS-HH:MM:SS]``
    spans), ``timestamps``, ``citations`` and ``round``.

    ``checkpointer``: a LangGraph checkpointer; default a SQLite one at ``config.checkpoint`` (or
    ``<memory>/video_qa.ckpt.sqlite``).
    """
    StateGraph, START, END = state_graph()
    cfg = config or VideoQAConfig()
    nodes = _Nodes(memory, generator, cfg)
    graph = StateGraph(VideoQAState)
    for name in ("ingest", "coarse", "fine", "answer"):
        graph.add_node(name, getattr(nodes, name))
    graph.add_edge(START, "ingest")
    graph.add_edge("ingest", "coarse")
    graph.add_edge("coarse", "fine")
    graph.add_edge("fine", "answer")
    graph.add_conditional_edges("answer", nodes.route, {"fine": "fine", "end": END})
    return compile_graph(graph, memory, checkpointer, cfg.checkpoint, "video_qa.ckpt.sqlite")


def ask_video(
    app: Any, question: str, *, video: str | None = None, episode: str | None = None, thread: str | None = None,
    on_step: Callable[[str, dict], None] | None = None,
) -> dict:  # fmt: skip
    """Ask ``question`` about ``video`` (a path) or ``episode``; returns the final state.

    A run of the same thread that crashed is resumed from its checkpoint; a finished one is returned
    as it is. ``on_step`` receives each node's update as it streams.
    """
    source = str(video or episode or "")
    config = {"configurable": {"thread_id": thread or video_thread(source, question)}, "recursion_limit": 32}
    snapshot = app.get_state(config)
    if snapshot.next:
        log.info("video QA: resuming thread %s at %s", config["configurable"]["thread_id"], ", ".join(snapshot.next))
        inputs = None
    elif snapshot.values.get("answer") is not None and snapshot.values.get("question") == question:
        return snapshot.values
    else:
        inputs = {"question": question, **({"video": str(video)} if video else {}), **({"episode": episode} if episode else {})}  # fmt: skip
    return stream_updates(app, inputs, config, on_step, "video QA")
