"""Mention -> canonical concept: the *normalizer* of M3KG-RAG's knowledge-grounding step.

M3KG-RAG (arXiv 2512.20136), step 2 "Knowledge grounding": each mention is mapped to a canonical
concept before it is looked up, so that "the small brown dogs", "a dog" and "dogs" become one node
("dog"), and "Alice's" becomes "Alice". The rules:

- determiners, possessive markers, adjectives, numbers and punctuation are dropped;
- a common-noun phrase keeps its head noun and the nouns compounded to it ("basketball players" ->
  "basketball player"), lemmatised to the singular and lower-cased;
- a proper name keeps its casing and its words ("New York City" stays; "the United States" ->
  "United States").

Pure functions over spaCy tokens / spans (duck-typed: no spaCy import here), plus
:func:`canonical_text`, a string-only fallback for mentions that come without a parse (an LLM's
triplet, a knowledge-base name).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from omnimem.types import concept_key  # the exact-match key lives with the stores' types; re-exported here

__all__ = ["canonical_span", "canonical_token", "canonical_text", "concept_key", "singular"]

# Dependency labels whose tokens never belong to a canonical concept.
_DROP_DEPS = frozenset({"det", "predet", "poss", "case", "punct", "amod", "nummod", "quantmod", "advmod", "neg"})
_DROP_POS = frozenset({"DET", "PUNCT", "PART", "PRON", "ADJ", "NUM", "ADV", "SYM", "CCONJ", "ADP", "SPACE"})
_KEEP_DEPS = frozenset({"compound", "flat", "nmod"})
_DETERMINERS = frozenset("a an the this that these those my your his her its our their some any each every no".split())
_POSSESSIVE = re.compile(r"(?:'s|’s|'|’)$")
_IRREGULAR = {
    "men": "man", "women": "woman", "children": "child", "people": "person", "feet": "foot",
    "teeth": "tooth", "mice": "mouse", "geese": "goose", "data": "data", "series": "series",
    "species": "species", "news": "news",
}  # fmt: skip
_SPACE = re.compile(r"\s+")


def singular(word: str) -> str:
    """A lower-case English noun to its singular by rule (the fallback when no lemmatiser ran)."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or not word.isalpha() or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes", "sses")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def _is_proper(token: Any) -> bool:
    return token.pos_ == "PROPN" or bool(token.ent_type_) and token.ent_type_ not in ("DATE", "TIME", "CARDINAL")


def canonical_token(token: Any) -> str:
    """One spaCy token as a concept: a proper noun keeps its text, a common noun its lower-case lemma."""
    if _is_proper(token):
        return _POSSESSIVE.sub("", token.text)
    lemma = token.lemma_ or token.text
    if lemma == "-PRON-" or not lemma.strip():
        lemma = token.text
    return lemma.lower()


def canonical_span(span: Sequence[Any], *, is_entity: bool = False) -> str:
    """A spaCy ``Span`` (noun chunk or named entity) as its canonical concept.

    ``is_entity``: the span is a named entity (``doc.ents``); its words are kept with their casing,
    only leading determiners and trailing possessive markers go. Otherwise the span is a noun phrase:
    its root (``span.root``) and the compound nouns attached to it are kept, everything else dropped.
    Returns "" when nothing is left (a bare pronoun, a lone determiner).
    """
    tokens = list(span)
    if not tokens:
        return ""
    if is_entity:
        while tokens and (tokens[0].lower_ in _DETERMINERS or tokens[0].pos_ in ("DET", "PUNCT")):
            tokens = tokens[1:]
        while tokens and (tokens[-1].pos_ in ("PART", "PUNCT") or tokens[-1].text in ("'s", "’s", "'", "’")):
            tokens = tokens[:-1]
        text = "".join(t.text_with_ws for t in tokens).strip()
        return _POSSESSIVE.sub("", text).strip()
    root = span.root if hasattr(span, "root") else tokens[-1]
    if root.pos_ == "PRON":
        return ""
    keep = [root]
    # compounds to the left of the root, nested ("New York City council member")
    frontier = [root]
    while frontier:
        head = frontier.pop()
        for child in head.children:
            if child.dep_ in _KEEP_DEPS and child.i < head.i and child.pos_ in ("NOUN", "PROPN") and child in tokens:
                keep.append(child)
                frontier.append(child)
    keep.sort(key=lambda t: t.i)
    if all(_is_proper(t) for t in keep):
        text = " ".join(_POSSESSIVE.sub("", t.text) for t in keep)
        return text.strip()
    words = [(_POSSESSIVE.sub("", t.text) if _is_proper(t) else t.lower_) for t in keep[:-1]]
    words.append(canonical_token(keep[-1]))
    return " ".join(w for w in words if w).strip()


def canonical_text(text: str) -> str:
    """String-only fallback: the canonical concept of a mention given as plain text.

    Drops leading determiners / possessive pronouns and a trailing possessive marker, singularises the
    last word of an all-lower-case phrase, lower-cases common phrases and keeps a capitalised name's
    casing. Without a parse it cannot tell adjectives from nouns, so "small brown dogs" ->
    "small brown dog"; use :func:`canonical_span` where a parse exists.
    """
    words = _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip(' \t\n.,;:!?"()[]{}').split(" ")
    while len(words) > 1 and words[0].lower() in _DETERMINERS:
        words = words[1:]
    if not words or not words[0]:
        return ""
    words[-1] = _POSSESSIVE.sub("", words[-1])
    words = [w for w in words if w]
    if not words:
        return ""
    if any(w[:1].isupper() for w in words):
        return " ".join(words)
    words[-1] = singular(words[-1])
    return " ".join(words).lower()
