"""Context compression: fit question + evidence + frames into a token budget, best utility first.

Text evidence is split into sentences and each sentence (and each knowledge-graph triplet) is scored
by its utility for the question: lexical overlap weighted by inverse sentence frequency, plus the
cosine similarity of an injected embedding function when one is given. Sentences that add nothing
are dropped, and the rest are packed by a greedy knapsack on utility per token (the selective-context
/ LongLLMLingua idea at sentence granularity). Frames are ranked by relevance, de-duplicated (near-
identical frames carry the same visual tokens twice; STORM and LLaVA-Mini make the same observation
for video), and admitted while their visual tokens fit, counted per model family: Qwen2-VL resizes to
multiples of 28 px (14 px patches, 2x2 merge) and spends ``h/28 * w/28`` tokens; LLaVA-1.5 spends a
fixed 576 (336 px, 14 px patches) whatever the input size.

The invariant: the returned prompt, measured with the generator's own ``count_tokens`` plus a
per-message chat-template allowance plus the image tokens, never exceeds ``token_budget``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from omnimem.errors import ConfigError
from omnimem.vlm.base import Message, load_image
from omnimem.vlm.prompts import (
    SYSTEM_ANSWER,
    Evidence,
    Triplet,
    answer_messages,
    as_evidence,
    as_triplet,
    evidence_header,
    render_triplet,
)

__all__ = [
    "VISUAL_FAMILIES",
    "CompressionConfig",
    "CompressedContext",
    "compress_context",
    "split_sentences",
    "sentence_utilities",
    "qwen2vl_resize",
    "image_tokens",
    "prompt_tokens",
]

log = logging.getLogger(__name__)

VISUAL_FAMILIES: tuple[str, ...] = ("qwen2-vl", "llava", "none")

_STOP = frozenset(
    "a an and are as at be been but by did do does for from had has have he her him his how i if in is it its"
    " me my of on or our she so that the their them they this to was we were what when where which who whom"
    " why will with would you your about after before into than then there these those".split()
)


@dataclass(frozen=True)
class CompressionConfig:
    """How a context is compressed."""

    token_budget: int = 2048  # whole prompt: messages + template allowance + image tokens, in backend tokens
    template_tokens_per_message: int = 8  # chat-template markers counted per message (role tags, separators)
    min_utility: float = 0.0  # sentences with utility <= this add nothing to the question and are dropped
    embedding_weight: float = 1.0  # weight of the embedding cosine in a sentence's utility (with embed=)
    family: str = "qwen2-vl"  # how image tokens are counted: one of VISUAL_FAMILIES ("none": no images sent)
    visual_share: float = 0.5  # at most this share of the budget left after the question goes to images
    visual_token_budget: int | None = None  # absolute cap on image tokens (None: only visual_share applies)
    max_frames: int = 8  # frames sent at most
    frame_max_pixels: int = 448 * 448  # qwen2-vl: frames are downscaled to at most this many pixels
    dedup_threshold: float = 0.95  # cosine similarity above which two frames count as duplicates

    def __post_init__(self) -> None:
        if self.token_budget <= 0:
            raise ConfigError(f"token_budget must be positive, got {self.token_budget}")
        if self.template_tokens_per_message < 0:
            raise ConfigError("template_tokens_per_message must be >= 0")
        if self.family not in VISUAL_FAMILIES:
            raise ConfigError(f"unknown visual family {self.family!r}; use one of {', '.join(VISUAL_FAMILIES)}")
        if not 0.0 <= self.visual_share <= 1.0:
            raise ConfigError(f"visual_share must be in [0, 1], got {self.visual_share}")
        if self.visual_token_budget is not None and self.visual_token_budget < 0:
            raise ConfigError("visual_token_budget must be >= 0 or None")
        if self.max_frames < 0 or self.frame_max_pixels < 28 * 28:
            raise ConfigError("max_frames must be >= 0 and frame_max_pixels >= 784 (one 28 px cell)")
        if not -1.0 <= self.dedup_threshold <= 1.0:
            raise ConfigError(f"dedup_threshold is a cosine in [-1, 1], got {self.dedup_threshold}")


@dataclass(frozen=True)
class CompressedContext:
    """The compressed prompt and what it cost."""

    messages: list[Message]  # ready for Generator.generate
    images: list[Any]  # PIL images of the kept frames, in evidence order; pass as images=
    evidence: list[Evidence]  # the kept evidence, text items with their kept sentences only
    triplets: list[Triplet]  # the kept facts
    prompt_tokens: int  # text tokens + template allowance + visual_tokens (<= token_budget)
    visual_tokens: int  # image tokens of the kept frames for the configured family
    dropped: list[str] = field(default_factory=list)  # ids of evidence dropped entirely
    sentences_kept: int = 0  # text units (sentences + triplets) kept
    sentences_total: int = 0  # text units considered


# -- visual tokens -------------------------------------------------------------------------------


def qwen2vl_resize(
    height: int, width: int, *, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280
) -> tuple[int, int]:
    """Qwen2-VL's ``smart_resize``: both sides multiples of ``factor`` (14 px patch x 2 merge), area in
    ``[min_pixels, max_pixels]``, aspect ratio kept (Qwen2-VL report, section 2.1)."""
    if height <= 0 or width <= 0:
        raise ConfigError(f"image size must be positive, got {height}x{width}")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def image_tokens(family: str, height: int, width: int, *, max_pixels: int = 28 * 28 * 1280) -> int:
    """Language-model tokens one image of ``height x width`` px costs in ``family``.

    qwen2-vl: ``(h/28) * (w/28)`` merged patches + 2 (``<|vision_start|>``, ``<|vision_end|>``);
    llava: 576 whatever the size (CLIP ViT-L/14 at 336 px, CLS dropped); none: 0 (not sent).
    """
    if family == "qwen2-vl":
        h, w = qwen2vl_resize(height, width, max_pixels=max_pixels)
        return (h // 28) * (w // 28) + 2
    if family == "llava":
        return (336 // 14) ** 2
    if family == "none":
        return 0
    raise ConfigError(f"unknown visual family {family!r}; use one of {', '.join(VISUAL_FAMILIES)}")


def _fit_frame(image: Any, config: CompressionConfig) -> Any:
    """Downscale a qwen2-vl frame to at most ``frame_max_pixels`` (on the 28 px grid)."""
    if config.family != "qwen2-vl":
        return image
    w, h = image.size
    nh, nw = qwen2vl_resize(h, w, max_pixels=config.frame_max_pixels)
    return image if (nh, nw) == (h, w) else image.resize((nw, nh))


def _signature(e: Evidence, image: Any) -> np.ndarray:
    """A unit vector for duplicate detection: the given embedding, or a 16x16 grey thumbnail."""
    if e.embedding is not None:
        v = np.asarray(e.embedding, dtype=np.float32).ravel()
    else:
        v = np.asarray(image.convert("L").resize((16, 16)), dtype=np.float32).ravel()
        v = v - v.mean()
        if not np.any(v):  # a flat frame: keep its brightness so flat frames of different tone differ
            v = np.full(4, image.convert("L").getpixel((0, 0)) + 1.0, dtype=np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-12)


# -- text utility ------------------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n+")


def split_sentences(text: str) -> list[str]:
    """Split on sentence ends (``.``/``!``/``?`` then a capital or digit) and on line breaks."""
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def _terms(text: str) -> set[str]:
    out = set()
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in _STOP:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if len(word) > len(suffix) + 2 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        out.add(word)
    return out


def sentence_utilities(
    question: str,
    sentences: Sequence[str],
    *,
    embed: Callable[[list[str]], Any] | None = None,
    embedding_weight: float = 1.0,
) -> np.ndarray:
    """Utility of each sentence for ``question``: the summed inverse sentence frequency
    ``log(1 + N / df)`` of the question terms it contains, plus ``embedding_weight * max(0, cos)``
    when ``embed(texts) -> (n, d)`` unit vectors is given. ``float64 (len(sentences),)``."""
    q = _terms(question)
    bags = [_terms(s) for s in sentences]
    n = max(len(bags), 1)
    df = {t: sum(t in b for b in bags) for t in q}
    idf = {t: math.log(1.0 + n / df[t]) for t in q if df[t]}
    scores = np.array([sum(idf.get(t, 0.0) for t in q & b) for b in bags], dtype=np.float64)
    if embed is not None and sentences:
        vectors = np.asarray(embed([question, *sentences]), dtype=np.float64)
        scores += embedding_weight * np.clip(vectors[1:] @ vectors[0], 0.0, None)
    return scores


# -- packing ---------------------------------------------------------------------------------


def prompt_tokens(messages: Sequence[Message], count_tokens: Callable[[str], int], per_message: int = 8) -> int:
    """Text tokens of ``messages`` as a budget counts them: content tokens + ``per_message`` each
    (+ one more allowance for the assistant turn's opening tag)."""
    return sum(count_tokens(m.content) + per_message for m in messages) + per_message


@dataclass
class _Unit:
    owner: int  # index into the text evidence (-1 for a triplet)
    position: int  # order inside its owner (or the triplet's index)
    text: str
    utility: float
    cost: int


def _greedy(units: list[_Unit], headers: list[int], budget: int, seed: _Unit | None) -> list[_Unit]:
    """Greedy by utility per token, optionally starting from ``seed``."""
    chosen: list[_Unit] = []
    opened: set[int] = set()
    spent = 0
    order = sorted(units, key=lambda u: (-u.utility / u.cost, -u.utility, u.owner, u.position))
    for u in ([seed] if seed is not None else []) + [u for u in order if u is not seed]:
        extra = u.cost + (headers[u.owner] if u.owner >= 0 and u.owner not in opened else 0)
        if spent + extra <= budget:
            chosen.append(u)
            spent += extra
            if u.owner >= 0:
                opened.add(u.owner)
    return chosen


def _knapsack(units: list[_Unit], headers: list[int], budget: int, min_utility: float, seeds: int = 3) -> list[_Unit]:
    """Greedy knapsack on utility per token, also seeded with each of the ``seeds`` highest-utility
    units; the best total utility wins. Ratio-greedy alone can lose the one long, decisive sentence to
    several short weak ones; seeding with the best single items restores the classic 1/2 bound."""
    useful = [u for u in units if u.utility > min_utility]
    best: list[_Unit] = []
    for seed in [None, *sorted(useful, key=lambda u: -u.utility)[:seeds]]:
        chosen = _greedy(useful, headers, budget, seed)
        if sum(u.utility for u in chosen) > sum(u.utility for u in best):
            best = chosen
    return best


def compress_context(
    question: str,
    evidence: Sequence[Evidence | Mapping[str, Any] | str],
    count_tokens: Callable[[str], int],
    config: CompressionConfig = CompressionConfig(),
    *,
    triplets: Sequence[Triplet | Mapping[str, Any] | Sequence[str]] = (),
    embed: Callable[[list[str]], Any] | None = None,
    system: str = SYSTEM_ANSWER,
) -> CompressedContext:
    """Compress ``evidence`` (text and frames) and ``triplets`` for ``question`` into the budget.

    ``count_tokens`` is the generator's own (``generator.count_tokens``). Raises
    :class:`ConfigError` when even the question alone does not fit.
    """
    items = as_evidence(evidence)
    facts = [as_triplet(t) for t in triplets]
    per = config.template_tokens_per_message
    base = prompt_tokens(answer_messages(question, system=system), count_tokens, per)
    if base > config.token_budget:
        raise ConfigError(
            f"the question and instructions alone take {base} tokens, over token_budget={config.token_budget};"
            " raise the budget or shorten the question"
        )
    room = config.token_budget - base

    # 1. frames: most relevant first, near-duplicates skipped, while their tokens fit
    frames: list[tuple[int, Evidence, Any, int]] = []
    text_items: list[tuple[int, Evidence]] = []
    for n, e in enumerate(items):
        if e.is_image and config.family != "none":
            frames.append((n, e, None, 0))
        elif e.text.strip():
            text_items.append((n, replace(e, modality="text", image=None) if e.is_image else e))
    visual_cap = int(room * config.visual_share)
    if config.visual_token_budget is not None:
        visual_cap = min(visual_cap, config.visual_token_budget)
    kept_frames: list[tuple[int, Evidence, Any, int]] = []
    signatures: list[np.ndarray] = []
    visual = 0
    for n, e, _, _ in sorted(frames, key=lambda f: (-f[1].score, f[0])):
        if len(kept_frames) >= config.max_frames:
            break
        image = _fit_frame(load_image(e.image), config)
        sig = _signature(e, image)
        if any(float(sig @ s) >= config.dedup_threshold for s in signatures if s.shape == sig.shape):
            log.debug("frame %s dropped as a near-duplicate", e.id)
            continue
        tokens = image_tokens(config.family, image.size[1], image.size[0], max_pixels=config.frame_max_pixels)
        cost = tokens + count_tokens(f"[{e.id}] (image {e.id} attached) {e.text}") + 1  # + its evidence line
        if visual + cost > visual_cap:
            continue
        kept_frames.append((n, e, image, tokens))
        signatures.append(sig)
        visual += cost

    # 2. text: sentences and triplets by utility per token, greedy knapsack
    units: list[_Unit] = []
    for owner, (_, e) in enumerate(text_items):
        for pos, sentence in enumerate(split_sentences(e.text)):
            units.append(_Unit(owner, pos, sentence, 0.0, count_tokens(sentence) + 1))
    for pos, t in enumerate(facts):
        text = f"{t.head} {t.head_description} {t.relation} {t.tail} {t.tail_description}"
        units.append(_Unit(-1, pos, text, 0.0, count_tokens(render_triplet(t)) + 1))
    utilities = sentence_utilities(question, [u.text for u in units], embed=embed,
                                   embedding_weight=config.embedding_weight)  # fmt: skip
    for u, utility in zip(units, utilities):
        u.utility = float(utility)
    headers = [count_tokens(evidence_header(e)) for _, e in text_items]
    budget_text = room - visual - (count_tokens("Facts:\n\n") if facts else 0)
    chosen = _knapsack(units, headers, budget_text, config.min_utility)

    # 3. render, measure with the real tokenizer, and drop the weakest unit until it fits
    while True:
        context = _assemble(question, items, text_items, kept_frames, facts, chosen, system, len(units))
        total = prompt_tokens(context.messages, count_tokens, per) + context.visual_tokens
        if total <= config.token_budget:
            return replace(context, prompt_tokens=total)
        if chosen:
            chosen.remove(min(chosen, key=lambda u: (u.utility / u.cost, u.utility)))
        elif kept_frames:
            kept_frames.pop()
        else:  # unreachable: the bare prompt fitted above
            raise ConfigError(f"cannot fit the prompt into token_budget={config.token_budget}")


def _assemble(
    question: str,
    items: list[Evidence],
    text_items: list[tuple[int, Evidence]],
    frames: list[tuple[int, Evidence, Any, int]],
    facts: list[Triplet],
    chosen: list[_Unit],
    system: str,
    total_units: int,
) -> CompressedContext:
    by_owner: dict[int, list[_Unit]] = {}
    for u in chosen:
        by_owner.setdefault(u.owner, []).append(u)
    kept: list[tuple[int, Evidence]] = []
    for owner, (n, e) in enumerate(text_items):
        if owner in by_owner:
            text = " ".join(u.text for u in sorted(by_owner[owner], key=lambda u: u.position))
            kept.append((n, replace(e, text=text)))
    kept.extend((n, e) for n, e, _, _ in frames)
    kept.sort(key=lambda pair: pair[0])
    evidence = [e for _, e in kept]
    kept_facts = [facts[u.position] for u in sorted(by_owner.get(-1, []), key=lambda u: u.position)]
    images = [img for _, _, img, _ in sorted(frames, key=lambda f: f[0])]
    kept_ids = {e.id for e in evidence}
    dropped = [e.id for e in items if e.id not in kept_ids]
    return CompressedContext(
        messages=answer_messages(question, evidence, kept_facts, system=system),
        images=images,
        evidence=evidence,
        triplets=kept_facts,
        prompt_tokens=0,
        visual_tokens=sum(tokens for _, _, _, tokens in frames),
        dropped=dropped,
        sentences_kept=len(chosen),
        sentences_total=total_units,
    )
