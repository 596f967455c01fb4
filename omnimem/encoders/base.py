"""The Encoder protocol and helpers shared by every encoder adapter.

``encode(inputs, *, modality) -> float32 (n, dim)`` with L2-normalised rows. An encoder knows models,
never storage; the memory decides which index (embedding space) its vectors go to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from omnimem.errors import ConfigError

__all__ = ["Encoder", "normalize_rows", "check_texts"]


@runtime_checkable
class Encoder(Protocol):
    name: str  # a name that reopens the same model through the encoder registry
    dim: int  # embedding size
    modalities: tuple[str, ...]  # the input modalities it embeds, e.g. ("text",) or ("text", "image")

    def encode(self, inputs: Sequence[Any], *, modality: str = "text") -> np.ndarray:
        """Embed ``inputs`` of one ``modality`` -> float32 ``(len(inputs), dim)``, rows L2-normalised."""


def normalize_rows(array: np.ndarray) -> np.ndarray:
    """float32 copy of ``array`` with unit-length rows (zero rows stay zero)."""
    array = np.asarray(array, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.ascontiguousarray(array / np.maximum(norms, 1e-12), dtype=np.float32)


def check_texts(inputs: Sequence[Any], encoder: str) -> list[str]:
    """Validate a batch of texts for ``encoder``: a sequence of str (empty strings allowed)."""
    if isinstance(inputs, str):
        raise ConfigError(f"{encoder}.encode expects a list of strings, got a single str; wrap it: [text]")
    texts = list(inputs)
    for n, text in enumerate(texts):
        if not isinstance(text, str):
            raise ConfigError(f"{encoder}.encode: input {n} is {type(text).__name__}, expected str")
    return texts
