"""Image + text encoder on open-clip-torch: both towers map into one embedding space (CLIP).

Contrastive language-image pre-training (Radford et al. 2021, section 2.3): an image tower and a text
tower each end in a linear projection to the same ``dim``; cosine similarity of the L2-normalised
outputs ranks images for a text and texts for an image. ``OpenClipEncoder.from_pretrained`` takes an
open_clip model name with a ``pretrained`` tag or checkpoint file, or a local directory holding
``open_clip_config.json`` and weights (the layout of open_clip checkpoints on model hubs).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from omnimem.encoders.base import check_texts, normalize_rows
from omnimem.encoders.media import load_image
from omnimem.errors import BackendUnavailable, ConfigError, missing_extra

__all__ = ["OpenClipEncoder", "open_clip_encoder", "check_images"]

log = logging.getLogger(__name__)


def check_images(inputs: Sequence[Any], encoder: str) -> list[Any]:
    """Validate a batch of images for ``encoder``: PIL images, paths or ``(h, w, 3)`` arrays (not loaded)."""
    if isinstance(inputs, (str, os.PathLike)) or hasattr(inputs, "getpixel"):
        raise ConfigError(f"{encoder}.encode expects a list of images, got a single one; wrap it: [image]")
    return list(inputs)


class OpenClipEncoder:
    """An :class:`~omnimem.encoders.base.Encoder` over an open_clip ``CLIP`` model; text and image in one space."""

    modalities = ("text", "image")
    registry_name = "open_clip"  # the ENCODERS name that rebuilds it: create_encoder(registry_name, model=...)

    def __init__(
        self, model: Any, preprocess: Any, tokenizer: Any, *, name: str, device: str = "cpu", batch_size: int = 32
    ) -> None:
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        self.model = model.eval()
        self.preprocess = preprocess  # PIL image -> float tensor (3, H, W)
        self.tokenizer = tokenizer  # list[str] -> int tensor (n, context_length)
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self.dim = int(self.encode(["probe"]).shape[1])

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        pretrained: str | None = None,
        device: str = "cpu",
        batch_size: int = 32,
        precision: str = "fp32",
    ) -> OpenClipEncoder:
        """Load ``name_or_path`` (an open_clip model name, ``hf-hub:org/repo``, ``local-dir:path`` or a
        directory) with ``pretrained`` (a tag or a checkpoint file; ignored for directories)."""
        try:
            import open_clip
        except ImportError as e:
            raise missing_extra("open-clip-torch", "clip") from e
        model_name = f"local-dir:{name_or_path}" if os.path.isdir(name_or_path) else name_or_path
        if model_name.startswith("hf-hub:"):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # reuse a cached copy, never download at run time
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=pretrained, device=device, precision=precision
            )
            tokenizer = open_clip.get_tokenizer(model_name)
        except (RuntimeError, OSError, ValueError) as e:
            raise BackendUnavailable(
                f"cannot load open_clip model {name_or_path!r} (pretrained={pretrained!r}): {e}. Pass a directory"
                " with open_clip_config.json and weights, or a model name with a checkpoint file on disk"
            ) from e
        return cls(model, preprocess, tokenizer, name=name_or_path, device=device, batch_size=batch_size)

    def encode(self, inputs: Sequence[Any], *, modality: str = "text") -> np.ndarray:
        """Texts (``modality="text"``) or images (PIL, path, ``(h, w, 3)`` uint8) -> float32 ``(n, dim)``."""
        if modality == "text":
            items: list[Any] = check_texts(inputs, self.name)
        elif modality == "image":
            items = check_images(inputs, self.name)
        else:
            raise ConfigError(f"{self.name} embeds {' and '.join(self.modalities)}, got modality {modality!r}")
        if not items:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        parts = [self._batch(items[i : i + self.batch_size], modality) for i in range(0, len(items), self.batch_size)]
        return normalize_rows(np.concatenate(parts))

    def _batch(self, batch: list[Any], modality: str) -> np.ndarray:
        import torch

        with torch.inference_mode():
            if modality == "text":
                features = self.model.encode_text(self.tokenizer(batch).to(self.device))
            else:
                pixels = torch.stack([self.preprocess(load_image(x)) for x in batch]).to(self.device)
                features = self.model.encode_image(pixels)
        return features.float().cpu().numpy()


def open_clip_encoder(
    _registered: str = "open_clip",
    *,
    model: str,
    pretrained: str | None = None,
    device: str = "cpu",
    batch_size: int = 32,
) -> OpenClipEncoder:
    """Registry factory: ``create_encoder("open_clip", model="ViT-B-32", pretrained="/path/ckpt.pt")``."""
    return OpenClipEncoder.from_pretrained(model, pretrained=pretrained, device=device, batch_size=batch_size)
