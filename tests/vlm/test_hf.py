"""transformers backend on tiny random-initialised Qwen2-VL, LLaVA and Llama checkpoints, built from
configs and saved to a folder, then loaded back through ``from_pretrained(path)`` like a download."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")

from vlm_conformance import check_generator  # noqa: E402

from omnimem.errors import BackendUnavailable, ConfigError  # noqa: E402
from omnimem.vlm.hf import HFConfig, HFGenerator  # noqa: E402

pytestmark = pytest.mark.slow

IMAGE = np.random.RandomState(0).randint(0, 255, (64, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", ["qwen2vl", "llava"])
def test_vlm_images_in_tokens_out(name, request):
    gen = request.getfixturevalue(name)
    assert gen.is_vlm and type(gen.model).__name__.endswith("ForConditionalGeneration")
    with_image = check_generator(gen, max_new_tokens=5, images=(IMAGE,))
    without = gen.generate("Describe the image.", max_new_tokens=5)
    # the processor expanded the image placeholder into the family's visual tokens
    expected_visual = {"qwen2vl": 2 * 2, "llava": (32 // 8) ** 2}[name]  # 64x48 -> 56x56 grid / 4x4 CLIP patches
    assert with_image.tokens_in - without.tokens_in >= expected_visual
    two = gen.generate("Compare.", images=[IMAGE, IMAGE[::-1]], max_new_tokens=3)
    assert 0 < two.tokens_out <= 3


def test_max_new_tokens_is_respected(qwen2vl):
    for n in (1, 7):
        assert qwen2vl.generate("Hi", images=[IMAGE], max_new_tokens=n).tokens_out <= n
    with pytest.raises(ConfigError, match="max_new_tokens"):
        qwen2vl.generate("Hi", max_new_tokens=0)


def test_greedy_is_deterministic_and_streams_the_same_text(llava):
    a = llava.generate("Describe.", images=[IMAGE], max_new_tokens=6)
    b = llava.generate("Describe.", images=[IMAGE], max_new_tokens=6)
    assert a.text == b.text
    assert "".join(llava.stream("Describe.", images=[IMAGE], max_new_tokens=6)).strip() == a.text


def test_text_llm(llama):
    assert not llama.is_vlm and llama.device.type == "cpu"
    check_generator(llama, max_new_tokens=4)
    with pytest.raises(ConfigError, match="text-only"):
        llama.generate("What is this?", images=[IMAGE])
    schema = {"type": "object"}
    assert llama.generate("JSON please", json_schema=schema, max_new_tokens=3).parsed is None  # random model


def test_errors_say_the_fix(tmp_path):
    with pytest.raises(BackendUnavailable, match="local folder"):
        HFGenerator.from_pretrained(str(tmp_path))
    with pytest.raises(ConfigError, match="dtype"):
        HFConfig(dtype="int3")
    with pytest.raises(ConfigError, match="HFGenerator options"):
        HFGenerator.from_pretrained(str(tmp_path), precision="fp16")
