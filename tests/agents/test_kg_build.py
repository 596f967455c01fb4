"""The agentic M3KG builder (LangGraph) end to end: a scripted fake LLM for the mechanics, SmolLM2 for real."""

from __future__ import annotations

import json
import logging
import re

import pytest

from omnimem.agents.kg_build import AGENTIC, KGAgentConfig, KnowledgeBase, build_graph, build_kg_agent
from omnimem.agents.kg_prompts import SYSTEM
from omnimem.errors import ConfigError, CorruptInput
from omnimem.graph.builder import rows_from_extraction
from omnimem.types import Item
from omnimem.vlm.base import Generation, as_messages

EXTRACTION_STEPS = ("rewrite", "extract", "inspect_triplets")
FACTS = {  # text fragment -> the triplets a good model reads in it
    "moved to Berlin": [("Alice", "moved to", "Berlin")],
    "capital of Germany": [("Berlin", "is capital of", "Germany")],
    "museum opened": [("museum", "opened in", "Paris")],
    "river": [("boat", "sails on", "river")],
    "podcast": [("Carol", "hosts", "podcast")],
}
KB = {"Berlin": ["Berlin is the capital and largest city of Germany.", "Berlin is a town in New Hampshire, United States."], "Germany": "Germany is a country in Central Europe."}  # fmt: skip
TRUNCATED = '{"triplets": [{"item": 1, "head": "museum", "relation": "opened in"'  # no tail, cut off
PROSE = "Sure! The museum opened in Paris."  # no JSON at all


def _units(user: str) -> list[tuple[int, str]]:
    """The ``[n] ...`` units of a batched prompt."""
    parts = re.split(r"^\[(\d+)\] ", user, flags=re.M)
    return [(int(parts[k]), parts[k + 1]) for k in range(1, len(parts), 2)]


def _quoted(text: str, label: str) -> str:
    return re.search(label + r'"([^"]*)"', text).group(1)


