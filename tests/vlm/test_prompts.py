from __future__ import annotations

import numpy as np
import pytest

from omnimem.errors import ConfigError
from omnimem.vlm.prompts import (
    NO_ANSWER,
    Evidence,
    Triplet,
    answer_messages,
    as_evidence,
    cited_ids,
    is_no_answer,
    render_evidence,
    render_triplet,
)


def test_render_triplet_with_and_without_descriptions():
    t = Triplet("dog", "chases", "ball", "a brown terrier", "a red rubber ball")
    assert render_triplet(t) == "<dog, a brown terrier> -chases-> <ball, a red rubber ball>"
    assert render_triplet(("Paris", "capital of", "France")) == "<Paris> -capital of-> <France>"
    assert render_triplet({"head": "a", "relation": "r", "tail": "b", "evidence_ids": ("E2",)}) == "<a> -r-> <b> [E2]"
    with pytest.raises(ConfigError):
        render_triplet(("only", "two"))


def test_as_evidence_numbers_and_validates():
    items = as_evidence(["first", {"text": "second", "source": "chat", "span": [1, 2.5]}, Evidence("X", "third")])
    assert [e.id for e in items] == ["E1", "E2", "X"]
    assert items[1].span == (1.0, 2.5)
    with pytest.raises(ConfigError, match="unique"):
        as_evidence([Evidence("A", "x"), Evidence("A", "y")])
    with pytest.raises(ConfigError, match="unknown evidence field"):
        as_evidence([{"txt": "typo"}])
    with pytest.raises(ConfigError, match="no image"):
        Evidence("F1", modality="frame")
    with pytest.raises(ConfigError, match="brackets"):
        Evidence("[E1]", "x")


def test_answer_messages_cite_and_abstain():
    frame = Evidence("F1", "a kitchen", modality="frame", image=np.zeros((4, 4, 3), np.uint8), span=(3, 4))
    msgs = answer_messages("Where is the cat?", [Evidence("E1", "The cat sleeps.", source="chat")] + [frame],
                           [("cat", "in", "kitchen")])  # fmt: skip
    assert msgs[0].role == "system" and "[E1]" in msgs[0].content and NO_ANSWER in msgs[0].content
    user = msgs[1].content
    assert "[E1] (chat) The cat sleeps." in user
    assert "[F1] (3.0-4.0 s) (image F1 attached) a kitchen" in user
    assert "<cat> -in-> <kitchen>" in user and user.endswith("Question: Where is the cat?")
    assert "(none)" in answer_messages("q")[1].content
    with pytest.raises(ConfigError):
        answer_messages("  ")
    assert render_evidence([]) == ""


def test_cited_ids_and_no_answer():
    assert cited_ids("Paris [E3][E1], see also [E3] and [E2, E4].") == ["E3", "E1", "E2", "E4"]
    assert is_no_answer("Sorry. " + NO_ANSWER)
    assert not is_no_answer("Paris [E1]")
