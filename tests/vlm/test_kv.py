"""SnapKV cache compression (Llama, LLaVA and Qwen2-VL with M-RoPE), [CLS]-attention visual-token
pruning and prefix-cache reuse on tiny random-initialised models: the configured ratio is met and the
model still generates; with nothing pruned, the output equals plain generation (the decoding path is
exact), and a decode step after images sits at the model's own M-RoPE position."""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("transformers")

from omnimem.errors import ConfigError  # noqa: E402
from omnimem.vlm import Message  # noqa: E402
from omnimem.vlm.kv import (  # noqa: E402
    PrefixCache,
    SnapKVConfig,
    generate_pruned_llava,
    generate_snapkv,
    reset_rope_deltas,
    rope_delta,
)

pytestmark = pytest.mark.slow

IMAGE = np.random.RandomState(0).randint(0, 255, (64, 48, 3), dtype=np.uint8)
LONG = [
    Message("system", "You are a helpful assistant. Answer with citations like [E1]. " * 3),
    Message("user", "Evidence: The capital of France is Paris. " * 5 + "Question: What is the capital of France?"),
]


@pytest.mark.parametrize("name", ["llama", "llava"])
def test_snapkv_with_nothing_dropped_equals_plain_generation(name, request):
    gen = request.getfixturevalue(name)
    images = [IMAGE] if gen.is_vlm else []
    plain = gen.generate(LONG, images=images, max_new_tokens=6)
    out, stats = generate_snapkv(gen, LONG, images=images, max_new_tokens=6, config=SnapKVConfig(keep_ratio=1.0))
    assert out.text == plain.text and stats.after == stats.before == plain.tokens_in


@pytest.mark.parametrize("ratio", [0.5, 0.25])
def test_snapkv_meets_the_ratio_and_still_generates(llama, ratio):
    out, stats = generate_snapkv(llama, LONG, max_new_tokens=5, config=SnapKVConfig(keep_ratio=ratio, window=4))
    assert stats.before == out.tokens_in
    assert stats.after == max(5, int(np.ceil(ratio * stats.before)))
    assert stats.ratio == pytest.approx(ratio, abs=0.02)
    assert 0 < out.tokens_out <= 5


@pytest.mark.parametrize("ratio", [1.0, 0.5, 0.25])
def test_snapkv_on_qwen2vl_with_images(qwen2vl, ratio):
    images = [IMAGE, IMAGE[::-1]]
    plain = qwen2vl.generate(LONG, images=images, max_new_tokens=6)
    out, stats = generate_snapkv(qwen2vl, LONG, images=images, max_new_tokens=6, config=SnapKVConfig(keep_ratio=ratio))
    assert stats.before == out.tokens_in == plain.tokens_in
    assert stats.after == max(9, int(np.ceil(ratio * stats.before)))
    assert 0 < out.tokens_out <= 6
    if ratio == 1.0:
        assert out.text == plain.text


def test_decoding_after_images_continues_at_the_m_rope_position(qwen2vl):
    """A cached decode step at prompt length + rope_deltas gives the logits of a full forward over
    prompt + token (which computes Qwen2-VL's 3-D positions itself); without the delta it does not."""
    import torch

    model, inputs = qwen2vl.model, qwen2vl.prepare(LONG, [IMAGE, IMAGE[::-1]])
    n = int(inputs["input_ids"].shape[1])
    reset_rope_deltas(model)
    with torch.inference_mode():
        out = model(**inputs, use_cache=True)
        delta = rope_delta(model)
        assert delta < 0  # 2 images of 2x2 merged tokens take 2 positions each, not 4
        token = out.logits[:, -1].argmax(-1).view(1, 1)
        longer = dict(inputs, input_ids=torch.cat([inputs["input_ids"], token], dim=1),
                      attention_mask=torch.ones(1, n + 1, dtype=torch.long),
                      mm_token_type_ids=torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(token)], dim=1))  # fmt: skip
        reset_rope_deltas(model)
        reference = model(**longer).logits[:, -1]
        steps = {}
        for position in (n + delta, n):
            cache = copy.deepcopy(out.past_key_values)
            steps[position] = model(input_ids=token, past_key_values=cache, position_ids=torch.tensor([[position]]),
                                    use_cache=True).logits[:, -1]  # fmt: skip
    torch.testing.assert_close(steps[n + delta], reference, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(steps[n], reference, atol=1e-5, rtol=1e-4)


def test_snapkv_config_is_validated():
    for bad in ({"keep_ratio": 0.0}, {"window": 0}, {"kernel": 4}):
        with pytest.raises(ConfigError):
            SnapKVConfig(**bad)


def test_cls_attention_pruning_keeps_the_ratio_of_visual_tokens(llava):
    plain = llava.generate(LONG, images=[IMAGE], max_new_tokens=6)
    same, full = generate_pruned_llava(llava, LONG, [IMAGE], keep_ratio=1.0, max_new_tokens=6)
    assert same.text == plain.text and full.after == full.before == 16
    out, stats = generate_pruned_llava(llava, LONG, [IMAGE, IMAGE[::-1]], keep_ratio=0.25, max_new_tokens=4)
    assert (stats.before, stats.after) == (32, 8)
    two = llava.generate(LONG, images=[IMAGE, IMAGE[::-1]], max_new_tokens=1)
    assert two.tokens_in - out.tokens_in == 32 - 8
    assert 0 < out.tokens_out <= 4


def test_cls_pruning_needs_llava(qwen2vl):
    with pytest.raises(ConfigError, match="LLaVA"):
        generate_pruned_llava(qwen2vl, LONG, [IMAGE])


def test_prefix_cache_is_reused_across_turns_and_exact(llama):
    cache = PrefixCache(llama, LONG)
    for question in ("And Germany?", "And Italy?"):
        turn = [*LONG, Message("assistant", "Paris [E1]."), Message("user", question)]
        assert cache.generate(turn, max_new_tokens=6).text == llama.generate(turn, max_new_tokens=6).text
    assert cache.hits == 2
    other = [Message("user", "Unrelated.")]
    assert cache.generate(other, max_new_tokens=2).tokens_out <= 2 and cache.hits == 2  # fell back