class ScriptedLLM:
    """A fake ``Generator``: per step, scripted answers first, then a plausible default answer."""

    name = "scripted"

    def __init__(self, script: dict[str, list] | None = None, raise_at: str | None = None) -> None:
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.raise_at = raise_at
        self.calls: list[str] = []

    def generate(self, messages, **options) -> Generation:
        msgs = as_messages(messages)
        step = next(s for s, text in SYSTEM.items() if msgs[0].content == text)
        if step == self.raise_at:
            raise RuntimeError(f"the model server went away during {step}")
        self.calls.append(step)
        queue = self.script.get(step)
        answer = queue.pop(0) if queue else None
        text = answer if answer is not None else json.dumps(getattr(self, "_" + step)(msgs[1].content))
        return Generation(text, tokens_in=len(msgs[1].content) // 4, tokens_out=len(text) // 4, latency_s=0.001)

    def _rewrite(self, user):
        out = []
        for n, unit in _units(user):
            text, speaker = _quoted(unit, "text: "), re.search(r'speaker: "([^"]*)"', unit)
            out.append({"item": n, "text": re.sub(r"^I ", speaker.group(1) + " ", text) if speaker else text})
        return {"texts": out}

    def _extract(self, user):
        return {
            "triplets": [
                {"item": n, "head": h, "relation": r, "tail": t, "sentence": unit.strip().strip('"')}
                for n, unit in _units(user) for key, facts in FACTS.items() if key in unit for h, r, t in facts
            ]
        }  # fmt: skip

    def _inspect_triplets(self, user):
        return {"scores": [{"item": n, "score": 9} for n, _ in _units(user)]}

    def _fill(self, user):
        return {"descriptions": [{"concept": n, "description": f"{u.split(' -- ')[0]} is a named thing."} for n, u in _units(user)]}  # fmt: skip

    def _select(self, user):
        choices = []
        for n, unit in _units(user):
            context = set(_quoted(unit, "context: ").lower().split())
            options = re.findall(r'\((\d+)\) "([^"]*)"', unit)
            best = max(options, key=lambda o: len(context & set(o[1].lower().split())))
            choices.append({"concept": n, "choice": int(best[0])})
        return {"choices": choices}

    def _refine(self, user):
        return {"descriptions": [{"concept": n, "description": _quoted(u, "description: ") + " (refined)"} for n, u in _units(user)]}  # fmt: skip

    def _inspect_descriptions(self, user):
        return {"scores": [{"concept": n, "score": 8} for n, _ in _units(user)]}


def _add_turns(mem):
    turns = [("Alice", "I moved to Berlin last year."), ("Bob", "Berlin is the capital of Germany."), ("Alice", "The museum opened in Paris.")]  # fmt: skip
    return mem.add_items([Item.make(text=t, speaker=s, session="s1", event_time=f"2024-01-0{k + 1}") for k, (s, t) in enumerate(turns)])  # fmt: skip


def _facts(mem, item_id=None):
    g = mem.graph
    rows = g.triplets(item_ids=[item_id]) if item_id else g.triplets()
    return {(g.get_entity(t.head).name, t.relation, g.get_entity(t.tail).name) for t in rows}


def test_agents_end_to_end_with_inspector_rerun_and_a_malformed_answer(bare_mem, caplog, tmp_path):
    mem = bare_mem
    a, b, c = _add_turns(mem)
    llm = ScriptedLLM({
        "extract": [None, TRUNCATED, PROSE],  # [A, B] fine; [C] malformed twice (json_retries=1) -> fallback
        "inspect_triplets": ['{"scores": [{"item": 1, "score": 2}, {"item": 2, "score": 9}]}'],  # A low once
    })  # fmt: skip
    steps: list[str] = []
    config = KGAgentConfig(items_per_call=2, checkpoint=str(tmp_path / "ckpt.sqlite"))
    with caplog.at_level(logging.WARNING, logger="omnimem.agents"):
        report = build_graph(mem, agentic=True, generator=llm, kb=KB, config=config, on_step=lambda n, u: steps.append(n))  # fmt: skip

    # the self-reflection loop ran: extract -> inspect (A low) -> extract (A only) -> inspect -> normalize
    assert steps[:6] == ["parse", "rewrite", "extract", "inspect_triplets", "extract", "inspect_triplets"]
    assert steps[-1] == "write" and "refine" in steps and "inspect_descriptions" in steps
    assert llm.calls.count("extract") == 4 and llm.calls.count("inspect_triplets") == 2

    # rows: LLM triplets for A (rewritten "I" -> Alice) and B; the fast extractor's for C
    assert _facts(mem, a) == {("Alice", "moved to", "Berlin")}
    assert _facts(mem, b) == {("Berlin", "is capital of", "Germany")}
    extraction = mem.builder.extractor.extract_one("The museum opened in Paris.", speaker="Alice")
    item_c = mem.get(c)
    fast_c = {(t.head, t.relation, t.tail) for t in rows_from_extraction(item_c, extraction)[2]}
    assert {(t.head, t.relation, t.tail) for t in mem.graph.triplets(item_ids=[c])} == fast_c
    assert mem.graph.check_coverage() == []
    for t in mem.graph.triplets():
        assert set(t.sources) <= {a, b, c}

    # the bad answer is logged with its item id, and reported as a failure
    assert any("bad model answer" in r.getMessage() and c in r.getMessage() for r in caplog.records)
    assert [(f.item_id, f.step) for f in report.failures] == [(c, "extract")]

    # descriptions: the selector picked the KB sense that fits the context; the LLM filled the rest
    berlin = mem.graph.find_entities("Berlin")[0]
    assert berlin.description.startswith("Berlin is the capital and largest city of Germany") and berlin.description.endswith("(refined)")  # fmt: skip
    assert mem.graph.find_entities("Alice")[0].description == "Alice is a named thing. (refined)"
    assert mem.graph.find_entities("Paris")[0].description  # a fallback item's entity is grounded too

    # the report: counts, calls per item (extraction: 2 rewrite + 4 extract + 2 inspect for 3 items)
    assert report.mode == AGENTIC and report.items == 3 and report.skipped == 0 and report.remaining == 0
    assert report.triplets == len(mem.graph.triplets()) and report.entities == mem.graph.counts()["entities"]
    by_step = report.llm_calls_by_step
    assert {s: by_step[s] for s in EXTRACTION_STEPS} == {"rewrite": 2, "extract": 4, "inspect_triplets": 2}
    assert report.llm_calls == len(llm.calls) and report.llm_calls_per_item == pytest.approx(len(llm.calls) / 3)
    assert by_step == {"rewrite": 2, "extract": 4, "inspect_triplets": 2, "fill": 1, "select": 1, "refine": 1, "inspect_descriptions": 1}  # fmt: skip

    # idempotent: every item is done; a second run reads nothing and calls no LLM
    assert mem.store.progress().pending(AGENTIC) == []
    again = build_graph(mem, agentic=True, generator=llm, kb=KB, config=config)
    assert again.items == 0 and again.llm_calls == 0


def test_batched_calls_stay_under_two_per_item(bare_mem, tmp_path):
    mem = bare_mem
    texts = ["I moved to Berlin last year.", "Berlin is the capital of Germany.", "The museum opened in Paris.", "A boat sails on the river."] * 2  # fmt: skip
    mem.add_items([Item.make(text=t, speaker="Alice", metadata={"n": k}) for k, t in enumerate(texts)])
    llm = ScriptedLLM()
    report = build_graph(mem, agentic=True, generator=llm, kb=KB, config=KGAgentConfig(checkpoint=str(tmp_path / "c.sqlite"), describe="none"))  # fmt: skip
    extraction_calls = sum(report.llm_calls_by_step.get(s, 0) for s in EXTRACTION_STEPS)
    assert report.items == 8 and extraction_calls / 8 <= 2 and report.llm_calls_per_item == 0.75
    assert mem.graph.check_coverage() == []


def test_a_crashed_run_resumes_from_its_checkpoint(bare_mem, tmp_path):
    mem = bare_mem
    _add_turns(mem)
    config = KGAgentConfig(items_per_call=4, checkpoint=str(tmp_path / "ckpt.sqlite"))
    with pytest.raises(RuntimeError, match="went away"):
        build_graph(mem, agentic=True, generator=ScriptedLLM(raise_at="refine"), kb=KB, config=config)
    assert len(mem.store.progress().pending(AGENTIC)) == 3 and mem.graph.triplets() == []
    resumed = ScriptedLLM()
    report = build_graph(mem, agentic=True, generator=resumed, kb=KB, config=config)
    assert set(resumed.calls) == {"refine", "inspect_descriptions"}  # rewrite ... select came from the checkpoint
    assert report.items == 3 and report.llm_calls_by_step["extract"] == 1  # counts survive the crash
    assert _facts(mem) >= {("Alice", "moved to", "Berlin"), ("museum", "opened in", "Paris")}


@pytest.mark.parametrize("modality", ["text", "audio", "video"])
def test_coverage_for_every_modality(bare_mem, tmp_path, modality):
    mem = bare_mem
    spans = {"t_start": 0.0, "t_end": 4.0} if modality != "text" else {}
    ids = mem.add_items([
        Item.make(modality=modality, text="Carol hosts a podcast about rivers.", speaker="Carol", episode="ep1", **spans),
        Item.make(modality=modality, text="A boat sails on the river.", episode="ep1", **spans),
    ])  # fmt: skip
    build_graph(mem, agentic=True, generator=ScriptedLLM(), config=KGAgentConfig(checkpoint=":memory:"))
    assert mem.graph.check_coverage() == []
    triplets = mem.graph.triplets()
    assert triplets and all(set(t.sources) <= set(ids) for t in triplets)
    assert {s for t in triplets for s in t.sources} == set(ids)


def test_the_graph_streams_its_steps(bare_mem):
    mem = bare_mem
    (a,) = mem.add_items([Item.make(text="A boat sails on the river.")])
    app = build_kg_agent(mem, ScriptedLLM(), config=KGAgentConfig(checkpoint=":memory:", describe="none"))
    config = {"configurable": {"thread_id": "t1"}}
    nodes = [node for update in app.stream({"item_ids": [a]}, config, stream_mode="updates") for node in update]
    assert nodes == ["parse", "rewrite", "extract", "inspect_triplets", "normalize", "write"]
    assert app.get_state(config).values["outcome"]["done"] == [a]


def test_knowledge_base_and_config_validation(tmp_path):
    path = tmp_path / "kb.jsonl"
    path.write_text('{"name": "Bank", "description": "A river side."}\n\n{"name": "bank", "description": "A lender."}\n')  # fmt: skip
    assert KnowledgeBase.from_jsonl(path).lookup("bank") == ["A river side.", "A lender."]
    path.write_text('{"name": "bank"}\n')
    with pytest.raises(CorruptInput, match="kb.jsonl:1"):
        KnowledgeBase.from_jsonl(path)
    with pytest.raises(ConfigError, match="describe"):
        KGAgentConfig(describe="some")
    with pytest.raises(ConfigError, match="min_score"):
        KGAgentConfig(min_score=11)


@pytest.mark.slow
def test_real_smollm2_on_a_handful_of_items(bare_mem, tmp_path):
    pytest.importorskip("llama_cpp")
    from omnimem.vlm import create_generator

    try:
        generator = create_generator("smollm2", n_ctx=2048, n_threads=1)  # one thread: robust on a busy 2-core CPU
    except ImportError as e:
        pytest.skip(f"packaged SmolLM2 unavailable: {e}")
    mem = bare_mem
    ids = _add_turns(mem)
    # one extractor and one inspector call (no rewrite, no descriptions, no re-runs): the mechanics, not quality
    config = KGAgentConfig(
        items_per_call=3, rewrite=False, describe="none", max_retries=0, json_retries=0, tokens_per_unit=32,
        max_new_tokens=128, max_triplets=2, checkpoint=str(tmp_path / "c.sqlite"),
    )  # fmt: skip
    report = build_graph(mem, agentic=True, generator=generator, config=config)
    assert report.items == 3 and report.remaining == 0
    assert mem.graph.check_coverage() == []
    assert report.triplets == len(mem.graph.triplets()) > 0  # the model's triplets, or the fast fallback's
    assert {s for t in mem.graph.triplets() for s in t.sources} <= set(ids)
    assert report.llm_calls == sum(report.llm_calls_by_step.values()) and report.llm_calls_by_step["extract"] == 1
    assert report.llm_calls_per_item <= 2 / 3 + 1e-9
    assert all(f.item_id in ids for f in report.failures)
