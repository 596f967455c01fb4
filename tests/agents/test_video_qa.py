"""The video QA agent: ingest once, coarse-to-fine retrieval, frames in budget, timestamped answers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest
from mediagen import write_video

from omnimem.agents.video_qa import VideoQAConfig, ask_video, build_video_qa_agent
from omnimem.errors import ConfigError
from omnimem.vlm.base import Generation, as_messages
from omnimem.vlm.prompts import NO_ANSWER

pytest.importorskip("langgraph.checkpoint.sqlite")
SPAN = re.compile(r"\[(\d\d):(\d\d):(\d\d)-(\d\d):(\d\d):(\d\d)\]")


class ScriptedVLM:
    """Cites the first evidence line containing ``needle``; says NO_ANSWER for the first ``refuse`` calls."""

    name = "scripted-vlm"

    def __init__(self, needle: str, *, refuse: int = 0) -> None:
        self.needle, self.refuse, self.calls = needle, refuse, []

    def generate(self, messages, *, images=(), max_new_tokens=256, temperature=0.0, json_schema=None) -> Generation:
        prompt = as_messages(messages)[-1].content
        self.calls.append({"prompt": prompt, "images": list(images)})
        line = next((ln for ln in prompt.splitlines() if ln.startswith("[E") and self.needle in ln.lower()), None)
        if self.refuse or line is None:
            self.refuse = max(0, self.refuse - 1)
            text = NO_ANSWER
        else:
            text = f"A red balloon floats over the harbour [{line[1 : line.index(']')]}]."
        return Generation(text, len(prompt.split()), len(text.split()), 0.0)

    def stream(self, messages, *, images=(), max_new_tokens=256, temperature=0.0) -> Iterator[str]:
        yield self.generate(messages).text

    def count_tokens(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text))


@pytest.fixture(scope="module")
def video_mem(tmp_path_factory, speak):
    """A 24 s video (cuts at 5, 11, 16.5, 21 s) narrated at 1 s, ingested once into a hash-encoder memory."""
    import omnimem
    from omnimem.encoders.hashing import HashEncoder

    tmp = tmp_path_factory.mktemp("videoqa")
    speech = speak("The red balloon floats over the harbour at noon.", tmp / "s.wav")
    audio = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(16000 * 24, np.float32)])[: 16000 * 24]
    path = write_video(tmp / "v.mp4", audio=audio)
    config = omnimem.MemoryConfig(media=omnimem.config.MediaConfig(segment_s=6.0))
    with omnimem.Memory.open(tmp / "m", encoder=HashEncoder(64), config=config) as mem:
        ids = mem.add_video(path)
        yield mem, path, [mem.get(i) for i in ids]


def _seconds(match: re.Match) -> tuple[int, int]:
    h1, m1, s1, h2, m2, s2 = map(int, match.groups())
    return h1 * 3600 + m1 * 60 + s1, h2 * 3600 + m2 * 60 + s2


def test_answers_with_a_timestamp_inside_the_narrated_segment(video_mem):
    mem, path, segments = video_mem
    (said,) = [s for s in segments if "balloon" in s.text.lower()]
    app = build_video_qa_agent(mem, ScriptedVLM("balloon"), checkpointer=_saver())
    steps = []
    out = ask_video(app, "What floats over the harbour?", video=str(path), on_step=lambda n, _: steps.append(n))
    assert steps == ["ingest", "coarse", "fine", "answer"]
    assert out["episode"] == said.episode and out["round"] == 1
    (match,) = SPAN.finditer(out["answer"])
    start, end = _seconds(match)
    assert said.t_start <= start <= 1.0 < end and end <= said.t_end + 1  # narration at 1-4 s
    assert out["timestamps"] == [[said.t_start, said.t_end]] and out["citations"][0]["item"] == said.id
    assert len(mem.store.read("SELECT id FROM items WHERE episode = ?", (said.episode,))) > len(segments)


def test_iterates_retrieval_when_the_evidence_is_insufficient(video_mem):
    mem, path, segments = video_mem
    llm = ScriptedVLM("balloon", refuse=1)
    app = build_video_qa_agent(mem, llm, config=VideoQAConfig(k=1, max_rounds=3), checkpointer=_saver())
    out = ask_video(app, "What floats over the harbour?", episode=segments[0].episode)
    (said,) = [s.id for s in segments if "balloon" in s.text.lower()]
    assert out["round"] == 2 and out["seen"] == [said] and len(llm.calls) == 2  # round 2: nothing new, stop
    assert "[E1]" in llm.calls[0]["prompt"] and "[E1]" not in llm.calls[1]["prompt"]
    capped = build_video_qa_agent(mem, ScriptedVLM("nothing"), config=VideoQAConfig(k=1, max_rounds=2), checkpointer=_saver())  # fmt: skip
    out = ask_video(capped, "What floats over the harbour?", episode=segments[0].episode)
    assert out["round"] == 2 and out["insufficient"] and out["timestamps"] == []


def test_keyframes_are_sent_within_the_visual_token_budget(video_mem):
    mem, path, segments = video_mem
    llm = ScriptedVLM("balloon")
    config = VideoQAConfig(visual_family="qwen2-vl", visual_token_budget=40, max_frames=3, prune=0.0)
    app = build_video_qa_agent(mem, llm, config=config, checkpointer=_saver())
    out = ask_video(app, "What floats over the harbour?", episode=segments[0].episode)
    images = llm.calls[0]["images"]
    keyframes = {str(mem.blobs.path(k["blob"])) for s in segments for k in s.metadata["keyframes"]}
    assert 1 <= len(images) <= 3 and set(images) <= keyframes
    assert out["recall"]["visual_tokens"] <= 40 and out["recall"]["prompt_tokens"] <= config.budget_tokens


def test_a_crashed_question_resumes_and_a_finished_one_is_not_rerun(video_mem, tmp_path):
    from omnimem.agents._recall import open_checkpointer

    mem, path, segments = video_mem
    crashing = ScriptedVLM("balloon")
    crashing.generate = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("the model crashed"))
    ckpt = str(tmp_path / "ckpt.sqlite")
    app = build_video_qa_agent(mem, crashing, checkpointer=open_checkpointer(ckpt))
    with pytest.raises(RuntimeError, match="crashed"):
        ask_video(app, "What floats over the harbour?", episode=segments[0].episode)
    llm = ScriptedVLM("balloon")
    again = build_video_qa_agent(mem, llm, checkpointer=open_checkpointer(ckpt))
    steps = []
    out = ask_video(again, "What floats over the harbour?", episode=segments[0].episode, on_step=lambda n, _: steps.append(n))  # fmt: skip
    assert steps == ["answer"] and SPAN.search(out["answer"])
    ask_video(again, "What floats over the harbour?", episode=segments[0].episode)
    assert len(llm.calls) == 1


def test_config_and_input_errors_say_how_to_fix_them(mem):
    with pytest.raises(ConfigError, match="visual_family"):
        VideoQAConfig(visual_family="clip")
    app = build_video_qa_agent(mem, ScriptedVLM("x"), checkpointer=_saver())
    with pytest.raises(ConfigError, match="name a video"):
        ask_video(app, "What happens?")


@pytest.mark.slow
def test_real_smollm2_answers_about_the_video(video_mem):
    from omnimem.vlm import create_generator

    mem, path, segments = video_mem
    app = build_video_qa_agent(mem, create_generator("smollm2"), config=VideoQAConfig(max_new_tokens=32, max_rounds=1), checkpointer=_saver())  # fmt: skip
    out = ask_video(app, "What floats over the harbour?", video=str(path))
    assert isinstance(out["answer"], str) and out["round"] == 1  # the words vary between CPU kernels
    assert out["insufficient"] or SPAN.search(out["answer"])


def _saver():
    from langgraph.checkpoint.memory import InMemorySaver

    return InMemorySaver()
