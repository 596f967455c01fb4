"""Audio + text encoder on transformers' ``ClapModel`` + ``ClapProcessor`` (CLAP, Elizalde et al. 2023;
LAION-CLAP, Wu et al. 2023): both towers project into one space, rows L2-normalised.

GRASP's audio grounding (M3KG-RAG, "GRASP", step (a)) scores a fact by the similarity of the query
audio to the sentence "head relation tail" when an audio-text model is configured
(``MediaConfig.audio_text_model``: a directory written by ``save_pretrained``). No CLAP checkpoint ships
offline here, so the tests build a tiny random one from a config; a real one (e.g. laion/clap-htsat-unfused
saved locally) loads the same way. This module never downloads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from omnimem.encoders.hf import HfDualEncoder, feature_array, load_model_and_processor
from omnimem.encoders.media import load_audio
from omnimem.errors import CorruptInput

__all__ = ["HfClapEncoder", "hf_clap_encoder"]

log = logging.getLogger(__name__)


class HfClapEncoder(HfDualEncoder):
    """An :class:`~omnimem.encoders.base.Encoder` over a transformers ``ClapModel``: texts and audio.

    ``processor``: texts -> input_ids; audio (float32 at the feature extractor's rate) -> input_features.
    """

    modalities = ("text", "audio")
    registry_name = "hf_clap"  # create_encoder("hf_clap", model=...) rebuilds it

    def __init__(self, model: Any, processor: Any, *, name: str, device: str = "cpu", batch_size: int = 16) -> None:
        super().__init__(model, processor, name=name, device=device, batch_size=batch_size)
        self.sample_rate = int(processor.feature_extractor.sampling_rate)

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, device: str = "cpu", batch_size: int = 16) -> HfClapEncoder:
        """Load a ``ClapModel`` and its ``ClapProcessor`` from a local directory (or a cached hub name)."""
        model, processor = load_model_and_processor(
            "ClapModel", "ClapProcessor", name_or_path, device=device, extra="audio", what="CLAP"
        )
        return cls(model, processor, name=name_or_path, device=device, batch_size=batch_size)

    def _inputs(self, inputs: Sequence[Any]) -> list[Any]:
        """Audio: a file path or float32 mono samples at ``self.sample_rate``."""
        return [self._samples(x) for x in inputs]

    def _samples(self, audio: Any) -> np.ndarray:
        if isinstance(audio, (str, os.PathLike)):
            samples = load_audio(audio, sample_rate=self.sample_rate)
        else:
            samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1 or not samples.size:
            raise CorruptInput(
                f"{self.name}: audio must be a file path or non-empty mono samples (n,), got shape {samples.shape}"
            )
        return samples

    def _batch(self, batch: list[Any], modality: str) -> np.ndarray:
        import torch

        with torch.inference_mode():
            if modality == "text":
                max_length = getattr(self.model.config.text_config, "max_position_embeddings", 512) - 2
                tokens = self.processor(
                    text=batch, return_tensors="pt", padding=True, truncation=True, max_length=max_length
                ).to(self.device)
                features = self.model.get_text_features(
                    input_ids=tokens["input_ids"], attention_mask=tokens.get("attention_mask")
                )
            else:
                inputs = self.processor.feature_extractor(batch, sampling_rate=self.sample_rate, return_tensors="pt")
                features = self.model.get_audio_features(
                    input_features=inputs["input_features"].to(self.device), is_longer=inputs.get("is_longer")
                )
        return feature_array(features, self.name, "CLAP")


def hf_clap_encoder(
    _registered: str = "hf_clap", *, model: str, device: str = "cpu", batch_size: int = 16
) -> HfClapEncoder:
    """Registry factory: ``create_encoder("hf_clap", model="/path/to/clap-dir")``."""
    return HfClapEncoder.from_pretrained(model, device=device, batch_size=batch_size)
