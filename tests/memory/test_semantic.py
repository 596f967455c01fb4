"""Semantic memory: bi-temporal facts; contradictions retire, never erase; as-of queries; corrections."""

from __future__ import annotations

import pytest

from omnimem.errors import ConfigError, NotFound
from omnimem.memory.semantic import relation_family


def _tails(facts, relation_family_name=None):
    return sorted(
        f.tail for f in facts if relation_family_name is None or relation_family(f.relation) == relation_family_name
    )


def test_contradiction_retires_the_old_fact_and_keeps_history(mem):
    mem.add("Alice moved to Berlin.", speaker="Alice", timestamp="2021-03-01")
    mem.add("Alice relocated to Lisbon.", speaker="Alice", timestamp="2023-06-01")
    assert _tails(mem.facts("Alice"), "residence") == ["Lisbon"]
    everything = mem.facts("Alice", include_retired=True)
    berlin = next(f for f in everything if f.tail == "Berlin")
    assert berlin.retired_at is not None and berlin.valid_to == "2023-06-01T00:00:00"
    assert [e.event for e in mem.fact_history(berlin.id)] == ["add", "superseded"]
    assert berlin.sources  # the evidence is still linked


def test_as_of_returns_the_right_fact_on_either_side_of_the_change(mem):
    mem.add("Alice moved to Berlin.", speaker="Alice", timestamp="2021-03-01")
    mem.add("Alice relocated to Lisbon.", speaker="Alice", timestamp="2023-06-01")
    assert _tails(mem.facts("Alice", as_of="2022-01-01"), "residence") == ["Berlin"]
    assert _tails(mem.facts("Alice", as_of="2023-07-01"), "residence") == ["Lisbon"]
    assert _tails(mem.facts("Alice", as_of="2020-01-01"), "residence") == []


def test_late_arriving_older_evidence_does_not_overwrite_the_newer_fact(mem):
    mem.add("Alice relocated to Lisbon.", speaker="Alice", timestamp="2023-06-01")
    mem.add("Alice moved to Berlin.", speaker="Alice", timestamp="2021-03-01")  # learned later, older
    assert _tails(mem.facts("Alice"), "residence") == ["Lisbon"]
    assert _tails(mem.facts("Alice", as_of="2022-01-01"), "residence") == ["Berlin"]


def test_same_fact_again_reinforces(mem):
    mem.add("Bob works at Siemens.", speaker="Bob", timestamp="2022-01-01")
    mem.add("Bob works at Siemens.", speaker="Carol", timestamp="2022-02-01")
    (fact,) = [f for f in mem.facts("Bob") if f.tail == "Siemens"]
    assert len(fact.sources) == 2
    assert [e.event for e in mem.fact_history(fact.id)] == ["add", "reinforce"]


def test_non_functional_relations_accumulate(mem):
    mem.add("Bob visited Paris.", speaker="Bob", timestamp="2022-01-01")
    mem.add("Bob visited Rome.", speaker="Bob", timestamp="2022-05-01")
    assert {"Paris", "Rome"} <= set(_tails(mem.facts("Bob")))


def test_known_at_is_what_the_memory_believed_then(mem):
    mem.add("Alice moved to Berlin.", speaker="Alice", timestamp="2021-03-01")
    (berlin,) = [f for f in mem.facts("Alice") if f.tail == "Berlin"]
    mem.add("Alice relocated to Lisbon.", speaker="Alice", timestamp="2023-06-01")
    believed = mem.facts("Alice", known_at=berlin.recorded_at)
    assert "Berlin" in _tails(believed) and "Lisbon" not in _tails(believed)


def test_explicit_correction(mem):
    mem.add("Bob works at Siemens.", speaker="Bob", timestamp="2022-01-01")
    (wrong,) = [f for f in mem.facts("Bob") if f.tail == "Siemens"]
    right = mem.correct(wrong.id, tail="Bosch", note="misheard")
    assert right is not None and right.tail == "Bosch" and right.sources
    assert _tails(mem.facts("Bob"), "employer") == ["Bosch"]
    assert "Siemens" not in _tails(mem.facts("Bob", as_of="2022-06-01"))  # corrected: it never held
    assert "correct" in [e.event for e in mem.fact_history(wrong.id)]
    assert mem.get(right.sources[0]).metadata["correction_of"] == wrong.id
    assert mem.graph.check_coverage() == []
    with pytest.raises(NotFound):
        mem.correct("no-such-fact")
    with pytest.raises(ConfigError):
        mem.correct(right.id, tail="  ")


def test_generator_decides_other_contradictions(tmp_path, hash_encoder):
    import omnimem
    from omnimem.vlm.base import Generation

    class Judge:
        name = "judge"

        def generate(self, messages, **kwargs):
            return Generation(text='{"contradicts": true}', tokens_in=1, tokens_out=1, latency_s=0.0)

        def count_tokens(self, text):
            return len(text.split())

    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, generator=Judge()) as mem:
        mem.add("Bob drives a Volvo.", speaker="Bob", timestamp="2020-01-01")
        mem.add("Bob drives a Tesla.", speaker="Bob", timestamp="2024-01-01")
        drives = [f for f in mem.facts("Bob") if f.relation == "drive"]
        assert [f.tail for f in drives] == ["Tesla"]
