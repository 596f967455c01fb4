"""The traced forward pass: the same vectors as the eager model, and the eager path kept where it differs."""

from __future__ import annotations

import numpy as np
import pytest

from omnimem.encoders.sentence import SentenceEncoder, packaged_minilm_path
from omnimem.encoders.traced import trace_mean_pooled

pytestmark = pytest.mark.slow

TEXTS = [
    "What did Caroline do at the support group?",
    "",  # an empty text is a valid input
    "x",
    "Melanie painted a lake at sunrise and hung it in the hallway; " * 30,  # past the 256-token limit
    "Jon lost his job as a banker and opened a dance studio.",
]


@pytest.fixture(scope="module")
def eager():
    return SentenceEncoder.from_pretrained("minilm", trace=False)


def test_the_packaged_minilm_encodes_through_one_traced_call(minilm, eager):
    assert minilm._traced is not None and eager._traced is None
    for batch in ([TEXTS[0]], TEXTS, TEXTS * 30):  # one query, a padded batch, several batches
        got, want = minilm.encode(batch, modality="text"), eager.encode(batch, modality="text")
        assert got.shape == want.shape == (len(batch), 384) and got.dtype == np.float32
        assert float(np.abs(got - want).max()) < 1e-5
    assert minilm.encode([], modality="text").shape == (0, 384)


def test_the_int8_model_traces_to_its_own_vectors():
    traced = SentenceEncoder.from_pretrained("minilm", quantize="int8")
    eager = SentenceEncoder.from_pretrained("minilm", quantize="int8", trace=False)
    batch = TEXTS * 20  # several batches: the int8 activations are quantized per batch, batches must match
    assert float(np.abs(traced.encode(batch) - eager.encode(batch)).max()) < 1e-5


def _tiny(tmp_path, pooling: str):
    """A sentence-transformers model of a tiny random BERT (the packaged tokenizer) with ``pooling``."""
    transformers = pytest.importorskip("transformers")
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Pooling, Transformer

    folder = tmp_path / "tiny"
    tokenizer = transformers.AutoTokenizer.from_pretrained(packaged_minilm_path())
    tokenizer.save_pretrained(folder)
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    transformers.BertModel(config).save_pretrained(folder)
    return SentenceTransformer(modules=[Transformer(str(folder)), Pooling(32, pooling_mode=pooling)], device="cpu")


@pytest.mark.parametrize("pooling", ["cls", "max"])
def test_a_model_whose_pooling_the_trace_does_not_follow_keeps_the_eager_path(tmp_path, pooling):
    model = _tiny(tmp_path, pooling)
    assert trace_mean_pooled(model) is None  # the probe's vectors differ: the trace is refused
    encoder = SentenceEncoder(model, name="tiny")
    want = SentenceEncoder(model, name="tiny", trace=False).encode(TEXTS)
    assert encoder._traced is None and float(np.abs(encoder.encode(TEXTS) - want).max()) < 1e-6


def test_a_mean_pooled_model_of_another_size_traces(tmp_path):
    model = _tiny(tmp_path, "mean")
    encoder = SentenceEncoder(model, name="tiny")
    assert encoder._traced is not None and encoder.dim == 32
    want = SentenceEncoder(model, name="tiny", trace=False).encode(TEXTS)
    assert float(np.abs(encoder.encode(TEXTS) - want).max()) < 1e-5
