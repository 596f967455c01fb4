"""The chat agent: recall -> cited answer -> turns written back -> periodic consolidation, per user."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from omnimem.agents.chat import ChatConfig, build_chat_agent, chat, user_episode
from omnimem.errors import ConfigError
from omnimem.vlm.base import Generation, as_messages
from omnimem.vlm.prompts import NO_ANSWER, is_no_answer

pytest.importorskip("langgraph.checkpoint.sqlite")


class ScriptedLLM:
    """A deterministic generator: for a question containing ``trigger`` it cites the first evidence
    line containing ``needle``; other questions get "Noted." (or NO_ANSWER when scripted)."""

    name = "scripted"

    def __init__(self, script: dict[str, tuple[str, str]], *, fail_first: int = 0) -> None:
        self.script, self.fail_first, self.prompts = script, fail_first, []

    def generate(self, messages, *, images=(), max_new_tokens=256, temperature=0.0, json_schema=None) -> Generation:
        if self.fail_first:
            self.fail_first -= 1
            raise RuntimeError("the model crashed")
        prompt = as_messages(messages)[-1].content
        self.prompts.append(prompt)
        question = prompt.rsplit("Question:", 1)[-1]
        text = "Noted."
        for trigger, (needle, reply) in self.script.items():
            if trigger.lower() in question.lower():
                line = next((ln for ln in prompt.splitlines() if needle in ln and ln.startswith("[")), None)
                text = f"{reply} [{line[1 : line.index(']')]}]" if line else NO_ANSWER
        return Generation(text, len(prompt.split()), len(text.split()), 0.0)

    def stream(self, messages, *, images=(), max_new_tokens=256, temperature=0.0) -> Iterator[str]:
        yield self.generate(messages).text

    def count_tokens(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text))


CAT = {"is my cat called": ("Pixel", "Your cat is called Pixel.")}


def test_citations_map_to_item_ids_and_turns_are_written_back(mem):
    app = build_chat_agent(mem, ScriptedLLM(CAT))
    steps = []
    first = chat(app, "alice", "I adopted a grey cat called Pixel.", timestamp="2024-05-01T09:00:00",
                 on_step=lambda node, update: steps.append(node))  # fmt: skip
    assert steps == ["recall", "answer", "write"]
    assert first["answer"] == "Noted." and len(first["written"]) == 2
    user_turn, bot_turn = (mem.get(i) for i in first["written"])
    assert (user_turn.speaker, bot_turn.speaker) == ("alice", "assistant")
    assert user_turn.episode == user_episode("alice") and user_turn.session == "alice/2024-05-01"
    second = chat(app, "alice", "What is my cat called?", timestamp="2024-05-01T09:01:00")
    assert second["answer"].startswith("Your cat is called Pixel. [")
    (citation,) = second["citations"]
    assert citation["item"] == user_turn.id and "Pixel" in mem.get(citation["item"]).text
    assert [t["text"] for t in second["buffer"]][-2:] == ["What is my cat called?", second["answer"]]


def test_a_later_session_recalls_an_earlier_days_fact_through_search(mem):
    app = build_chat_agent(mem, ScriptedLLM(CAT))
    said = chat(app, "alice", "I adopted a grey cat called Pixel.", timestamp="2024-05-01T09:00:00")
    later = chat(app, "alice", "Remind me, what is my cat called?", timestamp="2024-05-03T18:00:00")
    assert later["session"] == "alice/2024-05-03" and later["buffer"][0]["text"] != said["message"]
    (citation,) = later["citations"]
    assert citation["id"].startswith("E") and citation["item"] == said["written"][0]


def test_two_users_stay_apart(mem):
    app = build_chat_agent(mem, ScriptedLLM(CAT))
    chat(app, "alice", "I adopted a grey cat called Pixel.", timestamp="2024-05-01T09:00:00")
    bob = chat(app, "bob", "What is my cat called?", timestamp="2024-05-02T09:00:00")
    assert is_no_answer(bob["answer"]) and bob["citations"] == []
    ids = mem.store.read("SELECT id FROM items WHERE episode = ?", (user_episode("bob"),))
    assert len(ids) == 2  # bob's question and the reply, nothing of alice's


def test_other_users_facts_never_reach_the_prompt(mem):
    llm = ScriptedLLM(CAT)
    app = build_chat_agent(mem, llm)
    chat(app, "alice", "Alice's cat Pixel lives in Berlin.", timestamp="2024-05-01T09:00:00")
    chat(app, "bob", "Where does Pixel live?", timestamp="2024-05-02T09:00:00")
    assert "Berlin" not in llm.prompts[-1]


def test_consolidation_runs_every_n_turns_in_the_background(mem, monkeypatch):
    import threading

    import omnimem.memory.consolidate as consolidation

    release, runs, real = threading.Event(), [], consolidation.consolidate

    def slow(memory, **kwargs):  # a consolidation that takes as long as the test wants
        runs.append(threading.current_thread().name)
        release.wait(30)
        return real(memory, **kwargs)

    monkeypatch.setattr(consolidation, "consolidate", slow)
    app = build_chat_agent(mem, ScriptedLLM(CAT), config=ChatConfig(consolidate_every=2))
    steps = []
    for n, text in enumerate(["I adopted a cat called Pixel.", "I live in Lisbon.", "I like tea."]):
        chat(app, "alice", text, timestamp=f"2024-05-01T09:0{n}:00", on_step=lambda node, _: steps.append(node))
    assert steps.count("consolidate") == 1 and steps[6] == "consolidate"
    job = mem.jobs.running("consolidate")
    assert job is not None and not job.done()  # the turns returned while it still runs
    assert runs and runs[0] != threading.current_thread().name
    release.set()
    assert job.result(timeout=60)["summaries"] >= 0
    state = app.get_state({"configurable": {"thread_id": "chat:alice:alice/2024-05-01"}}).values
    assert state["turns"] == 3 and state["consolidated"] == {"started_at_turn": 2}


def test_a_user_saying_the_same_thing_twice_keeps_both_turns(mem):
    app = build_chat_agent(mem, ScriptedLLM(CAT))
    first = chat(app, "alice", "Yes.", timestamp="2024-05-01")
    second = chat(app, "alice", "Yes.", timestamp="2024-05-01")
    assert len(set(first["written"] + second["written"])) == 4 and len(mem) == 4


def test_forgetting_a_user_drops_her_checkpointed_threads(mem):
    secret = "My zorblatt prescription is at the Quixville pharmacy."
    app = build_chat_agent(mem, ScriptedLLM(CAT))
    chat(app, "eve", secret, timestamp="2024-05-01T09:00:00")
    chat(app, "bob", "I adopted a cat called Pixel.", timestamp="2024-05-01T09:00:00")
    report = mem.forget(speakers=["eve"])
    assert report.threads == 1
    eve = {"configurable": {"thread_id": "chat:eve:eve/2024-05-01"}}
    bob = {"configurable": {"thread_id": "chat:bob:bob/2024-05-01"}}
    assert not app.get_state(eve).values  # her chat history is gone
    assert app.get_state(bob).values["buffer"]  # his is not
    mem.close()
    for file in mem.path.rglob("*"):
        if file.is_file():
            assert b"zorblatt" not in file.read_bytes().lower(), file


def test_a_crashed_turn_resumes_from_its_sqlite_checkpoint(mem):
    app = build_chat_agent(mem, ScriptedLLM(CAT, fail_first=1))
    with pytest.raises(RuntimeError, match="crashed"):
        chat(app, "alice", "I adopted a cat called Pixel.", timestamp="2024-05-01T09:00:00")
    assert len(mem) == 0
    # a new process: a fresh graph over the same SQLite checkpoint file resumes at "answer"
    again = build_chat_agent(mem, ScriptedLLM(CAT))
    config = {"configurable": {"thread_id": "chat:alice:alice/2024-05-01"}}
    assert again.get_state(config).next == ("answer",)
    steps = []
    done = chat(again, "alice", "I adopted a cat called Pixel.", timestamp="2024-05-01T09:00:00",
                on_step=lambda node, _: steps.append(node))  # fmt: skip
    assert steps == ["answer", "write"] and done["answer"] == "Noted." and len(mem) == 2


def test_bad_input_and_config_say_how_to_fix_them(mem):
    with pytest.raises(ConfigError, match="consolidate_every"):
        ChatConfig(consolidate_every=-1)
    app = build_chat_agent(mem, ScriptedLLM(CAT))
    with pytest.raises(ConfigError, match="'user' and 'message'"):
        app.invoke({"user": "alice", "message": " "}, {"configurable": {"thread_id": "t"}})


@pytest.mark.slow
def test_real_smollm2_chats_end_to_end(tmp_path, minilm):
    import omnimem
    from omnimem.vlm import create_generator

    with omnimem.Memory.open(tmp_path / "m", encoder=minilm) as mem:
        app = build_chat_agent(
            mem, create_generator("smollm2"), config=ChatConfig(max_new_tokens=32, budget_tokens=768)
        )
        chat(app, "alice", "My cat is called Pixel.", timestamp="2024-05-01T09:00:00")
        out = chat(app, "alice", "What is my cat called?", timestamp="2024-05-02T09:00:00")
        assert isinstance(out["answer"], str)  # its words (even whether it says any) vary between CPU kernels
        assert all(mem.get(c["item"]) for c in out["citations"] if c["id"].startswith(("E", "W")))
        assert len(out["written"]) == 2 and out["recall"]["prompt_tokens"] <= 768
