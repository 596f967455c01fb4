"""A sentence-transformers model's forward pass as one TorchScript call, for the CPU.

Eager PyTorch runs a MiniLM forward pass as a few hundred small ops, each entered from Python: every
op releases the GIL and takes it back. A query's encoding runs beside its BM25 search and its spaCy
parse (``omnimem.retrieval.threads.later``), and an add's beside the graph's parse
(``omnimem.memory.pipeline``); spaCy holds the GIL for most of its time, so each of those ops waited
for it. Measured on this 2-core CPU (``benchmarks/encoder_trace.py``), one question on one thread:
eager 16.6 ms alone and 28.9 ms beside a spaCy parse; traced 13.4 ms alone and 14.0 ms beside it
(p50). A traced module runs its whole graph in C++ with the GIL released once; batches of 64 encode
at the same speed either way.

:func:`trace_mean_pooled` traces the transformer with mean pooling over the attention mask (what
all-MiniLM-L6-v2 and most sentence-transformers models use) and accepts the trace only when it gives
the eager model's vectors on a padded probe batch: a model with another pooling, a layer that tracing
cannot follow, or a PyTorch without ``torch.jit`` keeps the eager path (logged, never an error).
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["trace_mean_pooled"]

log = logging.getLogger(__name__)

# lengths that differ (padding is exercised) and one past a typical query
_PROBE = ["a", "What did Caroline do at the support group last week?", "Melanie painted a lake at sunrise " * 6]
_TOLERANCE = 1e-4  # largest difference from the eager model's unit vectors that counts as the same


def trace_mean_pooled(model: Any) -> Callable[[list[str]], np.ndarray] | None:
    """``texts -> (n, dim)`` float32 vectors (not normalised) through a traced copy of ``model``'s
    forward pass; None when the trace cannot stand in for the eager model (see the module docstring)."""
    import torch

    try:
        transformer = getattr(model[0], "auto_model", None)
        if transformer is None or torch.device(getattr(model, "device", "cpu")).type != "cpu":
            return None  # not a transformer first, or on an accelerator: the eager path
        prepare = getattr(model, "preprocess", None) or model.tokenize
        features = prepare(_PROBE)
        example = (features["input_ids"], features["attention_mask"])
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # torch.jit's deprecation notice; shape notes checked below
            traced = torch.jit.trace(_mean_pooled_class()(transformer).eval(), example, check_trace=False)
            eager = model(dict(features))["sentence_embedding"].float().numpy()
            for _ in range(2):  # TorchScript's profiling runs, so a first query does not pay them
                got = traced(*example).float().numpy()
    except Exception as e:  # noqa: BLE001 - any failure keeps the eager path
        log.info("encoder forward pass not traced (%s: %s); running it eagerly", type(e).__name__, e)
        return None
    if not _same(got, eager):
        log.info("traced forward pass differs from the model's (not mean pooling?); running it eagerly")
        return None

    def forward(texts: list[str]) -> np.ndarray:
        batch = prepare(texts)
        with torch.inference_mode():
            return traced(batch["input_ids"], batch["attention_mask"]).float().numpy()

    return forward


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # noqa: E731
    return a.shape == b.shape and float(np.abs(unit(a) - unit(b)).max()) <= _TOLERANCE


@functools.cache
def _mean_pooled_class() -> type:
    """The traced module's class, built on first use (torch is imported lazily in omnimem)."""
    import torch

    class MeanPooled(torch.nn.Module):
        """The transformer's token states averaged over the attention mask (sentence-transformers'
        ``Pooling`` in mean mode)."""

        def __init__(self, transformer: Any) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            states = self.transformer(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            return (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    return MeanPooled
