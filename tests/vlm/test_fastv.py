"""FastV visual-token pruning after layer K on tiny random-initialised Qwen2-VL (M-RoPE) and LLaVA:
the configured share of visual tokens is dropped from layers >= K, the model still generates, keep
ratio 1.0 reproduces plain generation, and the pruned prefill equals a full prefill in which layers
>= K are masked from the dropped tokens (so the kept tokens kept their original rotary positions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("transformers")

from omnimem.errors import ConfigError  # noqa: E402
from omnimem.vlm.fastv import FastVConfig, generate_fastv, prefill_fastv  # noqa: E402
from omnimem.vlm.kv import eager_attention, language_model, reset_rope_deltas  # noqa: E402

pytestmark = pytest.mark.slow

IMAGE = np.random.RandomState(0).randint(0, 255, (64, 48, 3), dtype=np.uint8)
IMAGES = [IMAGE, IMAGE[::-1]]
PROMPT = "Describe both images and say which one is darker. Answer with citations like [E1]."


@pytest.mark.parametrize("name", ["qwen2vl", "llava"])
def test_keep_ratio_one_equals_plain_generation(name, request):
    gen = request.getfixturevalue(name)
    plain = gen.generate(PROMPT, images=IMAGES, max_new_tokens=6)
    out, stats = generate_fastv(gen, PROMPT, IMAGES, max_new_tokens=6, config=FastVConfig(layer=1, keep_ratio=1.0))
    assert out.text == plain.text and out.tokens_in == plain.tokens_in
    assert stats.after == stats.before > 0


@pytest.mark.parametrize("ratio", [0.5, 0.25])
def test_visual_tokens_reduced_by_the_ratio_and_still_generates(qwen2vl, ratio):
    inputs = qwen2vl.prepare(PROMPT, IMAGES)
    n = int(inputs["input_ids"].shape[1])
    prefill = prefill_fastv(qwen2vl.model, inputs, FastVConfig(layer=1, keep_ratio=ratio))
    stats = prefill.stats
    assert stats.before == int((inputs["input_ids"] == qwen2vl.model.config.image_token_id).sum()) == 8
    assert stats.after == math.ceil(ratio * stats.before)
    lengths = [layer.keys.shape[-2] for layer in prefill.cache.layers]
    assert lengths == [n, n - (stats.before - stats.after)]  # layer 0 sees all, layer 1 the pruned prompt
    out, _ = generate_fastv(qwen2vl, PROMPT, IMAGES, max_new_tokens=5, config=FastVConfig(layer=1, keep_ratio=ratio))
    assert 0 < out.tokens_out <= 5 and out.tokens_in == n


def test_pruning_equals_masking_the_dropped_tokens(qwen2vl):
    """Dropping tokens from layers >= K is the same as hiding them there behind the attention mask,
    provided the kept tokens keep their original (3-D) rotary positions."""
    import torch

    model, inputs = qwen2vl.model, qwen2vl.prepare(PROMPT, IMAGES)
    n = int(inputs["input_ids"].shape[1])
    prefill = prefill_fastv(model, inputs, FastVConfig(layer=1, keep_ratio=0.25))
    dropped = torch.ones(n, dtype=torch.bool)
    dropped[prefill.kept] = False
    assert int(dropped.sum()) == 6

    def hide(module, args, kwargs):
        mask = kwargs["attention_mask"].clone()  # (1, 1, n, n) additive, eager attention
        mask[..., dropped] = torch.finfo(mask.dtype).min
        kwargs["attention_mask"] = mask
        return args, kwargs

    handle = model.get_decoder().layers[1].register_forward_pre_hook(hide, with_kwargs=True)
    reset_rope_deltas(model)
    try:
        with torch.inference_mode(), eager_attention(language_model(model)):
            reference = model(**inputs).logits[:, -1]
    finally:
        handle.remove()
    torch.testing.assert_close(prefill.logits, reference, atol=1e-5, rtol=1e-4)


def test_errors_say_the_fix(qwen2vl, llama):
    with pytest.raises(ConfigError, match="below the model's 2 decoder layers"):
        generate_fastv(qwen2vl, PROMPT, IMAGES, config=FastVConfig(layer=2))
    with pytest.raises(ConfigError, match="at least one image"):
        generate_fastv(qwen2vl, PROMPT, [])
    with pytest.raises(ConfigError, match="image_token_id"):
        prefill_fastv(llama.model, llama.prepare(PROMPT), FastVConfig(layer=1))
    for bad in ({"layer": 0}, {"keep_ratio": 0.0}, {"keep_ratio": 1.5}, {"query_window": 0}):
        with pytest.raises(ConfigError):
            FastVConfig(**bad)
