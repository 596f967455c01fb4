"""Fast extraction (M3KG-RAG step 1 without an LLM): fixture sentences yield the expected triplets."""

from __future__ import annotations

import pytest

from omnimem.errors import ConfigError
from omnimem.graph.extract import CONCEPT, ExtractorConfig, SpacyExtractor

# (sentence, speaker, triplets that must be among the extracted ones)
CASES = [
    ("Alice adopted a cat.", None, {("Alice", "adopt", "cat")}),
    ("Alice moved to Berlin in 2019.", None, {("Alice", "move to", "Berlin")}),
    ("Barack Obama is a lawyer.", None, {("Barack Obama", "is a", "lawyer")}),
    ("The Hobbit was written by Tolkien.", None, {("Tolkien", "write", "Hobbit")}),
    ("Obama was born in Hawaii.", None, {("Obama", "born in", "Hawaii")}),
    (
        "Alice and Bob love cats and dogs.",
        None,
        {("Alice", "love", "cat"), ("Alice", "love", "dog"), ("Bob", "love", "cat"), ("Bob", "love", "dog")},
    ),
    ("Alice wants to visit Paris.", None, {("Alice", "want to visit", "Paris")}),
    ("Alice's cat sleeps on the sofa.", None, {("Alice", "has", "cat"), ("cat", "sleep on", "sofa")}),
    (
        "Tolkien, an English writer, lived in Oxford.",
        None,
        {("Tolkien", "is a", "writer"), ("Tolkien", "live in", "Oxford")},
    ),
    ("Paris is the capital of France.", None, {("Paris", "is a", "capital"), ("Paris", "is capital of", "France")}),
    (
        "I visited my mother in Boston last week.",
        "Carol",
        {("Carol", "visit", "mother"), ("Carol", "has", "mother"), ("Carol", "visit in", "Boston")},
    ),
    (
        "Marie Curie discovered polonium and won the Nobel Prize.",
        None,
        {("Marie Curie", "discover", "polonium"), ("Marie Curie", "win", "Nobel Prize")},
    ),
    ("The small brown dogs chased the postman.", None, {("dog", "chase", "postman")}),
    ("Bob did not go to London.", None, {("Bob", "not go to", "London")}),
    ("The man who lives in Madrid plays the guitar.", None, {("man", "live in", "Madrid"), ("man", "play", "guitar")}),
    (
        "Steve Jobs founded Apple with Steve Wozniak.",
        None,
        {("Steve Jobs", "found", "Apple"), ("Steve Jobs", "found with", "Steve Wozniak")},
    ),
    # a name as the attribute of a role: the name is the role's holder (not "editor is a Ann")
    (
        "The director of Titanic is James Cameron.",
        None,
        {("James Cameron", "is a", "director"), ("James Cameron", "is director of", "Titanic")},
    ),
    # a parenthetical name of another kind is related, not an alias
    (
        "The current editor is Jennifer Callahan (University of North Texas).",
        None,
        {
            ("Jennifer Callahan", "is a", "editor"),
            ("Jennifer Callahan", "associated with", "University of North Texas"),
        },
    ),
]


@pytest.fixture(scope="module")
def extracted(extractor):
    """All fixture sentences in one batched call (as ingestion does)."""
    return extractor.extract([c[0] for c in CASES], speakers=[c[1] for c in CASES])


@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[0][:40] for c in CASES])
def test_fixture_sentence_yields_expected_triplets(extracted, case):
    sentence, _, expected = CASES[case]
    got = {(t.head, t.relation, t.tail) for t in extracted[case].triplets}
    assert expected <= got, f"{sentence!r}: missing {expected - got}, got {got}"
    for t in extracted[case].triplets:
        assert t.sentence == sentence
        assert 0.0 < t.confidence <= 1.0


def test_roles_and_affiliations_are_not_inverted_or_aliased(extracted):
    got = {(t.head, t.relation, t.tail) for e in extracted[-2:] for t in e.triplets}
    assert ("director", "is a", "James Cameron") not in got
    assert not any(r == "also known as" for _, r, _ in got)


def test_passive_voice_does_not_invert_roles(extracted):
    triplets = {(t.head, t.relation, t.tail) for t in extracted[3].triplets}
    assert ("Hobbit", "write", "Tolkien") not in triplets


def test_mentions_carry_type_concept_and_span(extractor):
    text = "Alice's small brown dogs moved to Berlin."
    result = extractor.extract_one(text)
    by_concept = {m.concept: m for m in result.mentions}
    assert by_concept["dog"].type == CONCEPT
    assert by_concept["Berlin"].type == "GPE"
    for m in result.mentions:
        assert text[m.start : m.end] == m.surface
    assert result.sentences == (text,)


def test_pronouns_are_not_entities_without_a_speaker(extractor):
    result = extractor.extract_one("I think she likes him.")
    assert not [m for m in result.mentions if m.concept.lower() in {"i", "she", "him"}]
    assert not result.triplets


def test_first_person_resolves_to_the_speaker(extractor):
    result = extractor.extract_one("I adopted a puppy.", speaker="Carol")
    assert ("Carol", "adopt", "puppy") in {(t.head, t.relation, t.tail) for t in result.triplets}
    carol = [m for m in result.mentions if m.concept == "Carol"]
    assert carol and carol[0].type == "PERSON" and carol[0].surface == "I"


def test_comentions_pair_named_entities_of_one_text(extractor):
    result = extractor.extract_one("Alice met Bob in Paris. They ate a croissant.")
    names = {c for pair in result.comentions for c, _ in pair}
    assert {"Alice", "Bob", "Paris"} <= names
    assert "croissant" not in names  # a noun phrase is not a co-mention
    assert len(result.comentions) == 3


def test_empty_and_batched_texts(extractor):
    results = extractor.extract(["", "Alice adopted a cat."] * 3)
    assert len(results) == 6
    assert results[0].mentions == () and results[0].triplets == ()
    assert results[1].triplets == results[3].triplets


def test_bad_arguments_name_the_fix(extractor):
    with pytest.raises(ConfigError, match="speakers"):
        extractor.extract(["a", "b"], speakers=["x"])
    with pytest.raises(ConfigError, match="str"):
        extractor.extract([3])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="batch_size"):
        ExtractorConfig(batch_size=0)


def test_pipeline_without_parser_is_refused():
    import spacy

    with pytest.raises(ConfigError, match="parser"):
        SpacyExtractor(spacy.blank("en"))
