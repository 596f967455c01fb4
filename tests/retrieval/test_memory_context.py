"""``Memory.context``: GRASP retrieval behind the facade, with search's filters and a saved config."""

from __future__ import annotations

import dataclasses

import pytest

import omnimem
from omnimem.config import GraspConfig, MemoryConfig
from omnimem.errors import ConfigError
from omnimem.retrieval import Context


def test_context_packs_the_answer_within_the_budget_and_cites_it(mem):
    mem.add_conversation(
        [
            {"speaker": "Ann", "text": "I adopted a puppy named Rex last week."},
            {"speaker": "Ben", "text": "That is great, what breed is he?"},
            {"speaker": "Ann", "text": "Rex is a beagle, he loves the park."},
        ],
        session="s1",
    )  # fmt: skip
    mem.add([f"The quarterly report number {n} covers sales in region {n}." for n in range(20)])
    ctx = mem.context("What breed is Ann's puppy Rex?", budget_tokens=120)
    assert isinstance(ctx, Context) and 0 < ctx.tokens <= 120
    assert any("beagle" in e.text for e in ctx.items)
    assert all(e.item_ids or e.kind == "item" for e in ctx.entries)


def test_context_honours_filters_like_search(mem):
    mem.add("Paris is the capital of France.", session="geo")
    mem.add("Paris Hilton released an album.", session="pop")
    ctx = mem.context("Tell me about Paris", sessions=["pop"], budget_tokens=200)
    assert [e.text for e in ctx.items] and all("Hilton" in e.text for e in ctx.items)
    with pytest.raises(ConfigError, match="modality"):
        mem.context("Paris", modalities=["smell"])
    with pytest.raises(ConfigError, match="non-empty"):
        mem.context("  ")


def test_context_uses_the_saved_grasp_config_and_a_per_call_override(tmp_path, hash_encoder):
    config = dataclasses.replace(MemoryConfig(), grasp=GraspConfig(budget_tokens=60, facts=False))
    with omnimem.Memory.open(tmp_path / "m", config=config, encoder=hash_encoder) as mem:
        mem.add([f"Alice went hiking on trail {n} near the lake and saw birds." for n in range(30)])
        ctx = mem.context("Where did Alice hike?")
        assert ctx.budget_tokens == 60 and ctx.tokens <= 60 and not ctx.facts
        wide = mem.context("Where did Alice hike?", config=GraspConfig(budget_tokens=400))
        assert wide.tokens > ctx.tokens
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder) as again:
        assert again.config.grasp == config.grasp  # saved in config.json, tau round-trips as tuples
