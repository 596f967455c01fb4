"""CLIP encoders (open_clip and transformers) on tiny random-initialised models loaded from disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mediagen import bytes_to_unicode
from PIL import Image

from omnimem.encoders.base import Encoder
from omnimem.errors import BackendUnavailable, ConfigError, CorruptInput

TEXTS = ["a red square", "a photo of a dog", "", "the quick brown fox jumps over the lazy dog"]


def _images(tmp_path):
    colours = [(200, 20, 20), (20, 200, 20), (20, 20, 200)]
    images = [Image.new("RGB", (40 + 8 * n, 30), c) for n, c in enumerate(colours)]
    path = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 36, 3), dtype=np.uint8)).save(path)
    return [*images, path, str(path)]


@pytest.fixture(scope="module")
def open_clip_dir(tmp_path_factory):
    """A tiny open_clip CLIP saved the way open_clip checkpoints are published (config JSON + weights)."""
    pytest.importorskip("torch")
    pytest.importorskip("open_clip")
    from mediagen import write_tiny_open_clip

    return write_tiny_open_clip(tmp_path_factory.mktemp("open_clip"))


@pytest.fixture(scope="module")
def hf_clip_dir(tmp_path_factory):
    """A tiny transformers CLIPModel + CLIPProcessor (byte-level vocabulary, no merges) saved to disk."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    path = tmp_path_factory.mktemp("hf_clip")
    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = transformers.CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"))
    images = transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    config = transformers.CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
            max_position_embeddings=64, bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
        ),
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.CLIPModel(config).save_pretrained(path)
    transformers.CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(path)
    return path


@pytest.fixture(scope="module", params=["open_clip", "hf_clip"])
def encoder(request, open_clip_dir, hf_clip_dir):
    if request.param == "open_clip":
        from omnimem.encoders.clip import OpenClipEncoder

        return OpenClipEncoder.from_pretrained(str(open_clip_dir), batch_size=3)
    from omnimem.encoders.hf_clip import HfClipEncoder

    return HfClipEncoder.from_pretrained(str(hf_clip_dir), batch_size=3)


def _check_rows(vectors, n, dim):
    assert vectors.shape == (n, dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_protocol_and_shared_space(encoder):
    assert isinstance(encoder, Encoder)
    assert encoder.modalities == ("text", "image")
    assert encoder.dim == 16
    text = encoder.encode(TEXTS, modality="text")
    image = encoder.encode([Image.new("RGB", (32, 32), "red")], modality="image")
    _check_rows(text, len(TEXTS), encoder.dim)
    _check_rows(image, 1, encoder.dim)
    assert (text @ image.T).shape == (len(TEXTS), 1)  # one space: image-text cosine is defined


def test_images_from_pil_and_paths(encoder, tmp_path):
    images = _images(tmp_path)
    vectors = encoder.encode(images, modality="image")
    _check_rows(vectors, len(images), encoder.dim)
    np.testing.assert_allclose(vectors[3], vectors[4], atol=1e-6)  # Path and str of one file agree
    assert not np.allclose(vectors[0], vectors[2])


def test_deterministic_and_batching_equals_one_by_one(encoder, tmp_path):
    images = _images(tmp_path)
    for modality, inputs in (("text", TEXTS), ("image", images)):
        batched = encoder.encode(inputs, modality=modality)
        np.testing.assert_array_equal(batched, encoder.encode(inputs, modality=modality))
        single = np.concatenate([encoder.encode([x], modality=modality) for x in inputs])
        np.testing.assert_allclose(batched, single, atol=1e-5)


def test_bad_inputs_are_refused_clearly(encoder, tmp_path):
    assert encoder.encode([], modality="image").shape == (0, encoder.dim)
    with pytest.raises(ConfigError, match="single"):
        encoder.encode("a dog")
    with pytest.raises(ConfigError, match="modality"):
        encoder.encode(["x"], modality="audio")
    with pytest.raises(ConfigError, match="single"):
        encoder.encode(Image.new("RGB", (8, 8)), modality="image")
    fake = tmp_path / "fake.jpg"
    fake.write_text("not an image")
    with pytest.raises(CorruptInput, match="fake.jpg"):
        encoder.encode([fake], modality="image")


def test_missing_models_are_backend_unavailable(tmp_path):
    from omnimem.encoders.clip import OpenClipEncoder
    from omnimem.encoders.hf_clip import HfClipEncoder

    with pytest.raises(BackendUnavailable, match="no-such-model"):
        OpenClipEncoder.from_pretrained("no-such-model")
    with pytest.raises(BackendUnavailable, match="save_pretrained"):
        HfClipEncoder.from_pretrained(str(tmp_path))


def test_registry_targets_resolve_and_build(open_clip_dir, hf_clip_dir):
    """The lines proposed for omnimem/encoders/__init__.py, run on a local registry."""
    from omnimem.registry import Registry

    registry = Registry("encoder")
    registry.register("open_clip", "omnimem.encoders.clip:open_clip_encoder")
    registry.register("hf_clip", "omnimem.encoders.hf_clip:hf_clip_encoder")
    assert registry.create("open_clip", "open_clip", model=str(open_clip_dir)).dim == 16
    assert registry.create("hf_clip", "hf_clip", model=str(hf_clip_dir)).dim == 16
