"""The transformers CLAP adapter on a tiny random-initialised model loaded from disk."""

from __future__ import annotations

import numpy as np
import pytest

from omnimem.encoders import create_encoder
from omnimem.errors import BackendUnavailable, ConfigError, CorruptInput


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mediagen import write_tiny_clap

    return write_tiny_clap(tmp_path_factory.mktemp("clap"))


def test_embeds_texts_and_audio_into_one_normalised_space(clap_dir, tmp_path):
    from mediagen import tone, write_audio

    enc = create_encoder("hf_clap", model=str(clap_dir))
    assert enc.modalities == ("text", "audio") and enc.dim == 16 and enc.sample_rate == 16000
    texts = enc.encode(["a dog barks", "rain on a window", ""], modality="text")
    wav = write_audio(tmp_path / "t.wav", tone(1.5, freq=330.0))
    audio = enc.encode([tone(1.0), str(wav), tone(3.0, freq=880.0)], modality="audio")  # longer than 2 s: cut
    assert texts.shape == (3, 16) and audio.shape == (3, 16)
    assert np.allclose(np.linalg.norm(np.vstack([texts, audio]), axis=1), 1.0, atol=1e-5)
    assert np.allclose(enc.encode(["a dog barks"])[0], texts[0], atol=1e-5)  # deterministic
    assert enc.encode([], modality="audio").shape == (0, 16)


def test_bad_inputs_and_missing_models_get_clear_errors(clap_dir, tmp_path):
    enc = create_encoder("hf_clap", model=str(clap_dir))
    with pytest.raises(ConfigError, match="modality"):
        enc.encode(["x"], modality="image")
    with pytest.raises(CorruptInput, match="mono"):
        enc.encode([np.zeros((2, 100), dtype=np.float32)], modality="audio")
    with pytest.raises(BackendUnavailable, match="save_pretrained"):
        create_encoder("hf_clap", model=str(tmp_path / "nowhere"))
