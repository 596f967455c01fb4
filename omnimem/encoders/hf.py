"""What the transformers-backed encoders share: loading a model + processor pair offline, and reading
the projected features out of whatever the model's ``get_*_features`` returns."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from omnimem.encoders.base import check_texts, normalize_rows
from omnimem.errors import BackendUnavailable, ConfigError, missing_extra

__all__ = ["load_model_and_processor", "feature_array", "HfDualEncoder"]


def load_model_and_processor(
    model_class: str, processor_class: str, name_or_path: str, *, device: str, extra: str, what: str
) -> tuple[Any, Any]:
    """``transformers.<model_class>`` and ``<processor_class>`` from a local directory (or a cached hub
    name: this never downloads). ``extra``: the pip extra that installs transformers; ``what``: the
    model family for messages ("CLIP", "CLAP")."""
    try:
        import transformers
    except ImportError as e:
        raise missing_extra("transformers", extra) from e
    if not os.path.isdir(name_or_path):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub name must already be in the local cache
    try:
        model = getattr(transformers, model_class).from_pretrained(name_or_path).to(device)
        processor = getattr(transformers, processor_class).from_pretrained(name_or_path)
    except (OSError, ValueError) as e:
        raise BackendUnavailable(
            f"cannot load {what} model {name_or_path!r} ({e}); pass a directory written by"
            f" {model_class}.save_pretrained + {processor_class}.save_pretrained"
        ) from e
    return model, processor


def feature_array(features: Any, name: str, what: str) -> Any:
    """The float32 numpy ``(n, dim)`` of a ``get_*_features`` result (a tensor, or in some
    transformers versions a model output holding it as ``pooler_output``)."""
    import torch

    if not isinstance(features, torch.Tensor):
        features = getattr(features, "pooler_output", None) if features is not None else None
        if features is None:
            raise BackendUnavailable(f"{name}: this transformers version returned no {what} features")
    return features.float().cpu().numpy()


class HfDualEncoder:
    """An :class:`~omnimem.encoders.base.Encoder` over a transformers two-tower model (CLIP, CLAP): text
    and one other modality projected into one space. Subclasses check their inputs (``_inputs``) and
    run one batch (``_batch``); this class validates, batches and L2-normalises."""

    modalities: tuple[str, str] = ("text", "")

    def __init__(self, model: Any, processor: Any, *, name: str, device: str = "cpu", batch_size: int = 32) -> None:
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        self.model = model.eval()
        self.processor = processor
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self.dim = int(model.config.projection_dim)

    def encode(self, inputs: Sequence[Any], *, modality: str = "text") -> np.ndarray:
        """Texts (``modality="text"``) or the other modality's inputs -> float32 ``(n, dim)``, unit rows."""
        if modality == "text":
            items: list[Any] = check_texts(inputs, self.name)
        elif modality == self.modalities[1]:
            items = self._inputs(inputs)
        else:
            raise ConfigError(f"{self.name} embeds {' and '.join(self.modalities)}, got modality {modality!r}")
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._batch(items[i : i + self.batch_size], modality) for i in range(0, len(items), self.batch_size)]
        return normalize_rows(np.concatenate(parts))

    def _inputs(self, inputs: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def _batch(self, batch: list[Any], modality: str) -> np.ndarray:
        raise NotImplementedError
