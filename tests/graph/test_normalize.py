"""Mention -> canonical concept (M3KG-RAG step 2, the normalizer)."""

from __future__ import annotations

import pytest

from omnimem.graph.normalize import canonical_span, canonical_text, concept_key, singular


def _chunk(nlp, text: str, index: int = 0):
    return list(nlp(text).noun_chunks)[index]


@pytest.mark.parametrize(
    ("sentence", "index", "expected"),
    [
        ("The small brown dogs barked.", 0, "dog"),
        ("Alice's cats slept.", 0, "cat"),
        ("She met three basketball players.", 1, "basketball player"),
        ("He bought a very expensive car.", 1, "car"),
        ("The children played outside.", 0, "child"),
        ("Cities grew quickly.", 0, "city"),
    ],
)
def test_noun_phrases_keep_their_singular_head(extractor, sentence, index, expected):
    assert canonical_span(_chunk(extractor.nlp, sentence, index)) == expected


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("She moved to New York City last year.", "New York City"),
        ("Alice's book was published.", "Alice"),
        ("He visited the United States.", "United States"),
    ],
)
def test_named_entities_keep_their_casing(extractor, sentence, expected):
    doc = extractor.nlp(sentence)
    names = [canonical_span(ent, is_entity=True) for ent in doc.ents]
    assert expected in names


def test_pronoun_phrase_has_no_concept(extractor):
    assert canonical_span(_chunk(extractor.nlp, "They left early.")) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the dogs", "dog"),
        ("Alice's", "Alice"),
        ("New York City", "New York City"),
        ("a small brown dog", "small brown dog"),
        ("boxes", "box"),
        ("people", "person"),
        ("  the   Eiffel Tower ", "Eiffel Tower"),
        ("the", "the"),
        ("", ""),
    ],
)
def test_canonical_text_fallback(text, expected):
    assert canonical_text(text) == expected


def test_concept_key_folds_case_space_and_edge_punctuation():
    assert concept_key("  Barack   OBAMA. ") == concept_key("barack obama") == "barack obama"


@pytest.mark.parametrize(
    ("word", "expected"), [("dogs", "dog"), ("bus", "bus"), ("glass", "glass"), ("berries", "berry")]
)
def test_singular(word, expected):
    assert singular(word) == expected
