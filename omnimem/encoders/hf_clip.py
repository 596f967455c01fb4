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

from omnimem.encoders.clip import check_images
from omnimem.encoders.hf import HfDualEncoder, feature_array, load_model_and_processor
from omnimem.encoders.media import load_image

__all__ = ["HfClipEncoder", "hf_clip_encoder"]

log = logging.getLogger(__name__)


class HfClipEncoder(HfDualEncoder):
    """An :class:`~omnimem.encoders.base.Encoder` over a transformers ``CLIPModel``: texts and images.

    ``processor``: texts -> input_ids (n, L); images -> pixel_values (n, 3, H, W).
    """

    modalities = ("text", "image")
    registry_name = "hf_clip"  # the ENCODERS name that rebuilds it: create_encoder(registry_name, model=...)

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, device: str = "cpu", batch_size: int = 32) -> HfClipEncoder:
        """Load a ``CLIPModel`` and its ``CLIPProcessor`` from a local directory (or a cached hub name)."""
        model, processor = load_model_and_processor(
            "CLIPModel", "CLIPProcessor", name_or_path, device=device, extra="clip", what="CLIP"
        )
        return cls(model, processor, name=name_or_path, device=device, batch_size=batch_size)

    def _inputs(self, inputs: Sequence[Any]) -> list[Any]:
        """Images: PIL, a path or an ``(h, w, 3)`` uint8 array."""
        return check_images(inputs, self.name)

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
