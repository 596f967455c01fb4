"""What the transformers-backed encoders share: loading a model + processor pair offline, and reading
the projected features out of whatever the model's ``get_*_features`` returns."""

from __future__ import annotations

import os
from typing import Any

from omnimem.errors import BackendUnavailable, missing_extra

__all__ = ["load_model_and_processor", "feature_array"]


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
