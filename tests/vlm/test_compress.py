from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnimem.errors import ConfigError
from omnimem.vlm.compress import (
    CompressionConfig,
    compress_context,
    image_tokens,
    prompt_tokens,
    qwen2vl_resize,
    sentence_utilities,
    split_sentences,
)
from omnimem.vlm.prompts import Evidence


def words(text: str) -> int:
    """A stand-in tokenizer: one token per whitespace-separated word."""
    return len(text.split())


QUESTION = "When did Caroline go to the LGBTQ support group?"
ANSWER = "Caroline went to the LGBTQ support group on 7 May 2023."
EVIDENCE = [
    Evidence(
        "E1",
        "Melanie painted a sunrise over the lake last year. She loves painting. The kids helped her.",
        source="session_1",
    ),  # fmt: skip
    Evidence("E2", f"Caroline talked about her plans for the week. {ANSWER} It was a powerful experience for her."),
    Evidence("E3", "The weather was rainy. Melanie ran a charity race for mental health. The race raised money."),
    Evidence("E4", "Caroline is researching adoption agencies. She wants to give a child a loving home."),
]


def test_split_sentences():
    assert split_sentences("One thing. Two things! Three? 4 more.\nA new line") == [
        "One thing.", "Two things!", "Three?", "4 more.", "A new line",
    ]  # fmt: skip
    assert split_sentences("Dr. smith arrived. He sat.") == ["Dr. smith arrived.", "He sat."]


def test_utilities_rank_the_answer_sentence_first():
    sentences = [s for e in EVIDENCE for s in split_sentences(e.text)]
    scores = sentence_utilities(QUESTION, sentences)
    assert sentences[int(np.argmax(scores))] == ANSWER
    assert scores[sentences.index("The weather was rainy.")] == 0.0


def test_utilities_take_an_injected_embedding():
    def embed(texts):
        rows = np.array([[1.0, 0.0] if "dog" in t or "Where" in t else [0.0, 1.0] for t in texts])
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    scores = sentence_utilities("Where is it?", ["A dog barked.", "Nothing here."], embed=embed, embedding_weight=2.0)
    assert scores[0] == pytest.approx(2.0) and scores[1] == 0.0


@pytest.mark.parametrize("budget", [90, 110, 140, 200, 400])
def test_budget_is_respected_and_the_answer_kept(budget):
    ctx = compress_context(QUESTION, EVIDENCE, words, CompressionConfig(token_budget=budget))
    assert ctx.prompt_tokens <= budget
    assert prompt_tokens(ctx.messages, words) == ctx.prompt_tokens  # the reported count is the real one
    assert ANSWER in ctx.messages[1].content
    assert "rainy" not in ctx.messages[1].content  # adds nothing to the question: dropped at any budget
    assert "E3" not in [e.id for e in ctx.evidence] or budget >= 200
    assert ctx.sentences_kept < ctx.sentences_total


def test_tiny_budget_keeps_the_question_only_and_too_small_raises():
    base = prompt_tokens(compress_context(QUESTION, [], words).messages, words)
    ctx = compress_context(QUESTION, EVIDENCE, words, CompressionConfig(token_budget=base))
    assert ctx.prompt_tokens <= base and ctx.evidence == [] and set(ctx.dropped) == {"E1", "E2", "E3", "E4"}
    with pytest.raises(ConfigError, match="raise the budget"):
        compress_context(QUESTION, EVIDENCE, words, CompressionConfig(token_budget=base - 1))


def test_triplets_compete_for_the_budget():
    triplets = [("Caroline", "attended", "LGBTQ support group"), ("Melanie", "painted", "sunrise")]
    ctx = compress_context(QUESTION, EVIDENCE, words, CompressionConfig(token_budget=400), triplets=triplets)
    assert [t.head for t in ctx.triplets] == ["Caroline"]
    assert "<Caroline> -attended-> <LGBTQ support group>" in ctx.messages[1].content


