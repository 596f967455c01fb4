"""Image + text encoder on transformers' ``CLIPModel`` + ``CLIPProcessor`` (no torchvision needed).

The same contract as :mod:`omnimem.encoders.clip` (CLIP, Radford et al. 2021): ``get_text_features``
and ``get_image_features`` project both towers into one space; rows are L2-normalised. Loads any
directory written by ``save_pretrained`` (or a cached hub name; this module never downloads).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from omnimem.encoders.base import check_texts, normalize_rows
from omnimem.encoders.clip import check_images
from omnimem.encoders.hf import feature_array, load_model_and_processor
from omnimem.encoders.media import load_image
from omnimem.errors import ConfigError

__all__ = ["HfClipEncoder", "hf_clip_encoder"]

log = logging.getLogger(__name__)


class HfClipEncoder:
    """An :class:`~omnimem.encoders.base.Encoder` over a transformers ``CLIPModel``."""

    modalities = ("text", "image")
    registry_name = "hf_clip"  # the ENCODERS name that rebuilds it: create_encoder(registry_name, model=...)

    def __init__(self, model: Any, processor: Any, *, name: str, device: str = "cpu", batch_size: int = 32) -> None:
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        self.model = model.eval()
        self.processor = processor  # texts -> input_ids (n, L); images -> pixel_values (n, 3, H, W)
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self.dim = int(model.config.projection_dim)

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, device: str = "cpu", batch_size: int = 32) -> HfClipEncoder:
        """Load a ``CLIPModel`` and its ``CLIPProcessor`` from a local directory (or a cached hub name)."""
        model, processor = load_model_and_processor(
            "CLIPModel", "CLIPProcessor", name_or_path, device=device, extra="clip", what="CLIP"
        )
        return cls(model, processor, name=name_or_path, device=device, batch_size=batch_size)

    def encode(self, inputs: Sequence[Any], *, modality: str = "text") -> np.ndarray:
        """Texts (``modality="text"``) or images (PIL, path, ``(h, w, 3)`` uint8) -> float32 ``(n, dim)``."""
        if modality == "text":
            items: list[Any] = check_texts(inputs, self.name)
        elif modality == "image":
            items = check_images(inputs, self.name)
        else:
            raise ConfigError(f"{self.name} embeds {' and '.join(self.modalities)}, got modality {modality!r}")
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._batch(items[i : i + self.batch_size], modality) for i in range(0, len(items), self.batch_size)]
        return normalize_rows(np.concatenate(parts))

    def _batch(self, batch: list[Any], modality: str) -> np.ndarray:
        import torch

        with torch.inference_mode():
            if modality == "text":
                max_length = getattr(self.model.config.text_config, "max_position_embeddings", None)
                tokens = self.processor(
                    text=batch, return_tensors="pt", padding=True, truncation=True, max_length=max_length
                ).to(self.device)
                features = self.model.get_text_features(
                    input_ids=tokens["input_ids"], attention_mask=tokens.get("attention_mask")
                )
            else:
                pixels = self.processor(images=[load_image(x) for x in batch], return_tensors="pt")["pixel_values"]
                features = self.model.get_image_features(pixel_values=pixels.to(self.device))
        return feature_array(features, self.name, "CLIP")


def hf_clip_encoder(
    _registered: str = "hf_clip", *, model: str, device: str = "cpu", batch_size: int = 32
) -> HfClipEncoder:
    """Registry factory: ``create_encoder("hf_clip", model="/path/to/clip-dir")``."""
    return HfClipEncoder.from_pretrained(model, device=device, batch_size=batch_size)
