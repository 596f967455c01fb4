from __future__ import annotations

import numpy as np
import pytest

from omnimem.errors import ConfigError, CorruptInput
from omnimem.vlm import GENERATORS, Generation, Message, as_messages, create_generator
from omnimem.vlm.base import estimate_tokens, image_data_uri, load_image


def test_message_validates_role_and_content():
    assert Message("user", "hi").to_dict() == {"role": "user", "content": "hi"}
    with pytest.raises(ConfigError, match="role"):
        Message("robot", "hi")
    with pytest.raises(ConfigError, match="str"):
        Message("user", 3)  # type: ignore[arg-type]


def test_as_messages_accepts_str_dict_message_and_lists():
    assert as_messages("hi") == [Message("user", "hi")]
    assert as_messages({"role": "system", "content": "s"}) == [Message("system", "s")]
    mixed = as_messages([Message("system", "s"), {"role": "user", "content": "u"}, "again"])
    assert [m.role for m in mixed] == ["system", "user", "user"]
    with pytest.raises(ConfigError, match="empty"):
        as_messages([])
    with pytest.raises(ConfigError, match="message 0"):
        as_messages([42])  # type: ignore[list-item]


def test_generation_is_frozen_with_rate():
    g = Generation("x", tokens_in=3, tokens_out=10, latency_s=2.0)
    assert g.tokens_per_s == 5.0 and g.parsed is None
    with pytest.raises(AttributeError):
        g.text = "y"  # type: ignore[misc]


def test_images_load_from_arrays_and_paths(tmp_path):
    array = np.zeros((8, 6, 3), dtype=np.uint8)
    image = load_image(array)
    assert image.size == (6, 8) and image.mode == "RGB"
    image.save(tmp_path / "a.png")
    assert load_image(tmp_path / "a.png").size == (6, 8)
    assert image_data_uri(array).startswith("data:image/png;base64,")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(CorruptInput):
        load_image(tmp_path / "bad.png")
    with pytest.raises(ConfigError):
        load_image(3.5)


def test_estimate_tokens_over_counts():
    assert estimate_tokens("") == 0
    assert estimate_tokens("hello world") >= 2


def test_registry_names_and_unknown_name():
    assert {"smollm2", "llamacpp", "hf", "http"} <= set(GENERATORS.names())
    with pytest.raises(ConfigError, match="known: hf, http, llamacpp, smollm2"):
        create_generator("gpt-17")


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, omnimem.vlm; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'llama_cpp'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