sentence = st.text(alphabet="abcdefghij KLM", min_size=1, max_size=60).map(lambda s: s.strip() + ".")


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(st.lists(sentence, min_size=1, max_size=6).map(" ".join), max_size=8),
    budget=st.integers(min_value=75, max_value=400),
    question=st.sampled_from(["What is abc?", "Who is KLM and where is fig?", "j"]),
)
def test_never_over_budget(texts, budget, question):
    ctx = compress_context(question, texts, words, CompressionConfig(token_budget=budget, min_utility=-1.0))
    assert prompt_tokens(ctx.messages, words) + ctx.visual_tokens == ctx.prompt_tokens <= budget


# -- frames --------------------------------------------------------------------------------------


def test_visual_token_arithmetic():
    assert qwen2vl_resize(224, 224) == (224, 224)
    assert image_tokens("qwen2-vl", 224, 224) == 8 * 8 + 2
    assert image_tokens("qwen2-vl", 10, 10) == 2 * 2 + 2  # upscaled to min_pixels (56 x 56)
    h, w = qwen2vl_resize(2000, 1000, max_pixels=448 * 448)
    assert h % 28 == w % 28 == 0 and h * w <= 448 * 448 and h > w
    assert image_tokens("llava", 100, 900) == image_tokens("llava", 336, 336) == 576
    assert image_tokens("none", 500, 500) == 0
    with pytest.raises(ConfigError):
        image_tokens("gpt", 1, 1)


def frame(seed: int, size=(224, 224)) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 255, (*size, 3), dtype=np.uint8)


def frames():
    return [
        Evidence("F1", "a kitchen", modality="frame", image=frame(1), score=0.9),
        Evidence("F2", "the same kitchen", modality="frame", image=frame(1), score=0.8),  # duplicate of F1
        Evidence("F3", "a garden", modality="frame", image=frame(3), score=0.5),
        Evidence("F4", "a street", modality="frame", image=frame(4, (1000, 1000)), score=0.7),
    ]


def test_frames_ranked_deduplicated_and_budgeted():
    config = CompressionConfig(token_budget=2000, frame_max_pixels=224 * 224)
    ctx = compress_context("What is in the kitchen?", frames(), words, config)
    assert [e.id for e in ctx.evidence] == ["F1", "F3", "F4"]  # F2 is a near-duplicate of F1
    assert ctx.dropped == ["F2"]
    assert all(img.size[0] * img.size[1] <= 224 * 224 for img in ctx.images)  # F4 downscaled
    assert ctx.visual_tokens == 3 * 66
    assert ctx.prompt_tokens <= 2000

    tight = compress_context("What is in the kitchen?", frames(), words,
                             CompressionConfig(token_budget=2000, frame_max_pixels=224 * 224, visual_token_budget=150))  # fmt: skip
    assert [e.id for e in tight.evidence] == ["F1", "F4"] and tight.visual_tokens == 132

    llava = compress_context("q?", frames(), words, CompressionConfig(token_budget=1400, family="llava"))
    assert len(llava.images) == 1 and llava.visual_tokens == 576  # half the budget affords one 576-token image
    assert llava.prompt_tokens <= 1400


def test_text_only_family_keeps_frame_captions_as_text():
    ctx = compress_context("What is in the kitchen?", frames(), words, CompressionConfig(family="none"))
    assert ctx.images == [] and ctx.visual_tokens == 0
    assert [e.id for e in ctx.evidence] == ["F1", "F2"]  # only captions mentioning the kitchen are useful
    assert all(e.modality == "text" for e in ctx.evidence)


def test_config_validation():
    with pytest.raises(ConfigError):
        CompressionConfig(token_budget=0)
    with pytest.raises(ConfigError, match="visual family"):
        CompressionConfig(family="gpt4")
    with pytest.raises(ConfigError):
        CompressionConfig(visual_share=1.5)
