"""llama.cpp backend on the packaged SmolLM2-135M-Instruct (real weights, CPU).

A 135M-parameter model's greedy words change with the CPU kernel's float rounding (one llama.cpp build
answers "Paris", another French nonsense), so these tests check what does not depend on its words:
token counts, limits, streaming against generate, grammar-constrained JSON, errors. How often its
answers are right is a benchmark: ``python benchmarks/vlm_answers.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("llama_cpp")

from vlm_conformance import check_generator  # noqa: E402

from omnimem.errors import ConfigError, NotFound  # noqa: E402
from omnimem.vlm import Message, create_generator  # noqa: E402
from omnimem.vlm.compress import CompressionConfig, compress_context  # noqa: E402
from omnimem.vlm.llamacpp import LlamaCppConfig, LlamaCppGenerator, packaged_smollm2_path  # noqa: E402
from omnimem.vlm.structured import generate_json, schema_errors  # noqa: E402

pytestmark = pytest.mark.slow

FRANCE = [Message("system", "You are a helpful assistant."), Message("user", "What is the capital of France?")]
# bounded strings and integers: the grammar-constrained answer always fits in the token budget below
CITY = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 20}, "population": {"type": "integer"}},
    "required": ["city", "population"],
}
CHATML_MARKERS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")


@pytest.fixture(scope="module")
def smollm2():
    return create_generator("smollm2", n_ctx=1024, n_threads=2)


def test_generate_counts_tokens_and_keeps_to_the_cap(smollm2):
    out = smollm2.generate(FRANCE, max_new_tokens=24)
    text_tokens = sum(smollm2.count_tokens(m.content) for m in FRANCE)
    assert text_tokens < out.tokens_in <= text_tokens + 8 * len(FRANCE)  # the chat template's markers, bounded
    assert 0 < out.tokens_out <= 24 and out.text == out.text.strip()
    retokenized = smollm2.count_tokens(out.text)  # BPE may merge what was generated apart, rarely the reverse
    assert abs(retokenized - out.tokens_out) <= max(2, out.tokens_out // 4), (out.text, out.tokens_out)
    capped = smollm2.generate("Count from one to one hundred in words.", max_new_tokens=3)
    assert 0 < capped.tokens_out <= 3
    assert len(list(smollm2.stream("Count from one to one hundred in words.", max_new_tokens=3))) <= 3


def test_greedy_decoding_is_repeatable_and_streaming_matches_generate(smollm2):
    first = smollm2.generate(FRANCE, max_new_tokens=24)
    again = smollm2.generate(FRANCE, max_new_tokens=24)
    assert again.text == first.text and again.tokens_out == first.tokens_out  # temperature 0: one answer
    pieces = list(smollm2.stream(FRANCE, max_new_tokens=24))
    assert pieces and "".join(pieces).strip() == first.text
    assert len(pieces) <= 24


def test_the_end_of_turn_stops_generation_and_never_leaks(smollm2):
    out = smollm2.generate(FRANCE, max_new_tokens=256)
    streamed = "".join(smollm2.stream(FRANCE, max_new_tokens=256))
    assert 0 < out.tokens_out <= 256
    assert not any(marker in text for marker in CHATML_MARKERS for text in (out.text, streamed))


def test_conformance(smollm2):
    check_generator(smollm2)


def test_json_schema_is_constrained_by_a_grammar(smollm2):
    for question in ("Give the capital of France as JSON.", "Describe a big city as JSON.", "What is 2+2?"):
        out = smollm2.generate(question, json_schema=CITY, max_new_tokens=64)
        value = json.loads(out.text)  # parses as it came out: no repair was needed
        assert schema_errors(value, CITY) == [] and out.parsed == value, out.text
        assert len(value["city"]) <= 20 and out.tokens_out <= 64
    out = generate_json(smollm2, "Give the capital of France as JSON.", CITY, retries=0, max_new_tokens=64)
    assert schema_errors(out.parsed, CITY) == []  # no retry was needed


def test_compressed_prompt_fits_the_budget_in_real_tokens(smollm2):
    evidence = [
        "Melanie painted a sunrise last year. She loves painting with her kids on weekends.",
        "The capital of France is Paris. France is a country in Europe with many old cities.",
        "Bob bought a red bicycle on Monday. It was raining all day in the town.",
    ]
    budget = 110
    ctx = compress_context("What is the capital of France?", evidence, smollm2.count_tokens,
                           CompressionConfig(token_budget=budget, family="none"))  # fmt: skip
    out = smollm2.generate(ctx.messages, max_new_tokens=4)
    assert out.tokens_in <= ctx.prompt_tokens <= budget  # the template allowance covers ChatML's markers
    assert "The capital of France is Paris." in ctx.messages[1].content
    assert "bicycle" not in ctx.messages[1].content


def test_images_need_a_projector(smollm2):
    with pytest.raises(ConfigError, match="mmproj"):
        smollm2.generate("What is this?", images=[np.zeros((8, 8, 3), np.uint8)])


def test_missing_mmproj_and_model_are_clear(tmp_path):
    with pytest.raises(NotFound, match="mmproj"):
        LlamaCppGenerator.from_pretrained(packaged_smollm2_path(), mmproj=str(tmp_path / "mmproj.gguf"))
    with pytest.raises(NotFound, match="smollm2"):
        LlamaCppGenerator.from_pretrained(str(tmp_path / "missing.gguf"))
    with pytest.raises(ConfigError, match="n_ctx"):
        LlamaCppGenerator.from_pretrained("smollm2", n_ctxx=8)
    with pytest.raises(ConfigError, match="vision_handler"):
        LlamaCppConfig(vision_handler="gpt-vision")


def test_context_overflow_says_how_to_fix():
    tiny = LlamaCppGenerator.from_pretrained("smollm2", n_ctx=32, n_threads=2)
    with pytest.raises(ConfigError, match="n_ctx"):
        tiny.generate("word " * 200, max_new_tokens=4)
