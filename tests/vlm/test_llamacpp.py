"""llama.cpp backend on the packaged SmolLM2-135M-Instruct (real weights, CPU)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("llama_cpp")

from vlm_conformance import check_generator  # noqa: E402

from omnimem.errors import ConfigError, NotFound  # noqa: E402
from omnimem.vlm import Message, create_generator  # noqa: E402
from omnimem.vlm.compress import CompressionConfig, compress_context  # noqa: E402
from omnimem.vlm.llamacpp import LlamaCppConfig, LlamaCppGenerator, packaged_smollm2_path  # noqa: E402
from omnimem.vlm.structured import generate_json  # noqa: E402

pytestmark = pytest.mark.slow

FRANCE = [Message("system", "You are a helpful assistant."), Message("user", "What is the capital of France?")]


@pytest.fixture(scope="module")
def smollm2():
    return create_generator("smollm2", n_ctx=1024, n_threads=2)


def test_answers_the_capital_of_france(smollm2):
    out = smollm2.generate(FRANCE, max_new_tokens=24)
    assert "Paris" in out.text
    assert out.tokens_in > 10 and 0 < out.tokens_out <= 24


def test_conformance(smollm2):
    check_generator(smollm2)
    assert "Paris" in "".join(smollm2.stream(FRANCE, max_new_tokens=24))


def test_json_schema_is_constrained_by_a_grammar(smollm2):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    out = generate_json(smollm2, "Give the capital of France as JSON.", schema, retries=0, max_new_tokens=24)
    assert isinstance(out.parsed, dict) and isinstance(out.parsed["city"], str)  # no retry was needed


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
