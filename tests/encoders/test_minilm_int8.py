"""The int8 MiniLM: the packaged model with its linear layers dynamically quantized (an optional faster path)."""

from __future__ import annotations

import numpy as np
import pytest

from omnimem.encoders import ENCODERS, create_encoder
from omnimem.errors import ConfigError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair():
    return create_encoder("minilm"), create_encoder("minilm-int8")


def test_int8_is_registered_named_and_returns_unit_vectors(pair):
    float_model, int8 = pair
    assert "minilm-int8" in ENCODERS and int8.name == "minilm-int8" and int8.dim == float_model.dim == 384
    vectors = int8.encode(["Caroline went to the support group.", "Melanie painted a sunset."], modality="text")
    assert vectors.dtype == np.float32 and vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_int8_vectors_stay_close_to_the_float_models_and_rank_alike(pair):
    float_model, int8 = pair
    texts = [
        "Caroline went to the LGBTQ support group on Tuesday.",
        "On Tuesday Caroline attended a support group for LGBTQ people.",
        "The recipe needs two cups of flour and an egg.",
        "Melanie ran a charity race for mental health.",
    ]
    a, b = float_model.encode(texts, modality="text"), int8.encode(texts, modality="text")
    assert float(np.mean(np.sum(a * b, axis=1))) > 0.85  # measured ~0.95; the bound leaves room for CPU differences
    similarity = b @ b.T
    assert similarity[0, 1] > max(similarity[0, 2], similarity[0, 3])  # the paraphrase is still nearest


def test_int8_is_cpu_only_and_the_option_is_checked():
    with pytest.raises(ConfigError, match="CPU"):
        create_encoder("minilm", quantize="int8", device="cuda")
    with pytest.raises(ConfigError, match="quantize"):
        create_encoder("minilm", quantize="int4")
