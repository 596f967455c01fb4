"""A deterministic hashed bag-of-words encoder: a test double for mechanics, never a default.

It has no notion of meaning (synonyms score zero), but identical texts get identical vectors and
shared words give positive similarity, which is what store, index and facade tests need.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from omnimem.encoders.base import check_texts, normalize_rows
from omnimem.errors import ConfigError

__all__ = ["HashEncoder"]


class HashEncoder:
    """Hashed word (and word-bigram) counts, L2-normalised. ``dim`` is configurable."""

    modalities = ("text",)

    def __init__(self, dim: int = 64, *, name: str = "hash") -> None:
        if dim <= 0:
            raise ConfigError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.name = name

    @classmethod
    def from_pretrained(cls, name_or_path: str = "hash", *, dim: int | None = None, **_: Any) -> HashEncoder:
        return cls(dim or 64, name=name_or_path)

    def encode(self, inputs: Sequence[Any], *, modality: str = "text") -> np.ndarray:
        if modality != "text":
            raise ConfigError(f"{self.name} embeds text only, got modality {modality!r}")
        texts = check_texts(inputs, self.name)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower())
            for token in words + [f"{a}_{b}" for a, b in zip(words, words[1:])]:
                h = int.from_bytes(hashlib.md5(token.encode()).digest()[:4], "little")
                out[row, h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        return normalize_rows(out)
